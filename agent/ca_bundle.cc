#include "agent/ca_bundle.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "common/duration.h"

namespace cacerts {

namespace {

bool isBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// One certificate of the input, with the name messages use for it.
struct Member {
  std::string role;  // "ca-cert", "cert-chain certificate 2", ...
  Certificate cert;
};

std::string quoted(const CertInfo& info) { return "\"" + info.subject + "\""; }

std::string describeMember(const Member& m) { return m.role + " (" + quoted(m.cert.info()) + ")"; }

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

// Checks stricter than istiod: a failure of one of these means istiod would still load the
// set, so messages say it is this agent's policy.
constexpr std::string_view kAgentPolicy = "agent policy, stricter than istiod: ";

struct Evaluation {
  BundleReport report;
  // inspectBundle: judge as istiod does (the verification pool is cert-chain only, ca-cert
  // contributes its first certificate). assembleAndValidate: further ca-cert certificates
  // are intermediates too, because sources legitimately store cert + chain in one field.
  bool istiod_view = false;
  std::optional<Member> ca;
  std::optional<PrivateKey> key;
  std::vector<Member> extras;   // certificates after the first in cert_pem, when used
  std::vector<Member> ignored;  // ... when judged like istiod, which never reads them
  bool chain_given = false;
  bool chain_parsed = false;
  std::vector<Member> chain;
  std::vector<Member> roots;  // deduplicated
  bool root_derived = false;
  std::optional<Result<std::vector<Certificate>>> verified;
  bool crl_given = false;                          // ca-crl not empty: istiod 1.27+ judges it
  std::optional<Result<std::vector<Crl>>> crls;    // parsed when given

  void add(std::string name, bool ok, std::string detail) {
    report.checks.push_back(CheckResult{std::move(name), ok, std::move(detail), Policy::kIstiod});
  }
  bool pathVerified() const { return verified && verified->has_value(); }
  bool onPath(const Certificate& cert) const {
    return pathVerified() &&
           std::any_of(path().begin(), path().end(), [&](const Certificate& c) { return c.sameAs(cert); });
  }
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
    out.push_back(Member{name + " certificate " + std::to_string(first_index + i), std::move(certs[i])});
  }
  return out;
}

void parseInputs(const CaMaterial& m, Evaluation& e) {
  const MaterialNames& n = m.names;

  auto certs = parseCertificates(m.cert_pem, n.cert);
  if (certs) {
    std::vector<Certificate> list = std::move(certs).value();
    e.ca = Member{n.cert, list.front()};
    list.erase(list.begin());
    (e.istiod_view ? e.ignored : e.extras) = toMembers(std::move(list), n.cert, 2);
    std::string detail = quoted(e.ca->cert.info());
    if (!e.extras.empty()) {
      detail += "; " + std::to_string(e.extras.size()) +
                " further certificate(s) in it are used as intermediates (istiod reads only the first)";
    }
    if (!e.ignored.empty()) {
      detail += "; " + std::to_string(e.ignored.size()) +
                " further certificate(s) in it are ignored, as istiod reads only the first";
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
      e.roots.push_back(Member{n.root + " (the last certificate of " + source + ")", last->cert});
      e.add("parse_root_cert", true, "not given: using the last certificate of " + source + " (" +
                                         quoted(last->cert.info()) + ") as the root");
    }
  }
}

// ---------------------------------------------------------------------------------------
// One function per check of the list in ca_bundle.h. Each returns nothing when the inputs
// it judges did not parse (the parse_* failure already explains why).

using CheckOutcome = std::optional<CheckResult>;

CheckResult result(std::string name, bool ok, std::string detail, Policy policy = Policy::kIstiod) {
  return CheckResult{std::move(name), ok, std::move(detail), policy};
}

// A check istiod does not make: its failure detail says so.
CheckResult agentResult(std::string name, bool ok, std::string detail) {
  return result(std::move(name), ok, ok ? std::move(detail) : std::string(kAgentPolicy) + detail, Policy::kAgent);
}

CheckOutcome keyTypeSupportedCheck(const Evaluation& e) {
  if (!e.ca) return std::nullopt;
  const CertInfo& ca = e.ca->cert.info();
  const bool supported = keyTypeSupported(ca.key_description);
  return agentResult("key_type_supported", supported,
                     supported ? ca.key_description
                               : describeMember(*e.ca) + " has a " + ca.key_description +
                                     " key; reissue it with an ECDSA P-256/P-384 or RSA >= 2048 key");
}

CheckOutcome keyMatchesCertCheck(const Evaluation& e, const MaterialNames& n) {
  if (!e.ca || !e.key) return std::nullopt;
  switch (proveKeyMatches(*e.key, e.ca->cert)) {
    case KeyProof::kProven:
      return result("key_matches_cert", true, n.key + " matches " + n.cert);
    case KeyProof::kOtherKey:
      return result("key_matches_cert", false,
                    n.key + " does not match " + n.cert + " (wrong key or wrong version of the secret)");
    case KeyProof::kBrokenPrivate:
      break;
  }
  return result("key_matches_cert", false,
                n.key + " has the public key of " + n.cert +
                    " but its private part does not make valid signatures (the stored key is corrupted)");
}

CheckOutcome caBasicConstraintsCheck(const Evaluation& e) {
  if (!e.ca) return std::nullopt;
  const CertInfo& ca = e.ca->cert.info();
  return result("ca_basic_constraints", ca.is_ca,
                ca.is_ca ? "CA:TRUE" + (ca.path_len >= 0 ? ", pathlen " + std::to_string(ca.path_len) : std::string())
                         : describeMember(*e.ca) +
                               " is not a CA certificate (basicConstraints CA:TRUE missing); istiod refuses to sign "
                               "with it — use an intermediate CA certificate");
}

CheckOutcome keyCertSignCheck(const Evaluation& e) {
  if (!e.ca) return std::nullopt;
  const CertInfo& ca = e.ca->cert.info();
  std::string detail = "keyCertSign";
  if (!ca.has_key_usage) {
    detail = describeMember(*e.ca) + " has no keyUsage extension; reissue it with keyUsage keyCertSign (and cRLSign)";
  } else if (!ca.key_cert_sign) {
    detail = describeMember(*e.ca) + " has keyUsage without keyCertSign; reissue it with keyCertSign (and cRLSign)";
  }
  return agentResult("key_cert_sign", ca.key_cert_sign, std::move(detail));
}

// Everything published in cert-chain plus the anchoring root(s).
CheckOutcome validityWindowCheck(const Evaluation& e, const ValidationOptions& o, const MaterialNames& n) {
  if (!e.ca) return std::nullopt;
  std::vector<const Member*> timed = {&*e.ca};
  for (const Member& x : e.extras) timed.push_back(&x);
  for (const Member& x : e.chain) timed.push_back(&x);
  for (const Member& r : e.roots) {
    if (!e.pathVerified() || r.cert.sameAs(e.path().back())) timed.push_back(&r);
  }
  for (const Member* x : timed) {
    const CertInfo& info = x->cert.info();
    if (o.now < info.not_before) {
      return result("validity_window", false,
                    describeMember(*x) + " is not valid before " + formatTime(info.not_before) + " (now " +
                        formatTime(o.now) + "); check the clock of this node and of the issuer");
    }
    if (o.now > info.not_after) {
      return result("validity_window", false,
                    describeMember(*x) + " expired at " + formatTime(info.not_after) + " (now " + formatTime(o.now) +
                        "); renew it in Vault");
    }
  }
  const CertInfo& ca = e.ca->cert.info();
  return result("validity_window", true,
                n.cert + " valid from " + formatTime(ca.not_before) + " until " + formatTime(ca.not_after));
}

// The signing capability ends when the first certificate on the path expires.
CheckOutcome minRemainingLifetimeCheck(const Evaluation& e, const ValidationOptions& o) {
  if (!e.ca) return std::nullopt;
  std::string limiting_role = e.ca->role;
  const CertInfo* limiting = &e.ca->cert.info();
  if (e.pathVerified()) {
    for (const Certificate& c : e.path()) {
      if (c.info().not_after < limiting->not_after) {
        limiting_role = e.roleOf(c);
        limiting = &c.info();
      }
    }
  }
  const Duration remaining = std::chrono::duration_cast<Duration>(limiting->not_after - o.now);
  const bool enough = remaining >= o.min_remaining;
  std::string detail = limiting_role + " (" + quoted(*limiting) + ") expires at " + formatTime(limiting->not_after);
  detail += remaining.count() < 0 ? ", " + describeDuration(-remaining) + " ago" : ", in " + describeDuration(remaining);
  if (!enough) {
    detail += ", less than the required remaining lifetime of " + describeDuration(o.min_remaining) +
              " (--min-remaining); renew the CA material (or lower --min-remaining)";
  }
  return agentResult("min_remaining_lifetime", enough, std::move(detail));
}

CheckOutcome ekuAllowsServerAuthCheck(const Evaluation& e) {
  const std::vector<const Member*> everyone = e.allMembers();
  if (everyone.empty()) return std::nullopt;
  for (const Member* x : everyone) {
    if (!ekuAllowsServerAuth(x->cert.info())) {
      const std::string found = describeMember(*x) + " has extended key usage [" +
                                joinList(x->cert.info().ext_key_usages) + "] without serverAuth or anyExtendedKeyUsage";
      // istiod's x509.Verify judges the path it builds; a certificate off the verified path
      // is refused by this agent only.
      if (e.pathVerified() && !e.onPath(x->cert)) {
        return agentResult("eku_allows_server_auth", false,
                           found + "; it is not on the verified path, so istiod would not notice — reissue it "
                                   "without an EKU extension or remove it");
      }
      return result("eku_allows_server_auth", false,
                    found + "; istiod verifies the chain for serverAuth and rejects it — reissue the certificate "
                            "without an EKU extension");
    }
  }
  return result("eku_allows_server_auth", true, "no certificate restricts extended key usage against serverAuth");
}

CheckOutcome signatureAlgorithmAcceptedCheck(const Evaluation& e) {
  if (!e.ca) return std::nullopt;
  for (const Member* x : e.allMembers()) {
    // Go does not check the signature of a self-signed root; everything below it must be
    // signed with a digest it accepts.
    const CertInfo& info = x->cert.info();
    if (!info.self_signed && weakDigest(info.signature_digest)) {
      const std::string found = describeMember(*x) + " is signed with " + info.signature_algorithm;
      if (e.pathVerified() && !e.onPath(x->cert)) {
        return agentResult("signature_algorithm_accepted", false,
                           found + "; it is not on the verified path, so istiod would not notice — reissue it "
                                   "with SHA-256 or remove it");
      }
      return result("signature_algorithm_accepted", false,
                    found + "; istiod (Go) rejects SHA-1/MD5 signatures — reissue it with SHA-256");
    }
  }
  return result("signature_algorithm_accepted", true, e.ca->cert.info().signature_algorithm);
}

// Why `r` cannot be a root, or empty when it can. A root need not be a CA: istiod (Go)
// trusts any certificate of root-cert.pem as an anchor, v1 roots included.
std::string rootProblem(const Member& r) {
  const CertInfo& info = r.cert.info();
  if (!info.self_signed) return describeMember(r) + " is not self-signed (issuer \"" + info.issuer + "\"); ";
  return {};
}

CheckOutcome rootsSelfSignedCheck(const Evaluation& e, const MaterialNames& n) {
  if (e.roots.empty()) return std::nullopt;
  for (const Member& r : e.roots) {
    std::string problem = rootProblem(r);
    if (problem.empty()) continue;
    problem += e.root_derived ? "no root was given, so provide the root (e.g. --kv-root) or end the chain with it"
                              : n.root + " must hold only self-signed root certificates";
    return agentResult("roots_self_signed", false, std::move(problem));
  }
  return agentResult("roots_self_signed", true, std::to_string(e.roots.size()) + " self-signed root(s)");
}

CheckOutcome chainVerifiesToRootCheck(const Evaluation& e, const MaterialNames& n) {
  if (!e.verified) return std::nullopt;
  if (!e.pathVerified()) {
    std::string detail =
        n.cert + " does not verify through " + n.chain + " to " + n.root + ": " + e.verified->error().message;
    // The trap istiod falls into silently: an intermediate present only after the first
    // certificate of ca-cert, where istiod never looks.
    std::string only_in_cert;
    for (const Member& x : e.ignored) {
      const bool in_chain =
          std::any_of(e.chain.begin(), e.chain.end(), [&](const Member& c) { return c.cert.sameAs(x.cert); });
      if (!in_chain) only_in_cert += (only_in_cert.empty() ? "" : ", ") + describeMember(x);
    }
    if (!only_in_cert.empty()) {
      detail += "; istiod builds its verification pool from " + n.chain + " only and reads only the first "
                "certificate of " + n.cert + ", so " + only_in_cert + " is never used — add it to " + n.chain;
    }
    return result("chain_verifies_to_root", false, std::move(detail));
  }
  std::string path;
  for (const Certificate& c : e.path()) path += (path.empty() ? "" : " -> ") + quoted(c.info());
  return result("chain_verifies_to_root", true, std::move(path));
}

CheckOutcome chainStartsWithCaCertCheck(const Evaluation& e, const MaterialNames& n) {
  if (!e.ca || !e.chain_parsed) return std::nullopt;
  const bool starts = e.chain.front().cert.sameAs(e.ca->cert);
  return agentResult("chain_starts_with_ca_cert", starts,
                starts ? n.chain + " starts with " + n.cert
                       : n.chain + " starts with " + quoted(e.chain.front().cert.info()) + " instead of " + n.cert +
                             " (" + quoted(e.ca->cert.info()) +
                             "); istiod accepts any order but caps workload certificate lifetimes at the first chain "
                             "certificate's NotAfter; this agent would publish " + n.cert +
                             " first, then the intermediates towards the root");
}

// The certificates istiod asks CRLs of: cert-chain as given, or (assembly, or no chain
// given) the chain that would be published. Go keys them by subject, so of several
// certificates with one subject only the last is asked for.
std::vector<const Certificate*> crlSigners(const Evaluation& e) {
  std::vector<const Certificate*> signers;
  auto add = [&](const Certificate& c) {
    auto same_subject = [&](const Certificate* s) { return s->info().subject == c.info().subject; };
    signers.erase(std::remove_if(signers.begin(), signers.end(), same_subject), signers.end());
    signers.push_back(&c);
  };
  if (e.istiod_view && e.chain_parsed) {
    for (const Member& m : e.chain) add(m.cert);
  } else if (e.pathVerified()) {
    for (const Certificate& c : e.path()) add(c);
  }
  return signers;
}

CheckOutcome crlCoversChainCheck(const Evaluation& e, const ValidationOptions& o, const MaterialNames& n) {
  if (!e.crl_given || o.istio_minor < 27) return std::nullopt;
  if (!*e.crls) {
    return result("crl_covers_chain", false,
                  e.crls->error().message + "; istiod 1.27+ parses every PEM block of " + n.crl +
                      " as a CRL and refuses the whole set (\"failed to parse CRL PEM\")");
  }
  const std::vector<const Certificate*> signers = crlSigners(e);
  if (signers.empty()) return std::nullopt;  // no chain to judge: its own check says why
  std::string missing;
  for (const Certificate* s : signers) {
    const bool covered =
        std::any_of((*e.crls)->begin(), (*e.crls)->end(), [&](const Crl& crl) { return crlSignedBy(crl, *s); });
    if (!covered) missing += (missing.empty() ? "" : ", ") + quoted(s->info());
  }
  if (!missing.empty()) {
    return result("crl_covers_chain", false,
                  n.crl + " has no CRL signed by " + missing + " (istiod: \"missing CRL signed by certificates\"); " +
                      "add a CRL issued by each certificate of " + n.chain +
                      " (a signer needs basicConstraints CA:TRUE and, with keyUsage, cRLSign), or remove " + n.crl);
  }
  return result("crl_covers_chain", true,
                std::to_string((*e.crls)->size()) + " CRL(s) cover the " + std::to_string(signers.size()) +
                    " certificate(s) of " + n.chain);
}

CheckOutcome crlCurrentCheck(const Evaluation& e, const ValidationOptions& o, const MaterialNames& n) {
  if (!e.crl_given || !e.crls || !*e.crls) return std::nullopt;
  for (std::size_t i = 0; i < (*e.crls)->size(); ++i) {
    const CrlInfo& c = (**e.crls)[i].info();
    const std::string which = n.crl + " CRL " + std::to_string(i + 1) + " (issuer \"" + c.issuer + "\")";
    if (o.now < c.this_update) {
      return agentResult("crl_current", false,
                         which + " is not valid before " + formatTime(c.this_update) + " (now " + formatTime(o.now) +
                             "); check the clocks of this node and of the CRL issuer");
    }
    if (c.next_update && o.now > *c.next_update) {
      return agentResult("crl_current", false,
                         which + " expired at " + formatTime(*c.next_update) + " (nextUpdate; now " +
                             formatTime(o.now) + "); Envoy then rejects every peer certificate of that chain, "
                             "revoked or not: publish a fresh CRL");
    }
  }
  return agentResult("crl_current", true, std::to_string((*e.crls)->size()) + " CRL(s) inside their update window");
}

void verifyPath(Evaluation& e, const ValidationOptions& o) {
  if (!e.ca || e.roots.empty()) return;
  std::vector<Certificate> intermediates;
  for (const Member& x : e.extras) intermediates.push_back(x.cert);
  for (const Member& x : e.chain) intermediates.push_back(x.cert);
  std::vector<Certificate> anchors;
  for (const Member& r : e.roots) anchors.push_back(r.cert);
  e.verified = verifyChain(e.ca->cert, intermediates, anchors, o.now);
}

void runChecks(const CaMaterial& m, const ValidationOptions& o, Evaluation& e) {
  const MaterialNames& n = m.names;
  verifyPath(e, o);
  const CheckOutcome outcomes[] = {
      keyTypeSupportedCheck(e),           keyMatchesCertCheck(e, n),       caBasicConstraintsCheck(e),
      keyCertSignCheck(e),                validityWindowCheck(e, o, n),    minRemainingLifetimeCheck(e, o),
      ekuAllowsServerAuthCheck(e),        signatureAlgorithmAcceptedCheck(e), rootsSelfSignedCheck(e, n),
      chainVerifiesToRootCheck(e, n),     chainStartsWithCaCertCheck(e, n),   crlCoversChainCheck(e, o, n),
      crlCurrentCheck(e, o, n),
  };
  for (const CheckOutcome& outcome : outcomes) {
    if (outcome) e.report.checks.push_back(*outcome);
  }
}

Evaluation evaluate(const CaMaterial& m, const ValidationOptions& o, bool istiod_view) {
  Evaluation e;
  e.istiod_view = istiod_view;
  parseInputs(m, e);
  // istiod reads the CRL file when it has any bytes at all, whitespace included.
  e.crl_given = !m.crl_pem.empty();
  if (e.crl_given) e.crls = parseCrls(m.crl_pem, m.names.crl);
  runChecks(m, o, e);
  if (e.ca) e.report.ca_cert = e.ca->cert.info();
  if (e.chain_parsed) {
    for (const Member& x : e.chain) e.report.chain.push_back(x.cert.info());
  } else if (!e.chain_given && e.pathVerified()) {
    for (const Certificate& c : e.path()) e.report.chain.push_back(c.info());
  }
  for (const Member& r : e.roots) e.report.roots.push_back(r.cert.info());
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

const CheckResult* BundleReport::firstFailure(Policy policy) const {
  for (const CheckResult& c : checks) {
    if (!c.ok && c.policy == policy) return &c;
  }
  return nullptr;
}

const std::vector<std::string>& agentPolicyNames() {
  static const std::vector<std::string> kNames = {
      "key_type_supported",         "key_cert_sign",     "min_remaining_lifetime",    "eku_allows_server_auth",
      "signature_algorithm_accepted", "roots_self_signed", "chain_starts_with_ca_cert", "crl_current"};
  return kNames;
}

BundleReport inspectBundle(const CaMaterial& m, const ValidationOptions& o) {
  return evaluate(m, o, /*istiod_view=*/true).report;
}

std::string_view toString(Policy p) { return p == Policy::kAgent ? "agent" : "istiod"; }

bool BundleReport::istiodWouldLoad() const {
  return std::none_of(checks.begin(), checks.end(), [](const CheckResult& c) { return !c.ok && c.policy == Policy::kIstiod; });
}

Result<ValidatedBundle> assembleAndValidate(const CaMaterial& m, const ValidationOptions& o) {
  Evaluation e = evaluate(m, o, /*istiod_view=*/false);
  for (const CheckResult& c : e.report.checks) {
    // Assembly repairs the chain order, so a given chain that does not start with ca-cert
    // is not a reason to refuse.
    if (c.ok || c.name == "chain_starts_with_ca_cert") continue;
    const bool relaxed = c.policy == Policy::kAgent &&
                         std::find(o.relaxed.begin(), o.relaxed.end(), c.name) != o.relaxed.end();
    if (relaxed) continue;
    std::string message = "check " + c.name + " failed: " + c.detail;
    if (c.policy == Policy::kAgent) message += " (--relax-policy " + c.name + " accepts it)";
    return Error{ErrorCode::kValidation, std::move(message)};
  }
  if (!e.ca || !e.key || !e.pathVerified()) {
    return Error{ErrorCode::kInternal, "CA bundle validation ended without a verified path"};
  }
  ValidatedBundle out{e.path(), {}, *e.key, m.key_pem, {}, {}};
  for (const Member& r : e.roots) out.roots.push_back(r.cert);
  if (e.crls && *e.crls) out.crls = **e.crls;
  return out;
}

Result<ValidatedBundle> withRootFile(ValidatedBundle bundle, std::string root_file, SystemTime now) {
  ASSIGN_OR_RETURN(std::vector<Certificate> given, parseCertificates(root_file, "root-cert"));
  std::vector<Certificate> roots;
  for (Certificate& c : given) {
    const Member member{"root-cert certificate " + std::to_string(roots.size() + 1), c};
    if (std::string problem = rootProblem(member); !problem.empty()) {
      return Error{ErrorCode::kValidation, "check roots_self_signed failed: " + problem +
                                               "root-cert must hold only self-signed root certificates"};
    }
    const bool seen = std::any_of(roots.begin(), roots.end(), [&](const Certificate& r) { return r.sameAs(c); });
    if (!seen) roots.push_back(std::move(c));
  }
  const bool anchored =
      std::any_of(roots.begin(), roots.end(), [&](const Certificate& r) { return r.sameAs(bundle.anchor()); });
  if (!anchored) {
    return Error{ErrorCode::kValidation, "check chain_verifies_to_root failed: root-cert does not contain " +
                                             quoted(bundle.anchor().info()) + ", the root ca-cert chains to"};
  }
  for (const Certificate& c : bundle.path) {
    if (now < c.info().not_before || now > c.info().not_after) {
      return Error{ErrorCode::kValidation, "check validity_window failed: " + quoted(c.info()) +
                                               " is not valid at " + formatTime(now)};
    }
  }
  bundle.roots = std::move(roots);
  bundle.root_file = std::move(root_file);
  return bundle;
}

}  // namespace cacerts
