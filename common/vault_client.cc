#include "common/vault_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <ctime>

#include "common/backoff.h"

namespace cacerts {
namespace {

// Vault's PKI engine warns about missing AIA URLs (config/urls) on every generate and sign:
// harmless for istiod, so said once per process at info, not as a warning per renewal.
void logVaultWarning(const std::string& path, const std::string& warning) {
  if (warning.find("authority information access") != std::string::npos) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) spdlog::info("event=vault_warning path={} warning=\"{}\"", path, warning);
    return;
  }
  spdlog::warn("event=vault_warning path={} warning=\"{}\"", path, warning);
}

// The shortest time budget an attempt gets, however close the retry deadline is.
constexpr Duration kMinAttemptTimeout = std::chrono::seconds(1);

// Vault error texts are often flattened Go multierrors ("1 error occurred:\n\t* x\n\n");
// reduce them to one line and cap the length so a misbehaving server cannot flood logs.
std::string summariseErrors(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("errors") || !body["errors"].is_array()) return "";
  std::string out;
  for (const auto& e : body["errors"]) {
    if (!e.is_string()) continue;
    std::string line;
    for (char c : e.get<std::string>()) {
      const bool space = c == '\n' || c == '\t' || c == '*' || c == ' ';
      if (space) {
        if (!line.empty() && line.back() != ' ') line += ' ';
      } else if (std::isprint(static_cast<unsigned char>(c))) {
        line += c;
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    // "1 error occurred: permission denied" -> "permission denied"
    for (const char* marker : {" error occurred: ", " errors occurred: "}) {
      const auto at = line.find(marker);
      if (at != std::string::npos && at < 4) line = line.substr(at + std::strlen(marker));
    }
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

// lease_duration in seconds, clamped: a float or out-of-range number must not become UB.
std::chrono::seconds leaseSeconds(const nlohmann::json& auth) {
  const auto it = auth.find("lease_duration");
  if (it == auth.end() || !it->is_number()) return std::chrono::seconds(0);
  const double v = it->get<double>();
  if (!(v > 0)) return std::chrono::seconds(0);
  constexpr double kMax = 10.0 * 365 * 24 * 3600;  // ten years: longer is "does not expire" in practice
  return std::chrono::seconds(static_cast<long long>(std::min(v, kMax)));
}

std::string percentEncodePath(const std::string& path) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '?' ||
        c == '=' || c == '&' || c == '+' || c == ':' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string capabilityFor(const std::string& method) {
  if (method == "GET") return "read";
  if (method == "LIST") return "list";
  if (method == "DELETE") return "delete";
  return "update";
}

}  // namespace

const nlohmann::json& member(const nlohmann::json& object, const std::string& key) {
  static const nlohmann::json kAbsent;
  if (!object.is_object()) return kAbsent;
  const auto it = object.find(key);
  return it == object.end() ? kAbsent : *it;
}

std::optional<Duration> parseRetryAfter(const std::string& value, SystemTime now) {
  if (value.empty() || value.size() > 64) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 6) return std::nullopt;  // over eleven days: not a plausible rate limit
    return std::chrono::seconds(std::stoi(value));
  }
  // IMF-fixdate, the only HTTP date form Go's net/http writes: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const char* end = ::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t at = ::timegm(&tm);
  if (at == static_cast<std::time_t>(-1)) return std::nullopt;
  const auto wait = std::chrono::duration_cast<Duration>(std::chrono::system_clock::from_time_t(at) - now);
  // A date already past (clock skew, a slow response) means "now".
  return std::max(wait, Duration::zero());
}

std::string normaliseAuthMount(std::string mount) {
  while (!mount.empty() && mount.front() == '/') mount.erase(0, 1);
  while (!mount.empty() && mount.back() == '/') mount.pop_back();
  if (mount.rfind("auth/", 0) == 0) mount.erase(0, 5);
  return mount;
}

VaultClient::VaultClient(HttpTransport& transport, std::string ns, Clock& clock, Random& random,
                         VaultRetryPolicy retry)
    : transport_(transport), namespace_(std::move(ns)), clock_(clock), random_(random), retry_(retry) {}

Result<VaultResponse> VaultClient::attempt(const std::string& method, const std::string& path,
                                           const nlohmann::json* body, bool authenticated,
                                           bool allow_not_found, std::optional<Duration>* retry_after) {
  HttpRequest req;
  req.method = method;
  req.target = "/v1/" + percentEncodePath(path);
  req.headers.emplace_back("X-Vault-Request", "true");
  if (!namespace_.empty()) req.headers.emplace_back("X-Vault-Namespace", namespace_);
  if (authenticated && token_) req.headers.emplace_back("X-Vault-Token", std::string(token_->token.view()));
  if (body != nullptr) req.body = body->dump();
  if (deadline_) {
    // A hung or trickling response must not outlive --timeout; the floor gives the attempt
    // made at the deadline a fair chance.
    const auto left = std::chrono::duration_cast<Duration>(*deadline_ - clock_.now());
    req.timeout = std::max(left, kMinAttemptTimeout);
  }
  const std::string what = method + " " + path;

  Result<HttpResponse> sent = transport_.send(req);
  cleanseMemory(req.body.data(), req.body.size());
  if (authenticated && token_) cleanseMemory(req.headers.back().second.data(), req.headers.back().second.size());
  if (observer_) observer_(method + " " + path, sent ? sent->status : 0);
  if (!sent) return withContext(sent.error(), "vault " + what);
  HttpResponse& res = *sent;

  VaultResponse out;
  out.status = res.status;
  bool malformed = false;
  if (res.status != 204 && !res.body.empty()) {
    // Never surface the parser's message: it can quote bytes of a secret payload.
    out.body = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    if (out.body.is_discarded()) {
      out.body = nullptr;
      malformed = true;
    }
  }
  cleanseMemory(res.body.data(), res.body.size());
  if (out.body.is_object() && out.body.contains("warnings") && out.body["warnings"].is_array()) {
    for (const auto& w : out.body["warnings"]) {
      if (w.is_string()) out.warnings.push_back(w.get<std::string>());
    }
  }

  const int s = res.status;
  const std::string detail = summariseErrors(out.body);
  const std::string suffix = detail.empty() ? "" : ": " + detail;
  if (s >= 200 && s < 300) {
    if (malformed) {
      return Error{ErrorCode::kUnavailable, "vault " + what + ": malformed JSON in a " + std::to_string(s) + " response"};
    }
    return out;
  }
  if (s == 404) {
    if (malformed) return Error{ErrorCode::kUnavailable, "vault " + what + ": 404 with a malformed body"};
    if (allow_not_found) return out;
    // KV v2 answers deleted versions and v1-style paths with 404 plus a full envelope.
    return Error{ErrorCode::kNotFound, "vault " + what + ": not found (404)" + suffix};
  }
  if (s == 403) {
    return Error{ErrorCode::kPermissionDenied, "vault " + what + ": permission denied (403)" + suffix +
                                                   "; the token's policy must grant \"" + capabilityFor(method) +
                                                   "\" on " + path.substr(0, path.find('?'))};
  }
  if (s == 412 || s == 429 || (s >= 500 && s != 501)) {
    if ((s == 429 || s == 503) && retry_after != nullptr) {
      const auto header = res.headers.find("retry-after");
      if (header != res.headers.end()) *retry_after = parseRetryAfter(header->second, clock_.now());
    }
    std::string reason = s == 503 && detail.find("sealed") != std::string::npos ? "Vault is sealed" : "transient error";
    return Error{ErrorCode::kUnavailable, "vault " + what + ": " + reason + " (" + std::to_string(s) + ")" + suffix};
  }
  if (s == 501) return Error{ErrorCode::kInvalidArgument, "vault " + what + ": Vault is not initialised (501)" + suffix};
  if (s >= 300 && s < 400) {
    return Error{ErrorCode::kInvalidArgument, "vault " + what + ": unexpected redirect (" + std::to_string(s) +
                                                  "); point --vault-addr at the active node or a load balancer"};
  }
  return Error{ErrorCode::kInvalidArgument, "vault " + what + ": rejected (" + std::to_string(s) + ")" + suffix};
}

Result<VaultResponse> VaultClient::withRetries(const std::string& method, const std::string& path,
                                               const nlohmann::json* body, bool authenticated,
                                               bool allow_not_found) {
  for (int n = 0;; ++n) {
    std::optional<Duration> retry_after;
    Result<VaultResponse> r = attempt(method, path, body, authenticated, allow_not_found, &retry_after);
    if (r || !isTransient(r.error().code)) return r;
    if (!deadline_) return r;
    Duration wait = retry_after.value_or(backoffDelay(n, BackoffPolicy{retry_.initial, retry_.max}, random_.uniform01()));
    const SystemTime now = clock_.now();
    if (now >= *deadline_) {
      return Error{ErrorCode::kDeadlineExceeded,
                   r.error().message + " (gave up after " + std::to_string(n + 1) + " attempts; see --timeout)"};
    }
    // The last attempt happens at the deadline rather than giving up early.
    wait = std::min(wait, std::chrono::duration_cast<Duration>(*deadline_ - now));
    spdlog::warn("event=vault_retry method={} path={} attempt={} retry_in_ms={} error=\"{}\"", method, path, n + 1,
                 wait.count(), r.error().message);
    if (!clock_.sleepFor(wait)) return r;  // interrupted: shutting down
  }
}

Result<VaultResponse> VaultClient::call(const std::string& method, const std::string& path,
                                        const nlohmann::json* body, bool authenticated, bool allow_not_found) {
  if (authenticated) RETURN_IF_ERROR(ensureToken());
  Result<VaultResponse> r = withRetries(method, path, body, authenticated, allow_not_found);
  if (!r && r.error().code == ErrorCode::kPermissionDenied && authenticated && token_) {
    // Logging in again on a policy denial would mint a token per attempt. Vault 1.17+ says
    // "invalid token" next to "permission denied" for a dead token; older releases answer
    // both cases alike, so then ask Vault whether the token itself is still good.
    if (r.error().message.find("invalid token") == std::string::npos) {
      Result<VaultResponse> self = withRetries("GET", "auth/token/lookup-self", nullptr, true, false);
      if (self) {
        spdlog::debug("event=vault_policy_denied path={}", path);
        Error denied = r.error();
        denied.message += " (the token is valid: its policies do not allow this)";
        return denied;
      }
      if (self.error().code != ErrorCode::kPermissionDenied) {
        return withContext(self.error(), "checking the token after a 403 on " + path);
      }
    }
    spdlog::info("event=vault_relogin reason=token_invalid path={}", path);
    const bool supplied = !token_->owned;
    std::optional<Secret> previous;
    if (supplied) previous = Secret(token_->token.view());
    dropToken();  // dead: nothing to revoke
    RETURN_IF_ERROR(ensureToken());
    if (supplied && previous && token_ && token_->token == *previous) {
      dropToken();
      return Error{ErrorCode::kPermissionDenied,
                   "vault " + method + " " + path + ": the " +
                       (auth_ != nullptr ? auth_->describe() : std::string("Vault token")) +
                       " is no longer valid (expired or revoked) and cannot be kept valid; supply a new token"};
    }
    r = withRetries(method, path, body, authenticated, allow_not_found);
  }
  if (r) {
    for (const auto& w : r->warnings) logVaultWarning(path, w);
  }
  return r;
}

Status VaultClient::ensureToken() {
  if (token_) {
    const auto expiry = tokenExpiry();
    // Renew a little early: a token that expires in flight costs a retry round trip.
    if (!expiry || clock_.now() + std::chrono::seconds(5) < *expiry) return ok();
    if (token_->owned) {
      retireToken("expiring");
    } else {
      token_.reset();
    }
  }
  if (auth_ == nullptr) return Error{ErrorCode::kInvalidArgument, "no Vault token and no auth method configured"};
  ASSIGN_OR_RETURN(VaultToken t, auth_->login(*this));
  const bool lookup = t.needs_lookup;
  setToken(std::move(t));
  if (lookup) return lookupSuppliedToken();
  return ok();
}

Status VaultClient::lookupSuppliedToken() {
  const std::string what = auth_ != nullptr ? auth_->describe() : std::string("Vault token");
  Result<VaultResponse> r = withRetries("GET", "auth/token/lookup-self", nullptr, true, false);
  if (!r) {
    dropToken();
    if (r.error().code == ErrorCode::kPermissionDenied) {
      return Error{ErrorCode::kPermissionDenied,
                   "the " + what + " is not valid (expired or revoked) and cannot be kept valid; supply a new token"};
    }
    return withContext(r.error(), what);
  }
  return guardResponseShape("vault lookup-self", [&]() -> Status {
    const auto& data = r->body.is_object() ? r->body.value("data", nlohmann::json()) : nlohmann::json();
    if (!data.is_object()) {
      dropToken();
      return Error{ErrorCode::kUnavailable, "vault lookup-self: response has no data"};
    }
    nlohmann::json lease = {{"lease_duration", data.value("ttl", nlohmann::json(0))}};
    const Duration remaining = leaseSeconds(lease);
    lease["lease_duration"] = data.value("creation_ttl", nlohmann::json(0));
    Duration period = leaseSeconds(lease);
    if (period < remaining) period = remaining;
    const std::string type = data.value("type", std::string("service"));
    token_->renewable = data.value("renewable", false) && type != "batch";
    token_->needs_lookup = false;
    // Expiry = now + remaining; renewals ask for the token's period (its creation TTL).
    token_->ttl = remaining.count() == 0 ? Duration{0} : period;
    token_obtained_ = clock_.now() + remaining - token_->ttl;
    spdlog::info("event=vault_token_checked source=\"{}\" type={} renewable={} ttl_s={} expire_time={}", what, type,
                 token_->renewable, std::chrono::duration_cast<std::chrono::seconds>(remaining).count(),
                 data.value("expire_time", nlohmann::json(nullptr)).is_string()
                     ? data["expire_time"].get<std::string>()
                     : std::string("never"));
    return ok();
  });
}

void VaultClient::retireToken(const char* reason) {
  spdlog::info("event=vault_token_replaced reason={}", reason);
  (void)revokeToken();
}

Status VaultClient::revokeToken() {
  if (!token_) return ok();
  if (!token_->owned) {
    dropToken();
    return ok();
  }
  // One attempt: this runs at exit or while replacing the token, and an unrevoked token
  // still expires at its TTL.
  Result<VaultResponse> r = attempt("POST", "auth/token/revoke-self", nullptr, true, false, nullptr);
  dropToken();
  if (!r) {
    spdlog::info("event=vault_token_revoke_failed error=\"{}\"", r.error().message);
    return r.error();
  }
  spdlog::debug("event=vault_token_revoked");
  return ok();
}

std::optional<SystemTime> VaultClient::tokenExpiry() const {
  if (!token_ || token_->ttl.count() == 0) return std::nullopt;
  return token_obtained_ + token_->ttl;
}

Result<VaultToken> VaultClient::loginWith(const std::string& mount, const nlohmann::json& body,
                                          const std::string& what, const LoginRetry& retry) {
  const std::string path = "auth/" + normaliseAuthMount(mount) + "/login";
  const SystemTime started = clock_.now();
  Result<VaultResponse> r = withRetries("POST", path, &body, /*authenticated=*/false, false);
  int denied = 0;
  while (!r && r.error().code == ErrorCode::kPermissionDenied && retry.denied_for > Duration::zero() && deadline_) {
    const SystemTime until = std::min(started + retry.denied_for, *deadline_);
    const SystemTime now = clock_.now();
    if (now >= until) break;
    // The last attempt happens at `until` rather than giving up early.
    const Duration wait = std::min(backoffDelay(denied, BackoffPolicy{retry_.initial, retry_.max}, random_.uniform01()),
                                   std::chrono::duration_cast<Duration>(until - now));
    ++denied;
    spdlog::warn("event=vault_login_retry reason=403 attempt={} retry_in_ms={} login=\"{}\"", denied, wait.count(), what);
    if (!clock_.sleepFor(wait)) break;  // interrupted: shutting down
    r = withRetries("POST", path, &body, /*authenticated=*/false, false);
  }
  if (!r) {
    Error e = r.error();
    // Bad credentials are 400 for approle, cert and unknown kubernetes roles, 403 otherwise.
    if (e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kPermissionDenied || e.code == ErrorCode::kNotFound) {
      const bool forbidden = e.code == ErrorCode::kPermissionDenied;
      e.code = ErrorCode::kPermissionDenied;
      std::string detail = e.message.substr(e.message.find(": ") + 2);
      // A login carries no token: the policy advice attempt() adds to a 403 does not apply.
      if (forbidden) detail = detail.substr(0, detail.find("; the token's policy"));
      e.message = what + " refused: " + detail;
      if (forbidden && !retry.denied_hint.empty()) {
        e.message += "; " + retry.denied_hint;
        if (denied > 0) e.message += " (refused " + std::to_string(denied + 1) + " times in a row)";
      }
      return e;
    }
    return withContext(e, what);
  }
  return guardResponseShape(what, [&]() -> Result<VaultToken> { return parseLogin(r->body, what); });
}

Result<VaultToken> VaultClient::parseLogin(const nlohmann::json& body, const std::string& what) {
  const auto& auth = body.is_object() ? body.value("auth", nlohmann::json()) : nlohmann::json();
  if (!auth.is_object() || !auth.contains("client_token") || !auth["client_token"].is_string() ||
      auth["client_token"].get_ref<const std::string&>().empty()) {
    return Error{ErrorCode::kUnavailable, what + ": login response has no auth.client_token"};
  }
  VaultToken t;
  std::string raw = auth["client_token"].get<std::string>();
  t.token = Secret::takeFrom(raw);
  t.ttl = leaseSeconds(auth);
  t.renewable = auth.value("renewable", false);
  t.owned = true;
  return t;
}

Status VaultClient::renewToken(Duration increment) {
  nlohmann::json body = {{"increment", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(increment).count()) + "s"}};
  ASSIGN_OR_RETURN(VaultResponse r, withRetries("POST", "auth/token/renew-self", &body, true, false));
  return guardResponseShape("vault renew-self", [&]() -> Status { return applyRenewal(r.body, increment); });
}

Status VaultClient::applyRenewal(const nlohmann::json& response, Duration requested) {
  const auto& auth = response.is_object() ? response.value("auth", nlohmann::json()) : nlohmann::json();
  if (!auth.is_object()) return Error{ErrorCode::kUnavailable, "vault renew-self: response has no auth block"};
  if (token_) {
    token_->ttl = leaseSeconds(auth);
    token_->renewable = auth.value("renewable", false);
    token_obtained_ = clock_.now();
    if (token_->ttl < requested) {
      // Vault capped the renewal at the token's max TTL ("TTL value is capped accordingly"):
      // no renewal can extend it further, so it must be replaced before it expires.
      token_->renewable = false;
      spdlog::info("event=vault_token_at_max_ttl ttl_s={}",
                   std::chrono::duration_cast<std::chrono::seconds>(token_->ttl).count());
    }
  }
  return ok();
}

Status VaultClient::refreshTokenIfExpiring(Duration floor) {
  if (token_ && !token_->owned && auth_ != nullptr && auth_->tokenSourceChanged()) {
    // A Vault Agent sink rewrote the token file: the batch reads and checks the new token.
    spdlog::info("event=vault_token_file_changed source=\"{}\"", auth_->describe());
    dropToken();
    return ok();
  }
  if (!token_ || token_->ttl.count() == 0) return ok();
  const Duration ttl = token_->ttl;
  const auto remaining = std::chrono::duration_cast<Duration>(token_obtained_ + ttl - clock_.now());
  if (remaining >= std::max(ttl / 3, floor)) return ok();
  // Too late to renew: the next call logs in again (ensureToken uses the same margin).
  if (remaining < std::chrono::seconds(5)) return ok();
  if (!token_->renewable) {
    if (remaining >= floor) return ok();
    if (token_->owned) {
      // Non-renewable or at its max TTL: log in afresh while the old token is still valid.
      retireToken("not_renewable");
    } else {
      spdlog::warn("event=vault_token_expiring source=\"{}\" remaining_ms={} message=\"the supplied token cannot be "
                   "renewed; replace it before it expires\"",
                   auth_ != nullptr ? auth_->describe() : std::string("token"), remaining.count());
    }
    return ok();
  }
  Status renewed = renewToken(ttl);
  if (!renewed) {
    spdlog::info("event=vault_token_renew_failed action=relogin error=\"{}\"", renewed.error().message);
    if (token_ && token_->owned) {
      (void)revokeToken();
    } else {
      dropToken();
    }
    return renewed;
  }
  spdlog::debug("event=vault_token_renewed ttl_s={}",
                std::chrono::duration_cast<std::chrono::seconds>(token_ ? token_->ttl : Duration{0}).count());
  return ok();
}

}  // namespace cacerts
