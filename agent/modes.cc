#include "agent/modes.h"

#include <spdlog/spdlog.h>

#include "agent/check_mode.h"
#include "agent/init_mode.h"
#include "agent/sidecar_mode.h"

namespace cacerts {

int runMode(const Config& config, Clock& clock, Random& random) {
  switch (config.command) {
    case Command::kInit: return runInit(config, clock, random);
    case Command::kCheck: return runCheck(config, clock);
    case Command::kSidecar: return runSidecar(config, clock, random);
    case Command::kRotate: return runRotate(config);
    case Command::kVersion: break;  // main prints the version before logging is set up
  }
  spdlog::error("event=unsupported_command command={}", toString(config.command));
  return 2;
}

}  // namespace cacerts
