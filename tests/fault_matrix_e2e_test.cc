// End-to-end fault matrix: every fault of the reliability list, one row each, injected into
// the Vault test server (or the output directory, or the agent itself) while the real
// binary runs. Each row records the outcome (init's exit code, or the sidecar's "kept
// serving, then recovered"), the time to recover once the fault clears, whether the
// previously published generation stayed byte-identical, and whether any output carried a
// secret. Each TEST_CASE prints its table at the end and writes it to
// $CACERTS_FAULT_MATRIX_DIR/<init|sidecar>.md when that variable is set.
//
// Timing: a recoverable fault is cleared by a helper thread after a fixed delay (that is
// fault scheduling, not a timing assertion); the recovery time is measured and printed, and
// only checked to come after the clearing.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/support/fault_matrix.h"
#include "tests/support/sidecar_harness.h"
#include "tests/support/slow_clients.h"
#include "tests/support/trickling_peer.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;
using Kind = Fault::Kind;
namespace fs = std::filesystem;

constexpr milliseconds kClearAfter{1000};      // how long a recoverable fault lasts
constexpr const char* kPersistTimeout = "1s";  // --timeout for faults that never clear
constexpr const char* kRecoverTimeout = "20s";
// Past the agent's 30 s read timeout, so that the slow request times out whatever the
// --timeout: at the read timeout, or earlier at the --timeout deadline.
constexpr milliseconds kSlowDelay{32000};
constexpr std::size_t kOversized = 5 * 1024 * 1024;  // above the agent's 4 MiB response cap
constexpr const char* kTinyTmpfsSize = "64k";
const std::vector<std::string> kTopLevel = {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"};

// Runs `action` on its own thread once `ready` holds (bounded) and `delay` has passed, and
// records when it ran: a fault that clears while the agent is busy retrying.
class Later {
 public:
  Later(milliseconds delay, std::function<void()> action, std::function<bool()> ready = [] { return true; })
      : thread_([this, delay, action = std::move(action), ready = std::move(ready)] {
          eventually(ready, seconds(20));
          std::this_thread::sleep_for(delay);
          action();
          at_ = Steady::now();
        }) {}
  ~Later() { join(); }
  Later(const Later&) = delete;
  Later& operator=(const Later&) = delete;
  // When the action ran (waits for it).
  Steady::time_point at() {
    join();
    return at_;
  }

 private:
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  Steady::time_point at_{};
  std::thread thread_;
};

// A fault that stays until cleared, on requests under `prefix`.
Fault persistentFault(Kind kind, const std::string& prefix, int status = 0) {
  Fault f;
  f.kind = kind;
  f.path_prefix = prefix;
  f.count = -1;
  f.status = status;
  f.huge_bytes = kOversized;
  return f;
}

// A transient fault: how to switch it on, and how it clears.
struct Transient {
  std::string name;
  std::function<void(VaultTestServer&)> arm;
  std::function<void(VaultTestServer&)> clear;
  std::string retry_log = "event=vault_retry";  // what init's retries must log
};

std::vector<Transient> transientFaults(const std::string& prefix) {
  const auto injected = [prefix](std::string name, Fault f) {
    f.path_prefix = prefix;
    return Transient{std::move(name), [f](VaultTestServer& s) { s.injectFault(f); },
                     [](VaultTestServer& s) { s.clearFaults(); }};
  };
  Fault retry_after = persistentFault(Kind::kStatus, prefix, 429);
  retry_after.headers = {{"Retry-After", "1"}};
  return {
      // A failed resume shows up as the row's failure (the agent never recovers).
      Transient{"connection refused", [](VaultTestServer& s) { s.stopListening(); },
                [](VaultTestServer& s) { (void)s.resumeListening(); }},
      injected("connection reset mid-body", persistentFault(Kind::kResetMidBody, prefix)),
      [&] {
        Transient t = injected("429 with Retry-After: 1", retry_after);
        t.retry_log = "retry_in_ms=1000 ";  // the wait Vault asked for, not the backoff's
        return t;
      }(),
      injected("500", persistentFault(Kind::kStatus, prefix, 500)),
      injected("502", persistentFault(Kind::kStatus, prefix, 502)),
      Transient{"503 sealed", [](VaultTestServer& s) { s.seal(true); }, [](VaultTestServer& s) { s.seal(false); }},
      injected("412", persistentFault(Kind::kStatus, prefix, 412)),
      injected("malformed JSON", persistentFault(Kind::kMalformedJson, prefix)),
      injected("truncated body", persistentFault(Kind::kTruncate, prefix)),
      injected("oversized body (5 MiB)", persistentFault(Kind::kHugeBody, prefix)),
  };
}

std::string leakCell(const std::string& leak) { return leak.empty() ? "none" : leak; }

std::string retriesText(std::size_t n) { return std::to_string(n) + (n == 1 ? " retry" : " retries"); }

std::string exitText(int got, int want) {
  return got == want ? "exit " + std::to_string(got) : "exit " + std::to_string(got) + ", expected " + std::to_string(want);
}

// A sign-intermediate answer shaped like Vault's, for a certificate the test chose.
Reply signAnswer(const TestCert& cert, const TestCert& issuer) {
  Envelope e;
  e.mount_type = "pki";
  e.data = {{"certificate", cert.pemTrimmed()},
            {"issuing_ca", issuer.pemTrimmed()},
            {"ca_chain", json::array({cert.pemTrimmed(), issuer.pemTrimmed()})},
            {"serial_number", cert.serialColonHex()},
            {"expiration", unixSeconds(cert.notAfter())}};
  return envelopeReply(e);
}

// Answers sign-intermediate with a certificate from `issuer` made to `spec`: for the agent's
// CSR key, or for a key of its own (a well-formed answer for the wrong key).
std::function<Reply(const std::string&)> signWith(CertSpec spec, TestCa issuer, bool other_key) {
  return [spec, issuer, other_key](const std::string& body) {
    const json request = json::parse(body, nullptr, false);
    std::string csr;
    if (request.is_object() && request.contains("csr") && request["csr"].is_string()) {
      csr = request["csr"].get<std::string>();
    }
    const TestCert cert = other_key ? issueCert(spec, makeKey(), &issuer.cert, issuer.key) : signCsr(csr, spec, issuer);
    if (cert.empty()) return errorReply(400, {"certificate request could not be parsed or its signature is invalid"});
    return signAnswer(cert, issuer.cert);
  };
}

CertSpec caSpec(std::chrono::hours from, std::chrono::hours to) {
  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.common_name = "fault matrix intermediate";
  spec.path_len = 0;
  spec.not_before = now + from;
  spec.not_after = now + to;
  return spec;
}

CertSpec leafSpec() {
  CertSpec spec = caSpec(std::chrono::hours(-1), std::chrono::hours(2000));
  spec.is_ca = false;
  spec.key_cert_sign = false;
  spec.crl_sign = false;
  spec.digital_signature = true;
  spec.path_len = -1;
  return spec;
}

// One kind of bad material, as a KV secret and as a PKI sign answer.
struct BadMaterial {
  std::string name;
  std::string message;  // what the error must mention
  TestCa kv;            // cert + key stored in KV
  std::string kv_root;  // root stored next to it
  std::function<Reply(const std::string&)> pki;
  std::string pki_message;  // what the error must mention for the PKI answer
};

// A tiny tmpfs mounted on an existing directory for the life of the object (lazily
// unmounted, so that a still running agent cannot keep it busy).
class TinyTmpfs {
 public:
  TinyTmpfs(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    const std::string options = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      errno_ = errno;
      error_ = std::string("mount(2) of a tmpfs on the output directory failed: ") + std::strerror(errno_);
    }
  }
  ~TinyTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TinyTmpfs(const TinyTmpfs&) = delete;
  TinyTmpfs& operator=(const TinyTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  bool refused() const { return errno_ == EPERM; }

 private:
  std::string dir_;
  bool mounted_ = false;
  int errno_ = 0;
  std::string error_;
};

// Writes `path` until the file system is full; returns the bytes written.
std::size_t fillUp(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  const std::string chunk(4096, 'F');
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return total;
}

// An executable from PATH, or "" when there is none.
std::string findInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path == nullptr ? "/usr/bin:/bin" : path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string findStrace() { return findInPath("strace"); }

std::string shellQuote(const std::string& word) {
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string shellCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + shellQuote(a);
  return out;
}

// The full-volume run for a caller that may not mount(2): inside `unshare -rm` (a user and
// mount namespace of its own) the mount exists only for the script, so the script does
// every step and reports what it saw on stdout.
struct NamespacedFullVolume {
  std::string failure;  // why the row could not run; empty when it ran
  int code = -1, again = -1;
  bool intact = false;
  std::string output;
};

NamespacedFullVolume fullVolumeInNamespace(const std::string& dir, const std::string& script_path,
                                           const std::vector<std::string>& first,
                                           const std::vector<std::string>& failing) {
  NamespacedFullVolume out;
  const std::string unshare = findInPath("unshare");
  if (unshare.empty()) {
    out.failure = "unshare not found in PATH";
    return out;
  }
  const std::string agent = shellQuote(agentBinary());
  const std::string script =
      "set -u\n"
      "d=" + shellQuote(dir) + "\n"
      "mount -t tmpfs -o size=" + std::string(kTinyTmpfsSize) + ",mode=0700 tmpfs \"$d\" || { echo MOUNT_FAILED; exit 0; }\n"
      "snap() { find \"$d\" -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do\n"
      "  if [ -L \"$f\" ]; then echo \"L $f $(readlink \"$f\")\"\n"
      "  elif [ -f \"$f\" ]; then echo \"F $f $(stat -c %a \"$f\") $(sha256sum < \"$f\")\"\n"
      "  else echo \"D $f\"; fi; done; }\n" +
      agent + " " + shellCommand(first) + " || { echo FIRST_FAILED; exit 0; }\n"
      "dd if=/dev/zero of=\"$d/filler\" bs=4096 >/dev/null 2>&1\n"
      "before=$(snap)\n" +
      agent + " " + shellCommand(failing) + "; echo \"CODE $?\"\n"
      "[ \"$before\" = \"$(snap)\" ] && echo INTACT\n"
      "rm -f \"$d/filler\"\n" +
      agent + " " + shellCommand(failing) + "; echo \"AGAIN $?\"\n";
  writeFile(script_path, script, 0700);
  const ProcessResult r = runProcess(unshare, {"-rm", "sh", script_path});
  out.output = r.out + r.err;
  if (r.exit_code != 0) {
    out.failure = "unshare -rm failed (exit " + std::to_string(r.exit_code) + "): " + r.err;
  } else if (r.out.find("MOUNT_FAILED") != std::string::npos) {
    out.failure = "mount inside unshare -rm failed: " + r.err;
  } else if (r.out.find("FIRST_FAILED") != std::string::npos) {
    out.failure = "the first publish inside unshare -rm failed: " + r.err;
  }
  const auto number = [&](const std::string& tag) {
    const auto at = r.out.find(tag + " ");
    return at == std::string::npos ? -1 : std::atoi(r.out.c_str() + at + tag.size() + 1);
  };
  out.code = number("CODE");
  out.again = number("AGAIN");
  out.intact = r.out.find("INTACT") != std::string::npos;
  return out;
}

// strace arguments that SIGKILL the traced process on the n-th call of `syscall`.
std::vector<std::string> killAt(const std::string& syscall, int n) {
  return {"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
          "-e", "inject=" + syscall + ":signal=KILL:when=" + std::to_string(n), agentBinary()};
}

// What istiod can see: the ..data target and the bytes behind the four top-level names.
std::map<std::string, std::string> visibleSet(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  out["..data"] = fs::read_symlink(dir + "/..data", ec).string();
  for (const auto& name : kTopLevel) out[name] = readFile(dir + "/" + name);
  return out;
}

// Generation directories: in dir/..generations, and next to ..data (the previous layout).
std::vector<std::string> generations(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& in : {dir, dir + "/..generations"}) {
    if (!fs::is_directory(in)) continue;
    for (const auto& e : fs::directory_iterator(in)) {
      const auto name = e.path().filename().string();
      if (name.rfind("..", 0) == 0 && name != "..data" && name != "..data_tmp" && name != "..lock" &&
          name != "..generations" && !fs::is_symlink(e.path()) && fs::is_directory(e.path())) {
        out.push_back(name);
      }
    }
  }
  return out;
}

// The temporary ..data link a publish killed before its commit leaves (staged in ..generations).
bool dataTmpLeft(const std::string& dir) { return fs::is_symlink(dir + "/..generations/..data_tmp"); }

// The lines of `text` that contain `what`.
std::string linesWith(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.find(what) != std::string::npos) out += line + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// init

std::vector<std::string> initArgs(const E2eVault& vault, const std::string& dir, const std::string& timeout,
                                  const std::string& token, const std::vector<std::string>& source) {
  return concat({"init", "--dir", dir, "--vault-addr", vault.addr(), "--vault-cacert", vault.caFile(), "--log-level",
                 "debug", "--timeout", timeout, "--auth-method", "token", "--token-file", token},
                source);
}

struct InitRig {
  E2eVault vault;
  TempDir out;
  std::string reader_token = vault.tokenFile();
  std::string signer_token;
  TestCa pki_root;
  std::vector<std::string> keys;  // planted private keys: no output may contain them
  FaultMatrix matrix{"init fault matrix"};
  std::map<std::string, std::string> before;

  InitRig() {
    keys = {vault.intermediate().key.pkcs8Pem(), vault.intermediate().key.traditionalPem()};
    REQUIRE(vault.server().enablePki("", "pki", std::chrono::hours(87600)));
    REQUIRE(vault.server().pkiGenerateRoot(
        "", "pki", {{"common_name", "Mesh Root A"}, {"ttl", "87600h"}, {"key_type", "ec"}, {"issuer_name", "root-a"}}));
    const auto issuer = vault.server().pkiIssuer("", "pki", "root-a");
    REQUIRE(issuer);
    pki_root = *issuer;
    REQUIRE(vault.server().setPolicy("", "signer", {{"pki/*", {"create", "read", "update", "list"}}}));
    signer_token = vault.tokenFile({"signer"});
    const auto r = vault.run(args(out.path(), "5s", reader_token, E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    before = snapshotTree(out.path());
  }

  std::vector<std::string> args(const std::string& dir, const std::string& timeout, const std::string& token,
                                const std::vector<std::string>& source) const {
    return initArgs(vault, dir, timeout, token, source);
  }
  static std::vector<std::string> pkiArgs() {
    return {"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", "720h"};
  }
  std::string leak(const ProcessResult& r) const { return leakedSecret(r.out + r.err, keys); }

  // A fault that clears after kClearAfter while init retries: exit 0.
  void recovers(const Transient& t) {
    const auto snapshot_before = snapshotTree(out.path());
    t.arm(vault.server());
    bool intact_during = false;
    Later clear(kClearAfter, [&] {
      intact_during = snapshotTree(out.path()) == snapshot_before;
      t.clear(vault.server());
    });
    const auto r = vault.run(args(out.path(), kRecoverTimeout, reader_token, E2eVault::kvArgs()));
    const auto end = Steady::now();
    const auto cleared = clear.at();
    const bool intact = intact_during && snapshotTree(out.path()) == snapshot_before;
    const std::size_t n = countOf(r.err, "event=vault_retry");
    INFO(t.name << " (clears after " << kClearAfter.count() << " ms): " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(n > 0);
    CHECK_THAT(r.err, Catch::Contains(t.retry_log));
    CHECK(intact);
    CHECK(cleared <= end);
    CHECK(leak(r).empty());
    matrix.add({t.name + ", clears after 1 s", "kv",
                exitText(r.exit_code, 0) + " after " + retriesText(n), msBetween(cleared, end), intact,
                leakCell(leak(r))});
  }

  // The same fault never clears: exit 4 once --timeout has passed.
  void persists(const Transient& t) {
    const auto snapshot_before = snapshotTree(out.path());
    t.arm(vault.server());
    const auto r = vault.run(args(out.path(), kPersistTimeout, reader_token, E2eVault::kvArgs()));
    t.clear(vault.server());
    const bool intact = snapshotTree(out.path()) == snapshot_before;
    INFO(t.name << " (persists): " << r.err);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.err, Catch::Contains("--timeout"));
    CHECK(intact);
    CHECK(leak(r).empty());
    matrix.add({t.name + ", persists past --timeout " + kPersistTimeout, "kv", exitText(r.exit_code, 4), std::nullopt,
                intact, leakCell(leak(r))});
  }

  // A permanent fault: the documented code at once, without retrying.
  void permanent(const std::string& name, const std::string& source, const std::vector<std::string>& run_args,
                 int code, const std::vector<std::string>& messages) {
    const auto snapshot_before = snapshotTree(out.path());
    const auto r = vault.run(run_args);
    const bool intact = snapshotTree(out.path()) == snapshot_before;
    const std::size_t retries = countOf(r.err, "event=vault_retry");
    INFO(name << ": " << r.err);
    CHECK(r.exit_code == code);
    for (const auto& m : messages) CHECK_THAT(r.err, Catch::Contains(m));
    CHECK(retries == 0);
    CHECK(intact);
    CHECK(leak(r).empty());
    matrix.add({name, source,
                exitText(r.exit_code, code) + (retries == 0 ? " at once" : ", after " + retriesText(retries)),
                std::nullopt, intact, leakCell(leak(r))});
  }

  static std::size_t countOf(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
  }
};

// A slow response with a long --timeout costs the agent's 30 s read timeout, so
// both variants run on servers of their own, in the background, while the other rows run.
struct SlowRow {
  E2eVault vault;
  TempDir out;
  std::string token = vault.tokenFile();
  std::map<std::string, std::string> before;
  bool recovering = false;
  std::unique_ptr<Later> clear;
  bool intact_during = true;
  ProcessResult result;
  Steady::time_point start, end;
  std::thread runner;

  explicit SlowRow(bool recover) : recovering(recover) {
    const auto r = vault.run(initArgs(vault, out.path(), "5s", token, E2eVault::kvArgs()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    before = snapshotTree(out.path());
    vault.server().clearRequests();
    Fault slow = persistentFault(Kind::kDelay, "secret/data/");
    slow.delay = kSlowDelay;
    vault.server().injectFault(slow);
    const auto run_args = initArgs(vault, out.path(), recover ? "60s" : kPersistTimeout, token, E2eVault::kvArgs());
    if (recover) {
      // Cleared once the first read is in flight: that read still hangs until the agent's
      // read timeout, the retry is answered at once.
      clear = std::make_unique<Later>(
          milliseconds(0),
          [this] {
            intact_during = snapshotTree(out.path()) == before;
            vault.server().clearFaults();
          },
          [this] { return countRequests(vault.server(), "GET", "secret/data/istio/cacerts") >= 1; });
    }
    runner = std::thread([this, run_args] {
      start = Steady::now();
      result = runAgent(run_args, {}, seconds(90));
      end = Steady::now();
    });
  }
  ~SlowRow() {
    if (runner.joinable()) runner.join();
  }

  void finish(InitRig& rig) {
    runner.join();
    const bool intact = intact_during && snapshotTree(out.path()) == before;
    const std::string leak = leakedSecret(result.out + result.err, {vault.intermediate().key.pkcs8Pem(),
                                                                     vault.intermediate().key.traditionalPem()});
    INFO("slow response (" << (recovering ? "clears" : "persists") << "): " << result.err);
    CHECK(intact);
    CHECK(leak.empty());
    if (recovering) {
      const auto cleared = clear->at();
      CHECK(result.exit_code == 0);
      CHECK(InitRig::countOf(result.err, "event=vault_retry") > 0);
      CHECK(cleared <= end);
      rig.matrix.add({"slow response (hangs 32 s) with --timeout 60s: cleared while the read hangs", "kv",
                      exitText(result.exit_code, 0) + " after the read timed out", msBetween(cleared, end), intact,
                      leakCell(leak)});
    } else {
      CHECK(result.exit_code == 4);
      CHECK_THAT(result.err, Catch::Contains("--timeout"));
      // The hung read is cut at the deadline, not left to the 30 s read timeout.
      const auto took = msBetween(start, end);
      CHECK(took < 20000);
      rig.matrix.add({std::string("slow response (hangs 32 s), persists past --timeout ") + kPersistTimeout,
                      "kv", exitText(result.exit_code, 4) + " after " + std::to_string(took) + " ms (read cut at the deadline)",
                      std::nullopt, intact, leakCell(leak)});
    }
  }
};

// ---------------------------------------------------------------------------------------
// sidecar

// The status port from "event=sidecar_started ... port=41961 ...", or 0.
int statusPort(const std::string& err) {
  const auto started = err.find("event=sidecar_started");
  const auto at = started == std::string::npos ? started : err.find(" port=", started);
  return at == std::string::npos ? 0 : std::atoi(err.c_str() + at + 6);
}

struct SidecarRig {
  Sidecar s;
  std::unique_ptr<TinyTmpfs> tiny;  // declared after s: unmounted before s.out is removed
  std::unique_ptr<FakeIstiod> namespaced_istiod;
  std::string view;         // where the test reads the output directory
  bool can_fill = false;    // the output directory is a tiny tmpfs of its own
  std::string fill_problem;  // why not
  TestCa pki_root;
  FaultMatrix matrix{"sidecar fault matrix"};

  SidecarRig() {
    s.setUpPki();
    const auto issuer = s.vault.server().pkiIssuer("", "pki", "root-a");
    REQUIRE(issuer);
    pki_root = *issuer;
    // Kubernetes auth, so that logins (and their failures) are part of the matrix.
    auto args =
        concat(s.baseArgs(s.setUpKubernetesAuth()),
               {"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", "1h", "--renew-before",
                "10m", "--renew-fraction", "0.99"});
    view = s.out.path();
    // The output directory is a tiny tmpfs of its own, so that it can be filled up.
    tiny = std::make_unique<TinyTmpfs>(s.out.path(), kTinyTmpfsSize);
    const std::string unshare = findInPath("unshare");
    if (tiny->mounted()) {
      can_fill = true;
      s.start(args);
    } else if (tiny->refused() && !unshare.empty()) {
      startInNamespace(unshare, std::move(args));
    } else {
      fill_problem = tiny->error() + (unshare.empty() ? "; unshare not found in PATH" : "");
      s.start(args);
    }
    REQUIRE(s.waitPublished(1));
    REQUIRE(s.agent->waitForErr("event=reload_confirmed", kSidecarWait));
  }

  // Without the right to mount(2): the sidecar gets its tmpfs inside `unshare -rm`, and the
  // test (and a fake istiod of its own) read the directory through /proc/<pid>/root.
  void startInNamespace(const std::string& unshare, std::vector<std::string> args) {
    const std::string link = s.vault.workDir() + "/sidecar-view";
    fs::create_directory_symlink(s.out.path(), link);
    namespaced_istiod = std::make_unique<FakeIstiod>(link);
    args = concat(args, {"--istiod-metrics-url", namespaced_istiod->url()});
    s.args = args;
    const std::string script = std::string("mount -t tmpfs -o size=") + kTinyTmpfsSize +
                               ",mode=0700 tmpfs \"$0\" || { echo \"mount inside unshare -rm failed\" >&2; exit 97; }; "
                               "exec \"$@\"";
    s.agent = std::make_unique<BackgroundProcess>(
        unshare, concat({"-rm", "sh", "-c", script, s.out.path(), agentBinary()}, args));
    // Re-pointed before the agent can publish (it first talks to Vault); the fake istiod
    // answers 503 until then, and the agent polls.
    fs::remove(link);
    fs::create_directory_symlink("/proc/" + std::to_string(s.agent->pid()) + "/root" + s.out.path(), link);
    view = link;
    const bool started = s.agent->waitForErr("event=sidecar_started", kSidecarWait);
    INFO(s.agent->err());
    REQUIRE(started);
    s.port = statusPort(s.agent->err());
    REQUIRE(s.port > 0);
    can_fill = true;
  }

  // Arms the fault, forces a renewal, and expects: renew_failed (whose line mentions
  // `error_mentions` when given), /readyz 200 and the files untouched while it lasts; a
  // publish confirmed by istiod once it clears.
  void row(const std::string& name, const std::function<void()>& arm, const std::function<void()>& clear,
           const std::string& error_mentions) {
    BackgroundProcess& a = *s.agent;
    const std::string& dir = view;
    const std::string key = readFile(dir + "/ca-key.pem");
    const std::size_t failed0 = a.count("event=renew_failed"), published0 = a.count("event=published "),
                      confirmed0 = a.count("event=reload_confirmed"), err0 = a.err().size();
    arm();
    const auto before = snapshotTree(dir);  // after arm(): a full volume holds the filler too
    waitForNextSecond();  // the recovery's notAfter must differ from the last confirmed one
    a.signal(SIGHUP);
    const bool failed = a.waitForErr("event=renew_failed", kSidecarWait, failed0 + 1);
    const int ready = httpGet(s.port, "/readyz").status;
    const bool intact = snapshotTree(dir) == before;
    const std::string failure = linesWith(a.err().substr(err0), "event=renew_failed");
    const auto cleared = Steady::now();
    clear();
    const bool published = a.waitForErr("event=published ", kSidecarWait, published0 + 1);
    const auto published_at = Steady::now();
    const bool confirmed = a.waitForErr("event=reload_confirmed", kSidecarWait, confirmed0 + 1);
    const std::string segment = a.err().substr(err0);
    // The key published before and the one published after the fault.
    const std::string leak = leakedSecret(segment + a.out(), {key, readFile(dir + "/ca-key.pem")});
    INFO(name << ": " << segment);
    CHECK(failed);
    CHECK(ready == 200);
    CHECK(intact);
    if (!error_mentions.empty()) CHECK_THAT(failure, Catch::Contains(error_mentions));
    CHECK(published);
    CHECK(confirmed);
    CHECK(leak.empty());
    std::string outcome;
    if (failed && ready == 200 && published && confirmed) {
      outcome = "kept serving (renew_failed, /readyz 200) + recovered, reload confirmed";
    } else {
      outcome = std::string(failed ? "renew_failed" : "NO renew_failed") + ", /readyz " + std::to_string(ready) + ", " +
                (published ? "published" : "NOT published") + ", " + (confirmed ? "confirmed" : "NOT confirmed");
    }
    matrix.add({name, "pki", outcome, published ? std::optional<long long>(msBetween(cleared, published_at)) : std::nullopt,
                intact, leakCell(leak)});
  }
};

// The slow-response row runs on a sidecar of its own, watched from a thread, while the
// other rows run.
struct SlowSidecar {
  Sidecar s;
  std::map<std::string, std::string> before;
  Steady::time_point cleared, published_at;
  bool failed = false, intact = false, published = false, confirmed = false;
  int ready = 0;
  std::thread watcher;

  SlowSidecar() {
    s.setUpPki();
    s.start(s.pkiArgs("1h", "10m"));
    REQUIRE(s.waitPublished(1));
    REQUIRE(s.agent->waitForErr("event=reload_confirmed", kSidecarWait));
    before = snapshotTree(s.out.path());
    Fault slow = persistentFault(Kind::kDelay, "pki/root/sign-intermediate");
    slow.delay = kSlowDelay;
    s.vault.server().injectFault(slow);
    const auto signs = countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate");
    s.agent->signal(SIGHUP);
    REQUIRE(eventually([&] { return countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate") > signs; },
                       kSidecarWait));
    // Cleared while that request hangs: only the agent's read timeout (cut to --timeout)
    // stands in the way.
    s.vault.server().clearFaults();
    cleared = Steady::now();
    watcher = std::thread([this] {
      const milliseconds wait(kSlowDelay + kSidecarWait);
      failed = s.agent->waitForErr("event=renew_failed", wait);
      ready = httpGet(s.port, "/readyz").status;
      intact = snapshotTree(s.out.path()) == before;
      published = s.agent->waitForErr("event=published ", wait, 2);
      published_at = Steady::now();
      confirmed = s.agent->waitForErr("event=reload_confirmed", wait, 2);
    });
  }
  ~SlowSidecar() {
    if (watcher.joinable()) watcher.join();
  }

  void finish(FaultMatrix& matrix) {
    watcher.join();
    const std::string leak = leakedSecret(s.agent->out() + s.agent->err(), {readFile(s.out.file("ca-key.pem"))});
    INFO("slow response: " << s.agent->err());
    CHECK(failed);
    CHECK(ready == 200);
    CHECK(intact);
    CHECK(published);
    CHECK(confirmed);
    CHECK(leak.empty());
    matrix.add({"slow response (hangs 32 s), cleared while the read hangs", "pki",
                failed && ready == 200 && published && confirmed
                    ? "kept serving (renew_failed after the read timeout, /readyz 200) + recovered, reload confirmed"
                    : "FAILED: see the test output",
                published ? std::optional<long long>(msBetween(cleared, published_at)) : std::nullopt, intact,
                leakCell(leak)});
    s.stop();
  }
};

// 50 clients that trickle or idle on the status port while kubelet-style probes run for
// longer than the server's request deadline: every probe must be answered within its 1 s.
void slowStatusClientsRow(SidecarRig& rig) {
  const std::string& dir = rig.view;
  const auto before = snapshotTree(dir);
  SlowClients slow(rig.s.port, 50);
  std::vector<long long> took;
  bool all_ok = true;
  const auto until = Steady::now() + seconds(3);
  while (Steady::now() < until) {
    for (const char* path : {"/healthz", "/readyz"}) {
      const TimedAnswer a = timedGet(rig.s.port, path);
      took.push_back(a.took.count());
      all_ok = all_ok && a.status == 200 && a.took < seconds(1);
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  std::sort(took.begin(), took.end());
  const long long p50 = took[took.size() / 2], worst = took.back();
  const bool intact = snapshotTree(dir) == before;
  INFO("probe latencies (ms), p50 " << p50 << ", max " << worst);
  CHECK(all_ok);
  CHECK(took.size() > 10);
  CHECK(intact);
  rig.matrix.add({"50 slow or idle clients on the status port (1 header byte every 0.5 s)", "status",
                  std::string(all_ok ? "every probe 200 within 1 s" : "PROBE FAILED OR SLOW") + " (" +
                      std::to_string(took.size()) + " probes, p50 " + std::to_string(p50) + " ms, max " +
                      std::to_string(worst) + " ms)",
                  std::nullopt, intact, "none"});
}

// An istiod metrics endpoint that trickles one byte every 0.3 s: the confirmation must end
// at --confirm-timeout (2 s in the harness) and the sidecar carry on renewing.
void tricklingIstiodRow(FaultMatrix& matrix) {
  TricklingPeer istiod(TricklingPeer::httpResponse());
  Sidecar k;
  k.setUpPki();
  auto args = k.pkiArgs("1h", "10m");
  const auto url = std::find(args.begin(), args.end(), "--istiod-metrics-url");
  REQUIRE(url != args.end());
  *(url + 1) = "http://127.0.0.1:" + std::to_string(istiod.port()) + "/metrics";
  k.start(args);
  REQUIRE(k.waitPublished(1));
  const auto published_at = Steady::now();
  const bool timed_out = k.agent->waitForErr("event=reload_not_confirmed", kSidecarWait);
  const auto gave_up = msBetween(published_at, Steady::now());
  const int ready = httpGet(k.port, "/readyz").status;
  // Not stuck: a forced renewal publishes again.
  k.agent->signal(SIGHUP);
  const bool again = k.waitPublished(2);
  const std::string leak = leakedSecret(k.agent->out() + k.agent->err(), {readFile(k.out.file("ca-key.pem"))});
  INFO(k.agent->err());
  CHECK(timed_out);
  CHECK(gave_up < 6000);  // --confirm-timeout 2s, generously
  CHECK(ready == 200);
  CHECK(again);
  CHECK(leak.empty());
  k.stop();
  matrix.add({"trickling istiod metrics (1 byte every 0.3 s), --confirm-timeout 2s", "istiod",
              std::string(timed_out ? "reload_not_confirmed" : "CONFIRMATION HUNG") + " " + std::to_string(gave_up) +
                  " ms after the publish, /readyz " + std::to_string(ready) + ", next renewal " +
                  (again ? "published" : "NOT published"),
              std::nullopt, true, leakCell(leak)});
}

}  // namespace

TEST_CASE("init fault matrix: transient faults recover within --timeout or exit 4, permanent ones fail at once "
          "with their code, and the published generation never changes",
          "[fault-matrix]") {
  InitRig rig;
  E2eVault& v = rig.vault;
  SlowRow slow_recovering(true);
  SlowRow slow_persisting(false);

  // Transport and server faults: once clearing within --timeout, once persisting past it.
  for (const Transient& t : transientFaults("secret/data/")) {
    rig.recovers(t);
    rig.persists(t);
  }

  // Authentication and permission: exit 3 at once.
  const std::string no_policy_token = v.tokenFile({"nothing-granted"});
  rig.permanent("403 permission denied (token without a policy for the path)", "kv",
                rig.args(rig.out.path(), kRecoverTimeout, no_policy_token, E2eVault::kvArgs()), 3, {"permission"});
  const std::string unknown_token = v.workDir() + "/unknown-token";
  writeFile(unknown_token, std::string(kTokenMarker) + ".not-issued-by-this-vault\n", 0600);
  rig.permanent("403 invalid token (lookup-self refuses the supplied token)", "kv",
                rig.args(rig.out.path(), kRecoverTimeout, unknown_token, E2eVault::kvArgs()), 3,
                {"cannot be kept valid"});
  REQUIRE(v.server().enableAuth("", "kubernetes", "kubernetes"));
  {
    auto a = rig.args(rig.out.path(), kRecoverTimeout, rig.reader_token, E2eVault::kvArgs());
    a = concat(a, {"--auth-method", "kubernetes", "--auth-role", "no-such-role", "--jwt-file", v.jwtFile()});
    rig.permanent("400 bad role (kubernetes login)", "kv", a, 3, {"no-such-role"});
  }

  // Bad material: exit 5 naming the check, from KV and from PKI.
  const TestCa other_root = makeRoot("Other Root");
  const TestCa other_inter = makeIntermediate(other_root, "Other Intermediate", caSpec(std::chrono::hours(-1), std::chrono::hours(2000)));
  rig.keys.push_back(other_inter.key.pkcs8Pem());
  const TestCa expired = makeIntermediate(v.root(), "Expired", caSpec(std::chrono::hours(-48), std::chrono::hours(-1)));
  const TestCa leaf = makeIntermediate(v.root(), "Leaf", leafSpec());
  rig.keys.push_back(expired.key.pkcs8Pem());
  rig.keys.push_back(leaf.key.pkcs8Pem());
  const TestCa wrong_key{other_inter.key, v.intermediate().cert};
  const std::vector<BadMaterial> bad = {
      {"response for the wrong key", "match", wrong_key, v.root().cert.pem(),
       signWith(caSpec(std::chrono::hours(-1), std::chrono::hours(2000)), rig.pki_root, true), "match"},
      {"expired cert", "expired", expired, v.root().cert.pem(),
       signWith(caSpec(std::chrono::hours(-48), std::chrono::hours(-1)), rig.pki_root, false), "validity period"},
      {"non-CA cert", "CA", leaf, v.root().cert.pem(), signWith(leafSpec(), rig.pki_root, false), "CA"},
      {"chain to another root", "chain", TestCa{v.intermediate().key, v.intermediate().cert}, other_root.cert.pem(),
       signWith(caSpec(std::chrono::hours(-1), std::chrono::hours(2000)), other_root, false), "chain"},
  };
  int n = 0;
  for (const BadMaterial& m : bad) {
    const std::string path = "istio/bad-" + std::to_string(++n);
    v.putCa(path, m.kv.cert.pem(), m.kv.key.pkcs8Pem(), m.kv.cert.pem() + m.kv_root, m.kv_root);
    rig.permanent(m.name + (m.name == "response for the wrong key" ? " (ca-key of another CA)" : ""), "kv",
                  rig.args(rig.out.path(), kRecoverTimeout, rig.reader_token, E2eVault::kvArgs(path)), 5, {m.message});
    Fault f = persistentFault(Kind::kRespond, "pki/root/sign-intermediate");
    f.respond = m.pki;
    v.server().injectFault(f);
    rig.permanent(m.name + (m.name == "response for the wrong key" ? " (200 sign answer for another public key)" : ""),
                  "pki", rig.args(rig.out.path(), kRecoverTimeout, rig.signer_token, InitRig::pkiArgs()), 5, {m.pki_message});
    v.server().clearFaults();
  }

  // A second CA in KV: runs that must write a new generation (a full volume, a kill).
  const TestCa next = makeIntermediate(v.root(), "Next Intermediate", caSpec(std::chrono::hours(-1), std::chrono::hours(2000)));
  rig.keys.push_back(next.key.pkcs8Pem());
  v.putCa("istio/next", next.cert.pem(), next.key.pkcs8Pem(), next.cert.pem() + v.root().cert.pem(), v.root().cert.pem());
  const auto next_kv = E2eVault::kvArgs("istio/next");

  // Output directory full.
  {
    TempDir mount_point;
    TinyTmpfs tiny(mount_point.path(), kTinyTmpfsSize);
    if (!tiny.mounted() && tiny.refused()) {
      const auto ns = fullVolumeInNamespace(mount_point.path(), v.workDir() + "/full-volume.sh",
                                           rig.args(mount_point.path(), "5s", rig.reader_token, E2eVault::kvArgs()),
                                           rig.args(mount_point.path(), "5s", rig.reader_token, next_kv));
      const std::string leak = leakedSecret(ns.output, rig.keys);
      INFO(tiny.error() << "; inside unshare -rm: " << ns.output);
      CHECK(ns.failure.empty());
      CHECK(ns.code == 6);
      CHECK_THAT(ns.output, Catch::Contains(mount_point.path()));
      CHECK(ns.intact);
      CHECK(ns.again == 0);
      CHECK(leak.empty());
      rig.matrix.add({"output directory full (64k tmpfs, inside unshare -rm)", "kv",
                      ns.failure.empty() ? exitText(ns.code, 6) + "; after freeing space " + exitText(ns.again, 0)
                                        : "FAIL: " + tiny.error() + "; " + ns.failure,
                      std::nullopt, ns.intact, leakCell(leak)});
    } else if (!tiny.mounted()) {
      FAIL_CHECK(tiny.error());
      rig.matrix.add({"output directory full", "kv", "FAIL: " + tiny.error(), std::nullopt, false, "not run"});
    } else {
      const std::string dir = mount_point.path();
      const auto first = v.run(rig.args(dir, "5s", rig.reader_token, E2eVault::kvArgs()));
      CHECK(first.exit_code == 0);
      CHECK(fillUp(dir + "/filler") > 0);
      const auto snapshot_before = snapshotTree(dir);
      const auto r = v.run(rig.args(dir, "5s", rig.reader_token, next_kv));
      const bool intact = snapshotTree(dir) == snapshot_before;
      INFO(r.err);
      CHECK(r.exit_code == 6);
      CHECK_THAT(r.err, Catch::Contains(dir));
      CHECK(intact);
      CHECK(rig.leak(r).empty());
      // Once space is freed, the next run publishes.
      fs::remove(dir + "/filler");
      const auto t0 = Steady::now();
      const auto again = v.run(rig.args(dir, "5s", rig.reader_token, next_kv));
      const auto t1 = Steady::now();
      INFO(again.err);
      CHECK(again.exit_code == 0);
      CHECK(readFile(dir + "/ca-cert.pem") == next.cert.pem());
      rig.matrix.add({"output directory full (64k tmpfs)", "kv",
                      exitText(r.exit_code, 6) + " naming the directory; after freeing space " +
                          exitText(again.exit_code, 0),
                      msBetween(t0, t1), intact, leakCell(rig.leak(r) + rig.leak(again))});
    }
  }

  // SIGKILL during publish, at the exact syscall (strace fault injection).
  const std::string strace = findStrace();
  struct KillPoint {
    std::string name, syscall;
    int when;
  };
  const std::vector<KillPoint> kills = {
      {"SIGKILL while writing the new generation (2nd fsync: one file written)", "fsync", 2},
      {"SIGKILL at the ..data_tmp symlink", "symlinkat", 1},
      {"SIGKILL at the rename onto ..data", "renameat,renameat2", 1},
  };
  for (const KillPoint& k : kills) {
    INFO(k.name);
    if (strace.empty()) {
      FAIL_CHECK("strace not found in PATH (scripts/install-deps.sh installs it)");
      rig.matrix.add({k.name, "kv", "FAIL: strace not found in PATH", std::nullopt, false, "not run"});
      continue;
    }
    TempDir dir;
    const auto first = v.run(rig.args(dir.path(), "5s", rig.reader_token, E2eVault::kvArgs()));
    REQUIRE(first.exit_code == 0);
    const auto visible_before = visibleSet(dir.path());
    const auto killed =
        runProcess(strace, concat(killAt(k.syscall, k.when), rig.args(dir.path(), "5s", rig.reader_token, next_kv)));
    const bool intact = visibleSet(dir.path()) == visible_before;
    const auto leftovers = generations(dir.path()).size() - 1 + (dataTmpLeft(dir.path()) ? 1 : 0);
    INFO(killed.err);
    CHECK(killed.exit_code == 128 + SIGKILL);
    CHECK(intact);
    CHECK(leftovers >= 1);
    // The next run publishes and removes what the killed one left.
    const auto t0 = Steady::now();
    const auto again = v.run(rig.args(dir.path(), "5s", rig.reader_token, next_kv));
    const auto t1 = Steady::now();
    INFO(again.err);
    CHECK(again.exit_code == 0);
    CHECK(readFile(dir.file("ca-cert.pem")) == next.cert.pem());
    const auto gens = generations(dir.path());
    CHECK(gens.size() == 1);
    CHECK_FALSE(dataTmpLeft(dir.path()));
    CHECK(runAgent({"check", "--dir", dir.path(), "--min-remaining", "1s"}).exit_code == 0);
    const bool cleaned = gens.size() == 1 && !dataTmpLeft(dir.path());
    const std::string leak = leakedSecret(killed.out + killed.err, rig.keys) + rig.leak(again);
    CHECK(leak.empty());
    rig.matrix.add({k.name, "kv",
                    exitText(killed.exit_code, 137) + " (killed), " + std::to_string(leftovers) +
                        " leftover(s); next run " + exitText(again.exit_code, 0) +
                        (cleaned ? ", leftovers removed" : ", LEFTOVERS REMAIN"),
                    msBetween(t0, t1), intact, leakCell(leak)});
  }

  // A Vault that answers one byte every 0.3 s: each byte restarts the read timeout, so
  // only every request's overall budget (cut to the time left) ends the run at --timeout.
  {
    const auto snapshot_before = snapshotTree(rig.out.path());
    v.server().injectFault(persistentFault(Kind::kTrickle, "secret/data/"));
    const auto t0 = Steady::now();
    const auto r = v.run(rig.args(rig.out.path(), "5s", rig.reader_token, E2eVault::kvArgs()));
    const auto took = msBetween(t0, Steady::now());
    v.server().clearFaults();
    const bool intact = snapshotTree(rig.out.path()) == snapshot_before;
    INFO("trickling Vault: " << r.err);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.err, Catch::Contains("time budget"));
    CHECK(took < 8000);
    CHECK(intact);
    CHECK(rig.leak(r).empty());
    rig.matrix.add({"trickling Vault (1 byte every 0.3 s), --timeout 5s", "kv",
                    exitText(r.exit_code, 4) + " after " + std::to_string(took) + " ms (request budget cut to --timeout)",
                    std::nullopt, intact, leakCell(rig.leak(r))});
  }

  slow_recovering.finish(rig);
  slow_persisting.finish(rig);
  CHECK(snapshotTree(rig.out.path()) == rig.before);
  v.scanForSecrets();
  CHECK(rig.matrix.publish("init"));
}

}  // namespace cacerts::testing

namespace cacerts::testing {

TEST_CASE("sidecar fault matrix: every fault leaves the published set serving, and the next renewal after it "
          "clears publishes and is confirmed by istiod",
          "[fault-matrix]") {
  SlowSidecar slow;
  SidecarRig rig;
  Sidecar& s = rig.s;
  VaultTestServer& server = s.vault.server();
  const std::string sign = "pki/root/sign-intermediate";

  for (const Transient& t : transientFaults(sign)) {
    rig.row(t.name, [&] { t.arm(server); }, [&] { t.clear(server); }, "");
  }

  rig.row("403 permission denied (policy loses update on the sign path)",
          [&] { REQUIRE(server.setPolicy("", "signer", {{"pki/*", {"read", "list"}}})); },
          [&] { REQUIRE(server.setPolicy("", "signer", {{"pki/*", {"create", "read", "update", "list"}}})); },
          "permission");
  rig.row("403 invalid token (re-login once, still refused)",
          [&] {
            Fault f = persistentFault(Kind::kStatus, sign, 403);
            f.body = errorReply(403, {invalidTokenMessage(true)}).body;
            server.injectFault(f);
          },
          [&] { server.clearFaults(); }, "403");
  rig.row("400 bad role (kubernetes login)",
          [&] {
            Fault expired = persistentFault(Kind::kStatus, sign, 403);  // makes the agent log in again
            expired.count = 1;
            expired.body = errorReply(403, {invalidTokenMessage(true)}).body;
            server.injectFault(expired);
            Fault role = persistentFault(Kind::kStatus, "auth/kubernetes/login", 400);
            role.body = errorReply(400, {"invalid role name \"istiod\""}).body;
            server.injectFault(role);
          },
          [&] { server.clearFaults(); }, "role");

  const TestCa other_root = makeRoot("Other Root");
  const std::vector<std::pair<std::string, std::function<Reply(const std::string&)>>> bad = {
      {"response for the wrong key (200 sign answer for another public key)",
       signWith(caSpec(std::chrono::hours(-1), std::chrono::hours(2000)), rig.pki_root, true)},
      {"expired cert", signWith(caSpec(std::chrono::hours(-48), std::chrono::hours(-1)), rig.pki_root, false)},
      {"non-CA cert", signWith(leafSpec(), rig.pki_root, false)},
      {"chain to another root", signWith(caSpec(std::chrono::hours(-1), std::chrono::hours(2000)), other_root, false)},
  };
  const std::vector<std::string> checks = {"match", "validity period", "CA", "chain"};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    rig.row(bad[i].first,
            [&] {
              Fault f = persistentFault(Kind::kRespond, sign);
              f.respond = bad[i].second;
              server.injectFault(f);
            },
            [&] { server.clearFaults(); }, checks[i]);
  }

  rig.row("trickling Vault (1 byte every 0.3 s) during a renewal",
          [&] { server.injectFault(persistentFault(Kind::kTrickle, sign)); }, [&] { server.clearFaults(); },
          "time budget");

  slowStatusClientsRow(rig);

  if (rig.can_fill) {
    const std::string filler = rig.view + "/filler";
    rig.row(std::string("output directory full (64k tmpfs") + (rig.namespaced_istiod ? ", inside unshare -rm)" : ")"),
            [&] { CHECK(fillUp(filler) > 0); }, [&] { fs::remove(filler); }, s.out.path());
  } else {
    FAIL_CHECK(rig.fill_problem);
    rig.matrix.add({"output directory full", "pki", "FAIL: " + rig.fill_problem, std::nullopt, false, "not run"});
  }

  // SIGKILL at the rename of the second publish, on a sidecar of its own under strace.
  const std::string strace = findStrace();
  const std::string kill_row = "SIGKILL at the rename onto ..data of the 2nd publish; restarted";
  if (strace.empty()) {
    FAIL_CHECK("strace not found in PATH (scripts/install-deps.sh installs it)");
    rig.matrix.add({kill_row, "pki", "FAIL: strace not found in PATH", std::nullopt, false, "not run"});
  } else {
    Sidecar k;
    k.setUpPki();
    const auto args = k.pkiArgs("1h", "10m");
    // The first publish into the empty directory renames ..data and the four top-level
    // links into place from ..generations (5 calls); the 6th is the second publish's rename
    // onto ..data.
    k.args = args;
    k.agent = std::make_unique<BackgroundProcess>(strace, concat(killAt("renameat,renameat2", 6), args));
    REQUIRE(k.agent->waitForErr("event=sidecar_started", kSidecarWait));
    k.port = statusPort(k.agent->err());
    REQUIRE(k.port > 0);
    REQUIRE(k.waitPublished(1));
    const auto visible_before = visibleSet(k.out.path());
    const auto rotated = runAgent({"rotate", "--listen", "127.0.0.1:" + std::to_string(k.port)});
    const auto code = k.agent->wait(kSidecarWait);
    const bool intact = visibleSet(k.out.path()) == visible_before;
    const bool leftover = dataTmpLeft(k.out.path()) && generations(k.out.path()).size() == 2;
    const std::string killed_output = k.agent->out() + k.agent->err();
    INFO(killed_output);
    CHECK(rotated.exit_code == 0);
    REQUIRE(code);
    CHECK(*code == 128 + SIGKILL);
    CHECK(intact);
    CHECK(leftover);
    const auto restarted = Steady::now();
    k.start(args);
    CHECK(k.agent->waitForErr("event=adopted", kSidecarWait));
    const bool cleaned = !dataTmpLeft(k.out.path()) && generations(k.out.path()).size() == 1;
    CHECK(cleaned);
    waitForNextSecond();  // the renewal's notAfter must differ from the adopted one
    k.agent->signal(SIGHUP);
    const bool published = k.waitPublished(1);
    const auto published_at = Steady::now();
    const bool confirmed = k.agent->waitForErr("event=reload_confirmed", kSidecarWait);
    INFO(k.agent->err());
    CHECK(published);
    CHECK(confirmed);
    const std::string leak =
        leakedSecret(killed_output + k.agent->out() + k.agent->err(), {readFile(k.out.file("ca-key.pem"))});
    CHECK(leak.empty());
    k.stop();
    rig.matrix.add({kill_row, "pki",
                    exitText(code.value_or(-1), 137) + " (killed), leftover " + (leftover ? "present" : "MISSING") +
                        "; restart " + (cleaned ? "removed it" : "DID NOT remove it") + ", then " +
                        (published && confirmed ? "published + reload confirmed" : "NO confirmed publish"),
                    published ? std::optional<long long>(msBetween(restarted, published_at)) : std::nullopt, intact,
                    leakCell(leak)});
  }

  tricklingIstiodRow(rig.matrix);
  slow.finish(rig.matrix);
  s.stop();
  CHECK(rig.matrix.publish("sidecar"));
}

}  // namespace cacerts::testing
