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
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
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
#include "common/openssl_ptr.h"
#include "tests/support/test_pki.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

void onStopSignal(int) { g_stop = true; }

// The four names istiod reads, each a symlink into ..data.
constexpr const char* kCaCert = "ca-cert.pem";
constexpr const char* kCaKey = "ca-key.pem";
constexpr const char* kChain = "cert-chain.pem";
constexpr const char* kRoot = "root-cert.pem";
constexpr int kLoggedFailures = 10;

using StorePtr = cacerts::X509StorePtr;
using StoreCtxPtr = cacerts::X509StoreCtxPtr;
using X509StackPtr = cacerts::BorrowedX509StackPtr;  // entries stay owned by TestCert

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

std::optional<std::string> linkTarget(const std::string& path) {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0 || static_cast<std::size_t>(n) == sizeof buf) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
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

  StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return Failure{"chain_verifies_to_roots", "out of memory"};
  for (const TestCert& r : roots) {
    if (X509_STORE_add_cert(store.get(), r.x509.get()) != 1) {
      return Failure{"chain_verifies_to_roots", "cannot add a root-cert.pem certificate to the trust store"};
    }
  }
  for (std::size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].x509.get()) <= 0) {
      return Failure{"chain_verifies_to_roots", "out of memory"};
    }
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().x509.get(), untrusted.get()) != 1) {
    return Failure{"chain_verifies_to_roots", "cannot set up verification"};
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    return Failure{"chain_verifies_to_roots", std::string(X509_verify_cert_error_string(err)) + " at depth " +
                                                  std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) +
                                                  " (ca-cert.pem serial " + cert.serialColonHex() + ")"};
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const auto duration = parseDuration(duration_text);
  const auto pause = parseDuration(pause_text);
  if (!duration || !pause) {
    std::cerr << "cacerts-soak-reader: " << (!duration ? duration.error().message : pause.error().message) << "\n";
    return 2;
  }
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

  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  FakeIstiodEndpoint istiod(dir);
  std::string error;
  const auto bound = istiod.start(host, port, error);
  if (!bound) {
    std::cerr << "cacerts-soak-reader: " << error << "\n";
    return 4;
  }
  std::cerr << "event=reader_started istiod_port=" << *bound << " dir=" << dir << std::endl;

  const auto t0 = steady_clock::now();
  const bool bounded = duration->count() > 0;
  const auto deadline = t0 + *duration;
  Tally tally;
  while (!g_stop && (!bounded || steady_clock::now() < deadline)) {
    // A straddled read is retried at once: the point is to judge the set right after a swap.
    if (readOnce(dir, tally) == ReadOutcome::kStraddled) continue;
    std::this_thread::sleep_for(*pause);
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
