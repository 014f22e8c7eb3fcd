// ACL policies in the shape of Vault's: path patterns with capabilities. A pattern may end
// in '*' (prefix match) and may use '+' for exactly one path segment. Among the rules of a
// token's policies, an exact pattern wins over globs; otherwise the most specific glob wins
// (Vault's priority order); rules with the same pattern are merged; "deny" wins over all.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cacerts::testing {

enum Capability : unsigned {
  kCapRead = 1u << 0,
  kCapList = 1u << 1,
  kCapCreate = 1u << 2,
  kCapUpdate = 1u << 3,
  kCapDelete = 1u << 4,
  kCapPatch = 1u << 5,
  kCapSudo = 1u << 6,
  kCapDeny = 1u << 7,
};

struct PolicyRule {
  std::string path{};                       // e.g. "secret/data/istio/*", "pki/issuer/+/json"
  std::vector<std::string> capabilities{};  // read, list, create, update, delete, patch, sudo, deny
};

struct Policy {
  std::string name{};
  std::vector<PolicyRule> rules{};
  bool root = false;  // the built-in "root" policy: everything allowed
};

// nullopt when a capability name is unknown.
std::optional<unsigned> capabilityMask(const std::vector<std::string>& names);

// True when the pattern matches the whole path.
bool globMatches(const std::string& pattern, const std::string& path);

// Capabilities the policies grant on path (kCapDeny set means "denied").
unsigned effectiveCapabilities(const std::vector<const Policy*>& policies, const std::string& path);

// True when some non-deny rule could match a path at or below prefix (which ends in '/').
// This is Vault's test for sys/internal/ui/mounts access.
bool grantsAnythingUnder(const std::vector<const Policy*>& policies, const std::string& prefix);

}  // namespace cacerts::testing
