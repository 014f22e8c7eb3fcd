// Which root signs now: a pure function of the trust set and the clock, so that every
// istiod replica, whether its sidecar has run for weeks or its init started a second ago,
// signs under the same root and switches at the same instant.
//
// The roots are the trust mount's unexpired self-signed issuers, oldest first. A root
// becomes the signing root once it is older (by its notBefore) than --root-propagation;
// until then the previous root keeps signing. The oldest root signs when none is that old
// (a first setup, or a mount whose older roots were deleted). Every replica appends a new
// root within --pki-poll-interval of its creation, so by the time it signs, every replica
// trusts it (--root-propagation must exceed --pki-poll-interval).
#pragma once

#include <cstddef>
#include <vector>

#include "agent/ca_bundle.h"
#include "common/clock.h"
#include "common/x509.h"

namespace cacerts {

struct RootPlan {
  std::size_t signing = 0;  // index into the roots
  RootSchedule schedule;
};

// `roots` oldest first (orderTrustBundle), not empty.
RootPlan planRoots(const std::vector<Certificate>& roots, SystemTime now, Duration propagation);

}  // namespace cacerts
