#include "tests/support/sidecar_harness.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <filesystem>
#include <regex>
#include <stdexcept>
#include <thread>

#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

FakeIstiod::FakeIstiod(std::string dir, FakeIstiodOptions options)
    : dir_(std::move(dir)), server_(std::make_unique<httplib::Server>()), options_(std::move(options)) {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    ++scrapes_;
    std::string page;
    if (!observe(page)) {
      res.status = 503;
      return;
    }
    res.set_content(page, "text/plain");
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("fake istiod: cannot bind");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  if (!eventually([this] { return server_->is_running(); }, milliseconds(5000))) {
    server_->stop();
    thread_.join();
    throw std::runtime_error("fake istiod: did not start");
  }
}

void FakeIstiod::configure(FakeIstiodOptions options) {
  std::lock_guard<std::mutex> lock(mu_);
  options_ = std::move(options);
}

int FakeIstiod::refusals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refusals_;
}

int FakeIstiod::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

std::string FakeIstiod::heldRoots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return roots_;
}

bool FakeIstiod::observe(std::string& page) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string cert = readFile(dir_ + "/ca-cert.pem"), key = readFile(dir_ + "/ca-key.pem"),
                    chain = readFile(dir_ + "/cert-chain.pem"), roots = readFile(dir_ + "/root-cert.pem");
  const TestCert first_chain = TestCert::fromPem(chain), first_root = TestCert::fromPem(roots);
  const bool complete = !cert.empty() && !key.empty() && !first_chain.empty() && !first_root.empty();
  const std::string files = cert + key + chain + roots;
  const auto seconds_of = [](const TestCert& c) {
    return std::chrono::duration_cast<seconds>(c.notAfter().time_since_epoch()).count();
  };
  const int minor = std::atoi(options_.version.c_str() + options_.version.find('.') + 1);
  if (complete && roots_.empty()) {  // istiod's start: whatever the roots, gauges recorded
    seen_ = files;
    roots_ = roots;
    chain_gauge_ = seconds_of(first_chain);
    root_gauge_ = seconds_of(first_root);
  } else if (complete && files != seen_) {  // a reload event
    seen_ = files;
    const bool subset = roots_.find(roots) != std::string::npos || roots.find(roots_) != std::string::npos;
    if (roots != roots_ && !(options_.multiroot && subset)) {
      ++refusals_;  // "Multi root is disabled, updating new ROOT-CA not supported"
    } else {
      ++reloads_;
      roots_ = roots;
      if (minor >= 24) {  // RecordCertsExpiry on reload, from 1.24
        chain_gauge_ = seconds_of(first_chain);
        root_gauge_ = seconds_of(first_root);
      }
    }
  }
  if (roots_.empty()) return false;
  page = "# TYPE istio_build gauge\nistio_build{component=\"pilot\",tag=\"" + options_.version +
         "\"} 1\n# TYPE citadel_server_cert_chain_expiry_timestamp gauge\n"
         "citadel_server_cert_chain_expiry_timestamp " +
         std::to_string(*chain_gauge_) +
         "\n# TYPE citadel_server_root_cert_expiry_timestamp gauge\n"
         "citadel_server_root_cert_expiry_timestamp " +
         std::to_string(*root_gauge_) + "\n";
  return true;
}

FakeIstiod::~FakeIstiod() {
  server_->stop();
  thread_.join();
}

std::string FakeIstiod::url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }

HttpAnswer httpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  auto res = client.Get(path.c_str());
  if (!res) return {0, httplib::to_string(res.error())};
  return {res->status, res->body};
}

std::optional<double> metric(const std::string& page, const std::string& name, const Labels& labels) {
  auto sample = findMetricSample(page, name, labels);
  if (!sample || !sample->has_value()) return std::nullopt;
  return (*sample)->value;
}

double epochSeconds(SystemTime t) {
  return static_cast<double>(std::chrono::duration_cast<seconds>(t.time_since_epoch()).count());
}

void scanOutput(const BackgroundProcess& p) {
  for (const std::string& text : {p.out(), p.err()}) {
    CHECK(text.find(kTokenMarker) == std::string::npos);
    CHECK(text.find(kSecretIdMarker) == std::string::npos);
    CHECK(text.find(kJwtMarkerClaim) == std::string::npos);
    CHECK(text.find("PRIVATE KEY") == std::string::npos);
    // A JWT header ("eyJ..." up to a '.'), not just "eyJ": a generation directory's random
    // name suffix (mkdtemp) can spell that.
    static const std::regex kJwtShape("eyJ[A-Za-z0-9_-]{8,}\\.");
    CHECK_FALSE(std::regex_search(text, kJwtShape));
  }
}

int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void layOutGeneration(const TempDir& dir, const std::string& cert, const std::string& key, const std::string& chain,
                      const std::string& root) {
  const std::string gen = "..2026_01_01_00_00_00.000000000.test";
  fs::create_directory(dir.file(gen));
  writeFile(dir.file(gen + "/ca-cert.pem"), cert);
  writeFile(dir.file(gen + "/ca-key.pem"), key, 0600);
  writeFile(dir.file(gen + "/cert-chain.pem"), chain);
  writeFile(dir.file(gen + "/root-cert.pem"), root);
  fs::create_symlink(gen, dir.file("..data"));
  for (const char* name : {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"}) {
    fs::create_symlink(std::string("..data/") + name, dir.file(name));
  }
}

void Sidecar::setUpPki() {
  REQUIRE(vault.server().enablePki("", "pki", std::chrono::hours(87600)));
  REQUIRE(vault.server().pkiGenerateRoot(
      "", "pki", {{"common_name", "Mesh Root A"}, {"ttl", "87600h"}, {"key_type", "ec"}, {"issuer_name", "root-a"}}));
  REQUIRE(vault.server().setPolicy("", "signer", {{"pki/*", {"create", "read", "update", "list"}}}));
  token_file = vault.tokenFile({"signer"});
}

std::vector<std::string> Sidecar::setUpKubernetesAuth() {
  REQUIRE(vault.server().enableAuth("", "kubernetes", "kubernetes"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = {"signer"};
  REQUIRE(vault.server().addKubernetesRole("", "kubernetes", role));
  return {"--auth-method", "kubernetes", "--auth-role", "istiod", "--jwt-file", vault.jwtFile()};
}

std::vector<std::string> sidecarArgs(const E2eVault& vault, const TempDir& out, const FakeIstiod& istiod,
                                     const std::vector<std::string>& auth) {
  return concat({"sidecar", "--dir", out.path(), "--listen", "127.0.0.1:0", "--istiod-metrics-url", istiod.url(),
                 "--vault-addr", vault.addr(), "--vault-cacert", vault.caFile(), "--log-level", "debug", "--timeout",
                 "1s", "--retry-initial", "200ms", "--retry-max", "1s", "--confirm-timeout", "2s",
                 "--kv-poll-interval", "300ms", "--jitter", "0", "--min-remaining", "1s",
                 // SIGHUP and `rotate` renew at once here; the rate limit has its own test,
                 // which appends a later --rotate-min-interval (the last one wins).
                 "--rotate-min-interval", "0s"},
                auth);
}

std::vector<std::string> Sidecar::baseArgs(const std::vector<std::string>& auth) const {
  return sidecarArgs(vault, out, istiod, auth);
}

std::vector<std::string> Sidecar::pkiArgs(const std::string& ttl, const std::string& renew_before) const {
  return concat(baseArgs({"--auth-method", "token", "--token-file", token_file}),
                {"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", ttl, "--renew-before",
                 renew_before, "--renew-fraction", "0.99"});
}

void Sidecar::start(std::vector<std::string> a, std::map<std::string, std::string> e) {
  args = std::move(a);
  env = std::move(e);
  agent = startAgent(args, env);
  const bool started = agent->waitForErr("event=sidecar_started", kSidecarWait);
  INFO("exit code " << agent->wait(milliseconds(0)).value_or(-1) << "; stdout: " << agent->out() << "; stderr: "
                    << agent->err());
  REQUIRE(started);
  // "event=sidecar_started listen=127.0.0.1:0 port=41961 ..."
  const std::string err = agent->err();
  const auto at = err.find(" port=", err.find("event=sidecar_started"));
  REQUIRE(at != std::string::npos);
  port = std::atoi(err.c_str() + at + 6);
  REQUIRE(port > 0);
}

void Sidecar::restart() {
  stop();
  start(args, env);
}

milliseconds Sidecar::stop() {
  const auto t0 = std::chrono::steady_clock::now();
  agent->signal(SIGTERM);
  const auto code = agent->wait(kSidecarWait);
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  INFO(agent->err());
  REQUIRE(code);
  CHECK(*code == 0);
  scanOutput(*agent);
  return took;
}

bool Sidecar::waitPublished(std::size_t n) const { return agent->waitForErr("event=published ", kSidecarWait, n); }

std::string Sidecar::serial() const { return TestCert::fromPem(file("ca-cert.pem")).serialColonHex(); }

double Sidecar::phase() const { return metric(metrics(), "cacerts_agent_root_rotation_phase").value_or(-1); }

bool Sidecar::phaseBecomes(double phase_wanted) const {
  return eventually([&] { return phase() == phase_wanted; }, kSidecarWait);
}

ConsistencyReader::ConsistencyReader(const TempDir& dir) : dir_(dir) {
  thread_ = std::thread([this] {
    while (!stop_) {
      readOnce();
      std::this_thread::sleep_for(milliseconds(1));  // leave the shared cores to the agent
    }
  });
}

void ConsistencyReader::finish() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ConsistencyReader::readOnce() {
  std::error_code ec;
  const auto before = fs::read_symlink(dir_.file("..data"), ec);
  if (ec) return;
  const std::string cert = readFile(dir_.file("ca-cert.pem")), key = readFile(dir_.file("ca-key.pem")),
                    chain = readFile(dir_.file("cert-chain.pem")), root = readFile(dir_.file("root-cert.pem"));
  const auto after = fs::read_symlink(dir_.file("..data"), ec);
  if (ec || before != after) return;
  ++reads;
  const TestCert c = TestCert::fromPem(cert);
  const TestKey k = TestKey::fromPem(key);
  const bool ok = !c.empty() && !k.empty() && samePublicKey(c.publicKey(), k) && chain.rfind(cert, 0) == 0 &&
                  !root.empty() && chain.find(root) != std::string::npos;
  if (!ok) ++mixed;
  serials.insert(c.empty() ? "" : c.serialColonHex());
}

void waitForNextSecond() {
  const auto now = std::chrono::system_clock::now();
  const auto next = std::chrono::ceil<std::chrono::seconds>(now + std::chrono::milliseconds(1));
  std::this_thread::sleep_until(next + std::chrono::milliseconds(20));
}

std::size_t countRequests(VaultTestServer& server, const std::string& method, const std::string& path, int status) {
  std::size_t n = 0;
  for (const auto& r : server.requests()) {
    if (r.method == method && r.path == "/v1/" + path && (status == 0 || r.status == status)) ++n;
  }
  return n;
}

}  // namespace cacerts::testing
