#include "common/redirect_transport.h"

#include <catch2/catch.hpp>

#include "tests/fakes.h"

namespace cacerts {
namespace {

using testing::FakeHttpTransport;

HttpResponse redirectTo(const std::string& location, int status = 307) {
  HttpResponse r{status, {}, ""};
  r.headers["location"] = location;
  return r;
}

// A primary transport and a factory whose transports are recorded, for assertions on both.
struct Rig {
  FakeHttpTransport* primary = nullptr;
  std::vector<std::string> made;  // base addresses the factory was asked for
  std::vector<FakeHttpTransport*> targets;
  FakeHttpTransport::Handler target_handler = [](const HttpRequest&) {
    return Result<HttpResponse>(HttpResponse{200, {}, R"({"data":{}})"});
  };
  std::unique_ptr<HttpTransport> transport;

  Rig(const std::string& base, FakeHttpTransport::Handler primary_handler) {
    auto p = std::make_unique<FakeHttpTransport>(std::move(primary_handler));
    primary = p.get();
    transport = makeRedirectFollowingTransport(
        base, std::move(p), [this](const std::string& to) -> Result<std::unique_ptr<HttpTransport>> {
          made.push_back(to);
          auto t = std::make_unique<FakeHttpTransport>([this](const HttpRequest& r) { return target_handler(r); });
          targets.push_back(t.get());
          return std::unique_ptr<HttpTransport>(std::move(t));
        });
  }
};

HttpRequest request(const std::string& method = "POST") {
  HttpRequest r;
  r.method = method;
  r.target = "/v1/auth/kubernetes/login";
  r.headers = {{"X-Vault-Request", "true"}, {"X-Vault-Namespace", "team-a"}, {"X-Vault-Token", "tok"}};
  r.body = R"({"role":"istiod"})";
  return r;
}

}  // namespace

TEST_CASE("redirect transport passes answers other than 307/308 through unchanged", "[redirect]") {
  for (int status : {200, 301, 302, 404, 503}) {
    Rig rig("https://vault:8200", [&](const HttpRequest&) { return Result<HttpResponse>(redirectTo("https://x:1/v1/a", status)); });
    auto r = rig.transport->send(request());
    REQUIRE(r);
    CHECK(r->status == status);
    CHECK(rig.made.empty());
  }
}

TEST_CASE("redirect transport re-sends method, headers and body once to the Location, reusing its transport",
          "[redirect]") {
  for (int status : {307, 308}) {
    Rig rig("https://vault:8200", [&](const HttpRequest& r) {
      return Result<HttpResponse>(redirectTo("https://active.vault:8200" + r.target, status));
    });
    for (int i = 0; i < 3; ++i) {
      auto r = rig.transport->send(request());
      REQUIRE(r);
      CHECK(r->status == 200);
    }
    REQUIRE(rig.made == std::vector<std::string>{"https://active.vault:8200"});
    const auto sent = rig.targets[0]->requests();
    REQUIRE(sent.size() == 3);
    CHECK(sent[0].method == "POST");
    CHECK(sent[0].target == "/v1/auth/kubernetes/login");
    CHECK(sent[0].headers == request().headers);
    CHECK(sent[0].body == request().body);
  }
}

TEST_CASE("redirect transport sends a LIST as the GET ?list=true the Location names", "[redirect]") {
  Rig rig("https://vault:8200", [](const HttpRequest&) {
    return Result<HttpResponse>(redirectTo("https://active:8200/v1/pki/issuers?list=true"));
  });
  REQUIRE(rig.transport->send(request("LIST")));
  const auto sent = rig.targets.at(0)->requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "GET");
  CHECK(sent[0].target == "/v1/pki/issuers?list=true");
}

TEST_CASE("redirect transport follows the active node when it changes", "[redirect]") {
  std::string active = "https://a:8200";
  Rig rig("https://vault:8200", [&](const HttpRequest& r) { return Result<HttpResponse>(redirectTo(active + r.target)); });
  REQUIRE(rig.transport->send(request()));
  active = "https://b:8200";
  REQUIRE(rig.transport->send(request()));
  CHECK(rig.made == std::vector<std::string>{"https://a:8200", "https://b:8200"});
}

TEST_CASE("redirect transport refuses https to http, loops and unusable Locations", "[redirect]") {
  SECTION("https to http names both addresses and sends nothing there") {
    Rig rig("https://vault:8200", [](const HttpRequest& r) { return Result<HttpResponse>(redirectTo("http://active:8200" + r.target)); });
    auto r = rig.transport->send(request());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(r.error().message, Catch::Contains("from https://vault:8200 to http://active:8200"));
    CHECK(rig.made.empty());
  }
  SECTION("a second redirect in a row") {
    Rig rig("https://vault:8200", [](const HttpRequest& r) { return Result<HttpResponse>(redirectTo("https://b:8200" + r.target)); });
    rig.target_handler = [](const HttpRequest& r) { return Result<HttpResponse>(redirectTo("https://c:8200" + r.target)); };
    auto r = rig.transport->send(request());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(r.error().message, Catch::Contains("redirected twice in a row: https://vault:8200 to https://b:8200, then to https://c:8200"));
    CHECK(rig.targets.at(0)->requests().size() == 1);
  }
  SECTION("no or a relative Location") {
    for (const std::string loc : {"", "/v1/x", "ftp://a/x", "https://user@a:1/x", "https:///x"}) {
      Rig rig("https://vault:8200", [&](const HttpRequest&) { return Result<HttpResponse>(redirectTo(loc)); });
      INFO(loc);
      auto r = rig.transport->send(request());
      REQUIRE_FALSE(r);
      CHECK_THAT(r.error().message, Catch::Contains("without a usable absolute Location"));
      CHECK(rig.made.empty());
    }
  }
  SECTION("http may be redirected to http or https") {
    Rig rig("http://127.0.0.1:8200", [](const HttpRequest& r) { return Result<HttpResponse>(redirectTo("http://127.0.0.1:8201" + r.target)); });
    REQUIRE(rig.transport->send(request()));
  }
}

TEST_CASE("redirect transport returns transport errors and gives the second request what is left of the budget",
          "[redirect]") {
  Rig rig("https://vault:8200", [](const HttpRequest& r) { return Result<HttpResponse>(redirectTo("https://a:8200" + r.target)); });
  rig.target_handler = [](const HttpRequest&) -> Result<HttpResponse> { return Error{ErrorCode::kUnavailable, "a: refused"}; };
  HttpRequest req = request();
  req.timeout = std::chrono::seconds(10);
  auto r = rig.transport->send(req);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kUnavailable);
  const auto sent = rig.targets.at(0)->requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].timeout > Duration::zero());
  CHECK(sent[0].timeout <= std::chrono::seconds(10));
}

}  // namespace cacerts
