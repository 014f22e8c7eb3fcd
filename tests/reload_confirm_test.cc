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

}  // namespace

TEST_CASE("reload is confirmed at once when istiod already reports the new notAfter", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1.7356896e+09")); });
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kConfirmed);
  CHECK(r.polls == 1);
  CHECK(r.last_value == 1735689600.0);
  CHECK(r.last_problem.empty());
  CHECK(h.clock.sleeps().empty());
  REQUIRE(h.transport->requests().size() == 1);
  CHECK(h.transport->requests()[0].method == "GET");
  CHECK(h.transport->requests()[0].target == "/metrics");
}

TEST_CASE("reload confirmation polls every interval until the value changes", "[reload_confirm]") {
  int calls = 0;
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls;
    return ok200(metricsPage(calls < 4 ? "1.7e+09" : "1735689600"));
  });
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kConfirmed);
  CHECK(r.polls == 4);
  CHECK(h.clock.sleeps() == std::vector<Duration>{milliseconds(500), milliseconds(500), milliseconds(500)});
}

TEST_CASE("reload confirmation times out with the last value seen", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1.7e+09")); });
  const SystemTime start = h.clock.now();
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kTimedOut);
  CHECK(r.last_value == 1.7e9);
  CHECK(r.last_problem == "value 1700000000 != expected 1735689600");
  // Polls at 0, 0.5s, ..., 10s: the last poll happens exactly at the deadline, never after.
  CHECK(r.polls == 21);
  CHECK(h.clock.now() - start == seconds(10));
}

TEST_CASE("the last wait is shortened so the timeout is honoured exactly", "[reload_confirm]") {
  ReloadConfirmOptions options;
  options.poll_interval = milliseconds(300);
  options.timeout = seconds(1);
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1")); }, options);
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kTimedOut);
  CHECK(h.clock.sleeps() ==
        std::vector<Duration>{milliseconds(300), milliseconds(300), milliseconds(300), milliseconds(100)});
  CHECK(r.polls == 5);
}

TEST_CASE("fractional seconds in the metric round to the nearest second", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600.4")); });
  CHECK(h.confirmer->confirm(kNotAfter).outcome == ReloadOutcome::kConfirmed);
  Harness off_by_one([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600.6")); });
  CHECK(off_by_one.confirmer->confirm(kNotAfter).outcome == ReloadOutcome::kTimedOut);
}

TEST_CASE("sub-second parts of the expected notAfter are ignored", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1735689600")); });
  CHECK(h.confirmer->confirm(kNotAfter + milliseconds(999)).outcome == ReloadOutcome::kConfirmed);
}

TEST_CASE("unreachable, failing or unparseable metrics are retried until they confirm", "[reload_confirm]") {
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
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kConfirmed);
  CHECK(r.polls == 6);
}

TEST_CASE("each kind of failure is described in last_problem", "[reload_confirm]") {
  ReloadConfirmOptions options;
  options.timeout = Duration::zero();  // one poll, then give up
  const auto problemFor = [&](FakeHttpTransport::Handler handler) {
    Harness h(std::move(handler), options);
    const auto r = h.confirmer->confirm(kNotAfter);
    CHECK(r.outcome == ReloadOutcome::kTimedOut);
    CHECK(r.polls == 1);
    return r.last_problem;
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

TEST_CASE("an interrupt during a wait ends confirmation early", "[reload_confirm]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> { return ok200(metricsPage("1")); });
  h.clock.onSleep([&](Duration) {
    if (h.clock.sleeps().size() == 2) h.clock.interrupt();
  });
  const auto r = h.confirmer->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kInterrupted);
  CHECK(r.polls == 3);
  CHECK(h.clock.sleeps().size() == 3);
}

TEST_CASE("an empty metrics URL disables confirmation without any request", "[reload_confirm]") {
  FakeClock clock;
  ReloadConfirmOptions options;
  options.metrics_url = "";
  auto confirmer = ReloadConfirmer::create(options, clock);
  REQUIRE(confirmer);
  CHECK_FALSE((*confirmer)->enabled());
  const auto r = (*confirmer)->confirm(kNotAfter);
  CHECK(r.outcome == ReloadOutcome::kDisabled);
  CHECK(r.polls == 0);
  CHECK(clock.sleeps().empty());
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

TEST_CASE("a trickling istiod metrics endpoint cannot hold the confirmation past --confirm-timeout",
          "[reload_confirm]") {
  // One byte every 0.3 s restarts every read timeout; only the per-poll budget cut to the
  // confirmation's deadline ends it. Without it, confirm() would not return for minutes.
  testing::TricklingPeer istiod(testing::TricklingPeer::httpResponse());
  SystemClock clock;
  ReloadConfirmOptions options;
  options.metrics_url = "http://127.0.0.1:" + std::to_string(istiod.port()) + "/metrics";
  options.timeout = std::chrono::seconds(2);
  options.poll_interval = std::chrono::milliseconds(500);
  auto confirmer = ReloadConfirmer::create(options, clock);
  REQUIRE(confirmer);
  const auto started = std::chrono::steady_clock::now();
  const ReloadConfirmation c = (*confirmer)->confirm(SystemTime(std::chrono::seconds(1'735'689'600)));
  const auto took = std::chrono::steady_clock::now() - started;
  INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; "
               << c.last_problem);
  CHECK(c.outcome == ReloadOutcome::kTimedOut);
  CHECK(took < std::chrono::seconds(4));  // 2 s plus the final poll's 200 ms, generously
  CHECK(istiod.bytesSent() >= 2);
}

}  // namespace cacerts
