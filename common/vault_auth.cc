#include "common/vault_auth.h"

#include <fcntl.h>

#include <cctype>
#include <optional>
#include <sstream>

#include "common/bounded_read.h"

namespace cacerts {
namespace {

// kubernetes and jwt share the request shape: {role, jwt}.
class JwtLoginAuthenticator final : public VaultAuthenticator {
 public:
  JwtLoginAuthenticator(std::string method, std::string mount, std::string role, std::string jwt_file)
      : method_(std::move(method)), mount_(std::move(mount)), role_(std::move(role)), jwt_file_(std::move(jwt_file)) {}

  Result<VaultToken> login(VaultClient& client) override {
    ASSIGN_OR_RETURN(Secret jwt, readCredentialFile(jwt_file_, "--jwt-file"));
    nlohmann::json body = {{"role", role_}, {"jwt", std::string(jwt.view())}};
    Result<VaultToken> t = client.loginWith(mount_, body, describe(), deniedRetry());
    wipeJson(body);
    return t;
  }
  std::string describe() const override {
    return method_ + " login at auth/" + normaliseAuthMount(mount_) + " (role " + role_ + ")";
  }

 private:
  // Kubernetes auth also answers 403 when Vault could not reach the Kubernetes API for the
  // TokenReview: retried for about 30 s (within --timeout) before it counts as a refusal.
  VaultClient::LoginRetry deniedRetry() const {
    if (method_ != "kubernetes") return {};
    return {std::chrono::seconds(30),
            "either the role does not bind this service account (bound service account names and namespaces, "
            "audience) or Vault could not review the token with the Kubernetes API (TokenReview: Vault's network "
            "path to the API server, token_reviewer_jwt, kubernetes_ca_cert)"};
  }
  static void wipeJson(nlohmann::json& body) {
    for (auto& [key, value] : body.items()) {
      if (value.is_string()) {
        auto& s = value.get_ref<std::string&>();
        cleanseMemory(s.data(), s.size());
      }
    }
  }
  std::string method_, mount_, role_, jwt_file_;
};

class AppRoleAuthenticator final : public VaultAuthenticator {
 public:
  AppRoleAuthenticator(std::string mount, std::string role_id, std::string role_id_file, std::string secret_id_file)
      : mount_(std::move(mount)), role_id_(std::move(role_id)), role_id_file_(std::move(role_id_file)),
        secret_id_file_(std::move(secret_id_file)) {}

  Result<VaultToken> login(VaultClient& client) override {
    std::string role_id = role_id_;
    if (role_id.empty()) {
      ASSIGN_OR_RETURN(Secret from_file, readCredentialFile(role_id_file_, "--approle-role-id-file"));
      role_id = std::string(from_file.view());
    }
    nlohmann::json body = {{"role_id", role_id}};
    if (!secret_id_file_.empty()) {
      ASSIGN_OR_RETURN(Secret secret_id, readCredentialFile(secret_id_file_, "--approle-secret-id-file"));
      body["secret_id"] = std::string(secret_id.view());
    }
    Result<VaultToken> t = client.loginWith(mount_, body, describe());
    if (body.contains("secret_id")) {
      auto& s = body["secret_id"].get_ref<std::string&>();
      cleanseMemory(s.data(), s.size());
    }
    return t;
  }
  std::string describe() const override {
    return "approle login at auth/" + normaliseAuthMount(mount_);
  }

 private:
  std::string mount_, role_id_, role_id_file_, secret_id_file_;
};

// The credential is the TLS client certificate presented in the handshake.
class CertAuthenticator final : public VaultAuthenticator {
 public:
  CertAuthenticator(std::string mount, std::string name) : mount_(std::move(mount)), name_(std::move(name)) {}
  Result<VaultToken> login(VaultClient& client) override {
    nlohmann::json body = nlohmann::json::object();
    if (!name_.empty()) body["name"] = name_;
    return client.loginWith(mount_, body, describe());
  }
  std::string describe() const override {
    return "cert login at auth/" + normaliseAuthMount(mount_) + (name_.empty() ? "" : " (role " + name_ + ")");
  }

 private:
  std::string mount_, name_;
};

class TokenAuthenticator final : public VaultAuthenticator {
 public:
  TokenAuthenticator(std::string token_file, Secret token) : token_file_(std::move(token_file)), token_(std::move(token)) {}
  Result<VaultToken> login(VaultClient&) override {
    VaultToken t;
    if (!token_file_.empty()) {
      ASSIGN_OR_RETURN(t.token, readCredentialFile(token_file_, "--token-file"));
      last_read_ = Secret(t.token.view());
    } else {
      t.token = token_;
    }
    // The user's token: its TTL comes from lookup-self, and the agent never revokes it.
    t.needs_lookup = true;
    return t;
  }
  bool tokenSourceChanged() override {
    if (token_file_.empty()) return false;
    // Unreadable or empty mid-rewrite: keep the token in hand until the file is whole.
    Result<Secret> now = readCredentialFile(token_file_, "--token-file");
    return now && !(*now == last_read_);
  }
  std::string describe() const override {
    return token_file_.empty() ? "token from VAULT_TOKEN" : "token from " + token_file_;
  }

 private:
  std::string token_file_;
  Secret token_;
  Secret last_read_;
};

}  // namespace

Result<Secret> readCredentialFile(const std::string& path, const std::string& option) {
  if (path.empty()) return Error{ErrorCode::kInvalidArgument, option + " is required"};
  // Bounded and non-blocking: a FIFO or /dev/zero mounted by mistake must not hang or
  // exhaust the agent.
  Result<std::optional<Secret>> content = readBoundedFile(AT_FDCWD, path, path);
  if (!content) return Error{ErrorCode::kInvalidArgument, option + ": " + content.error().message};
  if (!*content) return Error{ErrorCode::kInvalidArgument, option + ": cannot read " + path + " (no such file)"};
  const std::string_view raw = (*content)->view();
  std::size_t begin = 0, end = raw.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(raw[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(raw[end - 1]))) --end;
  Secret out(raw.substr(begin, end - begin));
  if (out.empty()) return Error{ErrorCode::kInvalidArgument, option + ": " + path + " is empty"};
  return out;
}

Result<std::unique_ptr<VaultAuthenticator>> makeAuthenticator(const AuthSettings& s) {
  const std::string mount = s.mount.empty() ? s.method : s.mount;
  if (s.method == "kubernetes" || s.method == "jwt") {
    if (s.role.empty() && s.method == "kubernetes") {
      return Error{ErrorCode::kInvalidArgument, "--auth-role (CACERTS_AGENT_AUTH_ROLE) is required for kubernetes auth"};
    }
    return std::unique_ptr<VaultAuthenticator>(std::make_unique<JwtLoginAuthenticator>(s.method, mount, s.role, s.jwt_file));
  }
  if (s.method == "approle") {
    if (s.role_id.empty() && s.role_id_file.empty()) {
      return Error{ErrorCode::kInvalidArgument, "approle auth needs --approle-role-id or --approle-role-id-file"};
    }
    return std::unique_ptr<VaultAuthenticator>(
        std::make_unique<AppRoleAuthenticator>(mount, s.role_id, s.role_id_file, s.secret_id_file));
  }
  if (s.method == "cert") {
    return std::unique_ptr<VaultAuthenticator>(std::make_unique<CertAuthenticator>(mount, s.role));
  }
  if (s.method == "token") {
    if (s.token_file.empty() && s.token.empty()) {
      return Error{ErrorCode::kInvalidArgument, "token auth needs --token-file or VAULT_TOKEN"};
    }
    return std::unique_ptr<VaultAuthenticator>(std::make_unique<TokenAuthenticator>(s.token_file, s.token));
  }
  return Error{ErrorCode::kInvalidArgument,
               "--auth-method must be one of kubernetes, approle, jwt, cert, token (got \"" + s.method + "\")"};
}

}  // namespace cacerts
