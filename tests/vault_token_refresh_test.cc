// VaultClient::refreshTokenIfExpiring: what the long-running sidecar does with its token
// just before a batch of Vault calls.
#include <catch2/catch.hpp>

#include "common/vault_client.h"
#include "tests/fakes.h"

namespace cacerts::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

class CountingLogin final : public VaultAuthenticator {
 public:
  Result<VaultToken> login(VaultClient&) override {
    ++logins;
    VaultToken t;
    t.token = Secret("fresh-" + std::to_string(logins));
    t.ttl = hours(1);
    t.renewable = true;
    t.owned = true;
    return t;
  }
  std::string describe() const override { return "counting"; }
  int logins = 0;
};

struct Client {
  FakeClock clock;
  FakeRandom random;
  CountingLogin auth;
  FakeHttpTransport transport;
  VaultClient client{transport, "", clock, random};

  explicit Client(bool renewable, FakeHttpTransport::Handler handler = nullptr) {
    transport.setHandler(handler ? std::move(handler) : [](const HttpRequest& r) -> Result<HttpResponse> {
      if (r.target == "/v1/auth/token/renew-self") {
        return HttpResponse{200, {}, R"({"auth":{"client_token":"x","lease_duration":3600,"renewable":true}})"};
      }
      return HttpResponse{200, {}, R"({"data":{}})"};
    });
    client.setAuthenticator(&auth);
    VaultToken t;
    t.token = Secret("initial");
    t.ttl = hours(1);
    t.renewable = renewable;
    t.owned = true;  // as from a login
    client.setToken(std::move(t));
  }
  std::size_t requestsTo(const std::string& target) const {
    std::size_t n = 0;
    for (const auto& r : transport.requests()) n += r.target == target ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("vault client leaves a token with time to spare alone before a batch", "[vault_client]") {
  Client c(true);
  c.clock.advance(minutes(30));
  REQUIRE(c.client.refreshTokenIfExpiring());
  CHECK(c.transport.requests().empty());
  CHECK(*c.client.tokenExpiry() == c.clock.now() + minutes(30));
}

TEST_CASE("vault client renews a renewable token near expiry by its TTL, without logging in", "[vault_client]") {
  Client c(true);
  c.clock.advance(minutes(45));  // 15 min left: less than a third of the hour
  REQUIRE(c.client.refreshTokenIfExpiring());
  REQUIRE(c.requestsTo("/v1/auth/token/renew-self") == 1);
  CHECK(c.transport.requests()[0].body == R"({"increment":"3600s"})");
  CHECK(*c.client.tokenExpiry() == c.clock.now() + hours(1));
  CHECK(c.auth.logins == 0);
  REQUIRE(c.client.call("GET", "secret/data/x"));
  CHECK(c.auth.logins == 0);
}

TEST_CASE("vault client drops a non-renewable token about to expire so the batch logs in afresh", "[vault_client]") {
  Client c(false);
  c.clock.advance(minutes(45));
  REQUIRE(c.client.refreshTokenIfExpiring());
  CHECK(c.client.hasToken());  // 15 min left: still good for this batch
  c.clock.advance(minutes(14) + seconds(40));  // 20 s left
  REQUIRE(c.client.refreshTokenIfExpiring());
  CHECK_FALSE(c.client.hasToken());
  CHECK(c.transport.requests().size() == 1);  // the old token revoked while still valid
  CHECK(c.requestsTo("/v1/auth/token/revoke-self") == 1);
  REQUIRE(c.client.call("GET", "secret/data/x"));
  CHECK(c.auth.logins == 1);
}

TEST_CASE("vault client logs in again when renew-self is refused", "[vault_client]") {
  Client c(true, [](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.target == "/v1/auth/token/renew-self") return HttpResponse{403, {}, R"({"errors":["permission denied"]})"};
    return HttpResponse{200, {}, R"({"data":{}})"};
  });
  c.clock.advance(minutes(50));
  CHECK_FALSE(c.client.refreshTokenIfExpiring());
  CHECK_FALSE(c.client.hasToken());
  REQUIRE(c.client.call("GET", "secret/data/x"));
  CHECK(c.auth.logins == 1);
  CHECK(c.requestsTo("/v1/auth/token/renew-self") == 1);
}

TEST_CASE("vault client never renews a token without TTL", "[vault_client]") {
  Client c(true);
  VaultToken root;
  root.token = Secret("root");
  c.client.setToken(std::move(root));
  c.clock.advance(hours(1000));
  REQUIRE(c.client.refreshTokenIfExpiring());
  CHECK(c.transport.requests().empty());
  CHECK(c.client.hasToken());
}

}  // namespace cacerts::testing
