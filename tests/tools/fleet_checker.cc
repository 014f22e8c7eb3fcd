// cacerts-fleet-checker: a separate process that watches the output directories of several
// istiod replicas while their agents rotate the root, and checks the fleet invariant over
// and over: for every ordered pair of replicas (A, B), A == B included, the chain A publishes
// (ca-cert.pem through cert-chain.pem) verifies against the roots B publishes
// (root-cert.pem) as trust anchors. A workload certificate signed by replica A is then
// trusted by a proxy that got its roots from replica B, whichever replica wrote the
// istio-ca-root-cert ConfigMap.
//
// Each round reads every directory once, through its ..data link resolved once: the three
// files come from that one generation directory, so a swap during the read cannot mix
// generations. A generation removed between resolving and reading (the agent cleans up old
// ones) is resolved again. ca-key.pem is never read.
//
// Test-only tool (fleet-rotation e2e test, bench/fleet.sh). It judges with OpenSSL and the
// test PKI helpers, never with the agent's own x509 code.
//
// Output:
//   stderr: event=checker_started dirs=N                   once, before the first round
//           event=violation a=... b=... ...                the first --report violations
//   stdout: one JSON object on one line at exit (the summary; see Summary below)
// Exit status: 0 when at least one pair was checked and there was no violation and no
// malformed or unreadable directory; 1 otherwise; 2 on a usage error.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/chain_verify.h"
#include "tests/support/test_pki.h"
#include "tests/support/tool_support.h"

namespace cacerts::testing {
namespace {

using json = nlohmann::json;
using std::chrono::steady_clock;
using std::chrono::system_clock;

// A generation can vanish between resolving ..data and reading it (the agent removes the
// previous one after a publish); resolving again finds the new one.
constexpr int kReadAttempts = 5;

// What one directory publishes, from one generation.
struct Published {
  std::string generation;         // ..data's target
  TestCert ca;                    // first certificate of ca-cert.pem
  std::vector<TestCert> chain;    // cert-chain.pem
  std::vector<TestCert> roots;    // root-cert.pem
  std::string root_set;           // the roots' serials, in order: identifies the bundle
};

enum class ReadOutcome { kUnpopulated, kUnreadable, kMalformed, kRead };

std::optional<std::string> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

std::string serialsOf(const std::vector<TestCert>& certs) {
  std::string out;
  for (const TestCert& c : certs) out += (out.empty() ? "" : ",") + c.serialColonHex();
  return out;
}

ReadOutcome readPublished(const std::string& dir, Published& out) {
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    const auto target = linkTarget(dir + "/..data");
    if (!target) return ReadOutcome::kUnpopulated;
    const std::string gen = target->front() == '/' ? *target : dir + "/" + *target;
    const auto ca = readWhole(gen + "/ca-cert.pem");
    const auto chain = readWhole(gen + "/cert-chain.pem");
    const auto roots = readWhole(gen + "/root-cert.pem");
    if (!ca || !chain || !roots) continue;
    out.generation = *target;
    out.ca = TestCert::fromPem(*ca);
    out.chain = parseCertChain(*chain);
    out.roots = parseCertChain(*roots);
    out.root_set = serialsOf(out.roots);
    if (out.ca.empty() || out.chain.empty() || out.roots.empty()) return ReadOutcome::kMalformed;
    return ReadOutcome::kRead;
  }
  return ReadOutcome::kUnreadable;
}

double unixSeconds(system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

struct Summary {
  long rounds = 0, checks = 0, violations = 0;
  long unpopulated = 0, unreadable = 0, malformed = 0;  // directory reads, not pairs
  std::vector<std::set<std::string>> intermediates, root_sets, generations;  // per directory
  json first_violations = json::array();
};

void check(const std::vector<std::string>& dirs, const std::vector<std::optional<Published>>& seen, Summary& sum,
           std::size_t report) {
  for (std::size_t a = 0; a < dirs.size(); ++a) {
    if (!seen[a]) continue;
    for (std::size_t b = 0; b < dirs.size(); ++b) {
      if (!seen[b]) continue;
      ++sum.checks;
      const auto error = verifyToRoots(seen[a]->ca, seen[a]->chain, seen[b]->roots);
      if (!error) continue;
      ++sum.violations;
      if (sum.first_violations.size() >= report) continue;
      const auto now = system_clock::now();
      json v = {{"a", dirs[a]},
                {"b", dirs[b]},
                {"a_generation", seen[a]->generation},
                {"b_generation", seen[b]->generation},
                {"a_ca_serial", seen[a]->ca.serialColonHex()},
                {"a_chain_serials", serialsOf(seen[a]->chain)},
                {"b_root_serials", seen[b]->root_set},
                {"error", *error},
                {"at_unix", unixSeconds(now)}};
      std::cerr << "event=violation a=" << dirs[a] << " b=" << dirs[b] << " a_ca_serial=" << seen[a]->ca.serialColonHex()
                << " b_root_serials=" << seen[b]->root_set << " error=\"" << *error << "\"" << std::endl;
      sum.first_violations.push_back(std::move(v));
    }
  }
}

json toJson(const Summary& sum, const std::vector<std::string>& dirs, double seconds) {
  json per_dir = json::array();
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    per_dir.push_back({{"dir", dirs[i]},
                       {"generations_seen", sum.generations[i].size()},
                       {"intermediates_seen", sum.intermediates[i].size()},
                       {"root_sets_seen", sum.root_sets[i].size()}});
  }
  return {{"event", "fleet_summary"},
          {"dirs", dirs.size()},
          {"rounds", sum.rounds},
          {"checks", sum.checks},
          {"violations", sum.violations},
          {"unpopulated_reads", sum.unpopulated},
          {"unreadable_reads", sum.unreadable},
          {"malformed_reads", sum.malformed},
          {"seconds", seconds},
          {"per_dir", per_dir},
          {"first_violations", sum.first_violations}};
}

int run(int argc, char** argv) {
  CLI::App app{"cacerts-fleet-checker: checks that every replica's chain verifies against every replica's roots "
               "(test tool)"};
  std::vector<std::string> dirs;
  std::string stop_file, duration_text = "0", pause_text = "20ms";
  std::size_t report = 5;
  app.add_option("--dir", dirs, "an output directory (repeat for every replica)")->required();
  app.add_option("--stop-file", stop_file, "stop once this file exists");
  app.add_option("--duration", duration_text, "stop after this long (0: only on SIGTERM/SIGINT or the stop file)");
  app.add_option("--pause", pause_text, "pause between rounds (leaves CPU to the agents)");
  app.add_option("--report", report, "how many violations to describe in full");
  if (const auto exit = parseToolArgs(app, argc, argv)) return *exit;
  const auto durations = parseToolDurations("cacerts-fleet-checker", {duration_text, pause_text});
  if (!durations) return 2;
  const Duration duration = (*durations)[0], pause = (*durations)[1];
  const std::atomic<bool>& stop = stopOnSignals();

  Summary sum;
  sum.intermediates.resize(dirs.size());
  sum.root_sets.resize(dirs.size());
  sum.generations.resize(dirs.size());
  std::cerr << "event=checker_started dirs=" << dirs.size() << std::endl;

  const auto t0 = steady_clock::now();
  const bool bounded = duration.count() > 0;
  const auto deadline = t0 + duration;
  auto stopRequested = [&] {
    return stop || (bounded && steady_clock::now() >= deadline) ||
           (!stop_file.empty() && ::access(stop_file.c_str(), F_OK) == 0);
  };
  while (!stopRequested()) {
    std::vector<std::optional<Published>> seen(dirs.size());
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      Published p;
      switch (readPublished(dirs[i], p)) {
        case ReadOutcome::kUnpopulated: ++sum.unpopulated; break;
        case ReadOutcome::kUnreadable: ++sum.unreadable; break;
        case ReadOutcome::kMalformed:
          ++sum.malformed;
          std::cerr << "event=malformed dir=" << dirs[i] << " generation=" << p.generation << std::endl;
          break;
        case ReadOutcome::kRead:
          sum.generations[i].insert(p.generation);
          sum.intermediates[i].insert(p.ca.serialColonHex());
          sum.root_sets[i].insert(p.root_set);
          seen[i] = std::move(p);
          break;
      }
    }
    check(dirs, seen, sum, report);
    ++sum.rounds;
    std::this_thread::sleep_for(pause);
  }

  const double seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  std::cout << toJson(sum, dirs, seconds).dump() << std::endl;
  const bool clean = sum.violations == 0 && sum.unreadable == 0 && sum.malformed == 0;
  return clean && sum.checks > 0 ? 0 : 1;
}

}  // namespace
}  // namespace cacerts::testing

int main(int argc, char** argv) { return cacerts::testing::run(argc, argv); }
