#include "tests/vault_server/vault_core.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>

namespace cacerts::testing {
namespace {

constexpr const char* kVersion = "1.17.2";

std::string trimSlashes(const std::string& s) {
  const auto b = s.find_first_not_of('/');
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of('/');
  return s.substr(b, e - b + 1);
}

bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::string authPath(const std::string& mount) {
  const std::string m = trimSlashes(mount);
  return startsWith(m, "auth/") ? m : "auth/" + m;
}

std::string randomHex(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  RAND_bytes(b.data(), static_cast<int>(b.size()));
  std::string out;
  char buf[3];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

// A path segment ending in '.' is rejected by Vault's router.
bool hasDotSegment(const std::string& path) {
  std::size_t start = 0;
  while (start < path.size()) {
    const auto end = path.find('/', start);
    const std::string seg = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!seg.empty() && seg.back() == '.') return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

unsigned neededCapability(const std::string& method) {
  if (method == "GET") return kCapRead;
  if (method == "LIST") return kCapList;
  if (method == "POST") return kCapCreate | kCapUpdate;
  if (method == "DELETE") return kCapDelete;
  if (method == "PATCH") return kCapPatch;
  return 0;
}

Error setupError(const std::string& message) { return Error{ErrorCode::kInvalidArgument, message}; }

// The first error of a failed Reply, for setup calls that go through the HTTP handlers.
Error replyError(const Reply& r) {
  const json body = json::parse(r.body, nullptr, false);
  std::string msg = "status " + std::to_string(r.status);
  if (!body.is_discarded() && body.contains("errors") && !body["errors"].empty()) {
    msg += ": " + body["errors"][0].get<std::string>();
  }
  return setupError(msg);
}

}  // namespace

VaultCore::VaultCore(VaultBehaviour behaviour, std::string root_token, bool require_request_header)
    : behaviour_(behaviour), require_request_header_(require_request_header) {
  createNamespace("");
  TokenSpec spec;
  spec.id = std::move(root_token);
  spec.policies = {"root"};
  spec.display_name = "root";
  root_token_ = tokens_.create("", std::move(spec), clockNow());
}

void VaultCore::setBehaviour(const VaultBehaviour& behaviour) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviour_ = behaviour;
}

void VaultCore::setRequireRequestHeader(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  require_request_header_ = on;
}

SystemTime VaultCore::clockNow() const { return std::chrono::system_clock::now() + clock_offset_; }

void VaultCore::advanceClock(Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  clock_offset_ += d;
}

void VaultCore::seal(bool sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  sealed_ = sealed;
}

void VaultCore::setStandby(bool standby, const std::string& active_addr) {
  std::lock_guard<std::mutex> lock(mu_);
  standby_ = standby;
  active_addr_ = active_addr;
}

// ---- namespaces, policies, tokens ----

std::size_t VaultCore::liveTokens(bool logins_only) const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.live(clockNow(), logins_only);
}

bool VaultCore::revokeToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.revoke(token);
}

VaultCore::Namespace& VaultCore::nsRef(const std::string& ns) {
  const std::string name = trimSlashes(ns);
  auto [it, inserted] = namespaces_.try_emplace(name);
  if (inserted) {
    Policy root;
    root.name = "root";
    root.root = true;
    it->second.policies["root"] = root;
    it->second.policies["default"] = Policy{"default", {}, false};
  }
  return it->second;
}

void VaultCore::createNamespace(const std::string& ns) {
  std::lock_guard<std::mutex> lock(mu_);
  // Parents exist implicitly, as in Vault where a child is created inside its parent.
  const std::string name = trimSlashes(ns);
  std::size_t pos = 0;
  while ((pos = name.find('/', pos)) != std::string::npos) nsRef(name.substr(0, pos++));
  nsRef(name);
}

Status VaultCore::setPolicy(const std::string& ns, const std::string& name, std::vector<PolicyRule> rules) {
  if (name == "root") return setupError("policy \"root\" cannot be changed");
  for (const auto& r : rules) {
    if (!capabilityMask(r.capabilities)) return setupError("policy " + name + ": unknown capability on " + r.path);
  }
  createNamespace(ns);
  std::lock_guard<std::mutex> lock(mu_);
  nsRef(ns).policies[name] = Policy{name, std::move(rules), false};
  return ok();
}

std::string VaultCore::createToken(const std::string& ns, TokenSpec spec) {
  createNamespace(ns);
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.create(trimSlashes(ns), std::move(spec), clockNow());
}

std::vector<const Policy*> VaultCore::policiesOf(const TokenEntry& token) {
  std::vector<const Policy*> out;
  Namespace& ns = nsRef(token.ns);
  for (const auto& name : token.policies) {
    const auto it = ns.policies.find(name);
    if (it != ns.policies.end()) out.push_back(&it->second);
  }
  return out;
}

unsigned VaultCore::capabilitiesOn(const TokenEntry& token, const std::string& ns, const std::string& path) {
  const auto seen = pathSeenFrom(token.ns, ns, path);
  return seen ? effectiveCapabilities(policiesOf(token), *seen) : 0u;
}

Reply VaultCore::denied(const std::string& token) const {
  return errorReply(403, {token.empty() ? permissionDeniedMessage()
                                        : invalidTokenMessage(behaviour_.token_errors_modern)});
}

// ---- mounts ----

Status VaultCore::addMount(const std::string& ns, std::string path, std::unique_ptr<Engine> engine) {
  createNamespace(ns);
  std::lock_guard<std::mutex> lock(mu_);
  path = trimSlashes(path);
  if (path.empty()) return setupError("empty mount path");
  Namespace& n = nsRef(ns);
  for (const auto& [existing, _] : n.mounts) {
    if (existing == path || startsWith(path, existing + "/") || startsWith(existing, path + "/")) {
      return setupError("path is already in use at " + existing + "/");
    }
  }
  Mount m;
  m.config.path = path;
  std::string kind = engine->type();
  m.config.accessor = (startsWith(path, "auth/") ? "auth_" + kind + "_" : kind + "_") + randomHex(4);
  m.config.uuid = newUuid();
  m.engine = std::move(engine);
  n.mounts[path] = std::move(m);
  return ok();
}

Mount* VaultCore::findMount(Namespace& ns, const std::string& path, std::string& sub) {
  Mount* best = nullptr;
  for (auto& [key, mount] : ns.mounts) {
    if (path == key || startsWith(path, key + "/")) {
      if (!best || key.size() > best->config.path.size()) {
        best = &mount;
        sub = path.size() > key.size() ? path.substr(key.size() + 1) : std::string();
      }
    }
  }
  return best;
}

Result<Mount*> VaultCore::mountFor(const std::string& ns, const std::string& mount,
                                              const std::string& type) {
  const auto nit = namespaces_.find(trimSlashes(ns));
  if (nit == namespaces_.end()) return setupError("no namespace \"" + ns + "\"");
  const auto it = nit->second.mounts.find(trimSlashes(mount));
  if (it == nit->second.mounts.end()) return setupError("no mount \"" + mount + "\" in namespace \"" + ns + "\"");
  if (!type.empty() && it->second.engine->type() != type) {
    return setupError("mount \"" + mount + "\" has type " + it->second.engine->type() + ", not " + type);
  }
  return &it->second;
}

template <class T>
Result<T*> VaultCore::engineFor(const std::string& ns, const std::string& mount) {
  const auto nit = namespaces_.find(trimSlashes(ns));
  if (nit == namespaces_.end()) return setupError("no namespace \"" + ns + "\"");
  const auto it = nit->second.mounts.find(trimSlashes(mount));
  if (it == nit->second.mounts.end()) return setupError("no mount \"" + mount + "\" in namespace \"" + ns + "\"");
  T* engine = dynamic_cast<T*>(it->second.engine.get());
  if (!engine) return setupError("mount \"" + mount + "\" has type " + it->second.engine->type());
  return engine;
}

Status VaultCore::enableKv(const std::string& ns, const std::string& mount, int version) {
  if (version != 1 && version != 2) return setupError("KV version must be 1 or 2");
  return addMount(ns, mount, std::make_unique<KvEngine>(version));
}

Result<int> VaultCore::kvPut(const std::string& ns, const std::string& mount, const std::string& path,
                             const json& data) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KvEngine * kv, engineFor<KvEngine>(ns, mount));
  if (!data.is_object()) return setupError("KV data must be a JSON object");
  return kv->put(trimSlashes(path), data, clockNow());
}

Status VaultCore::kvDeleteVersion(const std::string& ns, const std::string& mount, const std::string& path,
                                  int version, std::optional<SystemTime> at) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KvEngine * kv, engineFor<KvEngine>(ns, mount));
  if (!kv->deleteVersion(trimSlashes(path), version, at.value_or(clockNow()))) {
    return setupError("no version " + std::to_string(version) + " at " + path);
  }
  return ok();
}

Status VaultCore::kvDestroyVersion(const std::string& ns, const std::string& mount, const std::string& path,
                                   int version) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KvEngine * kv, engineFor<KvEngine>(ns, mount));
  if (!kv->destroyVersion(trimSlashes(path), version)) {
    return setupError("no KV v2 version " + std::to_string(version) + " at " + path);
  }
  return ok();
}

Status VaultCore::enableAuth(const std::string& ns, const std::string& mount, const std::string& type) {
  std::unique_ptr<Engine> engine;
  if (type == "kubernetes") engine = std::make_unique<KubernetesAuth>();
  if (type == "approle") engine = std::make_unique<AppRoleAuth>();
  if (type == "jwt" || type == "oidc") engine = std::make_unique<JwtAuth>();
  if (type == "cert") engine = std::make_unique<CertAuth>();
  if (!engine) return setupError("unsupported auth type \"" + type + "\"");
  return addMount(ns, authPath(mount), std::move(engine));
}

Status VaultCore::addKubernetesRole(const std::string& ns, const std::string& mount, KubernetesRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KubernetesAuth * a, engineFor<KubernetesAuth>(ns, authPath(mount)));
  a->addRole(std::move(role));
  return ok();
}

Status VaultCore::rejectKubernetesJwt(const std::string& ns, const std::string& mount, const std::string& jwt) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KubernetesAuth * a, engineFor<KubernetesAuth>(ns, authPath(mount)));
  a->rejectJwt(jwt);
  return ok();
}

Status VaultCore::failKubernetesTokenReviews(const std::string& ns, const std::string& mount, int n) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(KubernetesAuth * a, engineFor<KubernetesAuth>(ns, authPath(mount)));
  a->failTokenReviews(n);
  return ok();
}

Result<AppRoleCredentials> VaultCore::addAppRole(const std::string& ns, const std::string& mount, AppRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(AppRoleAuth * a, engineFor<AppRoleAuth>(ns, authPath(mount)));
  return a->addRole(std::move(role));
}

Status VaultCore::addJwtRole(const std::string& ns, const std::string& mount, JwtRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(JwtAuth * a, engineFor<JwtAuth>(ns, authPath(mount)));
  a->addRole(std::move(role));
  return ok();
}

Status VaultCore::setJwtDefaultRole(const std::string& ns, const std::string& mount, const std::string& role) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(JwtAuth * a, engineFor<JwtAuth>(ns, authPath(mount)));
  a->setDefaultRole(role);
  return ok();
}

Status VaultCore::addCertRole(const std::string& ns, const std::string& mount, CertRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(CertAuth * a, engineFor<CertAuth>(ns, authPath(mount)));
  if (parseCertChain(role.certificate_pem).empty()) return setupError("cert role " + role.name + ": no certificate");
  a->addRole(std::move(role));
  return ok();
}

Status VaultCore::enablePki(const std::string& ns, const std::string& mount, Duration max_lease_ttl) {
  RETURN_IF_ERROR(addMount(ns, mount, std::make_unique<PkiEngine>()));
  return tuneMount(ns, mount, max_lease_ttl);
}

Status VaultCore::tuneMount(const std::string& ns, const std::string& mount, Duration max_lease_ttl,
                            Duration default_lease_ttl) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Mount * m, mountFor(ns, mount, ""));
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  if (max_lease_ttl.count() > 0) m->config.max_lease_ttl = duration_cast<seconds>(max_lease_ttl).count();
  if (default_lease_ttl.count() > 0) m->config.default_lease_ttl = duration_cast<seconds>(default_lease_ttl).count();
  return ok();
}

Result<json> VaultCore::pkiGenerateRoot(const std::string& ns, const std::string& mount, const json& params,
                                        const std::string& type) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Mount * m, mountFor(ns, mount, "pki"));
  EngineContext ctx{tokens_, ns, m->config, behaviour_};
  const Reply r = static_cast<PkiEngine*>(m->engine.get())
                      ->generateRoot(type, params, ctx, std::chrono::system_clock::now());
  if (r.status != 200) return replyError(r);
  return json::parse(r.body)["data"];
}

Result<json> VaultCore::pkiImport(const std::string& ns, const std::string& mount, const std::string& pem_bundle) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  const Reply r = pki->importBundle(pem_bundle, true);
  if (r.status != 200) return replyError(r);
  return json::parse(r.body)["data"];
}

Status VaultCore::pkiSetDefaultIssuer(const std::string& ns, const std::string& mount, const std::string& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  const Reply r = pki->setDefault({{"default", ref}});
  if (r.status != 200) return replyError(r);
  return ok();
}

Status VaultCore::pkiDeleteIssuer(const std::string& ns, const std::string& mount, const std::string& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  const Reply r = pki->deleteIssuer(ref);
  if (r.status >= 300) return replyError(r);
  return ok();
}

Result<TestCa> VaultCore::pkiIssuer(const std::string& ns, const std::string& mount, const std::string& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  auto ca = pki->issuer(ref);
  if (!ca) return setupError("no issuer \"" + ref + "\" in " + mount);
  return *ca;
}

Result<std::size_t> VaultCore::pkiIssuedCount(const std::string& ns, const std::string& mount) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  return pki->issuedCount();
}

Result<std::size_t> VaultCore::pkiKeyCount(const std::string& ns, const std::string& mount) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(PkiEngine * pki, engineFor<PkiEngine>(ns, mount));
  return pki->keyCount();
}

Result<std::string> VaultCore::pkiSeedTwoMount(const std::string& ns, const std::string& root_mount,
                                               const std::string& int_mount, Duration max_lease_ttl) {
  RETURN_IF_ERROR(enablePki(ns, root_mount, max_lease_ttl));
  RETURN_IF_ERROR(enablePki(ns, int_mount, max_lease_ttl));
  auto call = [&](const std::string& path, const json& body) -> Result<json> {
    IncomingRequest req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.token = root_token_;
    req.namespace_header = ns;
    req.request_header = true;
    req.target = "/v1/" + path;
    const Reply r = handle(req);
    if (r.status != 200) return replyError(r);
    return json::parse(r.body)["data"];
  };
  ASSIGN_OR_RETURN(json root, call(root_mount + "/root/generate/internal",
                                   {{"common_name", "Tutorial Root"}, {"ttl", "87600h"}, {"issuer_name", "root-2026"}}));
  ASSIGN_OR_RETURN(json csr, call(int_mount + "/intermediate/generate/internal",
                                  {{"common_name", "Tutorial Intermediate"}, {"key_type", "ec"}}));
  ASSIGN_OR_RETURN(json signed_int, call(root_mount + "/root/sign-intermediate",
                                         {{"csr", csr["csr"]}, {"format", "pem"}, {"ttl", "43800h"}}));
  ASSIGN_OR_RETURN(json set, call(int_mount + "/intermediate/set-signed", {{"certificate", signed_int["certificate"]}}));
  (void)set;
  return root["certificate"].get<std::string>() + "\n";
}

// ---- request handling ----

std::optional<VaultCore::Resolved> VaultCore::resolveNamespace(const std::string& header,
                                                               const std::string& path) const {
  const std::string h = trimSlashes(header);
  if (!h.empty() && !namespaces_.count(h)) return std::nullopt;
  const std::string combined = h.empty() ? path : h + "/" + path;
  std::string best = h;
  for (const auto& [name, _] : namespaces_) {
    if (name.size() > best.size() && startsWith(combined, name + "/") &&
        (best.empty() || startsWith(name, best + "/"))) {
      best = name;
    }
  }
  return Resolved{best, best.empty() ? combined : combined.substr(best.size() + 1)};
}

Reply VaultCore::handle(const IncomingRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (require_request_header_ && !request.request_header) {
    return errorReply(412, {"missing \"X-Vault-Request\" header"});
  }
  std::string path = request.path;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (path == "sys/health") return health(request);
  if (standby_) {
    if (active_addr_.empty()) return errorReply(503, {"no active Vault instance found"});
    Reply r;
    r.status = 307;
    r.content_type.clear();
    r.headers.emplace_back("Location", active_addr_ + request.target);
    return r;
  }
  if (path == "sys/seal-status") {
    Reply r;
    r.body = json{{"type", "shamir"}, {"initialized", true}, {"sealed", sealed_}, {"t", 1}, {"n", 1},
                  {"progress", 0}, {"version", kVersion}}.dump();
    return r;
  }
  if (sealed_) return errorReply(503, {"Vault is sealed"});

  const auto where = resolveNamespace(request.namespace_header, path);
  if (!where) return errorReply(404, {"no handler for route \"" + path + "\". route entry not found."});
  if (hasDotSegment(where->relative)) return errorReply(404, {"unsupported path"});

  Call call;
  call.now = clockNow();
  call.real_now = std::chrono::system_clock::now();
  call.peer_chain = request.peer_chain;
  bool list = false;
  for (const auto& [k, v] : request.query) {
    if (k == "list") {
      list = v == "true" || v == "1";
      continue;
    }
    call.params[k] = v;
  }
  if (!request.body.empty()) {
    const json body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return errorReply(400, {"failed to parse JSON input"});
    for (const auto& [k, v] : body.items()) call.params[k] = v;
  }
  const std::string& m = request.method;
  call.method = m == "HEAD" ? "GET" : m == "PUT" ? "POST" : m;
  if (call.method == "GET" && list) call.method = "LIST";
  if (neededCapability(call.method) == 0) return errorReply(405, {"unsupported operation"});

  if (startsWith(where->relative, "sys/")) return sys(*where, call, request.token);
  if (startsWith(where->relative, "auth/token/")) return tokenSelf(*where, call, request.token);

  Namespace& ns = nsRef(where->ns);
  std::string sub;
  Mount* mount = findMount(ns, where->relative, sub);
  call.path = sub;
  if (mount && mount->engine->unauthenticated(call, behaviour_)) {
    EngineContext ctx{tokens_, where->ns, mount->config, behaviour_};
    return mount->engine->handle(call, ctx);
  }
  const TokenEntry* token = tokens_.findValid(request.token, where->ns, call.now);
  if (!token) return denied(request.token);
  const unsigned caps = capabilitiesOn(*token, where->ns, where->relative);
  if (!mount) {
    if (caps & kCapDeny || caps == 0) return errorReply(403, {permissionDeniedMessage()});
    return errorReply(404, {"no handler for route \"" + where->relative + "\". route entry not found."});
  }
  if ((caps & kCapDeny) || (caps & neededCapability(call.method)) == 0) {
    return errorReply(403, {permissionDeniedMessage()});
  }
  EngineContext ctx{tokens_, where->ns, mount->config, behaviour_};
  return mount->engine->handle(call, ctx);
}

Reply VaultCore::health(const IncomingRequest& request) const {
  int active = 200, standby = 429, sealed = 503, perf_standby = 473, dr = 472, uninit = 501;
  bool standby_ok = false;
  for (const auto& [k, v] : request.query) {
    int* target = k == "activecode" ? &active : k == "standbycode" ? &standby
                : k == "sealedcode" ? &sealed : k == "performancestandbycode" ? &perf_standby
                : k == "drsecondarycode" ? &dr : k == "uninitcode" ? &uninit : nullptr;
    if (target) {
      std::size_t used = 0;
      try {
        *target = std::stoi(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != v.size()) return errorReply(400, {"unable to parse " + k + " parameter"});
    }
    if (k == "standbyok" || k == "perfstandbyok") standby_ok = standby_ok || v == "true" || v.empty();
  }
  const int status = sealed_ ? sealed : standby_ ? (standby_ok ? active : standby) : active;
  json body = {{"initialized", true},
               {"sealed", sealed_},
               {"standby", standby_},
               {"performance_standby", false},
               {"replication_performance_mode", "disabled"},
               {"replication_dr_mode", "disabled"},
               {"server_time_utc", unixSeconds(std::chrono::system_clock::now())},
               {"version", kVersion},
               {"enterprise", false},
               {"echo_duration_ms", 0},
               {"clock_skew_ms", 0}};
  if (!sealed_) {
    body["cluster_name"] = "vault-test-double";
    body["cluster_id"] = "00000000-0000-4000-8000-00000000c1d0";
  }
  Reply r;
  r.status = status;
  r.body = request.method == "HEAD" ? std::string() : body.dump();
  return r;
}

Reply VaultCore::sys(const Resolved& where, const Call& call, const std::string& token_text) {
  const std::string& p = where.relative;
  if (startsWith(p, "sys/internal/ui/mounts/") && call.method == "GET") {
    return uiMounts(where, p.substr(23), token_text);
  }
  const TokenEntry* token = tokens_.findValid(token_text, where.ns, call.now);
  if (!token) return denied(token_text);
  const unsigned caps = capabilitiesOn(*token, where.ns, p);
  if ((caps & kCapDeny) || (caps & neededCapability(call.method)) == 0) {
    return errorReply(403, {permissionDeniedMessage()});
  }
  const bool tune = startsWith(p, "sys/mounts/") && p.size() > 16 && p.compare(p.size() - 5, 5, "/tune") == 0;
  if (tune && call.method == "GET") return tuneRead(where.ns, p.substr(11, p.size() - 11 - 5));
  // Administration: enable secrets engines and auth methods, tune TTLs.
  if (call.method != "POST") return errorReply(404, {"unsupported path"});
  Status result = setupError("unsupported path");
  mu_.unlock();  // the setup calls take the lock themselves
  if (tune) {
    const std::string mount = p.substr(11, p.size() - 11 - 5);
    const auto max = durationSeconds(call.params.value("max_lease_ttl", json(0)));
    const auto def = durationSeconds(call.params.value("default_lease_ttl", json(0)));
    result = max && def ? tuneMount(where.ns, mount, std::chrono::seconds(*max), std::chrono::seconds(*def))
                        : Status(setupError("invalid TTL"));
  } else if (startsWith(p, "sys/mounts/")) {
    const std::string mount = p.substr(11);
    std::string type = stringParam(call.params, "type");
    std::string version = "1";
    if (const auto o = call.params.find("options"); o != call.params.end() && o->is_object()) {
      version = stringParam(*o, "version");
    }
    if (type == "kv-v2") {
      type = "kv";
      version = "2";
    }
    if (type == "kv") result = enableKv(where.ns, mount, version == "2" ? 2 : 1);
    else if (type == "pki") result = enablePki(where.ns, mount);
    else result = setupError("unsupported secrets engine type \"" + type + "\"");
  } else if (startsWith(p, "sys/auth/")) {
    result = enableAuth(where.ns, p.substr(9), stringParam(call.params, "type"));
  }
  mu_.lock();
  if (!result) return errorReply(400, {result.error().message});
  return noContent();
}

Reply VaultCore::tuneRead(const std::string& ns, const std::string& mount) {
  Result<Mount*> m = mountFor(ns, mount, "");
  if (!m) return errorReply(400, {"cannot fetch sysview for path \"" + trimSlashes(mount) + "/\""});
  // Effective values, as the mount's requests see them: the system's where not tuned.
  const MountConfig& c = (*m)->config;
  const std::int64_t max = c.effectiveMaxTtl();
  const std::int64_t def = std::min(c.default_lease_ttl > 0 ? c.default_lease_ttl : kSystemMaxTtlSeconds, max);
  Envelope e;
  e.mount_type = "system";
  e.data = {{"default_lease_ttl", def}, {"max_lease_ttl", max}, {"force_no_cache", false}, {"description", ""}};
  return envelopeReply(e);
}

Reply VaultCore::uiMounts(const Resolved& where, const std::string& target, const std::string& token_text) {
  const TokenEntry* token = tokens_.findValid(token_text, where.ns, clockNow());
  if (!token_text.empty() && !token) return denied(token_text);
  std::string path = trimSlashes(target);
  const std::string preflight = "preflight capability check returned 403, please ensure client's "
                                "policies grant access to path \"" + path + "/\"";
  // A child namespace may be named at the start of the path; data.path then carries it.
  std::string ns_name = where.ns;
  for (const auto& [name, _] : namespaces_) {
    const std::string full = where.ns.empty() ? path : where.ns + "/" + path;
    if (name.size() > ns_name.size() && startsWith(full, name + "/") &&
        (where.ns.empty() || startsWith(name, where.ns + "/"))) {
      ns_name = name;
    }
  }
  if (ns_name != where.ns) {
    const std::size_t child_prefix = where.ns.empty() ? ns_name.size() : ns_name.size() - where.ns.size() - 1;
    path = path.substr(child_prefix + 1);
  }
  std::string sub;
  Mount* mount = findMount(nsRef(ns_name), path, sub);
  // The token may come from where.ns or above it; its rules see the mount from there.
  const auto seen = token && mount ? pathSeenFrom(token->ns, ns_name, mount->config.path + "/") : std::nullopt;
  if (!seen || !grantsAnythingUnder(policiesOf(*token), *seen)) return errorReply(403, {preflight});
  const MountConfig& c = mount->config;
  Envelope e;
  e.mount_type = "system";
  e.data = {{"accessor", c.accessor},
            {"config", {{"default_lease_ttl", c.default_lease_ttl}, {"force_no_cache", false},
                        {"max_lease_ttl", c.max_lease_ttl}}},
            {"description", ""},
            {"external_entropy_access", false},
            {"local", false},
            {"options", mount->engine->options()},
            // Vault reports a child namespace's mount with the namespace's full path from the
            // root, not relative to the namespace the request was made in.
            {"path", (ns_name != where.ns ? ns_name + "/" : std::string()) + c.path + "/"},
            {"plugin_version", ""},
            {"running_plugin_version", ""},
            {"seal_wrap", false},
            {"type", mount->engine->type()},
            {"uuid", c.uuid}};
  return envelopeReply(e);
}

Reply VaultCore::tokenSelf(const Resolved& where, const Call& call, const std::string& token_text) {
  const std::string op = where.relative.substr(11);
  const TokenEntry* token = tokens_.findValid(token_text, where.ns, call.now);
  if (!token) return denied(token_text);
  Envelope e;
  e.mount_type = "token";
  if (op == "lookup-self" && call.method == "GET") {
    e.data = TokenStore::lookupData(*token, call.now);
    return envelopeReply(e);
  }
  if (op == "renew-self" && call.method == "POST") {
    std::optional<std::int64_t> increment;
    if (call.params.contains("increment")) {
      increment = durationSeconds(call.params["increment"]);
      if (!increment) return errorReply(400, {"invalid increment"});
    }
    std::string error;
    const auto renewed = tokens_.renew(token_text, increment, call.now, error);
    if (!renewed) return errorReply(400, {error});
    e.auth = TokenStore::authBlock(*tokens_.findValid(token_text, where.ns, call.now));
    e.warnings = renewed->warnings;
    return envelopeReply(e);
  }
  if (op == "revoke-self" && call.method == "POST") {
    tokens_.revoke(token_text);
    return noContent();
  }
  if (op == "lookup-self" || op == "renew-self" || op == "revoke-self") return errorReply(405, {"unsupported operation"});
  // Other token-store paths are not part of this double; answer like an ACL miss.
  const unsigned caps = capabilitiesOn(*token, where.ns, where.relative);
  if (caps == 0 || (caps & kCapDeny)) return errorReply(403, {permissionDeniedMessage()});
  return errorReply(404, {"unsupported path"});
}

}  // namespace cacerts::testing
