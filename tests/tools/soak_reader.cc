// cacerts-soak-reader: a separate process that reads an output directory the way istiod
// does, over and over, while a sidecar rotates it, and judges every read set that provably
// came from one generation. It also plays istiod's metrics endpoint, so the sidecar's
// reload confirmation has something to poll.
//
// Test-only tool (soak test and bench/soak.sh). It judges with OpenSSL and the test PKI
// helpers, never with the agent's own x509 code, so a bug there cannot hide itself.
//
// Output (stderr, key=value):
//   event=reader_started istiod_port=N dir=...            once listening
//   event=inconsistent_read check=... generation=...       the first few failures
//   event=reader_summary reads=N straddled=N ...           at exit (also on stdout)
// Exit status: 0 when at least one set was judged and none was inconsistent; 1 otherwise;
// 2 on a usage error; 4 when the metrics endpoint cannot listen.
#include <openssl/crypto.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include "common/duration.h"
#include "tests/support/chain_verify.h"
#include "tests/support/test_pki.h"
#include "tests/support/tool_support.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The four names istiod reads, each a symlink into ..data.
constexpr const char* kCaCert = "ca-cert.pem";
constexpr const char* kCaKey = "ca-key.pem";
constexpr const char* kChain = "cert-chain.pem";
constexpr const char* kRoot = "root-cert.pem";
constexpr int kLoggedFailures = 10;

// File bytes that are wiped when dropped: ca-key.pem passes through here.
class WipedBytes {
 public:
  WipedBytes() = default;
  WipedBytes(const WipedBytes&) = delete;
  WipedBytes& operator=(const WipedBytes&) = delete;
  ~WipedBytes() { wipe(); }
  void wipe() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  std::string& str() { return bytes_; }
  const std::string& str() const { return bytes_; }

 private:
  std::string bytes_;
};

// False when the file cannot be opened or read.
bool readInto(const std::string& path, WipedBytes& out) {
  out.wipe();
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.str().append(buf, static_cast<std::size_t>(in.gcount()));
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return !in.bad();
}

struct Failure {
  std::string check;   // which property failed, a fixed name
  std::string detail;  // never file contents
};

// istiod's view of one read set: the key belongs to ca-cert.pem, cert-chain.pem starts with
// ca-cert.pem, and that chain verifies (now) to the certificates of root-cert.pem.
std::optional<Failure> judge(const WipedBytes& cert_pem, const WipedBytes& key_pem, const WipedBytes& chain_pem,
                             const WipedBytes& root_pem) {
  const TestCert cert = TestCert::fromPem(cert_pem.str());
  if (cert.empty()) return Failure{"pem_parses", "ca-cert.pem holds no certificate"};
  const TestKey key = TestKey::fromPem(key_pem.str());
  if (key.empty()) return Failure{"pem_parses", "ca-key.pem holds no private key"};
  const std::vector<TestCert> chain = parseCertChain(chain_pem.str());
  if (chain.empty()) return Failure{"pem_parses", "cert-chain.pem holds no certificate"};
  const std::vector<TestCert> roots = parseCertChain(root_pem.str());
  if (roots.empty()) return Failure{"pem_parses", "root-cert.pem holds no certificate"};

  if (!samePublicKey(cert.publicKey(), key)) {
    return Failure{"key_matches_cert", "ca-key.pem is not the key of ca-cert.pem serial " + cert.serialColonHex()};
  }
  if (chain.front().der() != cert.der()) {
    return Failure{"chain_starts_with_ca_cert", "cert-chain.pem starts with serial " +
                                                    chain.front().serialColonHex() + ", ca-cert.pem is serial " +
                                                    cert.serialColonHex()};
  }

  // Everything after cert-chain.pem's first certificate may be an intermediate.
  const std::vector<TestCert> rest(chain.begin() + 1, chain.end());
  if (auto error = verifyToRoots(chain.front(), rest, roots)) {
    return Failure{"chain_verifies_to_roots", *error + " (ca-cert.pem serial " + cert.serialColonHex() + ")"};
  }
  return std::nullopt;
}

struct Tally {
  long reads = 0, straddled = 0, inconsistent = 0;
  std::set<std::string> generations;
  std::string first_failure = "none";
};

enum class ReadOutcome { kNothingPublished, kStraddled, kJudged };

ReadOutcome readOnce(const std::string& dir, Tally& tally) {
  const auto before = linkTarget(dir + "/..data");
  if (!before) return ReadOutcome::kNothingPublished;
  WipedBytes cert, key, chain, root;
  const bool all_read = readInto(dir + "/" + kCaCert, cert) && readInto(dir + "/" + kCaKey, key) &&
                        readInto(dir + "/" + kChain, chain) && readInto(dir + "/" + kRoot, root);
  const auto after = linkTarget(dir + "/..data");
  if (before != after) {
    ++tally.straddled;
    return ReadOutcome::kStraddled;
  }
  ++tally.reads;
  tally.generations.insert(*before);
  const std::optional<Failure> failure =
      all_read ? judge(cert, key, chain, root)
               : std::optional<Failure>(Failure{"files_readable", "a top-level file is missing or unreadable"});
  if (failure) {
    if (tally.inconsistent == 0) tally.first_failure = failure->check;
    if (tally.inconsistent < kLoggedFailures) {
      std::cerr << "event=inconsistent_read check=" << failure->check << " generation=" << *before << " detail=\""
                << failure->detail << "\"" << std::endl;
    }
    ++tally.inconsistent;
  }
  return ReadOutcome::kJudged;
}

// istiod's reload-confirmation metric: the notAfter of the ca-cert.pem it would load now.
class FakeIstiodEndpoint {
 public:
  explicit FakeIstiodEndpoint(std::string dir) : dir_(std::move(dir)) {}
  ~FakeIstiodEndpoint() { stop(); }
  FakeIstiodEndpoint(const FakeIstiodEndpoint&) = delete;
  FakeIstiodEndpoint& operator=(const FakeIstiodEndpoint&) = delete;

  // The bound port, or an explanation.
  std::optional<int> start(const std::string& host, int port, std::string& error) {
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      ++scrapes_;
      WipedBytes pem;
      const TestCert cert = readInto(dir_ + "/" + kCaCert, pem) ? TestCert::fromPem(pem.str()) : TestCert{};
      if (cert.empty()) {
        res.status = 503;
        return;
      }
      const auto not_after =
          std::chrono::duration_cast<std::chrono::seconds>(cert.notAfter().time_since_epoch()).count();
      res.set_content("# TYPE citadel_server_cert_chain_expiry_timestamp gauge\n"
                      "citadel_server_cert_chain_expiry_timestamp " +
                          std::to_string(not_after) + "\n",
                      "text/plain");
    });
    const int bound = port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
    if (bound <= 0) {
      error = "cannot listen on " + host + ":" + std::to_string(port);
      return std::nullopt;
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (!server_.is_running() && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
    if (!server_.is_running()) {
      error = "the metrics endpoint did not start";
      return std::nullopt;
    }
    return bound;
  }

  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  long scrapes() const { return scrapes_; }

 private:
  std::string dir_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<long> scrapes_{0};
};

int run(int argc, char** argv) {
  CLI::App app{"cacerts-soak-reader: checks every read set of a rotating cacerts directory (test tool)"};
  std::string dir, listen = "127.0.0.1:0", duration_text = "0", pause_text = "1ms";
  app.add_option("--dir", dir, "the output directory to read")->required();
  app.add_option("--istiod-listen", listen, "host:port of the fake istiod metrics endpoint (port 0: ephemeral)");
  app.add_option("--duration", duration_text, "stop after this long (0: only on SIGTERM/SIGINT)");
  app.add_option("--pause", pause_text, "pause between judged reads (leaves CPU to the agent)");
  if (const auto exit = parseToolArgs(app, argc, argv)) return *exit;
  const auto durations = parseToolDurations("cacerts-soak-reader", {duration_text, pause_text});
  if (!durations) return 2;
  const Duration duration = (*durations)[0], pause = (*durations)[1];
  const auto colon = listen.rfind(':');
  std::string host;
  int port = -1;
  try {
    if (colon != std::string::npos) {
      host = listen.substr(0, colon);
      port = std::stoi(listen.substr(colon + 1));
    }
  } catch (const std::exception&) {
    port = -1;
  }
  if (host.empty() || port < 0 || port > 65535) {
    std::cerr << "cacerts-soak-reader: --istiod-listen must be host:port, got \"" << listen << "\"\n";
    return 2;
  }

  const std::atomic<bool>& stop = stopOnSignals();

  FakeIstiodEndpoint istiod(dir);
  std::string error;
  const auto bound = istiod.start(host, port, error);
  if (!bound) {
    std::cerr << "cacerts-soak-reader: " << error << "\n";
    return 4;
  }
  std::cerr << "event=reader_started istiod_port=" << *bound << " dir=" << dir << std::endl;

  const auto t0 = steady_clock::now();
  const bool bounded = duration.count() > 0;
  const auto deadline = t0 + duration;
  Tally tally;
  while (!stop && (!bounded || steady_clock::now() < deadline)) {
    // A straddled read is retried at once: the point is to judge the set right after a swap.
    if (readOnce(dir, tally) == ReadOutcome::kStraddled) continue;
    std::this_thread::sleep_for(pause);
  }
  istiod.stop();

  const double seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  std::ostringstream summary;
  summary << "event=reader_summary reads=" << tally.reads << " straddled=" << tally.straddled
          << " inconsistent=" << tally.inconsistent << " generations_seen=" << tally.generations.size()
          << " istiod_scrapes=" << istiod.scrapes() << " first_failure=" << tally.first_failure
          << " seconds=" << static_cast<long>(seconds);
  std::cerr << summary.str() << std::endl;
  std::cout << summary.str() << std::endl;
  return tally.inconsistent == 0 && tally.reads > 0 ? 0 : 1;
}

}  // namespace
}  // namespace cacerts::testing

int main(int argc, char** argv) { return cacerts::testing::run(argc, argv); }
