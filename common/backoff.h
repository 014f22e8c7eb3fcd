// Exponential backoff with full jitter, as a pure function so callers and tests pass the
// randomness in.
#pragma once

#include <algorithm>
#include <cmath>

#include "common/clock.h"

namespace cacerts {

// attempt counts from 0. Returns a wait uniform in [floor, min(max, initial * 2^attempt)),
// where u in [0,1) supplies the randomness and floor (a tenth of initial) keeps retries from
// hammering a struggling server with zero-delay bursts.
inline Duration backoffDelay(int attempt, Duration initial, Duration max, double u) {
  const double ceiling = std::min(static_cast<double>(max.count()),
                                  static_cast<double>(initial.count()) * std::pow(2.0, std::min(attempt, 30)));
  const double floor = static_cast<double>(initial.count()) / 10.0;
  const double wait = std::max(floor, ceiling * std::clamp(u, 0.0, 1.0));
  return Duration(static_cast<Duration::rep>(wait));
}

}  // namespace cacerts
