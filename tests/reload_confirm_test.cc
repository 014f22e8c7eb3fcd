#include "agent/reload_confirm.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "tests/fakes.h"
#include "tests/support/trickling_peer.h"

namespace cacerts {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeClock;
using testing::FakeHttpTransport;

const SystemTime kNotAfter = SystemTime(seconds(1'735'689'600));

std::string metricsPage(const std::string& value) {
  return "# HELP citadel_server_cert_chain_expiry_timestamp The unix timestamp.\n"
         "# TYPE citadel_server_cert_chain_expiry_timestamp gauge\n"
         "citadel_server_cert_chain_expiry_timestamp " +
         value + "\n";
}

HttpResponse ok200(const std::string& body) { return HttpResponse{200, {}, body}; }

// A transport owned by the confirmer while the test keeps a view of it.
struct Harness {
  FakeClock clock;
  FakeHttpTransport* transport = nullptr;
  std::unique_ptr<ReloadConfirmer> confirmer;

  explicit Harness(FakeHttpTransport::Handler handler, ReloadConfirmOptions options = {}) {
    auto owned = std::make_unique<FakeHttpTransport>(std::move(handler));
    transport = owned.get();
    confirmer = std::make_unique<ReloadConfirmer>(std::move(owned), "/metrics", clock, options);
  }
};

// One poll, with a deadline `budget` from now.
bool poll(Harness& h, SystemTime expected, ReloadProgress& progress, Duration budget = seconds(10)) {
  return h.confirmer->pollOnce(expected, h.clock.now() + budget, progress);
}

}  // namespace

TEST_CASE("a poll confirms when istiod already reports the new notAfter", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1.7356896e+09")); });
  ReloadProgress p;
  CHECK(poll(h, kNotAfter, p));
  CHECK(p.polls == 1);
  CHECK(p.last_value == 1735689600.0);
  CHECK(p.last_problem.empty());
  CHECK(h.clock.sleeps().empty());  // a poll never waits
  REQUIRE(h.transport->requests().size() == 1);
  CHECK(h.transport->requests()[0].method == "GET");
  CHECK(h.transport->requests()[0].target == "/metrics");
}

TEST_CASE("a poll's request is cut to the time left before the deadline, at least 200 ms", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1")); });
  ReloadProgress p;
  CHECK_FALSE(poll(h, kNotAfter, p, seconds(3)));
  CHECK_FALSE(poll(h, kNotAfter, p, Duration::zero()));
  REQUIRE(h.transport->requests().size() == 2);
  CHECK(h.transport->requests()[0].timeout == seconds(3));
  CHECK(h.transport->requests()[1].timeout == milliseconds(200));
  CHECK(p.polls == 2);
  CHECK(p.last_value == 1.0);
  CHECK(p.last_problem == "value 1 != expected 1735689600");
}

TEST_CASE("fractional seconds in the metric round to the nearest second", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600.4")); });
  ReloadProgress p;
  CHECK(poll(h, kNotAfter, p));
  Harness off_by_one([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600.6")); });
  ReloadProgress q;
  CHECK_FALSE(poll(off_by_one, kNotAfter, q));
}

TEST_CASE("sub-second parts of the expected notAfter are ignored", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600")); });
  ReloadProgress p;
  CHECK(poll(h, kNotAfter + milliseconds(999), p));
}

TEST_CASE("unreachable, failing or unparseable metrics do not confirm, and a later poll still can",
          "[reload_confirm]") {
  int calls = 0;
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    switch (++calls) {
      case 1: return Error{ErrorCode::kUnavailable, "http://127.0.0.1:15014: connection failed"};
      case 2: return HttpResponse{503, {}, "starting"};
      case 3: return ok200("<html>not metrics</html>\n");
      case 4: return ok200("go_info 1\n");
      case 5: return ok200(metricsPage("NaN"));
      default: return ok200(metricsPage("1.7356896e+09"));
    }
  });
  ReloadProgress p;
  for (int i = 0; i < 5; ++i) CHECK_FALSE(poll(h, kNotAfter, p));
  CHECK(poll(h, kNotAfter, p));
  CHECK(p.polls == 6);
}

TEST_CASE("each kind of failure is described in last_problem", "[reload_confirm]") {
  const auto problemFor = [&](FakeHttpTransport::Handler handler) {
    Harness h(std::move(handler));
    ReloadProgress p;
    CHECK_FALSE(poll(h, kNotAfter, p));
    CHECK(p.polls == 1);
    return p.last_problem;
  };
  CHECK(problemFor([](const HttpRequest&) -> Result<HttpResponse> {
          return Error{ErrorCode::kUnavailable, "connection failed"};
        }) == "connection failed");
  CHECK(problemFor([](const HttpRequest&) -> Result<HttpResponse> { return HttpResponse{404, {}, ""}; }) ==
        "HTTP 404");
  CHECK(problemFor([](const HttpRequest&) -> Result<HttpResponse> { return ok200("go_info 1\n"); }) ==
        "citadel_server_cert_chain_expiry_timestamp absent");
  CHECK(problemFor([](const HttpRequest&) -> Result<HttpResponse> { return ok200("{{{\n"); })
            .rfind("metrics text line 1:", 0) == 0);
}

TEST_CASE("an empty metrics URL disables confirmation without any request", "[reload_confirm]") {
  FakeClock clock;
  ReloadConfirmOptions options;
  options.metrics_url = "";
  auto confirmer = ReloadConfirmer::create(options, clock);
  REQUIRE(confirmer);
  CHECK_FALSE((*confirmer)->enabled());
  ReloadProgress p;
  CHECK_FALSE((*confirmer)->pollOnce(kNotAfter, clock.now() + seconds(10), p));
  CHECK(p.polls == 0);
}

TEST_CASE("a malformed metrics URL is rejected naming the flag", "[reload_confirm]") {
  FakeClock clock;
  for (const char* url : {"127.0.0.1:15014/metrics", "ftp://x/metrics", "http:///metrics", "http://:15014/m"}) {
    INFO(url);
    ReloadConfirmOptions options;
    options.metrics_url = url;
    auto confirmer = ReloadConfirmer::create(options, clock);
    REQUIRE_FALSE(confirmer);
    CHECK(confirmer.error().code == ErrorCode::kInvalidArgument);
    CHECK(confirmer.error().message.rfind("--istiod-metrics-url: ", 0) == 0);
  }
}

TEST_CASE("metrics URLs split into origin and request target", "[reload_confirm]") {
  auto a = splitHttpUrl("http://127.0.0.1:15014/metrics");
  REQUIRE(a);
  CHECK(a->origin == "http://127.0.0.1:15014");
  CHECK(a->target == "/metrics");
  auto b = splitHttpUrl("https://[::1]:15014/stats/prometheus?format=text#frag");
  REQUIRE(b);
  CHECK(b->origin == "https://[::1]:15014");
  CHECK(b->target == "/stats/prometheus?format=text");
  auto c = splitHttpUrl("http://istiod:15014");
  REQUIRE(c);
  CHECK(c->origin == "http://istiod:15014");
  CHECK(c->target == "/");
  auto d = splitHttpUrl("http://istiod:15014?x=1");
  REQUIRE(d);
  CHECK(d->target == "/?x=1");
}

}  // namespace cacerts

namespace cacerts {

TEST_CASE("a trickling istiod metrics endpoint cannot hold a poll past its deadline", "[reload_confirm]") {
  // One byte every 0.3 s restarts every read timeout; only the poll's budget, cut to the
  // confirmation's deadline, ends it. Without it, the poll would not return for minutes.
  testing::TricklingPeer istiod(testing::TricklingPeer::httpResponse());
  SystemClock clock;
  ReloadConfirmOptions options;
  options.metrics_url = "http://127.0.0.1:" + std::to_string(istiod.port()) + "/metrics";
  auto confirmer = ReloadConfirmer::create(options, clock);
  REQUIRE(confirmer);
  const auto started = std::chrono::steady_clock::now();
  ReloadProgress p;
  const bool confirmed =
      (*confirmer)->pollOnce(SystemTime(std::chrono::seconds(1'735'689'600)), clock.now() + seconds(2), p);
  const auto took = std::chrono::steady_clock::now() - started;
  INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; " << p.last_problem);
  CHECK_FALSE(confirmed);
  CHECK(took < std::chrono::seconds(4));  // the 2 s budget, generously
  CHECK(istiod.bytesSent() >= 2);
}

}  // namespace cacerts
