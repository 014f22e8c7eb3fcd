#include "tests/vault_server/faults.h"

namespace cacerts::testing {

void FaultQueue::add(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back(std::move(fault));
}

void FaultQueue::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
}

std::optional<Fault> FaultQueue::take(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (path.rfind(it->path_prefix, 0) != 0 || it->count == 0) continue;
    Fault f = *it;
    if (it->count > 0 && --it->count == 0) faults_.erase(it);
    return f;
  }
  return std::nullopt;
}

Reply statusFaultReply(const Fault& fault, const std::string& path) {
  const int status = fault.status == 0 ? 500 : fault.status;
  Reply r;
  if (!fault.body.empty()) {
    r.status = status;
    r.body = fault.body;
  } else {
    std::string message;
    switch (status) {
      case 412: message = "required index state not present"; break;
      case 429: message = "request path \"" + path + "\": rate limit quota exceeded"; break;
      case 500: message = "1 error occurred:\n\t* internal error\n\n"; break;
      case 501: message = "Vault is not initialized"; break;
      case 502: message = "upstream rate limited"; break;
      case 503: message = "Vault is sealed"; break;
      default: message = "injected fault"; break;
    }
    r = errorReply(status, {message});
  }
  r.headers = fault.headers;
  return r;
}

Result<Fault> faultFromJson(const json& j) {
  if (!j.is_object()) return Error{ErrorCode::kInvalidArgument, "fault must be a JSON object"};
  Fault f;
  const std::string kind = j.value("kind", "status");
  if (kind == "status") f.kind = Fault::Kind::kStatus;
  else if (kind == "delay") f.kind = Fault::Kind::kDelay;
  else if (kind == "drop") f.kind = Fault::Kind::kDrop;
  else if (kind == "truncate") f.kind = Fault::Kind::kTruncate;
  else if (kind == "malformed_json") f.kind = Fault::Kind::kMalformedJson;
  else if (kind == "huge_body") f.kind = Fault::Kind::kHugeBody;
  else if (kind == "reset_mid_body") f.kind = Fault::Kind::kResetMidBody;
  else if (kind == "trickle") f.kind = Fault::Kind::kTrickle;
  else return Error{ErrorCode::kInvalidArgument, "unknown fault kind \"" + kind + "\""};
  const auto str = [&](const char* k) {
    const auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto num = [&](const char* k, long long fallback) {
    const auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? it->get<long long>() : fallback;
  };
  f.path_prefix = str("path_prefix");
  f.body = str("body");
  f.count = static_cast<int>(num("count", 1));
  f.status = static_cast<int>(num("status", 0));
  f.delay = Duration{num("delay_ms", 0)};
  f.huge_bytes = static_cast<std::size_t>(num("huge_bytes", static_cast<long long>(f.huge_bytes)));
  if (const auto h = j.find("headers"); h != j.end() && h->is_object()) {
    for (const auto& [k, v] : h->items()) {
      if (v.is_string()) f.headers.emplace_back(k, v.get<std::string>());
    }
  }
  return f;
}

}  // namespace cacerts::testing
