#include "agent/root_plan.h"

namespace cacerts {

RootPlan planRoots(const std::vector<Certificate>& roots, SystemTime now, Duration propagation) {
  // The instant root i takes over; the first root signs from the start.
  const auto switchAt = [&](std::size_t i) {
    return i == 0 ? SystemTime::min() : roots[i].info().not_before + propagation;
  };
  RootPlan plan;
  for (std::size_t i = 1; i < roots.size(); ++i) {
    if (switchAt(i) <= now) plan.signing = i;
  }
  plan.schedule.signing_since = switchAt(plan.signing);
  plan.schedule.signing_root = roots[plan.signing].info().sha256_fingerprint;
  // Roots are ordered by notBefore, so the next one to switch is the next in the list.
  if (plan.signing + 1 < roots.size()) plan.schedule.next_switch = switchAt(plan.signing + 1);
  return plan;
}

}  // namespace cacerts
