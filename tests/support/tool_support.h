// What the separate test tools (cacerts-soak-reader, cacerts-fleet-checker) share: their
// command-line handling, their stop signals and reading a directory's ..data link.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/duration.h"

namespace cacerts::testing {

// Parses argv into `app`. nullopt to go on; otherwise the tool's exit status (0 after
// --help, 2 for a usage error), the message already printed.
std::optional<int> parseToolArgs(CLI::App& app, int argc, char** argv);

// Each text as a duration ("300ms", "0"); on the first bad one prints "<tool>: <message>"
// and returns nullopt.
std::optional<std::vector<Duration>> parseToolDurations(const std::string& tool, const std::vector<std::string>& texts);

// SIGTERM and SIGINT set the returned flag (and nothing else) from now on.
const std::atomic<bool>& stopOnSignals();

// The target of the symlink at `path`, or nullopt when it is not one (or is too long).
std::optional<std::string> linkTarget(const std::string& path);

}  // namespace cacerts::testing
