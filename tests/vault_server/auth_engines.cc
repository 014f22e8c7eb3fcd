#include "tests/vault_server/auth_engines.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <memory>

#include "common/openssl_ptr.h"

namespace cacerts::testing {
namespace {

std::string base64UrlDecode(std::string in) {
  for (char& c : in) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (in.size() % 4 != 0) in += '=';
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return {};
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts padding bytes as zeros; drop them.
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '=' && len > 0; --i) --len;
  out.resize(len);
  return out;
}

std::string base64UrlEncode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

// Vault's StrListContainsGlob: exact, "*", or a trailing-'*' prefix.
bool boundListAllows(const std::vector<std::string>& bound, const std::string& value) {
  return std::any_of(bound.begin(), bound.end(), [&](const std::string& b) {
    if (b == "*" || b == value) return true;
    return !b.empty() && b.back() == '*' && value.rfind(b.substr(0, b.size() - 1), 0) == 0;
  });
}

bool expiredClaims(const json& claims, SystemTime now) {
  const auto exp = claims.find("exp");
  return exp != claims.end() && exp->is_number() && exp->get<double>() < static_cast<double>(unixSeconds(now));
}

std::string claimString(const json& claims, const char* name) {
  const auto it = claims.find(name);
  return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Reply loginReply(EngineContext& ctx, const Call& call, const std::string& type, TokenSpec spec) {
  if (spec.ttl_seconds <= 0 || spec.ttl_seconds > ctx.mount.effectiveMaxTtl()) {
    spec.ttl_seconds = ctx.mount.effectiveMaxTtl();
  }
  // Renewals stop at the role's max TTL, and never pass the mount's (or the system's).
  if (spec.max_ttl_seconds <= 0 || spec.max_ttl_seconds > ctx.mount.effectiveMaxTtl()) {
    spec.max_ttl_seconds = ctx.mount.effectiveMaxTtl();
  }
  spec.renewable = true;
  spec.path = ctx.mount.path + "/login";
  const std::string id = ctx.tokens.create(ctx.ns, std::move(spec), call.now);
  Envelope e;
  e.auth = TokenStore::authBlock(*ctx.tokens.findValid(id, ctx.ns, call.now));
  e.mount_type = type;
  return envelopeReply(e);
}

Reply unsupportedPath() { return errorReply(404, {"unsupported path"}); }

}  // namespace

json decodeJwtClaims(const std::string& jwt) {
  const auto first = jwt.find('.');
  const auto second = first == std::string::npos ? std::string::npos : jwt.find('.', first + 1);
  if (second == std::string::npos) return nullptr;
  const std::string payload = base64UrlDecode(jwt.substr(first + 1, second - first - 1));
  json claims = json::parse(payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return nullptr;
  return claims;
}

std::string makeUnsignedJwt(const json& claims) {
  return base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + base64UrlEncode(claims.dump()) + ".";
}

// ---- kubernetes ----

Reply KubernetesAuth::handle(const Call& call, EngineContext& ctx) {
  if (call.path != "login") return unsupportedPath();
  if (call.method != "POST") return errorReply(405, {"unsupported operation"});
  const std::string role_name = stringParam(call.params, "role");
  const std::string jwt = stringParam(call.params, "jwt");
  if (role_name.empty()) return errorReply(400, {"missing role"});
  if (jwt.empty()) return errorReply(400, {"missing jwt"});
  const auto role_it = roles_.find(role_name);
  if (role_it == roles_.end()) return errorReply(400, {"invalid role name \"" + role_name + "\""});
  const KubernetesRole& role = role_it->second;

  const json claims = decodeJwtClaims(jwt);
  if (claims.is_null()) return errorReply(403, {"permission denied"});
  if (failing_reviews_ != 0) {
    if (failing_reviews_ > 0) --failing_reviews_;
    return errorReply(403, {"permission denied"});
  }
  if (rejected_.count(jwt) || expiredClaims(claims, call.real_now)) {
    return errorReply(403, {"permission denied"});
  }
  std::string name = claimString(claims, "kubernetes.io/serviceaccount/service-account.name");
  std::string ns = claimString(claims, "kubernetes.io/serviceaccount/namespace");
  std::string uid = claimString(claims, "kubernetes.io/serviceaccount/service-account.uid");
  if (const auto k8s = claims.find("kubernetes.io"); k8s != claims.end() && k8s->is_object()) {
    ns = claimString(*k8s, "namespace");
    if (const auto sa = k8s->find("serviceaccount"); sa != k8s->end() && sa->is_object()) {
      name = claimString(*sa, "name");
      uid = claimString(*sa, "uid");
    }
  }
  const std::string sub = claimString(claims, "sub");
  const std::string kSubPrefix = "system:serviceaccount:";
  if ((name.empty() || ns.empty()) && sub.rfind(kSubPrefix, 0) == 0) {
    const std::string rest = sub.substr(kSubPrefix.size());
    const auto colon = rest.find(':');
    if (colon != std::string::npos) {
      ns = rest.substr(0, colon);
      name = rest.substr(colon + 1);
    }
  }
  if (name.empty() || ns.empty()) return errorReply(403, {"permission denied"});
  if (!boundListAllows(role.bound_service_account_names, name)) {
    return errorReply(403, {"service account name not authorized"});
  }
  if (!boundListAllows(role.bound_service_account_namespaces, ns)) {
    return errorReply(403, {"namespace not authorized"});
  }
  TokenSpec spec;
  spec.policies = role.policies;
  spec.ttl_seconds = role.ttl_seconds;
  spec.max_ttl_seconds = role.max_ttl_seconds;
  spec.display_name = "kubernetes-" + ns + "-" + name;
  spec.metadata = {{"role", role.name},
                   {"service_account_name", name},
                   {"service_account_namespace", ns},
                   {"service_account_secret_name", ""},
                   {"service_account_uid", uid}};
  return loginReply(ctx, call, type(), std::move(spec));
}

// ---- approle ----

AppRoleCredentials AppRoleAuth::addRole(AppRole role) {
  if (role.role_id.empty()) role.role_id = newUuid();
  if (role.secret_id.empty()) role.secret_id = newUuid();
  AppRoleCredentials creds{role.role_id, role.secret_id};
  roles_[role.role_id] = std::move(role);
  return creds;
}

Reply AppRoleAuth::handle(const Call& call, EngineContext& ctx) {
  if (call.path != "login") return unsupportedPath();
  if (call.method != "POST") return errorReply(405, {"unsupported operation"});
  const std::string role_id = stringParam(call.params, "role_id");
  const std::string secret_id = stringParam(call.params, "secret_id");
  if (role_id.empty()) return errorReply(400, {"missing role_id"});
  const auto it = roles_.find(role_id);
  if (it == roles_.end()) return errorReply(400, {"invalid role or secret ID"});
  const AppRole& role = it->second;
  if (role.bind_secret_id) {
    if (secret_id.empty()) return errorReply(400, {"missing secret_id"});
    if (secret_id != role.secret_id) return errorReply(400, {"invalid role or secret ID"});
  }
  TokenSpec spec;
  spec.policies = role.policies;
  spec.ttl_seconds = role.ttl_seconds;
  spec.display_name = "approle";
  spec.metadata = {{"role_name", role.name}};
  return loginReply(ctx, call, type(), std::move(spec));
}

// ---- jwt ----

Reply JwtAuth::handle(const Call& call, EngineContext& ctx) {
  if (call.path != "login") return unsupportedPath();
  if (call.method != "POST") return errorReply(405, {"unsupported operation"});
  std::string role_name = stringParam(call.params, "role");
  if (role_name.empty()) role_name = default_role_;
  if (role_name.empty()) return errorReply(400, {"missing role"});
  const auto it = roles_.find(role_name);
  if (it == roles_.end()) return errorReply(400, {"role \"" + role_name + "\" could not be found"});
  const JwtRole& role = it->second;
  const std::string jwt = stringParam(call.params, "jwt");
  if (jwt.empty()) return errorReply(400, {"missing token"});
  const json claims = decodeJwtClaims(jwt);
  if (claims.is_null()) return errorReply(400, {"error validating token: invalid JWT"});
  if (expiredClaims(claims, call.real_now)) {
    return errorReply(400, {"error validating token: token is expired"});
  }
  if (!role.bound_subject.empty() && claimString(claims, "sub") != role.bound_subject) {
    return errorReply(400, {"error validating claims: sub claim does not match bound subject"});
  }
  if (!role.bound_audiences.empty()) {
    std::vector<std::string> aud;
    if (const auto a = claims.find("aud"); a != claims.end()) {
      if (a->is_string()) aud.push_back(a->get<std::string>());
      if (a->is_array()) {
        for (const auto& v : *a) {
          if (v.is_string()) aud.push_back(v.get<std::string>());
        }
      }
    }
    const bool match = std::any_of(aud.begin(), aud.end(), [&](const std::string& a) {
      return std::find(role.bound_audiences.begin(), role.bound_audiences.end(), a) !=
             role.bound_audiences.end();
    });
    if (!match) return errorReply(400, {"error validating claims: aud claim does not match any bound audience"});
  }
  const std::string user = claimString(claims, role.user_claim.c_str());
  if (user.empty()) return errorReply(400, {"claim \"" + role.user_claim + "\" not found in token"});
  TokenSpec spec;
  spec.policies = role.policies;
  spec.ttl_seconds = role.ttl_seconds;
  spec.display_name = "jwt-" + user;
  spec.metadata = {{"role", role.name}};
  return loginReply(ctx, call, type(), std::move(spec));
}

// ---- cert ----

Reply CertAuth::handle(const Call& call, EngineContext& ctx) {
  if (call.path != "login") return unsupportedPath();
  if (call.method != "POST") return errorReply(405, {"unsupported operation"});
  static const char* kInvalid = "invalid certificate or no client certificate supplied";
  if (call.peer_chain.empty()) return errorReply(400, {kInvalid});
  const std::string only = stringParam(call.params, "name");

  for (const auto& [name, role] : roles_) {
    if (!only.empty() && only != name) continue;
    X509StorePtr store(X509_STORE_new());
    for (const auto& c : parseCertChain(role.certificate_pem)) X509_STORE_add_cert(store.get(), c.x509.get());
    X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
    BorrowedX509StackPtr untrusted(sk_X509_new_null());  // entries stay owned by TestCert
    for (std::size_t i = 1; i < call.peer_chain.size(); ++i) {
      sk_X509_push(untrusted.get(), call.peer_chain[i].x509.get());
    }
    X509StoreCtxPtr vctx(X509_STORE_CTX_new());
    if (!vctx || X509_STORE_CTX_init(vctx.get(), store.get(), call.peer_chain[0].x509.get(),
                                     untrusted.get()) != 1) {
      continue;
    }
    if (X509_verify_cert(vctx.get()) != 1) continue;
    TokenSpec spec;
    spec.policies = role.policies;
    spec.ttl_seconds = role.ttl_seconds;
    spec.display_name = "cert-" + name;
    spec.metadata = {{"cert_name", name},
                     {"common_name", call.peer_chain[0].commonName()},
                     {"serial_number", call.peer_chain[0].serialColonHex()}};
    return loginReply(ctx, call, type(), std::move(spec));
  }
  ERR_clear_error();
  return errorReply(400, {kInvalid});
}

}  // namespace cacerts::testing
