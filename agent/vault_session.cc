#include "agent/vault_session.h"

#include <spdlog/spdlog.h>

#include "common/redirect_transport.h"

namespace cacerts {

Result<VaultSession> openVaultSession(const Config& config, Clock& clock, Random& random) {
  if (config.tls.skip_verify) {
    spdlog::warn("event=insecure_tls message=\"VAULT_SKIP_VERIFY is set: Vault's certificate is NOT verified; "
                 "anyone on the network path can impersonate Vault and hand istiod a CA. Set --vault-cacert instead.\"");
  }
  if (config.vault_allow_http && vaultTrafficLeavesHostInClear(config.vault_addr)) {
    spdlog::warn("event=insecure_http message=\"--vault-allow-http is set and Vault is plain http:// to a host that "
                 "is not loopback: the login credential and the CA key cross the network in clear text. Use "
                 "https:// instead.\"");
  }
  VaultSession s;
  HttpLimits limits;
  // One TLS handshake per burst of calls (an init, a rotation) instead of one per call;
  // long-lived callers release the connection after each burst (see HttpTransport).
  limits.keep_alive_idle = std::chrono::seconds(2);
  ASSIGN_OR_RETURN(std::unique_ptr<HttpTransport> primary, makeHttplibTransport(config.vault_addr, config.tls, limits));
  // HA Vault: a standby answers 307 to the active node, reached with the same trust settings.
  s.transport = makeRedirectFollowingTransport(
      config.vault_addr, std::move(primary),
      [tls = config.tls, limits](const std::string& base) { return makeHttplibTransport(base, tls, limits); });
  ASSIGN_OR_RETURN(s.auth, makeAuthenticator(config.auth));
  s.client = std::make_unique<VaultClient>(*s.transport, config.vault_namespace, clock, random);
  s.client->setAuthenticator(s.auth.get());
  return s;
}

}  // namespace cacerts
