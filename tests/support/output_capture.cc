#include "tests/support/output_capture.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace cacerts::testing {
namespace {

std::atomic<int> sequence{0};

// The path of a new capture file, or "" when capturing is off.
std::string nextFile(const char* prefix, const char* suffix) {
  const char* dir = std::getenv("CACERTS_TEST_OUTPUT_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  return std::string(dir) + "/" + prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++sequence) +
         suffix;
}

}  // namespace

void captureOutput(const std::string& binary, const std::vector<std::string>& args, const std::string& out,
                   const std::string& err) {
  const std::string path = nextFile("run", ".log");
  if (path.empty()) return;
  std::ofstream f(path, std::ios::binary);
  f << "# command: " << binary;
  for (const auto& a : args) f << ' ' << a;
  f << "\n# stdout\n" << out << "\n# stderr\n" << err;
}

void recordPlanted(const std::vector<std::string>& values) {
  const std::string path = nextFile("planted", ".txt");
  if (path.empty()) return;
  std::ofstream f(path, std::ios::binary);
  for (const auto& v : values) f << v << '\n';
}

}  // namespace cacerts::testing
