#include "common/backoff.h"

#include <algorithm>
#include <cmath>

namespace cacerts {

Duration backoffDelay(int attempt, const BackoffPolicy& policy, double u) {
  const double initial = static_cast<double>(std::max<Duration::rep>(policy.initial.count(), 0));
  const double max = static_cast<double>(std::max<Duration::rep>(policy.max.count(), 0));
  // 2^1023 is the largest finite power; the product may become +inf, which min() absorbs.
  const double growth = std::ldexp(1.0, std::clamp(attempt, 0, 1023));
  const double ceiling = std::min(max, initial * growth);
  // !(u >= 0) also catches NaN.
  const double unit = !(u >= 0.0) ? 0.0 : std::min(u, std::nextafter(1.0, 0.0));
  const auto wait = Duration(static_cast<Duration::rep>(std::floor(unit * ceiling)));
  return std::max(wait, kMinBackoffDelay);
}

}  // namespace cacerts
