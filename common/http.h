// HttpTransport: one HTTP(S) round trip. The only seam through which the agent talks to
// Vault (and to istiod's metrics endpoint); HttplibTransport is the only code that
// includes httplib.h.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace cacerts {

struct HttpRequest {
  std::string method;  // GET, POST, PUT, LIST (sent as GET with ?list=true), DELETE
  std::string target;  // absolute path plus query, e.g. "/v1/secret/data/x?version=2"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // may hold a credential: never logged, wiped by the caller
  // Time budget for the whole round trip: connect, TLS handshake, sending the request and
  // reading the full response, together. The smaller of this and HttpLimits::request_timeout
  // applies (zero: the limit alone). A peer that trickles bytes cannot stretch it: when it
  // runs out the transport shuts the socket down, whatever phase the request is in (name
  // resolution aside, which the C library does not let anyone cut short). Lets a caller
  // with a deadline keep one hung or trickling response from outliving it.
  Duration timeout = Duration::zero();
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct TlsOptions {
  std::string ca_file;          // PEM bundle to verify the server (VAULT_CACERT)
  std::string ca_path;          // directory of PEM CA files (VAULT_CAPATH)
  std::string client_cert;      // PEM client certificate file (VAULT_CLIENT_CERT)
  std::string client_key;       // PEM client key file (VAULT_CLIENT_KEY)
  std::string server_name;      // SNI and verification name override (VAULT_TLS_SERVER_NAME)
  bool skip_verify = false;     // VAULT_SKIP_VERIFY
};

struct HttpLimits {
  Duration connect_timeout = std::chrono::seconds(5);
  // Longest wait for any one read or write; restarts whenever a byte moves, so it cannot
  // bound a request on its own: request_timeout does.
  Duration read_timeout = std::chrono::seconds(30);
  // Longest any one request may take from start to the end of its response.
  Duration request_timeout = std::chrono::seconds(60);
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  // Keep-alive: a connection is reused by the next request only if it has been idle for
  // less than this (zero: one connection per request). Keep it well below any server or
  // load-balancer idle timeout, so that a reused connection is one the peer still has;
  // reuse then only joins the requests of one burst (one init, one rotation), and a
  // long-lived caller does not depend on how a middlebox treats idle connections.
  Duration keep_alive_idle = Duration::zero();
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Returns the response for any status code. Errors: kUnavailable for connection
  // refused/reset, timeouts (including the request's overall budget, see
  // HttpRequest::timeout), TLS handshake failures, truncated or oversized bodies;
  // kInvalidArgument for server-certificate verification failures (wrong CA, wrong name):
  // retrying cannot fix them, the configuration must change.
  // With keep-alive (HttpLimits::keep_alive_idle), a connection the peer closed or reset
  // while it was kept open never surfaces as an error: it is replaced before the request
  // when that is visible, and otherwise the request is sent once more on a new connection
  // if the failure came at once and before the response's status line (so never for a
  // timeout, a cut-off body or an oversized one). Any failure closes the connection, so
  // the next request starts on a new one.
  // The process must ignore SIGPIPE: httplib writes to sockets without MSG_NOSIGNAL.
  // Not thread-safe: one request at a time. An implementation may keep one helper thread
  // that sleeps while no request is in flight (no periodic wake-ups).
  virtual Result<HttpResponse> send(const HttpRequest& request) = 0;

  // Closes a kept-alive connection now; the next send() opens a new one. Long-lived
  // callers call it after each burst of requests so that no socket stays open while they
  // idle. A no-op without keep-alive.
  virtual void releaseConnection() {}
};

// Base URL: "https://host:port" or "http://host:port" (no path). Fails on a malformed
// URL or unreadable TLS files (kInvalidArgument, naming the option).
Result<std::unique_ptr<HttpTransport>> makeHttplibTransport(const std::string& base_url,
                                                            const TlsOptions& tls,
                                                            const HttpLimits& limits);

}  // namespace cacerts
