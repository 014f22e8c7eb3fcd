// The only file that includes httplib.h for the client side.
#include "common/http.h"

#include "common/secret.h"

#include <httplib.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace cacerts {
namespace {

struct ParsedUrl {
  std::string scheme, host;
  int port = 0;
};

Result<ParsedUrl> parseBaseUrl(const std::string& url) {
  auto bad = [&] {
    return Error{ErrorCode::kInvalidArgument,
                 "invalid address \"" + url + "\": expected https://host[:port] or http://host[:port]"};
  };
  ParsedUrl out;
  const auto sep = url.find("://");
  if (sep == std::string::npos) return bad();
  out.scheme = url.substr(0, sep);
  if (out.scheme != "https" && out.scheme != "http") return bad();
  std::string rest = url.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return bad();
  std::string port_text;
  if (rest.front() == '[') {  // [::1]:8200
    const auto close = rest.find(']');
    if (close == std::string::npos) return bad();
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad();
      port_text = rest.substr(close + 2);
    }
  } else {
    const auto colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) return bad();
  if (port_text.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                             [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return bad();
    }
    out.port = std::stoi(port_text);
    if (out.port <= 0 || out.port > 65535) return bad();
  }
  return out;
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

// True when nothing can be read from an idle kept-alive connection. HTTP/1.1 servers send
// nothing between responses, so anything readable is the end of the connection: a FIN, an
// RST or a TLS close_notify. httplib's own liveness probe peeks for bytes and so takes a
// close_notify for a live connection; the request would then fail on it.
bool idleConnectionQuiet(int fd) {
  pollfd p{};
  p.fd = fd;
  p.events = POLLIN;
  return ::poll(&p, 1, 0) == 0;
}

using Steady = std::chrono::steady_clock;

// Enforces a request's overall deadline. httplib's timeouts restart with every byte, so a
// peer that trickles defeats them; this thread shuts the request's socket down when the
// deadline passes, which wakes httplib's poll() and fails its read, write or handshake.
// shutdown() rather than ClientImpl::stop(): stop() waits on the mutex httplib holds for
// the whole connect and TLS handshake, which is where a trickling peer may hold us.
// The thread starts with the first request and sleeps on a condition variable while no
// request is in flight.
class DeadlineWatchdog {
 public:
  DeadlineWatchdog() = default;
  ~DeadlineWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  DeadlineWatchdog(const DeadlineWatchdog&) = delete;
  DeadlineWatchdog& operator=(const DeadlineWatchdog&) = delete;

  // A request starts: fd is its socket if one is already open (-1 otherwise).
  void arm(Steady::time_point deadline, int fd) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      deadline_ = deadline;
      fd_ = fd;
      fired_ = false;
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    cv_.notify_all();
  }
  // httplib opened a socket for the armed request (its socket-options hook).
  void socketOpened(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!deadline_) return;
    fd_ = fd;
    if (fired_) ::shutdown(fd, SHUT_RDWR);  // opened after the deadline: fail at once
  }
  // The request is over; whether the deadline cut it short. Wakes the thread now, while
  // the process is busy anyway, so that it does not wake at the old deadline during idle.
  bool disarm() {
    bool fired = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      deadline_.reset();
      fd_ = -1;
      fired = fired_;
    }
    cv_.notify_all();
    return fired;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      if (!deadline_ || fired_) {
        cv_.wait(lock);
        continue;
      }
      const auto deadline = *deadline_;
      cv_.wait_until(lock, deadline);
      if (deadline_ && !fired_ && Steady::now() >= *deadline_) {
        fired_ = true;
        // fd_ is the armed request's socket: httplib closes it only after send() returns,
        // and disarm() runs before that.
        if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Steady::time_point> deadline_;
  int fd_ = -1;
  bool fired_ = false;
  bool quit_ = false;
  std::thread thread_;
};

class HttplibTransport final : public HttpTransport {
 public:
  HttplibTransport(std::unique_ptr<httplib::ClientImpl> client, std::string origin, HttpLimits limits)
      : client_(std::move(client)), origin_(std::move(origin)), limits_(limits) {
    client_->set_socket_options([this](socket_t sock) { watchdog_.socketOpened(sock); });
  }

  Result<HttpResponse> send(const HttpRequest& request) override {
    const bool reused = keepConnectionIfUsable();
    const auto started = Steady::now();
    const auto deadline = started + budget(request);
    Attempt a = sendOnce(request, deadline);
    // A reused connection can still be closed by the server between our check and the
    // request reaching it. Such a failure comes at once and before the status line: the
    // server did not answer this request, so it is sent once more on a new connection,
    // as a fresh connection would have carried it in the first place (httplib has closed
    // the failed one). A timeout is not that: it is reported, not doubled.
    const bool fast = Steady::now() - started < std::min(limits_.read_timeout, budget(request));
    if (!a.sent && !a.deadline_passed && reused && fast && !a.status_line_received && !a.too_large &&
        (a.error == httplib::Error::Read || a.error == httplib::Error::Write)) {
      spdlog::debug("event=http_reconnect origin={} reason=\"kept-alive connection closed by the peer\"", origin_);
      a = sendOnce(request, deadline);
    }
    if (a.deadline_passed) {
      return Error{ErrorCode::kUnavailable,
                   origin_ + ": no complete response within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(budget(request)).count()) +
                       " ms (the request's time budget; the peer is too slow or trickles)"};
    }
    if (a.too_large) {
      return Error{ErrorCode::kUnavailable, origin_ + ": response larger than " +
                                                std::to_string(limits_.max_body_bytes) + " bytes refused"};
    }
    if (!a.sent) return mapError(a.error);
    last_used_ = std::chrono::steady_clock::now();
    return std::move(a.response);
  }

  void releaseConnection() override {
    if (client_->is_socket_open()) client_->stop();
  }

 private:
  struct Attempt {
    bool sent = false;
    bool deadline_passed = false;
    bool status_line_received = false;
    bool too_large = false;
    httplib::Error error = httplib::Error::Success;
    HttpResponse response;
  };

  // Whether the next request goes over the connection left open by the previous one;
  // closes that connection when it idled too long or the peer has ended it.
  bool keepConnectionIfUsable() {
    if (!client_->is_socket_open()) return false;
    const bool recent = std::chrono::steady_clock::now() - last_used_ < limits_.keep_alive_idle;
    if (recent && idleConnectionQuiet(client_->socket())) return true;
    client_->stop();
    return false;
  }

  Duration budget(const HttpRequest& request) const {
    return request.timeout > Duration::zero() ? std::min(request.timeout, limits_.request_timeout)
                                              : limits_.request_timeout;
  }

  Attempt sendOnce(const HttpRequest& request, Steady::time_point deadline) {
    Attempt a;
    const auto left = std::max(std::chrono::duration_cast<std::chrono::microseconds>(deadline - Steady::now()),
                               std::chrono::microseconds(1000));
    // The per-step timeouts never exceed what is left; the watchdog covers the rest.
    const auto io = std::min(std::chrono::duration_cast<std::chrono::microseconds>(limits_.read_timeout), left);
    client_->set_read_timeout(io);
    client_->set_write_timeout(io);
    client_->set_connection_timeout(
        std::min(std::chrono::duration_cast<std::chrono::microseconds>(limits_.connect_timeout), left));
    httplib::Request req;
    req.method = request.method == "LIST" ? "GET" : request.method;
    req.path = request.target;
    if (request.method == "LIST") {
      req.path += (req.path.find('?') == std::string::npos ? "?" : "&");
      req.path += "list=true";
    }
    for (const auto& [name, value] : request.headers) req.headers.emplace(name, value);
    if (!request.body.empty()) {
      req.body = request.body;
      req.headers.emplace("Content-Type", "application/json");
    }
    req.response_handler = [&](const httplib::Response& r) {
      const auto declared = r.get_header_value("Content-Length");
      if (!declared.empty() && std::strtoull(declared.c_str(), nullptr, 10) > limits_.max_body_bytes) {
        a.too_large = true;
        return false;
      }
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (a.response.body.size() + n > limits_.max_body_bytes) {
        a.too_large = true;
        return false;
      }
      a.response.body.append(data, n);
      return true;
    };
    httplib::Response res;
    watchdog_.arm(deadline, client_->is_socket_open() ? client_->socket() : -1);
    a.sent = client_->send(req, res, a.error);
    if (watchdog_.disarm()) {
      // The socket is shut down: whatever httplib made of it, this connection is finished.
      // A response completed just before that is still good.
      client_->stop();
      a.deadline_passed = !a.sent;
    }
    // The request body may carry a credential (JWT, secret_id): wipe our copy now.
    cleanseMemory(req.body.data(), req.body.size());
    a.status_line_received = res.status >= 0;
    if (!a.sent || a.too_large) {
      cleanseMemory(a.response.body.data(), a.response.body.size());
      a.response.body.clear();
      return a;
    }
    a.response.status = res.status;
    for (const auto& [name, value] : res.headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      a.response.headers[lower] = value;
    }
    return a;
  }

  Error mapError(httplib::Error err) const {
    switch (err) {
      case httplib::Error::SSLServerVerification:
        return Error{ErrorCode::kInvalidArgument,
                     origin_ + ": TLS server certificate verification failed (check --vault-cacert/VAULT_CACERT, "
                               "--vault-capath and --vault-tls-server-name)"};
      case httplib::Error::SSLLoadingCerts:
        return Error{ErrorCode::kInvalidArgument,
                     origin_ + ": could not load the TLS CA or client certificate files"};
      case httplib::Error::Connection:
        return Error{ErrorCode::kUnavailable, origin_ + ": connection failed (refused or unreachable)"};
      case httplib::Error::ConnectionTimeout:
        return Error{ErrorCode::kUnavailable, origin_ + ": connect timed out"};
      case httplib::Error::Read:
        return Error{ErrorCode::kUnavailable,
                     origin_ + ": reading the response failed (timeout, reset or truncated body)"};
      case httplib::Error::Write:
        return Error{ErrorCode::kUnavailable, origin_ + ": sending the request failed (connection reset)"};
      case httplib::Error::SSLConnection:
        return Error{ErrorCode::kUnavailable, origin_ + ": TLS handshake failed"};
      default:
        return Error{ErrorCode::kUnavailable, origin_ + ": HTTP error: " + httplib::to_string(err)};
    }
  }

  // Declared before client_: destroyed after it, so no socket hook outlives it.
  DeadlineWatchdog watchdog_;
  std::unique_ptr<httplib::ClientImpl> client_;
  std::string origin_;
  HttpLimits limits_;
  std::chrono::steady_clock::time_point last_used_{};
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> makeHttplibTransport(const std::string& base_url,
                                                            const TlsOptions& tls,
                                                            const HttpLimits& limits) {
  ASSIGN_OR_RETURN(ParsedUrl url, parseBaseUrl(base_url));
  std::unique_ptr<httplib::ClientImpl> client;
  if (url.scheme == "https") {
    if (tls.client_cert.empty() != tls.client_key.empty()) {
      return Error{ErrorCode::kInvalidArgument,
                   "--vault-client-cert and --vault-client-key (VAULT_CLIENT_CERT/VAULT_CLIENT_KEY) must be set together"};
    }
    for (const auto& [path, option] : {std::pair{tls.ca_file, "--vault-cacert"},
                                       std::pair{tls.client_cert, "--vault-client-cert"},
                                       std::pair{tls.client_key, "--vault-client-key"}}) {
      if (!path.empty() && !readable(path)) {
        return Error{ErrorCode::kInvalidArgument, std::string(option) + ": cannot read " + path};
      }
    }
    // With a server-name override, connect to the URL's host but send SNI and verify
    // against the override, like VAULT_TLS_SERVER_NAME.
    const std::string sni_host = tls.server_name.empty() ? url.host : tls.server_name;
    std::unique_ptr<httplib::SSLClient> ssl;
    if (tls.client_cert.empty()) {
      ssl = std::make_unique<httplib::SSLClient>(sni_host, url.port);
    } else {
      ssl = std::make_unique<httplib::SSLClient>(sni_host, url.port, tls.client_cert, tls.client_key);
    }
    if (!ssl->is_valid()) {
      return Error{ErrorCode::kInvalidArgument,
                   "the TLS client certificate or key could not be loaded (--vault-client-cert/--vault-client-key)"};
    }
    if (!tls.server_name.empty()) ssl->set_hostname_addr_map({{tls.server_name, url.host}});
    if (!tls.ca_file.empty() || !tls.ca_path.empty()) ssl->set_ca_cert_path(tls.ca_file, tls.ca_path);
    ssl->enable_server_certificate_verification(!tls.skip_verify);
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(url.host, url.port);
  }
  // Without keep-alive httplib sends "Connection: close" and closes after each response.
  client->set_keep_alive(limits.keep_alive_idle > Duration::zero());
  // Headers and body go out in separate writes; on a kept-alive connection Nagle's
  // algorithm would hold the body back until the server's delayed ACK (40 ms).
  client->set_tcp_nodelay(true);
  client->set_follow_location(false);
  client->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(limits.connect_timeout));
  client->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(limits.read_timeout));
  client->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(limits.read_timeout));
  return std::unique_ptr<HttpTransport>(
      std::make_unique<HttplibTransport>(std::move(client), url.scheme + "://" + url.host + ":" + std::to_string(url.port), limits));
}

}  // namespace cacerts
