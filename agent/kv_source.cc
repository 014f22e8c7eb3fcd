#include "agent/kv_source.h"

#include <spdlog/spdlog.h>

namespace cacerts {

std::string KvLocation::readPath(int version) const {
  if (kv_version == 1) return mount + relative;
  std::string p = mount + "data/" + relative;
  if (version > 0) p += "?version=" + std::to_string(version);
  return p;
}

std::string KvLocation::metadataPath() const { return mount + "metadata/" + relative; }

Result<KvLocation> KvSource::locate(const std::string& path) {
  if (auto it = located_.find(path); it != located_.end()) return it->second;
  // Log in first, so that a refused login is reported as such and not as a mount problem.
  RETURN_IF_ERROR(vault_.ensureToken());
  Result<VaultResponse> r = vault_.call("GET", "sys/internal/ui/mounts/" + path, nullptr, true, /*allow_not_found=*/true);
  KvLocation where;
  if (!r) {
    if (r.error().code == ErrorCode::kPermissionDenied) {
      return Error{ErrorCode::kPermissionDenied,
                   "no access to the KV mount of " + path +
                       " (the mount does not exist or the token's policy grants nothing inside it; Vault does not say which)"};
    }
    return r.error();
  }
  const nlohmann::json& data = r->body.is_object() ? r->body.value("data", nlohmann::json()) : nlohmann::json();
  if (r->status == 404 || !data.is_object()) {
    // Servers before 0.10 have no mount discovery and only KV v1.
    where.mount = "";
    where.relative = path;
    located_[path] = where;
    return where;
  }
  const std::string type = data.value("type", "");
  if (type != "kv" && type != "generic") {
    return Error{ErrorCode::kInvalidArgument, path + " is on a \"" + type + "\" mount, not a KV mount"};
  }
  std::string mount = data.value("path", "");
  if (!mount.empty() && mount.back() != '/') mount += '/';
  // In a child namespace Vault prefixes data.path with the namespace; drop leading
  // components until the mount is a prefix of the path as written.
  while (!mount.empty() && path.rfind(mount, 0) != 0 && (path + "/").rfind(mount, 0) != 0) {
    const auto slash = mount.find('/');
    if (slash == std::string::npos || slash + 1 >= mount.size()) break;
    mount = mount.substr(slash + 1);
  }
  if (path.rfind(mount, 0) != 0) {
    return Error{ErrorCode::kInvalidArgument, "cannot place " + path + " inside mount " + data.value("path", "")};
  }
  const auto& options = data.value("options", nlohmann::json());
  const std::string version = options.is_object() && options.contains("version") && options["version"].is_string()
                                  ? options["version"].get<std::string>()
                                  : "";
  where.mount = mount;
  where.kv_version = version == "2" ? 2 : 1;
  where.relative = path.substr(mount.size());
  if (where.kv_version == 2 && where.relative.rfind("data/", 0) == 0) where.relative = where.relative.substr(5);
  if (where.relative.empty()) return Error{ErrorCode::kInvalidArgument, path + " names a mount, not a secret"};
  located_[path] = where;
  spdlog::debug("event=kv_mount_detected path={} mount={} kv_version={}", path, mount, where.kv_version);
  return where;
}

Result<nlohmann::json> KvSource::readSecret(const KvLocation& where, const KvRef& ref) {
  const std::string read_path = where.readPath(ref.version);
  if (where.kv_version == 1 && ref.version > 0) {
    return Error{ErrorCode::kInvalidArgument,
                 ref.path + "#" + ref.field + "#" + std::to_string(ref.version) + ": KV v1 mount " + where.mount +
                     " has no versions; drop the #<version> suffix"};
  }
  ASSIGN_OR_RETURN(VaultResponse r, vault_.call("GET", read_path, nullptr, true, /*allow_not_found=*/true));
  const nlohmann::json data = r.body.is_object() ? r.body.value("data", nlohmann::json()) : nlohmann::json();
  const std::string version_text = ref.version > 0 ? " version " + std::to_string(ref.version) : "";
  if (where.kv_version == 2) {
    const auto& meta = data.is_object() ? data.value("metadata", nlohmann::json()) : nlohmann::json();
    if (r.status == 404 && meta.is_object()) {
      if (meta.value("destroyed", false)) {
        return Error{ErrorCode::kNotFound, "secret " + read_path + version_text + " was destroyed; point the reference at a live version"};
      }
      return Error{ErrorCode::kNotFound, "secret " + read_path + version_text +
                                             " is deleted (deletion_time " + meta.value("deletion_time", "") +
                                             "); undelete it or point the reference at a live version"};
    }
    if (r.status == 404 || !data.is_object() || !data.contains("data") || !data["data"].is_object()) {
      return Error{ErrorCode::kNotFound, "no secret at " + read_path + version_text + " (mount " + where.mount + ", KV v2)"};
    }
    spdlog::info("event=kv_read path={} version={}", where.mount + "data/" + where.relative,
                 meta.is_object() ? meta.value("version", 0) : 0);
    return data["data"];
  }
  if (r.status == 404 || !data.is_object()) {
    return Error{ErrorCode::kNotFound, "no secret at " + read_path + " (mount " + where.mount + ", KV v1)"};
  }
  spdlog::info("event=kv_read path={} kv_version=1", read_path);
  return data;
}

Result<CaMaterial> KvSource::load() {
  return guardResponseShape("kv " + refs_.cert.path, [this] { return loadUnguarded(); });
}

Result<CaMaterial> KvSource::loadUnguarded() {
  struct Wanted {
    const KvRef* ref;
    std::string role;
  };
  std::vector<Wanted> wanted = {{&refs_.cert, "--kv-cert"}, {&refs_.key, "--kv-key"}};
  if (refs_.chain) wanted.push_back({&*refs_.chain, "--kv-chain"});
  if (refs_.root) wanted.push_back({&*refs_.root, "--kv-root"});
  if (refs_.crl) wanted.push_back({&*refs_.crl, "--kv-crl"});

  // One read per (secret, version): fields of one secret always come from the same write.
  std::map<std::string, nlohmann::json> secrets;
  std::map<std::string, std::string> fields;  // role -> value
  CaMaterial m;
  for (const auto& w : wanted) {
    ASSIGN_OR_RETURN(KvLocation where, locate(w.ref->path));
    const std::string key = where.mount + where.relative + "#" + std::to_string(w.ref->version);
    if (!secrets.count(key)) {
      ASSIGN_OR_RETURN(nlohmann::json payload, readSecret(where, *w.ref));
      secrets[key] = std::move(payload);
    }
    const nlohmann::json& payload = secrets[key];
    if (!payload.contains(w.ref->field) || !payload[w.ref->field].is_string()) {
      std::string names;
      for (const auto& [name, value] : payload.items()) names += (names.empty() ? "" : ", ") + name;
      return Error{ErrorCode::kNotFound, w.role + ": field \"" + w.ref->field + "\" not found (or not a string) in " +
                                             where.readPath(w.ref->version) + "; fields present: " +
                                             (names.empty() ? "none" : names)};
    }
    const std::string& value = payload[w.ref->field].get_ref<const std::string&>();
    if (w.ref == &refs_.key) m.key_pem = Secret(value);
    else if (w.ref == &refs_.cert) m.cert_pem = value;
    else if (refs_.chain && w.ref == &*refs_.chain) m.chain_pem = value;
    else if (refs_.crl && w.ref == &*refs_.crl) m.crl_pem = value;
    else m.root_pem = value;
  }
  // The JSON copies of the key are wiped before they are freed.
  for (auto& [key, payload] : secrets) {
    for (auto& [name, value] : payload.items()) {
      if (value.is_string()) {
        auto& s = value.get_ref<std::string&>();
        cleanseMemory(s.data(), s.size());
      }
    }
  }
  return m;
}

Result<std::optional<std::string>> KvSource::versionStamp() {
  return guardResponseShape("kv metadata " + refs_.cert.path, [this] { return versionStampUnguarded(); });
}

Result<std::optional<std::string>> KvSource::versionStampUnguarded() {
  std::vector<const KvRef*> refs = {&refs_.cert, &refs_.key};
  if (refs_.chain) refs.push_back(&*refs_.chain);
  if (refs_.root) refs.push_back(&*refs_.root);
  if (refs_.crl) refs.push_back(&*refs_.crl);
  // One metadata read per secret: fields of one secret share a version, and reading it
  // twice could straddle a write and report a change that is already over.
  std::map<std::string, std::string> versions;  // metadata path (or pinned ref) -> version
  for (const KvRef* ref : refs) {
    ASSIGN_OR_RETURN(KvLocation where, locate(ref->path));
    if (where.kv_version != 2) return std::optional<std::string>();
    if (ref->version > 0) {
      versions[where.relative + "#" + std::to_string(ref->version)] = std::to_string(ref->version);
      continue;
    }
    const std::string path = where.metadataPath();
    if (versions.count(path) != 0) continue;
    ASSIGN_OR_RETURN(VaultResponse r, vault_.call("GET", path));
    const auto& data = r.body.is_object() ? r.body.value("data", nlohmann::json()) : nlohmann::json();
    versions[path] = std::to_string(data.is_object() ? data.value("current_version", 0) : 0);
  }
  std::string stamp;
  for (const auto& [where, version] : versions) stamp += where + "@" + version + ";";
  return std::optional<std::string>(stamp);
}

}  // namespace cacerts
