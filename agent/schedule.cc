#include "agent/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace cacerts {
namespace {

double clampUnit(double v) {
  if (!(v >= 0.0)) return 0.0;  // also catches NaN
  return std::min(v, 1.0);
}

}  // namespace

SystemTime renewalTime(SystemTime not_before, SystemTime not_after, const RenewalPolicy& policy,
                       double u) {
  if (not_after <= not_before) return not_before;
  const std::int64_t lifetime = std::chrono::duration_cast<Duration>(not_after - not_before).count();
  if (lifetime <= 0) return not_before;
  const double life = static_cast<double>(lifetime);

  // Offsets from not_before, all within [0, lifetime].
  std::int64_t offset = std::llround(clampUnit(policy.renew_fraction) * life);
  const std::int64_t renew_before = std::max<std::int64_t>(policy.renew_before.count(), 0);
  if (renew_before < lifetime) offset = std::min(offset, lifetime - renew_before);
  const std::int64_t jitter = std::llround(clampUnit(policy.jitter) * clampUnit(u) * life);
  offset = std::max<std::int64_t>(offset - jitter, 0);
  return not_before + Duration(offset);
}

Duration capWait(Duration wait, SystemTime now, SystemTime deadline) {
  if (deadline <= now) return Duration::zero();
  if (wait <= Duration::zero()) return Duration::zero();
  // Truncation rounds toward zero, so the capped wait ends at or before the deadline.
  const Duration remaining = std::chrono::duration_cast<Duration>(deadline - now);
  return std::min(wait, remaining);
}

}  // namespace cacerts
