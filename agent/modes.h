// Dispatch from the chosen subcommand to its mode.
#pragma once

#include "agent/config.h"
#include "common/clock.h"
#include "common/random.h"

namespace cacerts {

// Runs config.command and returns the process exit code.
int runMode(const Config& config, Clock& clock, Random& random);

}  // namespace cacerts
