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

// The path a token's policies are matched against. Vault compares ACLs on full paths from
// the root namespace: a rule "P" of a policy in namespace N stands for "N/P", and a request
// in namespace R for "Q" is checked as "R/Q". So a token of namespace token_ns acts in
// request_ns when that is token_ns or a namespace below it, and its rules see the request's
// path prefixed with request_ns relative to token_ns ("istio/secret/data/x" for a token of
// "team" reading secret/data/x in "team/istio"). nullopt when request_ns is a parent or a
// sibling of token_ns: no rule of that token can name a path there. Namespaces are given
// without leading or trailing '/' ("" is the root namespace).
std::optional<std::string> pathSeenFrom(const std::string& token_ns, const std::string& request_ns,
                                        const std::string& path);

// True when some non-deny rule could match a path at or below prefix (which ends in '/').
// This is Vault's test for sys/internal/ui/mounts access.
bool grantsAnythingUnder(const std::vector<const Policy*>& policies, const std::string& prefix);

}  // namespace cacerts::testing
