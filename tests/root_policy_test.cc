// Root rotation decisions: pure inputs in, a decision out — no files, no clock.
#include "agent/root_policy.h"
#include "agent/root_plan.h"

#include <catch2/catch.hpp>

#include "tests/support/test_pki.h"

namespace cacerts::testing {
namespace {

using std::chrono::hours;

const SystemTime kT0{std::chrono::seconds(1'700'000'000)};

Certificate toCert(const TestCa& ca) {
  auto c = parseCertificate(ca.cert.pem(), "test root");
  REQUIRE(c);
  return *c;
}

struct Roots {
  TestCa a = makeRoot("Root A", kT0 - hours(24), kT0 + hours(24 * 3650));
  TestCa b = makeRoot("Root B", kT0 - hours(1), kT0 + hours(24 * 3650));
  TestCa c = makeRoot("Root C", kT0 - hours(1), kT0 + hours(24 * 3650));
  Certificate A = toCert(a), B = toCert(b), C = toCert(c);
};

const Roots& roots() {
  static const Roots r;
  return r;
}

RootInputs inputs(const std::vector<Certificate>& published, SystemTime now = kT0) {
  RootInputs in;
  in.published = published;
  in.published_pem = toPem(published);
  in.current_anchor = published.front();
  in.now = now;
  return in;
}

RootPolicy multiroot() {
  RootPolicy p;
  p.multiroot = true;
  p.propagation = hours(24);
  p.retire = hours(24);
  return p;
}

bool isSubstring(const std::string& small, const std::string& big) { return big.find(small) != std::string::npos; }

}  // namespace

TEST_CASE("the plan: a root signs once it is older than the propagation time, the oldest from the start",
          "[root-policy][root-plan]") {
  const auto& r = roots();  // A: notBefore kT0-24h, B and C: notBefore kT0-1h
  SECTION("one root signs at once, however young") {
    const RootPlan plan = planRoots({r.B}, kT0, hours(24));
    CHECK(plan.signing == 0);
    CHECK(plan.schedule.signing_since == SystemTime::min());
    CHECK_FALSE(plan.schedule.next_switch);
  }
  SECTION("a young second root waits; the switch is its notBefore plus the propagation time") {
    const RootPlan plan = planRoots({r.A, r.B}, kT0, hours(24));
    CHECK(plan.signing == 0);
    REQUIRE(plan.schedule.next_switch);
    CHECK(*plan.schedule.next_switch == kT0 + hours(23));
  }
  SECTION("at the switch the new root signs, from that instant, whoever asks") {
    for (const SystemTime now : {kT0 + hours(23), kT0 + hours(100)}) {
      const RootPlan plan = planRoots({r.A, r.B}, now, hours(24));
      CHECK(plan.signing == 1);
      CHECK(plan.schedule.signing_since == kT0 + hours(23));
      CHECK_FALSE(plan.schedule.next_switch);
    }
  }
  SECTION("with three roots the newest old-enough one signs") {
    const TestCa older = makeRoot("Root O", kT0 - hours(100), kT0 + hours(24 * 3650));
    const RootPlan plan = planRoots({toCert(older), r.A, r.B}, kT0, hours(24));
    CHECK(plan.signing == 1);
    CHECK(plan.schedule.signing_since == kT0);
    CHECK(*plan.schedule.next_switch == kT0 + hours(23));
  }
}

TEST_CASE("appending keeps the old bytes as a prefix and dropping keeps a suffix", "[root-policy]") {
  const auto& r = roots();
  const std::string a = r.A.pem();
  SECTION("append after a file with a trailing newline") {
    const std::string grown = appendRoots(a, {r.B});
    CHECK(grown == a + r.B.pem());
  }
  SECTION("append after a file without a trailing newline still contains the old bytes") {
    const std::string bare = a.substr(0, a.size() - 1);
    const std::string grown = appendRoots(bare, {r.B});
    CHECK(grown.rfind(bare, 0) == 0);
    CHECK(parseCertificates(grown, "x")->size() == 2);
  }
  SECTION("drop from the front") {
    const std::string both = a + r.B.pem() + r.C.pem();
    CHECK(dropLeadingRoots(both, 1) == r.B.pem() + r.C.pem());
    CHECK(dropLeadingRoots(both, 2) == r.C.pem());
    CHECK(dropLeadingRoots(both, 0) == both);
  }
}

TEST_CASE("with nothing published the candidate goes out with Vault's roots", "[root-policy]") {
  const auto& r = roots();
  RootInputs in;
  in.now = kT0;
  in.vault = std::vector<Certificate>{r.A, r.B};
  in.candidate_anchor = r.A;
  const RootDecision d = decideRoots(in, RootPolicy{});
  CHECK(d.action == RootAction::kPublishCandidate);
  CHECK(d.roots_pem == r.A.pem() + r.B.pem());
  CHECK(d.phase == RootPhase::kPropagating);
  CHECK_FALSE(d.blocked);
}

TEST_CASE("an unusable generation is replaced, keeping its root bytes when they anchor the candidate",
          "[root-policy]") {
  const auto& r = roots();
  RootInputs in;
  in.now = kT0;
  in.published = {r.A};
  in.published_pem = r.A.pem().substr(0, r.A.pem().size() - 1);  // no trailing newline: not canonical
  in.candidate_anchor = r.A;
  SECTION("same set") {
    in.vault = std::vector<Certificate>{r.A};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
  }
  SECTION("Vault has more roots but changes are not allowed") {
    in.vault = std::vector<Certificate>{r.A, r.B};
    const RootDecision d = decideRoots(in, RootPolicy{});
    CHECK(d.roots_pem == in.published_pem);
  }
  SECTION("the old roots do not anchor the candidate: Vault's roots, with a note") {
    in.vault = std::vector<Certificate>{r.B};
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, RootPolicy{});
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.B.pem());
    CHECK_THAT(d.note, Catch::Contains("restart"));
  }
}

TEST_CASE("without multiroot the root bytes never change", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A});
  const RootPolicy policy;  // multiroot false
  SECTION("same roots: the candidate is published with the exact old bytes") {
    in.vault = std::vector<Certificate>{r.A};
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, policy);
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
    CHECK_FALSE(d.blocked);
  }
  SECTION("Vault gained a root but the candidate chains to the old one: renewed, roots kept, blocked raised") {
    in.vault = std::vector<Certificate>{r.A, r.B};
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, policy);
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
    CHECK(d.blocked);
    CHECK_THAT(d.note, Catch::Contains("ISTIO_MULTIROOT_MESH"));
  }
  SECTION("a candidate from a new root is refused and the current intermediate stays") {
    in.vault = std::vector<Certificate>{r.A, r.B};
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, policy);
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.blocked);
  }
  SECTION("a root removed from Vault is also a change it refuses to make") {
    in = inputs({r.A, r.B});
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, policy);
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.blocked);
  }
}

TEST_CASE("a new root is appended at once with the current intermediate", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A});
  in.vault = std::vector<Certificate>{r.A, r.B};
  SECTION("a candidate from the new root waits until the root is older than the propagation time") {
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem());
    CHECK(d.roots_pem.rfind(in.published_pem, 0) == 0);  // bytes grow by appending
    CHECK(d.phase == RootPhase::kPropagating);
    CHECK(d.candidate_deferred);
    REQUIRE(d.wake);
    CHECK(*d.wake == kT0 + hours(23));  // B's notBefore + 24 h
  }
  SECTION("a candidate from the old root is published together with the new roots") {
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem());
    CHECK(d.phase == RootPhase::kPropagating);
    CHECK_FALSE(d.candidate_deferred);
  }
  SECTION("a trust set read without a candidate is enough") {
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.phase == RootPhase::kPropagating);
  }
  SECTION("a source that planned its signer is never held back") {
    in.candidate_anchor = r.B;
    in.schedule = RootSchedule{kT0, std::nullopt, ""};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem());
    CHECK(d.phase == RootPhase::kSwitched);
    CHECK_FALSE(d.candidate_deferred);
  }
}

TEST_CASE("the intermediate switches only once its root is older than the propagation time", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A, r.B});
  in.current_anchor = r.A;
  in.vault = std::vector<Certificate>{r.A, r.B};
  SECTION("before: a candidate from the new root is deferred") {
    in.now = kT0 + hours(22);
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.candidate_deferred);
    CHECK(*d.wake == kT0 + hours(23));
    CHECK(d.phase == RootPhase::kPropagating);
  }
  SECTION("before: a candidate from the old root renews with unchanged roots") {
    in.now = kT0 + hours(22);
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
  }
  SECTION("after: the candidate goes out with the same root bytes") {
    in.now = kT0 + hours(23);
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
    CHECK(d.phase == RootPhase::kSwitched);
    CHECK_FALSE(d.wake);  // A is still in Vault: nothing to wait for
  }
  SECTION("another root meanwhile is appended; each root keeps its own switch time") {
    const TestCa later = makeRoot("Root L", kT0 + hours(10), kT0 + hours(24 * 3650));
    const Certificate l = toCert(later);
    in.now = kT0 + hours(20);
    in.vault = std::vector<Certificate>{r.A, r.B, l};
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem() + l.pem());
    CHECK(*d.wake == kT0 + hours(23));
  }
}

TEST_CASE("a root deleted from Vault leaves from the front, the retire time after the switch", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A, r.B});
  in.current_anchor = r.B;  // switched at B's notBefore + 24 h = kT0 + 23 h
  SECTION("before the retire time nothing is dropped") {
    in.now = kT0 + hours(46);
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.phase == RootPhase::kSwitched);
    CHECK(*d.wake == kT0 + hours(47));
  }
  SECTION("after it, with the old root gone from Vault: dropped, bytes shrink from the front") {
    in.now = kT0 + hours(47);
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.B.pem());
    CHECK(isSubstring(d.roots_pem, in.published_pem));
    CHECK(d.phase == RootPhase::kNone);
  }
  SECTION("a later switch in the source's plan delays the retirement") {
    in.vault = std::vector<Certificate>{r.B};
    in.schedule = RootSchedule{kT0 + hours(25), std::nullopt, ""};
    in.now = kT0 + hours(48);
    const RootDecision before = decideRoots(in, multiroot());
    CHECK(before.action == RootAction::kKeepCurrent);
    CHECK(*before.wake == kT0 + hours(49));
    in.now = kT0 + hours(49);
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.B.pem());
  }
  SECTION("a renewal at that moment drops it together with the new intermediate") {
    in.now = kT0 + hours(50);
    in.vault = std::vector<Certificate>{r.B};
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.B.pem());
  }
  SECTION("the old root still in Vault: kept") {
    in.now = kT0 + hours(50);
    in.vault = std::vector<Certificate>{r.A, r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.phase == RootPhase::kSwitched);
    CHECK_FALSE(d.wake);
  }
  SECTION("Vault's roots unknown: kept") {
    in.now = kT0 + hours(50);
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
  }
  SECTION("the intermediate still chains to the old root: kept") {
    in.now = kT0 + hours(50);
    in.vault = std::vector<Certificate>{r.B};
    in.current_anchor = r.A;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
  }
}

TEST_CASE("expired roots at the front are dropped outside a rotation, never the last one", "[root-policy]") {
  const TestCa old = makeRoot("Old Root", kT0 - hours(48), kT0 - hours(1));
  const Certificate o = toCert(old);
  const auto& r = roots();
  RootInputs in = inputs({o, r.A});
  in.current_anchor = r.A;
  in.vault = std::vector<Certificate>{r.A};
  const RootDecision d = decideRoots(in, multiroot());
  CHECK(d.action == RootAction::kPublishCurrent);
  CHECK(d.roots_pem == r.A.pem());
  CHECK(d.phase == RootPhase::kNone);

  RootInputs alone = inputs({o});
  const RootDecision keep = decideRoots(alone, multiroot());
  CHECK(keep.action == RootAction::kKeepCurrent);
}

TEST_CASE("a whole rotation only ever appends or drops from the front", "[root-policy]") {
  const auto& r = roots();
  const RootPolicy policy = multiroot();
  RootInputs in = inputs({r.A});
  std::vector<std::string> files = {in.published_pem};
  const auto step = [&](SystemTime now, std::vector<Certificate> vault, std::optional<Certificate> candidate) {
    in.now = now;
    in.vault = std::move(vault);
    in.candidate_anchor = candidate;
    const RootDecision d = decideRoots(in, policy);
    if (d.action == RootAction::kKeepCurrent) return d;
    in.published_pem = d.roots_pem;
    in.published = *parseCertificates(d.roots_pem, "roots");
    if (d.action == RootAction::kPublishCandidate) in.current_anchor = candidate;
    files.push_back(d.roots_pem);
    return d;
  };
  CHECK(step(kT0, {r.A, r.B}, r.B).phase == RootPhase::kPropagating);
  CHECK(step(kT0 + hours(12), {r.A, r.B}, r.B).action == RootAction::kKeepCurrent);
  CHECK(step(kT0 + hours(23), {r.A, r.B}, r.B).phase == RootPhase::kSwitched);
  CHECK(step(kT0 + hours(60), {r.B}, std::nullopt).phase == RootPhase::kNone);
  REQUIRE(files.size() == 4);
  CHECK(files.back() == r.B.pem());
  for (std::size_t i = 1; i < files.size(); ++i) {
    INFO("step " << i);
    // istiod 1.20-1.29: one file must contain the other byte for byte.
    CHECK((isSubstring(files[i - 1], files[i]) || isSubstring(files[i], files[i - 1])));
  }
}

}  // namespace cacerts::testing
