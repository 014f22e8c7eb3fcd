// Vault's login and token-renewal responses (the auth block every auth method parses).
// Responses in order: login, renew-self. See fuzz_support.h for the input format.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cacerts::fuzzing::formatLogsIntoNothing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cacerts;
  fuzzing::ScriptedVault vault(data, size);
  VaultClient& client = vault.client;

  const nlohmann::json body = {{"role", "istiod"}, {"jwt", "fuzz.jwt.value"}};
  Result<VaultToken> token = client.loginWith("kubernetes", body, "kubernetes login at auth/kubernetes (role istiod)");
  if (!token) return 0;
  if (token->token.empty()) std::abort();  // an empty client_token is never accepted
  client.setToken(std::move(*token));
  (void)client.renewToken(std::chrono::hours(1));
  (void)client.tokenExpiry();
  (void)client.refreshTokenIfExpiring();
  return 0;
}
