#include "tests/vault_server/policy.h"

#include <algorithm>
#include <tuple>

namespace cacerts::testing {
namespace {

bool isGlob(const std::string& p) { return p.find_first_of("*+") != std::string::npos; }

bool plusAt(const std::string& p, std::size_t i) {
  return p[i] == '+' && (i == 0 || p[i - 1] == '/') && (i + 1 == p.size() || p[i + 1] == '/');
}

// Vault's glob priority: later first wildcard, no trailing '*', fewer '+' segments,
// longer pattern, then lexicographic order. Larger tuple = higher priority.
auto priority(const std::string& p) {
  const std::size_t first = p.find_first_of("*+");
  const bool no_star = p.empty() || p.back() != '*';
  const auto plus = std::count(p.begin(), p.end(), '+');
  return std::make_tuple(first, no_star, -plus, p.size(), p);
}

}  // namespace

std::optional<unsigned> capabilityMask(const std::vector<std::string>& names) {
  unsigned mask = 0;
  for (const auto& n : names) {
    if (n == "read") mask |= kCapRead;
    else if (n == "list") mask |= kCapList;
    else if (n == "create") mask |= kCapCreate;
    else if (n == "update") mask |= kCapUpdate;
    else if (n == "delete") mask |= kCapDelete;
    else if (n == "patch") mask |= kCapPatch;
    else if (n == "sudo") mask |= kCapSudo;
    else if (n == "deny") mask |= kCapDeny;
    else return std::nullopt;
  }
  return mask;
}

bool globMatches(const std::string& pattern, const std::string& path) {
  std::size_t i = 0, j = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '*' && i + 1 == pattern.size()) return true;
    if (plusAt(pattern, i)) {
      const std::size_t end = path.find('/', j);
      const std::size_t seg_end = end == std::string::npos ? path.size() : end;
      if (seg_end == j) return false;  // '+' needs a non-empty segment
      j = seg_end;
      ++i;
      continue;
    }
    if (j >= path.size() || pattern[i] != path[j]) return false;
    ++i;
    ++j;
  }
  return j == path.size();
}

unsigned effectiveCapabilities(const std::vector<const Policy*>& policies, const std::string& path) {
  unsigned exact = 0;
  bool have_exact = false;
  const std::string* best = nullptr;
  for (const Policy* p : policies) {
    if (p->root) return ~kCapDeny;
    for (const auto& r : p->rules) {
      if (!globMatches(r.path, path)) continue;
      if (!isGlob(r.path)) {
        have_exact = true;
        exact |= capabilityMask(r.capabilities).value_or(0);
      } else if (!best || priority(r.path) > priority(*best)) {
        best = &r.path;
      }
    }
  }
  unsigned caps = 0;
  if (have_exact) {
    caps = exact;
  } else if (best) {
    for (const Policy* p : policies) {
      for (const auto& r : p->rules) {
        if (r.path == *best) caps |= capabilityMask(r.capabilities).value_or(0);
      }
    }
  }
  return (caps & kCapDeny) ? kCapDeny : caps;
}

std::optional<std::string> pathSeenFrom(const std::string& token_ns, const std::string& request_ns,
                                        const std::string& path) {
  if (token_ns == request_ns) return path;
  if (token_ns.empty()) return request_ns + "/" + path;
  if (request_ns.size() <= token_ns.size() || request_ns.compare(0, token_ns.size(), token_ns) != 0 ||
      request_ns[token_ns.size()] != '/') {
    return std::nullopt;
  }
  return request_ns.substr(token_ns.size() + 1) + "/" + path;
}

bool grantsAnythingUnder(const std::vector<const Policy*>& policies, const std::string& prefix) {
  for (const Policy* p : policies) {
    if (p->root) return true;
    for (const auto& r : p->rules) {
      const unsigned caps = capabilityMask(r.capabilities).value_or(0);
      if (caps == 0 || (caps & kCapDeny)) continue;
      // Walk the pattern along the prefix; if the prefix runs out (or a '*' is reached)
      // while the pattern still agrees, the rule reaches into the mount.
      std::size_t i = 0, j = 0;
      bool possible = true;
      while (i < r.path.size() && j < prefix.size()) {
        if (r.path[i] == '*' && i + 1 == r.path.size()) break;
        if (plusAt(r.path, i)) {
          const std::size_t end = prefix.find('/', j);
          j = end == std::string::npos ? prefix.size() : end;
          ++i;
          continue;
        }
        if (r.path[i] != prefix[j]) {
          possible = false;
          break;
        }
        ++i;
        ++j;
      }
      if (possible && (j == prefix.size() || (i < r.path.size() && r.path[i] == '*'))) return true;
    }
  }
  return false;
}

}  // namespace cacerts::testing
