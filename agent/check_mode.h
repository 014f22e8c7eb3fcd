// check: report whether istiod would accept a cacerts directory, as text or JSON.
#pragma once

#include "agent/config.h"
#include "common/clock.h"

namespace cacerts {

// Exit 0 only when istiod would accept the directory; 5 when a check fails or files are
// missing; 6 when the directory cannot be read.
int runCheck(const Config& config, Clock& clock);

}  // namespace cacerts
