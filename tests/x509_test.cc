#include "common/x509.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/openssl_ptr.h"
#include "tests/support/process.h"
#include "tests/support/strict_der.h"
#include "tests/support/test_pki.h"

using namespace cacerts;
using namespace cacerts::testing;
using std::chrono::hours;

namespace {

constexpr std::string_view kMarker = "PLANTEDMARKERq7Zx";

SystemTime now() { return std::chrono::system_clock::now(); }

Certificate toCert(const TestCert& c) { return Certificate::share(c.x509.get()); }

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string sha256ColonHex(const std::string& der) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(der.data(), der.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[4];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), i == 0 ? "%02X" : ":%02X", md[i]);
    out += buf;
  }
  return out;
}

// PKCS#8 encrypted with a passphrase, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
std::string encryptedPkcs8(const TestKey& key) {
  cacerts::BioPtr bio(BIO_new(BIO_s_mem()));
  static char pass[] = "passphrase";
  PEM_write_bio_PKCS8PrivateKey(bio.get(), key.pkey.get(), EVP_aes_256_cbc(), pass, sizeof(pass) - 1, nullptr,
                                nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Legacy OpenSSL encryption: "RSA PRIVATE KEY" with Proc-Type/DEK-Info headers.
std::string legacyEncrypted(const TestKey& key) {
  cacerts::BioPtr bio(BIO_new(BIO_s_mem()));
  static unsigned char pass[] = "passphrase";
  PEM_write_bio_PrivateKey_traditional(bio.get(), key.pkey.get(), EVP_aes_128_cbc(), pass, sizeof(pass) - 1,
                                       nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("parseCertificates returns every certificate in input order", "[x509]") {
  const TestCa root = makeRoot("Parse Root");
  const TestCa inter = makeIntermediate(root, "Parse Intermediate");
  REQUIRE_FALSE(inter.cert.empty());

  SECTION("canonical input") {
    auto certs = parseCertificates(inter.cert.pem() + root.cert.pem(), "cert-chain.pem");
    REQUIRE(certs);
    REQUIRE(certs->size() == 2);
    CHECK(certs->at(0).info().subject == "CN=Parse Intermediate");
    CHECK(certs->at(1).info().subject == "CN=Parse Root");
  }
  SECTION("Vault style without trailing newline, CRLF line ends and blank lines between blocks") {
    const std::string messy = "\n\n" + replaceAll(inter.cert.pemTrimmed(), "\n", "\r\n") + "\r\n\r\n  \t\n" +
                              root.cert.pemTrimmed();
    auto certs = parseCertificates(messy, "vault field ca_chain");
    REQUIRE(certs);
    REQUIRE(certs->size() == 2);
    // Re-encoding from DER yields the canonical bytes whatever the input formatting was.
    CHECK(certs->at(0).pem() == inter.cert.pem());
    CHECK(certs->at(1).pem() == root.cert.pem());
    CHECK(toPem(*certs) == inter.cert.pem() + root.cert.pem());
  }
}

TEST_CASE("parseCertificate demands exactly one certificate", "[x509]") {
  const TestCa root = makeRoot();
  CHECK(parseCertificate(root.cert.pem(), "ca-cert"));
  auto two = parseCertificate(root.cert.pem() + root.cert.pem(), "ca-cert");
  REQUIRE_FALSE(two);
  CHECK(two.error().code == ErrorCode::kValidation);
  CHECK_THAT(two.error().message, Catch::Contains("exactly one") && Catch::Contains("found 2"));
}

TEST_CASE("parseCertificates rejects malformed input without quoting it", "[x509]") {
  const TestCa root = makeRoot();
  const std::string good = root.cert.pem();
  const std::string marker(kMarker);
  std::string input;
  std::string expected;

  SECTION("empty input") {
    input = "";
    expected = "empty";
  }
  SECTION("whitespace only") {
    input = "\n \r\n\t";
    expected = "empty";
  }
  SECTION("text before the first block") {
    input = marker + "\n" + good;
    expected = "outside PEM blocks at line 1";
  }
  SECTION("text between blocks") {
    input = good + marker + "\n" + good;
    expected = "outside PEM blocks at line";
  }
  SECTION("text after the last block") {
    input = good + "{\"" + marker + "\": 1}";
    expected = "outside PEM blocks";
  }
  SECTION("text glued to the END line") {
    input = replaceAll(good, "-----END CERTIFICATE-----", "-----END CERTIFICATE-----" + marker);
    expected = "after the END line";
  }
  SECTION("a private key where a certificate belongs") {
    input = makeKey().pkcs8Pem();
    expected = "swapped";
  }
  SECTION("an unknown block type") {
    input = "-----BEGIN " + marker + "-----\nAAAA\n-----END " + marker + "-----\n";
    expected = "unrecognised PEM block";
  }
  SECTION("a truncated block") {
    input = good.substr(0, good.size() / 2);
    expected = "no matching END line";
  }
  SECTION("characters that are not base64") {
    input = replaceAll(good, "-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n" + marker + "!\n");
    expected = "not base64";
  }
  SECTION("base64 that is not a certificate") {
    input = "-----BEGIN CERTIFICATE-----\nUExBTlRFRE1BUktFUnE3Wng=\n-----END CERTIFICATE-----\n";
    expected = "not a valid X.509 certificate";
  }
  SECTION("implausibly large input") {
    input = std::string(17 * 1024 * 1024, ' ');
    expected = "larger than 16 MiB";
  }
  SECTION("a malformed BEGIN line") {
    input = "-----BEGIN CERTIFICATE\n" + marker + "\n-----END CERTIFICATE-----\n";
    expected = "malformed BEGIN line";
  }

  auto certs = parseCertificates(input, "root-cert.pem");
  REQUIRE_FALSE(certs);
  CHECK(certs.error().code == ErrorCode::kValidation);
  CHECK_THAT(certs.error().message, Catch::StartsWith("root-cert.pem: ") && Catch::Contains(expected));
  CHECK_THAT(certs.error().message, !Catch::Contains(marker));
  // OpenSSL's error queue is left as we found it, so a later TLS call sees no stale error.
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("parsePrivateKey accepts PKCS#1, SEC1 and PKCS#8 keys", "[x509]") {
  TestKey key;
  std::string pem;
  std::string description;
  SECTION("RSA PKCS#1") {
    key = makeKey("rsa", 2048);
    pem = key.traditionalPem();
    description = "rsa-2048";
    REQUIRE(pem.rfind("-----BEGIN RSA PRIVATE KEY-----", 0) == 0);
  }
  SECTION("EC SEC1") {
    key = makeKey("ec", 256);
    pem = key.traditionalPem();
    description = "ec-256";
    REQUIRE(pem.rfind("-----BEGIN EC PRIVATE KEY-----", 0) == 0);
  }
  SECTION("EC P-384 PKCS#8 with CRLF and surrounding whitespace") {
    key = makeKey("ec", 384);
    pem = "\r\n" + replaceAll(key.pkcs8Pem(), "\n", "\r\n") + "\r\n";
    description = "ec-384";
  }
  SECTION("RSA PKCS#8") {
    key = makeKey("rsa", 3072);
    pem = key.pkcs8Pem();
    description = "rsa-3072";
  }
  auto parsed = parsePrivateKey(Secret(pem), "ca-key.pem");
  REQUIRE(parsed);
  CHECK(parsed->description() == description);
  CHECK(EVP_PKEY_eq(parsed->raw(), key.pkey.get()) == 1);
}

TEST_CASE("parsePrivateKey rejects encrypted, unsupported and malformed keys without echoing them", "[x509]") {
  const std::string marker(kMarker);
  std::string input;
  std::string expected;
  SECTION("encrypted PKCS#8") {
    input = encryptedPkcs8(makeKey());
    REQUIRE(input.find("ENCRYPTED PRIVATE KEY") != std::string::npos);
    expected = "encrypted";
  }
  SECTION("legacy encrypted PKCS#1 with Proc-Type headers") {
    input = legacyEncrypted(makeKey("rsa", 2048));
    REQUIRE(input.find("Proc-Type") != std::string::npos);
    expected = "PEM headers";
  }
  SECTION("Ed25519") {
    input = makeKey("ed25519").pkcs8Pem();
    expected = "ed25519 keys are not supported by istiod";
  }
  SECTION("two keys") {
    input = makeKey().pkcs8Pem() + makeKey().pkcs8Pem();
    expected = "found 2 blocks";
  }
  SECTION("a certificate instead of a key") {
    input = makeRoot().cert.pem();
    expected = "\"CERTIFICATE\" block";
  }
  SECTION("a public key") {
    input = makeKey().publicPem();
    expected = "\"PUBLIC KEY\" block";
  }
  SECTION("garbage inside a key block") {
    input = "-----BEGIN PRIVATE KEY-----\n" + marker + "\n-----END PRIVATE KEY-----\n";
    expected = "does not contain a valid unencrypted private key";
  }
  SECTION("non-base64 garbage inside a key block") {
    input = "-----BEGIN EC PRIVATE KEY-----\nsecret: " + marker + "\n-----END EC PRIVATE KEY-----\n";
    expected = "not base64";
  }
  SECTION("a SEC1 key under the PKCS#1 label") {
    std::string sec1 = makeKey().traditionalPem();
    input = replaceAll(sec1, "EC PRIVATE KEY", "RSA PRIVATE KEY");
    expected = "does not contain a valid";
  }
  SECTION("text around the block") {
    input = marker + "\n" + makeKey().pkcs8Pem();
    expected = "outside PEM blocks";
  }
  SECTION("empty") {
    input = "";
    expected = "empty";
  }
  auto parsed = parsePrivateKey(Secret(input), "vault field key");
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error().code == ErrorCode::kValidation);
  CHECK_THAT(parsed.error().message, Catch::StartsWith("vault field key: ") && Catch::Contains(expected));
  CHECK_THAT(parsed.error().message, !Catch::Contains(marker));
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("keyMatchesCertificate tells the certificate's own key from another key", "[x509]") {
  const TestCa root = makeRoot();
  auto own = parsePrivateKey(Secret(root.key.pkcs8Pem()), "own");
  auto other = parsePrivateKey(Secret(makeKey().pkcs8Pem()), "other");
  auto rsa = parsePrivateKey(Secret(makeKey("rsa", 2048).pkcs8Pem()), "rsa");
  REQUIRE(own);
  REQUIRE(other);
  REQUIRE(rsa);
  CHECK(keyMatchesCertificate(*own, toCert(root.cert)));
  CHECK_FALSE(keyMatchesCertificate(*other, toCert(root.cert)));
  CHECK_FALSE(keyMatchesCertificate(*rsa, toCert(root.cert)));
}

TEST_CASE("CertInfo reports the facts istiod and operators look at", "[x509]") {
  const TestCa root = makeRoot("Info Root");
  const auto nb = std::chrono::floor<std::chrono::seconds>(now() - hours(2));
  const auto na = std::chrono::floor<std::chrono::seconds>(now() + hours(48));
  CertSpec spec;
  spec.subject_entries = {{"O", "Example Mesh"}, {"CN", "istiod intermediate"}};
  spec.path_len = 0;
  spec.ext_key_usage = {"serverAuth", "clientAuth"};
  spec.uri_sans = {"spiffe://cluster.local"};
  spec.dns_sans = {"istiod.istio-system.svc"};
  spec.serial_hex = "3a:0f:01";
  spec.not_before = nb;
  spec.not_after = na;
  const TestKey key = makeKey("ec", 384);
  const TestCert cert = issueCert(spec, key, &root.cert, root.key);
  REQUIRE_FALSE(cert.empty());

  const CertInfo info = toCert(cert).info();
  CHECK(info.subject == "CN=istiod intermediate,O=Example Mesh");
  CHECK(info.issuer == "CN=Info Root");
  CHECK(info.serial_hex == "3a:0f:01");
  CHECK(info.not_before == nb);
  CHECK(info.not_after == na);
  CHECK(info.sha256_fingerprint == sha256ColonHex(cert.der()));
  CHECK(info.is_ca);
  CHECK(info.path_len == 0);
  CHECK(info.has_key_usage);
  CHECK(info.key_cert_sign);
  CHECK(info.has_eku);
  CHECK(info.ext_key_usages == std::vector<std::string>{"serverAuth", "clientAuth"});
  CHECK_FALSE(info.self_signed);
  CHECK(info.key_description == "ec-384");
  CHECK(info.signature_algorithm == "ecdsa-with-SHA256");
  CHECK(info.signature_digest == "SHA256");
  CHECK(info.uri_sans == std::vector<std::string>{"spiffe://cluster.local"});
  CHECK(info.dns_sans == std::vector<std::string>{"istiod.istio-system.svc"});

  const CertInfo root_info = toCert(root.cert).info();
  CHECK(root_info.self_signed);
  CHECK(root_info.is_ca);
  CHECK(root_info.path_len == -1);
  CHECK_FALSE(root_info.has_eku);
  CHECK(root_info.ext_key_usages.empty());

  SECTION("a certificate without basicConstraints or keyUsage") {
    CertSpec bare;
    bare.basic_constraints = false;
    bare.key_cert_sign = false;
    bare.crl_sign = false;
    const CertInfo leaf = toCert(issueCert(bare, makeKey(), &root.cert, root.key)).info();
    CHECK_FALSE(leaf.is_ca);
    CHECK_FALSE(leaf.has_key_usage);
    CHECK_FALSE(leaf.key_cert_sign);
  }
  SECTION("a CA with keyUsage but without keyCertSign") {
    CertSpec no_sign;
    no_sign.key_cert_sign = false;
    no_sign.digital_signature = true;
    const CertInfo ca = toCert(issueCert(no_sign, makeKey(), &root.cert, root.key)).info();
    CHECK(ca.is_ca);
    CHECK(ca.has_key_usage);
    CHECK_FALSE(ca.key_cert_sign);
  }
  SECTION("a self-issued certificate whose signature does not verify is not self-signed") {
    // Same subject and issuer name as the root, but signed by a different key.
    CertSpec fake;
    fake.common_name = "Info Root";
    const TestKey other = makeKey();
    const TestCert impostor = issueCert(fake, makeKey(), &root.cert, other);
    REQUIRE_FALSE(impostor.empty());
    const CertInfo i = toCert(impostor).info();
    CHECK(i.subject == i.issuer);
    CHECK_FALSE(i.self_signed);
  }
}

TEST_CASE("a notAfter beyond SystemTime's range is clamped instead of overflowing", "[x509]") {
  // Vault can issue certificates with not_after 9999-12-31T23:59:59Z.
  const TestCa root = makeRoot();
  const TestCert cert = makeIntermediate(root, "Forever").cert;
  REQUIRE(ASN1_TIME_set_string(X509_getm_notAfter(cert.x509.get()), "99991231235959Z") == 1);
  REQUIRE(X509_sign(cert.x509.get(), root.key.pkey.get(), EVP_sha256()) > 0);
  const CertInfo info = toCert(cert).info();
  CHECK(info.not_after > now() + hours(24 * 365 * 200));
  CHECK(info.not_after > info.not_before);
  CHECK_THAT(formatTime(info.not_after), Catch::StartsWith("22"));
}

TEST_CASE("Certificate copies share the object and compare by DER", "[x509]") {
  const TestCa a = makeRoot("A");
  const TestCa b = makeRoot("B");
  const Certificate ca = toCert(a.cert);
  Certificate copy = ca;
  CHECK(copy.raw() == ca.raw());
  CHECK(copy.sameAs(ca));
  auto reparsed = parseCertificate(a.cert.pem(), "a");
  REQUIRE(reparsed);
  CHECK(reparsed->raw() != ca.raw());
  CHECK(reparsed->sameAs(ca));
  CHECK(reparsed->der() == a.cert.der());
  CHECK_FALSE(toCert(b.cert).sameAs(ca));
  copy = toCert(b.cert);
  CHECK(copy.sameAs(toCert(b.cert)));
  CHECK(ca.sameAs(toCert(a.cert)));
}

TEST_CASE("generateKey makes keys of the supported types and sizes only", "[x509]") {
  SECTION("EC P-256 and P-384") {
    auto p256 = generateKey(KeyType::kEc, 256);
    auto p384 = generateKey(KeyType::kEc, 384);
    REQUIRE(p256);
    REQUIRE(p384);
    CHECK(p256->description() == "ec-256");
    CHECK(p384->description() == "ec-384");
  }
  SECTION("RSA 2048") {
    auto rsa = generateKey(KeyType::kRsa, 2048);
    REQUIRE(rsa);
    CHECK(rsa->description() == "rsa-2048");
  }
  SECTION("unsupported sizes") {
    for (auto [type, bits] : {std::pair{KeyType::kEc, 521}, std::pair{KeyType::kEc, 255},
                              std::pair{KeyType::kRsa, 1024}, std::pair{KeyType::kRsa, 8192}}) {
      auto key = generateKey(type, bits);
      REQUIRE_FALSE(key);
      CHECK(key.error().code == ErrorCode::kInvalidArgument);
      CHECK_THAT(key.error().message, Catch::Contains(std::to_string(bits)));
    }
  }
  SECTION("two keys differ and survive a PKCS#8 round trip") {
    auto first = generateKey(KeyType::kEc, 256);
    auto second = generateKey(KeyType::kEc, 256);
    REQUIRE(first);
    REQUIRE(second);
    CHECK(EVP_PKEY_eq(first->raw(), second->raw()) != 1);
    const Secret pem = first->pkcs8Pem();
    CHECK(pem.view().rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
    CHECK(pem.view().back() == '\n');
    auto back = parsePrivateKey(pem, "generated");
    REQUIRE(back);
    CHECK(EVP_PKEY_eq(back->raw(), first->raw()) == 1);
  }
}

TEST_CASE("makeCsr produces a signed request with CN, O, URI SAN and CA basic constraints", "[x509]") {
  auto key = generateKey(KeyType::kEc, 256);
  REQUIRE(key);
  cacerts::CsrSpec spec;
  spec.common_name = "istiod intermediate cluster1";
  spec.organization = "Example Mesh";
  spec.uri_sans = {"spiffe://cluster.local"};
  spec.max_path_length = 0;
  auto csr = makeCsr(*key, spec);
  REQUIRE(csr);
  CHECK(csr->rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0) == 0);
  CHECK(csr->back() == '\n');

  cacerts::BioPtr bio(BIO_new_mem_buf(csr->data(), static_cast<int>(csr->size())));
  cacerts::X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(req);
  CHECK(X509_REQ_verify(req.get(), key->raw()) == 1);
  CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req.get()), key->raw()) == 1);
  CHECK(X509_REQ_get_signature_nid(req.get()) == NID_ecdsa_with_SHA256);

  cacerts::ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  REQUIRE(exts);
  int crit = 0;
  cacerts::BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(X509V3_get_d2i(exts.get(), NID_basic_constraints, &crit, nullptr)));
  REQUIRE(bc);
  CHECK(crit == 1);
  CHECK(bc->ca != 0);
  REQUIRE(bc->pathlen != nullptr);
  CHECK(ASN1_INTEGER_get(bc->pathlen) == 0);
  cacerts::Asn1BitStringPtr ku(static_cast<ASN1_BIT_STRING*>(X509V3_get_d2i(exts.get(), NID_key_usage, &crit, nullptr)));
  REQUIRE(ku);
  CHECK(crit == 1);
  CHECK(ASN1_BIT_STRING_get_bit(ku.get(), 5) == 1);  // keyCertSign
  CHECK(ASN1_BIT_STRING_get_bit(ku.get(), 6) == 1);  // cRLSign
  CHECK(ASN1_BIT_STRING_get_bit(ku.get(), 0) == 0);  // digitalSignature not requested

  // The test PKI (and so the Vault test server) reads the same request.
  const ParsedCsr parsed = parseCsr(*csr);
  REQUIRE_FALSE(parsed.public_key.empty());
  CHECK(parsed.common_name == "istiod intermediate cluster1");
  CHECK(parsed.uri_sans == std::vector<std::string>{"spiffe://cluster.local"});
  bool has_org = false;
  for (const auto& [k, v] : parsed.subject_entries) has_org = has_org || (k == "O" && v == "Example Mesh");
  CHECK(has_org);

  // A certificate signed from it carries our key.
  const TestCa root = makeRoot();
  const TestCert signed_cert = signCsr(*csr, CertSpec{}, root);
  REQUIRE_FALSE(signed_cert.empty());
  auto pkcs8 = key->pkcs8Pem();
  auto reparsed = parsePrivateKey(pkcs8, "generated");
  REQUIRE(reparsed);
  CHECK(keyMatchesCertificate(*reparsed, toCert(signed_cert)));
}

TEST_CASE("makeCsr without a CA request or path length omits those constraints", "[x509]") {
  auto key = generateKey(KeyType::kRsa, 2048);
  REQUIRE(key);
  cacerts::CsrSpec spec;
  spec.common_name = "plain";
  SECTION("no CA request: no extensions at all") {
    spec.request_ca = false;
    auto csr = makeCsr(*key, spec);
    REQUIRE(csr);
    cacerts::BioPtr bio(BIO_new_mem_buf(csr->data(), static_cast<int>(csr->size())));
    cacerts::X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(req);
    CHECK(X509_REQ_verify(req.get(), key->raw()) == 1);
    const cacerts::ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
    CHECK((exts == nullptr || sk_X509_EXTENSION_num(exts.get()) == 0));
  }
  SECTION("max path length -1: CA:TRUE without pathlen") {
    spec.max_path_length = -1;
    auto csr = makeCsr(*key, spec);
    REQUIRE(csr);
    cacerts::BioPtr bio(BIO_new_mem_buf(csr->data(), static_cast<int>(csr->size())));
    cacerts::X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(req);
    const cacerts::ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
    REQUIRE(exts != nullptr);
    const cacerts::BasicConstraintsPtr bc(
        static_cast<BASIC_CONSTRAINTS*>(X509V3_get_d2i(exts.get(), NID_basic_constraints, nullptr, nullptr)));
    REQUIRE(bc != nullptr);
    CHECK(bc->ca != 0);
    CHECK(bc->pathlen == nullptr);
  }
}

TEST_CASE("makeCsr rejects a spec it cannot encode and names the option", "[x509]") {
  auto key = generateKey(KeyType::kEc, 256);
  REQUIRE(key);
  cacerts::CsrSpec spec;
  spec.common_name = "ok";
  std::string expected;
  SECTION("empty common name") {
    spec.common_name = "";
    expected = "--common-name";
  }
  SECTION("common name over 64 characters") {
    spec.common_name = std::string(65, 'x');
    expected = "--common-name";
  }
  SECTION("URI SAN that is not a URI") {
    spec.uri_sans = {"not a uri"};
    expected = "--uri-sans";
  }
  SECTION("negative path length other than -1") {
    spec.max_path_length = -2;
    expected = "path length";
  }
  auto csr = makeCsr(*key, spec);
  REQUIRE_FALSE(csr);
  CHECK(csr.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(csr.error().message, Catch::Contains(expected));
}

TEST_CASE("verifyChain returns the verified path from leaf to root", "[x509]") {
  const TestCa root = makeRoot("Path Root");
  const TestCa upper = makeIntermediate(root, "Upper");
  const TestCa lower = makeIntermediate(upper, "Lower");
  const TestCa unrelated = makeRoot("Unrelated");
  // Intermediates in any order, with a stray certificate and the root itself among them.
  auto path = verifyChain(toCert(lower.cert), {toCert(root.cert), toCert(unrelated.cert), toCert(upper.cert)},
                          {toCert(unrelated.cert), toCert(root.cert)}, now());
  REQUIRE(path);
  REQUIRE(path->size() == 3);
  CHECK(path->at(0).sameAs(toCert(lower.cert)));
  CHECK(path->at(1).sameAs(toCert(upper.cert)));
  CHECK(path->at(2).sameAs(toCert(root.cert)));

  SECTION("a root used directly as the signing certificate is its own path") {
    auto self = verifyChain(toCert(root.cert), {}, {toCert(root.cert)}, now());
    REQUIRE(self);
    CHECK(self->size() == 1);
  }
}

TEST_CASE("verifyChain judges validity at the time it is given", "[x509]") {
  const TestCa root = makeRoot("Time Root");
  CertSpec spec;
  spec.not_before = now() - hours(1);
  spec.not_after = now() + hours(10);
  const TestCa inter = makeIntermediate(root, "Ten Hours", spec);
  const Certificate leaf = toCert(inter.cert);
  const std::vector<Certificate> roots = {toCert(root.cert)};

  CHECK(verifyChain(leaf, {}, roots, now()));
  CHECK(verifyChain(leaf, {}, roots, now() + hours(9)));

  auto expired = verifyChain(leaf, {}, roots, now() + hours(11));
  REQUIRE_FALSE(expired);
  CHECK(expired.error().code == ErrorCode::kValidation);
  CHECK_THAT(expired.error().message, Catch::Contains("certificate has expired") && Catch::Contains("CN=Ten Hours"));

  auto early = verifyChain(leaf, {}, roots, now() - hours(2));
  REQUIRE_FALSE(early);
  CHECK_THAT(early.error().message, Catch::Contains("certificate is not yet valid") && Catch::Contains("clock"));
}

TEST_CASE("verifyChain refuses chains that do not reach a given root", "[x509]") {
  const TestCa root = makeRoot("Real Root");
  const TestCa other = makeRoot("Other Root");
  const TestCa inter = makeIntermediate(root, "Inter");
  const TestCa lower = makeIntermediate(inter, "Lower");

  SECTION("issued by another root") {
    auto r = verifyChain(toCert(inter.cert), {}, {toCert(other.cert)}, now());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("unable to get local issuer certificate") &&
                                      Catch::Contains("different root"));
  }
  SECTION("the chain's own root is not trusted") {
    auto r = verifyChain(toCert(inter.cert), {toCert(root.cert)}, {toCert(other.cert)}, now());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("self-signed certificate in certificate chain"));
  }
  SECTION("missing intermediate") {
    auto r = verifyChain(toCert(lower.cert), {}, {toCert(root.cert)}, now());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("missing intermediate"));
  }
  SECTION("no partial chains: an intermediate is not an anchor") {
    auto r = verifyChain(toCert(lower.cert), {}, {toCert(inter.cert)}, now());
    REQUIRE_FALSE(r);
  }
  SECTION("an issuer that is not a CA") {
    CertSpec not_ca;
    not_ca.is_ca = false;
    const TestCa fake = makeIntermediate(root, "Not A CA", not_ca);
    const TestCert below = issueCert(CertSpec{}, makeKey(), &fake.cert, fake.key);
    REQUIRE_FALSE(below.empty());
    auto r = verifyChain(toCert(below), {toCert(fake.cert)}, {toCert(root.cert)}, now());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("CA:TRUE"));
  }
  SECTION("no roots at all") {
    auto r = verifyChain(toCert(inter.cert), {}, {}, now());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kValidation);
  }
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("formatTime prints RFC 3339 UTC with second precision", "[x509]") {
  CHECK(formatTime(SystemTime{}) == "1970-01-01T00:00:00Z");
  CHECK(formatTime(std::chrono::system_clock::from_time_t(1764000000)) == "2025-11-24T16:00:00Z");
  CHECK(formatTime(std::chrono::system_clock::from_time_t(1764000000) + std::chrono::milliseconds(999)) ==
        "2025-11-24T16:00:00Z");
}

namespace {

// PKCS#8 PEM of a P-256 key whose private scalar is `priv`'s and whose public point is
// `pub`'s: two halves that do not belong together.
std::string mixedEcKeyPem(const EVP_PKEY* priv, const EVP_PKEY* pub) {
  BIGNUM* d_raw = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_PRIV_KEY, &d_raw) == 1);
  cacerts::SecretBignumPtr d(d_raw);
  unsigned char point[133];
  std::size_t point_len = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &point_len) == 1);
  cacerts::ParamBuilderPtr bld(OSSL_PARAM_BLD_new());
  REQUIRE(OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1);
  REQUIRE(OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) == 1);
  REQUIRE(OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point, point_len) == 1);
  cacerts::ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  cacerts::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  REQUIRE(EVP_PKEY_fromdata_init(ctx.get()) == 1);
  EVP_PKEY* mixed_raw = nullptr;
  REQUIRE(EVP_PKEY_fromdata(ctx.get(), &mixed_raw, EVP_PKEY_KEYPAIR, params.get()) == 1);
  cacerts::EvpPkeyPtr mixed(mixed_raw);
  cacerts::BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), mixed.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("parsePrivateKey rejects a key whose halves disagree, also when one half comes from a generated key",
          "[x509]") {
  auto generated = generateKey(KeyType::kEc, 256);
  REQUIRE(generated);
  (void)generated->pkcs8Pem();  // exported, as the PKI source does
  const TestKey other = makeKey("ec", 256);
  SECTION("private half generated here") {
    auto parsed = parsePrivateKey(Secret(mixedEcKeyPem(generated->raw(), other.pkey.get())), "ca-key");
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().message, Catch::Contains("inconsistent"));
  }
  SECTION("public half generated here") {
    auto parsed = parsePrivateKey(Secret(mixedEcKeyPem(other.pkey.get(), generated->raw())), "ca-key");
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().message, Catch::Contains("inconsistent"));
  }
  SECTION("neither") {
    auto parsed = parsePrivateKey(Secret(mixedEcKeyPem(other.pkey.get(), makeKey("ec", 256).pkey.get())), "ca-key");
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().message, Catch::Contains("inconsistent"));
  }
}

TEST_CASE("a generated key's exported PEM parses back to the same key, whatever surrounds it", "[x509]") {
  for (auto [type, bits] : {std::pair{KeyType::kEc, 256}, std::pair{KeyType::kRsa, 2048}}) {
    auto key = generateKey(type, bits);
    REQUIRE(key);
    const Secret pem = key->pkcs8Pem();
    for (const std::string& text : {std::string(pem.view()), "\n  " + std::string(pem.view()) + "\n\n"}) {
      auto back = parsePrivateKey(Secret(text), "generated");
      REQUIRE(back);
      CHECK(EVP_PKEY_eq(back->raw(), key->raw()) == 1);
      CHECK(back->description() == key->description());
    }
  }
}

TEST_CASE("parsing the same certificate again gives the same facts", "[x509]") {
  const TestCa root = makeRoot("Reparsed Root");
  const TestCert leaf = issueCert(CertSpec{}, makeKey(), &root.cert, root.key);
  const std::string bundle = leaf.pem() + root.cert.pem();
  auto first = parseCertificates(bundle, "first");
  auto second = parseCertificates(bundle, "second");
  REQUIRE(first);
  REQUIRE(second);
  REQUIRE(first->size() == 2);
  REQUIRE(second->size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK((*first)[i].sameAs((*second)[i]));
    CHECK((*first)[i].info().sha256_fingerprint == (*second)[i].info().sha256_fingerprint);
    CHECK((*first)[i].info().self_signed == (*second)[i].info().self_signed);
  }
  CHECK_FALSE((*second)[0].info().self_signed);
  CHECK((*second)[1].info().self_signed);
}

namespace {

// Adopts a key built from parameters, bypassing parsePrivateKey's structural checks: what
// proveKeyMatches must still catch on its own.
PrivateKey keyFromParams(const char* type, const ParamsPtr& params) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  REQUIRE(EVP_PKEY_fromdata_init(ctx.get()) == 1);
  EVP_PKEY* raw = nullptr;
  REQUIRE(EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) == 1);
  return PrivateKey::adopt(EvpPkeyPtr(raw));
}

SecretBignumPtr bnParam(const EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(key, name, &raw) == 1);
  return SecretBignumPtr(raw);
}

// An RSA key with `key`'s modulus and public exponent whose private values are altered:
// add_to_d is added to d, and with break_crt to the first CRT exponent too. OpenSSL signs
// with the CRT values and falls back to d when the result does not verify, so only a key
// with both broken makes bad signatures; Go's Validate refuses either.
PrivateKey alteredRsaKey(const EVP_PKEY* key, bool break_crt) {
  const char* names[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_D,
                         OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                         OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  std::vector<SecretBignumPtr> values;
  for (const char* name : names) values.push_back(bnParam(key, name));
  REQUIRE(BN_add_word(values[2].get(), 2) == 1);                  // d
  if (break_crt) REQUIRE(BN_add_word(values[5].get(), 2) == 1);  // d mod (p-1)
  ParamBuilderPtr bld(OSSL_PARAM_BLD_new());
  for (std::size_t i = 0; i < values.size(); ++i) {
    REQUIRE(OSSL_PARAM_BLD_push_BN(bld.get(), names[i], values[i].get()) == 1);
  }
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  return keyFromParams("RSA", params);
}

// PKCS#8 PEM of a key (for feeding parsePrivateKey).
Secret pemOf(const PrivateKey& key) { return key.pkcs8Pem(); }

}  // namespace

TEST_CASE("proveKeyMatches proves the key with a signature, not only by its public half", "[x509][key-proof]") {
  const TestCa root = makeRoot("Proof Root");
  SECTION("the certificate's own key, EC and RSA") {
    for (const TestKey& k : {makeKey("ec", 256), makeKey("ec", 384), makeKey("rsa", 2048)}) {
      const Certificate cert = toCert(issueCert(CertSpec{}, k, &root.cert, root.key));
      auto key = parsePrivateKey(Secret(k.pkcs8Pem()), "ca-key");
      REQUIRE(key);
      CHECK(proveKeyMatches(*key, cert) == KeyProof::kProven);
      CHECK(keyMatchesCertificate(*key, cert));
    }
  }
  SECTION("another key") {
    const Certificate cert = toCert(issueCert(CertSpec{}, makeKey(), &root.cert, root.key));
    auto other = parsePrivateKey(Secret(makeKey().pkcs8Pem()), "ca-key");
    REQUIRE(other);
    CHECK(proveKeyMatches(*other, cert) == KeyProof::kOtherKey);
    CHECK_FALSE(keyMatchesCertificate(*other, cert));
  }
  SECTION("EC: the certificate's public point with another private scalar") {
    const TestKey k = makeKey("ec", 256);
    const Certificate cert = toCert(issueCert(CertSpec{}, k, &root.cert, root.key));
    const Secret mixed(mixedEcKeyPem(makeKey("ec", 256).pkey.get(), k.pkey.get()));
    // parsePrivateKey refuses it; adopted directly, the signature proof refuses it too.
    CHECK_FALSE(parsePrivateKey(mixed, "ca-key"));
    BioPtr bio(BIO_new_mem_buf(mixed.view().data(), static_cast<int>(mixed.view().size())));
    EvpPkeyPtr raw(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(raw);
    const PrivateKey adopted = PrivateKey::adopt(std::move(raw));
    CHECK(EVP_PKEY_eq(adopted.raw(), X509_get0_pubkey(cert.raw())) == 1);
    CHECK(proveKeyMatches(adopted, cert) == KeyProof::kBrokenPrivate);
  }
  SECTION("RSA: the certificate's modulus with a corrupted private exponent and CRT value") {
    const TestKey k = makeKey("rsa", 2048);
    const Certificate cert = toCert(issueCert(CertSpec{}, k, &root.cert, root.key));
    const PrivateKey broken = alteredRsaKey(k.pkey.get(), /*break_crt=*/true);
    CHECK(EVP_PKEY_eq(broken.raw(), X509_get0_pubkey(cert.raw())) == 1);
    CHECK(proveKeyMatches(broken, cert) == KeyProof::kBrokenPrivate);
    CHECK_FALSE(parsePrivateKey(pemOf(broken), "ca-key"));
  }
}

TEST_CASE("parsePrivateKey refuses an RSA key whose private exponent disagrees with its factors", "[x509][key-proof]") {
  // OpenSSL would still sign correctly with the CRT values, but Go's rsa Validate (and so
  // istiod) refuses the key: the cheap arithmetic check must catch it.
  const TestKey k = makeKey("rsa", 2048);
  auto parsed = parsePrivateKey(pemOf(alteredRsaKey(k.pkey.get(), /*break_crt=*/false)), "ca-key");
  REQUIRE_FALSE(parsed);
  CHECK_THAT(parsed.error().message, Catch::Contains("ca-key: the private key is inconsistent"));
  // The untouched key passes, in every encoding istiod accepts.
  CHECK(parsePrivateKey(Secret(k.pkcs8Pem()), "ca-key"));
  CHECK(parsePrivateKey(Secret(k.traditionalPem()), "ca-key"));
}

TEST_CASE("an RSA-4096 key as Istio's tooling makes it parses and is proven", "[x509][key-proof]") {
  const TestKey k = makeKey("rsa", 4096);
  const TestCa root = makeRoot("Proof Root 4096");
  const Certificate cert = toCert(issueCert(CertSpec{}, k, &root.cert, root.key));
  auto key = parsePrivateKey(Secret(k.pkcs8Pem()), "ca-key");
  REQUIRE(key);
  CHECK(key->description() == "rsa-4096");
  CHECK(proveKeyMatches(*key, cert) == KeyProof::kProven);
}

namespace {

std::string csrDer(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(req);
  unsigned char* raw = nullptr;
  const int len = i2d_X509_REQ(req.get(), &raw);
  const OpenSslBytes buf(raw);
  REQUIRE(len > 0);
  return std::string(reinterpret_cast<const char*>(buf.get()), static_cast<std::size_t>(len));
}

// The DER of each extension value of a CSR, with its short name.
std::vector<std::pair<std::string, std::string>> csrExtensionValues(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(req);
  ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
    out.emplace_back(OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(ext))),
                     std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                                 static_cast<std::size_t>(ASN1_STRING_length(value))));
  }
  return out;
}

// Every CSR shape the agent asks Vault to sign.
std::vector<std::string> agentCsrs() {
  std::vector<std::string> out;
  for (auto [type, bits] : {std::pair{KeyType::kEc, 256}, std::pair{KeyType::kRsa, 2048}}) {
    auto key = generateKey(type, bits);
    REQUIRE(key);
    for (int path_len : {0, 3, -1}) {
      cacerts::CsrSpec spec;
      spec.common_name = "istiod intermediate cluster1";
      spec.organization = "Example Mesh";
      spec.uri_sans = {"spiffe://cluster.local", "spiffe://cluster.local/ns/istio-system"};
      spec.max_path_length = path_len;
      auto csr = makeCsr(*key, spec);
      REQUIRE(csr);
      out.push_back(*csr);
    }
    cacerts::CsrSpec plain;
    plain.common_name = "plain";
    plain.request_ca = false;
    auto csr = makeCsr(*key, plain);
    REQUIRE(csr);
    out.push_back(*csr);
  }
  return out;
}

}  // namespace

TEST_CASE("the strict DER check rejects what strict parsers reject", "[x509][der]") {
  using namespace std::string_literals;
  CHECK(strictDerProblem("\x30\x03\x01\x01\xff"s).empty());                 // SEQUENCE { TRUE }
  CHECK(strictDerProblem("\x30\x06\x01\x01\x00\x02\x01\x05"s).empty());     // { FALSE, 5 }
  CHECK_THAT(strictDerProblem("\x30\x03\x01\x01\x01"s), Catch::Contains("BOOLEAN"));
  CHECK_THAT(strictDerProblem("\x30\x81\x03\x01\x01\xff"s), Catch::Contains("long-form length"));
  CHECK_THAT(strictDerProblem("\x30\x80\x01\x01\xff\x00\x00"s), Catch::Contains("indefinite"));
  CHECK_THAT(strictDerProblem("\x02\x02\x00\x05"s), Catch::Contains("INTEGER"));
  CHECK_THAT(strictDerProblem("\x02\x02\xff\x85"s), Catch::Contains("INTEGER"));
  CHECK(strictDerProblem("\x02\x02\x00\x85"s).empty());
  CHECK_THAT(strictDerProblem("\x03\x02\x01\x07"s), Catch::Contains("unused bits"));
  CHECK_THAT(strictDerProblem("\x31\x06\x02\x01\x07\x02\x01\x05"s), Catch::Contains("ascending"));
  CHECK_THAT(strictDerProblem("\x30\x00\x00"s), Catch::Contains("after the element"));
  CHECK_THAT(strictDerProblem("\x30\x05\x01\x01\xff"s), Catch::Contains("past the end"));
}

TEST_CASE("every structure makeCsr encodes is strict DER: the request and each extension value", "[x509][der]") {
  for (const std::string& csr : agentCsrs()) {
    INFO(csr);
    CHECK(strictDerProblem(csrDer(csr)) == "");
    for (const auto& [name, value] : csrExtensionValues(csr)) {
      INFO(name);
      CHECK(strictDerProblem(value) == "");
    }
  }
}

TEST_CASE("basicConstraints in the CSR encodes cA TRUE as 0xFF", "[x509][der]") {
  auto key = generateKey(KeyType::kEc, 256);
  REQUIRE(key);
  cacerts::CsrSpec spec;
  spec.common_name = "istiod intermediate";
  spec.max_path_length = 0;
  auto csr = makeCsr(*key, spec);
  REQUIRE(csr);
  bool found = false;
  for (const auto& [name, value] : csrExtensionValues(*csr)) {
    if (name != "basicConstraints") continue;
    found = true;
    // SEQUENCE { BOOLEAN TRUE, INTEGER 0 }
    CHECK(value == std::string("\x30\x06\x01\x01\xff\x02\x01\x00", 8));
  }
  CHECK(found);
}

namespace {

std::string findOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

}  // namespace

TEST_CASE("Go's crypto/x509 and encoding/asn1 accept every CSR the agent makes", "[x509][der][go]") {
  // Vault and istiod are Go programs. scripts/install-deps.sh installs golang-go, so a
  // missing toolchain is a failure here, not a reason to skip.
  const std::string go = findOnPath("go");
  INFO("go not found on PATH: run scripts/install-deps.sh (it installs golang-go)");
  REQUIRE_FALSE(go.empty());
  TempDir dir(/*on_tmpfs=*/false);
  const std::map<std::string, std::string> env = {
      {"GO111MODULE", "off"}, {"GOCACHE", dir.file("gocache")}, {"HOME", dir.path()},
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}};
  const std::string checker = dir.file("csrcheck");
  const ProcessResult built =
      runProcess(go, {"build", "-o", checker, std::string(CACERTS_SOURCE_DIR) + "/tests/go/csrcheck/main.go"}, env,
                 std::chrono::minutes(3));
  INFO(built.out + built.err);
  REQUIRE(built.exit_code == 0);
  int n = 0;
  for (const std::string& csr : agentCsrs()) {
    const std::string file = dir.file("csr" + std::to_string(n++) + ".pem");
    writeFile(file, csr);
    const ProcessResult r = runProcess(checker, {file}, {}, std::chrono::seconds(30));
    INFO(csr);
    CHECK(r.out == "ok\n");
    CHECK(r.exit_code == 0);
  }
}
