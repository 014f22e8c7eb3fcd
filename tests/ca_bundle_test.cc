#include "agent/ca_bundle.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/layout.h"
#include "common/openssl_ptr.h"
#include "tests/support/test_pki.h"

using namespace cacerts;
using namespace cacerts::testing;
using std::chrono::hours;

namespace {

constexpr std::string_view kMarker = "PLANTEDMARKERb81Kd";

SystemTime now() { return std::chrono::system_clock::now(); }

ValidationOptions opts(Duration min_remaining = hours(24)) {
  ValidationOptions o;
  o.now = now();
  o.min_remaining = min_remaining;
  return o;
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// root -> upper -> ca (the signing intermediate), each EC P-256.
struct Pki {
  TestCa root = makeRoot("Mesh Root");
  TestCa upper = makeIntermediate(root, "Upper Intermediate");
  TestCa ca = makeIntermediate(upper, "istiod intermediate");
};

CaMaterial material(const TestCert& cert, const TestKey& key, std::string chain, std::string root) {
  CaMaterial m;
  m.cert_pem = cert.pem();
  m.key_pem = Secret(key.traditionalPem());
  m.chain_pem = std::move(chain);
  m.root_pem = std::move(root);
  return m;
}

CaMaterial good(const Pki& p) {
  return material(p.ca.cert, p.ca.key, p.ca.cert.pem() + p.upper.cert.pem(), p.root.cert.pem());
}

const CheckResult* find(const BundleReport& r, std::string_view name) {
  for (const CheckResult& c : r.checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Asserts that validation fails with `check` as the first failed check and that
// inspectBundle reports the same failure; returns the error message.
std::string expectFirstFailure(const CaMaterial& m, const ValidationOptions& o, const std::string& check) {
  auto bundle = assembleAndValidate(m, o);
  REQUIRE_FALSE(bundle);
  CHECK(bundle.error().code == ErrorCode::kValidation);
  CHECK_THAT(bundle.error().message, Catch::StartsWith("check " + check + " failed: "));
  const BundleReport report = inspectBundle(m, o);
  CHECK_FALSE(report.ok());
  REQUIRE(report.firstFailure() != nullptr);
  CHECK(report.firstFailure()->name == check);
  return bundle.error().message;
}

// A CA signed by `issuer` with the given spec.
TestCa issueCa(const TestCa& issuer, const std::string& cn, CertSpec spec, const TestKey& key = makeKey()) {
  spec.common_name = cn;
  spec.subject_entries.clear();
  return TestCa{key, issueCert(spec, key, &issuer.cert, issuer.key)};
}

}  // namespace

TEST_CASE("a valid bundle passes every check and is assembled ca-cert, intermediates, root", "[ca_bundle]") {
  const Pki p;
  const CaMaterial m = good(p);
  const BundleReport report = inspectBundle(m, opts());
  for (const CheckResult& c : report.checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.ok);
  }
  CHECK(report.ok());
  for (const char* name : {"parse_ca_cert", "parse_ca_key", "parse_cert_chain", "parse_root_cert",
                           "key_type_supported", "key_matches_cert", "ca_basic_constraints", "key_cert_sign",
                           "validity_window", "min_remaining_lifetime", "eku_allows_server_auth",
                           "signature_algorithm_accepted", "roots_self_signed", "chain_verifies_to_root",
                           "chain_starts_with_ca_cert"}) {
    INFO(name);
    CHECK(find(report, name) != nullptr);
  }
  REQUIRE(report.ca_cert);
  CHECK(report.ca_cert->subject == "CN=istiod intermediate");
  CHECK(report.chain.size() == 2);
  REQUIRE(report.roots.size() == 1);
  CHECK(report.roots[0].subject == "CN=Mesh Root");

  auto bundle = assembleAndValidate(m, opts());
  REQUIRE(bundle);
  CHECK(bundle->caCert().pem() == p.ca.cert.pem());
  CHECK(toPem(bundle->path) == p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem());
  CHECK(bundle->rootPem() == p.root.cert.pem());
  CHECK(bundle->key_pem == m.key_pem);
  CHECK(bundle->info().subject == "CN=istiod intermediate");
  REQUIRE(bundle->roots.size() == 1);
  CHECK(bundle->roots[0].info().subject == "CN=Mesh Root");
}

TEST_CASE("the chain is assembled leaf-to-root with ca-cert first whatever order it was given in", "[ca_bundle]") {
  const Pki p;
  const std::string expected = p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem();
  std::string chain;
  bool starts_with_ca = true;
  SECTION("root first, as in istio's multilevel test data") {
    chain = p.root.cert.pem() + p.upper.cert.pem() + p.ca.cert.pem();
    starts_with_ca = false;
  }
  SECTION("without ca-cert") {
    chain = p.upper.cert.pem();
    starts_with_ca = false;
  }
  SECTION("ca-cert twice and an unrelated certificate") {
    chain = p.ca.cert.pem() + makeRoot("Stray").cert.pem() + p.upper.cert.pem() + p.ca.cert.pem();
  }
  SECTION("intermediates only in ca-cert's own field (cert + chain bundle)") {
    chain = "";
  }
  CaMaterial m = material(p.ca.cert, p.ca.key, chain, p.root.cert.pem());
  if (chain.empty()) m.cert_pem = p.ca.cert.pem() + p.upper.cert.pem();

  auto bundle = assembleAndValidate(m, opts());
  REQUIRE(bundle);
  CHECK(toPem(bundle->path) == expected);
  CHECK(bundle->caCert().pem() == p.ca.cert.pem());

  const BundleReport report = inspectBundle(m, opts());
  const CheckResult* starts = find(report, "chain_starts_with_ca_cert");
  if (chain.empty()) {
    CHECK(starts == nullptr);
  } else {
    REQUIRE(starts != nullptr);
    CHECK(starts->ok == starts_with_ca);
    // `check` on a published directory must flag the order istiod misreads.
    CHECK(report.ok() == starts_with_ca);
  }
}

TEST_CASE("missing root or chain are derived from what was given", "[ca_bundle]") {
  const Pki p;
  SECTION("no root: the chain's last certificate is the root") {
    const CaMaterial m =
        material(p.ca.cert, p.ca.key, p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem(), "");
    auto bundle = assembleAndValidate(m, opts());
    REQUIRE(bundle);
    CHECK(bundle->rootPem() == p.root.cert.pem());
    CHECK(toPem(bundle->path) == p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem());
  }
  SECTION("no chain: ca-cert plus root") {
    const CaMaterial m = material(p.upper.cert, p.upper.key, "", p.root.cert.pem());
    auto bundle = assembleAndValidate(m, opts());
    REQUIRE(bundle);
    CHECK(toPem(bundle->path) == p.upper.cert.pem() + p.root.cert.pem());
    const BundleReport report = inspectBundle(m, opts());
    CHECK(report.ok());
    CHECK(report.chain.size() == 2);  // the chain that would be published
  }
  SECTION("whitespace-only chain and root count as not given") {
    const CaMaterial m = material(p.upper.cert, p.upper.key, "\n", p.root.cert.pem() + p.upper.cert.pem());
    const CaMaterial derived = material(p.upper.cert, p.upper.key, p.upper.cert.pem() + p.root.cert.pem(), " \n");
    CHECK(assembleAndValidate(derived, opts()));
    // (and a root bundle holding a non-root is refused, see below)
    CHECK_FALSE(assembleAndValidate(m, opts()));
  }
  SECTION("no root and the chain does not end in one") {
    const CaMaterial m = material(p.ca.cert, p.ca.key, p.ca.cert.pem() + p.upper.cert.pem(), "");
    const std::string message = expectFirstFailure(m, opts(), "roots_self_signed");
    CHECK_THAT(message, Catch::Contains("not self-signed") && Catch::Contains("--kv-root"));
  }
  SECTION("no root and no chain: ca-cert must then be a root itself") {
    const CaMaterial m = material(p.ca.cert, p.ca.key, "", "");
    expectFirstFailure(m, opts(), "roots_self_signed");
  }
}

TEST_CASE("every key format istiod reads is accepted and kept byte for byte", "[ca_bundle]") {
  const TestCa root = makeRoot("Key Root");
  TestKey key;
  std::string key_pem;
  SECTION("RSA PKCS#1") {
    key = makeKey("rsa", 2048);
    key_pem = key.traditionalPem();
  }
  SECTION("RSA PKCS#8") {
    key = makeKey("rsa", 2048);
    key_pem = key.pkcs8Pem();
  }
  SECTION("EC SEC1 with CRLF line ends") {
    key = makeKey("ec", 384);
    key_pem = replaceAll(key.traditionalPem(), "\n", "\r\n");
  }
  SECTION("EC PKCS#8") {
    key = makeKey("ec", 256);
    key_pem = key.pkcs8Pem();
  }
  const TestCa ca = issueCa(root, "Key CA", CertSpec{}, key);
  CaMaterial m = material(ca.cert, ca.key, "", root.cert.pem());
  m.key_pem = Secret(key_pem);
  auto bundle = assembleAndValidate(m, opts());
  REQUIRE(bundle);
  CHECK(bundle->key_pem.view() == key_pem);
}

TEST_CASE("unusable keys are refused at parse_ca_key", "[ca_bundle]") {
  const Pki p;
  CaMaterial m = good(p);
  std::string expected;
  SECTION("encrypted key") {
    cacerts::BioPtr bio(BIO_new(BIO_s_mem()));
    static char pass[] = "pw";
    REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), p.ca.key.pkey.get(), EVP_aes_256_cbc(), pass, 2, nullptr,
                                          nullptr) == 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    m.key_pem = Secret(std::string_view(data, static_cast<std::size_t>(n)));
    expected = "encrypted";
  }
  SECTION("Ed25519 key and certificate") {
    const TestKey ed = makeKey("ed25519");
    const TestCa ca = issueCa(p.root, "Ed CA", CertSpec{}, ed);
    REQUIRE_FALSE(ca.cert.empty());
    m = material(ca.cert, ed, "", p.root.cert.pem());
    m.key_pem = Secret(ed.pkcs8Pem());
    expected = "ed25519";
    const BundleReport report = inspectBundle(m, opts());
    const CheckResult* type = find(report, "key_type_supported");
    REQUIRE(type != nullptr);
    CHECK_FALSE(type->ok);
  }
  SECTION("garbage") {
    m.key_pem = Secret("not a key");
    expected = "outside PEM blocks";
  }
  const std::string message = expectFirstFailure(m, opts(), "parse_ca_key");
  CHECK_THAT(message, Catch::Contains("ca-key") && Catch::Contains(expected));
}

TEST_CASE("a key that does not match the certificate is refused with a fix", "[ca_bundle]") {
  const Pki p;
  CaMaterial m = good(p);
  m.key_pem = Secret(p.upper.key.traditionalPem());
  const std::string message = expectFirstFailure(m, opts(), "key_matches_cert");
  CHECK(message ==
        "check key_matches_cert failed: ca-key does not match ca-cert (wrong key or wrong version of the secret)");

  SECTION("messages use the caller's names for the inputs") {
    m.names.cert = "--kv-cert vault:secret/data/pki/istiod#certificate";
    m.names.key = "--kv-key vault:secret/data/pki/istiod#key";
    auto bundle = assembleAndValidate(m, opts());
    REQUIRE_FALSE(bundle);
    CHECK_THAT(bundle.error().message, Catch::Contains("--kv-key vault:secret/data/pki/istiod#key does not match "
                                                       "--kv-cert vault:secret/data/pki/istiod#certificate"));
  }
}

TEST_CASE("certificates outside their validity window are refused", "[ca_bundle]") {
  const TestCa root = makeRoot("Window Root");
  CertSpec spec;
  std::string expected;
  SECTION("expired") {
    spec.not_before = now() - hours(48);
    spec.not_after = now() - hours(1);
    expected = "expired at";
  }
  SECTION("not yet valid") {
    spec.not_before = now() + hours(1);
    spec.not_after = now() + hours(24 * 30);
    expected = "is not valid before";
  }
  const TestCa ca = issueCa(root, "Window CA", spec);
  const std::string message =
      expectFirstFailure(material(ca.cert, ca.key, "", root.cert.pem()), opts(), "validity_window");
  CHECK_THAT(message, Catch::Contains("ca-cert (\"CN=Window CA\")") && Catch::Contains(expected));
}

TEST_CASE("an expired upper intermediate is named by its place in the chain", "[ca_bundle]") {
  const TestCa root = makeRoot("Window Root");
  CertSpec old;
  old.not_before = now() - hours(48);
  old.not_after = now() - hours(2);
  const TestCa upper = issueCa(root, "Old Upper", old);
  const TestCa lower = issueCa(upper, "Lower", CertSpec{});
  const std::string message = expectFirstFailure(material(lower.cert, lower.key, upper.cert.pem(), root.cert.pem()),
                                                 opts(), "validity_window");
  CHECK_THAT(message, Catch::Contains("cert-chain certificate 1 (\"CN=Old Upper\") expired"));
}

TEST_CASE("a signing certificate needs CA:TRUE and keyCertSign", "[ca_bundle]") {
  const TestCa root = makeRoot("CA Root");
  CertSpec spec;
  std::string check;
  std::string expected;
  SECTION("not a CA") {
    spec.is_ca = false;
    check = "ca_basic_constraints";
    expected = "is not a CA certificate";
  }
  SECTION("no basicConstraints at all") {
    spec.basic_constraints = false;
    check = "ca_basic_constraints";
    expected = "CA:TRUE missing";
  }
  SECTION("keyUsage without keyCertSign") {
    spec.key_cert_sign = false;
    spec.digital_signature = true;
    check = "key_cert_sign";
    expected = "without keyCertSign";
  }
  SECTION("no keyUsage extension") {
    spec.key_cert_sign = false;
    spec.crl_sign = false;
    check = "key_cert_sign";
    expected = "no keyUsage extension";
  }
  const TestCa ca = issueCa(root, "Weak CA", spec);
  const std::string message = expectFirstFailure(material(ca.cert, ca.key, "", root.cert.pem()), opts(), check);
  CHECK_THAT(message, Catch::Contains(expected) && Catch::Contains("CN=Weak CA"));
}

TEST_CASE("an EKU that excludes serverAuth anywhere in the chain is refused", "[ca_bundle]") {
  SECTION("clientAuth only on the intermediate") {
    const TestCa root = makeRoot("EKU Root");
    CertSpec spec;
    spec.ext_key_usage = {"clientAuth"};
    const TestCa ca = issueCa(root, "Client Only", spec);
    const std::string message =
        expectFirstFailure(material(ca.cert, ca.key, "", root.cert.pem()), opts(), "eku_allows_server_auth");
    CHECK_THAT(message, Catch::Contains("ca-cert (\"CN=Client Only\")") && Catch::Contains("[clientAuth]") &&
                            Catch::Contains("without an EKU extension"));
  }
  SECTION("clientAuth on the root") {
    CertSpec root_spec;
    root_spec.common_name = "EKU Root";
    root_spec.ext_key_usage = {"clientAuth"};
    const TestKey root_key = makeKey();
    const TestCa root{root_key, issueCert(root_spec, root_key, nullptr, root_key)};
    const TestCa ca = issueCa(root, "Plain CA", CertSpec{});
    const std::string message =
        expectFirstFailure(material(ca.cert, ca.key, "", root.cert.pem()), opts(), "eku_allows_server_auth");
    CHECK_THAT(message, Catch::Contains("root-cert certificate 1 (\"CN=EKU Root\")"));
  }
  SECTION("an upper intermediate with codeSigning") {
    const TestCa root = makeRoot("EKU Root");
    CertSpec spec;
    spec.ext_key_usage = {"codeSigning"};
    const TestCa upper = issueCa(root, "Code Upper", spec);
    const TestCa ca = issueCa(upper, "Lower", CertSpec{});
    const std::string message = expectFirstFailure(material(ca.cert, ca.key, upper.cert.pem(), root.cert.pem()),
                                                   opts(), "eku_allows_server_auth");
    CHECK_THAT(message, Catch::Contains("cert-chain certificate 1"));
  }
  SECTION("serverAuth or anyExtendedKeyUsage are acceptable") {
    const TestCa root = makeRoot("EKU Root");
    for (std::vector<std::string> eku : {std::vector<std::string>{"serverAuth", "clientAuth"},
                                         std::vector<std::string>{"anyExtendedKeyUsage"}}) {
      CertSpec spec;
      spec.ext_key_usage = eku;
      const TestCa ca = issueCa(root, "Fine", spec);
      CHECK(assembleAndValidate(material(ca.cert, ca.key, "", root.cert.pem()), opts()));
    }
  }
}

TEST_CASE("a chain that leads to a different root is refused", "[ca_bundle]") {
  const Pki p;
  const TestCa other = makeRoot("Other Root");
  SECTION("root bundle holds another root") {
    const std::string message = expectFirstFailure(
        material(p.ca.cert, p.ca.key, p.upper.cert.pem(), other.cert.pem()), opts(), "chain_verifies_to_root");
    CHECK_THAT(message, Catch::Contains("ca-cert does not verify through cert-chain to root-cert") &&
                            Catch::Contains("unable to get local issuer certificate"));
  }
  SECTION("chain carries its own root that is not in the bundle") {
    const std::string message =
        expectFirstFailure(material(p.ca.cert, p.ca.key, p.upper.cert.pem() + p.root.cert.pem(), other.cert.pem()),
                           opts(), "chain_verifies_to_root");
    CHECK_THAT(message, Catch::Contains("not in the root bundle"));
  }
  SECTION("a missing intermediate") {
    expectFirstFailure(material(p.ca.cert, p.ca.key, "", p.root.cert.pem()), opts(), "chain_verifies_to_root");
  }
  SECTION("a second, correct root in the bundle makes it pass") {
    auto bundle = assembleAndValidate(
        material(p.ca.cert, p.ca.key, p.upper.cert.pem(), other.cert.pem() + p.root.cert.pem()), opts());
    REQUIRE(bundle);
    CHECK(bundle->rootPem() == other.cert.pem() + p.root.cert.pem());
    CHECK(toPem(bundle->path) == p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem());
  }
}

TEST_CASE("the root bundle may hold only self-signed certificates, CA or not", "[ca_bundle]") {
  const Pki p;
  SECTION("an intermediate in the root bundle") {
    const std::string message =
        expectFirstFailure(material(p.ca.cert, p.ca.key, "", p.upper.cert.pem() + p.root.cert.pem()), opts(),
                           "roots_self_signed");
    CHECK_THAT(message, Catch::Contains("root-cert certificate 1 (\"CN=Upper Intermediate\") is not self-signed"));
  }
  SECTION("a self-signed certificate that is not a CA is an extra anchor, as in istiod") {
    CertSpec spec;
    spec.common_name = "Leafy Root";
    spec.is_ca = false;
    const TestKey key = makeKey();
    const TestCert leafy = issueCert(spec, key, nullptr, key);
    const CaMaterial m = material(p.ca.cert, p.ca.key, p.ca.cert.pem() + p.upper.cert.pem(),
                                  p.root.cert.pem() + leafy.pem());
    const BundleReport report = inspectBundle(m, opts());
    INFO((report.firstFailure() ? report.firstFailure()->name + ": " + report.firstFailure()->detail : "ok"));
    CHECK(report.ok());
    Result<ValidatedBundle> bundle = assembleAndValidate(m, opts());
    REQUIRE(bundle);
    CHECK(bundle->roots.size() == 2);
  }
}

TEST_CASE("a CA with less than the minimum remaining lifetime is refused", "[ca_bundle]") {
  const TestCa root = makeRoot("Life Root");
  CertSpec spec;
  spec.not_before = now() - hours(1);
  spec.not_after = now() + hours(5);
  const TestCa ca = issueCa(root, "Short CA", spec);
  const CaMaterial m = material(ca.cert, ca.key, "", root.cert.pem());

  const std::string message = expectFirstFailure(m, opts(hours(24)), "min_remaining_lifetime");
  CHECK_THAT(message, Catch::Contains("ca-cert (\"CN=Short CA\") expires at") && Catch::Contains("in 4h59m") &&
                          Catch::Contains("24h0m0s") && Catch::Contains("--min-remaining"));
  CHECK(assembleAndValidate(m, opts(hours(4))));

  SECTION("the earliest expiry on the path counts, not only ca-cert's") {
    CertSpec upper_spec;
    upper_spec.not_before = now() - hours(1);
    upper_spec.not_after = now() + hours(3);
    const TestCa upper = issueCa(root, "Short Upper", upper_spec);
    const TestCa lower = issueCa(upper, "Long Lower", CertSpec{});
    const std::string m2 = expectFirstFailure(material(lower.cert, lower.key, upper.cert.pem(), root.cert.pem()),
                                              opts(hours(24)), "min_remaining_lifetime");
    CHECK_THAT(m2, Catch::Contains("cert-chain certificate 1 (\"CN=Short Upper\")"));
  }
}

TEST_CASE("SHA-1 signatures below the root are refused", "[ca_bundle]") {
  const TestCa root = makeRoot("Sha Root");
  const TestCa ca = issueCa(root, "Sha1 CA", CertSpec{});
  REQUIRE(X509_sign(ca.cert.x509.get(), root.key.pkey.get(), EVP_sha1()) > 0);
  const std::string message = expectFirstFailure(material(ca.cert, ca.key, "", root.cert.pem()), opts(),
                                                 "signature_algorithm_accepted");
  CHECK_THAT(message, Catch::Contains("ecdsa-with-SHA1"));
}

TEST_CASE("root-cert bytes are canonical, deduplicated and stable", "[ca_bundle]") {
  const Pki p;
  const TestCa second = makeRoot("Second Root");
  // Vault style (no trailing newline), CRLF, a duplicate and blank lines.
  const std::string messy = replaceAll(p.root.cert.pemTrimmed(), "\n", "\r\n") + "\r\n\r\n" +
                            second.cert.pemTrimmed() + "\n" + p.root.cert.pem() + "\n\n";
  const CaMaterial m = material(p.ca.cert, p.ca.key, replaceAll(p.upper.cert.pemTrimmed(), "\n", "\r\n"), messy);
  auto first = assembleAndValidate(m, opts());
  auto again = assembleAndValidate(m, opts());
  REQUIRE(first);
  REQUIRE(again);
  CHECK(first->rootPem() == p.root.cert.pem() + second.cert.pem());
  CHECK(first->rootPem() == again->rootPem());
  CHECK(toPem(first->path) == toPem(again->path));
  CHECK(first->roots.size() == 2);

  // The same roots written canonically give the same bytes.
  const CaMaterial clean = material(p.ca.cert, p.ca.key, p.upper.cert.pem(), p.root.cert.pem() + second.cert.pem());
  auto from_clean = assembleAndValidate(clean, opts());
  REQUIRE(from_clean);
  CHECK(from_clean->rootPem() == first->rootPem());
  CHECK(toPem(from_clean->path) == toPem(first->path));

  // Order is the operator's: appending a new root must keep the old bytes as a prefix.
  const CaMaterial swapped = material(p.ca.cert, p.ca.key, p.upper.cert.pem(), second.cert.pem() + p.root.cert.pem());
  auto from_swapped = assembleAndValidate(swapped, opts());
  REQUIRE(from_swapped);
  CHECK(from_swapped->rootPem() == second.cert.pem() + p.root.cert.pem());

  const BundleReport report = inspectBundle(m, opts());
  const CheckResult* parse = find(report, "parse_root_cert");
  REQUIRE(parse != nullptr);
  CHECK_THAT(parse->detail, Catch::Contains("1 duplicate(s) dropped"));
}

TEST_CASE("garbage input is reported per input and never echoed", "[ca_bundle]") {
  const Pki p;
  const std::string marker(kMarker);
  CaMaterial m = good(p);
  std::string check;
  SECTION("garbage key with the marker in the base64") {
    m.key_pem = Secret("-----BEGIN EC PRIVATE KEY-----\n" + marker + "\n-----END EC PRIVATE KEY-----\n");
    check = "parse_ca_key";
  }
  SECTION("garbage key with the marker as a PEM header") {
    m.key_pem = Secret("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: " + marker +
                       "\n\nAAAA\n-----END RSA PRIVATE KEY-----\n");
    check = "parse_ca_key";
  }
  SECTION("garbage key without PEM") {
    m.key_pem = Secret("{\"key\": \"" + marker + "\"}");
    check = "parse_ca_key";
  }
  SECTION("a key pasted into the certificate field") {
    std::string key_text = p.ca.key.pkcs8Pem();
    m.cert_pem = key_text;
    check = "parse_ca_cert";
    // The key's base64 must not leak either.
    const std::string body = key_text.substr(28, 40);
    const BundleReport report = inspectBundle(m, opts());
    for (const CheckResult& c : report.checks) CHECK_THAT(c.detail, !Catch::Contains(body));
  }
  SECTION("garbage certificate") {
    m.cert_pem = "certificate: " + marker;
    check = "parse_ca_cert";
  }
  SECTION("garbage chain") {
    m.chain_pem = p.upper.cert.pem() + marker;
    check = "parse_cert_chain";
  }
  SECTION("garbage root") {
    m.root_pem = "-----BEGIN CERTIFICATE-----\n" + marker + "\n";
    check = "parse_root_cert";
  }
  auto bundle = assembleAndValidate(m, opts());
  REQUIRE_FALSE(bundle);
  CHECK_THAT(bundle.error().message, Catch::StartsWith("check " + check + " failed: ") && !Catch::Contains(marker));
  const BundleReport report = inspectBundle(m, opts());
  REQUIRE(report.firstFailure() != nullptr);
  CHECK(report.firstFailure()->name == check);
  for (const CheckResult& c : report.checks) {
    INFO(c.name);
    CHECK_THAT(c.detail, !Catch::Contains(marker));
  }
}

TEST_CASE("inspectBundle keeps checking after a failure", "[ca_bundle]") {
  const Pki p;
  CaMaterial m = good(p);
  m.key_pem = Secret("garbage");
  CertSpec spec;
  spec.ext_key_usage = {"clientAuth"};
  const TestCa bad_upper = issueCa(p.root, "Client Upper", spec);
  const TestCa ca = issueCa(bad_upper, "CA", CertSpec{});
  m.cert_pem = ca.cert.pem();
  m.chain_pem = bad_upper.cert.pem();
  const BundleReport report = inspectBundle(m, opts());
  CHECK_FALSE(report.ok());
  REQUIRE(report.firstFailure() != nullptr);
  CHECK(report.firstFailure()->name == "parse_ca_key");
  // Checks that do not need the key still ran and report their own findings.
  CHECK(find(report, "key_matches_cert") == nullptr);
  const CheckResult* eku = find(report, "eku_allows_server_auth");
  REQUIRE(eku != nullptr);
  CHECK_FALSE(eku->ok);
  const CheckResult* verify = find(report, "chain_verifies_to_root");
  REQUIRE(verify != nullptr);
  CHECK(verify->ok);
  REQUIRE(report.ca_cert);
  CHECK(report.ca_cert->subject == "CN=CA");
}

TEST_CASE("the validated bundle holds the parsed objects, and the files are written from them", "[ca_bundle][bundle]") {
  const Pki p;
  const CaMaterial m = good(p);
  auto bundle = assembleAndValidate(m, opts());
  REQUIRE(bundle);
  // The verified path, as objects: ca-cert, the intermediate above it, the anchoring root.
  REQUIRE(bundle->path.size() == 3);
  CHECK(bundle->path[0].info().subject == "CN=istiod intermediate");
  CHECK(bundle->path[1].info().subject == "CN=Upper Intermediate");
  CHECK(bundle->anchor().info().subject == "CN=Mesh Root");
  CHECK(bundle->anchor().info().self_signed);
  CHECK(bundle->info().is_ca);
  REQUIRE(bundle->roots.size() == 1);
  CHECK(bundle->roots[0].sameAs(bundle->anchor()));
  CHECK(keyMatchesCertificate(bundle->key, bundle->caCert()));

  SECTION("istio layout: each file is the serialisation of the typed path and roots") {
    BundleText text;
    const std::vector<OutputFile> files = filesFor(*bundle, Layout::kIstio, 0600, text);
    REQUIRE(files.size() == 4);
    CHECK(files[0].name == "ca-cert.pem");
    CHECK(files[0].content == p.ca.cert.pem());
    CHECK(files[1].name == "ca-key.pem");
    CHECK(files[1].content == m.key_pem.view());
    CHECK(files[1].mode == 0600);
    CHECK(files[2].name == "cert-chain.pem");
    CHECK(files[2].content == toPem(bundle->path));
    CHECK(files[2].content == p.ca.cert.pem() + p.upper.cert.pem() + p.root.cert.pem());
    CHECK(files[3].name == "root-cert.pem");
    CHECK(files[3].content == p.root.cert.pem());
  }
  SECTION("tls layout: tls.crt is the path without its self-signed root") {
    BundleText text;
    const std::vector<OutputFile> files = filesFor(*bundle, Layout::kTls, 0600, text);
    REQUIRE(files.size() == 3);
    CHECK(files[0].name == "tls.crt");
    CHECK(files[0].content == p.ca.cert.pem() + p.upper.cert.pem());
    CHECK(files[1].name == "tls.key");
    CHECK(files[2].name == "ca.crt");
    CHECK(files[2].content == p.root.cert.pem());
  }
}

TEST_CASE("withRootFile keeps the decided root bytes and refuses roots that do not anchor the path", "[ca_bundle][bundle]") {
  const Pki p;
  auto bundle = assembleAndValidate(good(p), opts());
  REQUIRE(bundle);
  const TestCa other = makeRoot("Other Root");
  SECTION("appended roots keep their bytes exactly, even without a final newline") {
    std::string file = p.root.cert.pem() + other.cert.pem();
    file.pop_back();
    auto rebound = withRootFile(*bundle, file, now());
    REQUIRE(rebound);
    CHECK(rebound->rootPem() == file);
    CHECK(rebound->roots.size() == 2);
    BundleText text;
    CHECK(filesFor(*rebound, Layout::kIstio, 0600, text)[3].content == file);
  }
  SECTION("a root file without the anchoring root") {
    auto rebound = withRootFile(*bundle, other.cert.pem(), now());
    REQUIRE_FALSE(rebound);
    CHECK_THAT(rebound.error().message, Catch::Contains("chain_verifies_to_root"));
  }
  SECTION("a root file with an intermediate in it") {
    auto rebound = withRootFile(*bundle, p.root.cert.pem() + p.upper.cert.pem(), now());
    REQUIRE_FALSE(rebound);
    CHECK_THAT(rebound.error().message, Catch::Contains("roots_self_signed"));
  }
  SECTION("a path that has expired since it was validated") {
    auto rebound = withRootFile(*bundle, p.root.cert.pem(), now() + hours(24 * 365 * 20));
    REQUIRE_FALSE(rebound);
    CHECK_THAT(rebound.error().message, Catch::Contains("validity_window"));
  }
}
