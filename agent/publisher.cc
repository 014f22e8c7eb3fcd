#include "agent/publisher.h"

#include <spdlog/spdlog.h>

#include "agent/kv_source.h"
#include "agent/layout.h"
#include "agent/migration_source.h"
#include "agent/pki_source.h"
#include "common/duration.h"
#include "common/fs_check.h"

namespace cacerts {

Status prepareOutputDir(const Config& config, AtomicDirWriter& /*writer: cleanup moved to lockOutputDir*/) {
  RETURN_IF_ERROR(ensureWritableDir(config.dir));
  ASSIGN_OR_RETURN(bool tmpfs, isTmpfs(config.dir));
  if (!tmpfs) {
    if (!config.allow_non_tmpfs) {
      return Error{ErrorCode::kOutput,
                   config.dir + " is not on tmpfs: refusing to write a private key to persistent storage "
                                "(mount an emptyDir with medium: Memory, or pass --allow-non-tmpfs)"};
    }
    spdlog::warn("event=non_tmpfs_output dir={} message=\"the private key will be written to persistent storage\"",
                 config.dir);
  }
  return ok();
}

Result<DirLock> lockOutputDir(AtomicDirWriter& writer, std::string_view mode, Clock& clock) {
  ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(writer.dir(), mode, kOutputLockWait, clock));
  RETURN_IF_ERROR(writer.cleanupLeftovers());
  return lock;
}

ValidationOptions validationOptionsFor(const Config& config, SystemTime now) {
  ValidationOptions options;
  options.now = now;
  options.min_remaining = config.min_remaining;
  options.istio_minor = config.istio_minor;
  options.relaxed = config.relax_policy;
  return options;
}

Result<PublishOutcome> validateAndPublish(const CaMaterial& material, AtomicDirWriter& writer, const Config& config,
                                          SystemTime now) {
  const ValidationOptions options = validationOptionsFor(config, now);
  ASSIGN_OR_RETURN(ValidatedBundle bundle, assembleAndValidate(material, options));
  BundleText text;
  const std::vector<OutputFile> files = filesFor(bundle, config.layout, config.key_mode, text);
  PublishOutcome out;
  ASSIGN_OR_RETURN(out.result, writer.publish(files, allLayoutNames()));
  out.ca_cert = bundle.info();
  for (const Certificate& r : bundle.roots) out.roots.push_back(r.info());
  return out;
}

namespace {

Result<std::unique_ptr<CaSource>> makeVaultSource(const Config& config, VaultClient& vault, Clock& clock) {
  if (config.source == Source::kKv) {
    KvRefs refs;
    ASSIGN_OR_RETURN(refs.cert, parseKvRef(config.kv_cert, "--kv-cert"));
    ASSIGN_OR_RETURN(refs.key, parseKvRef(config.kv_key, "--kv-key"));
    if (!config.kv_chain.empty()) {
      ASSIGN_OR_RETURN(refs.chain, parseKvRef(config.kv_chain, "--kv-chain"));
    }
    if (!config.kv_root.empty()) {
      ASSIGN_OR_RETURN(refs.root, parseKvRef(config.kv_root, "--kv-root"));
    }
    if (!config.kv_crl.empty()) {
      ASSIGN_OR_RETURN(refs.crl, parseKvRef(config.kv_crl, "--kv-crl"));
    }
    return std::unique_ptr<CaSource>(std::make_unique<KvSource>(vault, std::move(refs)));
  }
  PkiSettings pki = config.pki;
  if (pki.common_name.empty()) pki.common_name = defaultCommonName();
  pki.root_propagation = config.sidecar.root_propagation;
  return std::unique_ptr<CaSource>(
      std::make_unique<PkiSource>(vault, std::move(pki), config.pki_ttl, config.min_remaining, clock));
}

// --migrate-from: the old CA in front of the Vault source until the old root is retired.
// The old material is read (and refused) at start, before anything is published; from
// phase 3 on it is not read at all, so an expired or removed old Secret cannot block.
Result<std::unique_ptr<CaSource>> withMigration(std::unique_ptr<CaSource> inner, const Config& config, Clock& clock) {
  const SystemTime now = clock.now();
  const SystemTime switch_at = *config.migrate_switch_at;
  const Duration retire = config.sidecar.root_retire;
  const MigrationPhase phase = migrationPhase(now, switch_at, retire);
  if (phase == MigrationPhase::kForgetOld) {
    spdlog::info("event=migration_finished switch_at={} retired_at={} message=\"the old root is retired; "
                 "--migrate-from is inert and can be removed\"",
                 formatTime(switch_at), formatTime(switch_at + retire));
    return inner;
  }
  ASSIGN_OR_RETURN(OldCa old, readOldCa(config.migrate_from, validationOptionsFor(config, now)));
  spdlog::info("event=migration phase={} name={} from={} layout={} old_subject=\"{}\" old_not_after={} old_roots={} "
               "switch_at={} retire_at={}",
               static_cast<int>(phase), toString(phase), old.dir, toString(old.layout), old.ca_cert.subject,
               formatTime(old.ca_cert.not_after), old.roots.size(), formatTime(switch_at),
               formatTime(switch_at + retire));
  const Duration propagation = config.sidecar.root_propagation;
  if (switchTooSoon(now, switch_at, propagation)) {
    spdlog::warn("event=migration_switch_soon switch_at={} in_s={} root_propagation={} message=\"workloads need "
                 "--root-propagation ({}, at least a workload certificate lifetime) with both roots before Vault "
                 "signs; if this is the first replica to publish them, move --migrate-switch-at to {} or later, or "
                 "workloads that have not yet learned the Vault root may fail mTLS\"",
                 formatTime(switch_at), std::chrono::duration_cast<std::chrono::seconds>(switch_at - now).count(),
                 describeDuration(propagation), describeDuration(propagation), formatTime(now + propagation));
  }
  return std::unique_ptr<CaSource>(
      std::make_unique<MigrationSource>(std::move(inner), std::move(old), switch_at, retire, clock));
}

}  // namespace

Result<std::unique_ptr<CaSource>> makeSource(const Config& config, VaultClient& vault, Clock& clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<CaSource> inner, makeVaultSource(config, vault, clock));
  if (config.migrate_from.empty()) {
    RETURN_IF_ERROR(checkNoOrphanedOldCa(config.migrate_mount));
    return inner;
  }
  return withMigration(std::move(inner), config, clock);
}

}  // namespace cacerts
