// Scheduling math for the sidecar: when to renew, how long to back off after a failure,
// and how to keep a wait from sleeping past a deadline. Pure functions: the caller passes
// the times and the randomness in (u from Random::uniform01()), so every decision is
// reproducible in a unit test.
#pragma once

#include <chrono>

#include "agent/defaults.h"
#include "common/backoff.h"
#include "common/clock.h"

namespace cacerts {

struct RenewalPolicy {
  // Outage budget: renew at least this long before not_after.
  Duration renew_before = defaults::kRenewBefore;
  // ...and no later than this fraction of the lifetime (clamped to [0, 1]).
  double renew_fraction = defaults::kRenewFraction;
  // Up to this fraction of the lifetime (clamped to [0, 1]) is subtracted at random, so
  // replicas do not renew at the same instant.
  double jitter = defaults::kJitter;
};

// The time to renew a certificate valid from not_before to not_after:
//
//   min(not_after - renew_before, not_before + renew_fraction * lifetime)
//     - u * jitter * lifetime,            never earlier than not_before.
//
// u is clamped to [0, 1]. Edge cases:
//  * lifetime not longer than renew_before (e.g. a 1h intermediate with the 7d default):
//    the margin rule would point at or before not_before and renew continuously, so it is
//    ignored and the fraction rule alone applies. Just above that length the margin rule
//    wins (an 8d certificate renews after 1d): that is the outage budget working as asked.
//  * already due (the result is <= the caller's now): the caller renews at once; the
//    function never looks at the current time.
//  * not_after <= not_before (empty or inverted validity): returns not_before.
// Arithmetic is in milliseconds relative to not_before, so huge policy values cannot
// overflow.
SystemTime renewalTime(SystemTime not_before, SystemTime not_after, const RenewalPolicy& policy,
                       double u);

// Caps a wait so that it never sleeps past deadline (e.g. the current certificate's
// expiry): min(wait, deadline - now), rounded down to whole milliseconds, never negative.
// Returns zero when the deadline has passed.
Duration capWait(Duration wait, SystemTime now, SystemTime deadline);

}  // namespace cacerts
