#include "tests/support/tool_support.h"

#include <limits.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

namespace cacerts::testing {
namespace {

std::atomic<bool> g_stop{false};

void onStopSignal(int) { g_stop = true; }

}  // namespace

std::optional<int> parseToolArgs(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

std::optional<std::vector<Duration>> parseToolDurations(const std::string& tool, const std::vector<std::string>& texts) {
  std::vector<Duration> out;
  for (const std::string& text : texts) {
    const auto d = parseDuration(text);
    if (!d) {
      std::cerr << tool << ": " << d.error().message << "\n";
      return std::nullopt;
    }
    out.push_back(*d);
  }
  return out;
}

const std::atomic<bool>& stopOnSignals() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return g_stop;
}

std::optional<std::string> linkTarget(const std::string& path) {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0 || static_cast<std::size_t>(n) == sizeof buf) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace cacerts::testing
