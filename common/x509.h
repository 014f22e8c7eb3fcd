// X.509 mechanisms: strict PEM parsing, private keys, key generation, CSRs, chain
// verification and certificate facts. No Istio policy lives here (see agent/ca_bundle.h).
//
// This header and x509.cc are the only agent files that touch OpenSSL's X.509 and EVP
// APIs; callers see value types that own their OpenSSL objects. <openssl/types.h> only
// declares the opaque types, so including this header pulls in no OpenSSL functions.
//
// Secrecy: error messages name the input (`what`), a block number or a line number, and
// never contain input bytes or OpenSSL parser text derived from them. Private keys live
// in EVP_PKEY or Secret only.
//
// Thread safety: free functions are thread-safe. Certificate and PrivateKey objects may
// be read from several threads at once; they are never modified after construction.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/openssl_ptr.h"
#include "common/result.h"
#include "common/secret.h"

namespace cacerts {

enum class KeyType { kEc, kRsa };

// Facts about one certificate, safe to log and to print (no key material).
struct CertInfo {
  std::string subject, issuer;    // one-line RFC 2253 form, e.g. "CN=istiod,O=example"
  std::string serial_hex;         // lowercase, colon-separated like Vault ("3a:0f:..")
  SystemTime not_before, not_after;  // clamped to SystemTime's range (year 9999 → ~2262)
  std::string sha256_fingerprint;    // uppercase colon hex, like `openssl x509 -fingerprint -sha256`
  int version = 3;                // 1 for an X.509 v1 certificate (no extensions possible)
  bool has_basic_constraints = false;  // basicConstraints present (CA:TRUE or CA:FALSE)
  bool is_ca = false;             // basicConstraints present with CA:TRUE
  int path_len = -1;              // basicConstraints pathLenConstraint; -1 when absent
  bool has_key_usage = false;     // keyUsage extension present
  bool key_cert_sign = false;     // keyUsage present and asserts keyCertSign
  bool crl_sign = false;          // keyUsage present and asserts cRLSign
  // Short names ("serverAuth", "clientAuth", "anyExtendedKeyUsage", ...), dotted OIDs for
  // unnamed purposes. Empty when there is no EKU extension (see has_eku).
  std::vector<std::string> ext_key_usages;
  bool has_eku = false;
  bool self_signed = false;       // subject == issuer and the signature verifies with its own key
  // "ec-256", "ec-384", "ec-521", "ec-<curve>" for other named curves, "rsa-3072",
  // "rsa-pss-2048" (RSA-PSS-only key),
  // "ed25519", "ed448", "dsa-2048", "unknown".
  std::string key_description;
  std::string signature_algorithm;  // long name, e.g. "ecdsa-with-SHA256"
  std::string signature_digest;     // "SHA256", "SHA1", ...; empty when none (Ed25519) or unknown
  std::vector<std::string> uri_sans, dns_sans;
};

// An X.509 certificate and its CertInfo, worked out once when the object is made. Copies
// share both (the X509 is never modified); a moved-from Certificate may only be destroyed
// or assigned to.
class Certificate {
 public:
  // Takes ownership of x (non-null).
  static Certificate adopt(X509Ptr x);
  // Shares x (non-null); the caller keeps its own reference.
  static Certificate share(X509* x);

  // The facts about this certificate; computed at construction, so free to call often.
  const CertInfo& info() const { return shared_->info; }
  // Canonical PEM re-encoded from DER: 64-column base64, one trailing "\n". Identical
  // certificates always give identical bytes, whatever the input formatting was.
  std::string pem() const;
  std::string der() const;
  bool sameAs(const Certificate& other) const;  // DER equality
  X509* raw() const { return shared_ ? shared_->x.get() : nullptr; }

 private:
  struct Shared {
    X509Ptr x;
    CertInfo info;
  };
  explicit Certificate(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<const Shared> shared_;
};

// A private key (RSA or EC when it came from parsePrivateKey or generateKey). Copies share
// the underlying EVP_PKEY, which is never modified after construction.
class PrivateKey {
 public:
  static PrivateKey adopt(EvpPkeyPtr k);  // takes ownership of k (non-null)

  // Unencrypted PKCS#8 "PRIVATE KEY" PEM with a trailing newline; the intermediate
  // OpenSSL buffer is wiped. Empty only if OpenSSL runs out of memory.
  Secret pkcs8Pem() const;
  std::string description() const;  // as CertInfo::key_description, e.g. "ec-256"
  EVP_PKEY* raw() const { return k_.get(); }

 private:
  explicit PrivateKey(std::shared_ptr<EVP_PKEY> k) : k_(std::move(k)) {}
  std::shared_ptr<EVP_PKEY> k_;
};

// Strict PEM certificate parsing. The input must consist of "CERTIFICATE" blocks
// separated only by whitespace; text outside blocks, other block types, PEM headers,
// bad base64, DER that does not parse or has trailing bytes are all kValidation errors.
// Empty (or whitespace-only) input is an error. `what` names the input in messages
// ("cert-chain.pem", "vault field ca-cert"); messages never quote input bytes.
// Returns at least one certificate, in input order.
Result<std::vector<Certificate>> parseCertificates(std::string_view pem, std::string_view what);

// As parseCertificates, but exactly one certificate is required.
Result<Certificate> parseCertificate(std::string_view pem, std::string_view what);

// Accepts exactly one unencrypted "RSA PRIVATE KEY" (PKCS#1), "EC PRIVATE KEY" (SEC1) or
// "PRIVATE KEY" (PKCS#8) block, optionally surrounded by whitespace. Rejects
// "ENCRYPTED PRIVATE KEY", legacy encrypted PEM headers, any other block, more than one
// block, and key types istiod cannot use: only RSA of at least 2048 bits and ECDSA on
// P-256, P-384 or P-521 pass (no Ed25519).
// The PEM is read through a BIO over the Secret's own bytes (no copies); any passphrase
// prompt is refused. kValidation on failure; the message never contains key bytes.
// Structure, cheaply (no primality tests, which cost ~0.3 s for RSA-4096): for EC the
// public point is on the curve and is the private scalar times the generator; for RSA
// n = p*q, d*e = 1 mod (p-1) and mod (q-1), and the CRT values agree with d (what Go's
// rsa.PrivateKey.Validate requires, so a key istiod would refuse is refused here).
// Whether the key belongs to a certificate is proveKeyMatches's job.
Result<PrivateKey> parsePrivateKey(const Secret& pem, std::string_view what);

enum class KeyProof {
  kProven,         // same public key, and a signature made with the key verifies
  kOtherKey,       // the certificate holds a different public key
  kBrokenPrivate,  // same public key, but the private half does not produce valid signatures
};

// Proves `key` is the private half of `cert` the way istiod will use it: the public keys
// are equal (EVP_PKEY_eq) and one signature over a fixed message made with `key` verifies
// with the certificate's public key (a few ms for RSA-4096, well under 1 ms for EC).
KeyProof proveKeyMatches(const PrivateKey& key, const Certificate& cert);

// proveKeyMatches(key, cert) == KeyProof::kProven.
bool keyMatchesCertificate(const PrivateKey& key, const Certificate& cert);

// A fresh key from OpenSSL's CSPRNG: ec with bits 256 or 384 (P-256, P-384), rsa with
// 2048, 3072 or 4096. kInvalidArgument for other sizes, kInternal if OpenSSL fails.
Result<PrivateKey> generateKey(KeyType type, int bits);

struct CsrSpec {
  std::string common_name;              // required, 1..64 characters (X.520 upper bound)
  std::string organization;             // optional, at most 64 characters
  std::vector<std::string> uri_sans;    // e.g. "spiffe://cluster.local"; ASCII, no spaces
  bool request_ca = true;
  int max_path_length = 0;              // with request_ca; -1 requests no path length limit
};

// PEM "CERTIFICATE REQUEST" (trailing newline), signed with SHA-256 by `key`. With
// request_ca it asks for basicConstraints critical CA:TRUE (pathlen max_path_length) and
// keyUsage critical keyCertSign, cRLSign; uri_sans become a subjectAltName extension.
// kInvalidArgument for a bad spec (the message names the field).
Result<std::string> makeCsr(const PrivateKey& key, const CsrSpec& spec);

// Verifies `leaf` through `intermediates` (in any order; extra certificates are ignored)
// to one of `roots` at time `at` (X509_V_FLAG_USE_CHECK_TIME, no partial chains, no system
// trust store, no purpose/EKU check: callers apply their own EKU policy). Every
// non-anchor issuer must be a CA. Returns the verified path leaf..root on success, or
// kValidation with OpenSSL's verify error string (e.g. "certificate has expired"), the
// depth and subject of the failing certificate, and a hint for the common cases. The path
// holds copies of the given Certificate objects (sharing their CertInfo), not new ones.
// A root given as a trust anchor is trusted as it is, as Go's x509.Verify does: it need not
// carry basicConstraints CA:TRUE (X.509 v1 roots, and v3 roots without the extension, are
// anchors like any other). Intermediates must be CAs.
Result<std::vector<Certificate>> verifyChain(const Certificate& leaf,
                                             const std::vector<Certificate>& intermediates,
                                             const std::vector<Certificate>& roots, SystemTime at);

// Concatenated canonical PEM of each certificate, in order.
std::string toPem(const std::vector<Certificate>& certs);

// RFC 3339 UTC with second precision: "2026-11-23T15:04:05Z".
std::string formatTime(SystemTime t);

// Facts about one certificate revocation list, safe to log.
struct CrlInfo {
  std::string issuer;                     // RFC 2253, as CertInfo::issuer
  SystemTime this_update;
  std::optional<SystemTime> next_update;  // nullopt when the CRL has no nextUpdate
  std::size_t revoked = 0;                // number of revoked serials it lists
};

// An X.509 CRL and its CrlInfo. Copies share both; the X509_CRL is never modified.
class Crl {
 public:
  static Crl adopt(X509CrlPtr crl);  // takes ownership (non-null)
  const CrlInfo& info() const { return shared_->info; }
  // Canonical PEM ("X509 CRL", 64-column base64, one trailing newline).
  std::string pem() const;
  X509_CRL* raw() const { return shared_->crl.get(); }

 private:
  struct Shared {
    X509CrlPtr crl;
    CrlInfo info;
  };
  explicit Crl(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<const Shared> shared_;
};

// Reads a CRL file the way istiod reads ca-crl.pem: every PEM block, whatever its label,
// must hold one DER CRL with no trailing bytes; text between blocks is skipped. A text
// without any block gives an empty list (to istiod: no CRL for any signer). kValidation
// names the block number, never its bytes.
Result<std::vector<Crl>> parseCrls(std::string_view pem, std::string_view what);

// Whether `signer` signed `crl`, by the rule of Go's RevocationList.CheckSignatureFrom that
// istiod applies: a v3 signer must carry basicConstraints CA:TRUE (a v1 signer needs
// nothing), a keyUsage extension, when present, must assert cRLSign, and the signature
// must verify with the signer's public key.
bool crlSignedBy(const Crl& crl, const Certificate& signer);

// Concatenated canonical PEM of each CRL, in order.
std::string toPem(const std::vector<Crl>& crls);

}  // namespace cacerts
