// End-to-end: the real cacerts-agent against an HA pair of Vault test servers, a standby
// that answers 307 to the active node (Vault's respondStandby), over TLS. The last
// TEST_CASE is the HA table of the fault matrix ($CACERTS_FAULT_MATRIX_DIR/ha.md, see
// tests/support/fault_matrix.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <thread>

#include "tests/support/e2e.h"
#include "tests/support/fault_matrix.h"
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

// The HA rows of the fault matrix: init pointed at a standby, with a set already published
// from the same KV secret, so that every row, recovered or refused, must leave the
// directory byte-identical.
struct HaRig {
  E2eVault v;
  TempDir out;
  std::string token = v.tokenFile();
  std::unique_ptr<VaultTestServer> standby = startStandby(v.server());
  FaultMatrix matrix{"init fault matrix: HA Vault, init pointed at a standby"};

  HaRig() {
    const auto r = v.run(args(v.addr(), "5s"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  std::vector<std::string> args(const std::string& addr, const std::string& timeout) const {
    return concat({"init", "--dir", out.path(), "--vault-addr", addr, "--vault-cacert", v.caFile(), "--log-level",
                   "debug", "--timeout", timeout, "--auth-method", "token", "--token-file", token},
                  E2eVault::kvArgs());
  }

  struct Expect {
    int code = 0;
    std::vector<std::string> messages{};  // each must be in init's stderr
    bool retries = false;                 // whether init must have retried (event=vault_retry)
  };

  // Runs init against addr with the fault armed; `clear`, when given, ends the fault 1 s
  // after the run starts (fault scheduling, not a timing assertion), and the row's time
  // is from then to init's exit.
  ProcessResult row(const std::string& name, const std::string& addr, const std::string& timeout,
                    const std::function<void()>& arm, const std::function<void()>& clear, const Expect& want) {
    const auto before = snapshotTree(out.path());
    arm();
    bool intact_during = true;
    std::chrono::steady_clock::time_point cleared{};
    std::thread clearer;
    if (clear) {
      clearer = std::thread([&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        intact_during = snapshotTree(out.path()) == before;
        clear();
        cleared = std::chrono::steady_clock::now();
      });
    }
    const auto r = v.run(args(addr, timeout));
    const auto ended = std::chrono::steady_clock::now();
    if (clearer.joinable()) clearer.join();
    const bool intact = intact_during && snapshotTree(out.path()) == before;
    const std::size_t retries = occurrences(r.err, "event=vault_retry");
    const std::string leak = leakedSecret(r.out + r.err, {v.intermediate().key.pkcs8Pem(),
                                                          v.intermediate().key.traditionalPem()});
    INFO(name << ": " << r.err);
    CHECK(r.exit_code == want.code);
    for (const auto& m : want.messages) CHECK_THAT(r.err, Catch::Contains(m));
    CHECK((retries > 0) == want.retries);
    CHECK(intact);
    CHECK(leak.empty());
    if (clear) CHECK(cleared <= ended);
    std::string outcome = "exit " + std::to_string(r.exit_code);
    if (r.exit_code != want.code) outcome += ", expected " + std::to_string(want.code);
    outcome += retries == 0 ? " at once" : " after " + std::to_string(retries) + (retries == 1 ? " retry" : " retries");
    matrix.add({name, "kv", outcome,
                clear && r.exit_code == 0 ? std::optional<long long>(msBetween(cleared, ended)) : std::nullopt, intact,
                leak.empty() ? "none" : leak});
    return r;
  }
};

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

TEST_CASE("HA fault matrix: a standby's redirects to a down, looping, foreign or cleartext node, and its own "
          "429/503 with Retry-After",
          "[ha-e2e][fault-matrix]") {
  HaRig rig;
  E2eVault& v = rig.v;
  VaultTestServer& active = v.server();
  VaultTestServer& standby = *rig.standby;
  const auto nothing = [] {};
  const std::string refused = active.addr() + ": connection failed";

  // The leader is down: the standby still names it, connecting there fails (transient).
  bool resumed = false;  // set on the clearing thread, checked here (Catch is not thread-safe)
  rig.row("standby 307 to an active node that is down, back after 1 s", standby.addr(), "20s",
          [&] { active.stopListening(); }, [&] { resumed = static_cast<bool>(active.resumeListening()); },
          {0, {"event=vault_redirect", refused}, true});
  CHECK(resumed);
  rig.row("standby 307 to an active node that stays down, --timeout 1s", standby.addr(), "1s",
          [&] { active.stopListening(); }, nullptr, {4, {refused, "--timeout"}, true});
  REQUIRE(active.resumeListening());

  // No leader at all: the standby answers 503 itself until one is elected.
  standby.setStandbyOf("");
  standby.setStandby(true, "");
  rig.row("standby without an active node (503 no active Vault instance found), leader after 1 s", standby.addr(),
          "20s", nothing, [&] { standby.setStandbyOf(active.addr()); },
          {0, {"no active Vault instance found"}, true});
  standby.setStandby(false);

  // Loops: one redirect is followed, a second one is refused without retrying.
  active.clearRequests();
  standby.setStandbyOf(standby.addr());
  rig.row("redirect loop (a standby pointing at itself)", standby.addr(), "20s", nothing, nullptr,
          {2, {"redirected twice in a row"}});
  auto other = startStandby(active, standby.addr());
  standby.setStandbyOf(other->addr());
  rig.row("redirect loop (two standbys pointing at each other)", standby.addr(), "20s", nothing, nullptr,
          {2, {"redirected twice in a row", "to " + other->addr() + ", then to " + standby.addr()}});
  CHECK(active.requests().empty());

  // Another scheme: https to http would put the token on the wire in clear text.
  const std::string http_addr = "http://127.0.0.1:" + std::to_string(active.port());
  standby.setStandbyOf(http_addr);
  rig.row("redirect from https to http", standby.addr(), "20s", nothing, nullptr,
          {2, {"from " + standby.addr() + " to " + http_addr, "https to http"}});
  CHECK(active.requests().empty());

  // Another host: followed with the same trust settings, so a node whose certificate the
  // --vault-cacert does not verify never sees the request.
  auto foreign = VaultTestServer::start({});
  REQUIRE(foreign);
  standby.setStandbyOf((*foreign)->addr());
  rig.row("redirect to another host whose certificate --vault-cacert does not verify", standby.addr(), "20s", nothing,
          nullptr, {2, {(*foreign)->addr() + ": TLS server certificate verification failed"}});
  CHECK((*foreign)->requests().empty());
  CHECK(active.requests().empty());
  // The same node under another name its certificate carries: followed.
  const std::string by_name = "https://localhost:" + std::to_string(active.port());
  standby.setStandbyOf(by_name);
  rig.row("redirect to another host name of the active node (certificate verified)", standby.addr(), "20s", nothing,
          nullptr, {0, {"to=" + by_name}});
  CHECK_FALSE(active.requests().empty());

  // The standby's own 429/503 with Retry-After (a performance standby's rate-limit quota,
  // or its own overload), then the active node's after the redirect: Vault's wait is honoured.
  standby.setStandbyOf(active.addr());
  for (const int status : {429, 503}) {
    for (VaultTestServer* node : {&standby, &active}) {
      Fault f;
      f.kind = Fault::Kind::kStatus;
      f.status = status;
      f.path_prefix = "secret/data/";
      f.count = -1;
      f.headers = {{"Retry-After", "1"}};
      const bool at_standby = node == &standby;
      rig.row(std::to_string(status) + " with Retry-After: 1 from the " +
                  (at_standby ? std::string("standby itself") : std::string("active node after the redirect")) +
                  ", clears after 1 s",
              standby.addr(), "20s", [&] { node->injectFault(f); }, [&] { node->clearFaults(); },
              {0, {"retry_in_ms=1000 "}, true});
    }
  }
  v.scanForSecrets();
  CHECK(rig.matrix.publish("ha"));
}

}  // namespace cacerts::testing
