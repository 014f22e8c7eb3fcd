// Adopting a running mesh (issue 17): a CaSource decorator that moves istiod from the CA it
// signs with today (istiod's self-signed CA in Secret istio-ca-secret, or a plugged-in
// cacerts Secret) to the Vault source without an mTLS outage, in three phases of one
// absolute switch instant that every replica reads from the same ConfigMap. Each phase is a
// pure function of the clock, so replicas agree without per-pod state:
//
//   phase 1, trust both   now < switch_at: the OLD signing material unchanged, with the
//                         old root(s) followed by the inner source's trust set. Nothing is
//                         loaded from the inner source (for PKI nothing is issued).
//   phase 2, Vault signs  switch_at <= now < switch_at + retire: the inner source's
//                         material with the same two-part root bundle, so root-cert.pem
//                         keeps its bytes and workload certificates from either CA verify.
//   phase 3, forget old   later: the inner source as is; the old root leaves the bundle
//                         from the front (a root policy matter), and the old material is
//                         neither read nor needed any more.
//
// The old key is held in memory (Secret) and never logged; it never goes to Vault.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/ca_bundle.h"
#include "agent/source.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/x509.h"

namespace cacerts {

enum class MigrationPhase { kTrustBoth = 1, kVaultSigns = 2, kForgetOld = 3 };
std::string_view toString(MigrationPhase phase);  // "trust_both" | "vault_signs" | "forget_old"

// The phase at `now` (see the top of this file).
MigrationPhase migrationPhase(SystemTime now, SystemTime switch_at, Duration retire);

// The two Secret layouts an old CA comes in.
enum class OldCaLayout {
  kIstioCaSecret,  // ca-cert.pem + ca-key.pem; the CA is its own root
  kCacerts,        // ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem
};
std::string_view toString(OldCaLayout layout);  // "istio-ca-secret" | "cacerts"

// The old CA as istiod signs with it today, validated.
struct OldCa {
  std::string dir;
  OldCaLayout layout = OldCaLayout::kCacerts;
  // Publishable as is: cert, key, the validated chain and the old root bundle.
  CaMaterial material;
  std::vector<Certificate> roots;  // the old trust bundle, in file order
  CertInfo ca_cert;
};

// Reads the old CA from `dir` as mounted from its Secret. The layout is cacerts when
// root-cert.pem has content, else istio-ca-secret (whose Secret has no or empty
// root-cert.pem and cert-chain.pem): ca-cert.pem is then the root and the whole chain.
// Errors: kInvalidArgument naming --migrate-from when dir is not a directory or ca-cert.pem
// or ca-key.pem is missing or empty (the wrong Secret or a projection without the key);
// kValidation from assembleAndValidate (at `options`) when the material would not load
// (key/cert mismatch, expired, not a CA, ...), prefixed with what was read. Messages name
// files, never their content.
Result<OldCa> readOldCa(const std::string& dir, const ValidationOptions& options);

// Without --migrate-from: refuses (kInvalidArgument naming both flags and the ConfigMap) when
// `mount`, where the install puts an old CA for a migration, holds a non-empty ca-key.pem.
// The old CA is then mounted but the migration's settings are gone (their ConfigMap was
// deleted or pruned while a pod still mounts the Secret); publishing Vault's CA alone could
// switch this replica before the instant every other replica keeps. Only stats the file.
Status checkNoOrphanedOldCa(const std::string& mount);

// `first` followed by the certificates of `then` that are not already in it.
std::vector<Certificate> mergeRoots(const std::vector<Certificate>& first, const std::vector<Certificate>& then);

// True when a phase-1 start at `now` leaves workloads less than `propagation` (the
// --root-propagation of root rotation: at least a workload certificate lifetime, 24 h by
// default) to receive the old+Vault bundle before the switch. The caller warns; it is not an
// error. Without per-pod state no replica knows when the first replica published both roots:
// the replica that does so first evaluates exactly the condition, and a replica started later
// in phase 1 warns when its own start is that close, which is a superset.
bool switchTooSoon(SystemTime now, SystemTime switch_at, Duration propagation);

class MigrationSource final : public CaSource {
 public:
  MigrationSource(std::unique_ptr<CaSource> inner, OldCa old, SystemTime switch_at, Duration retire, Clock& clock)
      : inner_(std::move(inner)), old_(std::move(old)), switch_at_(switch_at), retire_(retire), clock_(clock) {}

  Result<CaMaterial> load() override;
  Result<TrustSet> trustSet() override;
  // The inner stamp tagged with the phase: a phase change is a change load() reflects.
  Result<std::optional<std::string>> changeStamp() override;
  std::string describe() const override { return "migration from " + old_.dir + " then " + inner_->describe(); }

  MigrationPhase phase() const { return migrationPhase(clock_.now(), switch_at_, retire_); }

 private:
  // The plan every replica computes for `phase`, on top of the inner source's own.
  RootSchedule scheduleFor(MigrationPhase phase, const std::optional<RootSchedule>& inner) const;
  // How the merged root bundle is named in validation messages.
  std::string mergedRootsName() const;

  std::unique_ptr<CaSource> inner_;
  OldCa old_;
  SystemTime switch_at_;
  Duration retire_;
  Clock& clock_;
};

}  // namespace cacerts
