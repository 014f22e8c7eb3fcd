// VaultClient: Vault's HTTP conventions on top of an HttpTransport — the /v1/ prefix, the
// X-Vault-Request / X-Vault-Namespace / X-Vault-Token headers, the response envelope, the
// error model, bounded retries of transient failures, and re-login on an invalid token.
//
// The token never leaves this class and is never logged. Not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/http.h"
#include "common/random.h"
#include "common/result.h"
#include "common/secret.h"

namespace cacerts {

struct VaultToken {
  Secret token;
  Duration ttl{0};         // 0: never expires (root tokens)
  bool renewable = false;  // false also once renew-self stops extending it (max TTL reached)
  // Minted by this agent's login: revoked (revoke-self) when replaced or no longer needed.
  // A token the user supplied (token auth) is never revoked by the agent.
  bool owned = false;
  // Supplied by the user: ttl and renewable are unknown until lookup-self fills them in.
  bool needs_lookup = false;
};

class VaultClient;

// A way to obtain a token. login() is called lazily before the first authenticated request
// and again when the token is invalid: Vault answered 403 and lookup-self confirms the token
// itself is rejected (expired or revoked), at most once per request. A 403 with a valid token
// is a policy denial and never leads to a login.
class VaultAuthenticator {
 public:
  virtual ~VaultAuthenticator() = default;
  // Errors: kPermissionDenied naming the mount and role when Vault refuses the credential;
  // kInvalidArgument when a credential file cannot be read; transient errors as returned.
  virtual Result<VaultToken> login(VaultClient& client) = 0;
  // "kubernetes login at auth/kubernetes (role istiod)" — for messages, no secrets.
  virtual std::string describe() const = 0;
  // Token auth with a token file: true when the file now holds another token than the one
  // the last login() returned (a Vault Agent sink rewrote it). Others: false.
  virtual bool tokenSourceChanged() { return false; }
};

struct VaultResponse {
  int status = 0;
  nlohmann::json body;                 // null for 204 / empty bodies
  std::vector<std::string> warnings;
};

struct VaultRetryPolicy {
  Duration initial = std::chrono::milliseconds(250);
  Duration max = std::chrono::seconds(10);
};

class VaultClient {
 public:
  // ns: Vault namespace ("" for none). All references must outlive the client.
  VaultClient(HttpTransport& transport, std::string ns, Clock& clock, Random& random,
              VaultRetryPolicy retry = {});

  void setAuthenticator(VaultAuthenticator* auth) { auth_ = auth; }
  // Transient failures are retried until this time; after it, the last error is returned
  // as kDeadlineExceeded. Each attempt's overall time budget (HttpRequest::timeout) is
  // also cut to the time left (at least 1 s), so a hung or trickling response ends the run
  // at most about a second after the deadline. Default: no retries, and the transport's own
  // request timeout.
  void setRetryDeadline(std::optional<SystemTime> deadline) { deadline_ = deadline; }
  // Called once per HTTP attempt with the operation name and status (0 on transport error).
  void setObserver(std::function<void(const std::string& operation, int status)> observer) {
    observer_ = std::move(observer);
  }

  // One logical Vault call on path (relative to /v1/, may include a query). Retries
  // transient failures. On 403 with a token, asks auth/token/lookup-self whether the token is
  // still valid: if it is, the 403 is the policy's and is returned as is (no login); if
  // Vault rejects the token too, logs in again once (revoking nothing: the token is dead)
  // and repeats the call. A supplied token (token auth) that is rejected and not replaced in
  // its file fails with a message saying the token can no longer be kept valid.
  // Returns the response for 2xx, and for 404 when allow_not_found (KV reports deleted
  // versions as 404 with a full envelope). Errors name the method and path:
  //   403 -> kPermissionDenied, 400/405 -> kInvalidArgument, 404 -> kNotFound,
  //   412, 429, 5xx (not 501), malformed bodies, transport failures -> kUnavailable.
  Result<VaultResponse> call(const std::string& method, const std::string& path,
                             const nlohmann::json* body = nullptr, bool authenticated = true,
                             bool allow_not_found = false);

  // How a login treats 403. Kubernetes auth answers 403 both for a credential its role does
  // not accept and when Vault could not reach the Kubernetes API for the TokenReview; only
  // retrying tells the two apart.
  struct LoginRetry {
    // How long 403s are retried (with the client's backoff), never past the retry
    // deadline; zero, or no retry deadline: not at all.
    Duration denied_for = Duration::zero();
    // Appended to the final 403's message: what a 403 may mean for this auth method.
    std::string denied_hint{};
  };

  // POST auth/<mount>/login with the given body; parses the auth block. Used by
  // authenticators. 400 and 403 become kPermissionDenied (Vault reports bad credentials
  // as either); 403s are first retried as `retry` says.
  Result<VaultToken> loginWith(const std::string& mount, const nlohmann::json& body,
                               const std::string& what, const LoginRetry& retry);
  Result<VaultToken> loginWith(const std::string& mount, const nlohmann::json& body,
                               const std::string& what) {
    return loginWith(mount, body, what, LoginRetry{});
  }

  // Ensures a token is present (logging in if needed) without making another call. A
  // supplied token is checked with lookup-self when first read (ttl, renewable, batch). An
  // owned token about to expire is revoked and replaced by a fresh login.
  Status ensureToken();
  // Revokes the current token with revoke-self (one attempt) if the agent minted it, and
  // forgets it. A supplied token is forgotten, never revoked. Errors: the revoke-self
  // failure (the token is forgotten either way; it expires at its TTL).
  Status revokeToken();
  bool hasToken() const { return token_.has_value(); }
  void setToken(VaultToken token) { token_ = std::move(token); token_obtained_ = clock_.now(); }
  void dropToken() { token_.reset(); }
  // When the current token expires (nullopt: no token or never expires).
  std::optional<SystemTime> tokenExpiry() const;
  // POST auth/token/renew-self; updates the cached TTL with what Vault granted.
  Status renewToken(Duration increment);
  // For long-running callers, just before a batch of calls (never in the background):
  // a supplied token whose file changed is dropped (the batch reads the new one). When the
  // cached token has less than a third of its last granted TTL left, or less than `floor`,
  // a renewable token is extended with renew-self by that TTL. A renewal Vault caps (max
  // TTL reached) marks the token non-renewable. An owned token that cannot be renewed (or
  // whose renewal failed) is revoked and dropped so the next call logs in afresh before the
  // hard expiry; a supplied one is kept until its file changes (it is all there is). No
  // token, a token without TTL, or one with time to spare: nothing happens. Returns the
  // renewal error, if any (the client stays usable either way).
  Status refreshTokenIfExpiring(Duration floor = std::chrono::seconds(30));

 private:
  Result<VaultResponse> attempt(const std::string& method, const std::string& path,
                                const nlohmann::json* body, bool authenticated, bool allow_not_found,
                                std::optional<Duration>* retry_after);
  Result<VaultResponse> withRetries(const std::string& method, const std::string& path,
                                    const nlohmann::json* body, bool authenticated, bool allow_not_found);

  Result<VaultToken> parseLogin(const nlohmann::json& body, const std::string& what);
  Status applyRenewal(const nlohmann::json& response, Duration requested);
  // lookup-self for a supplied token: fills in ttl and renewable. 403 -> kPermissionDenied
  // saying the token cannot be kept valid.
  Status lookupSuppliedToken();
  // Replaces an owned token that is still valid: revoke-self, then forget it.
  void retireToken(const char* reason);

  HttpTransport& transport_;
  std::string namespace_;
  Clock& clock_;
  Random& random_;
  VaultRetryPolicy retry_;
  VaultAuthenticator* auth_ = nullptr;
  std::optional<SystemTime> deadline_;
  std::optional<VaultToken> token_;
  SystemTime token_obtained_{};
  std::function<void(const std::string&, int)> observer_;
};

// Response shapes are checked field by field, but a JSON type the code did not expect (a
// number where a string belongs) makes nlohmann throw. This turns that into an error value at
// the adapter boundary; the exception text is dropped because it can describe payload values.
// Transient, like a malformed body: a proxy or a Vault upgrade in flight may cause it.
template <class F>
auto guardResponseShape(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nlohmann::json::exception&) {
    return Error{ErrorCode::kUnavailable, what + ": unexpected response shape from Vault"};
  }
}

// The member `key` of a response object, or a null value when `object` is not an object or
// has no such member. Vault's answers are untrusted input, and nlohmann's const operator[] on
// a missing key is undefined behaviour (it dereferences end()); read responses through this.
const nlohmann::json& member(const nlohmann::json& object, const std::string& key);

// A Retry-After value: integer seconds (current Vault) or an HTTP date in IMF-fixdate form
// (older releases), as the wait from `now` (zero for a date already past). nullopt for
// anything else. The caller bounds the wait by its deadline.
std::optional<Duration> parseRetryAfter(const std::string& value, SystemTime now);

// Normalises a mount given as "kube-c1", "auth/kube-c1" or "/auth/kube-c1/" to "kube-c1".
std::string normaliseAuthMount(std::string mount);

}  // namespace cacerts
