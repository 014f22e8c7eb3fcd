// Vault KV responses as the KV source reads them: mount discovery, secret reads (v1 and v2,
// deleted and destroyed versions), metadata for change detection, then the validation that
// runs on whatever the source returned.
// Responses in order: mounts of istio/cacerts, its read, mounts of istio/roots, its read at
// version 2, metadata of istio/cacerts. See fuzz_support.h for the input format.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "agent/ca_bundle.h"
#include "agent/kv_ref.h"
#include "agent/kv_source.h"
#include "fuzz/fuzz_support.h"

namespace {

cacerts::KvRef ref(const char* text) {
  auto parsed = cacerts::parseKvRef(text, "--kv-cert");
  if (!parsed) std::abort();
  return *parsed;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cacerts::fuzzing::formatLogsIntoNothing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cacerts;
  fuzzing::ScriptedVault vault(data, size, std::chrono::system_clock::now());
  VaultClient& client = vault.client;
  testing::FakeClock& clock = vault.clock;
  fuzzing::giveToken(client);

  KvRefs refs;
  refs.cert = ref("vault:secret/data/istio/cacerts#ca-cert");
  refs.key = ref("vault:secret/data/istio/cacerts#ca-key");
  refs.chain = ref("vault:secret/data/istio/cacerts#cert-chain");
  refs.root = ref("vault:secret/istio/roots#root-cert#2");
  KvSource source(client, refs);

  Result<CaMaterial> material = source.load();
  if (material) {
    ValidationOptions options;
    options.now = clock.now();
    options.min_remaining = std::chrono::hours(24);
    (void)assembleAndValidate(*material, options);
  }
  (void)source.versionStamp();
  return 0;
}
