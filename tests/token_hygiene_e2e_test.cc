// End-to-end: how the real agent treats Vault tokens. Login tokens are revoked when the
// agent is done with them or replaces them, a policy denial never mints a token, tokens
// are replaced before their max TTL, and a supplied token (token auth) is looked up,
// renewed when it can be, re-read when its file changes, and never revoked.
#include <csignal>

#include <catch2/catch.hpp>

#include "tests/support/sidecar_harness.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

using std::chrono::seconds;

// Kubernetes auth at "kubernetes", role "istiod" with `policies`; returns the auth args.
std::vector<std::string> kubernetesAuth(E2eVault& v, const std::vector<std::string>& policies,
                                        std::int64_t ttl = 3600, std::int64_t max_ttl = 0) {
  REQUIRE(v.server().enableAuth("", "kubernetes", "kubernetes"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = policies;
  role.ttl_seconds = ttl;
  role.max_ttl_seconds = max_ttl;
  REQUIRE(v.server().addKubernetesRole("", "kubernetes", role));
  return {"--auth-method", "kubernetes", "--auth-role", "istiod", "--jwt-file", v.jwtFile()};
}

std::vector<std::string> initArgs(E2eVault& v, const TempDir& out, const std::vector<std::string>& auth) {
  return concat(concat(concat({"init", "--dir", out.path()}, v.connectArgs()), auth), E2eVault::kvArgs());
}

// A token of the given shape written to a file; its id carries the planted marker.
std::string suppliedTokenFile(E2eVault& v, const std::string& name, TokenSpec spec, std::string* id = nullptr) {
  spec.id = std::string(kTokenMarker) + "." + name;
  const std::string token = v.server().createToken("", spec);
  if (id != nullptr) *id = token;
  const std::string path = v.workDir() + "/supplied-" + name;
  writeFile(path, token + "\n", 0600);
  return path;
}

// A PKI sidecar renewing a 1 h intermediate, so that only forced rotations renew it.
std::vector<std::string> pkiSidecarArgs(const Sidecar& s, const std::vector<std::string>& auth) {
  return concat(s.baseArgs(auth), {"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", "1h",
                                   "--renew-before", "20m"});
}

}  // namespace

TEST_CASE("init revokes its login token: no live tokens after 20 inits", "[tokens-e2e]") {
  E2eVault v;
  const auto auth = kubernetesAuth(v, {"reader"});
  const std::size_t before = v.server().requests().size();
  for (int i = 0; i < 20; ++i) {
    TempDir out;
    const auto r = v.run(initArgs(v, out, auth));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login") == 20);
  CHECK(countRequests(v.server(), "POST", "auth/token/revoke-self", 204) == 20);
  CHECK(v.server().liveTokens() == 0);
  const std::size_t per_init = (v.server().requests().size() - before) / 20;
  INFO("Vault requests per init: " << per_init);
  CHECK(per_init <= 4);  // login, mount lookup, read, revoke
  v.scanForSecrets();
}

TEST_CASE("init revokes its login token when it fails after logging in", "[tokens-e2e]") {
  E2eVault v;
  const auto auth = kubernetesAuth(v, {"reader"});
  TempDir out;
  const auto r = v.run(concat(initArgs(v, out, auth), {"--kv-cert", "vault:secret/data/istio/missing#ca-cert"}));
  INFO(r.err);
  REQUIRE(r.exit_code != 0);
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login") == 1);
  CHECK(v.server().liveTokens() == 0);
  v.scanForSecrets();
}

TEST_CASE("a policy denial makes init exit 3 after one login and no other token", "[tokens-e2e]") {
  E2eVault v;
  REQUIRE(v.server().setPolicy("", "elsewhere", {{"secret/data/elsewhere/*", {"read"}}}));
  const auto auth = kubernetesAuth(v, {"elsewhere"});
  TempDir out;
  const auto r = v.run(initArgs(v, out, auth));
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.err, Catch::Contains("permission denied (403)"));
  CHECK_THAT(r.err, Catch::Contains("on secret/data/istio/cacerts"));
  CHECK_THAT(r.err, Catch::Contains("the token is valid"));
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login") == 1);
  CHECK(countRequests(v.server(), "GET", "auth/token/lookup-self") == 1);
  CHECK(v.server().liveTokens() == 0);
  v.scanForSecrets();
}

TEST_CASE("init never revokes a supplied token and fails clearly when it is dead", "[tokens-e2e]") {
  E2eVault v;
  std::string id;
  const std::string file = suppliedTokenFile(v, "dead", {.policies = {"reader"}, .ttl_seconds = 3600}, &id);
  TempDir out;
  SECTION("a valid token is looked up once and left alive") {
    const auto r = v.run(initArgs(v, out, {"--auth-method", "token", "--token-file", file}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(countRequests(v.server(), "GET", "auth/token/lookup-self") == 1);
    CHECK(countRequests(v.server(), "POST", "auth/token/revoke-self") == 0);
    CHECK(v.server().revokeToken(id));  // still there
  }
  SECTION("a revoked token cannot be kept valid") {
    REQUIRE(v.server().revokeToken(id));
    const auto r = v.run(initArgs(v, out, {"--auth-method", "token", "--token-file", file}));
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.err, Catch::Contains("is not valid (expired or revoked) and cannot be kept valid"));
    CHECK(countRequests(v.server(), "GET", "secret/data/istio/cacerts") == 0);
  }
  v.scanForSecrets();
}

TEST_CASE("a sidecar keeps one live token over 50 forced rotations and none after SIGTERM", "[tokens-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(pkiSidecarArgs(s, s.setUpKubernetesAuth()));
  REQUIRE(s.waitPublished(1));
  const std::size_t before = s.vault.server().requests().size();
  for (std::size_t n = 2; n <= 51; ++n) {
    s.agent->signal(SIGHUP);
    INFO(s.agent->err());
    REQUIRE(s.waitPublished(n));
  }
  const std::size_t per_rotation_x100 = (s.vault.server().requests().size() - before) * 2;
  INFO("Vault requests per 100 rotations: " << per_rotation_x100);
  CHECK(s.vault.server().liveTokens() == 1);
  CHECK(countRequests(s.vault.server(), "POST", "auth/kubernetes/login") == 1);
  s.stop();
  CHECK(countRequests(s.vault.server(), "POST", "auth/token/revoke-self", 204) == 1);
  CHECK(s.vault.server().liveTokens() == 0);
}

TEST_CASE("a sidecar logs in afresh before its token's max TTL instead of failing", "[tokens-e2e]") {
  Sidecar s;
  s.setUpPki();
  // Renewals are capped 9 s after login; each batch sees less than 30 s left and renews.
  const auto auth = kubernetesAuth(s.vault, {"signer"}, /*ttl=*/6, /*max_ttl=*/9);
  s.start(pkiSidecarArgs(s, auth));
  REQUIRE(s.waitPublished(1));
  const auto started = std::chrono::steady_clock::now();
  std::size_t published = 1;
  // Rotations for well past the first token's max TTL.
  while (std::chrono::steady_clock::now() - started < seconds(12)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    s.agent->signal(SIGHUP);
    INFO(s.agent->err());
    REQUIRE(s.waitPublished(++published));
  }
  CHECK(countRequests(s.vault.server(), "POST", "auth/token/renew-self", 200) >= 1);
  CHECK(countRequests(s.vault.server(), "POST", "auth/kubernetes/login") >= 2);
  CHECK(countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate", 403) == 0);
  CHECK(s.agent->count("event=vault_token_at_max_ttl") >= 1);
  CHECK(s.vault.server().liveTokens() == 1);
  s.stop();
  CHECK(s.vault.server().liveTokens() == 0);
}

TEST_CASE("a sidecar with token auth renews a service token, never a batch token, and never revokes",
          "[tokens-e2e]") {
  Sidecar s;
  s.setUpPki();
  const bool batch = GENERATE(false, true);
  INFO("batch " << batch);
  const std::string file = suppliedTokenFile(
      s.vault, batch ? "batch" : "service",
      {.policies = {"signer"}, .ttl_seconds = 20, .renewable = true, .type = batch ? "batch" : "service"});
  s.start(pkiSidecarArgs(s, {"--auth-method", "token", "--token-file", file}));
  REQUIRE(s.waitPublished(1));
  s.agent->signal(SIGHUP);
  REQUIRE(s.waitPublished(2));
  CHECK(countRequests(s.vault.server(), "GET", "auth/token/lookup-self") == 1);
  // 20 s TTL: under the 30 s floor at every batch, so a renewable token is renewed each time.
  if (batch) {
    CHECK(countRequests(s.vault.server(), "POST", "auth/token/renew-self") == 0);
  } else {
    CHECK(countRequests(s.vault.server(), "POST", "auth/token/renew-self", 200) >= 1);
  }
  s.stop();
  CHECK(countRequests(s.vault.server(), "POST", "auth/token/revoke-self") == 0);
}

TEST_CASE("a sidecar with token auth picks up a rewritten token file before its next batch", "[tokens-e2e]") {
  Sidecar s;
  s.setUpPki();
  std::string first, second;
  const std::string file = suppliedTokenFile(s.vault, "first", {.policies = {"signer"}, .ttl_seconds = 3600}, &first);
  const std::string next = suppliedTokenFile(s.vault, "second", {.policies = {"signer"}, .ttl_seconds = 3600}, &second);
  s.start(pkiSidecarArgs(s, {"--auth-method", "token", "--token-file", file}));
  REQUIRE(s.waitPublished(1));
  // What a Vault Agent sink does: a new token in the file, the old one revoked.
  writeFile(file, readFile(next), 0600);
  REQUIRE(s.vault.server().revokeToken(first));
  s.agent->signal(SIGHUP);
  INFO(s.agent->err());
  REQUIRE(s.waitPublished(2));
  CHECK(s.agent->count("event=vault_token_file_changed") == 1);
  CHECK(countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate", 403) == 0);
  CHECK(countRequests(s.vault.server(), "GET", "auth/token/lookup-self") == 2);
  s.stop();
  CHECK(s.vault.server().revokeToken(second));  // the agent left it alone
}

}  // namespace cacerts::testing
