#include "tests/vault_server/kv_engine.h"

#include <set>

namespace cacerts::testing {
namespace {

constexpr const char* kInvalidV2Path =
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
    "endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::vector<int> intList(const json& params, const char* name) {
  std::vector<int> out;
  const auto it = params.find(name);
  if (it == params.end()) return out;
  for (const auto& v : listParam(params, name)) {
    try {
      out.push_back(std::stoi(v));
    } catch (const std::exception&) {
    }
  }
  if (it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_number_integer()) out.push_back(v.get<int>());
    }
  }
  return out;
}

}  // namespace

json KvEngine::options() const { return version_ == 2 ? json{{"version", "2"}} : json(nullptr); }

Reply KvEngine::handle(const Call& call, EngineContext& ctx) {
  return version_ == 2 ? handleV2(call, ctx) : handleV1(call, ctx);
}

int KvEngine::put(const std::string& path, const json& data, SystemTime now) {
  if (version_ == 1) {
    v1_[path] = data;
    return 1;
  }
  Secret& s = v2_[path];
  if (s.versions.empty()) s.created = now;
  s.updated = now;
  s.current += 1;
  s.versions[s.current] = Version{data, now, std::nullopt, false};
  return s.current;
}

bool KvEngine::deleteVersion(const std::string& path, int version, SystemTime at) {
  if (version_ == 1) return v1_.erase(path) > 0;
  auto it = v2_.find(path);
  if (it == v2_.end() || !it->second.versions.count(version)) return false;
  it->second.versions[version].deletion_time = at;
  return true;
}

bool KvEngine::destroyVersion(const std::string& path, int version) {
  auto it = v2_.find(path);
  if (version_ == 1 || it == v2_.end() || !it->second.versions.count(version)) return false;
  Version& v = it->second.versions[version];
  v.destroyed = true;
  v.data = nullptr;
  return true;
}

json KvEngine::versionMetadata(const Version& v, int number) {
  return {
      {"created_time", rfc3339(v.created, true)},
      {"custom_metadata", nullptr},
      {"deletion_time", v.deletion_time ? rfc3339(*v.deletion_time, true) : ""},
      {"destroyed", v.destroyed},
      {"version", number},
  };
}

Reply KvEngine::listKeys(const std::string& prefix, bool v2) const {
  std::set<std::string> keys;
  auto add = [&](const std::string& full) {
    if (!startsWith(full, prefix)) return;
    const std::string rest = full.substr(prefix.size());
    const auto slash = rest.find('/');
    keys.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
  };
  if (v2) {
    for (const auto& [k, _] : v2_) add(k);
  } else {
    for (const auto& [k, _] : v1_) add(k);
  }
  if (keys.empty()) return errorReply(404, {});
  Envelope e;
  e.data = {{"keys", std::vector<std::string>(keys.begin(), keys.end())}};
  e.mount_type = "kv";
  return envelopeReply(e);
}

Reply KvEngine::handleV1(const Call& call, EngineContext&) {
  const std::string& path = call.path;
  if (call.method == "LIST") return listKeys(path.empty() || path.back() == '/' ? path : path + "/", false);
  if (path.empty()) return errorReply(405, {"unsupported operation"});
  if (call.method == "GET") {
    const auto it = v1_.find(path);
    if (it == v1_.end()) return errorReply(404, {});
    Envelope e;
    e.data = it->second;
    e.mount_type = "kv";
    e.lease_duration = kSystemMaxTtlSeconds;
    if (const auto ttl = it->second.find("ttl"); ttl != it->second.end()) {
      e.lease_duration = durationSeconds(*ttl).value_or(kSystemMaxTtlSeconds);
    }
    return envelopeReply(e);
  }
  if (call.method == "POST") {
    if (!call.params.is_object() || call.params.empty()) return errorReply(400, {"missing data fields"});
    v1_[path] = call.params;
    return noContent();
  }
  if (call.method == "DELETE") {
    v1_.erase(path);
    return noContent();
  }
  return errorReply(405, {"unsupported operation"});
}

Reply KvEngine::handleV2(const Call& call, EngineContext&) {
  const std::string& p = call.path;
  auto after = [&](const char* prefix) { return p.substr(std::string(prefix).size()); };
  if (startsWith(p, "data/")) {
    const std::string path = after("data/");
    if (call.method == "GET") return readV2(path, call);
    if (call.method == "POST") return writeV2(path, call);
    if (call.method == "DELETE") {
      auto it = v2_.find(path);
      if (it != v2_.end()) it->second.versions[it->second.current].deletion_time = call.now;
      return noContent();
    }
    return errorReply(405, {"unsupported operation"});
  }
  if (startsWith(p, "metadata/") || p == "metadata") {
    const std::string path = p == "metadata" ? "" : after("metadata/");
    if (call.method == "LIST") return listKeys(path.empty() || path.back() == '/' ? path : path + "/", true);
    return metadataV2(path, call);
  }
  for (const char* op : {"delete/", "undelete/", "destroy/"}) {
    if (!startsWith(p, op)) continue;
    if (call.method != "POST") return errorReply(405, {"unsupported operation"});
    const auto versions = intList(call.params, "versions");
    if (versions.empty()) return errorReply(400, {"no version number provided"});
    auto it = v2_.find(after(op));
    if (it == v2_.end()) return noContent();
    for (int v : versions) {
      auto vit = it->second.versions.find(v);
      if (vit == it->second.versions.end()) continue;
      if (std::string(op) == "delete/") vit->second.deletion_time = call.now;
      if (std::string(op) == "undelete/" && !vit->second.destroyed) vit->second.deletion_time.reset();
      if (std::string(op) == "destroy/") {
        vit->second.destroyed = true;
        vit->second.data = nullptr;
      }
    }
    return noContent();
  }
  if (p == "config") {
    Envelope e;
    e.data = {{"cas_required", false}, {"delete_version_after", "0s"}, {"max_versions", 0}};
    e.mount_type = "kv";
    return envelopeReply(e);
  }
  // A v1-style path on a v2 mount: 404 with a full envelope and a warning, no errors.
  Envelope e;
  e.warnings = {kInvalidV2Path};
  return envelopeReply(e, 404);
}

Reply KvEngine::readV2(const std::string& path, const Call& call) {
  const auto it = v2_.find(path);
  if (it == v2_.end()) return errorReply(404, {});
  const auto requested = intParam(call.params, "version", 0);
  if (!requested) return errorReply(400, {"invalid version"});
  const int number = *requested == 0 ? it->second.current : static_cast<int>(*requested);
  const auto vit = it->second.versions.find(number);
  if (vit == it->second.versions.end()) return errorReply(404, {});
  const Version& v = vit->second;
  Envelope e;
  e.mount_type = "kv";
  const bool deleted = v.deletion_time && *v.deletion_time <= call.now;
  e.data = {{"data", deleted || v.destroyed ? json(nullptr) : v.data},
            {"metadata", versionMetadata(v, number)}};
  return envelopeReply(e, deleted || v.destroyed ? 404 : 200);
}

Reply KvEngine::writeV2(const std::string& path, const Call& call) {
  const auto data = call.params.find("data");
  if (data == call.params.end() || !data->is_object()) return errorReply(400, {"no data provided"});
  if (const auto opts = call.params.find("options"); opts != call.params.end() && opts->is_object()) {
    if (const auto cas = opts->find("cas"); cas != opts->end() && cas->is_number_integer()) {
      const auto it = v2_.find(path);
      const int current = it == v2_.end() ? 0 : it->second.current;
      if (cas->get<int>() != current) {
        return errorReply(400, {"check-and-set parameter did not match the current version"});
      }
    }
  }
  const int number = put(path, *data, call.now);
  Envelope e;
  e.mount_type = "kv";
  e.data = versionMetadata(v2_[path].versions[number], number);
  return envelopeReply(e);
}

Reply KvEngine::metadataV2(const std::string& path, const Call& call) {
  auto it = v2_.find(path);
  if (call.method == "DELETE") {
    if (it != v2_.end()) v2_.erase(it);
    return noContent();
  }
  if (call.method == "POST") return noContent();  // settings are accepted and ignored
  if (call.method != "GET") return errorReply(405, {"unsupported operation"});
  if (it == v2_.end()) return errorReply(404, {});
  const Secret& s = it->second;
  json versions = json::object();
  for (const auto& [n, v] : s.versions) {
    json m = versionMetadata(v, n);
    m.erase("version");
    m.erase("custom_metadata");
    versions[std::to_string(n)] = m;
  }
  Envelope e;
  e.mount_type = "kv";
  e.data = {
      {"cas_required", false},
      {"created_time", rfc3339(s.created, true)},
      {"current_version", s.current},
      {"custom_metadata", nullptr},
      {"delete_version_after", "0s"},
      {"max_versions", 0},
      {"oldest_version", s.versions.empty() ? 0 : s.versions.begin()->first},
      {"updated_time", rfc3339(s.updated, true)},
      {"versions", versions},
  };
  return envelopeReply(e);
}

}  // namespace cacerts::testing
