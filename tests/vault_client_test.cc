#include "common/vault_client.h"

#include <catch2/catch.hpp>

#include <tuple>
#include <vector>

#include "common/vault_auth.h"
#include "tests/fakes.h"

namespace cacerts {
namespace {

using testing::FakeClock;
using testing::FakeHttpTransport;
using testing::FakeRandom;

HttpResponse json(int status, const std::string& body) { return HttpResponse{status, {}, body}; }

class CountingAuth final : public VaultAuthenticator {
 public:
  Result<VaultToken> login(VaultClient&) override {
    ++logins;
    VaultToken t;
    t.token = Secret("tok-" + std::to_string(logins));
    t.ttl = std::chrono::hours(1);
    return t;
  }
  std::string describe() const override { return "counting"; }
  int logins = 0;
};

std::string header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace

TEST_CASE("vault client sends the request header, namespace and token on every call", "[vault_client]") {
  FakeHttpTransport transport([](const HttpRequest&) { return Result<HttpResponse>(json(200, R"({"data":{"a":"b"}})")); });
  FakeClock clock;
  FakeRandom random;
  CountingAuth auth;
  VaultClient client(transport, "team-a/", clock, random);
  client.setAuthenticator(&auth);
  auto r = client.call("GET", "secret/data/x");
  REQUIRE(r);
  CHECK(r->body["data"]["a"] == "b");
  const auto reqs = transport.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].target == "/v1/secret/data/x");
  CHECK(header(reqs[0], "X-Vault-Request") == "true");
  CHECK(header(reqs[0], "X-Vault-Namespace") == "team-a/");
  CHECK(header(reqs[0], "X-Vault-Token") == "tok-1");
}

TEST_CASE("vault client maps status codes to error categories naming the path", "[vault_client]") {
  FakeClock clock;
  FakeRandom random;
  CountingAuth auth;
  struct Case {
    int status;
    ErrorCode code;
  };
  for (Case c : {Case{400, ErrorCode::kInvalidArgument}, Case{404, ErrorCode::kNotFound},
                 Case{405, ErrorCode::kInvalidArgument}, Case{412, ErrorCode::kUnavailable},
                 Case{429, ErrorCode::kUnavailable}, Case{500, ErrorCode::kUnavailable},
                 Case{501, ErrorCode::kInvalidArgument}, Case{502, ErrorCode::kUnavailable},
                 Case{503, ErrorCode::kUnavailable}}) {
    FakeHttpTransport transport([&](const HttpRequest&) {
      return Result<HttpResponse>(json(c.status, R"({"errors":["1 error occurred:\n\t* boom\n\n"]})"));
    });
    VaultClient client(transport, "", clock, random);
    client.setAuthenticator(&auth);
    auto r = client.call("GET", "kv/some/path");
    INFO("status " << c.status);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == c.code);
    CHECK_THAT(r.error().message, Catch::Contains("kv/some/path"));
    CHECK_THAT(r.error().message, Catch::EndsWith(": boom"));  // multierror framing removed
    CHECK(transport.requests().size() == 1);  // no deadline: no retries
  }
}

TEST_CASE("vault client retries transient failures with backoff until they clear", "[vault_client]") {
  FakeClock clock;
  FakeRandom random{0.5};
  CountingAuth auth;
  int calls = 0;
  FakeHttpTransport transport([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls;
    if (calls == 1) return Error{ErrorCode::kUnavailable, "connection refused"};
    if (calls == 2) return json(503, R"({"errors":["Vault is sealed"]})");
    if (calls == 3) return json(200, "{not json");
    return json(200, R"({"data":{}})");
  });
  VaultClient client(transport, "", clock, random);
  client.setAuthenticator(&auth);
  client.setRetryDeadline(clock.now() + std::chrono::minutes(1));
  auto r = client.call("GET", "secret/data/x");
  REQUIRE(r);
  CHECK(calls == 4);
  const auto sleeps = clock.sleeps();
  REQUIRE(sleeps.size() == 3);
  CHECK(sleeps[1] > sleeps[0]);  // exponential growth
}

TEST_CASE("vault client gives up at the deadline with a deadline error", "[vault_client]") {
  FakeClock clock;
  FakeRandom random{0.9};
  FakeHttpTransport transport([](const HttpRequest&) -> Result<HttpResponse> {
    return json(503, R"({"errors":["Vault is sealed"]})");
  });
  CountingAuth auth;
  VaultClient client(transport, "", clock, random);
  client.setAuthenticator(&auth);
  const SystemTime start = clock.now();
  client.setRetryDeadline(start + std::chrono::seconds(30));
  auto r = client.call("GET", "secret/data/x");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kDeadlineExceeded);
  CHECK(exitCodeFor(r.error().code) == 4);
  CHECK_THAT(r.error().message, Catch::Contains("sealed"));
  CHECK(clock.now() <= start + std::chrono::seconds(30));
  CHECK(transport.requests().size() > 3);
}

TEST_CASE("vault client cuts each attempt's time budget to the time left before the deadline", "[vault_client]") {
  FakeClock clock;
  FakeRandom random{0.9};
  FakeHttpTransport transport([](const HttpRequest&) -> Result<HttpResponse> {
    return json(503, R"({"errors":["Vault is sealed"]})");
  });
  VaultClient client(transport, "", clock, random);
  const SystemTime start = clock.now();

  SECTION("without a deadline the transport's own request timeout applies") {
    REQUIRE_FALSE(client.call("GET", "sys/health", nullptr, /*authenticated=*/false));
    REQUIRE(transport.requests().size() == 1);
    CHECK(transport.requests()[0].timeout == Duration::zero());
  }
  SECTION("with a deadline: the time left, never below one second") {
    client.setRetryDeadline(start + std::chrono::seconds(20));
    REQUIRE_FALSE(client.call("GET", "sys/health", nullptr, /*authenticated=*/false));
    const auto reqs = transport.requests();
    REQUIRE(reqs.size() > 2);
    CHECK(reqs.front().timeout == std::chrono::seconds(20));
    for (std::size_t i = 1; i < reqs.size(); ++i) {
      CHECK(reqs[i].timeout <= reqs[i - 1].timeout);
      CHECK(reqs[i].timeout >= std::chrono::seconds(1));
    }
    CHECK(reqs.back().timeout == std::chrono::seconds(1));  // the attempt made at the deadline
  }
}

TEST_CASE("vault client honours Retry-After, in seconds or as a date, never past its deadline", "[vault_client]") {
  // FakeClock starts at 2023-11-14T22:13:20Z; the deadline is a minute later.
  for (const auto& [status, value, expected] : std::vector<std::tuple<int, std::string, Duration>>{
           {429, "7", std::chrono::seconds(7)},
           {503, "Tue, 14 Nov 2023 22:13:32 GMT", std::chrono::seconds(12)},
           {429, "Tue, 14 Nov 2023 23:13:20 GMT", std::chrono::minutes(1)}}) {
    INFO(value);
    FakeClock clock;
    FakeRandom random{0.0};
    int calls = 0;
    FakeHttpTransport transport([&, status = status, value = value](const HttpRequest&) -> Result<HttpResponse> {
      if (++calls == 1) {
        HttpResponse r = json(status, R"({"errors":["rate limit quota exceeded"]})");
        r.headers["retry-after"] = value;
        return r;
      }
      return json(200, R"({"data":{}})");
    });
    CountingAuth auth;
    VaultClient client(transport, "", clock, random);
    client.setAuthenticator(&auth);
    client.setRetryDeadline(clock.now() + std::chrono::minutes(1));
    REQUIRE(client.call("GET", "x"));
    REQUIRE(clock.sleeps().size() == 1);
    CHECK(clock.sleeps()[0] == expected);
  }
}

TEST_CASE("vault client logs in again once on 403 and then reports permission denied", "[vault_client]") {
  FakeClock clock;
  FakeRandom random;
  CountingAuth auth;
  // A GET that must end in a permission error; returns that error.
  const auto deniedRead = [&](FakeHttpTransport& transport) {
    VaultClient client(transport, "", clock, random);
    client.setAuthenticator(&auth);
    auto r = client.call("GET", "secret/data/x");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kPermissionDenied);
    return r.error();
  };
  SECTION("expired token: the second token works") {
    FakeHttpTransport transport([](const HttpRequest& r) -> Result<HttpResponse> {
      if (header(r, "X-Vault-Token") == "tok-1") return json(403, R"({"errors":["permission denied","invalid token"]})");
      return json(200, R"({"data":{}})");
    });
    VaultClient client(transport, "", clock, random);
    client.setAuthenticator(&auth);
    REQUIRE(client.call("GET", "secret/data/x"));
    CHECK(auth.logins == 2);
  }
  SECTION("policy denies a valid token: no login, a permission error naming the capability") {
    FakeHttpTransport transport([](const HttpRequest& r) -> Result<HttpResponse> {
      if (r.target == "/v1/auth/token/lookup-self") return json(200, R"({"data":{"ttl":3600}})");
      return json(403, R"({"errors":["1 error occurred:\n\t* permission denied\n\n"]})");
    });
    const Error e = deniedRead(transport);
    CHECK(auth.logins == 1);
    CHECK(transport.requests().size() == 2);
    CHECK_THAT(e.message, Catch::Contains("\"read\" on secret/data/x"));
    CHECK_THAT(e.message, Catch::Contains("the token is valid"));
  }
  SECTION("lookup-self refuses the token too: one re-login, then a permission error") {
    FakeHttpTransport transport([](const HttpRequest&) { return Result<HttpResponse>(json(403, R"({"errors":["permission denied"]})")); });
    const Error e = deniedRead(transport);
    CHECK(auth.logins == 2);
    CHECK_THAT(e.message, Catch::Contains("\"read\" on secret/data/x"));
  }
}

TEST_CASE("vault client returns the 404 envelope when asked to", "[vault_client]") {
  FakeClock clock;
  FakeRandom random;
  CountingAuth auth;
  FakeHttpTransport transport([](const HttpRequest&) {
    return Result<HttpResponse>(json(404, R"({"data":{"data":null,"metadata":{"deletion_time":"2024-01-01T00:00:00Z","destroyed":false,"version":2}}})"));
  });
  VaultClient client(transport, "", clock, random);
  client.setAuthenticator(&auth);
  auto r = client.call("GET", "secret/data/x", nullptr, true, /*allow_not_found=*/true);
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body["data"]["metadata"]["version"] == 2);
}

TEST_CASE("login failures become permission errors naming the mount and role", "[vault_client]") {
  FakeClock clock;
  FakeRandom random;
  FakeHttpTransport transport([](const HttpRequest&) {
    return Result<HttpResponse>(json(400, R"({"errors":["invalid role name \"nope\""]})"));
  });
  VaultClient client(transport, "", clock, random);
  auto r = client.loginWith("auth/kube-c1-mesh-auth", nlohmann::json{{"role", "nope"}, {"jwt", "x"}},
                            "kubernetes login at auth/kube-c1-mesh-auth (role nope)");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kPermissionDenied);
  CHECK_THAT(r.error().message, Catch::Contains("auth/kube-c1-mesh-auth (role nope) refused"));
  CHECK_THAT(r.error().message, Catch::Contains("invalid role name"));
  CHECK(transport.requests().at(0).target == "/v1/auth/kube-c1-mesh-auth/login");
}

TEST_CASE("auth mounts are accepted with or without the auth/ prefix", "[vault_client]") {
  CHECK(normaliseAuthMount("kube-c1-mesh-auth") == "kube-c1-mesh-auth");
  CHECK(normaliseAuthMount("auth/kube-c1-mesh-auth") == "kube-c1-mesh-auth");
  CHECK(normaliseAuthMount("/auth/kube-c1-mesh-auth/") == "kube-c1-mesh-auth");
}

}  // namespace cacerts

namespace cacerts {

TEST_CASE("unexpected JSON types in Vault responses become error values, not crashes", "[vault_client]") {
  FakeClock clock;
  FakeRandom random;
  SECTION("login with a string lease_duration") {
    FakeHttpTransport transport([](const HttpRequest&) {
      return Result<HttpResponse>(json(200, R"({"auth":{"client_token":"t","lease_duration":"3600","renewable":"yes"}})"));
    });
    VaultClient client(transport, "", clock, random);
    auto r = client.loginWith("kubernetes", nlohmann::json{{"role", "r"}}, "kubernetes login");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kUnavailable);
    CHECK_THAT(r.error().message, Catch::Contains("unexpected response shape"));
  }
  SECTION("guardResponseShape passes values through and catches type errors") {
    auto good = guardResponseShape("x", []() -> Result<int> { return 7; });
    REQUIRE(good);
    CHECK(*good == 7);
    auto bad = guardResponseShape("kv secret/x", []() -> Result<int> {
      const nlohmann::json j = {{"path", true}};
      return static_cast<int>(j.value("path", std::string()).size());
    });
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message == "kv secret/x: unexpected response shape from Vault");
  }
}

TEST_CASE("Retry-After is read as seconds or as an HTTP date", "[vault_client]") {
  const SystemTime now = FakeClock().now();  // 2023-11-14T22:13:20Z, a Tuesday
  CHECK(parseRetryAfter("7", now) == Duration(std::chrono::seconds(7)));
  CHECK(parseRetryAfter("0", now) == Duration::zero());
  CHECK(parseRetryAfter("Tue, 14 Nov 2023 22:13:32 GMT", now) == Duration(std::chrono::seconds(12)));
  CHECK(parseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now) == Duration::zero());  // already past
  for (const char* bad : {"", "-1", "1.5", "1234567", "soon", "Tue, 14 Nov 2023 22:13:32", "Tue, 14 Nov 2023 22:13:32 GMT junk",
                          "Tue, 32 Nov 2023 22:13:32 GMT"}) {
    INFO(bad);
    CHECK_FALSE(parseRetryAfter(bad, now).has_value());
  }
}

TEST_CASE("login retries 403 for the configured window within the deadline, then names both causes",
          "[vault_client]") {
  FakeClock clock;
  FakeRandom random{0.5};
  int denials = 0;
  int logins = 0;
  FakeHttpTransport transport([&](const HttpRequest&) -> Result<HttpResponse> {
    ++logins;
    if (denials != 0) {
      if (denials > 0) --denials;
      return json(403, R"({"errors":["permission denied"]})");
    }
    return json(200, R"({"auth":{"client_token":"t","lease_duration":60}})");
  });
  VaultClient client(transport, "", clock, random);
  const VaultClient::LoginRetry retry{std::chrono::seconds(30), "role binding or TokenReview"};
  const nlohmann::json body = {{"role", "istiod"}};
  const SystemTime start = clock.now();
  SECTION("transient 403s end in a token") {
    client.setRetryDeadline(start + std::chrono::minutes(5));
    denials = 3;
    REQUIRE(client.loginWith("kubernetes", body, "kubernetes login", retry));
    CHECK(logins == 4);
  }
  SECTION("a permanent 403 stops after about 30 s") {
    client.setRetryDeadline(start + std::chrono::minutes(5));
    denials = -1;
    auto r = client.loginWith("kubernetes", body, "kubernetes login", retry);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kPermissionDenied);
    CHECK_THAT(r.error().message, Catch::Contains("role binding or TokenReview"));
    CHECK_THAT(r.error().message, !Catch::Contains("the token's policy"));
    CHECK(clock.now() - start == std::chrono::seconds(30));
    CHECK(logins > 2);
  }
  SECTION("a permanent 403 stops at an earlier deadline") {
    client.setRetryDeadline(start + std::chrono::seconds(4));
    denials = -1;
    REQUIRE_FALSE(client.loginWith("kubernetes", body, "kubernetes login", retry));
    CHECK(clock.now() - start == std::chrono::seconds(4));
  }
  SECTION("without a retry window a 403 is final at once") {
    client.setRetryDeadline(start + std::chrono::minutes(5));
    denials = -1;
    REQUIRE_FALSE(client.loginWith("approle", body, "approle login"));
    CHECK(logins == 1);
    CHECK(clock.sleeps().empty());
  }
}

}  // namespace cacerts
