// VaultCore: the protocol half of the Vault test double, without any socket. It holds
// namespaces, mounts, policies and tokens, resolves each request (namespace header and path
// prefix, longest-prefix mount, token, ACL) and dispatches to the mounted engine or to the
// sys/ and auth/token/ endpoints. Thread-safe: one mutex serialises requests and setup calls.
//
// Setup calls take the namespace first ("" is the root namespace; "team-a" or "a/b" are
// children, created on first use) and return a Status/Result that names the misuse (unknown
// mount, wrong type) so a test fails with a clear message.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "tests/vault_server/auth_engines.h"
#include "tests/vault_server/engine.h"
#include "tests/vault_server/kv_engine.h"
#include "tests/vault_server/pki_engine.h"
#include "tests/vault_server/policy.h"

namespace cacerts::testing {

struct IncomingRequest {
  std::string method{};  // as received: GET, HEAD, POST, PUT, DELETE, PATCH
  std::string path{};    // after "/v1/", without the query string
  std::vector<std::pair<std::string, std::string>> query{};
  std::string body{};
  std::string token{};             // X-Vault-Token, or the Authorization: Bearer value
  std::string namespace_header{};  // X-Vault-Namespace
  bool request_header = false;   // X-Vault-Request: true was sent
  std::string target{};            // original path and query, for standby redirects
  std::vector<TestCert> peer_chain{};  // TLS client certificate chain, leaf first
};

class VaultCore {
 public:
  // root_token empty: a random "hvs." token.
  VaultCore(VaultBehaviour behaviour, std::string root_token, bool require_request_header);

  Reply handle(const IncomingRequest& request);

  std::string rootToken() const { return root_token_; }
  void setBehaviour(const VaultBehaviour& behaviour);
  void setRequireRequestHeader(bool on);

  // ---- namespaces, policies, tokens ----
  void createNamespace(const std::string& ns);
  Status setPolicy(const std::string& ns, const std::string& name, std::vector<PolicyRule> rules);
  // A token in ns; "default" is added to the policies.
  std::string createToken(const std::string& ns, TokenSpec spec);
  // Unexpired, unrevoked tokens; logins_only: only tokens minted by auth-method logins
  // (what a client can leak), not the root token or tokens created by setup calls.
  std::size_t liveTokens(bool logins_only = true) const;
  // Revokes a token as `vault token revoke` does; false when it was unknown.
  bool revokeToken(const std::string& token);
  // Moves the server clock used for token expiry and KV deletion times (not certificates).
  void advanceClock(Duration d);

  // ---- mounts ----
  Status enableKv(const std::string& ns, const std::string& mount, int version);
  Result<int> kvPut(const std::string& ns, const std::string& mount, const std::string& path,
                    const json& data);
  // Soft delete effective at `at` (default: now on the server clock).
  Status kvDeleteVersion(const std::string& ns, const std::string& mount, const std::string& path,
                         int version, std::optional<SystemTime> at = std::nullopt);
  Status kvDestroyVersion(const std::string& ns, const std::string& mount, const std::string& path,
                          int version);
  // type: kubernetes, approle, jwt, cert. mount with or without the "auth/" prefix.
  Status enableAuth(const std::string& ns, const std::string& mount, const std::string& type);
  Status addKubernetesRole(const std::string& ns, const std::string& mount, KubernetesRole role);
  // Makes kubernetes logins with exactly this JWT fail with 403, as a failed TokenReview.
  Status rejectKubernetesJwt(const std::string& ns, const std::string& mount, const std::string& jwt);
  // The next n kubernetes logins at mount fail their TokenReview with 403 (-1: all of them).
  Status failKubernetesTokenReviews(const std::string& ns, const std::string& mount, int n);
  Result<AppRoleCredentials> addAppRole(const std::string& ns, const std::string& mount, AppRole role);
  Status addJwtRole(const std::string& ns, const std::string& mount, JwtRole role);
  Status setJwtDefaultRole(const std::string& ns, const std::string& mount, const std::string& role);
  Status addCertRole(const std::string& ns, const std::string& mount, CertRole role);
  Status enablePki(const std::string& ns, const std::string& mount, Duration max_lease_ttl = Duration{0});
  // Mount TTL tuning (sys/mounts/<path>/tune); zero keeps the current value.
  Status tuneMount(const std::string& ns, const std::string& mount, Duration max_lease_ttl,
                   Duration default_lease_ttl = Duration{0});

  // ---- PKI (same semantics as the HTTP endpoints) ----
  // type "internal" or "exported"; params as for <mount>/root/generate/<type>. Returns data.
  Result<json> pkiGenerateRoot(const std::string& ns, const std::string& mount, const json& params,
                               const std::string& type = "internal");
  // <mount>/config/ca with a PEM bundle of CA certificates and optional keys. Returns data.
  Result<json> pkiImport(const std::string& ns, const std::string& mount, const std::string& pem_bundle);
  Status pkiSetDefaultIssuer(const std::string& ns, const std::string& mount, const std::string& ref);
  // As DELETE <mount>/issuer/<ref>.
  Status pkiDeleteIssuer(const std::string& ns, const std::string& mount, const std::string& ref);
  // Issuer certificate and key (key empty when Vault holds none).
  Result<TestCa> pkiIssuer(const std::string& ns, const std::string& mount, const std::string& ref);
  // Certificates the mount has signed so far (Vault stores each one it signs).
  Result<std::size_t> pkiIssuedCount(const std::string& ns, const std::string& mount);
  // Keys the mount holds.
  Result<std::size_t> pkiKeyCount(const std::string& ns, const std::string& mount);
  // HashiCorp's tutorial layout, built through the HTTP API as the vault CLI would: a root in
  // root_mount, and an intermediate in int_mount generated there (internal key), signed by
  // root_mount/root/sign-intermediate and set-signed WITHOUT its root, so int_mount has no
  // self-signed issuer. Both mounts are enabled here with max_lease_ttl. Returns the root
  // certificate PEM (with trailing newline).
  Result<std::string> pkiSeedTwoMount(const std::string& ns, const std::string& root_mount,
                                      const std::string& int_mount, Duration max_lease_ttl);

  // ---- server state ----
  void seal(bool sealed);
  // Standby: sys/health answers 429 and everything else 307 to active_addr + the same path
  // and query (503 "no active Vault instance found" when active_addr is empty).
  void setStandby(bool standby, const std::string& active_addr = "");

 private:
  struct Namespace {
    std::map<std::string, Mount> mounts;  // by path without trailing '/'
    std::map<std::string, Policy> policies;
  };
  struct Resolved {
    std::string ns;        // the namespace the request runs in
    std::string relative;  // the path inside it
  };

  SystemTime clockNow() const;
  Namespace& nsRef(const std::string& ns);
  std::optional<Resolved> resolveNamespace(const std::string& header, const std::string& path) const;
  Mount* findMount(Namespace& ns, const std::string& path, std::string& sub);
  Result<Mount*> mountFor(const std::string& ns, const std::string& mount, const std::string& type);
  Status addMount(const std::string& ns, std::string path, std::unique_ptr<Engine> engine);
  template <class T>
  Result<T*> engineFor(const std::string& ns, const std::string& mount);
  std::vector<const Policy*> policiesOf(const TokenEntry& token);
  // What token's policies grant on path of namespace ns (Vault's full-path ACL rule).
  unsigned capabilitiesOn(const TokenEntry& token, const std::string& ns, const std::string& path);
  Reply denied(const std::string& token) const;

  Reply health(const IncomingRequest& request) const;
  Reply sys(const Resolved& where, const Call& call, const std::string& token);
  // GET sys/mounts/<mount>/tune: the mount's effective TTLs (the caller checked the ACL).
  Reply tuneRead(const std::string& ns, const std::string& mount);
  Reply uiMounts(const Resolved& where, const std::string& target, const std::string& token);
  Reply tokenSelf(const Resolved& where, const Call& call, const std::string& token);

  mutable std::mutex mu_;
  VaultBehaviour behaviour_;
  std::string root_token_;
  bool require_request_header_;
  bool sealed_ = false;
  bool standby_ = false;
  std::string active_addr_;
  Duration clock_offset_{0};
  std::map<std::string, Namespace> namespaces_;
  TokenStore tokens_;
};

}  // namespace cacerts::testing
