#include "agent/status_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace cacerts {
namespace {

// Enough for probes and a scraper at the same time; the endpoint has no other users.
constexpr std::size_t kServerThreads = 2;
constexpr auto kStartupWait = std::chrono::seconds(5);

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Only SO_REUSEADDR (restart while old connections linger in TIME_WAIT). Deliberately not
// SO_REUSEPORT: a second agent on the same port must fail to bind, not share it.
void setServerSocketOptions(int sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

Result<ListenAddress> parseListenAddress(std::string_view listen) {
  const auto bad = [&] {
    return Error{ErrorCode::kInvalidArgument,
                 "--listen \"" + std::string(listen) + "\": expected :PORT, HOST:PORT or [IPV6]:PORT"};
  };
  ListenAddress out;
  std::string_view port_text;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') return bad();
    out.host = std::string(listen.substr(1, close - 1));
    if (out.host.empty()) return bad();
    port_text = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string_view::npos) return bad();
    out.host = std::string(listen.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad();  // IPv6 needs brackets
    port_text = listen.substr(colon + 1);
  }
  if (!allDigits(port_text) || port_text.size() > 5) return bad();
  out.port = std::stoi(std::string(port_text));
  if (out.port > 65535) return bad();
  return out;
}

bool isLoopbackAddress(std::string_view address) {
  if (address.empty() || address.size() > INET6_ADDRSTRLEN) return false;
  const std::string text(address);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

struct StatusServer::Impl {
  std::string listen;
  const Metrics& metrics;
  StatusHandlers handlers;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<bool> finished{false};
  int port = 0;

  Impl(std::string l, const Metrics& m, StatusHandlers h)
      : listen(std::move(l)), metrics(m), handlers(std::move(h)) {}

  void installRoutes() {
    server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      Readiness r;
      if (handlers.readiness) {
        r = handlers.readiness();
      } else {
        r.reason = "readiness is not wired";
      }
      if (r.ready) {
        res.set_content("ready\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content("not ready: " + (r.reason.empty() ? std::string("unknown") : r.reason) + "\n",
                        "text/plain");
      }
    });
    server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), std::string(kPrometheusContentType).c_str());
    });
    server->Post("/rotate", [this](const httplib::Request& req, httplib::Response& res) {
      if (!isLoopbackAddress(req.remote_addr)) {
        spdlog::warn("event=rotate_refused peer={} reason=not_loopback", req.remote_addr);
        res.status = 403;
        res.set_content("rotate is accepted only from a loopback peer\n", "text/plain");
        return;
      }
      if (!handlers.rotate) {
        res.status = 503;
        res.set_content("rotate is not available\n", "text/plain");
        return;
      }
      spdlog::info("event=rotate_requested peer={}", req.remote_addr);
      handlers.rotate();
      res.status = 202;
      res.set_content("rotation requested\n", "text/plain");
    });
    // Never echo exception text (it could come from anywhere); the handlers above do not
    // throw by design, this is the last line of defence.
    server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content("internal error\n", "text/plain");
    });
  }

  Status start() {
    if (server) return Error{ErrorCode::kInternal, "status server already started"};
    ASSIGN_OR_RETURN(ListenAddress address, parseListenAddress(listen));
    server = std::make_unique<httplib::Server>();
    server->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
    server->set_socket_options(setServerSocketOptions);
    // One request per connection and short timeouts: a silent or slow client holds a
    // worker (and delays stop()) for about a second at most.
    server->set_keep_alive_max_count(1);
    server->set_keep_alive_timeout(1);
    server->set_read_timeout(1, 0);
    server->set_write_timeout(2, 0);
    server->set_payload_max_length(64 * 1024);
    installRoutes();

    std::vector<std::string> hosts;
    if (address.host.empty()) {
      hosts = {"::", "0.0.0.0"};  // dual stack first; IPv4 where IPv6 is disabled
    } else {
      hosts = {address.host};
    }
    bool bound = false;
    for (const auto& host : hosts) {
      if (address.port == 0) {
        const int p = server->bind_to_any_port(host);
        if (p > 0) {
          port = p;
          bound = true;
        }
      } else if (server->bind_to_port(host, address.port)) {
        port = address.port;
        bound = true;
      }
      if (bound) break;
    }
    if (!bound) {
      server.reset();
      return Error{ErrorCode::kInvalidArgument,
                   "--listen " + listen + ": cannot listen there (port in use or address not local)"};
    }
    thread = std::thread([this] {
      server->listen_after_bind();
      finished = true;
    });
    // httplib 0.11 has no wait_until_ready(); stop() before the accept loop has started
    // would be a no-op, so wait until it runs.
    const auto give_up = std::chrono::steady_clock::now() + kStartupWait;
    while (!server->is_running() && !finished && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!server->is_running()) {
      stop();
      return Error{ErrorCode::kInternal, "--listen " + listen + ": the status server did not start"};
    }
    return ok();
  }

  void stop() {
    if (!server) return;
    server->stop();
    if (thread.joinable()) thread.join();
    server.reset();
    finished = false;
  }
};

StatusServer::StatusServer(std::string listen, const Metrics& metrics, StatusHandlers handlers)
    : impl_(std::make_unique<Impl>(std::move(listen), metrics, std::move(handlers))) {}

StatusServer::~StatusServer() { impl_->stop(); }

Status StatusServer::start() { return impl_->start(); }

int StatusServer::port() const { return impl_->server ? impl_->port : 0; }

void StatusServer::stop() { impl_->stop(); }

Status requestRotate(const std::string& listen) {
  ASSIGN_OR_RETURN(ListenAddress address, parseListenAddress(listen));
  std::string host = address.host;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    host = "127.0.0.1";
  } else if (host != "localhost" && !isLoopbackAddress(host)) {
    return Error{ErrorCode::kInvalidArgument,
                 "--listen " + listen +
                     ": rotate talks to the sidecar over loopback; use the sidecar's --listen value "
                     "when it is :PORT or a loopback address"};
  }
  if (address.port == 0) {
    return Error{ErrorCode::kInvalidArgument, "--listen " + listen + ": rotate needs the sidecar's port"};
  }
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(address.port);
  httplib::Client client(host, address.port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  client.set_write_timeout(5, 0);
  client.set_keep_alive(false);
  auto res = client.Post("/rotate", "", "text/plain");
  if (!res) {
    return Error{ErrorCode::kUnavailable,
                 "no sidecar answered on " + where + " (" + httplib::to_string(res.error()) +
                     "); is `cacerts-agent sidecar` running with this --listen?"};
  }
  if (res->status >= 200 && res->status < 300) return ok();
  if (res->status == 403) {
    return Error{ErrorCode::kPermissionDenied,
                 "the sidecar on " + where + " refused rotate (403: not a loopback peer)"};
  }
  return Error{ErrorCode::kInternal, "the sidecar on " + where + " answered rotate with HTTP " +
                                         std::to_string(res->status)};
}

}  // namespace cacerts
