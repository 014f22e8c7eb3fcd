#include "agent/status_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <list>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace cacerts {
namespace {

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

namespace {

using Steady = std::chrono::steady_clock;

struct Reply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
  }
}

std::string serialise(const Reply& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(reasonPhrase(r.status)) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// What the server needs from a request head: the request line and Content-Length.
struct RequestHead {
  std::string method, path;
  std::size_t content_length = 0;
  std::size_t head_bytes = 0;  // through the blank line
};

// nullopt while the head is incomplete; a 400 reply for a malformed one.
std::optional<Result<RequestHead>> parseHead(std::string_view buffer) {
  const auto end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  const auto bad = Error{ErrorCode::kInvalidArgument, "malformed request"};
  RequestHead head;
  head.head_bytes = end + 4;
  std::string_view rest = buffer.substr(0, end + 2);
  const auto line_end = rest.find("\r\n");
  const std::string_view line = rest.substr(0, line_end);
  rest.remove_prefix(line_end + 2);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return Result<RequestHead>(bad);
  head.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  head.path = std::string(target);
  if (line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) return Result<RequestHead>(bad);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const std::string_view field = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    const auto colon = field.find(':');
    if (colon == std::string_view::npos) return Result<RequestHead>(bad);
    if (equalsIgnoreCase(field.substr(0, colon), "content-length")) {
      std::string_view value = field.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      if (!allDigits(value) || value.size() > 9) return Result<RequestHead>(bad);
      head.content_length = static_cast<std::size_t>(std::stoul(std::string(value)));
    } else if (equalsIgnoreCase(field.substr(0, colon), "transfer-encoding")) {
      return Result<RequestHead>(bad);  // no endpoint takes a body worth chunking
    }
  }
  return Result<RequestHead>(std::move(head));
}

std::string peerAddress(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, text, sizeof text);
  } else if (peer.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, text, sizeof text);
  }
  return text;
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A listening socket on host:port, or -1. "::" is made dual-stack explicitly.
int listenOn(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    setServerSocketOptions(fd);
    if (ai->ai_family == AF_INET6) {
      int off = 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) closeFd(fd);
  }
  ::freeaddrinfo(found);
  return fd;
}

int boundPort(int fd) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return 0;
  if (local.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
}

}  // namespace

struct StatusServer::Impl {
  struct Connection {
    int fd = -1;
    std::string peer;
    Steady::time_point accepted;
    std::string in;
    std::string out;  // the serialised response once the request is complete
    std::size_t sent = 0;
  };

  std::string listen;
  const Metrics& metrics;
  StatusHandlers handlers;
  int listen_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread thread;
  // Only the server thread touches connections.
  std::list<Connection> connections;  // oldest first
  Steady::time_point accept_paused_until{};

  Impl(std::string l, const Metrics& m, StatusHandlers h)
      : listen(std::move(l)), metrics(m), handlers(std::move(h)) {}

  Reply route(const RequestHead& head, const std::string& peer) {
    Reply r;
    if (head.method == "GET" && head.path == "/healthz") {
      r.body = "ok\n";
    } else if (head.method == "GET" && head.path == "/readyz") {
      Readiness ready;
      if (handlers.readiness) {
        ready = handlers.readiness();
      } else {
        ready.reason = "readiness is not wired";
      }
      if (ready.ready) {
        r.body = "ready\n";
      } else {
        r.status = 503;
        r.body = "not ready: " + (ready.reason.empty() ? std::string("unknown") : ready.reason) + "\n";
      }
    } else if (head.method == "GET" && head.path == "/metrics") {
      r.content_type = std::string(kPrometheusContentType);
      if (handlers.refresh_metrics) handlers.refresh_metrics();
      r.body = metrics.render();
    } else if (head.method == "POST" && head.path == "/rotate") {
      if (!isLoopbackAddress(peer)) {
        spdlog::warn("event=rotate_refused peer={} reason=not_loopback", peer);
        r.status = 403;
        r.body = "rotate is accepted only from a loopback peer\n";
      } else if (!handlers.rotate) {
        r.status = 503;
        r.body = "rotate is not available\n";
      } else {
        spdlog::info("event=rotate_requested peer={}", peer);
        handlers.rotate();
        r.status = 202;
        r.body = "rotation requested\n";
      }
    } else {
      r.status = 404;
      r.body = "not found\n";
    }
    return r;
  }

  void respond(Connection& c, Reply reply) { c.out = serialise(reply); }

  // Reads what is there; once the request is complete (or cannot be), prepares the answer.
  // False when the connection is to be closed now.
  bool onReadable(Connection& c) {
    char buf[2048];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n == 0) return false;  // the client gave up before its request was complete
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c.in.append(buf, static_cast<std::size_t>(n));
      if (c.in.size() > kStatusMaxRequestBytes) {
        respond(c, Reply{413, "text/plain", "request too large\n"});
        return true;
      }
      auto head = parseHead(c.in);
      if (!head) continue;
      if (!*head) {
        respond(c, Reply{400, "text/plain", "bad request\n"});
        return true;
      }
      const RequestHead& h = **head;
      if (h.head_bytes + h.content_length > kStatusMaxRequestBytes) {
        respond(c, Reply{413, "text/plain", "request too large\n"});
        return true;
      }
      // The body is read (and ignored) so that closing does not reset the connection
      // under the client before it has read the answer.
      if (c.in.size() < h.head_bytes + h.content_length) continue;
      try {
        respond(c, route(h, c.peer));
      } catch (const std::exception&) {
        // Never echo exception text; the handlers do not throw by design.
        respond(c, Reply{500, "text/plain", "internal error\n"});
      }
      return true;
    }
  }

  // False when the connection is done (answered or failed).
  bool onWritable(Connection& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c.sent += static_cast<std::size_t>(n);
    }
    ::shutdown(c.fd, SHUT_WR);
    return false;
  }

  void acceptAll() {
    for (;;) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: free one, and do not spin on the still readable socket.
          if (!connections.empty()) dropOldest();
          accept_paused_until = Steady::now() + std::chrono::milliseconds(100);
        }
        return;  // EAGAIN, or a connection that died in the queue
      }
      if (connections.size() >= kStatusMaxConnections) dropOldest();
      Connection c;
      c.fd = fd;
      c.peer = peerAddress(peer);
      c.accepted = Steady::now();
      connections.push_back(std::move(c));
    }
  }

  void dropOldest() {
    closeFd(connections.front().fd);
    connections.pop_front();
  }

  static Steady::time_point deadlineOf(const Connection& c) {
    return c.accepted + (c.out.empty() ? kStatusRequestDeadline : kStatusResponseDeadline);
  }

  void run() {
    std::vector<pollfd> fds;
    std::vector<std::list<Connection>::iterator> polled;
    for (;;) {
      const auto now = Steady::now();
      // Expired connections are closed unanswered: a request that has not arrived in time
      // is not worth a 408 to a client that trickles.
      for (auto it = connections.begin(); it != connections.end();) {
        if (deadlineOf(*it) <= now) {
          closeFd(it->fd);
          it = connections.erase(it);
        } else {
          ++it;
        }
      }
      fds.clear();
      polled.clear();
      fds.push_back(pollfd{wake_fd, POLLIN, 0});
      const bool accepting = accept_paused_until <= now;
      fds.push_back(pollfd{accepting ? listen_fd : -1, POLLIN, 0});
      int timeout_ms = -1;  // nothing open: sleep until a client or stop()
      auto next = Steady::time_point::max();
      if (!accepting) next = accept_paused_until;
      for (auto it = connections.begin(); it != connections.end(); ++it) {
        fds.push_back(pollfd{it->fd, static_cast<short>(it->out.empty() ? POLLIN : POLLOUT), 0});
        polled.push_back(it);
        next = std::min(next, deadlineOf(*it));
      }
      if (next != Steady::time_point::max()) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
        timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
      }
      const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
      if (ready < 0 && errno != EINTR) {
        spdlog::error("event=status_server_failed reason=\"poll: {}\"", std::strerror(errno));
        return;
      }
      if (ready <= 0) continue;
      if (fds[0].revents != 0) return;  // stop()
      for (std::size_t i = 0; i < polled.size(); ++i) {
        const short ev = fds[i + 2].revents;
        if (ev == 0) continue;
        Connection& c = *polled[i];
        bool keep = true;
        if (c.out.empty()) keep = onReadable(c);
        if (keep && !c.out.empty()) keep = onWritable(c);
        if (!keep) {
          closeFd(c.fd);
          connections.erase(polled[i]);
        }
      }
      // Accept after serving, so that a flood of new connections evicts the oldest ones
      // rather than the requests that have just arrived complete.
      if (fds[1].revents != 0) acceptAll();
    }
  }

  Status start() {
    if (listen_fd >= 0) return Error{ErrorCode::kInternal, "status server already started"};
    ASSIGN_OR_RETURN(ListenAddress address, parseListenAddress(listen));
    std::vector<std::string> hosts;
    if (address.host.empty()) {
      hosts = {"::", "0.0.0.0"};  // dual stack first; IPv4 where IPv6 is disabled
    } else {
      hosts = {address.host};
    }
    for (const auto& host : hosts) {
      listen_fd = listenOn(host, address.port);
      if (listen_fd >= 0) break;
    }
    if (listen_fd < 0) {
      return Error{ErrorCode::kInvalidArgument,
                   "--listen " + listen + ": cannot listen there (port in use or address not local)"};
    }
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
      closeFd(listen_fd);
      return Error{ErrorCode::kInternal, "--listen " + listen + ": eventfd failed: " + std::strerror(errno)};
    }
    port = boundPort(listen_fd);
    thread = std::thread([this] { run(); });
    return ok();
  }

  void stop() {
    if (listen_fd < 0) return;
    const std::uint64_t one = 1;
    if (::write(wake_fd, &one, sizeof one) < 0) {
      spdlog::warn("event=status_server_stop reason=\"eventfd write failed\"");
    }
    if (thread.joinable()) thread.join();
    for (auto& c : connections) closeFd(c.fd);
    connections.clear();
    closeFd(listen_fd);
    closeFd(wake_fd);
    port = 0;
  }
};

StatusServer::StatusServer(std::string listen, const Metrics& metrics, StatusHandlers handlers)
    : impl_(std::make_unique<Impl>(std::move(listen), metrics, std::move(handlers))) {}

StatusServer::~StatusServer() { impl_->stop(); }

Status StatusServer::start() { return impl_->start(); }

int StatusServer::port() const { return impl_->port; }

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
