#include "agent/modes.h"

#include <spdlog/spdlog.h>

#include "agent/check_mode.h"
#include "agent/init_mode.h"

namespace cacerts {

int runMode(const Config& config, Clock& clock, Random& random) {
  if (config.command == "init") return runInit(config, clock, random);
  if (config.command == "check") return runCheck(config, clock);
  spdlog::error("event=unsupported_command command={}", config.command);
  return 2;
}

}  // namespace cacerts
