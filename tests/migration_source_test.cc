// MigrationSource (agent/migration_source.h): the phase function, reading the old CA in both
// Secret layouts with its refusals, and what each phase asks of the inner source.
#include "agent/migration_source.h"

#include <catch2/catch.hpp>

#include "tests/fakes.h"
#include "tests/support/e2e.h"
#include "tests/support/process.h"
#include "tests/support/test_pki.h"

namespace cacerts {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using testing::TestCa;
using testing::TempDir;
using testing::writeFile;
using testing::writeIstioCaSecret;

ValidationOptions optionsAt(SystemTime now) {
  ValidationOptions o;
  o.now = now;
  return o;
}

Certificate certOf(const testing::TestCert& c) { return parseCertificate(c.pem(), "test").value(); }

// The Vault side: a root with an intermediate under it. Counts what the decorator asks of it.
class InnerSource final : public CaSource {
 public:
  InnerSource() : root_(testing::makeRoot("Vault Root")), inter_(testing::makeIntermediate(root_, "Vault Inter")) {}
  Result<CaMaterial> load() override {
    ++loads;
    CaMaterial m;
    m.cert_pem = inter_.cert.pem();
    m.key_pem = Secret(inter_.key.pkcs8Pem());
    m.chain_pem = inter_.cert.pem() + root_.cert.pem();
    m.root_pem = root_.cert.pem();
    return m;
  }
  Result<TrustSet> trustSet() override {
    ++trust_reads;
    TrustSet t;
    t.roots = {certOf(root_.cert)};
    return t;
  }
  Result<std::optional<std::string>> changeStamp() override { return stamp; }
  std::string describe() const override { return "kv fake"; }

  const TestCa& root() const { return root_; }
  int loads = 0, trust_reads = 0;
  std::optional<std::string> stamp = std::string("v1");

 private:
  TestCa root_, inter_;
};

}  // namespace

TEST_CASE("migrationPhase: trust both before the switch, Vault signs until retire, then forget", "[migration]") {
  const SystemTime at = SystemTime(seconds(1'800'000'000));
  const Duration retire = hours(24);
  CHECK(migrationPhase(at - seconds(1), at, retire) == MigrationPhase::kTrustBoth);
  CHECK(migrationPhase(at, at, retire) == MigrationPhase::kVaultSigns);
  CHECK(migrationPhase(at + retire - seconds(1), at, retire) == MigrationPhase::kVaultSigns);
  CHECK(migrationPhase(at + retire, at, retire) == MigrationPhase::kForgetOld);
  CHECK(toString(MigrationPhase::kVaultSigns) == "vault_signs");
}

TEST_CASE("switchTooSoon warns only for a switch less than --root-propagation ahead", "[migration]") {
  const SystemTime now = SystemTime(seconds(1'800'000'000));
  const Duration day = hours(24);  // the default
  CHECK(switchTooSoon(now, now + hours(1), day));
  CHECK(switchTooSoon(now, now + hours(23), day));
  CHECK_FALSE(switchTooSoon(now, now + hours(24), day));
  CHECK_FALSE(switchTooSoon(now, now + hours(48), day));
  CHECK_FALSE(switchTooSoon(now, now - hours(1), day));  // already switched: nothing to warn about
  // A longer workload certificate lifetime needs a longer --root-propagation, and the warning follows it.
  CHECK(switchTooSoon(now, now + hours(48), hours(72)));
  CHECK_FALSE(switchTooSoon(now, now + hours(72), hours(72)));
}

TEST_CASE("readOldCa reads istio-ca-secret: the CA is its own root and its whole chain", "[migration]") {
  const SystemTime now = std::chrono::system_clock::now();
  const TestCa ca = testing::makeRoot("cluster.local");
  TempDir dir;
  writeIstioCaSecret(dir, ca);
  Result<OldCa> old = readOldCa(dir.path(), optionsAt(now));
  INFO((old ? std::string() : old.error().message));
  REQUIRE(old);
  CHECK(old->layout == OldCaLayout::kIstioCaSecret);
  REQUIRE(old->roots.size() == 1);
  CHECK(old->roots[0].pem() == ca.cert.pem());
  CHECK(old->material.cert_pem == ca.cert.pem());
  CHECK(old->material.chain_pem == ca.cert.pem());
  CHECK(old->material.root_pem == ca.cert.pem());
  CHECK(old->material.key_pem.view() == ca.key.pkcs8Pem());
}

TEST_CASE("readOldCa reads the cacerts layout with an intermediate and its root", "[migration]") {
  const SystemTime now = std::chrono::system_clock::now();
  const TestCa root = testing::makeRoot("Old Root");
  const TestCa inter = testing::makeIntermediate(root, "Old Inter");
  TempDir dir;
  writeFile(dir.file("ca-cert.pem"), inter.cert.pem());
  writeFile(dir.file("ca-key.pem"), inter.key.traditionalPem(), 0600);
  writeFile(dir.file("cert-chain.pem"), inter.cert.pem() + root.cert.pem());
  writeFile(dir.file("root-cert.pem"), root.cert.pem());
  Result<OldCa> old = readOldCa(dir.path(), optionsAt(now));
  INFO((old ? std::string() : old.error().message));
  REQUIRE(old);
  CHECK(old->layout == OldCaLayout::kCacerts);
  CHECK(old->material.cert_pem == inter.cert.pem());
  CHECK(old->material.chain_pem == inter.cert.pem() + root.cert.pem());
  CHECK(old->material.root_pem == root.cert.pem());
  // The key exactly as given (PKCS#1/SEC1 stays so: istiod reads it today).
  CHECK(old->material.key_pem.view() == inter.key.traditionalPem());
}

TEST_CASE("readOldCa refuses a missing key, a missing dir, a mismatched key and expired material", "[migration]") {
  const SystemTime now = std::chrono::system_clock::now();
  const TestCa ca = testing::makeRoot("cluster.local");
  TempDir dir;
  writeIstioCaSecret(dir, ca);

  SECTION("key missing or empty: a configuration error (exit 2) naming the flag") {
    writeFile(dir.file("ca-key.pem"), "\n", 0600);
    Result<OldCa> old = readOldCa(dir.path(), optionsAt(now));
    REQUIRE_FALSE(old);
    CHECK(old.error().code == ErrorCode::kInvalidArgument);
    CHECK(exitCodeFor(old.error().code) == 2);
    CHECK_THAT(old.error().message, Catch::Contains("--migrate-from") && Catch::Contains("ca-key.pem"));
  }
  SECTION("not a directory") {
    Result<OldCa> old = readOldCa(dir.file("nothing-here"), optionsAt(now));
    REQUIRE_FALSE(old);
    CHECK(old.error().code == ErrorCode::kInvalidArgument);
  }
  SECTION("key of another CA: validation (exit 5), the key never quoted") {
    const TestCa other = testing::makeRoot("other");
    writeFile(dir.file("ca-key.pem"), other.key.pkcs8Pem(), 0600);
    Result<OldCa> old = readOldCa(dir.path(), optionsAt(now));
    REQUIRE_FALSE(old);
    CHECK(exitCodeFor(old.error().code) == 5);
    CHECK_THAT(old.error().message, Catch::Contains("key_matches_cert") && Catch::Contains("istio-ca-secret"));
    CHECK_THAT(old.error().message, !Catch::Contains("PRIVATE KEY"));
    CHECK_THAT(old.error().message, !Catch::Contains(testing::keyBodyLine(other.key.pkcs8Pem())));
  }
  SECTION("expired old CA: validation") {
    Result<OldCa> old = readOldCa(dir.path(), optionsAt(now + hours(24 * 400)));
    REQUIRE_FALSE(old);
    CHECK(old.error().code == ErrorCode::kValidation);
  }
  SECTION("a cacerts layout whose chain does not reach its root") {
    const TestCa stranger = testing::makeRoot("Stranger Root");
    writeFile(dir.file("root-cert.pem"), stranger.cert.pem());
    Result<OldCa> old = readOldCa(dir.path(), optionsAt(now));
    REQUIRE_FALSE(old);
    CHECK(old.error().code == ErrorCode::kValidation);
    CHECK_THAT(old.error().message, Catch::Contains("cacerts layout"));
  }
}

TEST_CASE("MigrationSource: old material with both roots, then Vault with both, then Vault alone", "[migration]") {
  const SystemTime start = std::chrono::system_clock::now();
  testing::FakeClock clock(start);
  const TestCa old_ca = testing::makeRoot("cluster.local");
  TempDir dir;
  writeIstioCaSecret(dir, old_ca);
  Result<OldCa> old = readOldCa(dir.path(), optionsAt(start));
  REQUIRE(old);
  auto owned = std::make_unique<InnerSource>();
  InnerSource& inner = *owned;
  const SystemTime switch_at = start + hours(2);
  const Duration retire = hours(3);
  MigrationSource source(std::move(owned), std::move(*old), switch_at, retire, clock);
  const std::string both = old_ca.cert.pem() + inner.root().cert.pem();
  CHECK(source.describe() == "migration from " + dir.path() + " then kv fake");

  // Phase 1: nothing is loaded from the inner source, only its trust set is read.
  Result<CaMaterial> m1 = source.load();
  REQUIRE(m1);
  CHECK(inner.loads == 0);
  CHECK(inner.trust_reads == 1);
  CHECK(m1->cert_pem == old_ca.cert.pem());
  CHECK(m1->key_pem.view() == old_ca.key.pkcs8Pem());
  CHECK(m1->root_pem == both);
  REQUIRE(m1->schedule);
  CHECK(m1->schedule->signing_since == SystemTime::min());
  CHECK(m1->schedule->next_switch == switch_at);
  // What the validator publishes: the old CA signs, both roots trusted.
  Result<ValidatedBundle> v1 = assembleAndValidate(*m1, optionsAt(start));
  INFO((v1 ? std::string() : v1.error().message));
  REQUIRE(v1);
  CHECK(v1->rootPem() == both);
  Result<TrustSet> t1 = source.trustSet();
  REQUIRE(t1);
  CHECK(toPem(t1->roots) == both);
  CHECK(inner.loads == 0);
  const auto stamp1 = source.changeStamp();

  // Phase 2: Vault's material, the same root bytes.
  clock.set(switch_at);
  Result<CaMaterial> m2 = source.load();
  REQUIRE(m2);
  CHECK(inner.loads == 1);
  CHECK(m2->cert_pem != old_ca.cert.pem());
  CHECK(m2->root_pem == both);
  REQUIRE(m2->schedule);
  CHECK(m2->schedule->signing_since == switch_at);
  REQUIRE(assembleAndValidate(*m2, optionsAt(switch_at)));
  const auto stamp2 = source.changeStamp();
  REQUIRE(stamp1);
  REQUIRE(stamp2);
  CHECK(*stamp1 != *stamp2);  // a phase change is a change to poll for

  // Phase 3: the inner source as is.
  clock.set(switch_at + retire);
  Result<CaMaterial> m3 = source.load();
  REQUIRE(m3);
  CHECK(m3->root_pem == inner.root().cert.pem());
  Result<TrustSet> t3 = source.trustSet();
  REQUIRE(t3);
  CHECK(toPem(t3->roots) == inner.root().cert.pem());
  const auto stamp3 = source.changeStamp();
  REQUIRE(stamp3);
  CHECK(*stamp3 != *stamp2);

  // An inner source without a cheap check stays without one: callers load and compare.
  inner.stamp.reset();
  const auto none = source.changeStamp();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("mergeRoots keeps the first list's order and drops repeats", "[migration]") {
  const TestCa a = testing::makeRoot("A"), b = testing::makeRoot("B");
  const Certificate ca = certOf(a.cert), cb = certOf(b.cert);
  const auto merged = mergeRoots({ca}, {cb, ca, cb});
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].sameAs(ca));
  CHECK(merged[1].sameAs(cb));
}

}  // namespace cacerts
