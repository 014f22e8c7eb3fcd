// StatusServer: the sidecar's plain-HTTP health, metrics and control endpoint (--listen).
//
//   GET  /healthz  200 "ok" while the server runs (liveness: the process is alive).
//   GET  /readyz   200 while the readiness callback says a valid, unexpired generation is
//                  published, else 503 with the callback's reason. Must not depend on
//                  Vault: an outage must not take istiod out of its Service.
//   GET  /metrics  Metrics::render() in the Prometheus text format.
//   POST /rotate   asks for a renewal now (202), only from a loopback peer (127.0.0.0/8,
//                  ::1 or their IPv4-mapped forms); any other peer gets 403. The check uses
//                  the TCP peer address, never a header.
//
// One thread of its own, started by start() and joined by stop(), serves every connection
// with poll(): a slow or idle client costs a socket and a small buffer, never a worker, so
// probes are answered while others trickle. Each connection must deliver its whole request
// (at most kStatusMaxRequestBytes) within kStatusRequestDeadline of being accepted and is
// closed after one response (Connection: close). At most kStatusMaxConnections are open;
// a new connection beyond that closes the oldest one, so a fresh probe is always read.
// While no connection is open the thread sleeps in poll() without a timeout (no periodic
// wake-ups); stop() wakes it through an eventfd and is prompt whatever the clients do.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "common/result.h"

namespace cacerts {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not ready, e.g. "no generation published yet"; shown in the 503
};

// Both callbacks run on a server thread: they must be thread-safe and quick (read state
// under a lock; never call Vault). A missing callback means "not ready" / "rotate 503".
struct StatusHandlers {
  std::function<Readiness()> readiness;
  // Should only record the request and wake the sidecar loop (e.g. set a flag and call
  // Clock::interrupt()); the renewal itself happens on the loop's thread.
  std::function<void()> rotate;
  // Called before each /metrics render, on the serving thread: sets the gauges that are a
  // function of the clock rather than of an event. Must be quick and thread-safe.
  std::function<void()> refresh_metrics;
};

// A parsed --listen value: ":9797" (all interfaces), "127.0.0.1:9797", "[::1]:9797",
// "localhost:9797". Port 0 asks the kernel for a free port (tests).
struct ListenAddress {
  std::string host;  // empty for all interfaces; IPv6 without brackets
  int port = 0;
};
// kInvalidArgument naming --listen for anything else.
Result<ListenAddress> parseListenAddress(std::string_view listen);

// True for 127.0.0.0/8, ::1, and ::ffff:127.x.y.z as inet_ntop prints peers (numeric,
// no brackets, no port). False for everything else, including unparseable text.
bool isLoopbackAddress(std::string_view address);

inline constexpr std::chrono::milliseconds kStatusRequestDeadline{2000};  // accept to full request
inline constexpr std::chrono::milliseconds kStatusResponseDeadline{5000};  // accept to response sent
inline constexpr std::size_t kStatusMaxConnections = 128;
inline constexpr std::size_t kStatusMaxRequestBytes = 8 * 1024;  // request line, headers and body

class StatusServer {
 public:
  // No I/O here; start() binds.
  StatusServer(std::string listen, const Metrics& metrics, StatusHandlers handlers);
  ~StatusServer();  // stops and joins
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and starts serving; returns once connections are being accepted. All
  // interfaces means a dual-stack "::" socket, or "0.0.0.0" where IPv6 is unavailable.
  // Errors: kInvalidArgument for a malformed --listen or an address that cannot be bound
  // (port in use, address not local); kInternal if already started.
  Status start();

  // The bound TCP port (the kernel's choice for port 0); 0 before start().
  int port() const;

  // Stops accepting, closes every open connection (answered or not) and joins the server
  // thread. Idempotent; must not race with start().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The client side of `cacerts-agent rotate`: POST /rotate to the sidecar's --listen
// address over loopback (127.0.0.1 when it listens on all interfaces). Errors:
// kInvalidArgument for a --listen that is not loopback or all interfaces (the sidecar
// would refuse a non-loopback peer anyway), kUnavailable when nothing answers,
// kPermissionDenied for a 403, kInternal for any other non-2xx answer.
Status requestRotate(const std::string& listen);

}  // namespace cacerts
