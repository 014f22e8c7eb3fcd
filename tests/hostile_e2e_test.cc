// End-to-end, the real binary under hostile conditions: two writers on one directory, a
// storm of forced rotations, a reload confirmation that never arrives, wall-clock steps,
// core dumps. Each TEST_CASE reproduces one defect and adds its row to the fault matrix
// ($CACERTS_FAULT_MATRIX_DIR/hostile-<name>.md, see tests/support/fault_matrix.h).
// Waits are bounded polls; the only time bounds asserted are generous.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/support/fault_matrix.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kSignPath = "pki/root/sign-intermediate";

// Reads ca-cert.pem through its top-level link as istiod does, on its own thread, and
// counts reads that found ..data in place but the file gone: a link into a removed
// generation.
struct DanglingReader {
  explicit DanglingReader(const TempDir& dir) : dir_(dir) {
    thread_ = std::thread([this] {
      while (!stop_) {
        std::error_code ec;
        if (fs::is_symlink(dir_.file("..data"), ec)) {
          const int fd = ::open(dir_.file("ca-cert.pem").c_str(), O_RDONLY | O_CLOEXEC);
          if (fd >= 0) {
            ::close(fd);
            ++reads;
          } else if (errno == ENOENT && fs::is_symlink(dir_.file("ca-cert.pem"), ec)) {
            ++dangling;
          }
        }
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
  }
  ~DanglingReader() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  const TempDir& dir_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reads{0}, dangling{0};
  std::thread thread_;
};

std::string holderText(const BackgroundProcess& p, const std::string& mode) {
  return "pid=" + std::to_string(p.pid()) + " mode=" + mode;
}

// Generation directories in dir ("..YYYY_...").
// Generation directories: in ..generations, and next to ..data (the previous layout).
int generations(const TempDir& dir) {
  int n = 0;
  for (const std::string& in : {dir.path(), dir.file("..generations")}) {
    if (!fs::is_directory(in)) continue;
    for (const auto& e : fs::directory_iterator(in)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 3 && name[0] == '.' && name[1] == '.' && std::isdigit(static_cast<unsigned char>(name[2]))) ++n;
    }
  }
  return n;
}

// Stores a new intermediate under the vault's root at KV v2 secret/<path>, valid from a
// minute ago for `lifetime`.
TestCa putNewIntermediate(E2eVault& vault, const std::string& path, const std::string& cn,
                          std::chrono::hours lifetime = std::chrono::hours(24 * 30)) {
  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.path_len = 0;
  spec.not_before = now - std::chrono::minutes(1);
  spec.not_after = now + lifetime;
  TestCa next = makeIntermediate(vault.root(), cn, spec);
  const std::string root = vault.root().cert.pem();
  vault.putCa(path, next.cert.pem(), next.key.pkcs8Pem(), next.cert.pem() + root, root);
  return next;
}

std::size_t issued(VaultTestServer& server) {
  return countRequests(server, "POST", kSignPath, 200) + countRequests(server, "PUT", kSignPath, 200);
}

// libfaketime's preload library, or "" when it is not installed (scripts/install-deps.sh).
std::string libfaketime() {
  std::vector<fs::path> candidates = {"/usr/lib/faketime/libfaketime.so.1", "/usr/local/lib/faketime/libfaketime.so.1"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib", ec)) {
    candidates.push_back(e.path() / "faketime" / "libfaketime.so.1");  // /usr/lib/<multiarch triplet>/
  }
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c.string();
  }
  return "";
}

// The agent's wall clock under libfaketime: every clock read of the process (clock_gettime,
// time, gettimeofday, and so OpenSSL's certificate checks) is shifted by the offset in a
// file that step() replaces, re-read at every call. The kernel knows nothing of the step:
// a CLOCK_REALTIME timer armed before it neither fires early nor is cancelled by it, so the
// agent notices the step only by reading its clock again. Monotonic time is left alone, as a
// real step (NTP, suspend/resume) leaves it; so are file times.
class FakedWallClock {
 public:
  explicit FakedWallClock(const std::string& dir) : file_(dir + "/faketime-offset") { step(std::chrono::hours(0)); }

  std::map<std::string, std::string> env(const std::string& library) const {
    return {{"LD_PRELOAD", library},
            {"FAKETIME_TIMESTAMP_FILE", file_},
            {"FAKETIME_NO_CACHE", "1"},
            {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
            {"NO_FAKE_STAT", "1"},
            // A sanitized agent: its runtime cannot come first in the library list any more.
            {"ASAN_OPTIONS", "verify_asan_link_order=0"}};
  }
  // Sets the offset from the real time. Replaced by a rename: a read never sees half a file.
  void step(std::chrono::hours offset) {
    writeFile(file_ + ".tmp", "+" + std::to_string(offset.count()) + "h\n");
    fs::rename(file_ + ".tmp", file_);
  }

 private:
  std::string file_;
};

}  // namespace

TEST_CASE("two writers on one directory: one waits or exits 6 naming the holder, no read dangles",
          "[hostile-e2e][two-writers]") {
  FaultMatrix matrix{"sidecar hostile conditions: two writers on one directory"};
  std::string table;

  SECTION("two inits racing, a reader through the links") {
    table = "hostile-two-inits";
    E2eVault vault;
    TempDir out;
    // Two secrets with different intermediates, so that every init writes a new generation.
    (void)putNewIntermediate(vault, "istio/a", "E2E istiod Intermediate A");
    (void)putNewIntermediate(vault, "istio/b", "E2E istiod Intermediate B");
    const std::string token = vault.tokenFile();
    const auto args = [&](const std::string& path) {
      return concat(concat({"init", "--dir", out.path(), "--auth-method", "token", "--token-file", token},
                           vault.connectArgs()),
                    E2eVault::kvArgs(path));
    };
    DanglingReader reader(out);
    const auto t0 = Steady::now();
    int exits_ok = 0;
    constexpr int kRounds = 20;
    for (int round = 0; round < kRounds; ++round) {
      auto a = startAgent(args("istio/a"));
      auto b = startAgent(args("istio/b"));
      const auto ca = a->wait(seconds(30)), cb = b->wait(seconds(30));
      INFO(a->err() << b->err());
      CHECK(ca == 0);
      CHECK(cb == 0);
      exits_ok += (ca == 0) + (cb == 0);
      scanOutput(*a);
      scanOutput(*b);
    }
    reader.finish();
    CHECK(reader.dangling == 0);
    CHECK(reader.reads > 0);
    CHECK(generations(out) == 1);
    CHECK(runAgent({"check", "--dir", out.path(), "--min-remaining", "1s"}).exit_code == 0);
    matrix.add({"two inits racing (" + std::to_string(kRounds) + " rounds)", "kv",
                std::to_string(exits_ok) + "/" + std::to_string(2 * kRounds) + " exit 0 (serialised by ..lock); " +
                    std::to_string(reader.dangling.load()) + " dangling of " + std::to_string(reader.reads.load()) +
                    " reads",
                msBetween(t0), reader.dangling == 0 && generations(out) == 1, "none"});
  }

  SECTION("init beside a running sidecar, and a second sidecar") {
    table = "hostile-init-and-sidecars";
    Sidecar s;
    s.setUpPki();
    s.start(s.pkiArgs("1h", "10m"));  // no renewal during the test
    REQUIRE(s.waitPublished(1));
    DanglingReader reader(s.out);
    const auto before = snapshotTree(s.out.path());

    const auto t0 = Steady::now();
    ProcessResult init = runAgent(concat(concat({"init", "--dir", s.out.path(), "--auth-method", "token",
                                                 "--token-file", s.token_file, "--source", "pki", "--pki-sign-path",
                                                 kSignPath, "--ttl", "1h"},
                                                s.vault.connectArgs()),
                                         {"--min-remaining", "1s"}));
    const long long init_ms = msBetween(t0);
    INFO(init.err);
    CHECK(init.exit_code == 6);
    CHECK_THAT(init.err, Catch::Contains(holderText(*s.agent, "sidecar")));
    CHECK(init_ms >= 9000);  // it waited for the lock (10 s) before giving up
    CHECK(snapshotTree(s.out.path()) == before);

    const auto t1 = Steady::now();
    auto second = startAgent(s.args);
    const auto code = second->wait(seconds(30));
    const long long second_ms = msBetween(t1);
    INFO(second->err());
    CHECK(code == 6);
    CHECK_THAT(second->err(), Catch::Contains(holderText(*s.agent, "sidecar")));
    scanOutput(*second);
    CHECK(snapshotTree(s.out.path()) == before);
    reader.finish();
    CHECK(reader.dangling == 0);
    CHECK(httpGet(s.port, "/readyz").status == 200);
    s.stop();

    matrix.add({"init beside a running sidecar", "pki",
                "exit " + std::to_string(init.exit_code) + " after " + std::to_string(init_ms) +
                    " ms, holder named: " + (init.err.find(holderText(*s.agent, "sidecar")) != std::string::npos ? "yes" : "NO"),
                std::nullopt, snapshotTree(s.out.path()) == before, leakedSecret(init.err + init.out).empty() ? "none" : "LEAK"});
    matrix.add({"second sidecar on the same directory", "pki",
                "exit " + std::to_string(code.value_or(-1)) + " after " + std::to_string(second_ms) +
                    " ms; first kept serving, " + std::to_string(reader.dangling.load()) + " dangling reads",
                std::nullopt, reader.dangling == 0, "none"});
  }
  CHECK(matrix.publish(table));
}

TEST_CASE("a storm of SIGHUPs and POST /rotate mints at most one intermediate per --rotate-min-interval",
          "[hostile-e2e][rotate-storm]") {
  Sidecar s;
  s.setUpPki();
  s.start(concat(s.pkiArgs("1h", "10m"), {"--rotate-min-interval", "2s"}));
  REQUIRE(s.waitPublished(1));
  VaultTestServer& server = s.vault.server();
  const std::size_t before = issued(server);

  std::atomic<bool> storming{true};
  std::atomic<int> posts{0}, hups{0};
  const auto t0 = Steady::now();
  std::thread poster([&] {
    while (storming) {
      httplib::Client c("127.0.0.1", s.port);
      if (auto r = c.Post("/rotate"); r && r->status == 202) ++posts;
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  while (Steady::now() - t0 < seconds(5)) {
    s.agent->signal(SIGHUP);
    ++hups;
    std::this_thread::sleep_for(milliseconds(5));
  }
  storming = false;
  poster.join();
  const double storm_s = static_cast<double>(msBetween(t0)) / 1000.0;
  // A trigger inside the interval is deferred to its end, not dropped: give it the interval
  // and a generous margin.
  std::this_thread::sleep_for(seconds(4));
  const std::size_t minted = issued(server) - before;
  const std::size_t bound = static_cast<std::size_t>(std::ceil(storm_s / 2.0)) + 1;
  INFO("SIGHUPs " << hups << ", POST /rotate " << posts << ", storm " << storm_s << " s, minted " << minted
                  << ", bound " << bound);
  CHECK(hups > 100);
  CHECK(posts > 20);
  CHECK(minted >= 2);
  CHECK(minted <= bound);
  CHECK(s.agent->count("event=rotate_deferred") >= 1);
  CHECK(httpGet(s.port, "/readyz").status == 200);
  s.stop();

  FaultMatrix matrix{"sidecar hostile conditions: forced-rotation storm"};
  matrix.add({std::to_string(hups.load()) + " SIGHUPs + " + std::to_string(posts.load()) + " POST /rotate in " +
                  std::to_string(static_cast<int>(std::lround(storm_s))) + " s, --rotate-min-interval 2s",
              "pki", std::to_string(minted) + " intermediates minted (bound " + std::to_string(bound) + ")",
              std::nullopt, true, "none"});
  CHECK(matrix.publish("hostile-rotate-storm"));
}

TEST_CASE("a KV change right after a publish whose confirmation never arrives is published within a few polls",
          "[hostile-e2e][confirm]") {
  Sidecar s;
  // istiod never reports the new certificate: every confirmation runs to --confirm-timeout.
  const std::vector<std::string> kv = E2eVault::kvArgs();
  std::vector<std::string> args =
      concat(s.baseArgs({"--auth-method", "token", "--token-file", s.vault.tokenFile()}), kv);
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--istiod-metrics-url") args[i + 1] = "http://127.0.0.1:" + std::to_string(freePort()) + "/metrics";
    if (args[i] == "--confirm-timeout") args[i + 1] = "20s";
  }
  s.start(args);
  REQUIRE(s.waitPublished(1));
  const auto t0 = Steady::now();
  const TestCa next = putNewIntermediate(s.vault, "istio/cacerts", "E2E istiod Intermediate 2");
  INFO(s.agent->err());
  // --kv-poll-interval is 300 ms: well within 5 s, and far below the 20 s confirm timeout.
  const bool published = eventually([&] { return s.file("ca-cert.pem") == next.cert.pem(); }, seconds(15));
  const long long took = msBetween(t0);
  CHECK(published);
  CHECK(took < 5000);
  CHECK(s.agent->count("event=reload_not_confirmed") == 0);  // the first is still pending
  s.stop();

  FaultMatrix matrix{"sidecar hostile conditions: reload confirmation never arrives"};
  matrix.add({"KV change right after a publish, istiod never confirms (--confirm-timeout 20s)", "kv",
              published ? "published while the confirmation was pending" : "FAIL: not published",
              published ? std::optional<long long>(took) : std::nullopt, true, "none"});
  CHECK(matrix.publish("hostile-confirm-pending"));
}

TEST_CASE("the real binary renews within a minute of a wall-clock step the kernel does not report, and "
          "after a step past notAfter renews or exits 5",
          "[hostile-e2e][clock-jump]") {
  const std::string library = libfaketime();
  if (library.empty()) FAIL("libfaketime is not installed (scripts/install-deps.sh installs it)");
  // Three KV sidecars, stepped together so that their waits overlap. Each starts with
  // intermediate A (48 h; renewal due 24 h before notAfter, i.e. a day after the start) and
  // polls KV every ten years: only the clock can bring a renewal on, and the kernel's
  // CLOCK_REALTIME timer, armed for the real time of the renewal, never fires in the test.
  struct Jump {
    std::string fault;
    std::chrono::hours offset;
    bool renewed_in_kv;  // KV holds renewed material B by the time of the step
    Sidecar s;
    std::unique_ptr<FakedWallClock> clock{};
    TestCa a{}, b{};
    std::map<std::string, std::string> before{};
    Steady::time_point stepped{};
    std::optional<long long> took_ms{};  // step to publish (or to the exit)
    bool intact = true;  // ca-cert.pem was A or B at every look
  };
  std::vector<std::unique_ptr<Jump>> jumps;
  const auto add = [&](std::string fault, std::chrono::hours offset, bool renewed_in_kv) {
    auto j = std::make_unique<Jump>();
    j->fault = std::move(fault);
    j->offset = offset;
    j->renewed_in_kv = renewed_in_kv;
    jumps.push_back(std::move(j));
  };
  add("+25 h step (past the renewal time, 1 d after start)", std::chrono::hours(25), true);
  add("+50 h step (2 h past notAfter), KV holds a renewed certificate", std::chrono::hours(50), true);
  add("+50 h step (2 h past notAfter), KV still holds the expired certificate", std::chrono::hours(50), false);

  for (auto& j : jumps) {
    Sidecar& s = j->s;
    j->a = putNewIntermediate(s.vault, "istio/cacerts", "E2E istiod Intermediate A", std::chrono::hours(48));
    j->clock = std::make_unique<FakedWallClock>(s.vault.workDir());
    s.start(concat(concat(s.baseArgs({"--auth-method", "token", "--token-file", s.vault.tokenFile()}),
                          E2eVault::kvArgs()),
                   {"--kv-poll-interval", "87600h", "--renew-before", "24h", "--renew-fraction", "0.9"}),
            j->clock->env(library));
    INFO(s.agent->err());
    REQUIRE(s.waitPublished(1));
    REQUIRE(s.file("ca-cert.pem") == j->a.cert.pem());
    REQUIRE(s.agent->waitForErr("event=reload_confirmed", kSidecarWait));
    if (j->renewed_in_kv) j->b = putNewIntermediate(s.vault, "istio/cacerts", "E2E istiod Intermediate B");
  }
  // Each loop goes to sleep right after it logs the confirmation. A step before that sleep
  // would be seen by the loop's next clock read and prove nothing; this one lands in it.
  std::this_thread::sleep_for(milliseconds(500));
  for (auto& j : jumps) {
    j->before = snapshotTree(j->s.out.path());
    j->stepped = Steady::now();
    j->clock->step(j->offset);
  }
  // Within a minute, with a margin for two shared cores.
  constexpr milliseconds kBound{75000};
  const auto finished = [](Jump& j) {
    if (!j.renewed_in_kv) return j.s.agent->wait(milliseconds(0)).has_value();
    const std::string cert = j.s.file("ca-cert.pem");
    if (cert != j.a.cert.pem() && cert != j.b.cert.pem()) j.intact = false;
    return cert == j.b.cert.pem();
  };
  (void)eventually(
      [&] {
        bool all = true;
        for (auto& j : jumps) {
          if (!j->took_ms && finished(*j)) j->took_ms = msBetween(j->stepped);
          all = all && j->took_ms.has_value();
        }
        return all;
      },
      kBound);

  FaultMatrix matrix{"sidecar hostile conditions: wall-clock jump (real binary, libfaketime)"};
  for (auto& j : jumps) {
    Sidecar& s = j->s;
    INFO(j->fault << "\nstderr: " << s.agent->err());
    CHECK(j->took_ms.has_value());
    std::string outcome;
    if (j->renewed_in_kv) {
      CHECK(j->intact);
      // By the schedule, not by a KV poll.
      CHECK(s.agent->count("event=published trigger=scheduled") == 1);
      CHECK(s.agent->count("trigger=poll") == 0);
      outcome = j->took_ms ? "renewed from KV " + std::to_string(*j->took_ms) + " ms after the step"
                           : "FAIL: not renewed within " + std::to_string(kBound.count()) + " ms";
      if (j->took_ms) CHECK(httpGet(s.port, "/readyz").status == 200);
      s.stop();
    } else {
      const std::optional<int> code = s.agent->wait(milliseconds(0));
      CHECK(code == 5);
      CHECK_THAT(s.agent->err(), Catch::Contains("expired"));
      j->intact = snapshotTree(s.out.path()) == j->before;
      CHECK(j->intact);
      scanOutput(*s.agent);
      outcome = code ? "exit " + std::to_string(*code) + " (expired, nothing to replace it) " +
                           std::to_string(j->took_ms.value_or(-1)) + " ms after the step"
                     : "FAIL: still running " + std::to_string(kBound.count()) + " ms after the step";
    }
    std::vector<std::string> keys = {j->a.key.pkcs8Pem(), s.vault.intermediate().key.traditionalPem()};
    if (j->renewed_in_kv) keys.push_back(j->b.key.pkcs8Pem());
    const std::string leak = leakedSecret(s.agent->err() + s.agent->out(), keys);
    matrix.add({j->fault, "kv, real binary", outcome, j->took_ms, j->intact, leak.empty() ? "none" : leak});
  }
  CHECK(matrix.publish("hostile-clock-jump-real-binary"));
}

TEST_CASE("the agent is not dumpable: SIGABRT leaves no core and its memory is closed to its own uid",
          "[hostile-e2e][core]") {
  TempDir cwd(false);
  TempDir out;
  ::chmod(out.path().c_str(), 0777);
  ::chmod(cwd.path().c_str(), 0777);
  const std::string token = cwd.file("token");
  {
    std::ofstream(token) << "hvs.not-a-real-token\n";
  }
  ::chmod(token.c_str(), 0644);
  // Vault is unreachable: the sidecar keeps retrying its first publish for --timeout,
  // holding the token in memory.
  const std::vector<std::string> agent_args = {
      agentBinary(), "sidecar", "--dir", out.path(), "--listen", "127.0.0.1:0", "--vault-addr",
      "https://127.0.0.1:1", "--auth-method", "token", "--token-file", token, "--source", "pki",
      "--pki-sign-path", kSignPath, "--timeout", "60s", "--istiod-metrics-url", ""};
  const auto shell = [&](const std::string& prefix, const std::vector<std::string>& cmd) {
    std::string line = "ulimit -c unlimited; cd '" + cwd.path() + "' && exec " + prefix;
    for (const auto& a : cmd) line += " '" + a + "'";
    return std::make_unique<BackgroundProcess>("/bin/sh", std::vector<std::string>{"-c", line});
  };
  const auto cores = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(cwd.path())) n += e.path().filename().string().rfind("core", 0) == 0;
    return n;
  };
  FaultMatrix matrix{"sidecar hostile conditions: core dumps"};
  std::string table;

  SECTION("SIGABRT") {
    table = "hostile-core-abort";
    // The control: a dumpable process in the same place does leave a core here.
    auto control = shell("", {"/bin/sleep", "30"});
    std::this_thread::sleep_for(milliseconds(200));
    control->signal(SIGABRT);
    REQUIRE(control->wait(seconds(10)) == 128 + SIGABRT);
    const bool control_dumped = eventually([&] { return cores() > 0; }, seconds(5));
    if (!control_dumped) {
      WARN("no core from a dumpable process: core_pattern sends cores elsewhere; see the /proc/<pid>/mem section");
    }
    for (const auto& e : fs::directory_iterator(cwd.path())) {
      if (e.path().filename().string().rfind("core", 0) == 0) fs::remove(e.path());
    }
    auto agent = shell("", agent_args);
    REQUIRE(agent->waitForErr("event=vault_retry", seconds(20)));
    agent->signal(SIGABRT);
    REQUIRE(agent->wait(seconds(10)) == 128 + SIGABRT);
    std::this_thread::sleep_for(milliseconds(500));  // a core would be complete by now
    CHECK(cores() == 0);
    matrix.add({"SIGABRT with ulimit -c unlimited", "process",
                std::string("no core (a dumpable control process ") + (control_dumped ? "dumped one" : "was not dumped either") + ")",
                std::nullopt, true, cores() == 0 ? "none" : "CORE FILE"});
  }

  SECTION("/proc/<pid>/mem from another process of the same uid") {
    table = "hostile-core-proc-mem";
    const std::string nobody = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups";
    auto control = shell(nobody, {"/bin/sleep", "30"});
    auto agent = shell(nobody, agent_args);
    REQUIRE(agent->waitForErr("event=vault_retry", seconds(20)));
    std::this_thread::sleep_for(milliseconds(200));
    // Opens /proc/<pid>/mem as uid 65534 in a child; its exit code is the errno (0: opened).
    const auto openAsNobody = [](pid_t pid) {
      const pid_t child = ::fork();
      if (child == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(200);
        const int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
        ::_exit(fd >= 0 ? 0 : errno);
      }
      int status = 0;
      ::waitpid(child, &status, 0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    };
    CHECK(openAsNobody(control->pid()) == 0);  // the control proves the check can fail
    const int agent_errno = openAsNobody(agent->pid());
    CHECK(agent_errno == EACCES);
    struct stat st {};
    REQUIRE(::stat(("/proc/" + std::to_string(agent->pid()) + "/mem").c_str(), &st) == 0);
    CHECK(st.st_uid == 0);  // a non-dumpable process's /proc files belong to root
    agent->signal(SIGTERM);
    control->signal(SIGTERM);
    matrix.add({"open /proc/<pid>/mem as the agent's own uid (65534)", "process",
                agent_errno == EACCES ? "refused (EACCES); a dumpable control was readable" : "FAIL: errno " + std::to_string(agent_errno),
                std::nullopt, true, agent_errno == EACCES ? "none" : "MEMORY READABLE"});
  }
  CHECK(matrix.publish(table));
}

}  // namespace cacerts::testing
