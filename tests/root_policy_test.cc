// Root rotation decisions: pure inputs in, a decision out — no files, no clock.
#include "agent/root_policy.h"

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

TEST_CASE("root state survives an encode/decode round trip and garbage is rejected", "[root-policy]") {
  RootState s;
  s.phase = RootPhase::kPropagating;
  s.since = kT0 + std::chrono::milliseconds(1234);
  s.new_roots = {"AB:CD", "EF:01"};
  auto back = decodeRootState(encodeRootState(s));
  REQUIRE(back);
  CHECK(*back == s);
  CHECK_FALSE(decodeRootState("not json"));
  CHECK_FALSE(decodeRootState(R"({"version":1,"phase":7,"since_ms":0,"new_roots":[]})"));
  CHECK_FALSE(decodeRootState(R"({"version":2,"phase":1,"since_ms":0,"new_roots":[]})"));
  const auto bad = decodeRootState("secret-looking-bytes");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("secret-looking-bytes") == std::string::npos);
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
  CHECK(d.state.phase == RootPhase::kNone);
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
    CHECK(d.state == in.state);
  }
  SECTION("a root removed from Vault is also a change it refuses to make") {
    in = inputs({r.A, r.B});
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, policy);
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.blocked);
  }
}

TEST_CASE("a new root in Vault starts phase 1: old+new roots with the current intermediate", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A});
  in.vault = std::vector<Certificate>{r.A, r.B};
  SECTION("candidate from the new root waits") {
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem());
    CHECK(d.roots_pem.rfind(in.published_pem, 0) == 0);  // bytes grow by appending
    CHECK(d.state.phase == RootPhase::kPropagating);
    CHECK(d.state.since == kT0);
    CHECK(d.state.new_roots == std::vector<std::string>{r.B.info().sha256_fingerprint});
    CHECK(d.candidate_deferred);
    REQUIRE(d.wake);
    CHECK(*d.wake == kT0 + hours(24));
  }
  SECTION("candidate from the old root is published together with the new roots") {
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem());
    CHECK_FALSE(d.candidate_deferred);
  }
  SECTION("a cheap check without candidate is enough to start") {
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.state.phase == RootPhase::kPropagating);
  }
}

TEST_CASE("phase 1 switches the intermediate only after the propagation time", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A, r.B});
  in.current_anchor = r.A;
  in.vault = std::vector<Certificate>{r.A, r.B};
  in.state.phase = RootPhase::kPropagating;
  in.state.since = kT0;
  in.state.new_roots = {r.B.info().sha256_fingerprint};
  SECTION("before: a candidate from the new root is deferred") {
    in.now = kT0 + hours(23);
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.candidate_deferred);
    CHECK(*d.wake == kT0 + hours(24));
    CHECK(d.state == in.state);
  }
  SECTION("before: a candidate from the old root renews with unchanged roots") {
    in.now = kT0 + hours(23);
    in.candidate_anchor = r.A;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
    CHECK(d.state == in.state);
  }
  SECTION("after: the candidate goes out with the same root bytes and phase 2 begins") {
    in.now = kT0 + hours(24);
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == in.published_pem);
    CHECK(d.state.phase == RootPhase::kSwitched);
    CHECK(d.state.since == kT0 + hours(24));
    CHECK(*d.wake == kT0 + hours(48));
  }
  SECTION("after, without a candidate: asks for one") {
    in.now = kT0 + hours(25);
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.needs_candidate);
  }
  SECTION("another root during phase 1 appends again and restarts the clock for all new roots") {
    in.now = kT0 + hours(20);
    in.vault = std::vector<Certificate>{r.A, r.B, r.C};
    in.candidate_anchor = r.C;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.A.pem() + r.B.pem() + r.C.pem());
    CHECK(d.state.since == kT0 + hours(20));
    CHECK(d.state.new_roots.size() == 2);
  }
}

TEST_CASE("phase 3 drops the old root from the front after the retire time once Vault lets go", "[root-policy]") {
  const auto& r = roots();
  RootInputs in = inputs({r.A, r.B});
  in.current_anchor = r.B;
  in.state.phase = RootPhase::kSwitched;
  in.state.since = kT0;
  SECTION("before the retire time nothing is dropped") {
    in.now = kT0 + hours(23);
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(*d.wake == kT0 + hours(24));
  }
  SECTION("after it, with the old root gone from Vault: dropped, bytes shrink from the front") {
    in.now = kT0 + hours(24);
    in.vault = std::vector<Certificate>{r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCurrent);
    CHECK(d.roots_pem == r.B.pem());
    CHECK(isSubstring(d.roots_pem, in.published_pem));
    CHECK(d.state.phase == RootPhase::kRetired);
  }
  SECTION("a renewal at that moment drops it together with the new intermediate") {
    in.now = kT0 + hours(30);
    in.vault = std::vector<Certificate>{r.B};
    in.candidate_anchor = r.B;
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kPublishCandidate);
    CHECK(d.roots_pem == r.B.pem());
    CHECK(d.state.phase == RootPhase::kRetired);
  }
  SECTION("the old root still in Vault: kept") {
    in.now = kT0 + hours(30);
    in.vault = std::vector<Certificate>{r.A, r.B};
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
    CHECK(d.state.phase == RootPhase::kSwitched);
  }
  SECTION("Vault's roots unknown: kept") {
    in.now = kT0 + hours(30);
    const RootDecision d = decideRoots(in, multiroot());
    CHECK(d.action == RootAction::kKeepCurrent);
  }
  SECTION("the intermediate still chains to the old root: kept") {
    in.now = kT0 + hours(30);
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
  CHECK(d.state.phase == RootPhase::kNone);

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
    in.state = d.state;
    files.push_back(d.roots_pem);
    return d;
  };
  CHECK(step(kT0, {r.A, r.B}, r.B).state.phase == RootPhase::kPropagating);
  CHECK(step(kT0 + hours(12), {r.A, r.B}, r.B).action == RootAction::kKeepCurrent);
  CHECK(step(kT0 + hours(24), {r.A, r.B}, r.B).state.phase == RootPhase::kSwitched);
  CHECK(step(kT0 + hours(60), {r.B}, std::nullopt).state.phase == RootPhase::kRetired);
  REQUIRE(files.size() == 4);
  CHECK(files.back() == r.B.pem());
  for (std::size_t i = 1; i < files.size(); ++i) {
    INFO("step " << i);
    // istiod 1.20-1.29: one file must contain the other byte for byte.
    CHECK((isSubstring(files[i - 1], files[i]) || isSubstring(files[i], files[i - 1])));
  }
}

}  // namespace cacerts::testing
