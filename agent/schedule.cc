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

Duration backoffDelay(int attempt, const BackoffPolicy& policy, double u) {
  const double initial = static_cast<double>(std::max<Duration::rep>(policy.initial.count(), 0));
  const double max = static_cast<double>(std::max<Duration::rep>(policy.max.count(), 0));
  // 2^1023 is the largest finite power; the product may become +inf, which min() absorbs.
  const double growth = std::ldexp(1.0, std::clamp(attempt, 0, 1023));
  const double ceiling = std::min(max, initial * growth);
  const double unit = std::min(clampUnit(u), std::nextafter(1.0, 0.0));
  const auto wait = Duration(static_cast<Duration::rep>(std::floor(unit * ceiling)));
  return std::max(wait, kMinBackoffDelay);
}

Duration capWait(Duration wait, SystemTime now, SystemTime deadline) {
  if (deadline <= now) return Duration::zero();
  if (wait <= Duration::zero()) return Duration::zero();
  // Truncation rounds toward zero, so the capped wait ends at or before the deadline.
  const Duration remaining = std::chrono::duration_cast<Duration>(deadline - now);
  return std::min(wait, remaining);
}

}  // namespace cacerts
