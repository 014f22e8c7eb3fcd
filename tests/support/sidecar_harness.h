// Shared pieces of the sidecar end-to-end suites: a fake istiod metrics endpoint, one
// sidecar under test with its Vault and output directory, a reader that checks every read
// set the way istiod would consume it, and small HTTP/metrics helpers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/prom_parse.h"
#include "tests/support/background_process.h"
#include "tests/support/e2e.h"

namespace httplib {
class Server;
}

namespace cacerts::testing {

// Generous: two shared cores, tests in parallel.
inline constexpr std::chrono::milliseconds kSidecarWait{20000};

// istiod's side of reload confirmation, as istiod behaves (istio-cacerts.md §4.4, §7.6):
// the first scrape that finds a complete set in `dir` is istiod's start (it loads the set
// whatever its roots); every later scrape that finds different bytes is a reload event.
// A reload whose root-cert.pem differs from the roots held is refused (nothing loaded)
// unless multiroot is on and one file is a byte substring of the other; since istiod keeps
// comparing with the roots it holds, every later reload is refused too until the file
// holds them again. Serves citadel_server_cert_chain_expiry_timestamp (first certificate
// of cert-chain.pem), citadel_server_root_cert_expiry_timestamp (first root) and
// istio_build{component="pilot",tag=version}; before 1.24 the two gauges keep their
// startup values. 503 until a set was loaded. Throws std::runtime_error when it cannot
// listen.
struct FakeIstiodOptions {
  bool multiroot = true;  // ISTIO_MULTIROOT_MESH
  std::string version = "1.24.3";
};

class FakeIstiod {
 public:
  explicit FakeIstiod(std::string dir, FakeIstiodOptions options = {});
  ~FakeIstiod();
  FakeIstiod(const FakeIstiod&) = delete;
  FakeIstiod& operator=(const FakeIstiod&) = delete;
  // Before the agent publishes (istiod's settings are fixed at its start).
  void configure(FakeIstiodOptions options);
  std::string url() const;
  int scrapes() const { return scrapes_; }
  int refusals() const;
  int reloads() const;  // accepted reload events (not the start)
  std::string heldRoots() const;  // root-cert.pem as loaded; empty before the start

 private:
  // One scrape: the start or a reload event when the files changed; false while nothing
  // was loaded. Then appends the metrics page to `page`.
  bool observe(std::string& page);

  std::string dir_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<int> scrapes_{0};
  mutable std::mutex mu_;
  FakeIstiodOptions options_;
  std::string seen_;   // the four files at the last start or event
  std::string roots_;  // root-cert.pem held
  std::optional<std::int64_t> chain_gauge_, root_gauge_;
  int refusals_ = 0, reloads_ = 0;
  std::thread thread_;
};

struct HttpAnswer {
  int status = 0;
  std::string body;  // the error when status is 0
};
HttpAnswer httpGet(int port, const std::string& path);

std::optional<double> metric(const std::string& page, const std::string& name, const Labels& labels = {});
double epochSeconds(SystemTime t);

// CHECKs that no output of `p` carries a credential marker, a private key or a JWT.
void scanOutput(const BackgroundProcess& p);

// A loopback TCP port that was free a moment ago.
int freePort();

// The arguments every sidecar e2e test starts from: output `out`, reload confirmation
// against `istiod`, `vault` over TLS, quick retries, no jitter, then `auth`.
std::vector<std::string> sidecarArgs(const E2eVault& vault, const TempDir& out, const FakeIstiod& istiod,
                                     const std::vector<std::string>& auth);

// One published generation laid out as the agent does in an empty `dir`: ..data -> a
// generation directory holding the four files, each top-level name -> ..data/name.
void layOutGeneration(const TempDir& dir, const std::string& cert, const std::string& key, const std::string& chain,
                      const std::string& root);

// One sidecar under test with its Vault, output directory and istiod.
struct Sidecar {
  E2eVault vault;
  TempDir out;
  FakeIstiod istiod{out.path()};
  std::string token_file;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::unique_ptr<BackgroundProcess> agent;
  int port = 0;

  // A PKI mount "pki" with root A as its default issuer, and a token that may sign.
  void setUpPki();
  // Kubernetes auth at "kubernetes", role "istiod" for istio-system/istiod with the signer
  // policy; returns the auth arguments (with a JWT file for that service account).
  std::vector<std::string> setUpKubernetesAuth();
  std::vector<std::string> baseArgs(const std::vector<std::string>& auth) const;
  // PKI source; renewals `renew_before` before a notAfter `ttl` after signing (Vault
  // backdates notBefore by 30 s, so the fraction rule never comes first).
  std::vector<std::string> pkiArgs(const std::string& ttl, const std::string& renew_before) const;

  // Starts the agent (with exactly environment `e`, as startAgent) and REQUIREs
  // event=sidecar_started; records the status port.
  void start(std::vector<std::string> a, std::map<std::string, std::string> e = {});
  void restart();
  // SIGTERM; REQUIREs exit 0 and scans the output; returns how long the exit took.
  std::chrono::milliseconds stop();

  std::string file(const std::string& name) const { return readFile(out.file(name)); }
  std::string metrics() const { return httpGet(port, "/metrics").body; }
  bool waitPublished(std::size_t n) const;
  std::string serial() const;
  // The published root rotation phase (-1 when the metric cannot be read).
  double phase() const;
  // Metrics are set just after the files are swapped: poll rather than read once.
  bool phaseBecomes(double phase_wanted) const;
};

// Reads the set as istiod would, through the top-level names, on a thread of its own, and
// judges only reads that provably came from one generation (..data unchanged around them).
struct ConsistencyReader {
  explicit ConsistencyReader(const TempDir& dir);
  ~ConsistencyReader() { finish(); }
  void finish();
  void readOnce();

  const TempDir& dir_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<int> reads{0}, mixed{0};
  std::set<std::string> serials;  // written by the reader thread only; read after finish()
};

// Requests to exactly /v1/<path> (any query), optionally only those answered with `status`.
// Sleeps into the next wall-clock second: a certificate issued after it has a later notAfter
// (whole seconds) than one issued before, which is all istiod's expiry gauge can tell apart.
void waitForNextSecond();

std::size_t countRequests(VaultTestServer& server, const std::string& method, const std::string& path,
                          int status = 0);

}  // namespace cacerts::testing
