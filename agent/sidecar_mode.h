// sidecar: runs beside istiod and keeps its CA renewed (issue "sidecar mode"); rotate: asks
// a running sidecar to renew now.
//
// The sidecar wires the Rotator (rotator.h) to Vault, the output directory, istiod's
// metrics and the status server (--listen: /healthz, /readyz, /metrics, POST /rotate), and
// handles signals on a watcher thread (sigwait; the signals are blocked in every thread):
//   SIGHUP           renew now (like `cacerts-agent rotate`)
//   SIGTERM, SIGINT  stop: the loop returns at its next safe point; a loop stuck in a Vault
//                    call is cut off after a short grace period, but never while a
//                    generation is being written (the exit waits for the publish lock).
//
// Vault: one login, cached and reused; before each batch of calls (a renewal or a poll)
// a token close to expiry is renewed (renew-self) or dropped for a fresh login, and
// retries of transient failures are bounded by --timeout. Nothing runs in the background.
#pragma once

#include "agent/config.h"
#include "common/clock.h"
#include "common/random.h"

namespace cacerts {

// Returns the process exit code:
//   0  stopped by SIGTERM or SIGINT
//   2, 3, 4, 5, 6  nothing valid could be published at start (as for init, README "Exit
//      codes"; transient Vault failures are retried for --timeout first)
//   the same codes when the published ca-cert expired with no valid replacement, by the
//      last failure: 4 Vault unreachable/sealed, 3 denied, 5 material rejected or a root
//      change refused (--istiod-multiroot=false), 6 output directory
int runSidecar(const Config& config, Clock& clock, Random& random);

// POST /rotate to the sidecar at --listen. 0 accepted, 4 no sidecar answered, 3 refused,
// 2 a --listen that is not loopback, 1 any other answer.
int runRotate(const Config& config);

}  // namespace cacerts
