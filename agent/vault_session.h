// VaultSession: the transport, authenticator and client built from Config, owned together
// so that modes can hold one object.
#pragma once

#include <memory>

#include "agent/config.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/vault_auth.h"
#include "common/vault_client.h"

namespace cacerts {

struct VaultSession {
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<VaultAuthenticator> auth;
  std::unique_ptr<VaultClient> client;
};

// Errors: kInvalidArgument for an unusable address, TLS files or auth settings.
Result<VaultSession> openVaultSession(const Config& config, Clock& clock, Random& random);

}  // namespace cacerts
