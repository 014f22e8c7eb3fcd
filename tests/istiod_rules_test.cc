// istiod's verdict on CA material, case by case, with material built here at test time:
// trust anchors that are not CAs, chains in any order, and ca-crl.pem (istiod 1.27+). Each
// expectation is what istiod's Go code decides (security/pkg/pki/util/keycertbundle.go
// Verify), and then what this agent's own policies add.
#include <chrono>
#include <string>
#include <vector>

#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include "agent/ca_bundle.h"
#include "agent/layout.h"
#include "common/x509.h"
#include "tests/support/test_pki.h"

using namespace cacerts;
using namespace cacerts::testing;
using std::chrono::hours;

namespace {

SystemTime now() { return std::chrono::system_clock::now(); }

ValidationOptions istiod(int minor = defaults::kIstioMinor) {
  ValidationOptions o;
  o.now = now();
  o.min_remaining = hours(24);
  o.istio_minor = minor;
  return o;
}

const CheckResult* find(const BundleReport&& r, std::string_view name) = delete;  // would dangle
const CheckResult* find(const BundleReport& r, std::string_view name) {
  for (const CheckResult& c : r.checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// A self-signed root without basicConstraints: X.509 v1, or v3 without the extension.
TestCa rootWithoutCaFlag(const std::string& cn, bool v1) {
  TestCa ca;
  ca.key = makeKey();
  CertSpec spec;
  spec.common_name = cn;
  spec.v1 = v1;
  spec.basic_constraints = false;
  spec.key_cert_sign = spec.crl_sign = false;  // no keyUsage either
  ca.cert = issueCert(spec, ca.key, nullptr, ca.key);
  return ca;
}

CaMaterial materialOf(const TestCa& ca, std::string chain, std::string root) {
  CaMaterial m;
  m.cert_pem = ca.cert.pem();
  m.key_pem = Secret(ca.key.pkcs8Pem());
  m.chain_pem = std::move(chain);
  m.root_pem = std::move(root);
  return m;
}

// root -> upper -> ca
struct Pki {
  TestCa root = makeRoot("Mesh Root");
  TestCa upper = makeIntermediate(root, "Upper Intermediate");
  TestCa ca = makeIntermediate(upper, "istiod intermediate");

  CaMaterial material(std::string chain) const { return materialOf(ca, std::move(chain), root.cert.pem()); }
  CaMaterial ordered() const { return material(ca.cert.pem() + upper.cert.pem() + root.cert.pem()); }
};

}  // namespace

TEST_CASE("a root without basicConstraints CA:TRUE is a trust anchor, as in istiod", "[istiod_rules]") {
  for (const bool v1 : {true, false}) {
    DYNAMIC_SECTION((v1 ? "X.509 v1 root" : "v3 root without basicConstraints")) {
      const TestCa root = rootWithoutCaFlag("Legacy Root", v1);
      REQUIRE_FALSE(root.cert.empty());
      const TestCa ca = makeIntermediate(root, "istiod intermediate");
      CaMaterial m = materialOf(ca, ca.cert.pem() + root.cert.pem(), root.cert.pem());

      const BundleReport report = inspectBundle(m, istiod());
      INFO((report.firstFailure() ? report.firstFailure()->name + ": " + report.firstFailure()->detail : "ok"));
      CHECK(report.ok());
      Result<ValidatedBundle> bundle = assembleAndValidate(m, istiod());
      REQUIRE(bundle);
      CHECK(bundle->anchor().sameAs(Certificate::adopt(X509Ptr(X509_dup(root.cert.x509.get())))));
      // withRootFile (the sidecar's root rotation) takes such a root too.
      CHECK(withRootFile(*bundle, root.cert.pem(), now()));
    }
  }
}

TEST_CASE("an intermediate without CA:TRUE still breaks the chain, as in istiod", "[istiod_rules]") {
  const TestCa root = makeRoot("Mesh Root");
  CertSpec not_ca;
  not_ca.is_ca = false;
  const TestCa upper = makeIntermediate(root, "Not A CA", not_ca);
  const TestCa ca = makeIntermediate(upper, "istiod intermediate");
  CaMaterial m;
  m.cert_pem = ca.cert.pem();
  m.key_pem = Secret(ca.key.pkcs8Pem());
  m.chain_pem = ca.cert.pem() + upper.cert.pem();
  m.root_pem = root.cert.pem();
  const BundleReport report = inspectBundle(m, istiod());
  REQUIRE(report.firstFailure(Policy::kIstiod) != nullptr);
  CHECK(report.firstFailure(Policy::kIstiod)->name == "chain_verifies_to_root");
  CHECK_FALSE(assembleAndValidate(m, istiod()));
}

TEST_CASE("cert-chain in any order is accepted by istiod, and order is only an agent warning", "[istiod_rules]") {
  const Pki p;
  for (const auto& [label, chain] : std::vector<std::pair<std::string, std::string>>{
           {"root first", p.root.cert.pem() + p.upper.cert.pem() + p.ca.cert.pem()},
           {"another intermediate first", p.upper.cert.pem() + p.ca.cert.pem() + p.root.cert.pem()}}) {
    DYNAMIC_SECTION(label) {
      const CaMaterial m = p.material(chain);
      const BundleReport report = inspectBundle(m, istiod());
      CHECK(report.istiodWouldLoad());
      const CheckResult* order = find(report, "chain_starts_with_ca_cert");
      REQUIRE(order != nullptr);
      CHECK_FALSE(order->ok);
      CHECK(order->policy == Policy::kAgent);
      CHECK_THAT(order->detail, Catch::Contains("would publish ca-cert first"));
      // The agent publishes the repaired order.
      Result<ValidatedBundle> bundle = assembleAndValidate(m, istiod());
      REQUIRE(bundle);
      REQUIRE(bundle->path.size() == 3);
      CHECK(bundle->path.front().info().subject == p.ca.cert.commonName().insert(0, "CN="));
    }
  }
}

TEST_CASE("ca-crl: istiod 1.27+ wants a CRL signed by every certificate of cert-chain", "[istiod_rules]") {
  const Pki p;
  const std::string crl_ca = makeCrl(p.ca), crl_upper = makeCrl(p.upper), crl_root = makeCrl(p.root);
  REQUIRE_FALSE(crl_ca.empty());

  SECTION("a CRL per chain certificate is accepted and published as ca-crl.pem") {
    CaMaterial m = p.ordered();
    m.crl_pem = crl_root + crl_ca + crl_upper;  // any order
    const BundleReport report = inspectBundle(m, istiod());
    const CheckResult* covers = find(report, "crl_covers_chain");
    REQUIRE(covers != nullptr);
    CHECK(covers->ok);
    CHECK(covers->policy == Policy::kIstiod);
    Result<ValidatedBundle> bundle = assembleAndValidate(m, istiod());
    REQUIRE(bundle);
    CHECK(bundle->crls.size() == 3);
    BundleText text;
    bool published = false;
    for (const OutputFile& f : filesFor(*bundle, Layout::kIstio, 0600, text)) {
      if (f.name == "ca-crl.pem") {
        published = true;
        Result<std::vector<Crl>> again = parseCrls(f.content, "ca-crl.pem");
        REQUIRE(again);
        CHECK(again->size() == 3);
      }
    }
    CHECK(published);
  }

  SECTION("a set missing one signer is refused, naming the signer") {
    CaMaterial m = p.ordered();
    m.crl_pem = crl_ca + crl_root;
    const BundleReport report = inspectBundle(m, istiod());
    const CheckResult* covers = find(report, "crl_covers_chain");
    REQUIRE(covers != nullptr);
    CHECK_FALSE(covers->ok);
    CHECK_FALSE(report.istiodWouldLoad());
    CHECK_THAT(covers->detail, Catch::Contains("\"CN=Upper Intermediate\""));
    CHECK_THAT(covers->detail, !Catch::Contains("Mesh Root\""));
    Result<ValidatedBundle> bundle = assembleAndValidate(m, istiod());
    REQUIRE_FALSE(bundle);
    CHECK_THAT(bundle.error().message, Catch::StartsWith("check crl_covers_chain failed"));
  }

  SECTION("istiod 1.26 and older never read ca-crl.pem") {
    CaMaterial m = p.ordered();
    m.crl_pem = crl_ca;
    CHECK_FALSE(inspectBundle(m, istiod(27)).istiodWouldLoad());
    const BundleReport old = inspectBundle(m, istiod(26));
    CHECK(find(old, "crl_covers_chain") == nullptr);
    CHECK(old.istiodWouldLoad());
  }

  SECTION("a block that is not a CRL, or a file with no block at all, is refused") {
    CaMaterial m = p.ordered();
    m.crl_pem = crl_ca + crl_upper + crl_root + p.root.cert.pem();
    const BundleReport report1 = inspectBundle(m, istiod());
    const CheckResult* covers = find(report1, "crl_covers_chain");
    REQUIRE(covers != nullptr);
    CHECK_FALSE(covers->ok);
    CHECK_THAT(covers->detail, Catch::Contains("PEM block 4 is not a certificate revocation list"));
    CHECK_THAT(covers->detail, !Catch::Contains("BEGIN"));

    m.crl_pem = "\n";  // present and not empty: istiod finds no CRL for any signer
    const BundleReport report2 = inspectBundle(m, istiod());
    const CheckResult* blank = find(report2, "crl_covers_chain");
    REQUIRE(blank != nullptr);
    CHECK_FALSE(blank->ok);
    CHECK_THAT(blank->detail, Catch::Contains("no CRL signed by"));
  }

  SECTION("text between CRL blocks is skipped, as Go's PEM decoder does") {
    CaMaterial m = p.ordered();
    m.crl_pem = "# CRLs of the mesh\n" + crl_ca + "upper:\n" + crl_upper + crl_root + "end\n";
    const BundleReport report3 = inspectBundle(m, istiod());
    const CheckResult* covers = find(report3, "crl_covers_chain");
    REQUIRE(covers != nullptr);
    CHECK(covers->ok);
  }

  SECTION("a signer whose keyUsage lacks cRLSign cannot cover itself") {
    CertSpec no_crl_sign;
    no_crl_sign.crl_sign = false;
    const TestCa upper = makeIntermediate(p.root, "Upper Without cRLSign", no_crl_sign);
    const TestCa ca = makeIntermediate(upper, "istiod intermediate");
    CaMaterial m = materialOf(ca, ca.cert.pem() + upper.cert.pem() + p.root.cert.pem(), p.root.cert.pem());
    m.crl_pem = makeCrl(ca) + makeCrl(upper) + crl_root;
    const BundleReport report4 = inspectBundle(m, istiod());
    const CheckResult* covers = find(report4, "crl_covers_chain");
    REQUIRE(covers != nullptr);
    CHECK_FALSE(covers->ok);
    CHECK_THAT(covers->detail, Catch::Contains("Upper Without cRLSign"));
  }

  SECTION("a v1 root in cert-chain signs its CRL without any extension") {
    const TestCa root = rootWithoutCaFlag("Legacy Root", true);
    const TestCa ca = makeIntermediate(root, "istiod intermediate");
    CaMaterial m = materialOf(ca, ca.cert.pem() + root.cert.pem(), root.cert.pem());
    m.crl_pem = makeCrl(ca) + makeCrl(root);
    const BundleReport report = inspectBundle(m, istiod());
    INFO((report.firstFailure() ? report.firstFailure()->name + ": " + report.firstFailure()->detail : "ok"));
    CHECK(report.ok());
  }
}

TEST_CASE("an expired CRL: istiod accepts it, the agent's crl_current policy refuses it", "[istiod_rules]") {
  const Pki p;
  CaMaterial m = p.ordered();
  CrlSpec expired;
  expired.this_update = now() - hours(48);
  expired.next_update = now() - hours(1);
  m.crl_pem = makeCrl(p.ca) + makeCrl(p.upper, expired) + makeCrl(p.root);

  const BundleReport report = inspectBundle(m, istiod());
  CHECK(report.istiodWouldLoad());
  const CheckResult* current = find(report, "crl_current");
  REQUIRE(current != nullptr);
  CHECK_FALSE(current->ok);
  CHECK(current->policy == Policy::kAgent);
  CHECK_THAT(current->detail, Catch::Contains("Upper Intermediate") && Catch::Contains("expired at"));

  Result<ValidatedBundle> refused = assembleAndValidate(m, istiod());
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message,
             Catch::StartsWith("check crl_current failed") && Catch::Contains("--relax-policy crl_current"));

  ValidationOptions relaxed = istiod();
  relaxed.relaxed = {"crl_current"};
  CHECK(assembleAndValidate(m, relaxed));
}

TEST_CASE("every agent policy can be relaxed, but istiod's rules cannot", "[istiod_rules]") {
  const Pki p;
  SECTION("key_cert_sign") {
    CertSpec no_cert_sign;
    no_cert_sign.key_cert_sign = false;
    const TestCa ca = makeIntermediate(p.upper, "No keyCertSign", no_cert_sign);
    CaMaterial m = materialOf(ca, ca.cert.pem() + p.upper.cert.pem(), p.root.cert.pem());
    Result<ValidatedBundle> strict = assembleAndValidate(m, istiod());
    REQUIRE_FALSE(strict);
    CHECK_THAT(strict.error().message, Catch::StartsWith("check key_cert_sign failed"));
    ValidationOptions relaxed = istiod();
    relaxed.relaxed = {"key_cert_sign"};
    CHECK(assembleAndValidate(m, relaxed));
  }
  SECTION("relaxing a name does not relax an istiod rule of another name") {
    CaMaterial m = p.ordered();
    m.key_pem = Secret(makeKey().pkcs8Pem());  // key_matches_cert is istiod's
    ValidationOptions relaxed = istiod();
    relaxed.relaxed = agentPolicyNames();
    Result<ValidatedBundle> bundle = assembleAndValidate(m, relaxed);
    REQUIRE_FALSE(bundle);
    CHECK_THAT(bundle.error().message, Catch::StartsWith("check key_matches_cert failed"));
  }
}

TEST_CASE("parseCrls and crlSignedBy follow Go's rules", "[istiod_rules][x509]") {
  const Pki p;
  CrlSpec spec;
  spec.revoked_serials_hex = {"0a:0b", "1234"};
  Result<std::vector<Crl>> crls = parseCrls(makeCrl(p.upper, spec), "ca-crl");
  REQUIRE(crls);
  REQUIRE(crls->size() == 1);
  const Crl& crl = crls->front();
  CHECK(crl.info().issuer == "CN=Upper Intermediate");
  CHECK(crl.info().revoked == 2);
  REQUIRE(crl.info().next_update.has_value());
  auto cert = [](const TestCa& ca) { return Certificate::adopt(X509Ptr(X509_dup(ca.cert.x509.get()))); };
  CHECK(crlSignedBy(crl, cert(p.upper)));
  CHECK_FALSE(crlSignedBy(crl, cert(p.root)));
  CHECK_FALSE(crlSignedBy(crl, cert(p.ca)));

  // A signer with the same name and another key does not verify it.
  const TestCa impostor = makeIntermediate(p.root, "Upper Intermediate");
  CHECK_FALSE(crlSignedBy(crl, cert(impostor)));

  CrlSpec no_next;
  no_next.without_next_update = true;
  Result<std::vector<Crl>> open_ended = parseCrls(makeCrl(p.ca, no_next), "ca-crl");
  REQUIRE(open_ended);
  CHECK_FALSE(open_ended->front().info().next_update.has_value());

  Result<std::vector<Crl>> none = parseCrls("no blocks here\n", "ca-crl");
  REQUIRE(none);
  CHECK(none->empty());
}
