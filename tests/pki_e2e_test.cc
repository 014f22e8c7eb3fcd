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
                                        {"pki/mesh/key/+", {"delete"}},
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

std::size_t countRequestsTo(const VaultTestServer& server, const std::string& method, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& req : server.requests()) n += req.method == method && req.path.rfind(prefix, 0) == 0;
  return n;
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
      // Requests: the trust bundle and the signer first (nothing is signed that would be
      // rejected), then the sign; no key material in any body. (The supplied token's
      // lookup-self comes first and is not counted.)
      std::vector<std::string> calls;
      for (const auto& req : p.vault.server().requests()) {
        if (req.path == "/v1/auth/token/lookup-self") continue;
        calls.push_back(req.method + " " + req.path);
        CHECK(req.body.find("PRIVATE KEY") == std::string::npos);
      }
      REQUIRE(calls.size() == 5);
      // The trust set (and with it the plan) first. LIST goes out as GET ?list=true, which
      // Vault treats identically.
      CHECK(calls[0] == "GET /v1/pki/mesh/issuers");
      CHECK(p.vault.server().requests()[1].query == "list=true");
      CHECK_THAT(calls[1], Catch::StartsWith("GET /v1/pki/mesh/issuer/"));
      // One root: the default issuer signs, through the path the policy grants.
      CHECK(calls[2] == "GET /v1/pki/mesh/issuer/default/json");
      // The mount is tuned: its max_lease_ttl comes with the mount lookup, no tune read.
      CHECK(calls[3] == "GET /v1/sys/internal/ui/mounts/pki/mesh");
      CHECK(calls[4] == "POST /v1/pki/mesh/root/sign-intermediate");
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

TEST_CASE("pki init with Vault-generated keys warns, still validates and leaves no key in Vault", "[pki-e2e]") {
  PkiVault p;
  const auto keys_before = p.vault.server().pkiKeyCount("", "pki/mesh");
  REQUIRE(keys_before);
  TempDir out;
  // rsa without --key-bits: 3072 as with a local key, not Vault's 2048 for key_bits 0.
  const auto r = p.vault.run(
      p.args(out, {"--pki-generate-path", "pki/mesh/intermediate/generate/exported", "--key-type", "rsa",
                   // The test server makes an RSA-3072 key inside the request: on a loaded
                   // machine that alone can outlast a short request budget.
                   "--timeout", "60s"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("event=pki_exported_key"));
  // Vault's AIA warning comes with the generate and with the sign: said once, at info.
  const auto aia = r.err.find("authority information access");
  REQUIRE(aia != std::string::npos);
  CHECK(r.err.find("authority information access", aia + 1) == std::string::npos);
  CHECK(r.err.rfind(" info event=vault_warning", aia) != std::string::npos);
  CHECK(r.err.rfind(" warning event=vault_warning", aia) == std::string::npos);
  CHECK(infoOf(readFile(out.file("ca-cert.pem"))).key_description == "rsa-3072");
  CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  // intermediate/generate stored the key it generated; the agent deleted it after signing.
  CHECK(*p.vault.server().pkiKeyCount("", "pki/mesh") == *keys_before);
  CHECK(countRequestsTo(p.vault.server(), "DELETE", "/v1/pki/mesh/key/") == 1);
  p.vault.scanForSecrets();
}

TEST_CASE("pki two-mount layout: root in pki, intermediate in pki_int set-signed without its root", "[pki-e2e]") {
  E2eVault vault;
  auto& s = vault.server();
  const auto root_pem = s.pkiSeedTwoMount("", "pki", "pki_int", std::chrono::hours(87600));
  REQUIRE(root_pem);
  const auto int_ca = s.pkiIssuer("", "pki_int", "default");
  REQUIRE(int_ca);
  // Only the sign capability: the issuer reads of both mounts are unauthenticated.
  REQUIRE(s.setPolicy("", "signer", {{"pki_int/root/sign-intermediate", {"update"}}}));
  TokenSpec spec;
  spec.id = std::string(kTokenMarker) + ".two-mount";
  spec.policies = {"signer"};
  const std::string token_file = vault.workDir() + "/two-mount-token";
  writeFile(token_file, s.createToken("", spec), 0600);
  auto args = [&](const TempDir& out, const std::vector<std::string>& extra) {
    return concat(concat({"init", "--dir", out.path()}, vault.connectArgs()),
                  concat({"--auth-method", "token", "--token-file", token_file, "--source", "pki", "--pki-sign-path",
                          "pki_int/root/sign-intermediate", "--common-name", "istiod cluster1"},
                         extra));
  };
  auto issued = [&] {
    auto n = s.pkiIssuedCount("", "pki_int");
    REQUIRE(n);
    return *n;
  };

  SECTION("without --pki-root-mount nothing is signed and the message says what to set") {
    TempDir out;
    for (int i = 0; i < 5; ++i) {  // a crash-looping init
      const auto r = vault.run(args(out, {}));
      INFO(r.err);
      CHECK(r.exit_code == 5);
      CHECK_THAT(r.err, Catch::Contains("--pki-root-mount"));
    }
    CHECK(issued() == 0);
    CHECK(countRequestsTo(s, "POST", "/v1/pki_int/root/sign-intermediate") == 0);
  }
  SECTION("--pki-root-mount pki: chain up to the root, the root mount's roots as the bundle") {
    TempDir out;
    const auto r = vault.run(args(out, {"--pki-root-mount", "pki"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(issued() == 1);
    const CertInfo ca = infoOf(readFile(out.file("ca-cert.pem")));
    CHECK(ca.issuer == "CN=Tutorial Intermediate");
    CHECK(readFile(out.file("root-cert.pem")) == *root_pem);
    CHECK(readFile(out.file("cert-chain.pem")) == readFile(out.file("ca-cert.pem")) + int_ca->cert.pem() + *root_pem);
    CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  }
  vault.scanForSecrets();
}

TEST_CASE("pki init signs nothing it would reject: repeated failing inits mint no certificate", "[pki-e2e]") {
  PkiVault p;
  auto& s = p.vault.server();
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> extra;
  std::string message;
  SECTION("the signing issuer expires before --min-remaining would be met") {
    const TestCa soon = makeRoot("Mesh Root Soon", now - std::chrono::hours(1), now + std::chrono::hours(48));
    auto imported = s.pkiImport("", "pki/mesh", soon.cert.pem() + soon.key.pkcs8Pem());
    REQUIRE(imported);
    extra = {"--pki-sign-path", "pki/mesh/issuer/" + (*imported)["imported_issuers"][0].get<std::string>() +
                                    "/sign-intermediate",
             "--ttl", "720h", "--min-remaining", "72h"};
    message = "less than --min-remaining";
  }
  SECTION("the signing issuer does not chain to the trust bundle's mount") {
    REQUIRE(s.enablePki("", "pki/other", std::chrono::hours(87600)));
    REQUIRE(s.pkiGenerateRoot("", "pki/other", {{"common_name", "Other Root"}, {"ttl", "8760h"}}));
    extra = {"--pki-root-mount", "pki/other"};
    message = "does not chain to a root of mount pki/other";
  }
  const auto before = s.pkiIssuedCount("", "pki/mesh");
  REQUIRE(before);
  TempDir out;
  for (int i = 0; i < 5; ++i) {
    const auto r = p.vault.run(p.args(out, extra));
    INFO(r.err);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  CHECK(*s.pkiIssuedCount("", "pki/mesh") == *before);
  p.vault.scanForSecrets();
}

TEST_CASE("pki init signs with a root generated seconds ago (Vault 1.21.1 notBefore rule)", "[pki-e2e]") {
  PkiVault p;
  auto& s = p.vault.server();
  REQUIRE(s.enablePki("", "pki/fresh", std::chrono::hours(87600)));
  REQUIRE(s.setPolicy("", "signer", {{"pki/fresh/root/sign-intermediate", {"update"}}}));
  // A root without backdating: its notBefore is now.
  const auto root = s.pkiGenerateRoot("", "pki/fresh",
                                      {{"common_name", "Fresh Root"}, {"ttl", "8760h"}, {"not_before_duration", "0s"}});
  REQUIRE(root);
  // The server enforces the rule: Vault's default 30 s backdating is refused for this signer.
  {
    IncomingRequest req;
    req.method = "POST";
    req.path = "pki/fresh/root/sign-intermediate";
    req.body = nlohmann::json({{"csr", makeCsr(makeKey(), CsrSpec{})}, {"common_name", "probe"}}).dump();
    req.token = s.rootToken();
    req.request_header = true;
    req.target = "/v1/" + req.path;
    const Reply refused = s.handle(req);
    CHECK(refused.status == 400);
    CHECK_THAT(refused.body, Catch::Contains("before the signer's notBefore"));
  }
  TempDir out;
  const auto r = p.vault.run(p.args(out, {"--pki-sign-path", "pki/fresh/root/sign-intermediate"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const CertInfo ca = infoOf(readFile(out.file("ca-cert.pem")));
  CHECK(ca.not_before >= infoOf((*root)["certificate"].get<std::string>()).not_before);
  CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  p.vault.scanForSecrets();
}

TEST_CASE("pki init refuses an organization Vault would split at its commas", "[pki-e2e]") {
  PkiVault p;
  TempDir out;
  const auto r = p.vault.run(p.args(out, {"--organization", "Acme, Inc."}));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--organization"));
  CHECK_THAT(r.err, Catch::Contains("comma"));
  CHECK(*p.vault.server().pkiIssuedCount("", "pki/mesh") == 0);
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
  const auto issued = p.vault.server().pkiIssuedCount("", "pki/mesh");
  REQUIRE(issued);
  // The root itself was clamped to 48h by the mount: refused before anything is signed.
  const auto refused = p.vault.run(p.args(out, {"--ttl", "720h", "--min-remaining", "72h"}));
  CHECK(refused.exit_code == 5);
  CHECK_THAT(refused.err, Catch::Contains("limited by CN=Mesh Root A"));
  CHECK_THAT(refused.err, Catch::Contains("--min-remaining"));
  CHECK(snapshotTree(out.path()) == before);
  CHECK(*p.vault.server().pkiIssuedCount("", "pki/mesh") == *issued);
  p.vault.scanForSecrets();
}

TEST_CASE("pki init checks the mount's max_lease_ttl before signing, and after it when Vault does not tell",
          "[pki-e2e]") {
  auto hours = [](int h) { return std::chrono::hours(h); };
  std::vector<std::string> extra = {"--ttl", "720h", "--min-remaining", "48h"};
  std::string message;
  std::size_t minted = 0;  // certificates a failing init may leave in Vault
  std::unique_ptr<PkiVault> p;
  SECTION("a tuned mount: its max_lease_ttl from sys/internal/ui/mounts, no extra policy") {
    p = std::make_unique<PkiVault>();
    REQUIRE(p->vault.server().tuneMount("", "pki/mesh", hours(24)));
    message = "limited by the max_lease_ttl of mount pki/mesh, 24h0m0s";
  }
  // Not tuned: the system's 768h applies, which only sys/mounts/<mount>/tune reveals. The
  // mount signs with a ten-year root imported into it (one generated there would be cut to
  // 768h itself).
  const auto untuned = [&](bool may_read_tune) {
    p = std::make_unique<PkiVault>("", hours(0));
    auto& s = p->vault.server();
    const auto now = std::chrono::system_clock::now();
    const TestCa root = makeRoot("Mesh Root Long", now - hours(1), now + hours(87600));
    auto imported = s.pkiImport("", "pki/mesh", root.cert.pem() + root.key.pkcs8Pem());
    REQUIRE(imported);
    REQUIRE(s.pkiSetDefaultIssuer("", "pki/mesh", (*imported)["imported_issuers"][0].get<std::string>()));
    REQUIRE(s.pkiDeleteIssuer("", "pki/mesh", "root-a"));
    if (may_read_tune) REQUIRE(s.setPolicy("", "tune-reader", {{"sys/mounts/pki/mesh/tune", {"read"}}}));
    TokenSpec spec;
    spec.id = std::string(kTokenMarker) + ".tune";
    spec.policies = {"signer", "tune-reader"};
    p->token_file = p->vault.workDir() + "/pki-tune-token";
    writeFile(p->token_file, s.createToken("", spec), 0600);
    extra = {"--ttl", "8760h", "--min-remaining", "800h"};
  };
  SECTION("an untuned mount whose tune endpoint the token may read") {
    untuned(true);
    message = "limited by the max_lease_ttl of mount pki/mesh, 768h0m0s";
  }
  SECTION("an untuned mount whose tune endpoint is denied: the check after signing") {
    untuned(false);
    message = "the requested --ttl was clamped, most likely by the mount's max_lease_ttl";
    minted = 1;
  }
  auto& s = p->vault.server();
  const auto before = s.pkiIssuedCount("", "pki/mesh");
  REQUIRE(before);
  TempDir out;
  const auto r = p->vault.run(p->args(out, extra));
  INFO(r.err);
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.err, Catch::Contains(message));
  CHECK(*s.pkiIssuedCount("", "pki/mesh") == *before + minted);
  CHECK(countRequestsTo(s, "GET", "/v1/sys/internal/ui/mounts/pki/mesh") == 1);
  if (minted == 1) CHECK_THAT(r.err, Catch::Contains("event=pki_max_ttl_unknown"));
  p->vault.scanForSecrets();
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
