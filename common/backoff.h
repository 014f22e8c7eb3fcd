// Exponential backoff with full jitter, as a pure function so that callers and tests pass
// the randomness in. Used by Vault request retries and by the sidecar's renewal retries.
#pragma once

#include "common/clock.h"

namespace cacerts {

// No defaults here: each caller states its own (the sidecar's come from its options).
struct BackoffPolicy {
  Duration initial{0};
  Duration max{0};
};

// The smallest delay backoffDelay returns: a retry loop never spins, even with u == 0 or a
// zero initial delay.
inline constexpr Duration kMinBackoffDelay{100};

// Uniform in [0, min(max, initial * 2^attempt)) for attempt counted from 0 (negative counts
// as 0), drawn as u * ceiling with u clamped to [0, 1), then raised to kMinBackoffDelay.
// Growth saturates at max without overflow for any attempt.
Duration backoffDelay(int attempt, const BackoffPolicy& policy, double u);

}  // namespace cacerts
