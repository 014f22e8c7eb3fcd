// End-to-end: reload confirmation against a fake istiod that behaves as istiod does
// (sidecar_harness.h FakeIstiod): it refuses a root change without ISTIO_MULTIROOT_MESH
// and then ignores every reload until its roots come back, and before 1.24 its gauges
// keep their startup values. The real cacerts-agent sidecar, a KV or PKI source in the
// Vault test server; every wait is a bounded poll for a condition.
#include <signal.h>

#include <catch2/catch.hpp>

#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::chrono::milliseconds kWait = kSidecarWait;

// An intermediate from `root`, valid 30 days + `days` (distinct notAfters in whole seconds).
TestCa intermediateFrom(const TestCa& root, const std::string& cn, int days) {
  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.path_len = 0;
  spec.not_before = now - minutes(1);
  spec.not_after = now + hours(24 * (30 + days));
  return makeIntermediate(root, cn, spec);
}

double verdict(const std::string& page, const std::string& name) {
  return metric(page, "cacerts_agent_istiod_reload_verdict", {{"verdict", name}}).value_or(-1);
}

// A PKI sidecar whose first set istiod loads at its start (its gauges show it at once),
// then a forced renewal; returns the first serial.
std::string publishThenRenew(Sidecar& s, FakeIstiodOptions istiod) {
  s.istiod.configure(std::move(istiod));
  s.setUpPki();
  s.start(s.pkiArgs("1h", "10m"));
  INFO(s.agent->err());
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 1));
  const std::string first = s.serial();
  // Vault signs for "1h" from now, in whole seconds: a renewal within the same second would
  // carry the same notAfter, which istiod's gauge cannot tell apart (verdict unverified).
  const SystemTime not_after = TestCert::fromPem(s.file("ca-cert.pem")).notAfter();
  REQUIRE(eventually([&] { return std::chrono::system_clock::now() + hours(1) >= not_after + seconds(1); }, kWait));
  s.agent->signal(SIGHUP);
  return first;
}

}  // namespace

TEST_CASE("istiod refusing a root change is named, undone, and later publishes are confirmed again",
          "[sidecar-e2e][istiod-confirm]") {
  Sidecar s;
  s.istiod.configure(FakeIstiodOptions{/*multiroot=*/false, "1.24.3"});
  s.start(concat(concat(s.baseArgs({"--auth-method", "token", "--token-file", s.vault.tokenFile()}),
                        E2eVault::kvArgs()),
                 {"--istiod-multiroot"}));
  INFO(s.agent->err());
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 1));
  const std::string root_a = s.file("root-cert.pem");
  REQUIRE(root_a == s.vault.root().cert.pem());

  // Root B appended, with a new intermediate from A: one publish, refused by istiod.
  const TestCa root_b = makeRoot("E2E Root B");
  const TestCa ca2 = intermediateFrom(s.vault.root(), "E2E istiod Intermediate 2", 2);
  s.vault.putCa("istio/cacerts", ca2.cert.pem(), ca2.key.pkcs8Pem(), ca2.cert.pem() + root_a,
                root_a + root_b.cert.pem());
  REQUIRE(s.agent->waitForErr("event=istiod_root_change_refused", kWait));
  CHECK(s.istiod.refusals() >= 1);
  CHECK(s.agent->count("ISTIO_MULTIROOT_MESH") >= 1);
  CHECK(s.agent->count("event=reload_not_confirmed") == 1);  // the refused publish, once

  // Recovery: the roots istiod holds, with the current intermediate (it chains to A).
  REQUIRE(s.agent->waitForErr("event=istiod_recovery_published with=current_intermediate", kWait));
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 2));
  CHECK(s.file("root-cert.pem") == root_a);
  CHECK(s.file("ca-cert.pem") == ca2.cert.pem());
  CHECK(s.istiod.heldRoots() == root_a);
  CHECK(s.istiod.reloads() >= 1);
  std::string page = s.metrics();
  CHECK(metric(page, "cacerts_agent_istiod_root_change_refused") == 1.0);
  CHECK(metric(page, "cacerts_agent_istiod_reload_confirmed") == 1.0);
  CHECK(verdict(page, "confirmed") == 1.0);
  CHECK(verdict(page, "refused") == 0.0);
  CHECK(metric(page, "cacerts_agent_istiod_unconfirmed_publishes") == 0.0);

  // A later intermediate under the confirmed roots is loaded and confirmed.
  const TestCa ca3 = intermediateFrom(s.vault.root(), "E2E istiod Intermediate 3", 3);
  s.vault.putCa("istio/cacerts", ca3.cert.pem(), ca3.key.pkcs8Pem(), ca3.cert.pem() + root_a, root_a);
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 3));
  CHECK(s.file("ca-cert.pem") == ca3.cert.pem());
  const int refusals = s.istiod.refusals();

  // From now on a root change is blocked (as with --istiod-multiroot=false): the roots
  // istiod holds stay, and istiod loads the new intermediate.
  const TestCa ca4 = intermediateFrom(s.vault.root(), "E2E istiod Intermediate 4", 4);
  s.vault.putCa("istio/cacerts", ca4.cert.pem(), ca4.key.pkcs8Pem(), ca4.cert.pem() + root_a,
                root_a + root_b.cert.pem());
  REQUIRE(s.agent->waitForErr("event=root_change_blocked", kWait));
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 4));
  CHECK(s.file("ca-cert.pem") == ca4.cert.pem());
  CHECK(s.file("root-cert.pem") == root_a);
  CHECK(s.istiod.refusals() == refusals);
  page = s.metrics();
  CHECK(metric(page, "cacerts_agent_root_change_blocked") == 1.0);
  CHECK(metric(page, "cacerts_agent_istiod_unconfirmed_publishes") == 0.0);
  s.stop();
}

TEST_CASE("a new intermediate loaded by istiod 1.24+ is confirmed by its chain gauge", "[sidecar-e2e][istiod-confirm]") {
  Sidecar s;
  const std::string first = publishThenRenew(s, FakeIstiodOptions{/*multiroot=*/false, "1.24.0"});
  const bool confirmed = s.agent->waitForErr("event=reload_confirmed", kWait, 2);
  INFO(s.agent->err());
  REQUIRE(confirmed);
  CHECK(s.serial() != first);
  CHECK(s.istiod.reloads() >= 1);
  const std::string page = s.metrics();
  CHECK(verdict(page, "confirmed") == 1.0);
  CHECK(metric(page, "cacerts_agent_istiod_reload_confirmed") == 1.0);
  CHECK(s.agent->count("event=reload_not_confirmed") == 0);
  s.stop();
}

TEST_CASE("istiod 1.23, whose gauges keep their startup values, is reported unsupported, not unconfirmed",
          "[sidecar-e2e][istiod-confirm]") {
  Sidecar s;
  const std::string first = publishThenRenew(s, FakeIstiodOptions{/*multiroot=*/true, "1.23.2"});
  const bool unsupported = s.agent->waitForErr("event=reload_unsupported", kWait);
  INFO(s.agent->err());
  REQUIRE(unsupported);
  CHECK(s.serial() != first);
  CHECK(s.istiod.reloads() >= 1);  // istiod did load it; its gauges just cannot say so
  CHECK(s.agent->count("1.23.2") >= 1);
  CHECK(s.agent->count("event=reload_not_confirmed") == 0);
  CHECK(s.agent->count("event=istiod_root_change_refused") == 0);
  const std::string page = s.metrics();
  CHECK(verdict(page, "unsupported") == 1.0);
  CHECK(verdict(page, "not_confirmed") == 0.0);
  CHECK(metric(page, "cacerts_agent_istiod_reload_confirmed") == 0.0);
  CHECK(metric(page, "cacerts_agent_istiod_unconfirmed_publishes") == 0.0);
  s.stop();
}

}  // namespace cacerts::testing
