// Auth methods: kubernetes, approle, jwt and cert, each answering POST <mount>/login with
// the §3.1 auth block or Vault's error statuses.
//
// Simplifications (this is a test double, not Vault):
// * kubernetes and jwt do NOT check JWT signatures and do not call a TokenReview API. The
//   payload is base64url-decoded and its claims are trusted: the service account comes from
//   "kubernetes.io/serviceaccount/service-account.name" and ".../namespace" (secret-based
//   tokens) or from the projected form {"kubernetes.io": {"namespace", "serviceaccount":
//   {"name"}}} or "sub" = "system:serviceaccount:<ns>:<name>". An "exp" in the past is
//   rejected with 403 as TokenReview would. Tests can list JWTs to reject outright (403), to
//   emulate a failed review, or make the next N reviews fail (403) as an unreachable API does.
// * cert matches the TLS client certificate against each role's PEM (CA or the certificate
//   itself, partial chains allowed) at the current time; no CRL or OCSP.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/vault_server/engine.h"

namespace cacerts::testing {

struct KubernetesRole {
  std::string name{};
  std::vector<std::string> bound_service_account_names{};       // "*" allowed
  std::vector<std::string> bound_service_account_namespaces{};  // "*" allowed
  std::vector<std::string> policies{};
  std::int64_t ttl_seconds = 3600;
  std::int64_t max_ttl_seconds = 0;
};

struct AppRole {
  std::string name{};
  std::vector<std::string> policies{};
  std::int64_t ttl_seconds = 3600;
  bool bind_secret_id = true;
  std::string role_id{};    // empty: generated
  std::string secret_id{};  // empty: generated
};

struct AppRoleCredentials {
  std::string role_id{}, secret_id{};
};

struct JwtRole {
  std::string name{};
  std::string bound_subject{};                 // empty: any
  std::vector<std::string> bound_audiences{};  // empty: any
  std::string user_claim = "sub";
  std::vector<std::string> policies{};
  std::int64_t ttl_seconds = 3600;
};

struct CertRole {
  std::string name{};
  std::string certificate_pem{};  // trusted CA(s) or the client certificate itself
  std::vector<std::string> policies{};
  std::int64_t ttl_seconds = 3600;
};

// Decodes the claims of a compact JWS without checking its signature; null on failure.
json decodeJwtClaims(const std::string& jwt);
// An unsigned JWT ("alg":"none" header, empty signature) carrying claims, for tests.
std::string makeUnsignedJwt(const json& claims);

class KubernetesAuth final : public Engine {
 public:
  std::string type() const override { return "kubernetes"; }
  bool unauthenticated(const Call& c, const VaultBehaviour&) const override { return c.path == "login"; }
  Reply handle(const Call& call, EngineContext& ctx) override;
  void addRole(KubernetesRole role) { roles_[role.name] = std::move(role); }
  void rejectJwt(const std::string& jwt) { rejected_.insert(jwt); }
  // The next n logins that reach the TokenReview (a known role, a decodable JWT) fail with
  // 403 "permission denied", as the plugin answers when the Kubernetes API cannot be reached
  // (path_login.go); -1: every one, until set again.
  void failTokenReviews(int n) { failing_reviews_ = n; }

 private:
  std::map<std::string, KubernetesRole> roles_;
  std::set<std::string> rejected_;
  int failing_reviews_ = 0;
};

class AppRoleAuth final : public Engine {
 public:
  std::string type() const override { return "approle"; }
  bool unauthenticated(const Call& c, const VaultBehaviour&) const override { return c.path == "login"; }
  Reply handle(const Call& call, EngineContext& ctx) override;
  AppRoleCredentials addRole(AppRole role);

 private:
  std::map<std::string, AppRole> roles_;  // by role_id
};

class JwtAuth final : public Engine {
 public:
  std::string type() const override { return "jwt"; }
  bool unauthenticated(const Call& c, const VaultBehaviour&) const override { return c.path == "login"; }
  Reply handle(const Call& call, EngineContext& ctx) override;
  void addRole(JwtRole role) { roles_[role.name] = std::move(role); }
  void setDefaultRole(std::string name) { default_role_ = std::move(name); }

 private:
  std::map<std::string, JwtRole> roles_;
  std::string default_role_;
};

class CertAuth final : public Engine {
 public:
  std::string type() const override { return "cert"; }
  bool unauthenticated(const Call& c, const VaultBehaviour&) const override { return c.path == "login"; }
  Reply handle(const Call& call, EngineContext& ctx) override;
  void addRole(CertRole role) { roles_[role.name] = std::move(role); }

 private:
  std::map<std::string, CertRole> roles_;
};

}  // namespace cacerts::testing
