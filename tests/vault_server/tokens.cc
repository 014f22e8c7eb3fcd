#include "tests/vault_server/tokens.h"

#include <algorithm>

#include "tests/vault_server/policy.h"

namespace cacerts::testing {

bool TokenEntry::expired(SystemTime now) const {
  return ttl > 0 && now >= renewed_at + std::chrono::seconds(ttl);
}

std::int64_t TokenEntry::remaining(SystemTime now) const {
  if (ttl == 0) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      renewed_at + std::chrono::seconds(ttl) - now);
  return std::max<std::int64_t>(0, left.count());
}

std::string TokenStore::create(const std::string& ns, TokenSpec spec, SystemTime now) {
  TokenEntry t;
  const bool batch = spec.type == "batch";
  t.id = spec.id.empty() ? (batch ? "hvb." : "hvs.") + randomAlnum(24) : spec.id;
  t.type = batch ? "batch" : "service";
  t.accessor = randomAlnum(24);
  t.entity_id = spec.path == "auth/token/create" ? "" : newUuid();
  t.ns = ns;
  t.display_name = spec.display_name;
  t.path = spec.path;
  t.metadata = spec.metadata;
  const bool root = std::find(spec.policies.begin(), spec.policies.end(), "root") != spec.policies.end();
  if (!root) spec.policies.push_back("default");
  std::sort(spec.policies.begin(), spec.policies.end());
  spec.policies.erase(std::unique(spec.policies.begin(), spec.policies.end()), spec.policies.end());
  t.policies = spec.policies;
  t.creation_time = t.renewed_at = now;
  t.creation_ttl = t.ttl = spec.ttl_seconds;
  t.max_ttl = spec.max_ttl_seconds;
  t.renewable = spec.renewable && spec.ttl_seconds > 0 && !batch;
  const std::string id = t.id;
  tokens_[id] = std::move(t);
  return id;
}

const TokenEntry* TokenStore::findValid(const std::string& token, const std::string& ns,
                                        SystemTime now) const {
  const auto it = tokens_.find(token);
  if (it == tokens_.end() || !pathSeenFrom(it->second.ns, ns, "") || it->second.expired(now)) return nullptr;
  return &it->second;
}

std::optional<RenewResult> TokenStore::renew(const std::string& token,
                                             std::optional<std::int64_t> increment, SystemTime now,
                                             std::string& error) {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    error = "invalid token";
    return std::nullopt;
  }
  TokenEntry& t = it->second;
  if (t.type == "batch") {
    error = "batch tokens cannot be renewed";
    return std::nullopt;
  }
  if (!t.renewable) {
    error = "lease is not renewable";
    return std::nullopt;
  }
  RenewResult r;
  std::int64_t want = increment.value_or(t.creation_ttl);
  if (want <= 0) want = t.creation_ttl;
  r.granted = want;
  if (t.max_ttl > 0) {
    const auto used = std::chrono::duration_cast<std::chrono::seconds>(now - t.creation_time).count();
    const std::int64_t left = std::max<std::int64_t>(0, t.max_ttl - used);
    if (want > left) {
      r.granted = left;
      r.warnings.push_back("TTL of \"" + goDuration(want) + "\" exceeded the effective max_ttl of \"" +
                           goDuration(left) + "\"; TTL value is capped accordingly");
    }
  }
  t.renewed_at = now;
  t.ttl = r.granted;
  return r;
}

bool TokenStore::revoke(const std::string& token) { return tokens_.erase(token) > 0; }

std::size_t TokenStore::live(SystemTime now, bool logins_only) const {
  std::size_t n = 0;
  for (const auto& [id, t] : tokens_) {
    if (t.expired(now)) continue;
    if (logins_only && (t.path == "auth/token/create" || t.path.empty())) continue;
    ++n;
  }
  return n;
}

json TokenStore::authBlock(const TokenEntry& t) {
  json auth = {
      {"client_token", t.id},
      {"accessor", t.accessor},
      {"policies", t.policies},
      {"token_policies", t.policies},
      {"metadata", t.metadata},
      {"lease_duration", t.ttl},
      {"renewable", t.renewable},
      {"entity_id", t.entity_id},
      {"token_type", t.type},
      {"orphan", true},
      {"mfa_requirement", nullptr},
      {"num_uses", 0},
  };
  return auth;
}

json TokenStore::lookupData(const TokenEntry& t, SystemTime now) {
  return {
      {"accessor", t.accessor},
      {"creation_time", unixSeconds(t.creation_time)},
      {"creation_ttl", t.creation_ttl},
      {"display_name", t.display_name},
      {"entity_id", t.entity_id},
      {"expire_time", t.ttl == 0 ? json(nullptr)
                                 : json(rfc3339(t.renewed_at + std::chrono::seconds(t.ttl)))},
      // Only a cap set at creation is explicit; a login's cap comes from the mount.
      {"explicit_max_ttl", t.path == "auth/token/create" ? t.max_ttl : 0},
      {"id", t.id},
      {"issue_time", rfc3339(t.creation_time)},
      {"meta", t.metadata},
      {"num_uses", 0},
      {"orphan", true},
      {"path", t.path},
      {"policies", t.policies},
      {"renewable", t.renewable},
      {"ttl", t.remaining(now)},
      {"type", t.type},
  };
}

}  // namespace cacerts::testing
