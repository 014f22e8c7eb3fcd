// End-to-end: the real cacerts-agent sidecar against the Vault test server, with lifetimes
// of seconds and a small fake istiod that reports the notAfter of whatever ca-cert.pem the
// directory holds. Every wait is a bounded poll for a condition, never a fixed sleep.
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/prom_parse.h"
#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

constexpr milliseconds kWait = kSidecarWait;

}  // namespace

TEST_CASE("sidecar renews several times in a row, each reload confirmed, never a mixed set", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(s.pkiArgs("8s", "5s"));  // a renewal about every 3 s
  REQUIRE(s.waitPublished(1));
  ConsistencyReader reader(s.out);
  INFO(s.agent->err());
  REQUIRE(s.waitPublished(4));
  REQUIRE(s.agent->waitForErr("event=reload_confirmed", kWait, 4));
  reader.finish();
  CHECK(reader.mixed == 0);
  CHECK(reader.reads > 0);
  CHECK(reader.serials.size() >= 3);

  // Counted right after each confirmation: poll.
  CHECK(eventually(
      [&] { return metric(s.metrics(), "cacerts_agent_rotations_total", {{"result", "success"}}).value_or(0) >= 4; },
      kWait));
  const std::string page = s.metrics();
  INFO(page);
  CHECK(metric(page, "cacerts_agent_istiod_reload_confirmed") == 1.0);
  CHECK(metric(page, "cacerts_agent_build_info", {{"version", CACERTS_VERSION}}) == 1.0);
  CHECK(metric(page, "cacerts_agent_vault_requests_total", {{"operation", "pki_sign"}, {"code", "200"}}).value_or(0) >= 4);
  CHECK(metric(page, "cacerts_agent_root_rotation_phase") == 0.0);
  for (const char* name : {"cacerts_agent_ca_cert_expiry_timestamp_seconds", "cacerts_agent_root_cert_expiry_timestamp_seconds",
                           "cacerts_agent_next_renewal_timestamp_seconds", "cacerts_agent_last_success_timestamp_seconds"}) {
    INFO(name);
    CHECK(metric(page, name).value_or(0) > 1.6e9);
  }
  // The expiry gauge describes the published ca-cert (polled: a renewal may land in between).
  CHECK(eventually(
      [&] {
        const auto expiry = metric(s.metrics(), "cacerts_agent_ca_cert_expiry_timestamp_seconds");
        return expiry == epochSeconds(TestCert::fromPem(s.file("ca-cert.pem")).notAfter());
      },
      kWait));
  CHECK(httpGet(s.port, "/healthz").status == 200);
  CHECK(httpGet(s.port, "/readyz").status == 200);
  s.stop();
  CHECK(runAgent({"check", "--dir", s.out.path(), "--min-remaining", "1s"}).exit_code == 0);
}

TEST_CASE("sidecar keeps files and readiness through a Vault outage and renews when Vault returns",
          "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(s.pkiArgs("20s", "14s"));  // renewal about 6 s after the first publish
  REQUIRE(s.waitPublished(1));
  const std::string first = s.serial();
  s.vault.server().stopListening();
  const auto during = snapshotTree(s.out.path());
  INFO(s.agent->err());
  // Longer than one retry: at least two failed attempts.
  REQUIRE(s.agent->waitForErr("event=renew_failed", kWait, 2));
  CHECK(httpGet(s.port, "/readyz").status == 200);
  CHECK(snapshotTree(s.out.path()) == during);
  CHECK(metric(s.metrics(), "cacerts_agent_rotations_total", {{"result", "failure"}}).value_or(0) >= 2);
  REQUIRE(s.vault.server().resumeListening());
  REQUIRE(eventually([&] { return s.serial() != first; }, kWait));
  CHECK(httpGet(s.port, "/readyz").status == 200);
  CHECK(s.stop() < milliseconds(1500));
}

TEST_CASE("sidecar republishes a KV secret changed out of band, polling only metadata", "[sidecar-e2e]") {
  Sidecar s;
  s.start(concat(s.baseArgs({"--auth-method", "token", "--token-file", s.vault.tokenFile()}), E2eVault::kvArgs()));
  REQUIRE(s.waitPublished(1));
  REQUIRE(s.file("ca-cert.pem") == s.vault.intermediate().cert.pem());
  const std::string metadata = "secret/metadata/istio/cacerts", data = "secret/data/istio/cacerts";
  auto& server = s.vault.server();
  // After the first poll (which reads the secret once: no version was known yet), unchanged
  // polls read only the metadata.
  REQUIRE(eventually([&] { return countRequests(server, "GET", metadata) >= 2; }, kWait));
  const std::size_t reads = countRequests(server, "GET", data);
  const std::size_t polls = countRequests(server, "GET", metadata);
  REQUIRE(eventually([&] { return countRequests(server, "GET", metadata) >= polls + 3; }, kWait));
  CHECK(countRequests(server, "GET", data) == reads);

  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.path_len = 0;
  spec.not_before = now - std::chrono::minutes(1);
  spec.not_after = now + std::chrono::hours(24 * 30);
  const TestCa next = makeIntermediate(s.vault.root(), "E2E istiod Intermediate 2", spec);
  s.vault.putCa("istio/cacerts", next.cert.pem(), next.key.pkcs8Pem(), next.cert.pem() + s.vault.root().cert.pem(),
                s.vault.root().cert.pem());
  REQUIRE(eventually([&] { return s.file("ca-cert.pem") == next.cert.pem(); }, kWait));
  CHECK(s.file("root-cert.pem") == s.vault.root().cert.pem());
  const std::size_t reads_after = countRequests(server, "GET", data);
  CHECK(reads_after > reads);
  const std::size_t polls_after = countRequests(server, "GET", metadata);
  REQUIRE(eventually([&] { return countRequests(server, "GET", metadata) >= polls_after + 3; }, kWait));
  INFO(s.agent->err());
  CHECK(countRequests(server, "GET", data) == reads_after);
  s.stop();
}

TEST_CASE("sidecar renews at once on SIGHUP and on `rotate`; rotate without a sidecar exits 4", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(s.pkiArgs("1h", "10m"));
  REQUIRE(s.waitPublished(1));
  const std::string first = s.serial();
  s.agent->signal(SIGHUP);
  INFO(s.agent->err());
  REQUIRE(s.waitPublished(2));
  const std::string second = s.serial();
  CHECK(second != first);
  const auto rotated = runAgent({"rotate", "--listen", "127.0.0.1:" + std::to_string(s.port)});
  INFO(rotated.err);
  CHECK(rotated.exit_code == 0);
  REQUIRE(s.waitPublished(3));
  CHECK(s.serial() != second);
  CHECK(s.agent->count("event=rotate_requested") == 2);
  s.stop();

  const auto nobody = runAgent({"rotate", "--listen", "127.0.0.1:" + std::to_string(freePort())});
  CHECK(nobody.exit_code == 4);
  CHECK_THAT(nobody.err, Catch::Contains("no sidecar answered"));
}

TEST_CASE("sidecar stops within a second on SIGTERM and leaves a consistent directory", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(s.pkiArgs("1h", "10m"));
  REQUIRE(s.waitPublished(1));
  const auto settled = [&] {
    CHECK_FALSE(fs::exists(fs::symlink_status(s.out.file("..generations/..data_tmp"))));
    const auto check = runAgent({"check", "--dir", s.out.path(), "--min-remaining", "1s"});
    INFO(check.out);
    CHECK(check.exit_code == 0);
    int generations = 0;  // staged in ..generations; nothing else hidden next to ..data but the lock
    for (const auto& e : fs::directory_iterator(s.out.path())) {
      const auto name = e.path().filename().string();
      if (name.rfind("..", 0) == 0 && name != "..data" && name != "..lock" && name != "..generations" &&
          !fs::is_symlink(e.path())) {
        ++generations;
      }
    }
    for (const auto& e : fs::directory_iterator(s.out.file("..generations"))) {
      if (e.path().filename().string().rfind("..20", 0) == 0 && !fs::is_symlink(e.path())) ++generations;
    }
    CHECK(generations == 1);
  };
  SECTION("while idle") {
    CHECK(s.stop() < milliseconds(1000));
    settled();
  }
  SECTION("right after a forced renewal started") {
    s.agent->signal(SIGHUP);
    REQUIRE(eventually([&] { return countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate") >= 2; },
                       kWait));
    CHECK(s.stop() < milliseconds(1000));
    settled();
  }
  SECTION("while a Vault call hangs") {
    Fault slow;
    slow.kind = Fault::Kind::kDelay;
    slow.path_prefix = "pki/root/sign-intermediate";
    slow.delay = seconds(3);  // far beyond the grace period; the server thread sleeps it out
    s.vault.server().injectFault(slow);
    s.agent->signal(SIGHUP);
    REQUIRE(eventually([&] { return countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate") >= 2; },
                       kWait));
    CHECK(s.stop() < milliseconds(1000));
    INFO(s.agent->err());
    CHECK(s.agent->count("event=shutdown_forced") == 1);
    settled();
  }
}

TEST_CASE("sidecar rotates a root by Vault's state and the clock alone, surviving a restart", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(concat(s.pkiArgs("1h", "10m"), {"--istiod-multiroot", "--root-propagation", "4s", "--root-retire", "2s",
                                          "--pki-poll-interval", "500ms"}));
  REQUIRE(s.waitPublished(1));
  const std::string root_a = s.file("root-cert.pem");
  const std::string ca_a = s.file("ca-cert.pem");
  const std::size_t default_signs = countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate");
  // The operator's whole procedure: generate the new root (not backdated: its notBefore
  // starts the propagation clock) ... and even make it the default issuer at once.
  const auto b = s.vault.server().pkiGenerateRoot("", "pki",
                                                  {{"common_name", "Mesh Root B"},
                                                   {"ttl", "87600h"},
                                                   {"key_type", "ec"},
                                                   {"issuer_name", "root-b"},
                                                   {"not_before_duration", "0s"}});
  REQUIRE(b);
  REQUIRE(s.vault.server().pkiSetDefaultIssuer("", "pki", "root-b"));
  const TestCert root_b = TestCert::fromPem(b.value()["certificate"].get<std::string>());
  INFO(s.agent->err());

  // Root B appended after A's bytes within a poll interval; the intermediate from A stays.
  REQUIRE(eventually([&] { return s.file("root-cert.pem") != root_a; }, kWait));
  const std::string both = s.file("root-cert.pem");
  CHECK(both == root_a + root_b.pem());
  CHECK(s.file("ca-cert.pem") == ca_a);
  CHECK(s.phaseBecomes(1));

  // Nothing is kept per pod: a restarted sidecar reads where the rotation stands from Vault.
  s.restart();
  CHECK(s.agent->waitForErr("event=adopted", kWait));
  CHECK(s.agent->count("root_phase=propagating") >= 1);

  // The switch: once B is older than --root-propagation, an intermediate from B with the
  // same root bytes, signed through B named explicitly, never through the default issuer.
  REQUIRE(eventually([&] { return s.file("ca-cert.pem") != ca_a; }, kWait));
  const auto switched_at = std::chrono::system_clock::now();
  CHECK(switched_at >= root_b.notBefore() + std::chrono::seconds(4));
  const TestCert ca_b = TestCert::fromPem(s.file("ca-cert.pem"));
  CHECK(X509_check_issued(root_b.x509.get(), ca_b.x509.get()) == X509_V_OK);
  CHECK(s.file("root-cert.pem") == both);
  CHECK(s.phaseBecomes(2));
  CHECK(s.agent->count("trigger=root_switch") >= 1);
  CHECK(countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate") == default_signs);

  // After --root-retire past the switch and once A is deleted, A drops from the front.
  REQUIRE(s.vault.server().pkiDeleteIssuer("", "pki", "root-a"));
  REQUIRE(eventually([&] { return s.file("root-cert.pem") == root_b.pem(); }, kWait));
  CHECK(std::chrono::system_clock::now() >= root_b.notBefore() + std::chrono::seconds(6));
  CHECK(both.find(s.file("root-cert.pem")) != std::string::npos);
  CHECK(s.phaseBecomes(0));
  CHECK(runAgent({"check", "--dir", s.out.path(), "--min-remaining", "1s"}).exit_code == 0);
  s.stop();
}

TEST_CASE("sidecar without --istiod-multiroot refuses a root change and keeps serving", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(s.pkiArgs("1h", "10m"));
  REQUIRE(s.waitPublished(1));
  const std::string roots_before = s.file("root-cert.pem");
  const std::string ca_before = s.file("ca-cert.pem");
  const TestCert root_a = TestCert::fromPem(roots_before);
  // Not backdated: B's notBefore is later than A's (backdated 30 s), so B is the newer root.
  REQUIRE(s.vault.server().pkiGenerateRoot("", "pki",
                                           {{"common_name", "Mesh Root B"},
                                            {"ttl", "87600h"},
                                            {"key_type", "ec"},
                                            {"issuer_name", "root-b"},
                                            {"not_before_duration", "0s"}}));
  REQUIRE(s.vault.server().pkiSetDefaultIssuer("", "pki", "root-b"));
  s.agent->signal(SIGHUP);
  INFO(s.agent->err());
  REQUIRE(s.agent->waitForErr("event=root_change_blocked", kWait));
  REQUIRE(s.agent->waitForErr("event=published trigger=forced", kWait));
  CHECK(s.agent->count("ISTIO_MULTIROOT_MESH") >= 1);
  const std::string page = s.metrics();
  CHECK(metric(page, "cacerts_agent_root_change_blocked") == 1.0);
  CHECK(httpGet(s.port, "/readyz").status == 200);
  s.stop();
  INFO(s.agent->err());
  // Root B is too young to sign (--root-propagation, 24 h by default), so the renewal is
  // signed by root A, named explicitly although B is the default issuer; the root bytes
  // stay as istiod holds them.
  CHECK(s.file("root-cert.pem") == roots_before);
  const TestCert ca_after = TestCert::fromPem(s.file("ca-cert.pem"));
  CHECK(ca_after.pem() != ca_before);
  CHECK(X509_check_issued(root_a.x509.get(), ca_after.x509.get()) == X509_V_OK);
}

TEST_CASE("sidecar logs in again exactly once when its token expires mid-run", "[sidecar-e2e]") {
  Sidecar s;
  s.setUpPki();
  s.start(concat(s.baseArgs(s.setUpKubernetesAuth()),
                 {"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", "1h", "--renew-before", "20m"}));
  REQUIRE(s.waitPublished(1));
  CHECK(countRequests(s.vault.server(), "POST", "auth/kubernetes/login") == 1);
  // The server's clock jumps past the token's TTL; the agent cannot know until Vault says so.
  s.vault.server().advanceClock(std::chrono::hours(2));
  s.agent->signal(SIGHUP);
  INFO(s.agent->err());
  REQUIRE(s.waitPublished(2));
  CHECK(countRequests(s.vault.server(), "POST", "auth/kubernetes/login") == 2);
  // The first authenticated call of the renewal (the mount's max_lease_ttl, read before
  // signing) met the dead token; nothing was sent with it after the re-login.
  CHECK(countRequests(s.vault.server(), "GET", "sys/internal/ui/mounts/pki", 403) == 1);
  CHECK(countRequests(s.vault.server(), "POST", "pki/root/sign-intermediate", 403) == 0);
  CHECK(countRequests(s.vault.server(), "POST", "auth/token/renew-self") == 0);
  CHECK(metric(s.metrics(), "cacerts_agent_vault_requests_total", {{"operation", "login"}, {"code", "200"}}) == 2.0);
  s.stop();
}

}  // namespace cacerts::testing
