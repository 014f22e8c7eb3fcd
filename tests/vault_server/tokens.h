// The token store: tokens live in one namespace, carry policies, and expire on the
// server's (advanceable) clock. Not thread-safe: the server serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/vault_server/response.h"

namespace cacerts::testing {

// Vault's system default and max lease TTL (768h).
inline constexpr std::int64_t kSystemMaxTtlSeconds = 768 * 3600;

struct TokenSpec {
  std::string id{};                     // empty: a random "hvs." token
  std::vector<std::string> policies{};  // "default" is added unless the token is a root token
  std::int64_t ttl_seconds = 0;       // 0: never expires
  std::int64_t max_ttl_seconds = 0;   // 0: no cap on renewals
  bool renewable = false;
  std::string display_name = "token";
  std::string path = "auth/token/create";  // the login path that created it
  json metadata = nullptr;                 // map<string,string> or null
  std::string type = "service";            // "service" or "batch" (never renewable)
};

struct TokenEntry {
  std::string id{}, accessor{}, ns{}, display_name{}, path{}, entity_id{};
  std::string type = "service";
  std::vector<std::string> policies{};
  json metadata = nullptr;
  SystemTime creation_time{};
  SystemTime renewed_at{};  // start of the current TTL
  std::int64_t creation_ttl = 0, ttl = 0, max_ttl = 0;
  bool renewable = false;

  bool expired(SystemTime now) const;
  std::int64_t remaining(SystemTime now) const;  // 0 for non-expiring tokens
};

struct RenewResult {
  std::int64_t granted = 0;
  std::vector<std::string> warnings{};
};

class TokenStore {
 public:
  std::string create(const std::string& ns, TokenSpec spec, SystemTime now);
  // The entry for token, or nullptr when unknown, expired, or not usable in ns. A token acts
  // in its own namespace and in every namespace below it (what its policies then allow there
  // is pathSeenFrom's rule); in a parent or sibling namespace it is refused.
  const TokenEntry* findValid(const std::string& token, const std::string& ns, SystemTime now) const;
  // Renews within max_ttl; nullopt (with message) when the token is not renewable.
  std::optional<RenewResult> renew(const std::string& token, std::optional<std::int64_t> increment,
                                   SystemTime now, std::string& error);

  // Revokes token (as revoke-self): false when it was unknown.
  bool revoke(const std::string& token);
  // Tokens neither expired nor revoked at now; logins_only: only those minted by an auth
  // method's login (not the root token or tokens a test created directly).
  std::size_t live(SystemTime now, bool logins_only) const;

  // The §3.1 auth block; lease_duration is the token's current TTL.
  static json authBlock(const TokenEntry& t);
  // The data of auth/token/lookup-self.
  static json lookupData(const TokenEntry& t, SystemTime now);

 private:
  std::map<std::string, TokenEntry> tokens_;
};

}  // namespace cacerts::testing
