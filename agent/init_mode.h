// init: fetch from Vault, validate as istiod will, publish atomically, exit.
#pragma once

#include "agent/config.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/result.h"

namespace cacerts {

// Returns the process exit code (0 published; see README "Exit codes"). Logs the outcome.
int runInit(const Config& config, Clock& clock, Random& random);

}  // namespace cacerts
