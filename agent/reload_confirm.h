// ReloadConfirmer: after a publish, scrapes istiod's own metrics (the gauges and version
// of reload_verdict.h) until they prove istiod loaded the new set, or a timeout passes.
// pollOnce is the simple form: citadel_server_cert_chain_expiry_timestamp (the notAfter of
// the first certificate in cert-chain.pem, refreshed on reload since Istio 1.24) equals
// the new ca-cert.pem's notAfter.
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
#include "agent/reload_verdict.h"
#include "common/clock.h"
#include "common/http.h"
#include "common/result.h"

namespace cacerts {

struct ReloadConfirmOptions {
  // Full URL of istiod's metrics, e.g. "http://127.0.0.1:15014/metrics". Empty disables
  // confirmation.
  std::string metrics_url = defaults::kIstiodMetricsUrl;
  Duration poll_interval = std::chrono::milliseconds(500);
  Duration timeout = defaults::kConfirmTimeout;
};

// What the polls of one confirmation have seen so far; the caller (the sidecar loop)
// schedules the polls and owns the deadline.
struct ReloadProgress {
  // The metric's value at the last successful read, if any (seconds since the epoch).
  std::optional<double> last_value;
  // Everything the last successful scrape showed (for judgeReload).
  std::optional<IstiodMetrics> seen;
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

  // One read of istiod's metrics, no waiting: true when istiod's chain expiry equals
  // expected_not_after (compared in whole seconds: the metric is rounded to the nearest
  // integer, the time truncated to seconds; X.509 times have no fractions). Otherwise
  // records why not in `progress`; any failure to read or parse is just a reason to poll
  // again. Counts the poll in progress.polls. The request is cut to the time left before
  // `deadline` (at least 200 ms, for a final poll at the deadline), so however slowly
  // istiod answers, a caller polling every pollInterval() until timeout() has passed is done
  // within timeout() plus about 200 ms. Always false when disabled. Not thread-safe.
  bool pollOnce(SystemTime expected_not_after, SystemTime deadline, ReloadProgress& progress);
  // One read, no judgement: true when the page was read and parsed, then progress.seen
  // holds what it showed; otherwise progress.last_problem says why not (progress.seen
  // keeps the previous scrape). Same budget and counting as pollOnce.
  bool scrape(SystemTime deadline, ReloadProgress& progress);
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
