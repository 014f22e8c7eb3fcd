#include "tests/vault_server/response.h"

#include <openssl/rand.h>

#include <cstdio>
#include <ctime>

#include "common/duration.h"

namespace cacerts::testing {

Reply envelopeReply(const Envelope& e, int status) {
  json body = {
      {"request_id", newUuid()},
      {"lease_id", ""},
      {"renewable", e.renewable},
      {"lease_duration", e.lease_duration},
      {"data", e.data},
      {"wrap_info", nullptr},
      {"warnings", e.warnings.empty() ? json(nullptr) : json(e.warnings)},
      {"auth", e.auth},
  };
  if (!e.mount_type.empty()) body["mount_type"] = e.mount_type;
  Reply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

Reply errorReply(int status, std::vector<std::string> errors) {
  Reply r;
  r.status = status;
  r.body = errors.empty() ? std::string(R"({"errors":[]})")
                          : json{{"errors", json(std::move(errors))}}.dump();
  return r;
}

Reply noContent() {
  Reply r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Reply rawReply(int status, std::string body, std::string content_type) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

std::string invalidTokenMessage(bool modern) {
  return modern ? "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
                : permissionDeniedMessage();
}

std::string permissionDeniedMessage() { return "1 error occurred:\n\t* permission denied\n\n"; }

std::string newUuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
  return out;
}

std::string randomAlnum(std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  unsigned char b = 0;
  while (out.size() < n) {
    RAND_bytes(&b, 1);
    if (b < 248) out += kAlphabet[b % 62];  // 248 = 4 * 62: no modulo bias
  }
  return out;
}

std::string rfc3339(SystemTime t, bool nanos) {
  const auto since = t.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(since);
  const std::time_t tt = secs.count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (nanos) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count();
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(ns));
    out += frac;
  }
  return out + "Z";
}

std::int64_t unixSeconds(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string goDuration(std::int64_t seconds) { return describeDuration(std::chrono::seconds(seconds)); }

std::optional<std::int64_t> durationSeconds(const json& value) {
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    return v >= 0 ? std::optional<std::int64_t>(v) : std::nullopt;
  }
  if (!value.is_string()) return std::nullopt;
  const auto parsed = parseDuration(value.get<std::string>());
  if (!parsed) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(*parsed).count();
}

bool boolParam(const json& params, const char* name, bool fallback) {
  const auto it = params.find(name);
  if (it == params.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0") return false;
  }
  return fallback;
}

std::optional<std::int64_t> intParam(const json& params, const char* name, std::int64_t fallback) {
  const auto it = params.find(name);
  if (it == params.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty()) return fallback;
    std::size_t used = 0;
    try {
      const long long v = std::stoll(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

std::string stringParam(const json& params, const char* name) {
  const auto it = params.find(name);
  if (it == params.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::vector<std::string> listParam(const json& params, const char* name) {
  std::vector<std::string> out;
  const auto it = params.find(name);
  if (it == params.end()) return out;
  if (it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string() && !v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
    }
    return out;
  }
  if (!it->is_string()) return out;
  const std::string& s = it->get_ref<const std::string&>();
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace cacerts::testing
