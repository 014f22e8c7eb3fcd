// cacerts-agent entry point: parse the configuration, set up logging, run one mode and
// turn its outcome into the documented exit code.
#include <csignal>
#include <cstdio>

#include "agent/config.h"
#include "agent/modes.h"
#include "common/clock.h"
#include "common/core_dumps.h"
#include "common/log.h"
#include "common/openssl_init.h"
#include "common/random.h"

int main(int argc, char** argv) {
  // Before anything else: a core dump or a same-uid reader of /proc/<pid>/mem would get the
  // CA key and the Vault token.
  if (const auto hardened = cacerts::disableCoreDumps(); !hardened) {
    std::fprintf(stderr, "error: %s\n", hardened.error().message.c_str());
    return 1;
  }
  (void)cacerts::initOpenSsl();  // before anything uses OpenSSL; see the header
  // httplib never uses MSG_NOSIGNAL: a write to a connection the peer closed must be an
  // error value, not a process kill.
  std::signal(SIGPIPE, SIG_IGN);
  cacerts::ParsedCommandLine parsed = cacerts::parseCommandLine(argc, argv);
  if (parsed.exit_now) return *parsed.exit_now;
  const cacerts::Config& config = parsed.config;
  if (config.command == cacerts::Command::kVersion) {
    std::printf("cacerts-agent %s\n", CACERTS_VERSION);
    return 0;
  }
  if (const auto logging = cacerts::setupLogging(config.log_format, config.log_level); !logging) {
    std::fprintf(stderr, "error: %s\n", logging.error().message.c_str());
    return 2;
  }
  if (const auto valid = cacerts::validate(config); !valid) {
    std::fprintf(stderr, "error: %s\n", valid.error().message.c_str());
    return 2;
  }
  cacerts::SystemClock clock;
  cacerts::SystemRandom random;
  return cacerts::runMode(config, clock, random);
}
