// In-process test PKI: keys, certificates and CSRs minted at test time, so no private key
// is ever committed. Used by unit tests, end-to-end tests and the Vault test server.
//
// Every OpenSSL object is owned by a shared_ptr with the matching deleter; copies of
// TestKey/TestCert share the underlying object. Certificates are signed with SHA-256 and
// carry SubjectKeyIdentifier and AuthorityKeyIdentifier.
//
// Failures (a bad key type, an unparsable PEM) are reported as null objects, never as
// exceptions: tests REQUIRE on the result.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace cacerts::testing {

struct TestKey {
  std::shared_ptr<EVP_PKEY> pkey{};

  // "-----BEGIN PRIVATE KEY-----" (PKCS#8), with a trailing newline.
  std::string pkcs8Pem() const;
  // RSA → "RSA PRIVATE KEY" (PKCS#1), EC → "EC PRIVATE KEY" (SEC1), with a trailing newline.
  std::string traditionalPem() const;
  // "-----BEGIN PUBLIC KEY-----" (SubjectPublicKeyInfo).
  std::string publicPem() const;
  // "rsa", "ec", "ed25519" or "" for an empty key.
  std::string type() const;
  bool empty() const { return pkey == nullptr; }

  // Parses an unencrypted private key in any PEM form; empty key on failure.
  static TestKey fromPem(const std::string& pem);
};

// type "ec" with bits 256 or 384 (521 also works), "rsa" with 2048/3072/4096, "ed25519".
// Returns an empty key for an unsupported combination.
TestKey makeKey(const std::string& type = "ec", int bits = 256);

// True when both keys hold the same public key.
bool samePublicKey(const TestKey& a, const TestKey& b);

struct CertSpec {
  std::string common_name = "test";
  std::string organization{};
  // When non-empty, replaces common_name/organization: ordered (short name, value) pairs,
  // e.g. {{"O", "Example"}, {"CN", "x"}}.
  std::vector<std::pair<std::string, std::string>> subject_entries{};
  bool is_ca = true;
  int path_len = -1;               // -1: no pathlen constraint
  bool basic_constraints = true;   // false: omit the extension entirely
  bool key_cert_sign = true, crl_sign = true, digital_signature = false;
  bool key_encipherment = false;
  std::vector<std::string> ext_key_usage{};  // e.g. {"clientAuth"}; empty: no EKU extension
  std::vector<std::string> uri_sans{}, dns_sans{}, ip_sans{};
  SystemTime not_before{}, not_after{};  // default-constructed: now-1h .. now+365d
  std::string serial_hex{};            // hex, colons allowed; empty: random 16 bytes
  bool v1 = false;                     // an X.509 v1 certificate: no extensions at all
};

struct TestCert {
  std::shared_ptr<X509> x509{};

  std::string pem() const;          // with trailing newline
  std::string pemTrimmed() const;   // without trailing newline (Vault style)
  std::string der() const;          // raw DER bytes
  std::string serialColonHex() const;  // lowercase "3a:0f:..."
  std::string commonName() const;
  SystemTime notBefore() const;
  SystemTime notAfter() const;
  // Path length from basic constraints; -1 when unlimited or absent.
  int pathLen() const;
  bool isCa() const;
  bool selfSigned() const;
  TestKey publicKey() const;  // the certificate's public key (no private part)
  bool empty() const { return x509 == nullptr; }

  // First certificate of a PEM text; empty cert on failure.
  static TestCert fromPem(const std::string& pem);
};

// All certificates of a PEM text, in order.
std::vector<TestCert> parseCertChain(const std::string& pem);

// issuer == nullptr: self-signed (issuer_key must equal subject_key). Returns an empty
// cert if signing fails. subject_key may hold only a public key.
TestCert issueCert(const CertSpec& spec, const TestKey& subject_key, const TestCert* issuer,
                   const TestKey& issuer_key);

struct TestCa {
  TestKey key{};
  TestCert cert{};
};

// EC P-256 self-signed CA. nb/na default as in CertSpec.
TestCa makeRoot(const std::string& cn = "Test Root", SystemTime nb = {}, SystemTime na = {});
// EC P-256 CA signed by parent; spec.common_name is replaced by cn.
TestCa makeIntermediate(const TestCa& parent, const std::string& cn = "Test Intermediate",
                        CertSpec spec = {});

struct CrlSpec {
  SystemTime this_update{}, next_update{};  // default: now-1h .. now+7d
  bool without_next_update = false;
  std::vector<std::string> revoked_serials_hex{};
};
// PEM "X509 CRL" (trailing newline) issued under issuer's name and signed with its key;
// empty string on failure.
std::string makeCrl(const TestCa& issuer, const CrlSpec& spec = {});

struct CsrSpec {
  std::string common_name = "test";
  std::string organization{};
  std::vector<std::string> uri_sans{}, dns_sans{};
  bool request_ca = true;  // adds basicConstraints CA:TRUE to the request
};
// PEM CSR (trailing newline) signed by key; empty string on failure.
std::string makeCsr(const TestKey& key, const CsrSpec& spec);

// Contents of a PEM CSR after verifying its self-signature; public_key is empty on failure.
struct ParsedCsr {
  TestKey public_key{};
  std::vector<std::pair<std::string, std::string>> subject_entries{};
  std::string common_name{};
  std::vector<std::string> uri_sans{}, dns_sans{}, ip_sans{};
};
ParsedCsr parseCsr(const std::string& csr_pem);

// Signs a PEM CSR (verifies the CSR signature; returns empty TestCert with x509==nullptr
// on failure). The subject comes from spec, the public key from the CSR.
TestCert signCsr(const std::string& csr_pem, const CertSpec& spec, const TestCa& issuer);

}  // namespace cacerts::testing
