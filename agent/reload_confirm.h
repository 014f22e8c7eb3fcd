// ReloadConfirmer: after a publish, proves that istiod actually loaded the new signing
// certificate, by polling istiod's own metrics until
// citadel_server_cert_chain_expiry_timestamp (the notAfter of the first certificate in
// cert-chain.pem, refreshed on reload since Istio 1.24) equals the new ca-cert.pem's
// notAfter, or a timeout passes.
//
// Time comes from the Clock seam (sleeps are Clock::sleepFor, so tests use FakeClock and
// never wait), HTTP from the HttpTransport seam.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/defaults.h"
#include "common/clock.h"
#include "common/http.h"
#include "common/result.h"

namespace cacerts {

// The istiod metric that carries the serving chain's expiry, in seconds since the epoch.
inline constexpr std::string_view kIstiodChainExpiryMetric = "citadel_server_cert_chain_expiry_timestamp";

struct ReloadConfirmOptions {
  // Full URL of istiod's metrics, e.g. "http://127.0.0.1:15014/metrics". Empty disables
  // confirmation.
  std::string metrics_url = defaults::kIstiodMetricsUrl;
  Duration poll_interval = std::chrono::milliseconds(500);
  Duration timeout = defaults::kConfirmTimeout;
};

enum class ReloadOutcome {
  kConfirmed,    // istiod reports the expected notAfter
  kTimedOut,     // timeout passed without a match (istiod may still be on the old CA)
  kDisabled,     // no metrics URL configured; nothing was polled
  kInterrupted,  // Clock::interrupt() woke a wait (shutdown or a forced rotation)
};

std::string_view toString(ReloadOutcome outcome);

struct ReloadConfirmation {
  ReloadOutcome outcome = ReloadOutcome::kDisabled;
  // The metric's value at the last successful read, if any (seconds since the epoch).
  std::optional<double> last_value;
  // Why the last poll did not confirm, for the log line: "metric absent", "HTTP 503",
  // a transport error, a parse error, or "value ... != expected ...". Empty when confirmed.
  std::string last_problem;
  int polls = 0;
};

// Splits "http://host:port/path?query" into the origin ("http://host:port", as
// makeHttplibTransport expects) and the request target ("/path?query", "/" when absent).
// kInvalidArgument for anything but an http:// or https:// URL with a host.
struct HttpUrlParts {
  std::string origin;
  std::string target;
};
Result<HttpUrlParts> splitHttpUrl(std::string_view url);

class ReloadConfirmer {
 public:
  // Builds the real thing: parses options.metrics_url and creates an httplib transport
  // (short connect/read timeouts, at most 2 s a poll; istiod listens on loopback). An
  // empty URL yields a confirmer that always reports kDisabled. Errors name --istiod-metrics-url.
  static Result<std::unique_ptr<ReloadConfirmer>> create(const ReloadConfirmOptions& options, Clock& clock);

  // For tests and custom wiring: `transport` answers requests for `target` (the path part
  // of the URL). A null transport means disabled.
  ReloadConfirmer(std::unique_ptr<HttpTransport> transport, std::string target, Clock& clock,
                  const ReloadConfirmOptions& options);

  // Polls until istiod's chain expiry equals expected_not_after (compared in whole
  // seconds: the metric is rounded to the nearest integer, the time truncated to
  // seconds — X.509 times have no fractions), then returns kConfirmed. Polls once at
  // the start, then every poll_interval (capped so no wait passes the deadline), with a
  // final poll at the deadline; then kTimedOut. Any failure to read or parse is just a
  // reason to poll again. Each poll's request is cut to the time left (at least 200 ms,
  // for the final poll), so however slowly istiod answers, confirm() returns within
  // options.timeout plus about 200 ms. Blocks the calling thread; not thread-safe.
  ReloadConfirmation confirm(SystemTime expected_not_after);

  // One read of istiod's metrics, no waiting: true when it reports expected_not_after;
  // otherwise records why not in `progress` (last_problem, last_value). Counts the poll in
  // progress.polls. The request is cut to the time left before `deadline` (at least 200 ms).
  // For a caller that schedules the polls itself, every pollInterval()
  // until timeout() has passed, so that confirmation never holds up its other work (the
  // sidecar loop). Not thread-safe.
  bool pollOnce(SystemTime expected_not_after, SystemTime deadline, ReloadConfirmation& progress);
  Duration pollInterval() const;
  Duration timeout() const { return std::max(options_.timeout, Duration::zero()); }

  bool enabled() const { return transport_ != nullptr; }

 private:
  std::unique_ptr<HttpTransport> transport_;
  std::string target_;
  Clock& clock_;
  ReloadConfirmOptions options_;
};

}  // namespace cacerts
