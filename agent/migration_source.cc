#include "agent/migration_source.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>

#include "common/bounded_read.h"

namespace cacerts {
namespace {

Error badMount(const std::string& dir, const std::string& what) {
  return Error{ErrorCode::kInvalidArgument,
               "--migrate-from (CACERTS_AGENT_MIGRATE_FROM) " + dir + ": " + what +
                   "; mount the old CA's Secret (istio-ca-secret or cacerts) there, with every key (kustomize "
                   "component migrate-from-istio-ca-secret or migrate-from-cacerts after the variant, or "
                   "helm/values-migrate-from-*.yaml after the variant's values file; docs/migration.md)"};
}

// The file's content, or nullopt when it is absent or holds only whitespace (a Secret key
// that exists with an empty value is projected as an empty file).
Result<std::optional<Secret>> readIfPresent(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  ASSIGN_OR_RETURN(std::optional<Secret> content, readBoundedFile(AT_FDCWD, path, path));
  if (!content) return content;
  if (content->view().find_first_not_of(" \t\r\n") == std::string_view::npos) return std::optional<Secret>();
  return content;
}

}  // namespace

Status checkNoOrphanedOldCa(const std::string& mount) {
  if (mount.empty()) return ok();
  const std::string key = mount + "/ca-key.pem";
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return ok();
  return Error{ErrorCode::kInvalidArgument,
               "--migrate-mount (CACERTS_AGENT_MIGRATE_MOUNT) " + mount +
                   ": an old CA key is mounted for a migration, but --migrate-from and --migrate-switch-at "
                   "(CACERTS_AGENT_MIGRATE_FROM, CACERTS_AGENT_MIGRATE_SWITCH_AT) are not set: the ConfigMap "
                   "cacerts-agent-migration is missing or lacks them. Refusing to publish Vault's CA alone before "
                   "the switch instant the other replicas keep; restore the ConfigMap, or remove the "
                   "migrate-from-* component or values file (docs/migration.md)"};
}

std::string_view toString(MigrationPhase phase) {
  switch (phase) {
    case MigrationPhase::kTrustBoth: return "trust_both";
    case MigrationPhase::kVaultSigns: return "vault_signs";
    case MigrationPhase::kForgetOld: return "forget_old";
  }
  return "?";
}

MigrationPhase migrationPhase(SystemTime now, SystemTime switch_at, Duration retire) {
  if (now < switch_at) return MigrationPhase::kTrustBoth;
  if (now < switch_at + retire) return MigrationPhase::kVaultSigns;
  return MigrationPhase::kForgetOld;
}

std::string_view toString(OldCaLayout layout) {
  return layout == OldCaLayout::kIstioCaSecret ? "istio-ca-secret" : "cacerts";
}

Result<OldCa> readOldCa(const std::string& dir, const ValidationOptions& options) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return badMount(dir, "not a readable directory");
  ASSIGN_OR_RETURN(std::optional<Secret> cert, readIfPresent(dir, "ca-cert.pem"));
  ASSIGN_OR_RETURN(std::optional<Secret> key, readIfPresent(dir, "ca-key.pem"));
  ASSIGN_OR_RETURN(std::optional<Secret> chain, readIfPresent(dir, "cert-chain.pem"));
  ASSIGN_OR_RETURN(std::optional<Secret> root, readIfPresent(dir, "root-cert.pem"));
  if (!cert) return badMount(dir, "ca-cert.pem is missing or empty");
  // Without the key the old CA cannot keep signing in phase 1, and istiod would fall back
  // to a fresh self-signed CA that no workload trusts.
  if (!key) return badMount(dir, "the old CA key ca-key.pem is missing or empty");

  OldCa old;
  old.dir = dir;
  old.layout = root ? OldCaLayout::kCacerts : OldCaLayout::kIstioCaSecret;
  CaMaterial m;
  m.cert_pem = std::string(cert->view());
  m.key_pem = std::move(*key);
  if (old.layout == OldCaLayout::kCacerts) {
    m.root_pem = std::string(root->view());
    if (chain) m.chain_pem = std::string(chain->view());
  } else {
    // istiod's own CA: the certificate is the root and, as istiod serves it, the chain.
    m.root_pem = m.cert_pem;
  }
  const std::string prefix = "--migrate-from " + dir + "/ (" + std::string(toString(old.layout)) + " layout)";
  m.names = MaterialNames{prefix + " ca-cert.pem", prefix + " ca-key.pem", prefix + " cert-chain.pem",
                          prefix + " root-cert.pem", prefix + " ca-crl.pem"};
  Result<ValidatedBundle> bundle = assembleAndValidate(m, options);
  if (!bundle) {
    return Error{bundle.error().code, "the old CA in " + prefix + " is refused: " + bundle.error().message};
  }
  // Published as istiod reads it today: the validated path as cert-chain, the old roots
  // byte-stably re-encoded (a root bundle is merged with Vault's below anyway).
  old.material.cert_pem = bundle->caCert().pem();
  old.material.key_pem = bundle->key_pem;
  old.material.chain_pem = toPem(bundle->path);
  old.material.names = m.names;
  old.roots = bundle->roots;
  old.material.root_pem = toPem(old.roots);
  old.ca_cert = bundle->info();
  return old;
}

std::vector<Certificate> mergeRoots(const std::vector<Certificate>& first, const std::vector<Certificate>& then) {
  std::vector<Certificate> out = first;
  for (const Certificate& c : then) {
    bool seen = false;
    for (const Certificate& o : out) seen = seen || o.sameAs(c);
    if (!seen) out.push_back(c);
  }
  return out;
}

bool switchTooSoon(SystemTime now, SystemTime switch_at, Duration propagation) {
  return now < switch_at && switch_at - now < propagation;
}

RootSchedule MigrationSource::scheduleFor(MigrationPhase phase, const std::optional<RootSchedule>& inner) const {
  RootSchedule s;
  if (phase == MigrationPhase::kTrustBoth) {
    s.next_switch = switch_at_;  // the old CA has signed since before anyone can tell
    return s;
  }
  // From the switch on, Vault's signing root signs; a root change planned by the inner
  // source later than the switch is kept.
  s.signing_since = switch_at_;
  if (inner) {
    s.signing_since = std::max(s.signing_since, inner->signing_since);
    s.next_switch = inner->next_switch;
    s.signing_root = inner->signing_root;
  }
  return s;
}

std::string MigrationSource::mergedRootsName() const {
  return "root bundle (the old roots from --migrate-from " + old_.dir + ", then the roots of " + inner_->describe() + ")";
}

Result<CaMaterial> MigrationSource::load() {
  const MigrationPhase p = phase();
  if (p == MigrationPhase::kForgetOld) {
    // The switch instant stays the start of the retire wait for the old root.
    ASSIGN_OR_RETURN(CaMaterial m, inner_->load());
    m.schedule = scheduleFor(p, m.schedule);
    return m;
  }
  if (p == MigrationPhase::kTrustBoth) {
    // Only the inner trust set: for PKI this reads issuers and signs nothing.
    ASSIGN_OR_RETURN(TrustSet vault, inner_->trustSet());
    CaMaterial m = old_.material;
    m.root_pem = toPem(mergeRoots(old_.roots, vault.roots));
    m.names.root = mergedRootsName();
    m.schedule = scheduleFor(p, vault.schedule);
    return m;
  }
  ASSIGN_OR_RETURN(CaMaterial m, inner_->load());
  ASSIGN_OR_RETURN(std::vector<Certificate> vault_roots, declaredRoots(m));
  m.root_pem = toPem(mergeRoots(old_.roots, vault_roots));
  m.names.root = mergedRootsName();
  m.schedule = scheduleFor(p, m.schedule);
  return m;
}

Result<TrustSet> MigrationSource::trustSet() {
  const MigrationPhase p = phase();
  ASSIGN_OR_RETURN(TrustSet vault, inner_->trustSet());
  if (p == MigrationPhase::kForgetOld) {
    vault.schedule = scheduleFor(p, vault.schedule);
    return vault;
  }
  TrustSet out;
  out.roots = mergeRoots(old_.roots, vault.roots);
  out.schedule = scheduleFor(p, vault.schedule);
  return out;
}

Result<std::optional<std::string>> MigrationSource::changeStamp() {
  const MigrationPhase p = phase();
  ASSIGN_OR_RETURN(std::optional<std::string> inner, inner_->changeStamp());
  // No cheap check inside: callers load and compare, which sees the phase too.
  if (!inner) return inner;
  return std::optional<std::string>("migration " + std::string(toString(p)) + " " + *inner);
}

}  // namespace cacerts
