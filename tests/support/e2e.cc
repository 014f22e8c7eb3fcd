#include "tests/support/e2e.h"

#include <catch2/catch.hpp>
#include <stdexcept>

#include "tests/support/output_capture.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string keyBodyLine(const std::string& key_pem) {
  const auto first = key_pem.find('\n') + 1;
  return key_pem.substr(first, key_pem.find('\n', first) - first);
}

E2eVault::E2eVault() {
  auto started = VaultTestServer::start();
  if (!started) throw std::runtime_error("vault test server: " + started.error().message);
  server_ = std::move(*started);
  auto ca = server_->writeCaFile(work_.path());
  if (!ca) throw std::runtime_error("vault test server CA: " + ca.error().message);
  ca_file_ = *ca;

  const auto now = std::chrono::system_clock::now();
  root_ = makeRoot("E2E Root", now - std::chrono::hours(1), now + std::chrono::hours(24 * 3650));
  CertSpec spec;
  spec.path_len = 0;
  spec.not_before = now - std::chrono::hours(1);
  spec.not_after = now + std::chrono::hours(24 * 365);
  inter_ = makeIntermediate(root_, "E2E istiod Intermediate", spec);

  auto must = [](Status s, const char* what) {
    if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message);
  };
  must(server_->enableKv("", "secret", 2), "enable kv");
  must(server_->setPolicy("", "reader", {{"secret/data/istio/*", {"read"}}, {"secret/metadata/istio/*", {"read"}}}),
       "policy");
  putCa("istio/cacerts", inter_.cert.pem(), inter_.key.traditionalPem(), inter_.cert.pem() + root_.cert.pem(),
        root_.cert.pem());
  recordPlanted({kTokenMarker, kSecretIdMarker, kJwtMarkerClaim, keyBodyLine(inter_.key.traditionalPem()),
                 keyBodyLine(root_.key.traditionalPem())});
}

void E2eVault::putCa(const std::string& path, const std::string& cert, const std::string& key,
                     const std::string& chain, const std::string& root, const std::string& mount,
                     const std::string& ns) {
  json data = {{"ca-cert", cert}, {"ca-key", key}};
  if (!chain.empty()) data["cert-chain"] = chain;
  if (!root.empty()) data["root-cert"] = root;
  auto r = server_->kvPut(ns, mount, path, data);
  if (!r) throw std::runtime_error("kv put: " + r.error().message);
}

std::string E2eVault::tokenFile(const std::vector<std::string>& policies) {
  TokenSpec spec;
  spec.id = std::string(kTokenMarker) + "." + std::to_string(++files_);
  spec.policies = policies;
  spec.ttl_seconds = 3600;
  const std::string token = server_->createToken("", spec);
  const std::string path = work_.file("token-" + std::to_string(files_));
  writeFile(path, token + "\n", 0600);
  recordPlanted({token});
  return path;
}

void E2eVault::enableKubernetesIstiodRole(const std::vector<std::string>& policies, const std::string& ns,
                                          const std::string& mount) {
  REQUIRE(server_->enableAuth(ns, mount, "kubernetes"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = policies;
  REQUIRE(server_->addKubernetesRole(ns, mount, role));
}

std::string E2eVault::jwtFile(const std::string& sa, const std::string& ns) {
  const json claims = {{"iss", "kubernetes/serviceaccount"},
                       {"sub", "system:serviceaccount:" + ns + ":" + sa},
                       {"aud", "vault"},
                       {"marker", kJwtMarkerClaim},
                       {"kubernetes.io", {{"namespace", ns}, {"serviceaccount", {{"name", sa}, {"uid", "u-1"}}}}}};
  const std::string path = work_.file("jwt-" + std::to_string(++files_));
  const std::string jwt = makeUnsignedJwt(claims);
  writeFile(path, jwt, 0600);
  recordPlanted({jwt});
  return path;
}

std::vector<std::string> E2eVault::connectArgs() const {
  return {"--vault-addr", addr(), "--vault-cacert", ca_file_, "--timeout", "3s", "--log-level", "debug"};
}

std::vector<std::string> E2eVault::kvArgs(const std::string& path, const std::string& mount) {
  const std::string ref = "vault:" + mount + "/data/" + path;
  return {"--source", "kv", "--kv-cert", ref + "#ca-cert", "--kv-key", ref + "#ca-key",
          "--kv-chain", ref + "#cert-chain", "--kv-root", ref + "#root-cert"};
}

ProcessResult E2eVault::run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  ProcessResult r = runAgent(args, env);
  runs_.push_back(r);
  return r;
}

// "-----BEGIN X" or "-----END X" with X an upper-case letter: a PEM boundary line, as
// opposed to an error message that merely names the syntax ("-----BEGIN/-----END blocks").
bool containsPemArmour(const std::string& text) {
  for (const std::string marker : {"-----BEGIN ", "-----END "}) {
    for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
      const auto next = at + marker.size();
      if (next < text.size() && text[next] >= 'A' && text[next] <= 'Z') return true;
    }
  }
  return false;
}

void E2eVault::scanForSecrets() const {
  const std::string key_line = keyBodyLine(inter_.key.traditionalPem());
  for (const auto& r : runs_) {
    for (const std::string* text : {&r.out, &r.err}) {
      CHECK(text->find(kTokenMarker) == std::string::npos);
      CHECK(text->find(kSecretIdMarker) == std::string::npos);
      CHECK(text->find(kJwtMarkerClaim) == std::string::npos);
      // No PEM armour of any kind ("-----BEGIN CERTIFICATE", "-----END EC PRIVATE KEY", ...).
      CHECK_FALSE(containsPemArmour(*text));
      CHECK(text->find(key_line) == std::string::npos);
      CHECK(text->find("eyJ") == std::string::npos);  // no JWT (base64url of '{"')
    }
  }
}

void writeIstioCaSecret(const TempDir& dir, const TestCa& ca) {
  writeFile(dir.file("ca-cert.pem"), ca.cert.pem());
  writeFile(dir.file("ca-key.pem"), ca.key.pkcs8Pem(), 0600);
  writeFile(dir.file("cert-chain.pem"), "");
  writeFile(dir.file("root-cert.pem"), "");
}

}  // namespace cacerts::testing
