#include "agent/modes.h"

#include <spdlog/spdlog.h>

#include "agent/check_mode.h"
#include "agent/init_mode.h"
#include "agent/sidecar_mode.h"

namespace cacerts {

int runMode(const Config& config, Clock& clock, Random& random) {
  if (config.command == "init") return runInit(config, clock, random);
  if (config.command == "check") return runCheck(config, clock);
  if (config.command == "sidecar") return runSidecar(config, clock, random);
  if (config.command == "rotate") return runRotate(config);
  spdlog::error("event=unsupported_command command={}", config.command);
  return 2;
}

}  // namespace cacerts
