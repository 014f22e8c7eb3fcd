#include "common/redirect_transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>

#include "common/secret.h"

namespace cacerts {
namespace {

struct Location {
  std::string scheme;  // lower-case
  std::string base;    // scheme://authority, as the factory expects it
  std::string target;  // path and query, "/" at least
};

std::string schemeOf(const std::string& url) {
  const auto sep = url.find("://");
  std::string s = sep == std::string::npos ? "" : url.substr(0, sep);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Only absolute http(s) addresses: Vault's standby builds Location from the active node's
// advertised address, and a relative one would name the standby itself again.
std::optional<Location> parseLocation(const std::string& value) {
  if (value.empty() || value.size() > 4096) return std::nullopt;
  for (char c : value) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ') return std::nullopt;
  }
  Location out;
  out.scheme = schemeOf(value);
  if (out.scheme != "https" && out.scheme != "http") return std::nullopt;
  const auto authority = value.find("://") + 3;
  auto end = value.find_first_of("/?#", authority);
  if (end == std::string::npos) end = value.size();
  const std::string host_port = value.substr(authority, end - authority);
  // Userinfo would be taken for part of the host name by the transport.
  if (host_port.empty() || host_port.find('@') != std::string::npos) return std::nullopt;
  out.base = out.scheme + "://" + host_port;
  out.target = value.substr(end);
  const auto fragment = out.target.find('#');
  if (fragment != std::string::npos) out.target.erase(fragment);
  if (out.target.empty() || out.target.front() != '/') out.target.insert(0, "/");
  return out;
}

bool isFollowedRedirect(int status) { return status == 307 || status == 308; }

class RedirectFollowingTransport final : public HttpTransport {
 public:
  RedirectFollowingTransport(std::string base_url, std::unique_ptr<HttpTransport> primary,
                             HttpTransportFactory factory)
      : base_url_(std::move(base_url)), primary_(std::move(primary)), factory_(std::move(factory)) {}

  Result<HttpResponse> send(const HttpRequest& request) override {
    const auto started = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(HttpResponse first, primary_->send(request));
    if (!isFollowedRedirect(first.status)) return first;

    const auto header = first.headers.find("location");
    const std::optional<Location> to =
        header == first.headers.end() ? std::nullopt : parseLocation(header->second);
    if (!to) {
      return Error{ErrorCode::kInvalidArgument,
                   base_url_ + " answered " + std::to_string(first.status) +
                       " (a Vault standby redirect) without a usable absolute Location address"};
    }
    if (schemeOf(base_url_) == "https" && to->scheme != "https") {
      return Error{ErrorCode::kInvalidArgument,
                   "refusing to follow a redirect from " + base_url_ + " to " + to->base +
                       ": https to http would send the Vault token in clear text; set the active "
                       "node's api_addr to an https:// address"};
    }
    ASSIGN_OR_RETURN(HttpTransport * target, transportFor(to->base));

    HttpRequest again = request;
    // Location already carries the query the original transport sent, LIST's list=true too.
    if (again.method == "LIST") again.method = "GET";
    again.target = to->target;
    if (request.timeout > Duration::zero()) {
      const auto used = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - started);
      again.timeout = std::max(request.timeout - used, Duration(std::chrono::milliseconds(1)));
    }
    Result<HttpResponse> second = target->send(again);
    cleanseMemory(again.body.data(), again.body.size());
    for (auto& [name, value] : again.headers) cleanseMemory(value.data(), value.size());
    if (!second) return second.error();
    if (second->status >= 300 && second->status < 400) {
      const auto next = second->headers.find("location");
      const std::optional<Location> then =
          next == second->headers.end() ? std::nullopt : parseLocation(next->second);
      return Error{ErrorCode::kInvalidArgument,
                   "Vault redirected twice in a row: " + base_url_ + " to " + to->base + ", then to " +
                       (then ? then->base : std::string("an unusable address")) +
                       "; only one redirect is followed (a redirect loop, or a standby pointing at "
                       "another standby)"};
    }
    return second;
  }

  void releaseConnection() override {
    primary_->releaseConnection();
    if (target_) target_->releaseConnection();
  }

 private:
  Result<HttpTransport*> transportFor(const std::string& base) {
    if (target_ && target_base_ == base) return target_.get();
    ASSIGN_OR_RETURN(std::unique_ptr<HttpTransport> made, factory_(base));
    // Logged when the target changes, not per request: a standby redirects every call.
    spdlog::info("event=vault_redirect from={} to={}", base_url_, base);
    target_ = std::move(made);
    target_base_ = base;
    return target_.get();
  }

  std::string base_url_;
  std::unique_ptr<HttpTransport> primary_;
  HttpTransportFactory factory_;
  std::string target_base_;
  std::unique_ptr<HttpTransport> target_;
};

}  // namespace

std::unique_ptr<HttpTransport> makeRedirectFollowingTransport(std::string base_url,
                                                              std::unique_ptr<HttpTransport> primary,
                                                              HttpTransportFactory factory) {
  return std::make_unique<RedirectFollowingTransport>(std::move(base_url), std::move(primary), std::move(factory));
}

}  // namespace cacerts
