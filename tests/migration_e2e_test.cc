// End-to-end proof of issue 17 (adopting a running mesh): the real cacerts-agent, several
// replicas (init, then a sidecar, each into its own directory) against one Vault test
// server, through the three migration phases in seconds. Workload certificates are minted
// the way istiod mints them — with the ca-key.pem a replica published — before the patch
// (old CA), during phase 1 (old CA) and after the switch (Vault); each is verified against
// every replica's root-cert.pem, as a peer proxy would, for its whole lifetime.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "common/prom_parse.h"
#include "common/x509.h"
#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/support/output_capture.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A workload certificate and the chain istiod serves with it.
struct Workload {
  std::string name;
  Certificate leaf;
  std::vector<Certificate> intermediates;
  SystemTime not_after;
};

// What istiod does on a CSR: sign a short-lived leaf with ca-key.pem, and serve
// cert-chain.pem after it.
Workload mintWorkload(const std::string& name, const std::string& dir, Duration lifetime) {
  const TestCert ca = TestCert::fromPem(readFile(dir + "/ca-cert.pem"));
  const TestKey ca_key = TestKey::fromPem(readFile(dir + "/ca-key.pem"));
  REQUIRE_FALSE(ca.empty());
  REQUIRE_FALSE(ca_key.empty());
  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.common_name = name;
  spec.is_ca = false;
  spec.key_cert_sign = spec.crl_sign = false;
  spec.digital_signature = true;
  spec.ext_key_usage = {"serverAuth", "clientAuth"};
  spec.uri_sans = {"spiffe://cluster.local/ns/default/sa/" + name};
  spec.not_before = now - seconds(1);
  spec.not_after = std::chrono::time_point_cast<seconds>(now + lifetime);
  const TestCert leaf = issueCert(spec, makeKey(), &ca, ca_key);
  REQUIRE_FALSE(leaf.empty());
  Workload w{name, parseCertificate(leaf.pem(), name).value(), {}, spec.not_after};
  // istiod's own CA serves no chain (istio-ca-secret's cert-chain.pem is empty).
  const std::string chain_pem = readFile(dir + "/cert-chain.pem");
  if (!chain_pem.empty()) {
    Result<std::vector<Certificate>> chain = parseCertificates(chain_pem, "cert-chain.pem");
    REQUIRE(chain);
    w.intermediates = *chain;
  }
  return w;
}

// Whether a peer holding dir's root-cert.pem accepts the workload's chain at `now`.
Status trustedBy(const Workload& w, const std::string& dir, SystemTime now) {
  ASSIGN_OR_RETURN(std::vector<Certificate> roots, parseCertificates(readFile(dir + "/root-cert.pem"), "root-cert.pem"));
  ASSIGN_OR_RETURN(std::vector<Certificate> path, verifyChain(w.leaf, w.intermediates, roots, now));
  (void)path;
  return ok();
}

// Verifies every live workload certificate against every replica's root-cert.pem on a
// thread of its own, as peers would during the whole run.
class TrustProbe {
 public:
  explicit TrustProbe(std::vector<std::string> dirs) : dirs_(std::move(dirs)), thread_([this] { loop(); }) {}
  ~TrustProbe() { finish(); }
  void add(Workload w) {
    std::lock_guard<std::mutex> lock(mu_);
    not_after_[w.name] = w.not_after;
    live_.push_back(std::move(w));
  }
  // When each workload's certificate ends, and when the last one does.
  std::map<std::string, SystemTime> notAfter() const {
    std::lock_guard<std::mutex> lock(mu_);
    return not_after_;
  }
  SystemTime lastExpiry() const {
    std::lock_guard<std::mutex> lock(mu_);
    SystemTime last{};
    for (const auto& [name, end] : not_after_) last = std::max(last, end);
    return last;
  }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int checks() const { return checks_; }
  std::vector<std::string> failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  // How many checks each workload got (by name), for proof that each was exercised.
  std::map<std::string, int> perWorkload() const {
    std::lock_guard<std::mutex> lock(mu_);
    return per_workload_;
  }
  std::map<std::string, SystemTime> lastChecked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_checked_;
  }

 private:
  void loop() {
    while (!stop_) {
      probeOnce();
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  void probeOnce() {
    std::vector<Workload> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      live = live_;
    }
    const SystemTime now = std::chrono::system_clock::now();
    for (const Workload& w : live) {
      if (now >= w.not_after) continue;  // its lifetime is over
      for (const std::string& dir : dirs_) {
        const Status trusted = trustedBy(w, dir, now);
        std::lock_guard<std::mutex> lock(mu_);
        ++checks_;
        ++per_workload_[w.name];
        last_checked_[w.name] = now;
        if (!trusted) failures_.push_back(w.name + " vs " + dir + " at " + formatTime(now) + ": " + trusted.error().message);
      }
    }
  }

  std::vector<std::string> dirs_;
  mutable std::mutex mu_;
  std::vector<Workload> live_;
  std::vector<std::string> failures_;
  std::map<std::string, int> per_workload_;
  std::map<std::string, SystemTime> last_checked_;
  std::map<std::string, SystemTime> not_after_;
  std::atomic<int> checks_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::vector<std::string> migrationArgs(const std::string& old_dir, SystemTime switch_at, const std::string& retire) {
  return {"--migrate-from", old_dir, "--migrate-switch-at", formatTime(switch_at), "--root-retire", retire};
}

// formatTime has second precision: the switch falls on a whole second.
SystemTime wholeSecondsFromNow(int s) {
  return std::chrono::time_point_cast<seconds>(std::chrono::system_clock::now()) + seconds(s);
}

void sleepUntil(SystemTime t) { std::this_thread::sleep_until(t); }

}  // namespace

TEST_CASE("migration from istiod's own CA: three replicas through the three phases with 0 trust failures",
          "[migration-e2e]") {
  E2eVault v;
  const TestCa old_ca = makeRoot("cluster.local");  // istiod's self-signed CA today
  const std::string old_key_line = keyBodyLine(old_ca.key.pkcs8Pem());
  recordPlanted({old_key_line});
  TempDir old_dir(false);
  writeIstioCaSecret(old_dir, old_ca);
  const std::string token = v.tokenFile();
  const std::string old_root = old_ca.cert.pem();
  const std::string vault_root = v.root().cert.pem();

  // The patch: every replica reads one switch instant from the same ConfigMap. Workload
  // certificates of the old CA live past the switch but, as --root-retire requires, end
  // before the old root may leave the bundle.
  const SystemTime switch_at = wholeSecondsFromNow(14);
  const Duration retire = seconds(10);
  const auto lifetimeUntil = [](SystemTime end) {
    return std::chrono::duration_cast<Duration>(end - std::chrono::system_clock::now());
  };
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::string> dir_paths;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(std::make_unique<TempDir>());
    dir_paths.push_back(dirs.back()->path());
  }
  // Before the patch, istiod (the old CA) issued a workload certificate.
  Workload before_patch = mintWorkload("before-patch", old_dir.path(), lifetimeUntil(switch_at + seconds(3)));
  const auto base = [&](const std::string& command, const std::string& dir) {
    return concat(concat(concat({command, "--dir", dir}, v.connectArgs()),
                         {"--auth-method", "token", "--token-file", token, "--min-remaining", "1s"}),
                  concat(E2eVault::kvArgs(), migrationArgs(old_dir.path(), switch_at, "10s")));
  };
  std::vector<std::unique_ptr<BackgroundProcess>> sidecars;
  for (const std::string& dir : dir_paths) {
    // Replica 0's istiod runs with ISTIO_MULTIROOT_MESH=true: its sidecar may drop the old root hot.
    const std::vector<std::string> multiroot =
        dir == dir_paths[0] ? std::vector<std::string>{"--istiod-multiroot"} : std::vector<std::string>{};
    const auto init = v.run(base("init", dir));
    INFO(init.err);
    REQUIRE(init.exit_code == 0);
    CHECK_THAT(init.err, Catch::Contains("event=migration phase=1 name=trust_both"));
    CHECK_THAT(init.err, Catch::Contains("event=migration_switch_soon"));  // 14 s < 24 h
    // Phase 1: the old CA signs unchanged, both roots trusted, the old one first.
    CHECK(readFile(dir + "/ca-cert.pem") == old_ca.cert.pem());
    CHECK(readFile(dir + "/root-cert.pem") == old_root + vault_root);
    sidecars.push_back(startAgent(concat(concat(base("sidecar", dir), {"--listen", "127.0.0.1:0", "--istiod-metrics-url",
                                                                      "", "--kv-poll-interval", "200ms",
                                                                      "--retry-initial", "200ms", "--retry-max", "1s"}),
                                         multiroot)));
  }
  // Each sidecar reports the phase at the scrape and the instant it read: the same for all.
  const auto metricOf = [&](std::size_t i, const char* name) -> double {
    const std::string err = sidecars[i]->err();
    const auto at = err.find(" port=", err.find("event=sidecar_started"));
    REQUIRE(at != std::string::npos);
    const auto value = findMetricValue(httpGet(std::atoi(err.c_str() + at + 6), "/metrics").body, name);
    REQUIRE(value);
    REQUIRE(value->has_value());
    return **value;
  };
  const auto phasesAre = [&](double wanted) {
    for (std::size_t i = 0; i < sidecars.size(); ++i) {
      if (metricOf(i, "cacerts_agent_migration_phase") != wanted) return false;
    }
    return true;
  };
  // From the moment every replica has published, peers check against them.
  TrustProbe probe(dir_paths);
  probe.add(std::move(before_patch));
  for (auto& s : sidecars) {
    INFO(s->err());
    REQUIRE(s->waitForErr("event=sidecar_started", milliseconds(20000)));
  }
  const double switch_seconds =
      static_cast<double>(std::chrono::duration_cast<seconds>(switch_at.time_since_epoch()).count());
  for (std::size_t i = 0; i < sidecars.size(); ++i) {
    CHECK(metricOf(i, "cacerts_agent_migration_switch_timestamp_seconds") == switch_seconds);
  }
  CHECK(phasesAre(1));

  // Phase 1: istiod restarted onto the set keeps issuing under the old CA.
  REQUIRE(std::chrono::system_clock::now() < switch_at - seconds(2));
  probe.add(mintWorkload("phase-1", dir_paths[1], lifetimeUntil(switch_at + retire - seconds(2))));

  // Phase 2: every sidecar publishes Vault's intermediate; root-cert.pem keeps its bytes.
  sleepUntil(switch_at);
  for (std::size_t i = 0; i < dir_paths.size(); ++i) {
    INFO(sidecars[i]->err());
    REQUIRE(eventually([&] { return readFile(dir_paths[i] + "/ca-cert.pem") == v.intermediate().cert.pem(); },
                       milliseconds(5000)));
    CHECK(readFile(dir_paths[i] + "/root-cert.pem") == old_root + vault_root);
  }
  CHECK(phasesAre(2));
  // Their lifetimes reach into phase 3, when replica 0 drops the old root.
  for (std::size_t i = 0; i < dir_paths.size(); ++i) {
    probe.add(mintWorkload("phase-2-replica-" + std::to_string(i), dir_paths[i],
                           lifetimeUntil(switch_at + retire + seconds(2))));
  }

  // Phase 3: a replica started now publishes Vault alone (the old root has left the
  // bundle) and no longer reads the old Secret; the old workloads' lifetimes are over.
  sleepUntil(switch_at + retire);
  CHECK(phasesAre(3));
  // With --istiod-multiroot the old root leaves the front of the bundle hot; without it the
  // bytes stay until istiod restarts (and init publishes without it, below).
  {
    INFO(sidecars[0]->err());
    CHECK(eventually([&] { return readFile(dir_paths[0] + "/root-cert.pem") == vault_root; }, milliseconds(5000)));
  }
  CHECK(readFile(dir_paths[1] + "/root-cert.pem") == old_root + vault_root);
  TempDir restarted;
  std::remove(old_dir.file("ca-key.pem").c_str());  // the Secret may be gone by now
  const auto late = v.run(base("init", restarted.path()));
  INFO(late.err);
  REQUIRE(late.exit_code == 0);
  CHECK_THAT(late.err, Catch::Contains("event=migration_finished"));
  CHECK(readFile(restarted.file("root-cert.pem")) == vault_root);
  CHECK(readFile(restarted.file("ca-cert.pem")) == v.intermediate().cert.pem());
  probe.add(mintWorkload("phase-3", restarted.path(), seconds(2)));
  // Every workload is checked for its whole lifetime: the probe runs past the last expiry.
  sleepUntil(probe.lastExpiry() + milliseconds(300));
  probe.finish();

  // 0 failures, and every workload was checked against every replica many times.
  const auto failures = probe.failures();
  for (const auto& f : failures) UNSCOPED_INFO(f);
  CHECK(failures.empty());
  const auto per = probe.perWorkload();
  for (const char* name : {"before-patch", "phase-1", "phase-2-replica-0", "phase-2-replica-1", "phase-2-replica-2",
                           "phase-3"}) {
    INFO(name);
    REQUIRE(per.count(name) == 1);
    CHECK(per.at(name) >= 3 * 5);
  }
  // Workloads of the old CA are proven across the switch, not just before it, and every
  // workload until its certificate ends (the probe checks about every 100 ms).
  const auto last = probe.lastChecked();
  CHECK(last.at("before-patch") > switch_at);
  CHECK(last.at("phase-1") > switch_at);
  for (const auto& [name, end] : probe.notAfter()) {
    INFO(name << " ends " << formatTime(end) << ", last checked " << formatTime(last.at(name)));
    CHECK(last.at(name) >= end - milliseconds(600));
  }
  CHECK(probe.checks() > 200);

  // The old CA key appears in no log line and no Vault request.
  for (auto& s : sidecars) {
    s->signal(SIGTERM);
    REQUIRE(s->wait(milliseconds(10000)).value_or(-1) == 0);
    CHECK(s->err().find(old_key_line) == std::string::npos);
    CHECK(s->out().find(old_key_line) == std::string::npos);
    CHECK_FALSE(containsPemArmour(s->err() + s->out()));
  }
  for (const ProcessResult& r : v.runs()) {
    CHECK(r.err.find(old_key_line) == std::string::npos);
    CHECK(r.out.find(old_key_line) == std::string::npos);
  }
  const auto requests = v.server().requests();
  CHECK(requests.size() > 10);
  for (const RecordedRequest& r : requests) {
    INFO(r.method << " " << r.path);
    CHECK(r.body.find(old_key_line) == std::string::npos);
    CHECK(r.body.find("PRIVATE KEY") == std::string::npos);
  }
  v.scanForSecrets();
}

TEST_CASE("migration from a plugged-in cacerts Secret: init publishes each phase, and refuses a broken old CA",
          "[migration-e2e]") {
  E2eVault v;
  const TestCa old_root = makeRoot("Old Plugged Root");
  CertSpec spec;
  spec.path_len = 0;
  const TestCa old_inter = makeIntermediate(old_root, "Old Plugged Intermediate", spec);
  recordPlanted({keyBodyLine(old_inter.key.traditionalPem())});
  TempDir old_dir(false);
  writeFile(old_dir.file("ca-cert.pem"), old_inter.cert.pem());
  writeFile(old_dir.file("ca-key.pem"), old_inter.key.traditionalPem(), 0600);
  writeFile(old_dir.file("cert-chain.pem"), old_inter.cert.pem() + old_root.cert.pem());
  writeFile(old_dir.file("root-cert.pem"), old_root.cert.pem());
  const std::string token = v.tokenFile();
  const auto init = [&](const std::string& dir, SystemTime switch_at) {
    return v.run(concat(concat(concat({"init", "--dir", dir}, v.connectArgs()),
                               {"--auth-method", "token", "--token-file", token, "--min-remaining", "1s"}),
                        concat(E2eVault::kvArgs(), migrationArgs(old_dir.path(), switch_at, "1h"))));
  };
  const auto now = std::chrono::system_clock::now();
  const std::string both = old_root.cert.pem() + v.root().cert.pem();
  const auto old_secret = snapshotTree(old_dir.path());

  SECTION("phase 1, far ahead: the old intermediate and its chain, both roots, no warning") {
    TempDir out;
    const auto r = init(out.path(), now + std::chrono::hours(48));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("layout=cacerts"));
    CHECK_THAT(r.err, !Catch::Contains("event=migration_switch_soon"));
    CHECK(readFile(out.file("ca-cert.pem")) == old_inter.cert.pem());
    CHECK(readFile(out.file("ca-key.pem")) == old_inter.key.traditionalPem());
    CHECK(readFile(out.file("cert-chain.pem")) == old_inter.cert.pem() + old_root.cert.pem());
    CHECK(readFile(out.file("root-cert.pem")) == both);
    CHECK(runAgent({"check", "--dir", out.path()}).exit_code == 0);
  }
  SECTION("phase 2: Vault's intermediate with both roots") {
    TempDir out;
    const auto r = init(out.path(), now - std::chrono::minutes(1));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(readFile(out.file("ca-cert.pem")) == v.intermediate().cert.pem());
    CHECK(readFile(out.file("root-cert.pem")) == both);
  }
  SECTION("phase 3: Vault alone") {
    TempDir out;
    const auto r = init(out.path(), now - std::chrono::hours(2));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(readFile(out.file("root-cert.pem")) == v.root().cert.pem());
  }
  SECTION("rollback before the switch: istiod back on the untouched Secret trusts phase 1, and is trusted") {
    TempDir out;
    const auto r = init(out.path(), now + std::chrono::hours(48));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const Workload phase_1 = mintWorkload("phase-1", out.path(), std::chrono::hours(1));
    // Removing the patch puts the chart's Secret volume back as istiod's CA directory: the
    // very files the agent read, byte for byte.
    REQUIRE(snapshotTree(old_dir.path()) == old_secret);
    const SystemTime t = std::chrono::system_clock::now();
    CHECK(trustedBy(phase_1, old_dir.path(), t));
    // What istiod signs after the rollback verifies for proxies that still hold the two-root
    // bundle of phase 1, and Vault signed nothing that anyone would have to distrust.
    const Workload after_rollback = mintWorkload("after-rollback", old_dir.path(), std::chrono::hours(1));
    CHECK(trustedBy(after_rollback, out.path(), t));
    CHECK(readFile(out.file("ca-cert.pem")) == old_inter.cert.pem());
  }
  SECTION("rollback after the switch: a later instant brings the old CA back, Vault's workloads still verify") {
    TempDir out;
    REQUIRE(init(out.path(), now - std::chrono::minutes(1)).exit_code == 0);
    const Workload from_vault = mintWorkload("vault-workload", out.path(), std::chrono::hours(1));
    const auto back = init(out.path(), now + std::chrono::hours(48));
    INFO(back.err);
    REQUIRE(back.exit_code == 0);
    CHECK(readFile(out.file("ca-cert.pem")) == old_inter.cert.pem());
    CHECK(readFile(out.file("root-cert.pem")) == both);
    const Workload from_old = mintWorkload("old-workload", out.path(), std::chrono::hours(1));
    const SystemTime t = std::chrono::system_clock::now();
    const Status vault_trusted = trustedBy(from_vault, out.path(), t);
    CHECK(vault_trusted);
    CHECK(trustedBy(from_old, out.path(), t));
  }
  SECTION("refusals: a key of another CA (exit 5), no key (exit 2); nothing published, no Vault read") {
    SECTION("mismatch") {
      writeFile(old_dir.file("ca-key.pem"), makeKey().pkcs8Pem(), 0600);
      TempDir out;
      v.server().clearRequests();
      const auto r = init(out.path(), now + std::chrono::hours(48));
      INFO(r.err);
      CHECK(r.exit_code == 5);
      CHECK_THAT(r.err, Catch::Contains("key_matches_cert") && Catch::Contains("--migrate-from"));
      CHECK_FALSE(std::filesystem::exists(out.file("ca-cert.pem")));
      CHECK(countRequests(v.server(), "GET", "secret/data/istio/cacerts") == 0);
    }
    SECTION("missing") {
      std::remove(old_dir.file("ca-key.pem").c_str());
      TempDir out;
      const auto r = init(out.path(), now + std::chrono::hours(48));
      INFO(r.err);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::Contains("ca-key.pem is missing"));
      CHECK_FALSE(std::filesystem::exists(out.file("ca-cert.pem")));
    }
  }
  SECTION("the old CA still mounted without the migration's settings: exit 2, nothing published") {
    // The ConfigMap was pruned while a pod still mounts the Secret: on its own this replica
    // would publish Vault's CA before the instant every other replica keeps.
    const auto plain = [&](const std::string& dir, const std::string& mount) {
      return v.run(concat(concat(concat({"init", "--dir", dir}, v.connectArgs()),
                                 {"--auth-method", "token", "--token-file", token, "--min-remaining", "1s",
                                  "--migrate-mount", mount}),
                          E2eVault::kvArgs()));
    };
    TempDir out;
    v.server().clearRequests();
    const auto refused = plain(out.path(), old_dir.path());
    INFO(refused.err);
    CHECK(refused.exit_code == 2);
    CHECK_THAT(refused.err, Catch::Contains("--migrate-mount (CACERTS_AGENT_MIGRATE_MOUNT) " + old_dir.path()) &&
                                Catch::Contains("ConfigMap cacerts-agent-migration is missing"));
    CHECK_FALSE(std::filesystem::exists(out.file("ca-cert.pem")));
    CHECK(countRequests(v.server(), "GET", "secret/data/istio/cacerts") == 0);
    // The placeholder the install mounts when no migration runs: nothing to guard.
    TempDir placeholder;
    const auto normal = plain(out.path(), placeholder.path());
    INFO(normal.err);
    CHECK(normal.exit_code == 0);
    CHECK(readFile(out.file("ca-cert.pem")) == v.intermediate().cert.pem());
    // With the settings, the same mount is the migration's old CA.
    TempDir migrating;
    const auto r = v.run(concat(concat(concat({"init", "--dir", migrating.path()}, v.connectArgs()),
                                       {"--auth-method", "token", "--token-file", token, "--min-remaining", "1s",
                                        "--migrate-mount", old_dir.path()}),
                                concat(E2eVault::kvArgs(), migrationArgs(old_dir.path(), now + std::chrono::hours(48),
                                                                         "1h"))));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(readFile(migrating.file("root-cert.pem")) == both);
  }
  for (const ProcessResult& r : v.runs()) CHECK(r.err.find(keyBodyLine(old_inter.key.traditionalPem())) == std::string::npos);
  // The agent only reads the old Secret: rolling back before the switch finds it as it was.
  const auto after = snapshotTree(old_dir.path());
  for (const char* name : {"ca-cert.pem", "cert-chain.pem", "root-cert.pem"}) CHECK(after.at(name) == old_secret.at(name));
  v.scanForSecrets();
}

TEST_CASE("migration with the PKI source: phase 1 reads Vault's roots and signs nothing, phase 2 signs",
          "[migration-e2e]") {
  E2eVault v;
  REQUIRE(v.server().enablePki("", "pki", std::chrono::hours(87600)));
  REQUIRE(v.server().pkiGenerateRoot(
      "", "pki", {{"common_name", "Mesh Root A"}, {"ttl", "87600h"}, {"key_type", "ec"}, {"issuer_name", "root-a"}}));
  REQUIRE(v.server().setPolicy("", "signer", {{"pki/*", {"create", "read", "update", "list"}}}));
  const std::string token = v.tokenFile({"signer"});
  const TestCa old_ca = makeRoot("cluster.local");
  recordPlanted({keyBodyLine(old_ca.key.pkcs8Pem())});
  TempDir old_dir(false);
  writeIstioCaSecret(old_dir, old_ca);
  const auto init = [&](const std::string& dir, SystemTime switch_at) {
    return v.run(concat(concat(concat({"init", "--dir", dir}, v.connectArgs()),
                               {"--auth-method", "token", "--token-file", token, "--min-remaining", "1s", "--source",
                                "pki", "--pki-sign-path", "pki/root/sign-intermediate", "--ttl", "48h"}),
                        migrationArgs(old_dir.path(), switch_at, "1h")));
  };
  const auto now = std::chrono::system_clock::now();

  TempDir phase1;
  v.server().clearRequests();
  const auto r1 = init(phase1.path(), now + std::chrono::hours(48));
  INFO(r1.err);
  REQUIRE(r1.exit_code == 0);
  CHECK(countRequests(v.server(), "POST", "pki/root/sign-intermediate") == 0);
  CHECK(countRequests(v.server(), "GET", "pki/issuers") >= 1);  // LIST, sent as GET ?list=true
  CHECK(readFile(phase1.file("ca-cert.pem")) == old_ca.cert.pem());
  const auto roots1 = parseCertChain(readFile(phase1.file("root-cert.pem")));
  REQUIRE(roots1.size() == 2);
  CHECK(roots1[0].pem() == old_ca.cert.pem());
  CHECK(roots1[1].commonName() == "Mesh Root A");

  TempDir phase2;
  const auto r2 = init(phase2.path(), now - std::chrono::minutes(1));
  INFO(r2.err);
  REQUIRE(r2.exit_code == 0);
  CHECK(countRequests(v.server(), "POST", "pki/root/sign-intermediate") == 1);
  // The same root bytes as phase 1: istiod reloads without ISTIO_MULTIROOT_MESH.
  CHECK(readFile(phase2.file("root-cert.pem")) == readFile(phase1.file("root-cert.pem")));
  CHECK(TestCert::fromPem(readFile(phase2.file("ca-cert.pem"))).commonName() != old_ca.cert.commonName());
  for (const RecordedRequest& r : v.server().requests()) {
    CHECK(r.body.find(keyBodyLine(old_ca.key.pkcs8Pem())) == std::string::npos);
  }
  v.scanForSecrets();
}

}  // namespace cacerts::testing
