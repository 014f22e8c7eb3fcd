#include "agent/ca_bundle.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace cacerts {

namespace {

bool isBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// One certificate of the input, with the name messages use for it.
struct Member {
  std::string role;  // "ca-cert", "cert-chain certificate 2", ...
  Certificate cert;
  CertInfo info;
};

std::string quoted(const CertInfo& info) { return "\"" + info.subject + "\""; }

std::string describeMember(const Member& m) { return m.role + " (" + quoted(m.info) + ")"; }

bool keyTypeSupported(const std::string& description) {
  if (description == "ec-256" || description == "ec-384" || description == "ec-521") return true;
  if (description.rfind("rsa-", 0) == 0) return std::atoi(description.c_str() + 4) >= 2048;
  return false;
}

bool ekuAllowsServerAuth(const CertInfo& info) {
  if (!info.has_eku) return true;
  return std::any_of(info.ext_key_usages.begin(), info.ext_key_usages.end(),
                     [](const std::string& u) { return u == "serverAuth" || u == "anyExtendedKeyUsage"; });
}

bool weakDigest(const std::string& digest) {
  return digest == "SHA1" || digest == "MD5" || digest == "MD4" || digest == "MD2" || digest == "MD5-SHA1";
}

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "(empty)" : out;
}

struct Evaluation {
  BundleReport report;
  std::optional<Member> ca;
  std::optional<PrivateKey> key;
  std::vector<Member> extras;  // certificates after the first in cert_pem
  bool chain_given = false;
  bool chain_parsed = false;
  std::vector<Member> chain;
  std::vector<Member> roots;  // deduplicated
  bool root_derived = false;
  std::optional<Result<std::vector<Certificate>>> verified;

  void add(std::string name, bool ok, std::string detail) {
    report.checks.push_back(CheckResult{std::move(name), ok, std::move(detail)});
  }
  bool pathVerified() const { return verified && verified->has_value(); }
  const std::vector<Certificate>& path() const { return verified->value(); }

  // The role of a certificate on the verified path, preferring its most specific name.
  std::string roleOf(const Certificate& cert) const {
    if (ca && ca->cert.sameAs(cert)) return ca->role;
    for (const auto* group : {&extras, &chain, &roots}) {
      for (const Member& m : *group) {
        if (m.cert.sameAs(cert)) return m.role;
      }
    }
    return "certificate";
  }
  std::vector<const Member*> allMembers() const {
    std::vector<const Member*> out;
    if (ca) out.push_back(&*ca);
    for (const auto* group : {&extras, &chain, &roots}) {
      for (const Member& m : *group) out.push_back(&m);
    }
    return out;
  }
};

std::vector<Member> toMembers(std::vector<Certificate> certs, const std::string& name, std::size_t first_index) {
  std::vector<Member> out;
  for (std::size_t i = 0; i < certs.size(); ++i) {
    CertInfo info = certs[i].info();
    out.push_back(Member{name + " certificate " + std::to_string(first_index + i), std::move(certs[i]), std::move(info)});
  }
  return out;
}

void parseInputs(const CaMaterial& m, Evaluation& e) {
  const MaterialNames& n = m.names;

  auto certs = parseCertificates(m.cert_pem, n.cert);
  if (certs) {
    std::vector<Certificate> list = std::move(certs).value();
    CertInfo info = list.front().info();
    e.ca = Member{n.cert, list.front(), std::move(info)};
    list.erase(list.begin());
    e.extras = toMembers(std::move(list), n.cert, 2);
    std::string detail = quoted(e.ca->info);
    if (!e.extras.empty()) {
      detail += "; " + std::to_string(e.extras.size()) +
                " further certificate(s) in it are used as intermediates (istiod reads only the first)";
    }
    e.add("parse_ca_cert", true, std::move(detail));
  } else {
    e.add("parse_ca_cert", false, certs.error().message);
  }

  auto key = parsePrivateKey(m.key_pem, n.key);
  if (key) {
    e.add("parse_ca_key", true, key->description());
    e.key = std::move(key).value();
  } else {
    e.add("parse_ca_key", false, key.error().message);
  }

  e.chain_given = !isBlank(m.chain_pem);
  if (e.chain_given) {
    auto chain = parseCertificates(m.chain_pem, n.chain);
    if (chain) {
      e.chain_parsed = true;
      e.chain = toMembers(std::move(chain).value(), n.chain, 1);
      e.add("parse_cert_chain", true, std::to_string(e.chain.size()) + " certificate(s)");
    } else {
      e.add("parse_cert_chain", false, chain.error().message);
    }
  } else {
    e.add("parse_cert_chain", true, "not given: " + n.chain + " is built from " + n.cert + " and the root");
  }

  if (!isBlank(m.root_pem)) {
    auto roots = parseCertificates(m.root_pem, n.root);
    if (roots) {
      std::vector<Member> members = toMembers(std::move(roots).value(), n.root, 1);
      const std::size_t given = members.size();
      for (Member& member : members) {
        const bool seen = std::any_of(e.roots.begin(), e.roots.end(),
                                      [&](const Member& r) { return r.cert.sameAs(member.cert); });
        if (!seen) e.roots.push_back(std::move(member));
      }
      std::string detail = std::to_string(e.roots.size()) + " root(s)";
      if (e.roots.size() != given) detail += "; " + std::to_string(given - e.roots.size()) + " duplicate(s) dropped";
      e.add("parse_root_cert", true, std::move(detail));
    } else {
      e.add("parse_root_cert", false, roots.error().message);
    }
  } else {
    // Derive the root from the end of what we have: the chain if given, else ca-cert.
    const Member* last = nullptr;
    std::string source;
    if (e.chain_given) {
      if (e.chain_parsed) {
        last = &e.chain.back();
        source = n.chain;
      }
    } else if (e.ca) {
      last = e.extras.empty() ? &*e.ca : &e.extras.back();
      source = n.cert;
    }
    if (last != nullptr) {
      e.root_derived = true;
      e.roots.push_back(Member{n.root + " (the last certificate of " + source + ")", last->cert, last->info});
      e.add("parse_root_cert", true, "not given: using the last certificate of " + source + " (" +
                                         quoted(last->info) + ") as the root");
    }
  }
}

void runChecks(const CaMaterial& m, const ValidationOptions& o, Evaluation& e) {
  const MaterialNames& n = m.names;

  if (e.ca && !e.roots.empty()) {
    std::vector<Certificate> intermediates;
    for (const Member& x : e.extras) intermediates.push_back(x.cert);
    for (const Member& x : e.chain) intermediates.push_back(x.cert);
    std::vector<Certificate> anchors;
    for (const Member& r : e.roots) anchors.push_back(r.cert);
    e.verified = verifyChain(e.ca->cert, intermediates, anchors, o.now);
  }

  if (e.ca) {
    const CertInfo& ca = e.ca->info;
    const bool supported = keyTypeSupported(ca.key_description);
    e.add("key_type_supported", supported,
          supported ? ca.key_description
                    : describeMember(*e.ca) + " has a " + ca.key_description +
                          " key, which istiod cannot use; reissue it with an ECDSA P-256/P-384 or RSA >= 2048 key");

    if (e.key) {
      const bool match = keyMatchesCertificate(*e.key, e.ca->cert);
      e.add("key_matches_cert", match,
            match ? n.key + " matches " + n.cert
                  : n.key + " does not match " + n.cert + " (wrong key or wrong version of the secret)");
    }

    e.add("ca_basic_constraints", ca.is_ca,
          ca.is_ca ? "CA:TRUE" + (ca.path_len >= 0 ? ", pathlen " + std::to_string(ca.path_len) : std::string())
                   : describeMember(*e.ca) +
                         " is not a CA certificate (basicConstraints CA:TRUE missing); istiod refuses to sign "
                         "with it — use an intermediate CA certificate");

    std::string ku_detail = "keyCertSign";
    if (!ca.has_key_usage) {
      ku_detail = describeMember(*e.ca) + " has no keyUsage extension; reissue it with keyUsage keyCertSign (and cRLSign)";
    } else if (!ca.key_cert_sign) {
      ku_detail = describeMember(*e.ca) + " has keyUsage without keyCertSign; reissue it with keyCertSign (and cRLSign)";
    }
    e.add("key_cert_sign", ca.key_cert_sign, std::move(ku_detail));

    // validity_window: everything published in cert-chain plus the anchoring root(s).
    std::vector<const Member*> timed = {&*e.ca};
    for (const Member& x : e.extras) timed.push_back(&x);
    for (const Member& x : e.chain) timed.push_back(&x);
    if (e.pathVerified()) {
      for (const Member& r : e.roots) {
        if (r.cert.sameAs(e.path().back())) timed.push_back(&r);
      }
    } else {
      for (const Member& r : e.roots) timed.push_back(&r);
    }
    std::string window_failure;
    for (const Member* x : timed) {
      if (o.now < x->info.not_before) {
        window_failure = describeMember(*x) + " is not valid before " + formatTime(x->info.not_before) + " (now " +
                         formatTime(o.now) + "); check the clock of this node and of the issuer";
        break;
      }
      if (o.now > x->info.not_after) {
        window_failure = describeMember(*x) + " expired at " + formatTime(x->info.not_after) + " (now " +
                         formatTime(o.now) + "); renew it in Vault";
        break;
      }
    }
    e.add("validity_window", window_failure.empty(),
          window_failure.empty()
              ? n.cert + " valid from " + formatTime(ca.not_before) + " until " + formatTime(ca.not_after)
              : window_failure);

    // The signing capability ends when the first certificate on the path expires.
    std::string limiting_role = e.ca->role;
    CertInfo limiting = ca;
    if (e.pathVerified()) {
      for (const Certificate& c : e.path()) {
        CertInfo info = c.info();
        if (info.not_after < limiting.not_after) {
          limiting_role = e.roleOf(c);
          limiting = std::move(info);
        }
      }
    }
    const Duration remaining = std::chrono::duration_cast<Duration>(limiting.not_after - o.now);
    const bool enough = remaining >= o.min_remaining;
    std::string life_detail = limiting_role + " (" + quoted(limiting) + ") expires at " +
                              formatTime(limiting.not_after);
    if (enough) {
      life_detail += ", in " + describeDuration(remaining);
    } else {
      life_detail += remaining.count() < 0 ? ", " + describeDuration(-remaining) + " ago"
                                           : ", in " + describeDuration(remaining);
      life_detail += ", less than the required remaining lifetime of " + describeDuration(o.min_remaining) +
                     " (--min-remaining); renew the CA material (or lower --min-remaining)";
    }
    e.add("min_remaining_lifetime", enough, std::move(life_detail));
  }

  const std::vector<const Member*> everyone = e.allMembers();
  if (!everyone.empty()) {
    std::string eku_failure;
    for (const Member* x : everyone) {
      if (!ekuAllowsServerAuth(x->info)) {
        eku_failure = describeMember(*x) + " has extended key usage [" + joinList(x->info.ext_key_usages) +
                      "] without serverAuth or anyExtendedKeyUsage; istiod verifies the chain for serverAuth "
                      "and rejects it — reissue the certificate without an EKU extension";
        break;
      }
    }
    e.add("eku_allows_server_auth", eku_failure.empty(),
          eku_failure.empty() ? "no certificate restricts extended key usage against serverAuth" : eku_failure);
  }

  if (e.ca) {
    std::string sig_failure;
    for (const Member* x : everyone) {
      // Go does not check the signature of a self-signed root; everything below it must be
      // signed with a digest it accepts.
      if (!x->info.self_signed && weakDigest(x->info.signature_digest)) {
        sig_failure = describeMember(*x) + " is signed with " + x->info.signature_algorithm +
                      "; istiod (Go) rejects SHA-1/MD5 signatures — reissue it with SHA-256";
        break;
      }
    }
    e.add("signature_algorithm_accepted", sig_failure.empty(),
          sig_failure.empty() ? e.ca->info.signature_algorithm : sig_failure);
  }

  if (!e.roots.empty()) {
    std::string root_failure;
    for (const Member& r : e.roots) {
      if (!r.info.self_signed) {
        root_failure = describeMember(r) + " is not self-signed (issuer " + "\"" + r.info.issuer + "\"); ";
        root_failure += e.root_derived ? "no root was given, so provide the root (e.g. --kv-root) or end the chain "
                                         "with it"
                                       : n.root + " must hold only self-signed root CA certificates";
        break;
      }
      if (!r.info.is_ca) {
        root_failure = describeMember(r) + " is not a CA certificate (basicConstraints CA:TRUE missing)";
        break;
      }
    }
    e.add("roots_self_signed_ca", root_failure.empty(),
          root_failure.empty() ? std::to_string(e.roots.size()) + " self-signed root CA(s)" : root_failure);
  }

  if (e.verified) {
    if (e.pathVerified()) {
      std::string path;
      for (const Certificate& c : e.path()) path += (path.empty() ? "" : " -> ") + quoted(c.info());
      e.add("chain_verifies_to_root", true, path);
    } else {
      e.add("chain_verifies_to_root", false,
            n.cert + " does not verify through " + n.chain + " to " + n.root + ": " + e.verified->error().message);
    }
  }

  if (e.ca && e.chain_parsed) {
    const bool starts = e.chain.front().cert.sameAs(e.ca->cert);
    e.add("chain_starts_with_ca_cert", starts,
          starts ? n.chain + " starts with " + n.cert
                 : n.chain + " starts with " + quoted(e.chain.front().info) + " instead of " + n.cert + " (" +
                       quoted(e.ca->info) +
                       "); istiod treats the first chain certificate as its CA certificate for TTL and expiry");
  }
}

Evaluation evaluate(const CaMaterial& m, const ValidationOptions& o) {
  Evaluation e;
  parseInputs(m, e);
  runChecks(m, o, e);
  if (e.ca) e.report.ca_cert = e.ca->info;
  if (e.chain_parsed) {
    for (const Member& x : e.chain) e.report.chain.push_back(x.info);
  } else if (!e.chain_given && e.pathVerified()) {
    for (const Certificate& c : e.path()) e.report.chain.push_back(c.info());
  }
  for (const Member& r : e.roots) e.report.roots.push_back(r.info);
  return e;
}

}  // namespace

bool BundleReport::ok() const { return firstFailure() == nullptr; }

const CheckResult* BundleReport::firstFailure() const {
  for (const CheckResult& c : checks) {
    if (!c.ok) return &c;
  }
  return nullptr;
}

BundleReport inspectBundle(const CaMaterial& m, const ValidationOptions& o) { return evaluate(m, o).report; }

Result<ValidatedBundle> assembleAndValidate(const CaMaterial& m, const ValidationOptions& o) {
  Evaluation e = evaluate(m, o);
  for (const CheckResult& c : e.report.checks) {
    // Assembly repairs the chain order, so a given chain that does not start with ca-cert
    // is not a reason to refuse.
    if (!c.ok && c.name != "chain_starts_with_ca_cert") {
      return Error{ErrorCode::kValidation, "check " + c.name + " failed: " + c.detail};
    }
  }
  if (!e.ca || !e.key || !e.pathVerified()) {
    return Error{ErrorCode::kInternal, "CA bundle validation ended without a verified path"};
  }
  ValidatedBundle out;
  out.ca_cert_pem = e.ca->cert.pem();
  out.ca_key_pem = m.key_pem;
  out.cert_chain_pem = toPem(e.path());
  for (const Member& r : e.roots) {
    out.root_cert_pem += r.cert.pem();
    out.roots.push_back(r.info);
  }
  out.ca_cert = e.ca->info;
  return out;
}

std::string describeDuration(Duration d) {
  std::string sign;
  long long secs = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (secs < 0) {
    sign = "-";
    secs = -secs;
  }
  const long long h = secs / 3600;
  const long long m = (secs % 3600) / 60;
  const long long s = secs % 60;
  if (h > 0) return sign + std::to_string(h) + "h" + std::to_string(m) + "m" + std::to_string(s) + "s";
  if (m > 0) return sign + std::to_string(m) + "m" + std::to_string(s) + "s";
  return sign + std::to_string(s) + "s";
}

}  // namespace cacerts
