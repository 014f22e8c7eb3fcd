// istiod's judgement of a plugged-in CA, applied before anything is published, plus this
// agent's own policy where it is stricter than istiod.
//
// istiod checks only part of this at reload time (it skips the CA flag, the chain order
// and key types), and a bundle it rejects at startup crash-loops the pod; so the agent
// applies the union of istiod's startup checks, Go's x509.Verify rules and the
// Envoy-facing rules before a generation is written. Each check is labelled with whose rule
// it is (Policy): [istiod] istiod refuses such a set; [agent] istiod would load it, but this
// agent refuses it (a failure detail then starts with "agent policy, stricter than istiod").
//   parse_ca_cert, parse_ca_key, parse_cert_chain, parse_root_cert  [istiod] every input parses
//   key_type_supported            [agent] ca-cert key is RSA >= 2048 or ECDSA P-256/384/521
//   key_matches_cert              [istiod] ca-key is the private half of ca-cert
//   ca_basic_constraints          [istiod] ca-cert has basicConstraints CA:TRUE (at startup)
//   key_cert_sign                 [agent] ca-cert has keyUsage with keyCertSign
//   validity_window               [istiod] `now` is inside NotBefore..NotAfter of ca-cert,
//                                 every cert-chain certificate and the root anchoring the path
//   min_remaining_lifetime        [agent] the path's earliest NotAfter is >= now + min_remaining
//   eku_allows_server_auth        every certificate (ca-cert, chain, roots) has no EKU or
//                                 one with serverAuth or anyExtendedKeyUsage (Go's
//                                 Verify uses serverAuth when no usage is given); [istiod] for
//                                 the verified path, [agent] for certificates off it
//   signature_algorithm_accepted  no SHA-1/MD5 signature on non-self-signed certificates
//                                 (Go rejects them); [istiod] on the path, [agent] off it
//   roots_self_signed             [agent] every root is self-signed (a root need not be a CA:
//                                 istiod, like Go, trusts an X.509 v1 root or one without
//                                 basicConstraints as an anchor)
//   chain_verifies_to_root        [istiod] ca-cert verifies through the chain to a root at `now`
//   chain_starts_with_ca_cert     [agent] a given cert-chain begins with ca-cert (istiod reads
//                                 the chain as an unordered pool, but clamps workload
//                                 certificate lifetimes by the first one's NotAfter)
//   crl_covers_chain              [istiod 1.27+] when ca-crl is given and not empty: every PEM
//                                 block is a CRL, and every certificate of cert-chain signed
//                                 one of them (Go's CheckSignatureFrom: CA, cRLSign)
//   crl_current                   [agent] every CRL is inside thisUpdate..nextUpdate at `now`
//                                 (Envoy rejects every peer of a chain whose CRL expired)
// Agent checks refuse only where the caller does not relax them (ValidationOptions::relaxed).
// Messages name the input (CaMaterial::names), the certificate subject and what to fix;
// they never contain key bytes or PEM bodies.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/defaults.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/secret.h"
#include "common/x509.h"

namespace cacerts {

// How each input is called in messages, e.g. "--kv-cert vault:secret/data/pki/istiod#cert".
struct MaterialNames {
  std::string cert = "ca-cert";
  std::string key = "ca-key";
  std::string chain = "cert-chain";
  std::string root = "root-cert";
  std::string crl = "ca-crl";
};

// The source's plan for its signing root, a pure function of Vault's state and the clock,
// identical in every replica: the root it signs under now has done so since signing_since;
// next_switch = when a different root starts signing. (Here rather than in source.h because
// CaMaterial carries it.)
struct RootSchedule {
  SystemTime signing_since = SystemTime::min();
  std::optional<SystemTime> next_switch;
};

struct CaMaterial {
  std::string cert_pem;   // the signing certificate; istiod reads only the first block;
                          // assembly uses further certificates here as intermediates
  Secret key_pem;         // PKCS#1, SEC1 or PKCS#8, unencrypted
  std::string chain_pem;  // optional: intermediates (with or without ca-cert and root)
  std::string root_pem;   // optional: one or more self-signed roots
  std::string crl_pem;    // optional: CRLs, one signed by each certificate of the chain
  MaterialNames names;
  std::optional<RootSchedule> schedule;
};

// The publishable set, as typed objects: PEM text is produced only when writing it
// (agent/layout.h). Copies share the certificates and the key.
struct ValidatedBundle {
  // The verified path: ca-cert first, then the intermediates leaf-to-root, then the root
  // that anchors it. Published as cert-chain; never empty.
  std::vector<Certificate> path;
  // The root bundle: deduplicated, in input order; contains path.back().
  std::vector<Certificate> roots;
  PrivateKey key;  // proven to be the private half of ca-cert (key_matches_cert)
  // The key as given: istiod accepts PKCS#1, SEC1 and PKCS#8, and rewriting a key would
  // change the published bytes for nothing.
  Secret key_pem;
  // Exact bytes for the root file, when they must be kept (istiod < 1.30 compares root
  // files byte for byte: see withRootFile). Empty: the canonical PEM of `roots`.
  std::string root_file;
  // Published as ca-crl.pem when not empty; judged by crl_covers_chain against `path`.
  std::vector<Crl> crls;

  const Certificate& caCert() const { return path.front(); }
  const CertInfo& info() const { return path.front().info(); }  // ca-cert's facts
  const Certificate& anchor() const { return path.back(); }
  // The root file's text: root_file, or the canonical PEM of roots.
  std::string rootPem() const { return root_file.empty() ? toPem(roots) : root_file; }
};

struct ValidationOptions {
  SystemTime now;                                     // the caller's clock; never read here
  Duration min_remaining = defaults::kMinRemaining;
  int istio_minor = defaults::kIstioMinor;            // istiod 1.<minor>: which rules apply
  // Agent checks (Policy::kAgent) that assembleAndValidate does not refuse on (--relax-policy).
  std::vector<std::string> relaxed;
};

// The checks of Policy::kAgent, which --relax-policy may name.
const std::vector<std::string>& agentPolicyNames();

// Whose rule a check applies (see the list at the top of this file).
enum class Policy { kIstiod, kAgent };
std::string_view toString(Policy p);  // "istiod" | "agent"

struct CheckResult {
  std::string name;    // one of the names listed at the top of this file
  bool ok = false;
  std::string detail;  // what was found; on failure, what to fix
  Policy policy = Policy::kIstiod;
};

struct BundleReport {
  // In the order listed at the top of this file. A check whose inputs did not parse is
  // left out (the parse_* failure already explains why).
  std::vector<CheckResult> checks;
  std::optional<CertInfo> ca_cert;
  // The certificates of chain_pem as given; when no chain was given, the chain that
  // would be published (ca-cert + path + root) if it could be built.
  std::vector<CertInfo> chain;
  std::vector<CertInfo> roots;  // deduplicated, input order (derived root when none given)

  // True when every check passed.
  bool ok() const;
  // True when no istiod rule failed (the agent's own policy may still have).
  bool istiodWouldLoad() const;
  // The first failed check, or nullptr.
  const CheckResult* firstFailure() const;
  // The first failed check of the given policy, or nullptr.
  const CheckResult* firstFailure(Policy policy) const;
};

// Runs every check it can (it does not stop at the first failure) — for
// `cacerts-agent check`, which judges a published directory. Judges like istiod: the
// verification pool is chain_pem only and cert_pem contributes its first certificate; further
// certificates in cert_pem are reported as ignored and never complete the path (unlike
// assembleAndValidate, which uses them to assemble the chain from a source).
BundleReport inspectBundle(const CaMaterial& m, const ValidationOptions& o);

// Assembles the publishable set or returns kValidation whose message names the first
// failed check and what to fix, e.g. "check key_matches_cert failed: ca-key does not
// match ca-cert (wrong key or wrong version of the secret)".
// Assembly: the root bundle is root_pem, or the last certificate of the chain (or of
// cert_pem when there is no chain), which must then be self-signed. cert-chain is the
// verified path ca-cert..root: a chain that does not start with ca-cert gets it prepended,
// intermediates come in leaf-to-root order, the anchoring root comes last, and chain
// certificates not on the path are left out. (So chain_starts_with_ca_cert never fails
// here: the assembled chain always starts with ca-cert, and crl_covers_chain judges that
// chain.) Refuses on every failed istiod check and on every failed agent check not in
// o.relaxed. Every input is parsed once; the result holds the parsed objects.
Result<ValidatedBundle> assembleAndValidate(const CaMaterial& m, const ValidationOptions& o);

// `bundle` with another root file, kept byte for byte (the root rotation decides root
// bytes: see agent/root_policy.h). The path and key were validated already; this checks
// what the new roots change: every root parses and is self-signed, one of them anchors
// the path, and the path is still valid at `now`. kValidation naming the failure.
Result<ValidatedBundle> withRootFile(ValidatedBundle bundle, std::string root_file, SystemTime now);

}  // namespace cacerts
