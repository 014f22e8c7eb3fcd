// End-to-end: `cacerts-agent check` on directories holding things that are not CA files.
// Any directory may be checked, so a FIFO, a device or a huge file at one of istiod's
// names must end the check promptly with the output-directory exit code and a message
// naming the file (README "Exit codes": 6). And `check` judges a set the way istiod loads
// it, telling istiod's rules from this agent's stricter policy.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "agent/defaults.h"
#include "tests/support/test_pki.h"

namespace cacerts::testing {
namespace {

// The four files of the istio layout.
void writeSet(const TempDir& dir, const std::string& cert, const TestKey& key, const std::string& chain,
              const std::string& root) {
  writeFile(dir.file("ca-cert.pem"), cert);
  writeFile(dir.file("ca-key.pem"), key.pkcs8Pem(), 0600);
  writeFile(dir.file("cert-chain.pem"), chain);
  writeFile(dir.file("root-cert.pem"), root);
}

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

TEST_CASE("check refuses an intermediate that only ca-cert.pem holds, naming istiod's rule", "[check-e2e]") {
  // root -> upper -> signing; istiod's pool is cert-chain.pem only and it reads only the
  // first certificate of ca-cert.pem, so the upper intermediate after it is never seen.
  const TestCa root = makeRoot("Check Root");
  const TestCa upper = makeIntermediate(root, "Check Upper");
  const TestCa signing = makeIntermediate(upper, "Check Signing");
  TempDir dir;
  writeSet(dir, signing.cert.pem() + upper.cert.pem(), signing.key, signing.cert.pem() + root.cert.pem(),
           root.cert.pem());

  const ProcessResult r = runAgent({"check", "--dir", dir.path()});
  INFO(r.out + r.err);
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.out, Catch::Contains("would REFUSE it\n  istiod's reason: chain_verifies_to_root: "));
  CHECK_THAT(r.out, Catch::Contains("[FAIL] chain_verifies_to_root (istiod rule)"));
  CHECK_THAT(r.out, Catch::Contains("istiod builds its verification pool from cert-chain only and reads only "
                                    "the first certificate of ca-cert"));

  const ProcessResult j = runAgent({"check", "--dir", dir.path(), "--json"});
  INFO(j.out);
  CHECK(j.exit_code == 5);
  const auto report = nlohmann::json::parse(j.out);
  CHECK(report.at("accepted") == false);
  CHECK(report.at("istiod_would_load") == false);
  bool found = false;
  for (const auto& c : report.at("checks")) {
    if (c.at("name") == "chain_verifies_to_root") {
      found = true;
      CHECK(c.at("ok") == false);
      CHECK(c.at("policy") == "istiod");
      const std::string detail = c.at("detail");
      CHECK_THAT(detail, Catch::Contains("istiod builds its verification pool from cert-chain only and reads only "
                                         "the first certificate of ca-cert"));
      CHECK_THAT(detail, Catch::Contains("ca-cert certificate 2 (\"CN=Check Upper\") is never used"));
    }
  }
  CHECK(found);

  SECTION("with the intermediate in cert-chain.pem istiod would accept it") {
    writeFile(dir.file("cert-chain.pem"), signing.cert.pem() + upper.cert.pem() + root.cert.pem());
    const ProcessResult fixed = runAgent({"check", "--dir", dir.path()});
    INFO(fixed.out + fixed.err);
    CHECK(fixed.exit_code == 0);
    CHECK_THAT(fixed.out, Catch::Contains("would accept it"));
  }
}

TEST_CASE("check gives istiod's verdict first and this agent's policies as warnings, and the policy flag makes them fatal",
          "[check-e2e]") {
  // A chain that starts with the root: istiod loads it (cert-chain is an unordered pool),
  // but caps workload certificates at the root's NotAfter instead of the intermediate's.
  const TestCa root = makeRoot("Check Root");
  const TestCa inter = makeIntermediate(root, "Check Intermediate");
  TempDir dir;
  writeSet(dir, inter.cert.pem(), inter.key, root.cert.pem() + inter.cert.pem(), root.cert.pem());

  const ProcessResult r = runAgent({"check", "--dir", dir.path()});
  INFO(r.out + r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith(dir.path() + " (istio layout): istiod 1." +
                                      std::to_string(defaults::kIstioMinor) + " would accept it\n"));
  CHECK_THAT(r.out, Catch::Contains("agent policy: 1 warning"));
  CHECK_THAT(r.out, Catch::Contains("[WARN] chain_starts_with_ca_cert (agent rule): agent policy, stricter than istiod"));
  CHECK_THAT(r.out, Catch::Contains("[ok  ] chain_verifies_to_root (istiod rule)"));

  const ProcessResult strict = runAgent({"check", "--dir", dir.path(), "--policy"});
  INFO(strict.out);
  CHECK(strict.exit_code == 7);
  CHECK_THAT(strict.out, Catch::Contains("would accept it") && Catch::Contains("[FAIL] chain_starts_with_ca_cert"));

  const ProcessResult j = runAgent({"check", "--dir", dir.path(), "--json", "--policy"});
  INFO(j.out);
  const auto report = nlohmann::json::parse(j.out);
  CHECK(report.at("accepted") == false);
  CHECK(report.at("istiod_would_load") == true);
  CHECK(report.at("agent_policy_ok") == false);
  CHECK(report.at("exit_code") == 7);
  for (const auto& c : report.at("checks")) {
    if (c.at("name") == "chain_starts_with_ca_cert") CHECK(c.at("policy") == "agent");
  }
}

TEST_CASE("check judges ca-crl.pem by the istiod release given", "[check-e2e]") {
  const TestCa root = makeRoot("Check Root");
  const TestCa inter = makeIntermediate(root, "Check Intermediate");
  TempDir dir;
  writeSet(dir, inter.cert.pem(), inter.key, inter.cert.pem() + root.cert.pem(), root.cert.pem());
  writeFile(dir.path() + "/ca-crl.pem", makeCrl(inter));  // the root's CRL is missing

  const ProcessResult r = runAgent({"check", "--dir", dir.path()});
  INFO(r.out + r.err);
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.out, Catch::Contains("would REFUSE it"));
  CHECK_THAT(r.out, Catch::Contains("istiod's reason: crl_covers_chain: ca-crl has no CRL signed by \"CN=Check Root\""));

  const ProcessResult old = runAgent({"check", "--dir", dir.path(), "--istio-version", "1.26.4"});
  INFO(old.out + old.err);
  CHECK(old.exit_code == 0);
  CHECK_THAT(old.out, Catch::Contains("istiod 1.26 would accept it"));

  writeFile(dir.path() + "/ca-crl.pem", makeCrl(inter) + makeCrl(root));
  const ProcessResult complete = runAgent({"check", "--dir", dir.path(), "--istio-version", "1.27"});
  INFO(complete.out + complete.err);
  CHECK(complete.exit_code == 0);
  CHECK_THAT(complete.out, Catch::Contains("[ok  ] crl_covers_chain (istiod rule)"));

  const ProcessResult bad = runAgent({"check", "--dir", dir.path(), "--istio-version", "2.0"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--istio-version"));
}

}  // namespace cacerts::testing
