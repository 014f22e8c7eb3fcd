// Vault PKI responses as the PKI source reads them: the signed intermediate (certificate,
// issuing_ca, ca_chain as strings or arrays), the issuer listing and each issuer, and the
// exported-key flow's generate response.
// Responses are scripted in the order the source asks: the issuer listing and reads (and,
// with several roots, the planned signer), the sign; then a trust-set poll; then, for the
// exported-key flow, the same with generate before the sign. See fuzz_support.h.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "agent/ca_bundle.h"
#include "agent/pki_source.h"
#include "fuzz/fuzz_support.h"

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

  PkiSettings settings;
  settings.sign_path = "pki/root/sign-intermediate";
  settings.common_name = "istiod fuzz";
  settings.uri_sans = "spiffe://cluster.local";
  ValidationOptions options;
  options.now = clock.now();
  options.min_remaining = std::chrono::hours(1);

  // Local key (the default): only the sign, issuer and listing responses come from Vault.
  PkiSource local(client, settings, std::chrono::hours(720), std::chrono::hours(1), clock);
  if (Result<CaMaterial> m = local.load()) (void)assembleAndValidate(*m, options);
  // The sidecar's poll: the issuer listing and reads alone, and the plan made from them.
  (void)local.trustSet();

  settings.generate_path = "pki/intermediate/generate/exported";
  PkiSource exported(client, settings, std::chrono::hours(720), std::chrono::hours(1), clock);
  if (Result<CaMaterial> m = exported.load()) (void)assembleAndValidate(*m, options);
  return 0;
}
