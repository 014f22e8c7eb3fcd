// Suite-wide record of what the tests' child processes printed, for the log scan that
// runs after the whole suite (tests/log_scan.py, a ctest fixture cleanup). Active only when
// CACERTS_TEST_OUTPUT_DIR names a directory (ctest sets it); otherwise every call is a no-op.
//
// Files written there, one per call, named so that parallel test processes never collide:
//   run-<pid>-<n>.log      a child's command line, stdout and stderr
//   planted-<pid>-<n>.txt  secret values a test planted (one per line): no run may contain them
#pragma once

#include <string>
#include <vector>

namespace cacerts::testing {

void captureOutput(const std::string& binary, const std::vector<std::string>& args, const std::string& out,
                   const std::string& err);

void recordPlanted(const std::vector<std::string>& values);

}  // namespace cacerts::testing
