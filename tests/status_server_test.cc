#include "agent/status_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/prom_parse.h"
#include "tests/support/slow_clients.h"

namespace cacerts {
namespace {

// The state a sidecar loop would expose to the server's callbacks.
struct FakeAgentState {
  std::mutex mu;
  Readiness readiness{false, "no generation published yet"};
  std::atomic<int> rotate_requests{0};

  StatusHandlers handlers() {
    StatusHandlers h;
    h.readiness = [this] {
      std::lock_guard<std::mutex> lock(mu);
      return readiness;
    };
    h.rotate = [this] { ++rotate_requests; };
    return h;
  }
  void setReady(bool ready, std::string reason = "") {
    std::lock_guard<std::mutex> lock(mu);
    readiness = Readiness{ready, std::move(reason)};
  }
};

httplib::Client loopbackClient(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  return client;
}

// A local address that is not loopback (e.g. the pod IP), if the machine has one.
std::optional<std::string> nonLoopbackIpv4() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* it = list; it != nullptr && !found; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* sin = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == nullptr) continue;
    if (!isLoopbackAddress(text)) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace

TEST_CASE("listen addresses parse like Go's host:port", "[status_server]") {
  auto all = parseListenAddress(":9797");
  REQUIRE(all);
  CHECK(all->host.empty());
  CHECK(all->port == 9797);
  auto v4 = parseListenAddress("127.0.0.1:0");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 0);
  auto v6 = parseListenAddress("[::1]:9797");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  auto name = parseListenAddress("localhost:80");
  REQUIRE(name);
  CHECK(name->host == "localhost");
  for (const char* bad : {"", "9797", ":", ":abc", ":65536", ":123456", "::1:9797", "[::1]9797", "[]:1", "[::1:1"}) {
    INFO(bad);
    auto r = parseListenAddress(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(r.error().message.find("--listen") != std::string::npos);
  }
}

TEST_CASE("only loopback peer addresses count as loopback", "[status_server]") {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"}) {
    INFO(yes);
    CHECK(isLoopbackAddress(yes));
  }
  for (const char* no : {"", "10.0.0.1", "192.0.2.2", "0.0.0.0", "::", "::ffff:10.0.0.1", "fd00::2",
                         "fe80::1", "128.0.0.1", "localhost", "127.0.0.1:80", "[::1]", "::2",
                         "127.0.0.1 ", "::ffff:126.255.255.255"}) {
    INFO(no);
    CHECK_FALSE(isLoopbackAddress(no));
  }
}

TEST_CASE("status server answers health, readiness and metrics on its bound port", "[status_server]") {
  Metrics metrics;
  REQUIRE(metrics.gauge("cacerts_agent_ca_cert_expiry_timestamp_seconds", "expiry"));
  REQUIRE(metrics.setGauge("cacerts_agent_ca_cert_expiry_timestamp_seconds", 1735689600));
  FakeAgentState state;
  StatusServer server("127.0.0.1:0", metrics, state.handlers());
  REQUIRE(server.start());
  REQUIRE(server.port() > 0);
  auto client = loopbackClient(server.port());

  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");

  auto not_ready = client.Get("/readyz");
  REQUIRE(not_ready);
  CHECK(not_ready->status == 503);
  CHECK(not_ready->body == "not ready: no generation published yet\n");

  state.setReady(true);
  auto ready = client.Get("/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 200);

  state.setReady(false, "published generation expired at 2025-01-01T00:00:00Z");
  auto expired = client.Get("/readyz");
  REQUIRE(expired);
  CHECK(expired->status == 503);
  CHECK(expired->body.find("expired") != std::string::npos);

  auto page = client.Get("/metrics");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type") == std::string(kPrometheusContentType));
  auto value = findMetricValue(page->body, "cacerts_agent_ca_cert_expiry_timestamp_seconds");
  REQUIRE(value);
  CHECK(value->value() == 1735689600);

  auto missing = client.Get("/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(state.rotate_requests == 0);
}

TEST_CASE("status server refreshes clock-driven gauges before each metrics page, and only then", "[status_server]") {
  Metrics metrics;
  REQUIRE(metrics.gauge("cacerts_agent_migration_phase", "phase"));
  std::atomic<int> phase{1};
  std::atomic<int> refreshes{0};
  FakeAgentState state;  // outlives the server: its handlers point into it
  StatusHandlers handlers = state.handlers();
  handlers.refresh_metrics = [&] {
    ++refreshes;
    metrics.setGauge("cacerts_agent_migration_phase", phase);
  };
  StatusServer server("127.0.0.1:0", metrics, handlers);
  REQUIRE(server.start());
  auto client = loopbackClient(server.port());
  const auto phaseOnPage = [&]() -> std::optional<double> {
    auto page = client.Get("/metrics");
    REQUIRE(page);
    auto value = findMetricValue(page->body, "cacerts_agent_migration_phase");
    REQUIRE(value);
    return *value;
  };
  CHECK(phaseOnPage() == 1.0);
  phase = 2;  // the clock passed the switch: the next page shows it without any event
  CHECK(phaseOnPage() == 2.0);
  CHECK(refreshes == 2);
  REQUIRE(client.Get("/healthz"));
  REQUIRE(client.Get("/readyz"));
  CHECK(refreshes == 2);
}

TEST_CASE("status server accepts rotate from a loopback peer", "[status_server]") {
  Metrics metrics;
  FakeAgentState state;
  StatusServer server(":0", metrics, state.handlers());
  REQUIRE(server.start());
  auto client = loopbackClient(server.port());

  auto res = client.Post("/rotate", "", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 202);
  CHECK(state.rotate_requests == 1);

  auto wrong_method = client.Get("/rotate");
  REQUIRE(wrong_method);
  CHECK(wrong_method->status == 404);
  CHECK(state.rotate_requests == 1);
}

TEST_CASE("the rotate client reaches a sidecar listening on all interfaces", "[status_server]") {
  Metrics metrics;
  FakeAgentState state;
  StatusServer server(":0", metrics, state.handlers());
  REQUIRE(server.start());
  const auto status = requestRotate(":" + std::to_string(server.port()));
  INFO((status ? std::string() : status.error().message));
  CHECK(status);
  CHECK(state.rotate_requests == 1);
  CHECK(requestRotate("127.0.0.1:" + std::to_string(server.port())));
  CHECK(state.rotate_requests == 2);
}

TEST_CASE("the rotate client reports a missing sidecar and refuses non-loopback targets", "[status_server]") {
  // Find a port nobody listens on: bind one, then stop.
  int port = 0;
  {
    Metrics metrics;
    StatusServer probe("127.0.0.1:0", metrics, {});
    REQUIRE(probe.start());
    port = probe.port();
  }
  const auto none = requestRotate("127.0.0.1:" + std::to_string(port));
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::kUnavailable);
  CHECK(none.error().message.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);

  const auto remote = requestRotate("10.1.2.3:9797");
  REQUIRE_FALSE(remote);
  CHECK(remote.error().code == ErrorCode::kInvalidArgument);
  CHECK_FALSE(requestRotate("bogus"));
}

TEST_CASE("status server refuses rotate from a non-loopback peer", "[status_server]") {
  // The refusal itself is decided by isLoopbackAddress (tested above on its own); this
  // drives it end to end through a real non-loopback connection when the host has one.
  const auto address = nonLoopbackIpv4();
  if (!address) {
    WARN("no non-loopback IPv4 address on this host; only the peer check is covered");
    return;
  }
  Metrics metrics;
  FakeAgentState state;
  StatusServer server(":0", metrics, state.handlers());
  REQUIRE(server.start());
  httplib::Client client(*address, server.port());
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  auto res = client.Post("/rotate", "", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 403);
  CHECK(state.rotate_requests == 0);
  // Health and metrics stay open to every peer (kubelet probes come from the node).
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
}

TEST_CASE("a port in use is reported, not shared", "[status_server]") {
  Metrics metrics;
  StatusServer first("127.0.0.1:0", metrics, {});
  REQUIRE(first.start());
  StatusServer second("127.0.0.1:" + std::to_string(first.port()), metrics, {});
  const auto status = second.start();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == ErrorCode::kInvalidArgument);
  CHECK(status.error().message.find("--listen") != std::string::npos);
  CHECK(second.port() == 0);
}

TEST_CASE("status server stops promptly and can be stopped twice", "[status_server]") {
  Metrics metrics;
  FakeAgentState state;
  StatusServer server("127.0.0.1:0", metrics, state.handlers());
  REQUIRE(server.start());
  const int port = server.port();
  CHECK_FALSE(server.start());  // already running
  server.stop();
  server.stop();
  CHECK(server.port() == 0);
  auto client = loopbackClient(port);
  CHECK_FALSE(client.Get("/healthz"));  // nothing listens any more
}

TEST_CASE("a missing readiness callback reads as not ready", "[status_server]") {
  Metrics metrics;
  StatusServer server("127.0.0.1:0", metrics, {});
  REQUIRE(server.start());
  auto client = loopbackClient(server.port());
  auto ready = client.Get("/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 503);
  auto rotate = client.Post("/rotate", "", "text/plain");
  REQUIRE(rotate);
  CHECK(rotate->status == 503);
}

}  // namespace cacerts

namespace cacerts {

using testing::connectLoopback;
using testing::SlowClients;
using testing::timedGet;

TEST_CASE("probes are answered within a second while 50 slow or idle clients are connected", "[status_server]") {
  Metrics metrics;
  FakeAgentState state;
  state.setReady(true);
  StatusServer server("127.0.0.1:0", metrics, state.handlers());
  REQUIRE(server.start());
  SlowClients slow(server.port(), 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let them all connect
  // Past the request deadline the tricklers have been cut and come back: probes must
  // still be answered while they reconnect.
  const auto until = std::chrono::steady_clock::now() + kStatusRequestDeadline + std::chrono::seconds(1);
  int probes = 0;
  while (std::chrono::steady_clock::now() < until) {
    for (const char* path : {"/healthz", "/readyz"}) {
      const auto answer = timedGet(server.port(), path);
      INFO(path << " took " << answer.took.count() << " ms");
      CHECK(answer.status == 200);
      CHECK(answer.took < std::chrono::seconds(1));  // the kubelet probe's timeout
      ++probes;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(probes > 10);
  CHECK(slow.reconnects() > 0);  // the trickling ones were cut at the request deadline
}

TEST_CASE("a client that has not sent its whole request by the deadline is disconnected", "[status_server]") {
  Metrics metrics;
  StatusServer server("127.0.0.1:0", metrics, {});
  REQUIRE(server.start());
  const int fd = connectLoopback(server.port());
  REQUIRE(fd >= 0);
  REQUIRE(::send(fd, "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL) == 23);
  timeval wait{10, 0};  // generous: only guards the test against hanging
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  const auto started = std::chrono::steady_clock::now();
  char buf[64];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  CHECK(n == 0);  // closed without an answer
  CHECK(took < std::chrono::seconds(9));
  CHECK(took >= kStatusRequestDeadline - std::chrono::milliseconds(100));
}

TEST_CASE("more connections than the cap evict the oldest, so a new probe is still served", "[status_server]") {
  Metrics metrics;
  StatusServer server("127.0.0.1:0", metrics, {});
  REQUIRE(server.start());
  std::vector<int> idle;
  for (std::size_t i = 0; i < kStatusMaxConnections + 20; ++i) idle.push_back(connectLoopback(server.port()));
  const auto answer = timedGet(server.port(), "/healthz");
  CHECK(answer.status == 200);
  CHECK(answer.took < std::chrono::seconds(1));
  // The first idle connections were the ones evicted: they read end-of-file.
  char byte = 0;
  timeval wait{5, 0};
  ::setsockopt(idle.front(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  CHECK(::recv(idle.front(), &byte, 1, 0) == 0);
  for (int fd : idle) {
    if (fd >= 0) ::close(fd);
  }
}

TEST_CASE("oversized and malformed requests get an error answer, not a hang", "[status_server]") {
  Metrics metrics;
  StatusServer server("127.0.0.1:0", metrics, {});
  REQUIRE(server.start());
  const auto answer = [&](const std::string& request) {
    const int fd = connectLoopback(server.port());
    REQUIRE(fd >= 0);
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    timeval wait{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return got.substr(0, got.find("\r\n"));
  };
  CHECK(answer("GET /healthz HTTP/1.1\r\nX: " + std::string(kStatusMaxRequestBytes, 'a') + "\r\n\r\n") ==
        "HTTP/1.1 413 Payload Too Large");
  CHECK(answer("POST /rotate HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n") == "HTTP/1.1 413 Payload Too Large");
  CHECK(answer("nonsense\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  CHECK(answer("GET /healthz?x=1 HTTP/1.0\r\n\r\n") == "HTTP/1.1 200 OK");
}

}  // namespace cacerts
