#include "agent/reload_confirm.h"

#include <algorithm>
#include <cstdint>


namespace cacerts {
namespace {

// A wait of zero would make no progress on a clock that only moves when slept on.
constexpr Duration kMinPollInterval{10};
// The budget of the final poll, made at the deadline: enough for a local answer.
constexpr Duration kMinPollBudget = std::chrono::milliseconds(200);

// istiod's metrics page is a few hundred KB; anything far beyond that is not istiod.
constexpr std::size_t kMaxMetricsBytes = 16 * 1024 * 1024;

}  // namespace

Result<HttpUrlParts> splitHttpUrl(std::string_view url) {
  const auto bad = [&] {
    return Error{ErrorCode::kInvalidArgument,
                 "invalid URL \"" + std::string(url) + "\": expected http://host:port/path"};
  };
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad();
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return bad();
  const std::size_t authority_start = scheme_end + 3;
  std::size_t path_start = url.find_first_of("/?#", authority_start);
  if (path_start == std::string_view::npos) path_start = url.size();
  const std::string_view authority = url.substr(authority_start, path_start - authority_start);
  if (authority.empty() || authority.front() == ':' || authority.find('@') != std::string_view::npos) {
    return bad();
  }
  HttpUrlParts parts;
  parts.origin = std::string(url.substr(0, path_start));
  std::string_view target = url.substr(path_start);
  if (const auto fragment = target.find('#'); fragment != std::string_view::npos) {
    target = target.substr(0, fragment);
  }
  parts.target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  return parts;
}

Result<std::unique_ptr<ReloadConfirmer>> ReloadConfirmer::create(const ReloadConfirmOptions& options,
                                                                 Clock& clock) {
  if (options.metrics_url.empty()) {
    return std::make_unique<ReloadConfirmer>(nullptr, "", clock, options);
  }
  auto parts = splitHttpUrl(options.metrics_url);
  if (!parts) return withContext(parts.error(), "--istiod-metrics-url");
  HttpLimits limits;
  // istiod serves its metrics locally: a slow answer is as good as none for this check.
  limits.connect_timeout = std::chrono::seconds(1);
  limits.read_timeout = std::chrono::seconds(2);
  limits.request_timeout = std::chrono::seconds(2);
  limits.max_body_bytes = kMaxMetricsBytes;
  auto transport = makeHttplibTransport(parts->origin, TlsOptions{}, limits);
  if (!transport) return withContext(transport.error(), "--istiod-metrics-url");
  return std::make_unique<ReloadConfirmer>(std::move(transport).value(), parts->target, clock, options);
}

ReloadConfirmer::ReloadConfirmer(std::unique_ptr<HttpTransport> transport, std::string target, Clock& clock,
                                 const ReloadConfirmOptions& options)
    : transport_(std::move(transport)), target_(std::move(target)), clock_(clock), options_(options) {}

Duration ReloadConfirmer::pollInterval() const { return std::max(options_.poll_interval, kMinPollInterval); }

bool ReloadConfirmer::scrape(SystemTime deadline, ReloadProgress& progress) {
  if (!transport_) return false;
  ++progress.polls;
  HttpRequest request;
  request.method = "GET";
  request.target = target_;
  // A slow or trickling istiod must not hold the confirmation past its deadline.
  request.timeout = std::max(std::chrono::duration_cast<Duration>(deadline - clock_.now()), kMinPollBudget);
  auto response = transport_->send(request);
  if (!response) {
    progress.last_problem = response.error().message;
    return false;
  }
  if (response->status != 200) {
    progress.last_problem = "HTTP " + std::to_string(response->status);
    return false;
  }
  Result<IstiodMetrics> seen = readIstiodMetrics(response->body);
  if (!seen) {
    progress.last_problem = seen.error().message;
    return false;
  }
  progress.seen = std::move(seen).value();
  progress.last_problem.clear();
  return true;
}

bool ReloadConfirmer::pollOnce(SystemTime expected_not_after, SystemTime deadline, ReloadProgress& progress) {
  if (!scrape(deadline, progress)) return false;
  const std::optional<std::int64_t> value = progress.seen->chain_expiry;
  if (!value) {
    progress.last_problem = std::string(kIstiodChainExpiryMetric) + " absent";
    return false;
  }
  progress.last_value = static_cast<double>(*value);
  const std::int64_t expected =
      std::chrono::duration_cast<std::chrono::seconds>(expected_not_after.time_since_epoch()).count();
  if (*value == expected) return true;
  progress.last_problem = "value " + std::to_string(*value) + " != expected " + std::to_string(expected);
  return false;
}

}  // namespace cacerts
