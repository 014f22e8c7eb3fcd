// End-to-end: `cacerts-agent check` on directories holding things that are not CA files.
// Any directory may be checked, so a FIFO, a device or a huge file at one of istiod's
// names must end the check promptly with the output-directory exit code and a message
// naming the file (README "Exit codes": 6).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "tests/support/process.h"
#include "tests/support/test_pki.h"

namespace cacerts::testing {
namespace {

// A complete, valid istio layout, so that only the planted file can fail the check.
void writeValidSet(const TempDir& dir) {
  const TestCa root = makeRoot("Check Root");
  const TestCa inter = makeIntermediate(root, "Check Intermediate");
  writeFile(dir.file("ca-cert.pem"), inter.cert.pem());
  writeFile(dir.file("ca-key.pem"), inter.key.pkcs8Pem(), 0600);
  writeFile(dir.file("cert-chain.pem"), inter.cert.pem() + root.cert.pem());
  writeFile(dir.file("root-cert.pem"), root.cert.pem());
}

struct Timed {
  ProcessResult result;
  std::chrono::milliseconds took;
};

Timed timedCheck(const TempDir& dir) {
  const auto start = std::chrono::steady_clock::now();
  ProcessResult r = runAgent({"check", "--dir", dir.path()}, {}, std::chrono::seconds(20));
  return {std::move(r), std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
}

void requirePromptRefusal(const Timed& t, const std::string& file, const std::string& why) {
  INFO(t.result.out + t.result.err);
  CHECK_FALSE(t.result.timed_out);
  CHECK(t.took < std::chrono::seconds(5));
  CHECK(t.result.exit_code == 6);
  CHECK_THAT(t.result.out, Catch::Contains("NOT ACCEPTABLE"));
  CHECK_THAT(t.result.out, Catch::Contains(file + " " + why));
}

}  // namespace

TEST_CASE("check accepts the valid set the hostile-file cases start from", "[check-e2e]") {
  TempDir dir;
  writeValidSet(dir);
  const ProcessResult r = runAgent({"check", "--dir", dir.path()});
  INFO(r.out + r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("check refuses a FIFO at a CA file name without waiting for a writer", "[check-e2e]") {
  TempDir dir;
  writeValidSet(dir);
  REQUIRE(::unlink(dir.file("ca-cert.pem").c_str()) == 0);
  REQUIRE(::mkfifo(dir.file("ca-cert.pem").c_str(), 0644) == 0);
  requirePromptRefusal(timedCheck(dir), dir.file("ca-cert.pem"), "is not a regular file");
}

TEST_CASE("check refuses a link to /dev/zero instead of reading it until memory runs out", "[check-e2e]") {
  TempDir dir;
  writeValidSet(dir);
  REQUIRE(::unlink(dir.file("cert-chain.pem").c_str()) == 0);
  REQUIRE(::symlink("/dev/zero", dir.file("cert-chain.pem").c_str()) == 0);
  requirePromptRefusal(timedCheck(dir), dir.file("cert-chain.pem"), "is not a regular file");
}

TEST_CASE("check refuses a 3 GB sparse file from its size, before reading it", "[check-e2e]") {
  TempDir dir(/*on_tmpfs=*/false);
  writeValidSet(dir);
  REQUIRE(::truncate(dir.file("root-cert.pem").c_str(), 3LL * 1024 * 1024 * 1024) == 0);
  requirePromptRefusal(timedCheck(dir), dir.file("root-cert.pem"), "is larger than 1048576 bytes");
}

}  // namespace cacerts::testing
