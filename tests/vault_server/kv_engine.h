// KV secrets engine, version 1 (flat map per path) or 2 (versions, metadata, soft delete,
// destroy), answering with Vault's status codes and 404-with-envelope cases (vault-api.md §4).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "tests/vault_server/engine.h"

namespace cacerts::testing {

class KvEngine final : public Engine {
 public:
  explicit KvEngine(int version) : version_(version) {}

  std::string type() const override { return "kv"; }
  json options() const override;
  bool unauthenticated(const Call&, const VaultBehaviour&) const override { return false; }
  Reply handle(const Call& call, EngineContext& ctx) override;

  int version() const { return version_; }
  // Writes data at path; returns the new version (always 1 for KV v1).
  int put(const std::string& path, const json& data, SystemTime now);
  // Soft-deletes a version (v2) effective at `at`; false when the path/version is unknown.
  bool deleteVersion(const std::string& path, int version, SystemTime at);
  bool destroyVersion(const std::string& path, int version);

 private:
  struct Version {
    json data;
    SystemTime created;
    std::optional<SystemTime> deletion_time;
    bool destroyed = false;
  };
  struct Secret {
    std::map<int, Version> versions;
    int current = 0;
    SystemTime created, updated;
  };

  Reply handleV1(const Call& call, EngineContext& ctx);
  Reply handleV2(const Call& call, EngineContext& ctx);
  Reply readV2(const std::string& path, const Call& call);
  Reply writeV2(const std::string& path, const Call& call);
  Reply metadataV2(const std::string& path, const Call& call);
  Reply listKeys(const std::string& prefix, bool v2) const;
  static json versionMetadata(const Version& v, int number);

  int version_;
  std::map<std::string, json> v1_;
  std::map<std::string, Secret> v2_;
};

}  // namespace cacerts::testing
