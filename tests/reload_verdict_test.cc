#include "agent/reload_verdict.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "agent/reload_confirm.h"
#include "tests/fakes.h"

namespace cacerts {
namespace {

using std::chrono::seconds;

const SystemTime kOldChain = SystemTime(seconds(1'700'000'000));
const SystemTime kNewChain = SystemTime(seconds(1'700'086'400));
const SystemTime kNewRoot = SystemTime(seconds(2'000'000'000));

IstiodMetrics shows(std::optional<SystemTime> chain, std::optional<SystemTime> root = std::nullopt,
                    const char* tag = "1.24.3") {
  IstiodMetrics m;
  const auto secs = [](SystemTime t) { return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count(); };
  if (chain) m.chain_expiry = secs(*chain);
  if (root) m.root_expiry = secs(*root);
  if (tag) m.version = parseIstioTag(tag);
  return m;
}

ReloadExpectation newIntermediate(bool roots_changed = false) {
  ReloadExpectation e;
  e.chain_not_after = kNewChain;
  e.chain_changed = true;
  e.roots_changed = roots_changed;
  return e;
}

}  // namespace

TEST_CASE("istiod's metrics page yields both expiry gauges and pilot's version", "[reload_verdict]") {
  const std::string page =
      "# TYPE istio_build gauge\n"
      "istio_build{component=\"proxy\",tag=\"1.19.0\"} 1\n"
      "istio_build{component=\"pilot\",tag=\"1.23.2\"} 1\n"
      "citadel_server_root_cert_expiry_timestamp 2.0e+09\n"
      "citadel_server_cert_chain_expiry_timestamp 1700000000.4\n";
  auto m = readIstiodMetrics(page);
  REQUIRE(m);
  CHECK(m->chain_expiry == 1'700'000'000);
  CHECK(m->root_expiry == 2'000'000'000);
  REQUIRE(m->version);
  CHECK(m->version->minor == 23);
  CHECK(m->version->tag == "1.23.2");

  auto bare = readIstiodMetrics("go_info 1\ncitadel_server_cert_chain_expiry_timestamp NaN\n");
  REQUIRE(bare);
  CHECK_FALSE(bare->chain_expiry);
  CHECK_FALSE(bare->root_expiry);
  CHECK_FALSE(bare->version);
  auto bad = readIstiodMetrics("{{{\n");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("{{{") == std::string::npos);
}

TEST_CASE("istio tags parse to major.minor; only 1.24+ records expiry on reload", "[reload_verdict]") {
  for (const char* tag : {"1.24.0", "1.24.0-beta.1", "1.25-dev", "1.30", "2.0.1"}) {
    INFO(tag);
    auto v = parseIstioTag(tag);
    REQUIRE(v);
    CHECK(recordsExpiryOnReload(*v));
  }
  for (const char* tag : {"1.20.0", "1.23.6", "1.9.9"}) {
    INFO(tag);
    auto v = parseIstioTag(tag);
    REQUIRE(v);
    CHECK_FALSE(recordsExpiryOnReload(*v));
  }
  for (const char* tag : {"", "1", "latest", "1.x.0", "1.24a", ".24.1", "1..2"}) {
    INFO(tag);
    CHECK_FALSE(parseIstioTag(tag));
  }
}

TEST_CASE("a new intermediate is confirmed only once the chain gauge shows its notAfter", "[reload_verdict]") {
  const ReloadExpectation e = newIntermediate();
  CHECK(judgeReload(e, std::nullopt, false).verdict == ReloadVerdict::kPending);
  CHECK(judgeReload(e, shows(kOldChain), false).verdict == ReloadVerdict::kPending);
  CHECK(judgeReload(e, shows(kNewChain), false).verdict == ReloadVerdict::kConfirmed);
  const ReloadJudgement late = judgeReload(e, shows(kOldChain), true);
  CHECK(late.verdict == ReloadVerdict::kNotConfirmed);
  CHECK(late.reason.find("citadel_server_cert_chain_expiry_timestamp=1700000000 (expected 1700086400)") !=
        std::string::npos);
  CHECK(judgeReload(e, std::nullopt, true).verdict == ReloadVerdict::kNotConfirmed);
}

TEST_CASE("a new first root must show in the root gauge too", "[reload_verdict]") {
  ReloadExpectation e = newIntermediate();
  e.first_root_not_after = kNewRoot;
  CHECK(judgeReload(e, shows(kNewChain, kNewChain), false).verdict == ReloadVerdict::kPending);
  CHECK(judgeReload(e, shows(kNewChain, kNewRoot), false).verdict == ReloadVerdict::kConfirmed);
  // A page without the root gauge: the changed chain proves the whole set was loaded.
  CHECK(judgeReload(e, shows(kNewChain), false).verdict == ReloadVerdict::kConfirmed);
  // Root-only: the first root leaves the front (retire), the intermediate stays.
  ReloadExpectation retire;
  retire.chain_not_after = kOldChain;
  retire.chain_changed = false;
  retire.first_root_not_after = kNewRoot;
  CHECK(judgeReload(retire, shows(kNewChain, kNewRoot), false).verdict == ReloadVerdict::kConfirmed);
  CHECK(judgeReload(retire, shows(kOldChain, kOldChain), true).verdict == ReloadVerdict::kNotConfirmed);
  CHECK(judgeReload(retire, shows(kOldChain), true).verdict == ReloadVerdict::kNotConfirmed);
}

TEST_CASE("a change istiod's gauges cannot show is unverified at once", "[reload_verdict]") {
  ReloadExpectation appended;  // roots appended behind an unchanged first root
  appended.chain_not_after = kOldChain;
  appended.chain_changed = false;
  appended.roots_changed = true;
  const ReloadJudgement j = judgeReload(appended, std::nullopt, false);
  CHECK(j.verdict == ReloadVerdict::kUnverified);
  CHECK_FALSE(j.reason.empty());
}

TEST_CASE("istiod before 1.24 is unsupported, not unconfirmed, yet still confirms what it shows",
          "[reload_verdict]") {
  const ReloadExpectation e = newIntermediate(/*roots_changed=*/true);
  const ReloadJudgement j = judgeReload(e, shows(kOldChain, std::nullopt, "1.23.1"), true);
  CHECK(j.verdict == ReloadVerdict::kUnsupported);
  CHECK(j.reason.find("istiod 1.23.1") != std::string::npos);
  CHECK(judgeReload(e, shows(kOldChain, std::nullopt, "1.23.1"), false).verdict == ReloadVerdict::kPending);
  // A restarted istiod records the set at its start: that is proof in any version.
  CHECK(judgeReload(e, shows(kNewChain, std::nullopt, "1.20.0"), false).verdict == ReloadVerdict::kConfirmed);
}

TEST_CASE("an intermediate not loaded after an unconfirmed root change means istiod refused the roots",
          "[reload_verdict]") {
  const ReloadJudgement refused = judgeReload(newIntermediate(true), shows(kOldChain), true);
  CHECK(refused.verdict == ReloadVerdict::kRefused);
  CHECK(refused.reason.find("root change") != std::string::npos);
  // Without a version on the page the rule is the same.
  CHECK(judgeReload(newIntermediate(true), shows(kOldChain, std::nullopt, nullptr), true).verdict ==
        ReloadVerdict::kRefused);
  // Not without a root change, not without a chain gauge to compare, not when the root
  // gauge shows the new first root (istiod took the roots).
  CHECK(judgeReload(newIntermediate(false), shows(kOldChain), true).verdict == ReloadVerdict::kNotConfirmed);
  CHECK(judgeReload(newIntermediate(true), shows(std::nullopt), true).verdict == ReloadVerdict::kNotConfirmed);
  ReloadExpectation took_roots = newIntermediate(true);
  took_roots.first_root_not_after = kNewRoot;
  CHECK(judgeReload(took_roots, shows(kOldChain, kNewRoot), true).verdict == ReloadVerdict::kNotConfirmed);
  CHECK(judgeReload(took_roots, shows(kOldChain, kOldChain), true).verdict == ReloadVerdict::kRefused);
}

TEST_CASE("a scrape keeps what istiod's page showed for the verdict", "[reload_verdict]") {
  testing::FakeClock clock;
  int calls = 0;
  auto transport = std::make_unique<testing::FakeHttpTransport>([&](const HttpRequest&) -> Result<HttpResponse> {
    if (++calls == 1) {
      return HttpResponse{200, {}, "istio_build{component=\"pilot\",tag=\"1.26.0\"} 1\n"
                                   "citadel_server_cert_chain_expiry_timestamp 1700086400\n"};
    }
    return HttpResponse{503, {}, ""};
  });
  ReloadConfirmer confirmer(std::move(transport), "/metrics", clock, ReloadConfirmOptions{});
  ReloadProgress p;
  REQUIRE(confirmer.scrape(clock.now() + seconds(5), p));
  REQUIRE(p.seen);
  CHECK(p.seen->chain_expiry == 1'700'086'400);
  CHECK(p.seen->version->minor == 26);
  CHECK_FALSE(confirmer.scrape(clock.now() + seconds(5), p));
  CHECK(p.last_problem == "HTTP 503");
  CHECK(p.seen->chain_expiry == 1'700'086'400);  // the last good scrape stays
  CHECK(p.polls == 2);
  CHECK(judgeReload(newIntermediate(), p.seen, false).verdict == ReloadVerdict::kConfirmed);
}

}  // namespace cacerts
