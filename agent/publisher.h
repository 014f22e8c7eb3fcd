// The one place where material becomes visible to istiod: validate the whole set first,
// then publish it as one generation. Anything that fails leaves the previous generation
// byte-identical.
#pragma once

#include <memory>
#include <string>

#include "agent/ca_bundle.h"
#include "agent/config.h"
#include "agent/source.h"
#include "common/atomic_writer.h"
#include "common/dir_lock.h"
#include "common/vault_client.h"

namespace cacerts {

struct PublishOutcome {
  CertInfo ca_cert;
  std::vector<CertInfo> roots;
  PublishResult result;
};

// Checks the output directory before any Vault traffic: it exists and is writable, and it
// is on tmpfs unless --allow-non-tmpfs. Errors: kOutput naming the directory and what to
// change.
Status prepareOutputDir(const Config& config, AtomicDirWriter& writer);

// How long a second writer waits for the directory lock before giving up with exit 6.
inline constexpr Duration kOutputLockWait = std::chrono::seconds(10);

// Takes the output directory's lock (DirLock, recording `mode` as the holder), waiting up
// to kOutputLockWait, then removes leftovers of a crashed publish, which is safe only under
// the lock. Init holds the result while it publishes, the sidecar for its whole life.
// Errors: kOutput naming the holder, or the cleanup failure.
Result<DirLock> lockOutputDir(AtomicDirWriter& writer, std::string_view mode, Clock& clock);

// The rules a configuration asks for at `now`: --min-remaining, --istio-version and
// --relax-policy.
ValidationOptions validationOptionsFor(const Config& config, SystemTime now);

// Validates `material` (istiod's rules plus --min-remaining at `now`) and publishes it.
// Errors: kValidation naming the failed check; kOutput from the writer.
Result<PublishOutcome> validateAndPublish(const CaMaterial& material, AtomicDirWriter& writer, const Config& config,
                                          SystemTime now);

// The configured source (kv or pki) on top of a Vault client.
Result<std::unique_ptr<CaSource>> makeSource(const Config& config, VaultClient& vault, Clock& clock);

}  // namespace cacerts
