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
#include "common/vault_client.h"

namespace cacerts {

struct PublishOutcome {
  CertInfo ca_cert;
  std::vector<CertInfo> roots;
  PublishResult result;
};

// Checks the output directory before any Vault traffic: it exists and is writable, it is
// on tmpfs unless --allow-non-tmpfs, and leftovers of a crashed publish are removed.
// Errors: kOutput naming the directory and what to change.
Status prepareOutputDir(const Config& config, AtomicDirWriter& writer);

// Validates `material` (istiod's rules plus --min-remaining at `now`) and publishes it.
// Errors: kValidation naming the failed check; kOutput from the writer.
Result<PublishOutcome> validateAndPublish(const CaMaterial& material, AtomicDirWriter& writer, const Config& config,
                                          SystemTime now);

// The configured source (kv or pki) on top of a Vault client.
Result<std::unique_ptr<CaSource>> makeSource(const Config& config, VaultClient& vault, Clock& clock);

}  // namespace cacerts
