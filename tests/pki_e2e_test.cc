// End-to-end: the PKI source against the Vault test server's PKI engine over TLS.
#include <catch2/catch.hpp>

#include "common/x509.h"
#include "tests/support/e2e.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

struct PkiVault {
  E2eVault vault;
  std::string token_file;
  std::string root_pem;

  explicit PkiVault(const std::string& ns = "", std::chrono::hours max_ttl = std::chrono::hours(87600)) {
    auto& s = vault.server();
    REQUIRE(s.enablePki(ns, "pki/mesh", max_ttl));
    auto root = s.pkiGenerateRoot(ns, "pki/mesh", {{"common_name", "Mesh Root A"}, {"ttl", "87600h"}, {"issuer_name", "root-a"}});
    REQUIRE(root);
    root_pem = (*root)["certificate"].get<std::string>() + "\n";
    REQUIRE(s.setPolicy(ns, "signer", {{"pki/mesh/root/sign-intermediate", {"update"}},
                                        {"pki/mesh/issuer/+/sign-intermediate", {"update"}},
                                        {"pki/mesh/intermediate/generate/exported", {"update"}},
                                        {"pki/mesh/issuers", {"list"}},
                                        {"pki/mesh/issuer/+/json", {"read"}}}));
    TokenSpec spec;
    spec.id = std::string(kTokenMarker) + ".pki";
    spec.policies = {"signer"};
    const std::string token = s.createToken(ns, spec);
    token_file = vault.workDir() + "/pki-token";
    writeFile(token_file, token, 0600);
  }
  std::vector<std::string> args(const TempDir& out, const std::vector<std::string>& extra = {}) {
    return concat(concat({"init", "--dir", out.path()}, vault.connectArgs()),
                  concat({"--auth-method", "token", "--token-file", token_file, "--source", "pki", "--pki-sign-path",
                          "pki/mesh/root/sign-intermediate", "--common-name", "istiod cluster1"},
                         extra));
  }
};

CertInfo infoOf(const std::string& pem) {
  auto certs = parseCertificates(pem, "test");
  REQUIRE(certs);
  return certs->front().info();
}

}  // namespace

TEST_CASE("pki init publishes a fresh intermediate whose key never left the pod", "[pki-e2e]") {
  PkiVault p;
  for (const auto& [type, bits, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"ec", "256", "ec-256"}, {"ec", "384", "ec-384"}, {"rsa", "3072", "rsa-3072"}}) {
    DYNAMIC_SECTION("key " << expect) {
      TempDir out;
      p.vault.server().clearRequests();
      const auto r = p.vault.run(p.args(out, {"--key-type", type, "--key-bits", bits, "--uri-sans", "spiffe://cluster.local"}));
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      const CertInfo ca = infoOf(readFile(out.file("ca-cert.pem")));
      CHECK(ca.subject == "CN=istiod cluster1");
      CHECK(ca.is_ca);
      CHECK(ca.path_len == 0);
      CHECK(ca.key_cert_sign);
      CHECK(ca.key_description == expect);
      CHECK(readFile(out.file("root-cert.pem")) == p.root_pem);
      CHECK(readFile(out.file("cert-chain.pem")) == readFile(out.file("ca-cert.pem")) + p.root_pem);
      CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
      // Requests: sign, LIST issuers, one issuer read; no key material in any body. (The
      // supplied token's lookup-self comes first and is not counted.)
      std::vector<std::string> calls;
      for (const auto& req : p.vault.server().requests()) {
        if (req.path == "/v1/auth/token/lookup-self") continue;
        calls.push_back(req.method + " " + req.path);
        CHECK(req.body.find("PRIVATE KEY") == std::string::npos);
      }
      REQUIRE(calls.size() == 3);
      CHECK(calls[0] == "POST /v1/pki/mesh/root/sign-intermediate");
      // LIST goes out as GET ?list=true, which Vault treats identically.
      CHECK(calls[1] == "GET /v1/pki/mesh/issuers");
      CHECK(p.vault.server().requests()[2].query == "list=true");
      CHECK_THAT(calls[2], Catch::StartsWith("GET /v1/pki/mesh/issuer/"));
    }
  }
  p.vault.scanForSecrets();
}

TEST_CASE("pki init signs through the issuer API, in a namespace, with kubernetes auth at a custom mount",
          "[pki-e2e]") {
  PkiVault p("team-a");
  auto& s = p.vault.server();
  REQUIRE(s.enableAuth("team-a", "kube-c1-mesh-auth", "kubernetes"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = {"signer"};
  REQUIRE(s.addKubernetesRole("team-a", "kube-c1-mesh-auth", role));
  TempDir out;
  const auto r = p.vault.run(concat(concat({"init", "--dir", out.path()}, p.vault.connectArgs()),
                                    {"--vault-namespace", "team-a", "--auth-mount", "kube-c1-mesh-auth", "--auth-role",
                                     "istiod", "--jwt-file", p.vault.jwtFile(), "--source", "pki", "--pki-sign-path",
                                     "pki/mesh/issuer/root-a/sign-intermediate"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(readFile(out.file("root-cert.pem")) == p.root_pem);
  CHECK_THAT(infoOf(readFile(out.file("ca-cert.pem"))).subject, Catch::StartsWith("CN=istiod intermediate"));
  p.vault.scanForSecrets();
}

TEST_CASE("pki init with Vault-generated keys warns and still validates", "[pki-e2e]") {
  PkiVault p;
  TempDir out;
  const auto r = p.vault.run(p.args(out, {"--pki-generate-path", "pki/mesh/intermediate/generate/exported"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("event=pki_exported_key"));
  CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  p.vault.scanForSecrets();
}

TEST_CASE("pki trust bundle holds every root of the mount, oldest first, byte-stable", "[pki-e2e]") {
  PkiVault p;
  // Root B is older than root A (imported, notBefore an hour ago), so it must come first
  // whatever order the mount lists its issuers in.
  const auto now = std::chrono::system_clock::now();
  const TestCa b = makeRoot("Mesh Root B", now - std::chrono::hours(1), now + std::chrono::hours(24 * 365));
  auto imported = p.vault.server().pkiImport("", "pki/mesh", b.cert.pem() + b.key.pkcs8Pem());
  REQUIRE(imported);
  const std::string root_b = b.cert.pem();
  const std::string b_id = (*imported)["imported_issuers"][0].get<std::string>();
  TempDir out, again;
  const auto r1 = p.vault.run(p.args(out));
  INFO(r1.err);
  REQUIRE(r1.exit_code == 0);
  CHECK(readFile(out.file("root-cert.pem")) == root_b + p.root_pem);
  const auto r2 = p.vault.run(p.args(again, {"--pki-sign-path", "pki/mesh/issuer/" + b_id + "/sign-intermediate"}));
  INFO(r2.err);
  REQUIRE(r2.exit_code == 0);
  CHECK(readFile(again.file("root-cert.pem")) == readFile(out.file("root-cert.pem")));
  CHECK(infoOf(readFile(again.file("ca-cert.pem"))).issuer == "CN=Mesh Root B");
  p.vault.scanForSecrets();
}

TEST_CASE("pki ttl clamping: warning and real lifetime, or exit 5 below --min-remaining", "[pki-e2e]") {
  PkiVault p("", std::chrono::hours(48));
  TempDir out;
  const auto clamped = p.vault.run(p.args(out, {"--ttl", "720h"}));
  INFO(clamped.err);
  REQUIRE(clamped.exit_code == 0);
  CHECK_THAT(clamped.err, Catch::Contains("event=vault_warning"));
  CHECK_THAT(clamped.err, Catch::Contains("maxTTL"));
  const CertInfo ca = infoOf(readFile(out.file("ca-cert.pem")));
  const auto lifetime = std::chrono::duration_cast<std::chrono::hours>(ca.not_after - std::chrono::system_clock::now());
  CHECK(lifetime <= std::chrono::hours(48));
  CHECK(lifetime >= std::chrono::hours(47));

  const auto before = snapshotTree(out.path());
  const auto refused = p.vault.run(p.args(out, {"--ttl", "720h", "--min-remaining", "72h"}));
  CHECK(refused.exit_code == 5);
  CHECK_THAT(refused.err, Catch::Contains("max_lease_ttl"));
  CHECK_THAT(refused.err, Catch::Contains("--min-remaining"));
  CHECK(snapshotTree(out.path()) == before);
  p.vault.scanForSecrets();
}

TEST_CASE("pki failures leave the previous generation byte-identical", "[pki-e2e]") {
  PkiVault p;
  TempDir out;
  REQUIRE(p.vault.run(p.args(out)).exit_code == 0);
  const auto before = snapshotTree(out.path());
  auto expect = [&](const std::vector<std::string>& extra, int code, const std::string& message) {
    const auto r = p.vault.run(p.args(out, extra));
    INFO(r.err);
    CHECK(r.exit_code == code);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(snapshotTree(out.path()) == before);
  };
  SECTION("permission denied on the sign path names the capability") {
    REQUIRE(p.vault.server().enablePki("", "pki/other", std::chrono::hours(87600)));
    REQUIRE(p.vault.server().pkiGenerateRoot("", "pki/other", {{"common_name", "Other Root"}, {"ttl", "8760h"}}));
    expect({"--pki-sign-path", "pki/other/root/sign-intermediate"}, 3,
           "\"update\" on pki/other/root/sign-intermediate");
  }
  SECTION("sealed Vault: exit 4 after --timeout") {
    p.vault.server().seal(true);
    expect({}, 4, "sealed");
  }
  SECTION("malformed sign response") {
    Fault f;
    f.kind = Fault::Kind::kStatus;
    f.status = 200;
    f.body = R"({"data":{"serial_number":"01"},"warnings":null})";
    f.path_prefix = "pki/mesh/root/sign-intermediate";
    p.vault.server().injectFault(f);
    expect({}, 5, "no data.certificate");
  }
  SECTION("a certificate that does not match the local key") {
    const TestCa unrelated = makeIntermediate(makeRoot("Mesh Root A"), "istiod cluster1");
    Fault f;
    f.kind = Fault::Kind::kStatus;
    f.status = 200;
    f.body = nlohmann::json({{"data", {{"certificate", unrelated.cert.pem()}, {"ca_chain", {unrelated.cert.pem()}},
                                       {"serial_number", "01"}, {"expiration", 0}}}})
                 .dump();
    f.path_prefix = "pki/mesh/root/sign-intermediate";
    p.vault.server().injectFault(f);
    expect({}, 5, "match");
  }
  p.vault.scanForSecrets();
}

}  // namespace cacerts::testing

namespace cacerts::testing {

TEST_CASE("pki init copes with older Vault response shapes", "[pki-e2e]") {
  PkiVault p;
  VaultBehaviour old;
  SECTION("ca_chain without the new certificate, expiration as a string (before 1.11)") {
    old.pki_legacy_ca_chain = true;
    old.pki_expiration_as_string = true;
  }
  SECTION("issuer listing forbidden: falls back to the chain's root and says so") {
    old.pki_unauthenticated_issuer_list = false;
    REQUIRE(p.vault.server().setPolicy("", "signer", {{"pki/mesh/root/sign-intermediate", {"update"}}}));
  }
  p.vault.server().setBehaviour(old);
  TempDir out;
  const auto r = p.vault.run(p.args(out));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(readFile(out.file("root-cert.pem")) == p.root_pem);
  CHECK(readFile(out.file("cert-chain.pem")) == readFile(out.file("ca-cert.pem")) + p.root_pem);
  if (!old.pki_unauthenticated_issuer_list) CHECK_THAT(r.err, Catch::Contains("event=pki_issuers_unlisted"));
  p.vault.scanForSecrets();
}

}  // namespace cacerts::testing
