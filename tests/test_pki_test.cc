#include "tests/support/test_pki.h"

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "common/openssl_ptr.h"

using namespace cacerts::testing;

namespace {

// Verifies leaf against root with OpenSSL's default chain rules at the current time.
bool verifies(const TestCert& leaf, const TestCert& root, const std::vector<TestCert>& untrusted = {}) {
  cacerts::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root.x509.get());
  cacerts::BorrowedX509StackPtr chain(sk_X509_new_null());  // entries stay owned by TestCert
  for (const auto& c : untrusted) sk_X509_push(chain.get(), c.x509.get());
  cacerts::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.x509.get(), chain.get());
  return X509_verify_cert(ctx.get()) == 1;
}

}  // namespace

TEST_CASE("test PKI makes keys of every supported type and size", "[test-pki]") {
  CHECK(makeKey("ec", 256).type() == "ec");
  CHECK(makeKey("ec", 384).type() == "ec");
  CHECK(makeKey("rsa", 2048).type() == "rsa");
  CHECK(makeKey("ec", 255).empty());
  CHECK(makeKey("dsa", 2048).empty());

  const TestKey ec = makeKey();
  CHECK(ec.traditionalPem().rfind("-----BEGIN EC PRIVATE KEY-----", 0) == 0);
  CHECK(ec.pkcs8Pem().rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  CHECK(samePublicKey(TestKey::fromPem(ec.traditionalPem()), ec));
  CHECK(samePublicKey(TestKey::fromPem(ec.pkcs8Pem()), ec));
  CHECK_FALSE(samePublicKey(makeKey(), ec));
}

TEST_CASE("test PKI builds a root and intermediate that verify as a chain", "[test-pki]") {
  const TestCa root = makeRoot("Root A");
  CertSpec spec;
  spec.path_len = 0;
  const TestCa inter = makeIntermediate(root, "Intermediate A", spec);
  REQUIRE_FALSE(root.cert.empty());
  REQUIRE_FALSE(inter.cert.empty());

  CHECK(root.cert.selfSigned());
  CHECK_FALSE(inter.cert.selfSigned());
  CHECK(inter.cert.isCa());
  CHECK(inter.cert.pathLen() == 0);
  CHECK(root.cert.pathLen() == -1);
  CHECK(inter.cert.commonName() == "Intermediate A");
  CHECK(X509_get0_subject_key_id(inter.cert.x509.get()) != nullptr);
  CHECK(X509_get0_authority_key_id(inter.cert.x509.get()) != nullptr);
  CHECK(verifies(inter.cert, root.cert));
  CHECK_FALSE(verifies(inter.cert, makeRoot("Other").cert));

  CertSpec leaf_spec;
  leaf_spec.is_ca = false;
  leaf_spec.key_cert_sign = leaf_spec.crl_sign = false;
  leaf_spec.digital_signature = true;
  leaf_spec.ext_key_usage = {"serverAuth"};
  leaf_spec.dns_sans = {"localhost"};
  leaf_spec.ip_sans = {"127.0.0.1"};
  const TestCert leaf = issueCert(leaf_spec, makeKey(), &inter.cert, inter.key);
  CHECK(verifies(leaf, root.cert, {inter.cert}));
  CHECK_FALSE(verifies(leaf, root.cert));
}

TEST_CASE("test PKI honours validity, serial and PEM round trips", "[test-pki]") {
  const auto now = std::chrono::system_clock::now();
  const TestCa expired = makeRoot("Old", now - std::chrono::hours(48), now - std::chrono::hours(24));
  CHECK(expired.cert.notAfter() < now);
  CHECK_FALSE(verifies(expired.cert, expired.cert));

  CertSpec spec;
  spec.serial_hex = "0a:0b:0c";
  const TestKey key = makeKey();
  const TestCert cert = issueCert(spec, key, nullptr, key);
  CHECK(cert.serialColonHex() == "0a:0b:0c");
  CHECK(cert.pem().back() == '\n');
  CHECK(cert.pemTrimmed().back() != '\n');
  CHECK(TestCert::fromPem(cert.pem()).der() == cert.der());
  const auto chain = parseCertChain(cert.pem() + expired.cert.pem());
  REQUIRE(chain.size() == 2);
  CHECK(chain[1].commonName() == "Old");
  CHECK(TestCert::fromPem("garbage").empty());
}

TEST_CASE("test PKI signs a CSR only when its signature verifies", "[test-pki]") {
  const TestCa root = makeRoot();
  const TestKey key = makeKey("ec", 384);
  CsrSpec csr_spec;
  csr_spec.common_name = "istiod intermediate";
  csr_spec.uri_sans = {"spiffe://cluster.local"};
  const std::string csr = makeCsr(key, csr_spec);
  REQUIRE_FALSE(csr.empty());

  const ParsedCsr parsed = parseCsr(csr);
  CHECK(parsed.common_name == "istiod intermediate");
  CHECK(parsed.uri_sans == std::vector<std::string>{"spiffe://cluster.local"});
  CHECK(samePublicKey(parsed.public_key, key));

  CertSpec spec;
  spec.common_name = "signed";
  const TestCert cert = signCsr(csr, spec, root);
  REQUIRE_FALSE(cert.empty());
  CHECK(samePublicKey(cert.publicKey(), key));
  CHECK(verifies(cert, root.cert));

  // Flip one character inside the base64 body: the self-signature no longer verifies.
  std::string tampered = csr;
  const auto pos = tampered.find('\n', tampered.size() / 2);
  tampered[pos - 3] = tampered[pos - 3] == 'A' ? 'B' : 'A';
  CHECK(signCsr(tampered, spec, root).empty());
}
