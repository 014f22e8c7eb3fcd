#include "agent/pki_source.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <spdlog/spdlog.h>

#include "agent/root_plan.h"
#include "common/duration.h"

namespace cacerts {
namespace {

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      while (!cur.empty() && cur.front() == ' ') cur.erase(0, 1);
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

// Collects every certificate of a field that Vault returns as a string (possibly several
// PEM blocks) or as an array of strings, depending on the version and endpoint.
Status collectCerts(const nlohmann::json& field, const std::string& what, std::vector<Certificate>& into) {
  std::vector<std::string> texts;
  if (field.is_string()) texts.push_back(field.get<std::string>());
  else if (field.is_array()) {
    for (const auto& e : field) {
      if (e.is_string()) texts.push_back(e.get<std::string>());
    }
  }
  for (const auto& t : texts) {
    if (t.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<Certificate> certs, parseCertificates(t, what));
    for (auto& c : certs) into.push_back(std::move(c));
  }
  return ok();
}

bool containsCert(const std::vector<Certificate>& list, const Certificate& c) {
  return std::any_of(list.begin(), list.end(), [&](const Certificate& x) { return x.sameAs(c); });
}

std::string trimSlashes(std::string p) {
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

// "<mount>/intermediate/generate/<type>" or "<mount>/issuers/generate/intermediate/<type>"
// -> "<mount>"; empty when the path has neither shape.
std::string generateMountOf(const std::string& generate_path) {
  const std::string p = trimSlashes(generate_path);
  for (const std::string marker : {"/issuers/generate/intermediate/", "/intermediate/generate/"}) {
    const auto at = p.rfind(marker);
    if (at != std::string::npos && at > 0) return p.substr(0, at);
  }
  return "";
}

Error noRootError(const std::string& mount) {
  return Error{ErrorCode::kValidation, "mount " + mount + " has no self-signed issuer to trust; when the root lives "
                                           "in another mount (root in pki, intermediate in pki_int), set "
                                           "--pki-root-mount to it"};
}

int keyBitsFor(const PkiSettings& s) {
  if (s.key_bits != 0) return s.key_bits;
  return s.key_type == KeyType::kRsa ? 3072 : 256;
}

}  // namespace

Result<std::string> pkiIssuerRefOf(const std::string& sign_path) {
  ASSIGN_OR_RETURN(std::string mount, pkiMountOf(sign_path));
  const std::string p = trimSlashes(sign_path);
  const std::string rest = p.substr(mount.size());
  if (rest == "/root/sign-intermediate") return std::string("default");
  // "/issuer/<ref>/sign-intermediate"
  return rest.substr(8, rest.size() - 8 - 18);
}

std::string defaultCommonName() {
  const char* pod = std::getenv("POD_NAME");
  if (pod != nullptr && *pod != '\0') return std::string("istiod intermediate ") + pod;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') return std::string("istiod intermediate ") + host;
  return "istiod intermediate";
}

Result<std::string> pkiMountOf(const std::string& sign_path) {
  std::string p = sign_path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  const std::string legacy = "/root/sign-intermediate";
  if (p.size() > legacy.size() && p.compare(p.size() - legacy.size(), legacy.size(), legacy) == 0) {
    return p.substr(0, p.size() - legacy.size());
  }
  const std::string suffix = "/sign-intermediate";
  const auto issuer = p.rfind("/issuer/");
  if (issuer != std::string::npos && issuer > 0 && p.size() > suffix.size() &&
      p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0 &&
      p.size() - suffix.size() > issuer + 8) {
    return p.substr(0, issuer);
  }
  return Error{ErrorCode::kInvalidArgument,
               "--pki-sign-path \"" + sign_path +
                   "\" must be <mount>/root/sign-intermediate or <mount>/issuer/<ref>/sign-intermediate"};
}

std::vector<Certificate> orderTrustBundle(std::vector<Certificate> roots, SystemTime now) {
  std::vector<std::pair<CertInfo, Certificate>> keyed;
  for (auto& r : roots) {
    CertInfo info = r.info();
    if (info.not_after <= now) continue;
    bool dup = false;
    for (const auto& k : keyed) dup = dup || k.second.sameAs(r);
    if (!dup) keyed.emplace_back(std::move(info), std::move(r));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    if (a.first.not_before != b.first.not_before) return a.first.not_before < b.first.not_before;
    // Serials compare as numbers: shorter hex is smaller.
    if (a.first.serial_hex.size() != b.first.serial_hex.size()) return a.first.serial_hex.size() < b.first.serial_hex.size();
    return a.first.serial_hex < b.first.serial_hex;
  });
  std::vector<Certificate> out;
  for (auto& k : keyed) out.push_back(std::move(k.second));
  return out;
}

Result<PkiSource::KeyAndCsr> PkiSource::keyAndCsr() {
  KeyAndCsr out;
  if (!settings_.generate_path.empty()) {
    spdlog::warn("event=pki_exported_key path={} message=\"the intermediate key is generated by Vault and crosses the "
                 "network; local generation (omit --pki-generate-path) keeps it inside the pod\"",
                 settings_.generate_path);
    nlohmann::json body = {{"common_name", settings_.common_name},
                           {"key_type", std::string(toString(settings_.key_type))},
                           // Explicit: Vault's 0 means 2048 for RSA, the local flow's default is 3072.
                           {"key_bits", keyBitsFor(settings_)},
                           {"format", "pem"}};
    if (!settings_.organization.empty()) body["organization"] = settings_.organization;
    if (!settings_.uri_sans.empty()) body["uri_sans"] = settings_.uri_sans;
    ASSIGN_OR_RETURN(VaultResponse r, vault_.call("POST", settings_.generate_path, &body));
    nlohmann::json& data = r.body["data"];
    if (!data.is_object() || !data.contains("csr") || !data["csr"].is_string() || !data.contains("private_key") ||
        !data["private_key"].is_string()) {
      return Error{ErrorCode::kValidation, "vault POST " + settings_.generate_path +
                                               ": response lacks data.csr or data.private_key (is it an "
                                               "intermediate/generate/exported endpoint?)"};
    }
    out.csr = data["csr"].get<std::string>();
    out.key_pem = Secret::takeFrom(data["private_key"].get_ref<std::string&>());
    if (data.contains("key_id") && data["key_id"].is_string()) out.vault_key_id = data["key_id"].get<std::string>();
    return out;
  }
  ASSIGN_OR_RETURN(PrivateKey key, generateKey(settings_.key_type, keyBitsFor(settings_)));
  CsrSpec spec;
  spec.common_name = settings_.common_name;
  spec.organization = settings_.organization;
  spec.uri_sans = splitCommas(settings_.uri_sans);
  spec.request_ca = true;
  spec.max_path_length = settings_.max_path_length;
  ASSIGN_OR_RETURN(out.csr, makeCsr(key, spec));
  out.key_pem = key.pkcs8Pem();
  return out;
}

Result<std::optional<std::vector<PkiSource::Signer>>> PkiSource::listIssuers(const std::string& mount) {
  Result<VaultResponse> listed = vault_.call("LIST", mount + "/issuers");
  if (!listed) {
    if (listed.error().code != ErrorCode::kPermissionDenied && listed.error().code != ErrorCode::kNotFound) {
      return listed.error();
    }
    if (!warned_list_forbidden_) {
      spdlog::warn("event=pki_issuers_unlisted mount={} message=\"cannot LIST {}/issuers ({}); root-cert.pem holds "
                   "only the root of the signing issuer's chain, so a second root on the mount will not be trusted "
                   "and roots cannot be rotated by plan. Grant list on {}/issuers and read on {}/issuer/+/json\"",
                   mount, mount, toString(listed.error().code), mount, mount);
      warned_list_forbidden_ = true;
    }
    return std::optional<std::vector<Signer>>();
  }
  const nlohmann::json& keys = member(member(listed->body, "data"), "keys");
  if (!keys.is_array()) return Error{ErrorCode::kValidation, "vault LIST " + mount + "/issuers: no data.keys array"};
  std::vector<Signer> issuers;
  for (const auto& id : keys) {
    if (!id.is_string()) continue;
    ASSIGN_OR_RETURN(Signer issuer, readSigner(mount, id.get<std::string>()));
    issuers.push_back(std::move(issuer));
  }
  return std::optional<std::vector<Signer>>(std::move(issuers));
}

std::vector<Certificate> PkiSource::rootsOf(const std::vector<Signer>& issuers) const {
  std::vector<Certificate> roots;
  for (const Signer& issuer : issuers) {
    const CertInfo info = issuer.cert.info();
    if (info.self_signed && info.is_ca) roots.push_back(issuer.cert);
  }
  return orderTrustBundle(std::move(roots), clock_.now());
}

Result<std::vector<Certificate>> PkiSource::trustBundle(const std::string& mount,
                                                        const std::vector<Certificate>& fallback_chain) {
  ASSIGN_OR_RETURN(std::optional<std::vector<Signer>> issuers, listIssuers(mount));
  if (!issuers) {
    // The root at the end of the signing issuer's chain is all there is to go on.
    std::vector<Certificate> roots;
    for (auto it = fallback_chain.rbegin(); it != fallback_chain.rend(); ++it) {
      if (it->info().self_signed) {
        roots.push_back(*it);
        break;
      }
    }
    return orderTrustBundle(std::move(roots), clock_.now());
  }
  std::vector<Certificate> roots = rootsOf(*issuers);
  if (roots.empty()) return noRootError(mount);
  return roots;
}

Result<PkiSource::Signer> PkiSource::plannedSigner(const std::string& mount, const std::string& root_mount,
                                                   const std::vector<Signer>& root_issuers,
                                                   const Certificate& signing_root) {
  if (mount == root_mount) {
    for (const Signer& issuer : root_issuers) {
      if (issuer.cert.sameAs(signing_root)) return issuer;
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::vector<Signer>> issuers, listIssuers(mount));
  const std::string root_text = "the signing root \"" + signing_root.info().subject + "\" (notBefore " +
                                formatTime(signing_root.info().not_before) + ") of mount " + root_mount;
  if (!issuers) {
    return Error{ErrorCode::kPermissionDenied, "cannot LIST " + mount + "/issuers to find the issuer that chains to " +
                                                   root_text + "; grant list on " + mount + "/issuers"};
  }
  const SystemTime now = clock_.now();
  const Signer* best = nullptr;
  for (const Signer& issuer : *issuers) {
    const CertInfo info = issuer.cert.info();
    if (!info.is_ca || info.not_after <= now || info.not_before > now) continue;
    if (!verifyChain(issuer.cert, issuer.chain, {signing_root}, now)) continue;
    if (best == nullptr || info.not_before > best->cert.info().not_before) best = &issuer;
  }
  if (best == nullptr) {
    return Error{ErrorCode::kValidation, "no unexpired issuer of mount " + mount + " chains to " + root_text +
                                             "; sign an intermediate issuer for " + mount + " with that root first"};
  }
  return *best;
}

Result<TrustSet> PkiSource::trustSet() {
  return guardResponseShape("pki issuers of " + settings_.sign_path, [this]() -> Result<TrustSet> {
    ASSIGN_OR_RETURN(std::string mount, pkiMountOf(settings_.sign_path));
    ASSIGN_OR_RETURN(std::string root_mount, rootMount());
    ASSIGN_OR_RETURN(std::string ref, pkiIssuerRefOf(settings_.sign_path));
    ASSIGN_OR_RETURN(std::optional<std::vector<Signer>> issuers, listIssuers(root_mount));
    TrustSet out;
    if (!issuers) {
      ASSIGN_OR_RETURN(Signer signer, readSigner(mount, ref));
      ASSIGN_OR_RETURN(out.roots, trustBundle(root_mount, signer.chain));
      return out;
    }
    out.roots = rootsOf(*issuers);
    if (out.roots.empty()) return noRootError(root_mount);
    if (ref == "default") out.schedule = planRoots(out.roots, clock_.now(), settings_.root_propagation).schedule;
    return out;
  });
}

Result<CaMaterial> PkiSource::load() {
  return guardResponseShape("pki " + settings_.sign_path, [this] { return loadUnguarded(); });
}

Result<std::string> PkiSource::rootMount() const {
  if (!settings_.root_mount.empty()) return trimSlashes(settings_.root_mount);
  return pkiMountOf(settings_.sign_path);
}

Result<PkiSource::Signer> PkiSource::readSigner(const std::string& mount, const std::string& ref) {
  const std::string path = mount + "/issuer/" + ref + "/json";
  ASSIGN_OR_RETURN(VaultResponse r, vault_.call("GET", path));
  const nlohmann::json& data = member(r.body, "data");
  if (!data.is_object()) return Error{ErrorCode::kValidation, "vault GET " + path + ": response has no data"};
  std::vector<Certificate> certs;
  RETURN_IF_ERROR(collectCerts(member(data, "certificate"), "vault " + path + " certificate", certs));
  if (certs.empty()) return Error{ErrorCode::kValidation, "vault GET " + path + ": response has no data.certificate"};
  Signer out{ref, certs.front(), {}};
  RETURN_IF_ERROR(collectCerts(member(data, "ca_chain"), "vault " + path + " ca_chain", out.chain));
  if (!containsCert(out.chain, out.cert)) out.chain.insert(out.chain.begin(), out.cert);
  return out;
}

Result<std::optional<Duration>> PkiSource::mountMaxTtl(const std::string& mount) {
  const auto seconds = [](const nlohmann::json& v) -> std::optional<Duration> {
    if (!v.is_number_integer() || v.get<long long>() <= 0) return std::nullopt;
    return std::chrono::duration_cast<Duration>(std::chrono::seconds(v.get<long long>()));
  };
  const auto optional = [](Result<VaultResponse> r) -> Result<std::optional<VaultResponse>> {
    if (r) return std::optional<VaultResponse>(std::move(r).value());
    // Unreachable or overloaded: retried like any read. Anything else only means this
    // check is not possible here; signing reports its own errors.
    if (isTransient(r.error().code)) return r.error();
    return std::optional<VaultResponse>();
  };
  // The mount's own setting, as tuned (0: not tuned, the server's default applies).
  ASSIGN_OR_RETURN(std::optional<VaultResponse> ui,
                   optional(vault_.call("GET", "sys/internal/ui/mounts/" + mount, nullptr, true, true)));
  if (ui && ui->status == 200) {
    if (auto tuned = seconds(member(member(member(ui->body, "data"), "config"), "max_lease_ttl"))) return tuned;
  }
  if (tune_denied_) return std::optional<Duration>();
  // The effective value, the server's default included.
  Result<VaultResponse> tune = vault_.call("GET", "sys/mounts/" + mount + "/tune");
  if (!tune && tune.error().code == ErrorCode::kPermissionDenied) {
    tune_denied_ = true;
    spdlog::info("event=pki_max_ttl_unknown mount={} message=\"the token may not read sys/mounts/{}/tune; a --ttl "
                 "clamped by the mount's max_lease_ttl is found only after signing\"",
                 mount, mount);
  }
  ASSIGN_OR_RETURN(std::optional<VaultResponse> read, optional(std::move(tune)));
  if (!read) return std::optional<Duration>();
  return seconds(member(member(read->body, "data"), "max_lease_ttl"));
}

// Everything that would make the agent reject what Vault signs, checked before Vault signs
// (and stores) it: a crash-looping init must not mint a certificate per restart.
Result<std::chrono::seconds> PkiSource::preflight(const Signer& signer, const std::vector<Certificate>& roots,
                                                  const std::string& mount, const std::string& root_mount) {
  const SystemTime now = clock_.now();
  const std::string what = "signing issuer of " + settings_.sign_path;
  if (roots.empty()) {
    return Error{ErrorCode::kValidation, "mount " + root_mount + " has no unexpired self-signed issuer to trust; set "
                                             "--pki-root-mount to the mount that holds the root"};
  }
  const CertInfo& info = signer.cert.info();
  // The issuer must lead to the trust bundle, or every certificate it signs is rejected.
  Result<std::vector<Certificate>> path = verifyChain(signer.cert, signer.chain, roots, now);
  if (!path) {
    return Error{ErrorCode::kValidation,
                 what + " (" + info.subject + ") does not chain to a root of mount " + root_mount + ": " +
                     path.error().message + (settings_.root_mount.empty()
                                                 ? "; when the root lives in another mount, set --pki-root-mount"
                                                 : "")};
  }
  // Vault caps (1.17+) or refuses a notAfter beyond the signer's, and the published chain
  // is only as good as its first expiring certificate.
  SystemTime limit = now + ttl_;
  std::string limited_by = "the requested --ttl";
  for (const Certificate& c : *path) {
    if (c.info().not_after < limit) {
      limit = c.info().not_after;
      limited_by = c.info().subject + ", which expires at " + formatTime(c.info().not_after);
    }
  }
  std::string advice = "rotate the root or intermediate in Vault, or raise --ttl";
  ASSIGN_OR_RETURN(std::optional<Duration> max_ttl, mountMaxTtl(mount));
  if (max_ttl && now + *max_ttl < limit) {
    limit = now + *max_ttl;
    limited_by = "the max_lease_ttl of mount " + mount + ", " + describeDuration(*max_ttl);
    advice = "raise it (vault secrets tune -max-lease-ttl=... " + mount + ") or lower --min-remaining";
  }
  if (limit - now < min_remaining_) {
    return Error{ErrorCode::kValidation, "not signing at " + settings_.sign_path +
                                             ": the intermediate would be usable only until " + formatTime(limit) +
                                             " (limited by " + limited_by + "), less than --min-remaining; " + advice};
  }
  // Vault 1.21.1+ refuses a backdated notBefore earlier than the signer's own: backdate
  // at most as far as the signer's age.
  if (info.not_before > now) {
    return Error{ErrorCode::kUnavailable, what + " is not valid before " + formatTime(info.not_before) + " (now " +
                                              formatTime(now) + "); waiting for it, or check the clocks"};
  }
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - info.not_before);
  return std::min(age, kVaultDefaultBackdate);
}

void PkiSource::deleteVaultKey(const std::string& key_id) {
  const std::string mount = generateMountOf(settings_.generate_path);
  if (key_id.empty() || mount.empty()) return;
  const std::string path = mount + "/key/" + key_id;
  Result<VaultResponse> r = vault_.call("DELETE", path);
  if (!r) {
    spdlog::warn("event=pki_key_not_deleted path={} reason=\"{}\" message=\"Vault keeps a copy of every key "
                 "intermediate/generate creates; grant delete on {}/key/+ or remove it with vault delete\"",
                 path, toString(r.error().code), mount);
  }
}

Result<CaMaterial> PkiSource::loadUnguarded() {
  ASSIGN_OR_RETURN(std::string mount, pkiMountOf(settings_.sign_path));
  ASSIGN_OR_RETURN(std::string root_mount, rootMount());
  ASSIGN_OR_RETURN(std::string ref, pkiIssuerRefOf(settings_.sign_path));
  std::optional<Signer> signer;
  std::optional<RootSchedule> schedule;
  std::vector<Certificate> roots;
  bool explicit_signer = false;  // chosen by plan, addressed as <mount>/issuer/<id>/sign-intermediate
  if (ref == "default") {
    ASSIGN_OR_RETURN(std::optional<std::vector<Signer>> issuers, listIssuers(root_mount));
    if (issuers) {
      roots = rootsOf(*issuers);
      if (roots.empty()) return noRootError(root_mount);
      const RootPlan plan = planRoots(roots, clock_.now(), settings_.root_propagation);
      schedule = plan.schedule;
      // With one root there is nothing to choose: the default issuer signs, through the
      // path the operator's policy already grants.
      if (roots.size() > 1) {
        ASSIGN_OR_RETURN(signer, plannedSigner(mount, root_mount, *issuers, roots[plan.signing]));
        explicit_signer = true;
      }
    }
  }
  if (!signer) {
    ASSIGN_OR_RETURN(signer, readSigner(mount, ref));
    if (!schedule) {
      ASSIGN_OR_RETURN(roots, trustBundle(root_mount, signer->chain));
    }
  }
  const std::string sign_path =
      explicit_signer ? mount + "/issuer/" + signer->id + "/sign-intermediate" : settings_.sign_path;
  ASSIGN_OR_RETURN(std::chrono::seconds backdate, preflight(*signer, roots, mount, root_mount));

  ASSIGN_OR_RETURN(KeyAndCsr kc, keyAndCsr());
  nlohmann::json body = {{"csr", kc.csr},
                         {"common_name", settings_.common_name},
                         {"ttl", formatDuration(ttl_)},
                         {"max_path_length", settings_.max_path_length},
                         {"use_csr_values", settings_.use_csr_values},
                         {"format", "pem"}};
  // Only when the signer is younger than Vault's default: older Vault ignores the field.
  if (backdate < kVaultDefaultBackdate) body["not_before_duration"] = std::to_string(backdate.count()) + "s";
  if (!settings_.organization.empty()) body["organization"] = settings_.organization;
  if (!settings_.uri_sans.empty()) body["uri_sans"] = settings_.uri_sans;
  Result<VaultResponse> signed_r = vault_.call("POST", sign_path, &body);
  // The key Vault generated has served its purpose (signed or not): Vault must not keep it.
  deleteVaultKey(kc.vault_key_id);
  if (!signed_r && explicit_signer && signed_r.error().code == ErrorCode::kPermissionDenied) {
    return Error{ErrorCode::kPermissionDenied,
                 signed_r.error().message + "; while the mount holds several roots the agent names the signing issuer "
                                            "(root rotation): grant update on " + mount +
                     "/issuer/+/sign-intermediate as well as " + settings_.sign_path};
  }
  ASSIGN_OR_RETURN(VaultResponse r, std::move(signed_r));
  const nlohmann::json& data = member(r.body, "data");
  const std::string what = "vault POST " + sign_path;
  if (!member(data, "certificate").is_string()) {
    return Error{ErrorCode::kValidation, what + ": response has no data.certificate"};
  }
  std::vector<Certificate> issued;
  RETURN_IF_ERROR(collectCerts(member(data, "certificate"), what + " certificate", issued));
  if (issued.empty()) return Error{ErrorCode::kValidation, what + ": data.certificate holds no certificate"};
  std::vector<Certificate> returned = issued;
  RETURN_IF_ERROR(collectCerts(member(data, "ca_chain"), what + " ca_chain", returned));
  RETURN_IF_ERROR(collectCerts(member(data, "issuing_ca"), what + " issuing_ca", returned));

  const Certificate& leaf = issued.front();
  const CertInfo info = leaf.info();
  const SystemTime now = clock_.now();
  // A certificate that is already expired (or not yet valid) is not a clamping problem: a
  // broken Vault clock or a wrong answer; say so instead of blaming max_lease_ttl.
  if (info.not_after <= now || info.not_before > now) {
    return Error{ErrorCode::kValidation,
                 what + ": Vault issued an intermediate outside its validity period (notBefore " +
                     formatTime(info.not_before) + ", notAfter " + formatTime(info.not_after) + ", now " +
                     formatTime(now) + "); check the clocks of Vault and this node"};
  }
  if (info.not_after - now < min_remaining_) {
    const auto hours = std::chrono::duration_cast<std::chrono::minutes>(info.not_after - now).count() / 60.0;
    return Error{ErrorCode::kValidation,
                 what + ": Vault issued an intermediate valid for only " + fmt::format("{:.1f}", hours) +
                     "h, less than --min-remaining; the requested --ttl was clamped, most likely by the mount's "
                     "max_lease_ttl (vault secrets tune -max-lease-ttl=... " + mount +
                     ") or by the root's expiry (rotate the root)"};
  }
  spdlog::info("event=pki_signed path={} serial={} not_after={} requested_ttl={}", sign_path,
               info.serial_hex, formatTime(info.not_after), formatDuration(ttl_));

  // ca_chain starts with the new certificate on 1.11+ and not before: deduplicate rather
  // than assume either shape. Every intermediate up to the root follows istiod's.
  std::vector<Certificate> chain = {leaf};
  for (const auto& c : returned) {
    if (!containsCert(chain, c) && !c.info().self_signed) chain.push_back(c);
  }

  CaMaterial m;
  m.cert_pem = leaf.pem();
  m.key_pem = std::move(kc.key_pem);
  m.chain_pem = toPem(chain);
  m.root_pem = toPem(roots);
  m.schedule = schedule;
  return m;
}

}  // namespace cacerts
