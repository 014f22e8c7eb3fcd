#include "agent/root_policy.h"

#include <algorithm>

namespace cacerts {
namespace {

constexpr std::string_view kBeginCertificate = "-----BEGIN CERTIFICATE-----";

bool contains(const std::vector<Certificate>& list, const Certificate& c) {
  return std::any_of(list.begin(), list.end(), [&](const Certificate& x) { return x.sameAs(c); });
}

bool expiredAt(const Certificate& c, SystemTime now) { return c.info().not_after <= now; }

// Same certificates, ignoring order and duplicates.
bool sameSet(const std::vector<Certificate>& a, const std::vector<Certificate>& b) {
  return std::all_of(a.begin(), a.end(), [&](const Certificate& c) { return contains(b, c); }) &&
         std::all_of(b.begin(), b.end(), [&](const Certificate& c) { return contains(a, c); });
}

RootDecision keep(std::string note = "") {
  RootDecision d;
  d.action = RootAction::kKeepCurrent;
  d.note = std::move(note);
  return d;
}

RootDecision publish(RootAction action, std::string roots_pem, std::string note = "") {
  RootDecision d;
  d.action = action;
  d.roots_pem = std::move(roots_pem);
  d.note = std::move(note);
  return d;
}

// Nothing usable is published (first start, or the published material expired or is
// invalid): the candidate goes out. The old root bytes stay when they still anchor it and
// either match Vault's set or root changes are not allowed; otherwise Vault's set is all
// there is (a running istiod without ISTIO_MULTIROOT_MESH needs a restart to take it).
RootDecision replaceUnusable(const RootInputs& in, const RootPolicy& policy) {
  if (!in.candidate_anchor) return keep("nothing usable is published and there is no candidate");
  const std::vector<Certificate> vault = in.vault.value_or(std::vector<Certificate>{*in.candidate_anchor});
  if (in.published.empty()) return publish(RootAction::kPublishCandidate, toPem(vault));
  const bool anchored = contains(in.published, *in.candidate_anchor);
  if (anchored && (!policy.multiroot || sameSet(vault, in.published))) {
    return publish(RootAction::kPublishCandidate, in.published_pem);
  }
  return publish(RootAction::kPublishCandidate, toPem(vault),
                 "the published CA is unusable and its roots do not anchor the replacement: publishing Vault's "
                 "roots (istiod without ISTIO_MULTIROOT_MESH=true needs a restart to take them)");
}

RootDecision withoutMultiroot(const RootInputs& in, const std::vector<Certificate>& added) {
  bool differs = !added.empty();
  if (in.vault) {
    for (const auto& p : in.published) differs = differs || !contains(*in.vault, p);
  }
  const std::string why =
      "Vault's trusted roots differ from the published root-cert.pem; changing them needs --istiod-multiroot=true "
      "with ISTIO_MULTIROOT_MESH=true on istiod, or an istiod restart";
  if (in.candidate_anchor && contains(in.published, *in.candidate_anchor)) {
    RootDecision d = publish(RootAction::kPublishCandidate, in.published_pem, differs ? why : "");
    d.blocked = differs;
    return d;
  }
  if (in.candidate_anchor) {
    RootDecision d =
        keep("the new intermediate chains to a root that is not published; " + why + "; keeping the current intermediate");
    d.blocked = true;
    return d;
  }
  RootDecision d = keep(differs ? why : "");
  d.blocked = differs;
  return d;
}

// A candidate whose root another replica may not trust yet waits: unless the source
// planned its signer, a root signs once it is older than --root-propagation, or at once
// when it is the oldest root there is or already signs the published intermediate.
std::optional<SystemTime> candidateReadyAt(const RootInputs& in, const std::vector<Certificate>& file,
                                           const RootPolicy& policy) {
  if (in.schedule || !in.candidate_anchor) return std::nullopt;
  const Certificate& anchor = *in.candidate_anchor;
  if (in.current_anchor && in.current_anchor->sameAs(anchor)) return std::nullopt;
  if (!file.empty() && file.front().sameAs(anchor)) return std::nullopt;
  const SystemTime ready = anchor.info().not_before + policy.propagation;
  if (ready <= in.now) return std::nullopt;
  return ready;
}

RootDecision decideRootsUnphased(const RootInputs& in, const RootPolicy& policy) {
  if (in.published.empty() || !in.current_anchor) return replaceUnusable(in, policy);

  // Roots the source trusts that are not published yet, in its order.
  std::vector<Certificate> added;
  if (in.vault) {
    for (const auto& v : *in.vault) {
      if (!contains(in.published, v) && !contains(added, v) && !expiredAt(v, in.now)) added.push_back(v);
    }
  }
  if (!policy.multiroot) return withoutMultiroot(in, added);

  std::vector<Certificate> file = in.published;
  file.insert(file.end(), added.begin(), added.end());
  if (in.candidate_anchor && !contains(file, *in.candidate_anchor)) {
    return keep("the new intermediate chains to a root that the source does not trust");
  }
  const std::optional<SystemTime> ready_at = candidateReadyAt(in, file, policy);
  const bool use_candidate = in.candidate_anchor.has_value() && !ready_at;
  const Certificate& anchor = use_candidate ? *in.candidate_anchor : *in.current_anchor;

  // When the signing root took over: as the source's plan says, or by the root's age when
  // the plan has it signing from the start although an older root is published before it
  // (a plan made after the older root left Vault no longer knows about it).
  SystemTime signing_since = in.schedule ? in.schedule->signing_since : SystemTime::min();
  if (signing_since == SystemTime::min() && !file.front().sameAs(anchor)) {
    signing_since = anchor.info().not_before + policy.propagation;
  }
  const bool retire_due = signing_since <= SystemTime::max() - policy.retire && in.now >= signing_since + policy.retire;
  std::size_t drop = 0;
  std::optional<SystemTime> retire_wake;
  while (drop < in.published.size() && drop + 1 < file.size()) {
    const Certificate& r = in.published[drop];
    if (r.sameAs(anchor)) break;
    const bool gone = in.vault && !contains(*in.vault, r);
    if (!expiredAt(r, in.now) && !(gone && retire_due)) {
      if (gone) retire_wake = signing_since + policy.retire;
      break;
    }
    ++drop;
  }
  std::string roots_pem = appendRoots(drop > 0 ? dropLeadingRoots(in.published_pem, drop) : in.published_pem, added);
  if (added.empty() && drop == 0) roots_pem = in.published_pem;

  std::string note;
  if (!added.empty()) {
    note = std::to_string(added.size()) + " new root(s) trusted by the source: appended to the root bundle";
  }
  if (drop > 0) {
    if (!note.empty()) note += "; ";
    note += "dropping " + std::to_string(drop) + " old root(s) from the front of the root bundle";
  }
  RootDecision d;
  if (use_candidate) {
    d = publish(RootAction::kPublishCandidate, std::move(roots_pem), std::move(note));
  } else if (roots_pem != in.published_pem) {
    d = publish(RootAction::kPublishCurrent, std::move(roots_pem), std::move(note));
  } else {
    d = keep(std::move(note));
  }
  if (ready_at) {
    d.candidate_deferred = true;
    d.wake = ready_at;
    d.note += std::string(d.note.empty() ? "" : "; ") +
              "the new intermediate chains to a root younger than --root-propagation; keeping the current one "
              "until " + formatTime(*ready_at);
  }
  if (retire_wake && (!d.wake || *retire_wake < *d.wake)) d.wake = retire_wake;
  return d;
}

}  // namespace

std::string_view toString(RootPhase phase) {
  switch (phase) {
    case RootPhase::kNone: return "none";
    case RootPhase::kPropagating: return "propagating";
    case RootPhase::kSwitched: return "switched";
  }
  return "unknown";
}

std::string_view toString(RootAction action) {
  switch (action) {
    case RootAction::kPublishCandidate: return "publish_candidate";
    case RootAction::kPublishCurrent: return "publish_current";
    case RootAction::kKeepCurrent: return "keep_current";
  }
  return "unknown";
}

std::string appendRoots(std::string_view pem, const std::vector<Certificate>& added) {
  std::string out(pem);
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + toPem(added);
}

std::string dropLeadingRoots(std::string_view pem, std::size_t count) {
  std::size_t at = pem.find(kBeginCertificate);
  for (std::size_t i = 0; i < count && at != std::string_view::npos; ++i) {
    at = pem.find(kBeginCertificate, at + kBeginCertificate.size());
  }
  if (at == std::string_view::npos) return "";
  return std::string(pem.substr(at));
}

RootPhase phaseOf(const std::vector<Certificate>& roots, const Certificate& anchor) {
  const auto at = std::find_if(roots.begin(), roots.end(), [&](const Certificate& r) { return r.sameAs(anchor); });
  if (at == roots.end()) return RootPhase::kNone;
  if (at + 1 != roots.end()) return RootPhase::kPropagating;
  return at != roots.begin() ? RootPhase::kSwitched : RootPhase::kNone;
}

RootDecision decideRoots(const RootInputs& in, const RootPolicy& policy) {
  RootDecision d = decideRootsUnphased(in, policy);
  if (d.action != RootAction::kKeepCurrent) {
    Result<std::vector<Certificate>> roots = parseCertificates(d.roots_pem, "root bundle");
    const std::optional<Certificate>& anchor =
        d.action == RootAction::kPublishCandidate ? in.candidate_anchor : in.current_anchor;
    if (roots && anchor) d.phase = phaseOf(*roots, *anchor);
  } else if (in.current_anchor) {
    d.phase = phaseOf(in.published, *in.current_anchor);
  }
  return d;
}

}  // namespace cacerts
