// The sidecar's loop with fakes: a FakeClock that advances when slept on, a scripted CA
// source minting real certificates at fake times, and a real AtomicDirWriter on tmpfs.
#include "agent/rotator.h"

#include <catch2/catch.hpp>

#include <openssl/x509v3.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>

#include "agent/agent_metrics.h"
#include "agent/root_plan.h"
#include "tests/fakes.h"
#include "tests/support/fault_matrix.h"
#include "tests/support/process.h"
#include "tests/support/test_pki.h"

namespace cacerts::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const SystemTime kT0 = SystemTime(FakeClock::kDefaultStart);

// A CaSource that signs a fresh intermediate on every load (like PKI), or hands out fixed
// material (like KV). Records when it was asked.
class FakeSource final : public CaSource {
 public:
  FakeSource(Clock& clock, Duration lifetime)
      : clock_(clock),
        lifetime_(lifetime),
        root_a_(makeRoot("Root A", kT0 - hours(24), kT0 + hours(24 * 3650))),
        root_b_(makeRoot("Root B", kT0 - hours(1), kT0 + hours(24 * 3650))) {
    issuer_ = root_a_;
    trusted_ = {root_a_};
  }

  Result<CaMaterial> load() override {
    loads_.push_back(clock_.now());
    if (on_load_) on_load_();
    if (failures_left_ != 0) {
      if (failures_left_ > 0) --failures_left_;
      return Error{ErrorCode::kUnavailable, "vault POST pki/root/sign-intermediate: connection refused"};
    }
    if (fixed_) return *fixed_;
    return issue();
  }
  Result<TrustSet> trustSet() override {
    ++trust_reads_;
    TrustSet out;
    for (const auto& r : trusted_) out.roots.push_back(*parseCertificate(r.cert.pem(), "root"));
    if (plan_propagation_) out.schedule = cacerts::planRoots(out.roots, clock_.now(), *plan_propagation_).schedule;
    return out;
  }
  std::string describe() const override { return "fake"; }
  Result<std::optional<std::string>> changeStamp() override {
    ++stamp_reads_;
    return stamp_;
  }

  // A fresh intermediate from the current issuer (with a plan: the planned root), valid
  // from now for the lifetime.
  CaMaterial issue() {
    std::optional<RootSchedule> schedule;
    if (plan_propagation_) {
      std::vector<Certificate> roots;
      for (const auto& r : trusted_) roots.push_back(*parseCertificate(r.cert.pem(), "root"));
      const RootPlan plan = cacerts::planRoots(roots, clock_.now(), *plan_propagation_);
      issuer_ = trusted_[plan.signing];
      schedule = plan.schedule;
    }
    CertSpec spec;
    spec.path_len = 0;
    spec.not_before = clock_.now();
    spec.not_after = clock_.now() + lifetime_;
    const TestCa inter = makeIntermediate(issuer_, "Intermediate " + std::to_string(++serial_), spec);
    CaMaterial m;
    m.cert_pem = inter.cert.pem();
    m.key_pem = Secret(inter.key.pkcs8Pem());
    m.chain_pem = inter.cert.pem() + issuer_.cert.pem();
    for (const auto& r : trusted_) m.root_pem += r.cert.pem();
    m.schedule = schedule;
    return m;
  }

  const TestCa& rootA() const { return root_a_; }
  const TestCa& rootB() const { return root_b_; }
  void setIssuer(const TestCa& issuer) { issuer_ = issuer; }
  void setTrusted(std::vector<TestCa> roots) { trusted_ = std::move(roots); }
  void failNext(int n) { failures_left_ = n; }  // -1: forever
  void setFixed(std::optional<CaMaterial> m) { fixed_ = std::move(m); }
  void setStamp(std::optional<std::string> s) { stamp_ = std::move(s); }
  // Chooses the signing root by agent/root_plan.h, as the PKI source does.
  void planSigner(Duration propagation) { plan_propagation_ = propagation; }
  int trustReads() const { return trust_reads_; }
  // Runs inside every load(), i.e. while a renewal is in progress.
  void onLoad(std::function<void()> hook) { on_load_ = std::move(hook); }
  const std::vector<SystemTime>& loads() const { return loads_; }
  int stampReads() const { return stamp_reads_; }

 private:
  Clock& clock_;
  Duration lifetime_;
  TestCa root_a_, root_b_, issuer_;
  std::vector<TestCa> trusted_;
  int failures_left_ = 0;
  int serial_ = 0;
  std::optional<CaMaterial> fixed_;
  std::optional<std::string> stamp_;
  std::vector<SystemTime> loads_;
  int stamp_reads_ = 0;
  int trust_reads_ = 0;
  std::optional<Duration> plan_propagation_;
  std::function<void()> on_load_;
};

RotatorSettings baseSettings() {
  RotatorSettings s;
  s.renewal.renew_before = hours(1);
  s.renewal.renew_fraction = 0.5;
  s.renewal.jitter = 0;
  s.retry.initial = seconds(5);
  s.retry.max = minutes(1);
  s.min_remaining = minutes(10);
  s.poll_always = false;
  // PKI-like: trust-set polls stay out of the way unless a test sets a shorter interval.
  s.poll_interval = hours(1000);
  s.startup_timeout = minutes(1);
  return s;
}

// One Rotator on a tmpfs directory, driven by a FakeClock. `until` is checked after every
// sleep; returning true stops the loop.
struct Harness {
  FakeClock clock;
  FakeRandom random;
  TempDir dir;
  AtomicDirWriter writer{dir.path()};
  FakeSource source{clock, hours(10)};
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<ReloadConfirmer> confirmer =
      std::make_unique<ReloadConfirmer>(nullptr, "", clock, ReloadConfirmOptions{});
  RotatorControl control;
  RotatorSettings settings = baseSettings();

  // u = 0.999 makes every backoff delay (almost) its ceiling.
  explicit Harness(std::vector<double> u = {0.999}) : random(std::move(u)) { resetMetrics(); }

  // As a new process would start: no metric values yet.
  void resetMetrics() {
    metrics = std::make_unique<Metrics>();
    registerAgentMetrics(*metrics, "test");
  }

  Status run(std::function<bool()> until) {
    Rotator rotator(source, writer, *confirmer, *metrics, clock, random, settings);
    clock.onSleep([&](Duration) {
      if (until()) control.stop = true;
    });
    Status s = rotator.run(control);
    clock.onSleep(nullptr);
    control.stop = false;
    return s;
  }

  std::string file(const std::string& name) const { return readFile(dir.file(name)); }
  double metric(const std::string& name, const Labels& labels = {}) const {
    return metrics->value(name, labels).value_or(-1);
  }
};

}  // namespace

TEST_CASE("rotator publishes at start and renews at each scheduled time", "[rotator]") {
  Harness h;
  const Status s = h.run([&] { return h.source.loads().size() >= 3; });
  REQUIRE(s);
  // 10h certificates, renew_before 1h, fraction 0.5, no jitter: every 5h.
  REQUIRE(h.source.loads().size() == 3);
  CHECK(h.source.loads()[0] == kT0);
  CHECK(h.source.loads()[1] == kT0 + hours(5));
  CHECK(h.source.loads()[2] == kT0 + hours(10));
  // The loop sleeps straight to each renewal: no polling wake-ups in between.
  CHECK(h.clock.sleeps() == std::vector<Duration>{hours(5), hours(5), hours(5)});
  const TestCert published = TestCert::fromPem(h.file("ca-cert.pem"));
  CHECK(published.notBefore() == kT0 + hours(10));
  CHECK(h.file("root-cert.pem") == h.source.rootA().cert.pem());
  CHECK(h.metric(kMetricRotations, {{"result", "success"}}) == 3);
  CHECK(h.metric(kMetricCaCertExpiry) ==
        static_cast<double>(std::chrono::duration_cast<seconds>((kT0 + hours(20)).time_since_epoch()).count()));
  CHECK(h.metric(kMetricNextRenewal) ==
        static_cast<double>(std::chrono::duration_cast<seconds>((kT0 + hours(15)).time_since_epoch()).count()));
  CHECK(h.metric(kMetricRootRotationPhase) == 0);
}

TEST_CASE("rotator adopts a valid published generation without loading", "[rotator]") {
  Harness h;
  h.clock.interrupt();  // the first sleep returns at once: stop right after publishing
  REQUIRE(h.run([&] { return true; }));
  REQUIRE(h.source.loads().size() == 1);
  const auto before = snapshotTree(h.dir.path());
  h.clock.advance(hours(1));
  REQUIRE(h.run([&] { return true; }));
  CHECK(h.source.loads().size() == 1);
  CHECK(snapshotTree(h.dir.path()) == before);
  // The adopted certificate's renewal time (t0 + 5h) is what the loop slept towards.
  CHECK(h.clock.sleeps().back() == hours(4));
}

TEST_CASE("rotator replaces an expired generation found at start", "[rotator]") {
  Harness h;
  h.clock.interrupt();
  REQUIRE(h.run([&] { return true; }));
  const std::string first = h.file("ca-cert.pem");
  h.clock.set(kT0 + hours(11));  // the sidecar was down past the certificate's notAfter
  h.clock.interrupt();
  REQUIRE(h.run([&] { return true; }));
  CHECK(h.source.loads().size() == 2);
  CHECK(h.file("ca-cert.pem") != first);
  CHECK(TestCert::fromPem(h.file("ca-cert.pem")).notBefore() == kT0 + hours(11));
  CHECK(h.file("root-cert.pem") == h.source.rootA().cert.pem());
}

TEST_CASE("rotator spaces renewals when each new certificate is due at once", "[rotator]") {
  Harness h;
  h.settings.renewal.renew_before = hours(10) - minutes(1);  // about the whole lifetime
  h.settings.renewal.jitter = 0.5;
  REQUIRE(h.run([&] { return h.source.loads().size() >= 4; }));
  const auto& loads = h.source.loads();
  CHECK(loads[1] == kT0);
  CHECK(loads[2] - loads[1] == seconds(5));  // --retry-initial, not a tight loop
  CHECK(loads[3] - loads[2] == seconds(5));
}

TEST_CASE("rotator jitter moves the renewal earlier by up to the jitter share of the lifetime", "[rotator]") {
  Harness h({0.5});
  h.settings.renewal.jitter = 0.1;
  REQUIRE(h.run([&] { return h.source.loads().size() >= 2; }));
  // fraction rule at 5h, minus 0.5 * 0.1 * 10h = 30 min.
  CHECK(h.source.loads()[1] == kT0 + hours(5) - minutes(30));
}

TEST_CASE("rotator keeps the current generation on failure and backs off up to the cap", "[rotator]") {
  Harness h;
  std::map<std::string, std::string> published;
  const Status s = h.run([&] {
    if (h.source.loads().size() == 1 && published.empty()) {
      published = snapshotTree(h.dir.path());
      h.source.failNext(6);
    }
    if (h.source.loads().size() > 1 && h.source.loads().size() <= 7) {
      // Every failure leaves the directory byte-identical and the sidecar ready.
      CHECK(snapshotTree(h.dir.path()) == published);
    }
    return h.source.loads().size() >= 8;
  });
  REQUIRE(s);
  const auto& loads = h.source.loads();
  REQUIRE(loads.size() == 8);
  std::vector<Duration> gaps;
  for (std::size_t i = 2; i < loads.size(); ++i) gaps.push_back(std::chrono::duration_cast<Duration>(loads[i] - loads[i - 1]));
  // u = 0.999 of min(1 min, 5 s * 2^n): grows, then stays at the cap.
  CHECK(gaps[0] == Duration(4995));
  CHECK(gaps[1] == Duration(9990));
  CHECK(gaps[2] == Duration(19980));
  CHECK(gaps[3] == Duration(39960));
  CHECK(gaps[4] == Duration(59940));
  CHECK(gaps[5] == Duration(59940));
  CHECK(h.metric(kMetricRotations, {{"result", "failure"}}) == 6);
  CHECK(h.metric(kMetricRotations, {{"result", "success"}}) == 2);
  CHECK(snapshotTree(h.dir.path()) != published);
}

TEST_CASE("rotator exits with the last error when the material expires with no replacement", "[rotator]") {
  Harness h;
  const Status s = h.run([&] {
    if (h.source.loads().size() == 1) h.source.failNext(-1);
    return false;
  });
  REQUIRE_FALSE(s);
  CHECK(s.error().code == ErrorCode::kUnavailable);
  CHECK_THAT(s.error().message, Catch::Contains("expired"));
  // Retries never sleep past the expiry: the last attempt is exactly at notAfter.
  CHECK(h.source.loads().back() == kT0 + hours(10));
  CHECK(h.clock.now() == kT0 + hours(10));
  // The expired generation is still on disk, untouched.
  CHECK(TestCert::fromPem(h.file("ca-cert.pem")).notAfter() == kT0 + hours(10));
}

TEST_CASE("rotator readiness follows the published generation, not Vault", "[rotator]") {
  Harness h;
  Rotator rotator(h.source, h.writer, *h.confirmer, *h.metrics, h.clock, h.random, h.settings);
  CHECK_FALSE(rotator.readiness().ready);
  CHECK_THAT(rotator.readiness().reason, Catch::Contains("no valid generation"));
  h.clock.onSleep([&](Duration) {
    if (h.source.loads().size() == 1) h.source.failNext(-1);
    // Vault fails from now on; readiness holds until the certificate itself expires.
    if (h.clock.now() < kT0 + hours(10)) CHECK(rotator.readiness().ready);
  });
  REQUIRE_FALSE(rotator.run(h.control));
  CHECK_FALSE(rotator.readiness().ready);
  CHECK_THAT(rotator.readiness().reason, Catch::Contains("expired"));
}

TEST_CASE("rotator gives up at start on a non-transient error, and retries a transient one until the timeout",
          "[rotator]") {
  Harness h;
  SECTION("transient") {
    h.source.failNext(-1);
    const Status s = h.run([] { return false; });
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::kDeadlineExceeded);
    CHECK(h.source.loads().size() > 2);
    CHECK(h.clock.now() - kT0 <= minutes(1));
  }
  SECTION("validation") {
    CaMaterial m = h.source.issue();
    m.key_pem = Secret(makeKey().pkcs8Pem());  // does not match the certificate
    h.source.setFixed(m);
    const Status s = h.run([] { return false; });
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::kValidation);
    CHECK(h.source.loads().size() == 1);
    CHECK_FALSE(std::filesystem::exists(h.dir.file("ca-cert.pem")));
  }
}

TEST_CASE("rotator renews at once on a rotate request", "[rotator]") {
  Harness h;
  h.settings.rotate_min_interval = Duration::zero();  // the rate limit has its own tests
  // The request arrives during the first sleep: its interrupt ends the sleep at once.
  h.clock.interrupt();
  REQUIRE(h.run([&] {
    if (h.source.loads().size() == 1) h.control.rotate = true;
    return h.source.loads().size() >= 2;
  }));
  CHECK(h.source.loads()[1] == kT0);
  CHECK(h.metric(kMetricRotations, {{"result", "success"}}) == 2);
}

TEST_CASE("rotator polls a KV-like source and republishes only when its version changes", "[rotator]") {
  Harness h;
  h.settings.poll_always = true;
  h.settings.poll_interval = minutes(5);
  CaMaterial first = h.source.issue();
  h.source.setFixed(first);
  h.source.setStamp("v1");
  CaMaterial second;
  REQUIRE(h.run([&] {
    if (h.clock.now() == kT0 + minutes(20)) {
      second = h.source.issue();
      h.source.setFixed(second);
      h.source.setStamp("v2");
    }
    return h.clock.now() >= kT0 + hours(1);
  }));
  // Loads: the first publish, the first poll (no baseline yet), the poll after the change.
  CHECK(h.source.loads().size() == 3);
  CHECK(h.source.stampReads() == 11);  // every 5 min from 0:05 to 0:55
  CHECK(h.file("ca-cert.pem") == second.cert_pem);
  CHECK(h.metric(kMetricRotations, {{"result", "success"}}) == 2);
}

TEST_CASE("rotator polls a KV v1-like source by loading and comparing", "[rotator]") {
  Harness h;
  h.settings.poll_always = true;
  h.settings.poll_interval = minutes(5);
  h.source.setFixed(h.source.issue());
  std::map<std::string, std::string> published;
  REQUIRE(h.run([&] {
    if (published.empty()) published = snapshotTree(h.dir.path());
    return h.clock.now() >= kT0 + minutes(30);
  }));
  CHECK(h.source.loads().size() == 6);  // start + one per poll from 0:05 to 0:25
  CHECK(snapshotTree(h.dir.path()) == published);  // identical material: no new generation
}

TEST_CASE("rotator fails a due renewal when the source still holds the published certificate", "[rotator]") {
  Harness h;
  h.source.setFixed(h.source.issue());
  REQUIRE(h.run([&] { return h.source.loads().size() >= 3; }));
  CHECK(h.source.loads()[1] == kT0 + hours(5));
  CHECK(h.source.loads()[2] == kT0 + hours(5) + Duration(4995));
  CHECK(h.metric(kMetricRotations, {{"result", "failure"}}) == 2);
}

TEST_CASE("rotator confirms each publish against istiod's metric", "[rotator]") {
  Harness h;
  std::string reported = "0";
  auto transport = std::make_unique<FakeHttpTransport>([&](const HttpRequest&) -> Result<HttpResponse> {
    return HttpResponse{200, {}, "citadel_server_cert_chain_expiry_timestamp " + reported + "\n"};
  });
  ReloadConfirmOptions options;
  options.timeout = seconds(2);
  h.confirmer = std::make_unique<ReloadConfirmer>(std::move(transport), "/metrics", h.clock, options);
  SECTION("confirmed") {
    const auto na = std::chrono::duration_cast<seconds>((kT0 + hours(10)).time_since_epoch()).count();
    reported = std::to_string(na);
    REQUIRE(h.run([] { return true; }));
    CHECK(h.metric(kMetricReloadConfirmed) == 1);
  }
  SECTION("not confirmed: the generation stays published, the metric says so") {
    REQUIRE(h.run([&] { return h.clock.now() > kT0 + seconds(10); }));
    CHECK(h.metric(kMetricReloadConfirmed) == 0);
    CHECK(std::filesystem::exists(h.dir.file("ca-cert.pem")));
  }
}

TEST_CASE("rotator walks an operator-driven root rotation: append, switch after propagation, retire",
          "[rotator]") {
  Harness h;
  h.settings.rotate_min_interval = Duration::zero();  // the operator's request acts at once
  h.settings.roots.multiroot = true;
  h.settings.roots.propagation = hours(2);  // root B (notBefore kT0 - 1 h) may sign from kT0 + 1 h
  h.settings.roots.retire = hours(1);
  h.settings.renewal.renew_fraction = 0.9;  // no scheduled renewal gets in the way
  h.settings.renewal.renew_before = Duration(0);
  h.settings.poll_interval = minutes(5);
  const std::string a = h.source.rootA().cert.pem(), b = h.source.rootB().cert.pem();
  std::vector<std::string> root_files;
  std::vector<SystemTime> changed_at;
  std::string first_ca;
  h.clock.interrupt();  // the operator acts right after the first publish
  const auto record = [&] {
    const std::string now = h.file("root-cert.pem");
    if (root_files.empty() || root_files.back() != now) {
      root_files.push_back(now);
      changed_at.push_back(h.clock.lastSleepStart());
    }
  };
  REQUIRE(h.run([&] {
    record();
    if (first_ca.empty()) {
      first_ca = h.file("ca-cert.pem");
      // The operator adds root B and makes it the issuer; a rotate request follows.
      h.source.setTrusted({h.source.rootA(), h.source.rootB()});
      h.source.setIssuer(h.source.rootB());
      h.control.rotate = true;
    }
    if (h.source.loads().size() == 3) h.source.setTrusted({h.source.rootB()});  // then deletes root A
    return h.file("root-cert.pem") == b;
  }));
  record();
  REQUIRE(root_files.size() == 3);
  CHECK(root_files[0] == a);
  CHECK(root_files[1] == a + b);
  CHECK(root_files[2] == b);
  const auto since_t0 = [](SystemTime t) { return std::chrono::duration_cast<seconds>(t - kT0).count(); };
  CHECK(since_t0(changed_at[1]) == 0);
  // Retired the retire time after B took over (B's notBefore + propagation), not earlier.
  CHECK(since_t0(changed_at[2]) == 2 * 3600);
  const TestCert ca = TestCert::fromPem(h.file("ca-cert.pem"));
  CHECK(ca.pem() != first_ca);
  CHECK(X509_check_issued(h.source.rootB().cert.x509.get(), ca.x509.get()) == X509_V_OK);
  // Loads: start, the forced one (deferred), the switch once B is old enough. The deletion
  // was seen by a trust-set read, which issues nothing.
  const auto& loads = h.source.loads();
  REQUIRE(loads.size() == 3);
  CHECK(loads[1] == kT0);
  CHECK(loads[2] == kT0 + hours(1));
  CHECK(h.source.trustReads() > 0);
  CHECK(h.metric(kMetricRotations, {{"result", "deferred"}}) == 1);
  CHECK(h.metric(kMetricRootRotationPhase) == 0);
}

TEST_CASE("rotator follows the source's plan: a new root is appended at the next poll and signs at the planned "
          "instant plus a random delay, also after a restart",
          "[rotator]") {
  Harness h({0.5});  // every random draw: the middle of its range
  h.settings.roots.multiroot = true;
  h.settings.roots.propagation = hours(2);
  h.settings.roots.retire = hours(1);  // switch delay: at most min(1 h / 4, 1 min); 30 s here
  h.settings.renewal.renew_fraction = 0.9;
  h.settings.renewal.renew_before = Duration(0);
  h.settings.poll_interval = minutes(5);
  h.source.planSigner(hours(2));
  const std::string a = h.source.rootA().cert.pem(), b = h.source.rootB().cert.pem();
  h.clock.interrupt();
  std::optional<SystemTime> appended_at;
  REQUIRE(h.run([&] {
    if (h.source.loads().size() == 1 && h.source.trustReads() == 1) h.source.setTrusted({h.source.rootA(), h.source.rootB()});
    if (!appended_at && h.file("root-cert.pem") == a + b) appended_at = h.clock.lastSleepStart();
    return h.metric(kMetricRootRotationPhase) == 1;  // stop while B propagates
  }));
  REQUIRE(appended_at);
  CHECK(std::chrono::duration_cast<seconds>(*appended_at - kT0).count() == 5 * 60);   // the next trust-set poll, with the current intermediate
  CHECK(h.source.loads().size() == 1);       // nothing was issued for it
  h.clock.advance(minutes(20));
  h.resetMetrics();  // a new process, same directory: nothing but Vault and the clock to go on
  REQUIRE(h.run([&] { return h.metric(kMetricRootRotationPhase) == 2; }));
  REQUIRE(h.source.loads().size() == 2);
  CHECK(std::chrono::duration_cast<seconds>(h.source.loads().back() - kT0).count() == 3600 + 30);  // B's notBefore + 2 h, + 30 s
  CHECK(h.file("root-cert.pem") == a + b);
  const TestCert ca = TestCert::fromPem(h.file("ca-cert.pem"));
  CHECK(X509_check_issued(h.source.rootB().cert.x509.get(), ca.x509.get()) == X509_V_OK);
}

TEST_CASE("rotator without multiroot refuses a root change and keeps the current intermediate", "[rotator]") {
  Harness h;
  std::map<std::string, std::string> published;
  h.clock.interrupt();
  REQUIRE(h.run([&] {
    if (published.empty()) {
      published = snapshotTree(h.dir.path());
      h.source.setTrusted({h.source.rootA(), h.source.rootB()});
      h.source.setIssuer(h.source.rootB());
      h.control.rotate = true;
    }
    return h.source.loads().size() >= 3;
  }));
  CHECK(snapshotTree(h.dir.path()) == published);
  CHECK(h.metric(kMetricRootChangeBlocked) == 1);
  CHECK(h.metric(kMetricRotations, {{"result", "blocked"}}) == 2);
  // Refusals back off like failures.
  CHECK(h.source.loads()[2] - h.source.loads()[1] == Duration(4995));

  SECTION("a candidate from the published root is still renewed, with the old root bytes") {
    const std::string before = h.file("ca-cert.pem");
    h.source.setIssuer(h.source.rootA());
    REQUIRE(h.run([&] { return h.source.loads().size() >= 4; }));
    CHECK(h.file("root-cert.pem") == h.source.rootA().cert.pem());
    CHECK(h.file("ca-cert.pem") != before);
    CHECK(h.metric(kMetricRootChangeBlocked) == 1);  // Vault still trusts B, unpublished
  }
}

}  // namespace cacerts::testing

namespace cacerts::testing {
namespace {

// A fault-matrix row for a clock jump, measured in fake time: the step wakes the fake
// clock's sleep at once, as the kernel's CLOCK_REALTIME timer does at a real step. The real
// binary's rows come from tests/hostile_e2e_test.cc ("[clock-jump]"), under libfaketime:
// there the kernel never sees the step (the process's clock reads are shifted, the timer is
// not), and SystemClock's once-a-minute recheck is what acts on it.
FaultRow clockJumpRow(const std::string& fault, const std::string& outcome, SystemTime::duration after_step) {
  return FaultRow{fault, "fake clock", outcome, std::chrono::duration_cast<std::chrono::milliseconds>(after_step).count(),
                  true, "none"};
}

std::int64_t epochSecondsOf(SystemTime t) {
  return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

// A confirmer whose istiod never reports the new certificate.
std::unique_ptr<ReloadConfirmer> neverConfirming(Clock& clock, Duration timeout) {
  auto transport = std::make_unique<FakeHttpTransport>([](const HttpRequest&) -> Result<HttpResponse> {
    return HttpResponse{200, {}, "citadel_server_cert_chain_expiry_timestamp 1\n"};
  });
  ReloadConfirmOptions options;
  options.timeout = timeout;
  return std::make_unique<ReloadConfirmer>(std::move(transport), "/metrics", clock, options);
}

// A confirmer whose istiod never reports the new certificate, recording when it is polled.
std::unique_ptr<ReloadConfirmer> recordingConfirmer(Clock& clock, ReloadConfirmOptions options,
                                                    std::vector<SystemTime>& polled_at) {
  auto transport = std::make_unique<FakeHttpTransport>([&clock, &polled_at](const HttpRequest&) -> Result<HttpResponse> {
    polled_at.push_back(clock.now());
    return HttpResponse{200, {}, "citadel_server_cert_chain_expiry_timestamp 1\n"};
  });
  return std::make_unique<ReloadConfirmer>(std::move(transport), "/metrics", clock, options);
}

}  // namespace

TEST_CASE("rotator polls istiod every interval after a publish, the last time exactly at the timeout",
          "[rotator][confirm]") {
  Harness h;
  std::vector<SystemTime> polled_at;
  ReloadConfirmOptions options;
  SECTION("10 s timeout, 500 ms interval: 0 s, 0.5 s, ..., 10 s") {
    options.timeout = seconds(10);
    options.poll_interval = milliseconds(500);
    h.confirmer = recordingConfirmer(h.clock, options, polled_at);
    REQUIRE(h.run([&] { return h.clock.now() >= kT0 + minutes(1); }));
    REQUIRE(polled_at.size() == 21);
    for (std::size_t i = 0; i < polled_at.size(); ++i) CHECK(polled_at[i] == kT0 + milliseconds(500) * static_cast<long>(i));
  }
  SECTION("1 s timeout, 300 ms interval: the last wait is shortened to the deadline") {
    options.timeout = seconds(1);
    options.poll_interval = milliseconds(300);
    h.confirmer = recordingConfirmer(h.clock, options, polled_at);
    REQUIRE(h.run([&] { return h.clock.now() >= kT0 + minutes(1); }));
    CHECK(polled_at == std::vector<SystemTime>{kT0, kT0 + milliseconds(300), kT0 + milliseconds(600),
                                               kT0 + milliseconds(900), kT0 + seconds(1)});
  }
  // Given up on: the gauge says so.
  CHECK(h.metric(kMetricReloadConfirmed) == 0);
}

TEST_CASE("rotator polls KV while a reload confirmation is pending, and publishes a change at once",
          "[rotator][confirm]") {
  Harness h;
  h.settings.poll_always = true;
  h.settings.poll_interval = seconds(1);
  h.confirmer = neverConfirming(h.clock, seconds(10));
  CaMaterial first = h.source.issue();
  h.source.setFixed(first);
  h.source.setStamp("v1");
  // The secret changes right after the first publish, while its confirmation waits.
  const CaMaterial second = h.source.issue();
  bool changed = false;
  std::optional<SystemTime> published_at;
  REQUIRE(h.run([&] {
    if (!changed) {
      h.source.setFixed(second);
      h.source.setStamp("v2");
      changed = true;
    }
    if (!published_at && h.file("ca-cert.pem") == second.cert_pem) published_at = h.clock.now();
    return h.clock.now() >= kT0 + seconds(30);
  }));
  REQUIRE(published_at);
  // Within a couple of poll intervals, not after the 10 s confirm timeout.
  CHECK(*published_at <= kT0 + seconds(2));
  // Both publishes were still given up on after their own timeout.
  CHECK(h.metric(kMetricReloadConfirmed) == 0);
}

TEST_CASE("rotator confirmation polls run on their own deadline and a newer publish supersedes them",
          "[rotator][confirm]") {
  Harness h;
  h.settings.rotate_min_interval = Duration::zero();
  std::atomic<int> scrapes{0};
  std::string reported = "1";
  auto transport = std::make_unique<FakeHttpTransport>([&](const HttpRequest&) -> Result<HttpResponse> {
    ++scrapes;
    return HttpResponse{200, {}, "citadel_server_cert_chain_expiry_timestamp " + reported + "\n"};
  });
  ReloadConfirmOptions options;
  options.timeout = seconds(10);
  options.poll_interval = seconds(1);
  h.confirmer = std::make_unique<ReloadConfirmer>(std::move(transport), "/metrics", h.clock, options);
  // A forced renewal 3 s in: the first confirmation is superseded, the second confirmed.
  // istiod reloads the second certificate (10 h from its signing) at once.
  h.source.onLoad([&] {
    if (h.source.loads().size() == 2) reported = std::to_string(epochSecondsOf(h.clock.now() + hours(10)));
  });
  REQUIRE(h.run([&] {
    if (h.clock.now() == kT0 + seconds(3) && h.source.loads().size() == 1) h.control.rotate = true;
    return h.clock.now() >= kT0 + minutes(1);
  }));
  REQUIRE(h.source.loads().size() == 2);
  CHECK(h.source.loads()[1] == kT0 + seconds(3));
  CHECK(h.metric(kMetricReloadConfirmed) == 1);
  // Polls at 0, 1, 2 s for the first publish, then at 3 s (confirmed) for the second:
  // none after, so the loop does not keep waking for a finished confirmation.
  CHECK(scrapes == 4);
}

TEST_CASE("rotator coalesces a storm of forced renewals to one per --rotate-min-interval", "[rotator][rotate]") {
  Harness h;
  h.settings.rotate_min_interval = seconds(10);
  // Confirmation polls wake the loop every 0.5 s; a trigger arrives at each wake-up and
  // during every renewal.
  h.confirmer = neverConfirming(h.clock, hours(1));
  h.source.onLoad([&] { h.control.rotate = true; });
  REQUIRE(h.run([&] {
    h.control.rotate = true;
    return h.clock.now() > kT0 + seconds(60);
  }));
  // The first publish, then one forced renewal every 10 s: ceil(60 / 10) + 1.
  const auto& loads = h.source.loads();
  CHECK(loads.size() == 7);
  for (std::size_t i = 1; i < loads.size(); ++i) CHECK(loads[i] - loads[i - 1] == seconds(10));
}

TEST_CASE("rotator folds a trigger during a renewal into it and defers one inside the interval",
          "[rotator][rotate]") {
  Harness h;
  h.settings.rotate_min_interval = seconds(10);
  SECTION("a trigger while the renewal runs is served by it") {
    h.source.onLoad([&] { h.control.rotate = true; });
    REQUIRE(h.run([&] { return h.clock.now() >= kT0 + hours(1); }));
    // Only the first publish: the trigger during it asked for nothing more.
    CHECK(h.source.loads().size() == 1);
  }
  SECTION("a trigger 3 s after a renewal runs at the end of the interval, not never") {
    h.confirmer = neverConfirming(h.clock, seconds(10));  // its polls wake the loop at 3 s
    REQUIRE(h.run([&] {
      if (h.clock.now() == kT0 + seconds(3)) h.control.rotate = true;
      return h.clock.now() >= kT0 + hours(1);
    }));
    REQUIRE(h.source.loads().size() == 2);
    CHECK(h.source.loads()[1] == kT0 + seconds(10));
  }
  SECTION("a scheduled renewal serves a deferred trigger") {
    h.settings.rotate_min_interval = hours(6);  // longer than the 5 h to the scheduled renewal
    h.confirmer = neverConfirming(h.clock, seconds(10));
    REQUIRE(h.run([&] {
      if (h.clock.now() == kT0 + seconds(3)) h.control.rotate = true;
      return h.clock.now() >= kT0 + hours(9);
    }));
    REQUIRE(h.source.loads().size() == 2);
    CHECK(h.source.loads()[1] == kT0 + hours(5));
  }
}

TEST_CASE("rotator renews within a minute after the wall clock jumps past the renewal time", "[rotator][clock]") {
  Harness h;
  // The renewal is due 5 h after the first publish; one hour into the sleep the wall clock
  // jumps 6 h forward (a VM resumed, an NTP step): it is now 7 h.
  h.clock.stepDuringSleep(hours(1), hours(6));
  REQUIRE(h.run([&] { return h.source.loads().size() >= 2; }));
  REQUIRE(h.source.loads().size() == 2);
  CHECK(h.source.loads()[1] >= kT0 + hours(7));
  CHECK(h.source.loads()[1] <= kT0 + hours(7) + minutes(1));

  // The real binary's row: see clockJumpRow.
  FaultMatrix matrix{"sidecar hostile conditions: wall-clock jump (fake clock)"};
  matrix.add(clockJumpRow("+6 h step 1 h into a 5 h sleep (past the renewal time)",
                          "renewed " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                          h.source.loads()[1] - (kT0 + hours(7)))
                                                          .count()) +
                              " ms after the step",
                          h.source.loads()[1] - (kT0 + hours(7))));
  CHECK(matrix.publish("hostile-clock-jump-renewal"));
}

TEST_CASE("rotator acts at once after the wall clock jumps past notAfter", "[rotator][clock]") {
  Harness h;
  // 10 h certificates: a 20 h jump one hour into the sleep lands 11 h past notAfter.
  h.clock.stepDuringSleep(hours(1), hours(20));
  SECTION("a source that issues renews at once") {
    REQUIRE(h.run([&] { return h.source.loads().size() >= 2; }));
    CHECK(h.source.loads()[1] == kT0 + hours(21));
    CHECK(TestCert::fromPem(h.file("ca-cert.pem")).notBefore() == kT0 + hours(21));
    FaultMatrix matrix{"sidecar hostile conditions: wall-clock jump past notAfter (fake clock)"};
    matrix.add(clockJumpRow("+20 h step 1 h into a 5 h sleep (11 h past notAfter), issuing source",
                            "renewed at the step", h.source.loads()[1] - (kT0 + hours(21))));
    CHECK(matrix.publish("hostile-clock-jump-expiry"));
  }
  SECTION("a source that still holds the expired certificate exits with its error at once") {
    h.source.setFixed(h.source.issue());
    const Status s = h.run([] { return false; });
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::kValidation);
    CHECK_THAT(s.error().message, Catch::Contains("expired"));
    CHECK(h.clock.now() <= kT0 + hours(21) + minutes(1));
  }
}

}  // namespace cacerts::testing
