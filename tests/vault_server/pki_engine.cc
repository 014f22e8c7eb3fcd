#include "tests/vault_server/pki_engine.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

namespace cacerts::testing {
namespace {

constexpr const char* kNoDefault = "no default issuer currently configured";
constexpr const char* kTruncatedWarning =
    "the signed intermediary CA certificate's notAfter was truncated to the issuer's notAfter";
constexpr const char* kBeyondIssuerWarning =
    "The expiration time for the signed certificate is after the CA's expiration time. If the new "
    "certificate is not treated as a root, validation paths with the certificate past the issuing "
    "CA's expiration time will fail.";
constexpr const char* kAiaWarning =
    "This mount hasn't configured any authority information access (AIA) fields; this may make it "
    "harder for systems to find missing certificates in the chain or to validate revocation status "
    "of certificates. Consider updating /config/urls or the newly generated issuer with this "
    "information.";

bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool endsWith(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string unknownIssuer(const std::string& ref) {
  return "unable to find PKI issuer for reference: " + ref;
}

// "YYYY-MM-DDTHH:MM:SSZ" → time; nullopt when malformed.
std::optional<SystemTime> parseNotAfter(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

struct PemBlock {
  std::string type, text;
};

std::vector<PemBlock> splitPem(const std::string& bundle) {
  std::vector<PemBlock> out;
  std::size_t pos = 0;
  while ((pos = bundle.find("-----BEGIN ", pos)) != std::string::npos) {
    const std::size_t type_end = bundle.find("-----", pos + 11);
    if (type_end == std::string::npos) break;
    const std::string type = bundle.substr(pos + 11, type_end - pos - 11);
    const std::string end_marker = "-----END " + type + "-----";
    const std::size_t end = bundle.find(end_marker, type_end);
    if (end == std::string::npos) break;
    out.push_back({type, bundle.substr(pos, end + end_marker.size() - pos) + "\n"});
    pos = end + end_marker.size();
  }
  return out;
}

// Key generation parameters as Vault accepts them; empty key type on invalid input.
std::pair<std::string, int> keyParams(const json& params) {
  std::string type = stringParam(params, "key_type");
  if (type.empty()) type = "rsa";
  const auto bits = intParam(params, "key_bits", 0);
  if (!bits) return {"", 0};
  int b = static_cast<int>(*bits);
  if (type == "rsa") {
    if (b == 0) b = 2048;
    if (b != 2048 && b != 3072 && b != 4096 && b != 8192) return {"", 0};
  } else if (type == "ec") {
    if (b == 0) b = 256;
    if (b != 256 && b != 384 && b != 521) return {"", 0};
  } else if (type != "ed25519") {
    return {"", 0};
  }
  return {type, b};
}

// not_before_duration: seconds of backdating, 30 unless given; nullopt when invalid.
std::optional<std::int64_t> notBeforeDuration(const json& params) {
  if (!params.contains("not_before_duration")) return 30;
  const auto d = durationSeconds(params["not_before_duration"]);
  if (!d || *d < 0) return std::nullopt;
  return *d;
}

std::string privateKeyPem(const TestKey& key, const json& params) {
  return trimmed(stringParam(params, "private_key_format") == "pkcs8" ? key.pkcs8Pem()
                                                                      : key.traditionalPem());
}

std::vector<std::pair<std::string, std::string>> subjectFromParams(const json& params,
                                                                   const std::string& cn) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [param, field] : {std::pair{"country", "C"}, {"province", "ST"},
                                     {"locality", "L"}, {"organization", "O"}, {"ou", "OU"}}) {
    for (const auto& v : listParam(params, param)) entries.emplace_back(field, v);
  }
  entries.emplace_back("CN", cn);
  return entries;
}

}  // namespace

bool PkiEngine::unauthenticated(const Call& call, const VaultBehaviour& behaviour) const {
  const std::string& p = call.path;
  if (call.method == "LIST") return p == "issuers" && behaviour.pki_unauthenticated_issuer_list;
  if (call.method != "GET") return false;
  if (startsWith(p, "cert/") || p == "ca" || p == "ca/pem" || p == "ca_chain") return true;
  if (startsWith(p, "issuer/")) {
    return endsWith(p, "/json") || endsWith(p, "/pem") || endsWith(p, "/der");
  }
  return false;
}

Reply PkiEngine::handle(const Call& call, EngineContext& ctx) {
  const std::string& p = call.path;
  const std::string& m = call.method;
  auto tail = [&](const std::string& prefix) { return p.substr(prefix.size()); };

  if (m == "POST") {
    for (const std::string prefix : {"root/generate/", "issuers/generate/root/"}) {
      if (startsWith(p, prefix)) return generateRoot(tail(prefix), call.params, ctx, call.real_now);
    }
    if (startsWith(p, "root/rotate/")) {
      json params = call.params;
      if (stringParam(params, "issuer_name").empty()) params["issuer_name"] = "next";
      return generateRoot(tail("root/rotate/"), params, ctx, call.real_now);
    }
    for (const std::string prefix : {"intermediate/generate/", "issuers/generate/intermediate/"}) {
      if (startsWith(p, prefix)) return generateIntermediate(tail(prefix), call);
    }
    if (p == "root/sign-intermediate") return signIntermediate("default", call, ctx);
    if (startsWith(p, "issuer/") && endsWith(p, "/sign-intermediate")) {
      return signIntermediate(p.substr(7, p.size() - 7 - 18), call, ctx);
    }
    if (p == "config/ca" || p == "issuers/import/bundle") {
      return importBundle(stringParam(call.params, "pem_bundle"), true);
    }
    if (p == "issuers/import/cert") return importBundle(stringParam(call.params, "pem_bundle"), false);
    if (p == "intermediate/set-signed") return importBundle(stringParam(call.params, "certificate"), false);
    if (p == "config/issuers" || p == "root/replace") return setDefault(call.params);
    if (startsWith(p, "issuer/") && p.find('/', 7) == std::string::npos) {
      return updateIssuer(tail("issuer/"), call.params);
    }
  } else if (m == "DELETE") {
    if (startsWith(p, "issuer/") && p.find('/', 7) == std::string::npos) return deleteIssuer(tail("issuer/"));
    if (startsWith(p, "key/") && p.find('/', 4) == std::string::npos) return deleteKey(tail("key/"));
  } else if (m == "LIST") {
    if (p == "issuers") return listIssuers();
  } else if (m == "GET") {
    if (p == "config/issuers") return configIssuers();
    if (startsWith(p, "issuer/")) {
      const std::string rest = tail("issuer/");
      const auto slash = rest.find('/');
      const std::string ref = rest.substr(0, slash);
      const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (what.empty()) return issuerJson(ref, true);
      if (what == "json") return issuerJson(ref, false);
      if (what == "pem" || what == "der") {
        const Issuer* is = resolve(ref);
        if (!is) return errorReply(500, {unknownIssuer(ref)});
        return what == "pem" ? rawReply(200, is->cert.pem(), "application/pem-certificate-chain")
                             : rawReply(200, is->cert.der(), "application/pkix-cert");
      }
    }
    if (p == "cert/ca" || p == "cert/ca_chain" || p == "ca" || p == "ca/pem" || p == "ca_chain") {
      return readCa(p);
    }
    if (startsWith(p, "cert/")) {
      const std::string serial = tail("cert/");
      std::string pem;
      if (const auto it = issued_.find(serial); it != issued_.end()) pem = it->second;
      for (const auto& is : issuers_) {
        if (is.cert.serialColonHex() == serial) pem = is.cert.pemTrimmed();
      }
      if (pem.empty()) return errorReply(404, {});
      Envelope e;
      e.mount_type = "pki";
      e.data = {{"certificate", pem}, {"revocation_time", 0}, {"revocation_time_rfc3339", ""}};
      return envelopeReply(e);
    }
  }
  return errorReply(404, {"unsupported path"});
}

// ---- issuers and keys ----

const PkiEngine::Issuer* PkiEngine::resolve(const std::string& ref) const {
  const std::string& id = ref == "default" ? default_issuer_ : ref;
  for (const auto& is : issuers_) {
    if (is.id == id || (!is.name.empty() && is.name == ref)) return &is;
  }
  return nullptr;
}

const PkiEngine::Key* PkiEngine::keyById(const std::string& id) const {
  for (const auto& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::optional<TestCa> PkiEngine::issuer(const std::string& ref) const {
  const Issuer* is = resolve(ref);
  if (!is) return std::nullopt;
  const Key* k = keyById(is->key_id);
  return TestCa{k ? k->key : TestKey{}, is->cert};
}

std::vector<const PkiEngine::Issuer*> PkiEngine::chainOf(const Issuer& start) const {
  std::vector<const Issuer*> chain{&start};
  while (chain.size() < 10 && !chain.back()->cert.selfSigned()) {
    const Issuer* parent = nullptr;
    X509* child = chain.back()->cert.x509.get();
    for (const auto& cand : issuers_) {
      if (std::find(chain.begin(), chain.end(), &cand) != chain.end()) continue;
      if (X509_check_issued(cand.cert.x509.get(), child) == X509_V_OK) {
        parent = &cand;
        break;
      }
    }
    if (!parent) break;
    chain.push_back(parent);
  }
  return chain;
}

std::string PkiEngine::addIssuer(const TestCert& cert, const std::string& name) {
  Issuer is;
  is.id = newUuid();
  is.name = name;
  is.cert = cert;
  for (const auto& k : keys_) {
    if (samePublicKey(k.key, cert.publicKey())) is.key_id = k.id;
  }
  if (default_issuer_.empty() || default_follows_latest_) default_issuer_ = is.id;
  issuers_.push_back(is);
  return is.id;
}

std::string PkiEngine::addKey(const TestKey& key, const std::string& name) {
  Key k{newUuid(), name, key};
  keys_.push_back(k);
  for (auto& is : issuers_) {  // an imported key may complete an issuer imported earlier
    if (is.key_id.empty() && samePublicKey(key, is.cert.publicKey())) is.key_id = k.id;
  }
  return k.id;
}

json PkiEngine::expiration(const TestCert& cert, const VaultBehaviour& b) const {
  const std::int64_t t = unixSeconds(cert.notAfter());
  return b.pki_expiration_as_string ? json(std::to_string(t)) : json(t);
}

// ---- root generation ----

Reply PkiEngine::generateRoot(const std::string& type, const json& params, EngineContext& ctx,
                              SystemTime now) {
  if (type != "internal" && type != "exported") {
    return errorReply(400, {"unsupported root type \"" + type + "\" in this test server"});
  }
  const std::string cn = stringParam(params, "common_name");
  if (cn.empty()) return errorReply(400, {"the common_name field is required"});
  const std::string issuer_name = stringParam(params, "issuer_name");
  if (issuer_name == "default") return errorReply(400, {"reserved name \"default\" used for issuer_name"});
  if (!issuer_name.empty() && resolve(issuer_name)) return errorReply(400, {"issuer name already in use"});
  const auto [key_type, key_bits] = keyParams(params);
  if (key_type.empty()) return errorReply(400, {"invalid key_type or key_bits"});
  const auto path_len = intParam(params, "max_path_length", -1);
  if (!path_len) return errorReply(400, {"invalid max_path_length"});

  std::vector<std::string> warnings;
  const std::int64_t max_ttl = ctx.mount.effectiveMaxTtl();
  std::int64_t ttl = max_ttl;
  if (params.contains("ttl")) {
    const auto parsed = durationSeconds(params["ttl"]);
    if (!parsed) return errorReply(400, {"invalid ttl"});
    ttl = *parsed;
  }
  if (ttl > max_ttl) {
    warnings.push_back("TTL \"" + goDuration(ttl) + "\" is longer than permitted maxTTL \"" +
                       goDuration(max_ttl) + "\", so maxTTL is being used");
    ttl = max_ttl;
  }
  const auto backdate = notBeforeDuration(params);
  if (!backdate) return errorReply(400, {"invalid not_before_duration"});
  const TestKey key = makeKey(key_type, key_bits);
  CertSpec spec;
  spec.subject_entries = subjectFromParams(params, cn);
  spec.path_len = static_cast<int>(*path_len);
  spec.not_before = now - std::chrono::seconds(*backdate);
  spec.not_after = now + std::chrono::seconds(ttl);
  spec.uri_sans = listParam(params, "uri_sans");
  const TestCert cert = issueCert(spec, key, nullptr, key);
  if (cert.empty()) return errorReply(500, {"failed to generate the root certificate"});

  const std::string key_name = stringParam(params, "key_name");
  const std::string key_id = addKey(key, key_name);
  const std::string issuer_id = addIssuer(cert, issuer_name);

  json data = {
      {"certificate", cert.pemTrimmed()},
      {"issuing_ca", cert.pemTrimmed()},
      {"serial_number", cert.serialColonHex()},
      {"expiration", expiration(cert, ctx.behaviour)},
      {"issuer_id", issuer_id},
      {"issuer_name", issuer_name},
      {"key_id", key_id},
      {"key_name", key_name},
  };
  if (type == "exported") {
    data["private_key"] = privateKeyPem(key, params);
    data["private_key_type"] = key.type();
    if (stringParam(params, "format") == "pem_bundle") {
      data["certificate"] = data["private_key"].get<std::string>() + "\n" + cert.pemTrimmed();
    }
  }
  Envelope e;
  e.mount_type = "pki";
  e.data = std::move(data);
  e.warnings = std::move(warnings);
  return envelopeReply(e);
}

// ---- intermediate CSR ----

Reply PkiEngine::generateIntermediate(const std::string& type, const Call& call) {
  if (type != "internal" && type != "exported") {
    return errorReply(400, {"unsupported intermediate type \"" + type + "\" in this test server"});
  }
  const std::string cn = stringParam(call.params, "common_name");
  if (cn.empty()) return errorReply(400, {"the common_name field is required"});
  const auto [key_type, key_bits] = keyParams(call.params);
  if (key_type.empty()) return errorReply(400, {"invalid key_type or key_bits"});
  const TestKey key = makeKey(key_type, key_bits);
  CsrSpec spec;
  spec.common_name = cn;
  spec.organization = stringParam(call.params, "organization");
  spec.uri_sans = listParam(call.params, "uri_sans");
  spec.dns_sans = listParam(call.params, "alt_names");
  spec.request_ca = boolParam(call.params, "add_basic_constraints", false);
  const std::string csr = trimmed(makeCsr(key, spec));
  if (csr.empty()) return errorReply(500, {"failed to generate the CSR"});
  const std::string key_id = addKey(key, stringParam(call.params, "key_name"));

  json data = {{"csr", csr}, {"key_id", key_id}};
  if (type == "exported") {
    data["private_key"] = privateKeyPem(key, call.params);
    data["private_key_type"] = key.type();
    if (stringParam(call.params, "format") == "pem_bundle") {
      data["csr"] = data["private_key"].get<std::string>() + "\n" + csr;
    }
  }
  Envelope e;
  e.mount_type = "pki";
  e.data = std::move(data);
  e.warnings = {kAiaWarning};
  return envelopeReply(e);
}

// ---- sign-intermediate ----

Reply PkiEngine::signIntermediate(const std::string& ref, const Call& call, EngineContext& ctx) {
  const json& params = call.params;
  if (ref == "default" && default_issuer_.empty()) return errorReply(400, {kNoDefault});
  const Issuer* signer = resolve(ref);
  if (!signer) return errorReply(400, {unknownIssuer(ref)});
  const Key* signer_key = keyById(signer->key_id);
  if (!signer_key) {
    return errorReply(400, {"unable to fetch corresponding key for issuer " + signer->id +
                            "; unable to use this issuer for signing"});
  }
  const std::string csr_pem = stringParam(params, "csr");
  if (csr_pem.empty()) return errorReply(400, {"\"csr\" is empty"});
  const ParsedCsr csr = parseCsr(csr_pem);
  if (csr.public_key.empty()) return errorReply(400, {"certificate request could not be parsed or its signature is invalid"});

  const bool use_csr_values = boolParam(params, "use_csr_values", false);
  std::string cn = stringParam(params, "common_name");
  if (cn.empty() || use_csr_values) cn = csr.common_name;
  if (cn.empty()) {
    return errorReply(400, {"the common_name field is required, or must be provided in a CSR with "
                            "\"use_csr_values\" set to true"});
  }

  // TTL: requested (or mount default), clamped by the mount's max_lease_ttl first.
  std::vector<std::string> warnings;
  if (params.contains("ttl") && params.contains("not_after")) {
    return errorReply(400, {"Either ttl or not_after should be provided. Both should not be "
                            "provided in the same request."});
  }
  const std::int64_t max_ttl = ctx.mount.effectiveMaxTtl();
  const SystemTime now = call.real_now;
  SystemTime not_after;
  if (params.contains("not_after")) {
    const auto na = parseNotAfter(stringParam(params, "not_after"));
    if (!na) return errorReply(400, {"invalid not_after: use YYYY-MM-ddTHH:MM:SSZ"});
    not_after = *na;
  } else {
    std::int64_t ttl = ctx.mount.default_lease_ttl > 0 ? ctx.mount.default_lease_ttl
                                                       : std::min(kSystemMaxTtlSeconds, max_ttl);
    if (params.contains("ttl")) {
      const auto parsed = durationSeconds(params["ttl"]);
      if (!parsed) return errorReply(400, {"invalid ttl"});
      if (*parsed > 0) ttl = *parsed;
    }
    if (ttl > max_ttl) {
      warnings.push_back("TTL \"" + goDuration(ttl) + "\" is longer than permitted maxTTL \"" +
                         goDuration(max_ttl) + "\", so maxTTL is being used");
      ttl = max_ttl;
    }
    not_after = now + std::chrono::seconds(ttl);
  }

  // Then the issuer's notAfter (Vault 1.17+ truncates; up to 1.16 it only warns).
  const SystemTime issuer_na = signer->cert.notAfter();
  if (not_after > issuer_na) {
    const bool enforce = boolParam(params, "enforce_leaf_not_after_behavior", false);
    const bool permit = ctx.behaviour.pki_not_after_beyond_issuer ||
                        (enforce && signer->leaf_not_after_behavior == "permit");
    if (permit) {
      warnings.push_back(kBeyondIssuerWarning);
    } else if (enforce && signer->leaf_not_after_behavior == "err") {
      return errorReply(400, {"cannot satisfy request, as TTL would result in notAfter of " +
                              rfc3339(not_after) + " that is beyond the expiration of the CA "
                              "certificate at " + rfc3339(issuer_na)});
    } else {
      not_after = issuer_na;
      warnings.push_back(kTruncatedWarning);
    }
  }

  const auto requested_len = intParam(params, "max_path_length", -1);
  if (!requested_len) return errorReply(400, {"invalid max_path_length"});
  const int signer_len = signer->cert.pathLen();
  if (signer_len == 0) {
    return errorReply(400, {"signing issuer has a path length of 0 and cannot sign CA certificates"});
  }
  int path_len = static_cast<int>(*requested_len);
  if (path_len < 0) {
    path_len = signer_len > 0 ? signer_len - 1 : -1;
  } else if (signer_len > 0 && path_len >= signer_len) {
    return errorReply(400, {"max_path_length (" + std::to_string(path_len) +
                            ") must be less than the signing issuer's path length (" +
                            std::to_string(signer_len) + ")"});
  }

  CertSpec spec;
  if (use_csr_values) {
    spec.subject_entries = csr.subject_entries;
    spec.uri_sans = csr.uri_sans;
    spec.dns_sans = csr.dns_sans;
    spec.ip_sans = csr.ip_sans;
  } else {
    spec.subject_entries = subjectFromParams(params, cn);
    spec.uri_sans = listParam(params, "uri_sans");
    spec.dns_sans = listParam(params, "alt_names");
    spec.ip_sans = listParam(params, "ip_sans");
  }
  // Vault 1.21.1+ (issuing/issue_common.go): the backdated notBefore may not precede the
  // signer's own notBefore; it refuses instead of clamping.
  const auto backdate = notBeforeDuration(params);
  if (!backdate) return errorReply(400, {"invalid not_before_duration"});
  const SystemTime not_before = now - std::chrono::seconds(*backdate);
  if (not_before < signer->cert.notBefore()) {
    return errorReply(400, {"cannot satisfy request, as the requested notBefore of " + rfc3339(not_before) +
                            " is before the signer's notBefore of " + rfc3339(signer->cert.notBefore()) +
                            "; lower not_before_duration"});
  }
  spec.path_len = path_len;
  spec.not_before = not_before;
  spec.not_after = not_after;
  const TestCert cert = issueCert(spec, csr.public_key, &signer->cert, signer_key->key);
  if (cert.empty()) return errorReply(500, {"failed to sign the intermediate"});
  issued_[cert.serialColonHex()] = cert.pemTrimmed();

  const std::string format = stringParam(params, "format");
  auto encode = [&](const TestCert& c) { return format == "der" ? base64(c.der()) : c.pemTrimmed(); };
  json chain = json::array();
  if (!ctx.behaviour.pki_legacy_ca_chain) chain.push_back(encode(cert));
  std::string bundle = cert.pemTrimmed();
  for (const Issuer* is : chainOf(*signer)) {
    chain.push_back(encode(is->cert));
    bundle += "\n" + is->cert.pemTrimmed();
  }
  // No config/urls here, ever: Vault warns about the missing AIA fields on every sign.
  warnings.push_back(kAiaWarning);
  Envelope e;
  e.mount_type = "pki";
  e.data = {
      {"certificate", format == "pem_bundle" ? bundle : encode(cert)},
      {"issuing_ca", encode(signer->cert)},
      {"ca_chain", chain},
      {"serial_number", cert.serialColonHex()},
      {"expiration", expiration(cert, ctx.behaviour)},
  };
  e.warnings = std::move(warnings);
  return envelopeReply(e);
}

// ---- import and configuration ----

Reply PkiEngine::importBundle(const std::string& pem_bundle, bool allow_keys) {
  const auto blocks = splitPem(pem_bundle);
  if (blocks.empty()) return errorReply(400, {"no data found in PEM bundle"});
  std::vector<TestCert> certs;
  std::vector<TestKey> keys;
  for (const auto& b : blocks) {
    if (b.type.find("PRIVATE KEY") != std::string::npos) {
      if (!allow_keys) return errorReply(400, {"private keys are not accepted on this path; use config/ca"});
      TestKey k = TestKey::fromPem(b.text);
      if (k.empty()) return errorReply(400, {"error parsing private key in PEM bundle"});
      keys.push_back(k);
    } else if (b.type == "CERTIFICATE") {
      TestCert c = TestCert::fromPem(b.text);
      if (c.empty()) return errorReply(400, {"error parsing certificate in PEM bundle"});
      if (!c.isCa()) return errorReply(400, {"refusing to import non-CA certificate \"" + c.commonName() + "\""});
      certs.push_back(c);
    } else {
      return errorReply(400, {"unsupported PEM block type \"" + b.type + "\" in bundle"});
    }
  }
  json imported_keys = json::array(), existing_keys = json::array();
  for (const auto& k : keys) {
    const auto it = std::find_if(keys_.begin(), keys_.end(),
                                 [&](const Key& have) { return samePublicKey(have.key, k); });
    if (it != keys_.end()) {
      existing_keys.push_back(it->id);
    } else {
      imported_keys.push_back(addKey(k, ""));
    }
  }
  json imported_issuers = json::array(), existing_issuers = json::array();
  json mapping = json::object();
  for (const auto& c : certs) {
    const auto it = std::find_if(issuers_.begin(), issuers_.end(),
                                 [&](const Issuer& have) { return have.cert.der() == c.der(); });
    if (it != issuers_.end()) {
      existing_issuers.push_back(it->id);
      continue;
    }
    const std::string id = addIssuer(c, "");
    imported_issuers.push_back(id);
    mapping[id] = resolve(id)->key_id;
  }
  Envelope e;
  e.mount_type = "pki";
  e.data = {
      {"imported_issuers", imported_issuers.empty() ? json(nullptr) : imported_issuers},
      {"imported_keys", imported_keys.empty() ? json(nullptr) : imported_keys},
      {"mapping", mapping},
      {"existing_issuers", existing_issuers},
      {"existing_keys", existing_keys},
  };
  return envelopeReply(e);
}

Reply PkiEngine::configIssuers() const {
  Envelope e;
  e.mount_type = "pki";
  e.data = {{"default", default_issuer_}, {"default_follows_latest_issuer", default_follows_latest_}};
  return envelopeReply(e);
}

Reply PkiEngine::setDefault(const json& params) {
  const std::string ref = stringParam(params, "default");
  if (!ref.empty()) {
    const Issuer* is = resolve(ref);
    if (!is) return errorReply(400, {unknownIssuer(ref)});
    default_issuer_ = is->id;
  }
  default_follows_latest_ = boolParam(params, "default_follows_latest_issuer", default_follows_latest_);
  return configIssuers();
}

Reply PkiEngine::deleteIssuer(const std::string& ref) {
  const Issuer* is = resolve(ref);
  if (!is) return errorReply(500, {unknownIssuer(ref)});
  Envelope e;
  e.mount_type = "pki";
  if (is->id == default_issuer_) {
    default_issuer_.clear();
    e.warnings.push_back("Deleted issuer was the default issuer; the mount has no default issuer now.");
  }
  const std::string id = is->id;
  issuers_.erase(std::remove_if(issuers_.begin(), issuers_.end(), [&](const Issuer& x) { return x.id == id; }),
                 issuers_.end());
  if (e.warnings.empty()) return noContent();
  e.data = nullptr;
  return envelopeReply(e);
}

Reply PkiEngine::deleteKey(const std::string& ref) {
  const auto it = std::find_if(keys_.begin(), keys_.end(),
                               [&](const Key& k) { return k.id == ref || (!k.name.empty() && k.name == ref); });
  if (it == keys_.end()) return errorReply(500, {"unable to find PKI key for reference: " + ref});
  for (const auto& is : issuers_) {
    if (is.key_id == it->id) {
      return errorReply(400, {"unable to delete key: key " + it->id + " is in use by issuer " + is.id});
    }
  }
  keys_.erase(it);
  return noContent();
}

Reply PkiEngine::updateIssuer(const std::string& ref, const json& params) {
  auto it = std::find_if(issuers_.begin(), issuers_.end(), [&](const Issuer& is) { return &is == resolve(ref); });
  if (it == issuers_.end()) return errorReply(500, {unknownIssuer(ref)});
  if (params.contains("issuer_name")) it->name = stringParam(params, "issuer_name");
  if (params.contains("leaf_not_after_behavior")) {
    const std::string b = stringParam(params, "leaf_not_after_behavior");
    if (b != "err" && b != "truncate" && b != "permit") return errorReply(400, {"invalid leaf_not_after_behavior"});
    it->leaf_not_after_behavior = b;
  }
  return issuerJson(it->id, true);
}

// ---- reads ----

Reply PkiEngine::listIssuers() const {
  if (issuers_.empty()) return errorReply(404, {});
  std::vector<std::string> ids;
  json info = json::object();
  for (const auto& is : issuers_) {
    ids.push_back(is.id);
    info[is.id] = {{"issuer_name", is.name},
                   {"is_default", is.id == default_issuer_},
                   {"key_id", is.key_id},
                   {"serial_number", is.cert.serialColonHex()}};
  }
  std::sort(ids.begin(), ids.end());
  Envelope e;
  e.mount_type = "pki";
  e.data = {{"keys", ids}, {"key_info", info}};
  return envelopeReply(e);
}

Reply PkiEngine::issuerJson(const std::string& ref, bool full) const {
  const Issuer* is = resolve(ref);
  if (!is) return errorReply(500, {ref == "default" ? kNoDefault : unknownIssuer(ref)});
  json chain = json::array();
  for (const Issuer* c : chainOf(*is)) chain.push_back(c->cert.pemTrimmed());
  json data = {{"certificate", is->cert.pemTrimmed()},
               {"ca_chain", chain},
               {"issuer_id", is->id},
               {"issuer_name", is->name}};
  if (full) {
    data["key_id"] = is->key_id;
    data["leaf_not_after_behavior"] = is->leaf_not_after_behavior;
    data["manual_chain"] = nullptr;
    data["usage"] = "crl-signing,issuing-certificates,ocsp-signing,read-only";
  }
  Envelope e;
  e.mount_type = "pki";
  e.data = std::move(data);
  return envelopeReply(e);
}

Reply PkiEngine::readCa(const std::string& what) const {
  const Issuer* is = resolve("default");
  const bool raw = what == "ca" || what == "ca/pem" || what == "ca_chain";
  if (!is) return raw ? rawReply(204, "", "") : errorReply(400, {kNoDefault});
  std::string chain_pem, chain_joined;
  for (const Issuer* c : chainOf(*is)) {
    chain_pem += c->cert.pem();
    chain_joined += (chain_joined.empty() ? "" : "\n") + c->cert.pemTrimmed();
  }
  if (what == "ca") return rawReply(200, is->cert.der(), "application/pkix-cert");
  if (what == "ca/pem") return rawReply(200, is->cert.pem(), "application/pem-certificate-chain");
  if (what == "ca_chain") return rawReply(200, chain_pem, "application/pkix-cert");
  Envelope e;
  e.mount_type = "pki";
  if (what == "cert/ca") {
    e.data = {{"certificate", is->cert.pemTrimmed()},
              {"revocation_time", 0},
              {"revocation_time_rfc3339", ""}};
  } else {
    e.data = {{"certificate", chain_joined},
              {"ca_chain", chain_joined},
              {"revocation_time", 0},
              {"revocation_time_rfc3339", ""}};
  }
  return envelopeReply(e);
}

}  // namespace cacerts::testing
