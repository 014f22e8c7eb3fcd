// End-to-end: the real cacerts-agent against an HA pair of Vault test servers, a standby
// that answers 307 to the active node (Vault's respondStandby), over TLS.
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

// A standby of `active` sharing its CA, as the nodes of one Vault cluster do.
std::unique_ptr<VaultTestServer> startStandby(VaultTestServer& active, const std::string& standby_of = "") {
  VaultTestServerOptions o;
  o.standby_of = standby_of.empty() ? active.addr() : standby_of;
  o.ca = active.ca();
  auto s = VaultTestServer::start(o);
  REQUIRE(s);
  return std::move(s).value();
}

// args with the value of --vault-addr replaced.
std::vector<std::string> pointedAt(std::vector<std::string> args, const std::string& addr) {
  const auto it = std::find(args.begin(), args.end(), "--vault-addr");
  REQUIRE(it != args.end());
  REQUIRE(it + 1 != args.end());
  *(it + 1) = addr;
  return args;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::vector<std::string> kvInitArgs(E2eVault& v, const TempDir& out) {
  return concat(concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                       {"--auth-method", "token", "--token-file", v.tokenFile()}),
                E2eVault::kvArgs());
}

}  // namespace

TEST_CASE("init through a standby follows one redirect per request to the active node", "[ha-e2e]") {
  E2eVault v;
  auto standby = startStandby(v.server());
  TempDir out;
  const auto r = v.run(pointedAt(kvInitArgs(v, out), standby->addr()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(readFile(out.file("ca-cert.pem")) == v.intermediate().cert.pem());
  // Logged once, addresses only, though every request went through the standby.
  CHECK(occurrences(r.err, "event=vault_redirect") == 1);
  CHECK_THAT(r.err, Catch::Contains("from=" + standby->addr() + " to=" + v.addr()));
  const auto at_standby = standby->requests();
  REQUIRE_FALSE(at_standby.empty());
  for (const auto& req : at_standby) CHECK(req.status == 307);
  // Every request reached the active node with the token, path and query it had at the standby.
  const auto at_active = v.server().requests();
  REQUIRE(at_active.size() == at_standby.size());
  for (std::size_t i = 0; i < at_active.size(); ++i) {
    CHECK(at_active[i].method == at_standby[i].method);
    CHECK(at_active[i].path == at_standby[i].path);
    CHECK(at_active[i].query == at_standby[i].query);
    CHECK(at_active[i].token_sent);
    CHECK(at_active[i].request_header_sent);
    CHECK(at_active[i].status == 200);
  }
  v.scanForSecrets();
}

TEST_CASE("pki init with kubernetes login in a namespace through a standby", "[ha-e2e]") {
  E2eVault v;
  auto& s = v.server();
  const std::string ns = "team-a";
  REQUIRE(s.enablePki(ns, "pki", std::chrono::hours(87600)));
  REQUIRE(s.pkiGenerateRoot(ns, "pki", {{"common_name", "HA Root"}, {"ttl", "87600h"}, {"issuer_name", "root-a"}}));
  REQUIRE(s.setPolicy(ns, "signer", {{"pki/*", {"create", "read", "update", "list"}}}));
  v.enableKubernetesIstiodRole({"signer"}, ns);
  auto standby = startStandby(s);
  TempDir out;
  const auto r = v.run(pointedAt(concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                                        {"--vault-namespace", ns, "--auth-method", "kubernetes", "--auth-role",
                                         "istiod", "--jwt-file", v.jwtFile(), "--source", "pki", "--pki-sign-path",
                                         "pki/root/sign-intermediate"}),
                                 standby->addr()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  // The login body and the namespace header were sent again to the active node.
  bool login_seen = false;
  for (const auto& req : s.requests()) {
    CHECK(req.namespace_header == ns);
    if (req.path == "/v1/auth/kubernetes/login") {
      login_seen = true;
      CHECK(req.status == 200);
      CHECK(req.body.find("\"role\":\"istiod\"") != std::string::npos);
    }
  }
  CHECK(login_seen);
  v.scanForSecrets();
}

TEST_CASE("sidecar pointed at a standby renews through the active node", "[ha-e2e]") {
  Sidecar sc;
  sc.setUpPki();
  auto standby = startStandby(sc.vault.server());
  sc.start(pointedAt(sc.pkiArgs("8s", "5s"), standby->addr()));
  REQUIRE(sc.waitPublished(1));
  const std::string first = sc.serial();
  INFO(sc.agent->err());
  REQUIRE(sc.waitPublished(2));
  CHECK(sc.serial() != first);
  CHECK(countRequests(sc.vault.server(), "POST", "pki/root/sign-intermediate", 200) >= 2);
  CHECK(countRequests(*standby, "POST", "pki/root/sign-intermediate", 307) >= 2);
  sc.stop();
}

TEST_CASE("a redirect from https to http is refused, naming both addresses", "[ha-e2e]") {
  E2eVault v;
  const std::string http_addr = "http://127.0.0.1:" + std::to_string(v.server().port());
  auto standby = startStandby(v.server(), http_addr);
  TempDir out;
  const auto r = v.run(pointedAt(kvInitArgs(v, out), standby->addr()));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("from " + standby->addr() + " to " + http_addr));
  CHECK_THAT(r.err, Catch::Contains("https to http"));
  // Nothing, the token least of all, went to the active node.
  CHECK(v.server().requests().empty());
  v.scanForSecrets();
}

TEST_CASE("a redirect loop is refused after one redirect", "[ha-e2e]") {
  E2eVault v;
  auto standby = startStandby(v.server());
  auto second = startStandby(v.server());
  std::size_t expected_at_standby = 0;
  SECTION("a standby pointing at itself") {
    standby->setStandbyOf(standby->addr());
    expected_at_standby = 2;
  }
  SECTION("two standbys pointing at each other") {
    standby->setStandbyOf(second->addr());
    second->setStandbyOf(standby->addr());
    expected_at_standby = 1;
  }
  TempDir out;
  const auto r = v.run(pointedAt(kvInitArgs(v, out), standby->addr()));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("redirected twice in a row"));
  CHECK(standby->requests().size() == expected_at_standby);
  CHECK(v.server().requests().empty());
  v.scanForSecrets();
}

}  // namespace cacerts::testing
