#include "agent/root_policy.h"

#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace cacerts {
namespace {

constexpr std::string_view kBeginCertificate = "-----BEGIN CERTIFICATE-----";

bool contains(const std::vector<Certificate>& list, const Certificate& c) {
  return std::any_of(list.begin(), list.end(), [&](const Certificate& x) { return x.sameAs(c); });
}

bool expiredAt(const Certificate& c, SystemTime now) { return c.info().not_after <= now; }

std::string fingerprint(const Certificate& c) { return c.info().sha256_fingerprint; }

// Same certificates, ignoring order and duplicates.
bool sameSet(const std::vector<Certificate>& a, const std::vector<Certificate>& b) {
  return std::all_of(a.begin(), a.end(), [&](const Certificate& c) { return contains(b, c); }) &&
         std::all_of(b.begin(), b.end(), [&](const Certificate& c) { return contains(a, c); });
}

std::int64_t toMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

RootDecision keep(const RootInputs& in, std::string note = "") {
  RootDecision d;
  d.action = RootAction::kKeepCurrent;
  d.state = in.state;
  d.note = std::move(note);
  return d;
}

RootDecision publish(RootAction action, std::string roots_pem, RootState state, std::string note = "") {
  RootDecision d;
  d.action = action;
  d.roots_pem = std::move(roots_pem);
  d.state = std::move(state);
  d.note = std::move(note);
  return d;
}

// Nothing usable is published (first start, or the published material expired or is
// invalid): the candidate goes out. The old root bytes stay when they still anchor it and
// either match Vault's set or root changes are not allowed; otherwise Vault's set is all
// there is (a running istiod without ISTIO_MULTIROOT_MESH needs a restart to take it).
RootDecision replaceUnusable(const RootInputs& in, const RootPolicy& policy) {
  if (!in.candidate_anchor) return keep(in, "nothing usable is published and there is no candidate");
  const std::vector<Certificate> vault = in.vault.value_or(std::vector<Certificate>{*in.candidate_anchor});
  if (in.published.empty()) return publish(RootAction::kPublishCandidate, toPem(vault), RootState{});
  const bool anchored = contains(in.published, *in.candidate_anchor);
  if (anchored && (!policy.multiroot || sameSet(vault, in.published))) {
    return publish(RootAction::kPublishCandidate, in.published_pem, RootState{});
  }
  return publish(RootAction::kPublishCandidate, toPem(vault), RootState{},
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
    RootDecision d = publish(RootAction::kPublishCandidate, in.published_pem, in.state, differs ? why : "");
    d.blocked = differs;
    return d;
  }
  if (in.candidate_anchor) {
    RootDecision d = keep(in, "the new intermediate chains to a root that is not published; " + why +
                                  "; keeping the current intermediate");
    d.blocked = true;
    return d;
  }
  RootDecision d = keep(in, differs ? why : "");
  d.blocked = differs;
  return d;
}

}  // namespace

std::string_view toString(RootPhase phase) {
  switch (phase) {
    case RootPhase::kNone: return "none";
    case RootPhase::kPropagating: return "propagating";
    case RootPhase::kSwitched: return "switched";
    case RootPhase::kRetired: return "retired";
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

std::string encodeRootState(const RootState& state) {
  nlohmann::json j = {{"version", 1},
                      {"phase", static_cast<int>(state.phase)},
                      {"since_ms", toMillis(state.since)},
                      {"new_roots", state.new_roots}};
  return j.dump() + "\n";
}

Result<RootState> decodeRootState(std::string_view text) {
  const auto bad = [] {
    return Error{ErrorCode::kValidation, std::string(kRootStateFile) + " is not a root rotation state this agent wrote"};
  };
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad();
  const auto phase = j.find("phase");
  const auto since = j.find("since_ms");
  const auto roots = j.find("new_roots");
  if (j.value("version", 0) != 1 || phase == j.end() || !phase->is_number_integer() || since == j.end() ||
      !since->is_number_integer() || roots == j.end() || !roots->is_array()) {
    return bad();
  }
  const int p = phase->get<int>();
  if (p < 0 || p > 3) return bad();
  RootState s;
  s.phase = static_cast<RootPhase>(p);
  s.since = SystemTime(std::chrono::milliseconds(since->get<std::int64_t>()));
  for (const auto& r : *roots) {
    if (!r.is_string()) return bad();
    s.new_roots.push_back(r.get<std::string>());
  }
  return s;
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

RootDecision decideRoots(const RootInputs& in, const RootPolicy& policy) {
  if (in.published.empty() || !in.current_anchor) return replaceUnusable(in, policy);

  // Roots Vault trusts that are not published yet, in Vault's order.
  std::vector<Certificate> added;
  if (in.vault) {
    for (const auto& v : *in.vault) {
      if (!contains(in.published, v) && !contains(added, v) && !expiredAt(v, in.now)) added.push_back(v);
    }
  }
  if (!policy.multiroot) return withoutMultiroot(in, added);

  const RootState& st = in.state;
  const SystemTime propagated_at = st.since + policy.propagation;
  const auto propagated = [&](const Certificate& c) {
    if (st.phase != RootPhase::kPropagating || in.now >= propagated_at) return true;
    return std::find(st.new_roots.begin(), st.new_roots.end(), fingerprint(c)) == st.new_roots.end();
  };
  const bool candidate_trusted =
      in.candidate_anchor && contains(in.published, *in.candidate_anchor) && propagated(*in.candidate_anchor);

  if (!added.empty()) {
    // Phase 1 (again, if more roots arrive meanwhile: the clock restarts for all of them).
    RootState next;
    next.phase = RootPhase::kPropagating;
    next.since = in.now;
    if (st.phase == RootPhase::kPropagating) next.new_roots = st.new_roots;
    for (const auto& a : added) next.new_roots.push_back(fingerprint(a));
    RootDecision d = publish(candidate_trusted ? RootAction::kPublishCandidate : RootAction::kPublishCurrent,
                             appendRoots(in.published_pem, added), std::move(next),
                             std::to_string(added.size()) +
                                 " new root(s) in Vault: publishing old and new roots; the intermediate switches "
                                 "after --root-propagation");
    d.candidate_deferred = in.candidate_anchor.has_value() && !candidate_trusted;
    d.wake = in.now + policy.propagation;
    return d;
  }

  if (st.phase == RootPhase::kPropagating) {
    if (in.now < propagated_at) {
      RootDecision d = candidate_trusted
                           ? publish(RootAction::kPublishCandidate, in.published_pem, st)
                           : keep(in, in.candidate_anchor ? "the new intermediate chains to a root that is still "
                                                            "propagating; keeping the current one until "
                                                            "--root-propagation has passed"
                                                          : "");
      d.candidate_deferred = in.candidate_anchor.has_value() && !candidate_trusted;
      d.wake = propagated_at;
      return d;
    }
    if (in.candidate_anchor && contains(in.published, *in.candidate_anchor)) {
      RootState next;
      next.phase = RootPhase::kSwitched;
      next.since = in.now;
      RootDecision d = publish(RootAction::kPublishCandidate, in.published_pem, std::move(next),
                               "new roots propagated: switching to the next intermediate");
      d.wake = in.now + policy.retire;
      return d;
    }
    RootDecision d = keep(in, in.candidate_anchor ? "the new intermediate chains to a root that is not published"
                                                  : "");
    d.needs_candidate = !in.candidate_anchor.has_value();
    return d;
  }

  // Phases none, switched and retired: at most drop roots from the front.
  if (in.candidate_anchor && !contains(in.published, *in.candidate_anchor)) {
    return keep(in, "the new intermediate chains to a root that is not published");
  }
  const bool use_candidate = in.candidate_anchor.has_value();
  const Certificate& anchor = use_candidate ? *in.candidate_anchor : *in.current_anchor;
  const bool retire_due = st.phase == RootPhase::kSwitched && in.now >= st.since + policy.retire;
  std::size_t drop = 0;
  while (drop + 1 < in.published.size()) {
    const Certificate& r = in.published[drop];
    if (r.sameAs(anchor)) break;
    const bool gone_from_vault = retire_due && in.vault && !contains(*in.vault, r);
    if (!expiredAt(r, in.now) && !gone_from_vault) break;
    ++drop;
  }
  RootState next = st;
  std::string note;
  if (drop > 0 && retire_due) {
    next.phase = RootPhase::kRetired;
    next.since = in.now;
    next.new_roots.clear();
    note = "dropping " + std::to_string(drop) + " old root(s) from the front of the root bundle";
  } else if (drop > 0) {
    note = "dropping " + std::to_string(drop) + " expired root(s) from the front of the root bundle";
  }
  const std::string roots = drop > 0 ? dropLeadingRoots(in.published_pem, drop) : in.published_pem;
  RootDecision d;
  if (use_candidate) {
    d = publish(RootAction::kPublishCandidate, roots, std::move(next), std::move(note));
  } else if (drop > 0) {
    d = publish(RootAction::kPublishCurrent, roots, std::move(next), std::move(note));
  } else {
    d = keep(in);
  }
  if (st.phase == RootPhase::kSwitched && d.state.phase == RootPhase::kSwitched && !retire_due) {
    d.wake = st.since + policy.retire;
  }
  return d;
}

}  // namespace cacerts
