// The interface between the server core and the engines mounted in it (KV, PKI, auth
// methods). The core resolves namespace and mount, checks the token and the ACL, and hands
// the engine a Call with the path inside the mount.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_pki.h"
#include "tests/vault_server/response.h"
#include "tests/vault_server/tokens.h"

namespace cacerts::testing {

// Switches for behaviour that differs between Vault releases.
struct VaultBehaviour {
  bool token_errors_modern = true;          // 1.17+: "invalid token" next to "permission denied"
  bool pki_legacy_ca_chain = false;         // < 1.11: sign-intermediate ca_chain = issuer chain only
  bool pki_not_after_beyond_issuer = false;  // <= 1.16: no truncation to the issuer's notAfter
  bool pki_expiration_as_string = false;    // emit "expiration" as a quoted number
  bool pki_unauthenticated_issuer_list = true;  // LIST <pki>/issuers needs no token
};

struct Call {
  std::string method{};  // GET, LIST, POST (also PUT), DELETE, PATCH
  std::string path{};    // inside the mount, no leading '/': "data/x", "login", ""
  json params = json::object();  // body fields over query parameters
  std::vector<TestCert> peer_chain{};  // TLS client certificate chain, leaf first
  SystemTime now{};        // the server clock (advanceable; used for tokens and KV)
  SystemTime real_now{};   // wall time (used for certificates)
};

struct MountConfig {
  std::string path{};  // without trailing '/', e.g. "secret", "auth/kubernetes", "pki/root"
  std::string accessor{};
  std::string uuid{};
  std::int64_t default_lease_ttl = 0;  // 0: system default
  std::int64_t max_lease_ttl = 0;      // 0: system default (768h)
  std::int64_t effectiveMaxTtl() const { return max_lease_ttl > 0 ? max_lease_ttl : kSystemMaxTtlSeconds; }
};

struct EngineContext {
  TokenStore& tokens;
  const std::string& ns;
  const MountConfig& mount;
  const VaultBehaviour& behaviour;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Mount type as Vault reports it: "kv", "pki", "kubernetes", "approle", "jwt", "cert".
  virtual std::string type() const = 0;
  // The "options" of sys/internal/ui/mounts (KV: {"version":"2"}).
  virtual json options() const { return nullptr; }
  // Paths that need no token (logins, public PKI reads).
  virtual bool unauthenticated(const Call& call, const VaultBehaviour& behaviour) const = 0;
  virtual Reply handle(const Call& call, EngineContext& ctx) = 0;
};

struct Mount {
  MountConfig config{};
  std::unique_ptr<Engine> engine{};
};

}  // namespace cacerts::testing
