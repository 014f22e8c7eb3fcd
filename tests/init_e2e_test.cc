// End-to-end: the real cacerts-agent binary against the Vault test server over TLS.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/e2e.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

std::vector<std::string> initArgs(E2eVault& v, const TempDir& out) {
  return concat(concat({"init", "--dir", out.path()}, v.connectArgs()), {"--auth-method", "token", "--token-file", v.tokenFile()});
}

void requirePublished(const TempDir& out, const E2eVault& v) {
  namespace fs = std::filesystem;
  for (const char* name : {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"}) {
    INFO(name);
    REQUIRE(fs::is_symlink(out.file(name)));
    CHECK(fs::read_symlink(out.file(name)).string() == std::string("..data/") + name);
  }
  CHECK_FALSE(fs::exists(out.file("tls.crt")));
  CHECK(readFile(out.file("ca-cert.pem")) == v.intermediate().cert.pem());
  CHECK(readFile(out.file("root-cert.pem")) == v.root().cert.pem());
  CHECK(readFile(out.file("cert-chain.pem")) == v.intermediate().cert.pem() + v.root().cert.pem());
  struct stat st {};
  REQUIRE(::stat(out.file("ca-key.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

}  // namespace

TEST_CASE("init publishes a KV v2 CA with token auth and check accepts it", "[init-e2e]") {
  E2eVault v;
  TempDir out;
  const auto r = v.run(concat(initArgs(v, out), E2eVault::kvArgs()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  requirePublished(out, v);
  CHECK_THAT(r.err, Catch::Contains("event=published"));

  const auto check = runAgent({"check", "--dir", out.path()});
  INFO(check.out);
  CHECK(check.exit_code == 0);
  CHECK_THAT(check.out, Catch::Contains("would accept it"));
  CHECK_THAT(check.out, Catch::Contains("E2E istiod Intermediate"));
  const auto as_json = runAgent({"check", "--dir", out.path(), "--json"});
  REQUIRE(as_json.exit_code == 0);
  const auto parsed = nlohmann::json::parse(as_json.out);
  CHECK(parsed["accepted"] == true);
  CHECK(parsed["layout"] == "istio");
  CHECK(parsed["ca_cert"]["sha256"].get<std::string>().size() == 95);
  v.scanForSecrets();
}

TEST_CASE("init reads KV v2 with and without data/ in the path, and a pinned version", "[init-e2e]") {
  E2eVault v;
  SECTION("without data/") {
    TempDir out;
    const std::string ref = "vault:secret/istio/cacerts";
    const auto r = v.run(concat(initArgs(v, out), {"--source", "kv", "--kv-cert", ref + "#ca-cert", "--kv-key",
                                                    ref + "#ca-key", "--kv-chain", ref + "#cert-chain", "--kv-root",
                                                    ref + "#root-cert"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
  }
  SECTION("#version picks an older version, cert and key from the same one") {
    // Version 2 is a different CA; pinning version 1 must publish the original.
    const auto now = std::chrono::system_clock::now();
    CertSpec spec;
    spec.path_len = 0;
    spec.not_after = now + std::chrono::hours(24 * 100);
    const TestCa other = makeIntermediate(v.root(), "Other Intermediate", spec);
    v.putCa("istio/cacerts", other.cert.pem(), other.key.pkcs8Pem(), "", v.root().cert.pem());
    TempDir out;
    const std::string ref = "vault:secret/data/istio/cacerts";
    const auto r = v.run(concat(initArgs(v, out), {"--source", "kv", "--kv-cert", ref + "#ca-cert#1", "--kv-key",
                                                    ref + "#ca-key#1", "--kv-chain", ref + "#cert-chain#1",
                                                    "--kv-root", ref + "#root-cert#1"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    TempDir latest;
    const auto r2 = v.run(concat(initArgs(v, latest), {"--source", "kv", "--kv-cert", ref + "#ca-cert", "--kv-key",
                                                        ref + "#ca-key", "--kv-root", ref + "#root-cert"}));
    INFO(r2.err);
    REQUIRE(r2.exit_code == 0);
    CHECK(readFile(latest.file("ca-cert.pem")) == other.cert.pem());
    // No chain given: cert-chain = cert + root.
    CHECK(readFile(latest.file("cert-chain.pem")) == other.cert.pem() + v.root().cert.pem());
  }
  v.scanForSecrets();
}

TEST_CASE("init reads KV v1 and derives the root from the chain", "[init-e2e]") {
  E2eVault v;
  REQUIRE(v.server().enableKv("", "kv1", 1));
  REQUIRE(v.server().setPolicy("", "v1reader", {{"kv1/istio/*", {"read"}}}));
  v.putCa("istio/ca", v.intermediate().cert.pem(), v.intermediate().key.pkcs8Pem(),
          v.intermediate().cert.pem() + v.root().cert.pem(), "", "kv1");
  TempDir out;
  const auto r = v.run(concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                              {"--auth-method", "token", "--token-file", v.tokenFile({"v1reader"}), "--source", "kv",
                               "--kv-cert", "kv1/istio/ca#ca-cert", "--kv-key", "kv1/istio/ca#ca-key", "--kv-chain",
                               "kv1/istio/ca#cert-chain"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  requirePublished(out, v);
  v.scanForSecrets();
}

TEST_CASE("init logs in with kubernetes auth at a custom mount", "[init-e2e]") {
  E2eVault v;
  REQUIRE(v.server().enableAuth("", "kube-c1-mesh-auth", "kubernetes"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = {"reader"};
  REQUIRE(v.server().addKubernetesRole("", "kube-c1-mesh-auth", role));
  const auto base = concat({"init"}, v.connectArgs());
  SECTION("accepted, mount given with the auth/ prefix") {
    TempDir out;
    const auto r = v.run(concat(concat(base, {"--dir", out.path(), "--auth-mount", "auth/kube-c1-mesh-auth",
                                              "--auth-role", "istiod", "--jwt-file", v.jwtFile()}),
                                E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
  }
  SECTION("environment variables configure the same run") {
    TempDir out;
    const auto r = v.run({"init"}, {{"VAULT_ADDR", v.addr()},
                                    {"VAULT_CACERT", v.caFile()},
                                    {"CACERTS_AGENT_AUTH_MOUNT", "kube-c1-mesh-auth"},
                                    {"CACERTS_AGENT_AUTH_ROLE", "istiod"},
                                    {"CACERTS_AGENT_JWT_FILE", v.jwtFile()},
                                    {"CACERTS_AGENT_DIR", out.path()},
                                    {"CACERTS_AGENT_KV_CERT", "vault:secret/data/istio/cacerts#ca-cert"},
                                    {"CACERTS_AGENT_KV_KEY", "vault:secret/data/istio/cacerts#ca-key"},
                                    {"CACERTS_AGENT_KV_CHAIN", "vault:secret/data/istio/cacerts#cert-chain"},
                                    {"CACERTS_AGENT_KV_ROOT", "vault:secret/data/istio/cacerts#root-cert"},
                                    {"CACERTS_AGENT_LOG_FORMAT", "json"}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    // Every log line is one JSON object.
    std::size_t start = 0;
    int lines = 0;
    while (start < r.err.size()) {
      const auto end = r.err.find('\n', start);
      const auto line = r.err.substr(start, end - start);
      if (!line.empty()) {
        ++lines;
        auto parsed = nlohmann::json::parse(line, nullptr, false);
        CHECK_FALSE(parsed.is_discarded());
      }
      start = end == std::string::npos ? r.err.size() : end + 1;
    }
    CHECK(lines > 0);
  }
  SECTION("wrong service account: exit 3 naming the mount and role, nothing written") {
    TempDir out;
    const auto r = v.run(concat(concat(base, {"--dir", out.path(), "--auth-mount", "kube-c1-mesh-auth", "--auth-role",
                                              "istiod", "--jwt-file", v.jwtFile("default", "istio-system")}),
                                E2eVault::kvArgs()));
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.err, Catch::Contains("auth/kube-c1-mesh-auth (role istiod) refused"));
    CHECK(snapshotTree(out.path()).empty());
  }
  v.scanForSecrets();
}

TEST_CASE("init logs in with approle, jwt and cert auth", "[init-e2e]") {
  E2eVault v;
  const auto base = concat({"init"}, v.connectArgs());
  TempDir out;
  SECTION("approle with role_id and secret_id files") {
    REQUIRE(v.server().enableAuth("", "approle-mesh", "approle"));
    AppRole role;
    role.name = "istiod";
    role.policies = {"reader"};
    role.secret_id = kSecretIdMarker;
    auto creds = v.server().addAppRole("", "approle-mesh", role);
    REQUIRE(creds);
    writeFile(out.file("unused"), "");
    const std::string role_id = v.workDir() + "/role-id", secret_id = v.workDir() + "/secret-id";
    writeFile(role_id, creds->role_id + "\n");
    writeFile(secret_id, creds->secret_id + "\n", 0600);
    std::filesystem::remove(out.file("unused"));
    const auto r = v.run(concat(concat(base, {"--dir", out.path(), "--auth-method", "approle", "--auth-mount",
                                              "approle-mesh", "--approle-role-id-file", role_id,
                                              "--approle-secret-id-file", secret_id}),
                                E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    SECTION("a wrong secret_id is an auth error naming the mount") {
      writeFile(secret_id, std::string(kSecretIdMarker) + "-wrong\n", 0600);
      const auto before = snapshotTree(out.path());
      const auto bad = v.run(concat(concat(base, {"--dir", out.path(), "--auth-method", "approle", "--auth-mount",
                                                  "approle-mesh", "--approle-role-id-file", role_id,
                                                  "--approle-secret-id-file", secret_id}),
                                    E2eVault::kvArgs()));
      CHECK(bad.exit_code == 3);
      CHECK_THAT(bad.err, Catch::Contains("auth/approle-mesh"));
      CHECK(snapshotTree(out.path()) == before);
    }
  }
  SECTION("jwt") {
    REQUIRE(v.server().enableAuth("", "jwt", "jwt"));
    JwtRole role;
    role.name = "istiod";
    role.bound_audiences = {"vault"};
    role.policies = {"reader"};
    REQUIRE(v.server().addJwtRole("", "jwt", role));
    const auto r = v.run(concat(concat(base, {"--dir", out.path(), "--auth-method", "jwt", "--auth-role", "istiod",
                                              "--jwt-file", v.jwtFile()}),
                                E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
  }
  SECTION("cert") {
    REQUIRE(v.server().enableAuth("", "cert", "cert"));
    const TestCa client_ca = makeRoot("Client CA");
    CertSpec spec;
    spec.is_ca = false;
    spec.key_cert_sign = false;
    spec.crl_sign = false;
    spec.digital_signature = true;
    spec.ext_key_usage = {"clientAuth"};
    const TestKey client_key = makeKey();
    spec.common_name = "istiod-client";
    const TestCert client = issueCert(spec, client_key, &client_ca.cert, client_ca.key);
    CertRole role;
    role.name = "istiod";
    role.certificate_pem = client_ca.cert.pem();
    role.policies = {"reader"};
    REQUIRE(v.server().addCertRole("", "cert", role));
    const std::string cert_file = v.workDir() + "/client.crt", key_file = v.workDir() + "/client.key";
    writeFile(cert_file, client.pem());
    writeFile(key_file, client_key.pkcs8Pem(), 0600);
    const auto r = v.run(concat(concat(base, {"--dir", out.path(), "--auth-method", "cert", "--vault-client-cert",
                                              cert_file, "--vault-client-key", key_file}),
                                E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
  }
  v.scanForSecrets();
}

TEST_CASE("init works inside a Vault namespace", "[init-e2e]") {
  E2eVault v;
  REQUIRE(v.server().enableKv("team-a", "kv", 2));
  REQUIRE(v.server().setPolicy("team-a", "reader", {{"kv/data/mesh/*", {"read"}}}));
  v.putCa("mesh/ca", v.intermediate().cert.pem(), v.intermediate().key.traditionalPem(),
          v.intermediate().cert.pem() + v.root().cert.pem(), v.root().cert.pem(), "kv", "team-a");
  TokenSpec spec;
  spec.id = std::string(kTokenMarker) + ".ns";
  spec.policies = {"reader"};
  const std::string token = v.server().createToken("team-a", spec);
  TempDir out;
  SECTION("namespace from VAULT_NAMESPACE, token from VAULT_TOKEN") {
    const auto r = v.run(concat(concat({"init", "--dir", out.path(), "--auth-method", "token"}, v.connectArgs()),
                                E2eVault::kvArgs("mesh/ca", "kv")),
                         {{"VAULT_NAMESPACE", "team-a"}, {"VAULT_TOKEN", token}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    bool saw_namespace = false;
    for (const auto& req : v.server().requests()) saw_namespace = saw_namespace || req.namespace_header == "team-a";
    CHECK(saw_namespace);
  }
  SECTION("without the namespace the token is not valid") {
    const auto r = v.run(concat(concat({"init", "--dir", out.path(), "--auth-method", "token"}, v.connectArgs()),
                                E2eVault::kvArgs("mesh/ca", "kv")),
                         {{"VAULT_TOKEN", token}});
    CHECK(r.exit_code == 3);
  }
  v.scanForSecrets();
}

TEST_CASE("init reads a KV mount of a child namespace with a token of the parent namespace", "[init-e2e]") {
  // Vault Enterprise's usual split: the auth method and its policies live in namespace
  // "team", the secret in a mount of the child namespace "team/istio". The parent's policy
  // names the child's mount with the child's relative path.
  E2eVault v;
  auto& s = v.server();
  REQUIRE(s.enableKv("team/istio", "secret", 2));
  REQUIRE(s.setPolicy("team", "istio-reader", {{"istio/secret/data/mesh/*", {"read"}}}));
  v.putCa("mesh/ca", v.intermediate().cert.pem(), v.intermediate().key.traditionalPem(),
          v.intermediate().cert.pem() + v.root().cert.pem(), v.root().cert.pem(), "secret", "team/istio");
  TokenSpec spec;
  spec.id = std::string(kTokenMarker) + ".team";
  spec.policies = {"istio-reader"};
  spec.ttl_seconds = 3600;
  const std::string token = s.createToken("team", spec);
  TempDir out;
  const auto base = concat({"init", "--dir", out.path()}, v.connectArgs());
  // Every secret read went to the child namespace, named by the header or the path.
  const auto readsInChild = [&] {
    int reads = 0;
    for (const auto& req : s.requests()) {
      if (req.path.find("/secret/data/mesh/ca") == std::string::npos || req.path.find("/sys/") != std::string::npos) {
        continue;
      }
      std::string ns = req.namespace_header;
      if (!ns.empty() && ns.back() == '/') ns.pop_back();
      CHECK(ns + "/" + req.path.substr(4) == "team/istio/secret/data/mesh/ca");
      CHECK(req.status == 200);
      ++reads;
    }
    return reads;
  };

  // init with VAULT_TOKEN=token_value, --vault-namespace ns and the secret mesh/ca of mount.
  const auto withToken = [&](const std::string& token_value, const std::string& ns, const std::string& mount) {
    return v.run(concat(concat(base, {"--vault-namespace", ns, "--auth-method", "token"}), E2eVault::kvArgs("mesh/ca", mount)),
                 {{"VAULT_TOKEN", token_value}});
  };

  SECTION("--vault-namespace names the parent, the path starts with the child") {
    const auto r = withToken(token, "team", "istio/secret");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    // Vault reported the mount as team/istio/secret/; the agent placed the path inside it.
    CHECK_THAT(r.err, Catch::Contains("event=kv_mount_detected path=istio/secret/data/mesh/ca mount=istio/secret/ kv_version=2"));
    CHECK(readsInChild() == 1);
  }
  SECTION("--vault-namespace names the child, the token comes from the parent") {
    const auto r = withToken(token, "team/istio", "secret");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    CHECK(readsInChild() == 1);
  }
  SECTION("kubernetes login in the parent, secret in the child, the login token revoked after") {
    v.enableKubernetesIstiodRole({"istio-reader"}, "team");
    const auto r = v.run(concat(concat(base, {"--vault-namespace", "team", "--auth-method", "kubernetes",
                                              "--auth-role", "istiod", "--jwt-file", v.jwtFile()}),
                                E2eVault::kvArgs("mesh/ca", "istio/secret")));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    requirePublished(out, v);
    CHECK(readsInChild() == 1);
    CHECK(s.liveTokens() == 0);
  }
  SECTION("a token of the child namespace is refused in the parent's mount") {
    REQUIRE(s.enableKv("team", "secret", 2));
    v.putCa("mesh/ca", v.intermediate().cert.pem(), v.intermediate().key.traditionalPem(),
            v.intermediate().cert.pem() + v.root().cert.pem(), v.root().cert.pem(), "secret", "team");
    REQUIRE(s.setPolicy("team/istio", "reader", {{"secret/data/mesh/*", {"read"}}}));
    TokenSpec child_spec = spec;
    child_spec.id = std::string(kTokenMarker) + ".child";
    child_spec.policies = {"reader"};
    const std::string child = s.createToken("team/istio", child_spec);
    const auto r = withToken(child, "team", "secret");
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK_FALSE(std::filesystem::exists(out.file("ca-cert.pem")));
  }
  v.scanForSecrets();
}

TEST_CASE("init publishes the tls layout and never both layouts", "[init-e2e]") {
  E2eVault v;
  TempDir out;
  auto r = v.run(concat(initArgs(v, out), E2eVault::kvArgs()));
  REQUIRE(r.exit_code == 0);
  r = v.run(concat(concat(initArgs(v, out), E2eVault::kvArgs()), {"--layout", "tls"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  namespace fs = std::filesystem;
  CHECK(fs::exists(out.file("tls.crt")));
  CHECK(fs::exists(out.file("tls.key")));
  CHECK(readFile(out.file("ca.crt")) == v.root().cert.pem());
  CHECK(readFile(out.file("tls.crt")) == v.intermediate().cert.pem());
  for (const char* gone : {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"}) {
    INFO(gone);
    CHECK_FALSE(fs::exists(fs::symlink_status(out.file(gone))));
  }
  const auto check = runAgent({"check", "--dir", out.path()});
  CHECK(check.exit_code == 0);
  v.scanForSecrets();
}

}  // namespace cacerts::testing

namespace cacerts::testing {

TEST_CASE("republishing identical material changes nothing, byte for byte", "[init-e2e]") {
  E2eVault v;
  TempDir out;
  const auto args = concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                           concat({"--auth-method", "token", "--token-file", v.tokenFile()}, E2eVault::kvArgs()));
  REQUIRE(v.run(args).exit_code == 0);
  const auto first = snapshotTree(out.path());
  const auto again = v.run(args);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.err, Catch::Contains("changed=false"));
  CHECK(snapshotTree(out.path()) == first);
  v.scanForSecrets();
}

TEST_CASE("init verifies Vault's certificate against a server-name override", "[init-e2e]") {
  E2eVault v;
  TempDir out;
  const auto base = concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                           concat({"--auth-method", "token", "--token-file", v.tokenFile()}, E2eVault::kvArgs()));
  SECTION("a name the certificate carries is accepted") {
    const auto r = v.run(concat(base, {"--vault-tls-server-name", "vault.test"}));
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
  SECTION("a name it does not carry is refused as a configuration error") {
    const auto r = v.run(concat(base, {"--vault-tls-server-name", "not-vault.example"}));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--vault-tls-server-name"));
    CHECK(snapshotTree(out.path()).empty());
  }
  SECTION("VAULT_SKIP_VERIFY connects without verification and warns loudly") {
    const TestCa other = makeRoot("Not Vault's CA");
    const std::string wrong = v.workDir() + "/wrong-ca.pem";
    writeFile(wrong, other.cert.pem());
    const auto r = v.run(concat(base, {"--vault-cacert", wrong}), {{"VAULT_SKIP_VERIFY", "true"}});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("event=insecure_tls"));
    CHECK(v.run(concat(base, {"--vault-cacert", wrong}), {{"VAULT_SKIP_VERIFY", "maybe"}}).exit_code == 2);
  }
  v.scanForSecrets();
}

}  // namespace cacerts::testing
