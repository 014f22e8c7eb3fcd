// HttplibTransport's keep-alive against a real loopback TLS server that counts the
// connections it accepts and closes.
#include "common/http.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/process.h"
#include "tests/support/test_pki.h"
#include "tests/support/trickling_peer.h"
#include "tests/vault_server/connection_reset.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct ConnectionCounts {
  std::mutex mu;
  std::condition_variable cv;
  int accepted = 0;
  int closed = 0;
};

// httplib's server hands each accepted connection to its task queue as one task that
// returns once the server has closed that connection: counting tasks counts connections.
class CountingTaskQueue final : public httplib::TaskQueue {
 public:
  explicit CountingTaskQueue(ConnectionCounts& counts) : counts_(counts) {}

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(counts_.mu);
      ++counts_.accepted;
    }
    threads_.emplace_back([this, fn = std::move(fn)] {
      fn();
      {
        std::lock_guard<std::mutex> lock(counts_.mu);
        ++counts_.closed;
      }
      counts_.cv.notify_all();
    });
  }
  void shutdown() override {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  ConnectionCounts& counts_;
  std::vector<std::thread> threads_;
};

class KeepAliveServer {
 public:
  // The server closes a connection after `idle_close` without a request.
  explicit KeepAliveServer(seconds idle_close = seconds(30)) {
    CertSpec spec;
    spec.common_name = "localhost";
    spec.is_ca = false;
    spec.key_cert_sign = spec.crl_sign = false;
    spec.digital_signature = true;
    spec.ext_key_usage = {"serverAuth"};
    spec.ip_sans = {"127.0.0.1"};
    key_ = makeKey("ec", 256);
    cert_ = issueCert(spec, key_, &ca_.cert, ca_.key);
    REQUIRE_FALSE(cert_.empty());
    std::ofstream(ca_file_.file("ca.pem")) << ca_.cert.pem();

    http_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      return SSL_CTX_use_certificate(&ctx, cert_.x509.get()) == 1 &&
             SSL_CTX_use_PrivateKey(&ctx, key_.pkey.get()) == 1;
    });
    REQUIRE(http_->is_valid());
    http_->new_task_queue = [this] { return new CountingTaskQueue(counts_); };
    http_->set_keep_alive_timeout(idle_close.count());
    http_->set_keep_alive_max_count(100);
    http_->set_tcp_nodelay(true);
    const auto ok = [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(R"({"ok":true,"body_bytes":)" + std::to_string(req.body.size()) + "}", "application/json");
    };
    http_->Get("/ok", [this, ok](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      ok(req, res);
    });
    http_->Post("/ok", [this, ok](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      ok(req, res);
    });
    http_->Get("/reset-once", [this, ok](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      if (resets_left_.fetch_sub(1) > 0) return resetConnection(req.ssl);
      ok(req, res);
    });
    http_->Get("/truncated", [this](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      res.set_content_provider(100, "application/json", [](std::size_t offset, std::size_t, httplib::DataSink& sink) {
        if (offset != 0) return false;  // ends the connection half way through the body
        sink.write(R"({"cut":"off)", 11);
        return true;
      });
    });
    http_->Get("/big", [this](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      res.set_content(std::string(1024 * 1024, 'x'), "application/json");
    });
    http_->Get("/trickle", [this](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      res.set_content_provider(100000, "application/json", [](std::size_t, std::size_t, httplib::DataSink& sink) {
        std::this_thread::sleep_for(milliseconds(300));
        return sink.is_writable() && sink.write("x", 1);
      });
    });
    http_->Get("/slow", [this, ok](const httplib::Request& req, httplib::Response& res) {
      seen(req);
      std::this_thread::sleep_for(seconds(1));
      ok(req, res);
    });
    port_ = http_->bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { http_->listen_after_bind(); });
    while (!http_->is_running()) std::this_thread::sleep_for(milliseconds(1));
  }
  ~KeepAliveServer() {
    http_->stop();
    thread_.join();
  }
  KeepAliveServer(const KeepAliveServer&) = delete;
  KeepAliveServer& operator=(const KeepAliveServer&) = delete;

  std::unique_ptr<HttpTransport> transport(HttpLimits limits) const {
    TlsOptions tls;
    tls.ca_file = ca_file_.file("ca.pem");
    auto t = makeHttplibTransport("https://127.0.0.1:" + std::to_string(port_), tls, limits);
    REQUIRE(t);
    return std::move(t).value();
  }

  int accepted() {
    std::lock_guard<std::mutex> lock(counts_.mu);
    return counts_.accepted;
  }
  // Waits (bounded) until the server has closed `n` connections in all.
  bool waitClosed(int n) {
    std::unique_lock<std::mutex> lock(counts_.mu);
    return counts_.cv.wait_for(lock, seconds(20), [&] { return counts_.closed >= n; });
  }
  int requestsFor(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count(paths_.begin(), paths_.end(), path));
  }
  void armReset(int count) { resets_left_ = count; }

 private:
  void seen(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.push_back(req.path);
  }

  TempDir ca_file_;
  TestCa ca_ = makeRoot("Transport Test CA");
  TestKey key_;
  TestCert cert_;
  ConnectionCounts counts_;
  std::unique_ptr<httplib::SSLServer> http_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> resets_left_{0};
  std::mutex mu_;
  std::vector<std::string> paths_;
};

HttpLimits keepAlive(Duration idle = std::chrono::minutes(1)) {
  HttpLimits limits;
  limits.keep_alive_idle = idle;
  return limits;
}

Result<HttpResponse> get(HttpTransport& t, const std::string& target) {
  HttpRequest req;
  req.method = "GET";
  req.target = target;
  return t.send(req);
}

Result<HttpResponse> post(HttpTransport& t, const std::string& target, std::string body) {
  HttpRequest req;
  req.method = "POST";
  req.target = target;
  req.body = std::move(body);
  return t.send(req);
}

int statusOf(const Result<HttpResponse>& r) { return r ? r->status : -1; }

}  // namespace

TEST_CASE("requests of one transport share one TLS connection while it is kept alive", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  CHECK(statusOf(get(*t, "/ok")) == 200);
  const auto posted = post(*t, "/ok", R"({"jwt":"x"})");
  REQUIRE(posted);
  CHECK(posted->body == R"({"ok":true,"body_bytes":11})");
  HttpRequest list;
  list.method = "LIST";
  list.target = "/ok";
  CHECK(statusOf(t->send(list)) == 200);
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 1);
  CHECK(server.requestsFor("/ok") == 4);
}

TEST_CASE("without keep-alive every request opens its own connection", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(HttpLimits{});
  for (int i = 0; i < 3; ++i) CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 3);
}

TEST_CASE("a kept-alive connection the server closed while idle is replaced without an error", "[http]") {
  // The server ends idle connections after a second, as Vault and load balancers do after
  // theirs: with a TLS close_notify and a FIN, which httplib alone mistakes for a live
  // connection.
  KeepAliveServer server(seconds(1));
  auto t = server.transport(keepAlive());
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  REQUIRE(server.waitClosed(1));
  SECTION("GET") { CHECK(statusOf(get(*t, "/ok")) == 200); }
  SECTION("POST") { CHECK(statusOf(post(*t, "/ok", "{}")) == 200); }
  CHECK(server.accepted() == 2);
  CHECK(server.requestsFor("/ok") == 2);
}

TEST_CASE("a kept-alive connection reset before any response byte is retried once on a new connection", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  server.armReset(1);
  CHECK(statusOf(get(*t, "/reset-once")) == 200);
  CHECK(server.requestsFor("/reset-once") == 2);
  CHECK(server.accepted() == 2);

  // Only once: a second reset in a row is reported.
  server.armReset(2);
  const auto twice = get(*t, "/reset-once");
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == ErrorCode::kUnavailable);
  CHECK(server.requestsFor("/reset-once") == 4);
}

TEST_CASE("a reset on a new connection is reported as unavailable, not retried", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  server.armReset(1);
  const auto r = get(*t, "/reset-once");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(server.requestsFor("/reset-once") == 1);
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
}

TEST_CASE("a failure after the response began is reported and the next request opens a new connection", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  const auto cut = get(*t, "/truncated");
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code == ErrorCode::kUnavailable);
  CHECK(server.requestsFor("/truncated") == 1);
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
}

TEST_CASE("a response over the body cap is refused and its connection is not reused", "[http]") {
  KeepAliveServer server;
  HttpLimits limits = keepAlive();
  limits.max_body_bytes = 64 * 1024;
  auto t = server.transport(limits);
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  const auto big = get(*t, "/big");
  REQUIRE_FALSE(big);
  CHECK(big.error().code == ErrorCode::kUnavailable);
  CHECK_THAT(big.error().message, Catch::Contains("larger than 65536 bytes"));
  CHECK(server.requestsFor("/big") == 1);
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
}

TEST_CASE("a read timeout on a kept-alive connection is reported once, not retried", "[http]") {
  KeepAliveServer server;
  HttpLimits limits = keepAlive();
  limits.read_timeout = milliseconds(200);
  auto t = server.transport(limits);
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  const auto slow = get(*t, "/slow");
  REQUIRE_FALSE(slow);
  CHECK(slow.error().code == ErrorCode::kUnavailable);
  CHECK(server.requestsFor("/slow") == 1);
}

TEST_CASE("a connection idle for longer than keep_alive_idle is not reused", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive(milliseconds(1)));
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  std::this_thread::sleep_for(milliseconds(20));  // the steady clock moves at least this far
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
  CHECK(server.waitClosed(1));  // the idle one was closed, not abandoned
}

TEST_CASE("releaseConnection closes the kept-alive connection at once", "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  t->releaseConnection();
  CHECK(server.waitClosed(1));
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
  t->releaseConnection();
  t->releaseConnection();  // nothing open: a no-op
  CHECK(server.waitClosed(2));
}

namespace {

// Sends one GET with an overall budget of one second; the result and how long it took.
std::pair<Result<HttpResponse>, milliseconds> timedGet(HttpTransport& t, const std::string& target) {
  HttpRequest req;
  req.method = "GET";
  req.target = target;
  req.timeout = seconds(1);
  const auto started = std::chrono::steady_clock::now();
  auto r = t.send(req);
  return {std::move(r),
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started)};
}

// A one-second-budget GET to `peer` must fail as the budget's timeout, in a bounded time.
// The peer sends a byte every 0.3 s, well inside the 30 s read timeout: only the request's
// overall budget can end it. The bound is generous (the suite shares the machine); without
// the budget the request would run for minutes.
void expectCutAtBudget(const TricklingPeer& peer, const std::string& scheme, HttpLimits limits) {
  // As the agent's main() does (HttpTransport's contract): OpenSSL may still write to the
  // socket the deadline shut down.
  std::signal(SIGPIPE, SIG_IGN);
  auto t = makeHttplibTransport(scheme + "://127.0.0.1:" + std::to_string(peer.port()), TlsOptions{}, limits);
  REQUIRE(t);
  const auto [r, took] = timedGet(**t, "/v1/sys/health");
  INFO("took " << took.count() << " ms");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK_THAT(r.error().message, Catch::Contains("time budget"));
  CHECK(took < seconds(4));
  CHECK(peer.bytesSent() >= 2);  // it really trickled, and was cut while doing so
}

}  // namespace

TEST_CASE("a peer that trickles the response head cannot stretch a request past its budget", "[http]") {
  TricklingPeer peer(TricklingPeer::httpResponse());
  expectCutAtBudget(peer, "http", HttpLimits{});
}

TEST_CASE("a TLS peer that trickles its handshake cannot stretch a request past its budget", "[http]") {
  TricklingPeer peer(TricklingPeer::tlsRecord());
  HttpLimits limits;
  limits.connect_timeout = seconds(30);  // the handshake's per-step wait; the budget must win
  expectCutAtBudget(peer, "https", limits);
}

TEST_CASE("a TLS server that trickles the body is cut at the budget, and the next request gets a new connection",
          "[http]") {
  KeepAliveServer server;
  auto t = server.transport(keepAlive());
  REQUIRE(statusOf(get(*t, "/ok")) == 200);
  const auto [r, took] = timedGet(*t, "/trickle");
  INFO("took " << took.count() << " ms");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(took < seconds(4));
  CHECK(server.requestsFor("/trickle") == 1);  // a timeout is not retried
  CHECK(statusOf(get(*t, "/ok")) == 200);
  CHECK(server.accepted() == 2);
}

TEST_CASE("the limits' request timeout bounds a request that sets no budget of its own", "[http]") {
  TricklingPeer peer(TricklingPeer::httpResponse());
  HttpLimits limits;
  limits.request_timeout = milliseconds(800);
  auto t = makeHttplibTransport("http://127.0.0.1:" + std::to_string(peer.port()), TlsOptions{}, limits);
  REQUIRE(t);
  const auto started = std::chrono::steady_clock::now();
  const auto r = get(**t, "/");
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("800 ms"));
  CHECK(took < seconds(4));
}

}  // namespace cacerts::testing
