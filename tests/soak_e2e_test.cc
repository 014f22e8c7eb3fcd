// A short rotation soak: the real sidecar renews by schedule about every second while a
// separate reader process (cacerts-soak-reader) judges every read set of the directory and
// answers the sidecar's reload-confirmation polls as istiod. bench/soak.sh runs the long one.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kRotations = 15;
// About a second per rotation; generous for two shared cores under parallel builds.
constexpr milliseconds kSoakWait{90000};

// The key=value pairs of the first line of `text` that starts with `event`.
std::map<std::string, std::string> fieldsOf(const std::string& text, const std::string& event) {
  std::map<std::string, std::string> out;
  const auto at = text.find(event);
  if (at == std::string::npos) return out;
  const auto end = text.find('\n', at);
  const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
  std::size_t pos = 0;
  while (pos < line.size()) {
    const auto space = line.find(' ', pos);
    const std::string word = line.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
    const auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
    if (space == std::string::npos) break;
    pos = space + 1;
  }
  return out;
}

long number(const std::map<std::string, std::string>& fields, const std::string& key) {
  const auto it = fields.find(key);
  return it == fields.end() ? -1 : std::atol(it->second.c_str());
}

// The sidecar's arguments with its reload confirmation pointed at `url`.
std::vector<std::string> withIstiodUrl(std::vector<std::string> args, const std::string& url) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--istiod-metrics-url") args[i + 1] = url;
  }
  return args;
}

}  // namespace

TEST_CASE("soak reader passes a consistent set and names the check a broken set fails", "[soak]") {
  const TestCa root = makeRoot("Soak Root");
  const TestCa other_root = makeRoot("Other Root");
  const TestCa inter = makeIntermediate(root, "Soak Intermediate");
  const TestCa sibling = makeIntermediate(root, "Sibling Intermediate");
  REQUIRE_FALSE(inter.cert.empty());
  REQUIRE_FALSE(sibling.cert.empty());
  TempDir dir;
  std::string want = "none";
  SECTION("consistent") {
    layOutGeneration(dir, inter.cert.pem(), inter.key.pkcs8Pem(), inter.cert.pem() + root.cert.pem(), root.cert.pem());
  }
  SECTION("key of another certificate") {
    layOutGeneration(dir, inter.cert.pem(), sibling.key.pkcs8Pem(), inter.cert.pem() + root.cert.pem(), root.cert.pem());
    want = "key_matches_cert";
  }
  SECTION("chain starting with another certificate") {
    layOutGeneration(dir, inter.cert.pem(), inter.key.pkcs8Pem(), sibling.cert.pem() + root.cert.pem(), root.cert.pem());
    want = "chain_starts_with_ca_cert";
  }
  SECTION("roots that did not sign the chain") {
    layOutGeneration(dir, inter.cert.pem(), inter.key.pkcs8Pem(), inter.cert.pem() + root.cert.pem(),
                     other_root.cert.pem());
    want = "chain_verifies_to_roots";
  }
  SECTION("unparsable key") {
    layOutGeneration(dir, inter.cert.pem(), "not a key\n", inter.cert.pem() + root.cert.pem(), root.cert.pem());
    want = "pem_parses";
  }
  const ProcessResult r = runProcess(CACERTS_SOAK_READER_BINARY, {"--dir", dir.path(), "--duration", "300ms"});
  INFO(r.err);
  const auto summary = fieldsOf(r.out, "event=reader_summary");
  REQUIRE_FALSE(summary.empty());
  CHECK(summary.at("first_failure") == want);
  CHECK(number(summary, "reads") > 0);
  CHECK(number(summary, "generations_seen") == 1);
  if (want == "none") {
    CHECK(r.exit_code == 0);
    CHECK(number(summary, "inconsistent") == 0);
  } else {
    CHECK(r.exit_code == 1);
    CHECK(number(summary, "inconsistent") == number(summary, "reads"));
    CHECK_THAT(r.err, Catch::Contains("event=inconsistent_read check=" + want));
  }
  CHECK(r.err.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("sidecar rotating by schedule for 15 rotations never shows a separate reader an inconsistent set",
          "[soak]") {
  Sidecar s;
  s.setUpPki();

  BackgroundProcess reader(CACERTS_SOAK_READER_BINARY, {"--dir", s.out.path(), "--istiod-listen", "127.0.0.1:0"});
  REQUIRE(reader.waitForErr("event=reader_started", kSidecarWait));
  const long istiod_port = number(fieldsOf(reader.err(), "event=reader_started"), "istiod_port");
  INFO("reader: " << reader.err());
  REQUIRE(istiod_port > 0);

  // Renewal is due 5 s before a notAfter 6 s after signing: about one second after each
  // publish, by the schedule alone (no SIGHUP, no /rotate).
  const std::string url = "http://127.0.0.1:" + std::to_string(istiod_port) + "/metrics";
  s.start(withIstiodUrl(s.pkiArgs("6s", "5s"), url));
  INFO("agent: " << s.agent->err());
  // The startup publish plus kRotations renewals, each confirmed before the next one starts.
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kSoakWait, kRotations + 1));

  s.stop();
  reader.signal(SIGTERM);
  const auto reader_code = reader.wait(kSidecarWait);
  const auto summary = fieldsOf(reader.out(), "event=reader_summary");
  INFO("reader: " << reader.err());
  REQUIRE(reader_code);
  CHECK(*reader_code == 0);
  REQUIRE_FALSE(summary.empty());
  CHECK(number(summary, "inconsistent") == 0);
  CHECK(summary.at("first_failure") == "none");
  CHECK(number(summary, "reads") > 0);
  CHECK(number(summary, "generations_seen") >= static_cast<long>(kRotations));
  CHECK(number(summary, "istiod_scrapes") > 0);

  // Every rotation came from the schedule, was published and was confirmed by "istiod"; a
  // confirmation cut short by the final SIGTERM is the only allowed gap.
  const auto& agent = *s.agent;
  const std::size_t published = agent.count("event=published ");
  CHECK(agent.count("event=published trigger=scheduled") >= kRotations);
  CHECK(agent.count("trigger=forced") == 0);
  // Each publish ends in exactly one of: confirmed, superseded by the next publish before
  // "istiod" reported it (a slow machine), or cut short by the final SIGTERM.
  const std::size_t superseded = agent.count("event=reload_confirm_superseded");
  CHECK(agent.count("event=reload_confirmed") + superseded + agent.count("event=reload_confirm_interrupted") ==
        published);
  CHECK(agent.count("event=reload_confirm_interrupted") <= 1);
  CHECK(superseded <= published / 4);
  for (const char* bad : {"event=renew_failed", "event=publish_failed", "event=reload_not_confirmed",
                          "event=sidecar_failed"}) {
    INFO(bad);
    CHECK(agent.count(bad) == 0);
  }
  CHECK(number(summary, "istiod_scrapes") >= static_cast<long>(agent.count("event=reload_confirmed")));
  scanOutput(reader);
}

}  // namespace cacerts::testing
