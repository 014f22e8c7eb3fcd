// KvSource: reads the signing certificate, key, chain and root from Vault KV (v1 or v2).
//
// The KV version is detected from the mount (sys/internal/ui/mounts/<path>), not guessed
// from a response. On a v2 mount both "secret/x" and "secret/data/x" address the same
// secret. All references to one secret (and one version) are served by a single read, so
// the certificate and the key can never come from different versions.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "agent/kv_ref.h"
#include "agent/source.h"
#include "common/vault_client.h"

namespace cacerts {

struct KvRefs {
  KvRef cert, key;
  std::optional<KvRef> chain, root, crl;
};

// Where one secret lives once its mount is known.
struct KvLocation {
  std::string mount;      // "secret/" (with trailing slash)
  int kv_version = 1;     // 1 or 2
  std::string relative;   // path inside the mount, without "data/"
  std::string readPath(int version) const;      // secret/data/x?version=3 or secret/x
  std::string metadataPath() const;             // secret/metadata/x (v2 only)
};

class KvSource final : public CaSource {
 public:
  KvSource(VaultClient& vault, KvRefs refs) : vault_(vault), refs_(std::move(refs)) {}
  Result<CaMaterial> load() override;
  // KV reads issue nothing: the roots of a full load.
  Result<TrustSet> trustSet() override {
    ASSIGN_OR_RETURN(CaMaterial material, load());
    ASSIGN_OR_RETURN(std::vector<Certificate> roots, declaredRoots(material));
    return TrustSet{std::move(roots), material.schedule};
  }
  std::string describe() const override { return "kv " + refs_.cert.path; }

  // Cheap change detection for the sidecar's poll: for KV v2 the current version number
  // of each secret (metadata read); for KV v1 nullopt (callers compare loaded material).
  Result<std::optional<std::string>> versionStamp();
  Result<std::optional<std::string>> changeStamp() override { return versionStamp(); }

 private:
  Result<CaMaterial> loadUnguarded();
  Result<std::optional<std::string>> versionStampUnguarded();
  Result<KvLocation> locate(const std::string& path);
  Result<nlohmann::json> readSecret(const KvLocation& where, const KvRef& ref);

  VaultClient& vault_;
  KvRefs refs_;
  std::map<std::string, KvLocation> located_;  // by path as written
};

}  // namespace cacerts
