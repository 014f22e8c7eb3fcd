#include "agent/schedule.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <vector>

#include "tests/fakes.h"

namespace cacerts {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr hours kDay{24};
const SystemTime kNotBefore = SystemTime(seconds(1'700'000'000));
const double kAlmostOne = std::nextafter(1.0, 0.0);

Duration offsetOf(SystemTime t) { return std::chrono::duration_cast<Duration>(t - kNotBefore); }

// fraction * lifetime, rounded to the nearest millisecond (the documented precision).
Duration part(Duration life, double fraction) {
  return Duration(std::llround(fraction * static_cast<double>(life.count())));
}

RenewalPolicy noJitter() {
  RenewalPolicy p;
  p.jitter = 0;
  return p;
}

}  // namespace

TEST_CASE("a one-year certificate renews at the renew fraction of its lifetime", "[schedule]") {
  const auto life = 365 * kDay;
  const auto t = renewalTime(kNotBefore, kNotBefore + life, noJitter(), 0.0);
  // 0.66 * 365d = 240.9d, earlier than 365d - 7d.
  CHECK(offsetOf(t) == part(life, 0.66));
}

TEST_CASE("a two-week certificate renews renew_before ahead of its expiry", "[schedule]") {
  const auto t = renewalTime(kNotBefore, kNotBefore + 14 * kDay, noJitter(), 0.0);
  // 14d - 7d = 7d is earlier than 0.66 * 14d = 9.24d: the outage budget wins.
  CHECK(offsetOf(t) == Duration(7 * kDay));
}

TEST_CASE("a certificate shorter than renew_before renews at the renew fraction", "[schedule]") {
  SECTION("one hour") {
    const auto t = renewalTime(kNotBefore, kNotBefore + hours(1), noJitter(), 0.0);
    CHECK(offsetOf(t) == Duration(minutes(39) + seconds(36)));  // 0.66h
  }
  SECTION("exactly renew_before long") {
    const auto t = renewalTime(kNotBefore, kNotBefore + 7 * kDay, noJitter(), 0.0);
    CHECK(offsetOf(t) == part(7 * kDay, 0.66));
  }
  SECTION("a few seconds, as in end-to-end tests") {
    RenewalPolicy p = noJitter();
    p.renew_fraction = 0.5;
    const auto t = renewalTime(kNotBefore, kNotBefore + seconds(6), p, 0.0);
    CHECK(offsetOf(t) == Duration(seconds(3)));
  }
}

TEST_CASE("renewal jitter subtracts between nothing and jitter times the lifetime", "[schedule]") {
  const auto life = 100 * kDay;
  const RenewalPolicy p;  // 0.66, 5%
  const Duration base = part(life, 0.66);
  const Duration max_jitter = part(life, 0.05);

  CHECK(offsetOf(renewalTime(kNotBefore, kNotBefore + life, p, 0.0)) == base);
  CHECK(offsetOf(renewalTime(kNotBefore, kNotBefore + life, p, 0.5)) == base - max_jitter / 2);
  const Duration near_one = offsetOf(renewalTime(kNotBefore, kNotBefore + life, p, kAlmostOne));
  CHECK(near_one >= base - max_jitter);
  CHECK(near_one < base - max_jitter + milliseconds(2));

  testing::FakeRandom rng{0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, kAlmostOne};
  for (int i = 0; i < 8; ++i) {
    const Duration t = offsetOf(renewalTime(kNotBefore, kNotBefore + life, p, rng.uniform01()));
    CHECK(t <= base);
    CHECK(t >= base - max_jitter);
  }
}

TEST_CASE("out-of-range random values are clamped into the jitter window", "[schedule]") {
  const auto life = 100 * kDay;
  const RenewalPolicy p;
  const auto at = [&](double u) { return renewalTime(kNotBefore, kNotBefore + life, p, u); };
  CHECK(at(-3.0) == at(0.0));
  CHECK(at(std::nan("")) == at(0.0));
  CHECK(at(7.0) == at(1.0));
  CHECK(offsetOf(at(1.0)) == part(life, 0.66) - part(life, 0.05));
}

TEST_CASE("renewal is never scheduled before not_before", "[schedule]") {
  RenewalPolicy p;
  p.renew_fraction = 0.01;
  p.jitter = 1.0;
  CHECK(renewalTime(kNotBefore, kNotBefore + hours(10), p, 0.9) == kNotBefore);
}

TEST_CASE("an empty or inverted validity period is due at not_before", "[schedule]") {
  const RenewalPolicy p;
  CHECK(renewalTime(kNotBefore, kNotBefore, p, 0.5) == kNotBefore);
  CHECK(renewalTime(kNotBefore, kNotBefore - hours(1), p, 0.5) == kNotBefore);
}

TEST_CASE("an expired certificate is already due", "[schedule]") {
  const SystemTime now = kNotBefore + 30 * kDay;
  CHECK(renewalTime(kNotBefore, kNotBefore + 20 * kDay, RenewalPolicy{}, 0.3) <= now);
}

TEST_CASE("huge policy values do not overflow the renewal time", "[schedule]") {
  RenewalPolicy p;
  p.renew_before = Duration(1'000'000'000'000'000);  // ~31,700 years
  p.renew_fraction = 1e300;
  p.jitter = 0;
  CHECK(renewalTime(kNotBefore, kNotBefore + hours(10), p, 0.0) == kNotBefore + hours(10));
}

TEST_CASE("capWait never sleeps past the deadline", "[schedule]") {
  const SystemTime now = kNotBefore;
  CHECK(capWait(minutes(5), now, now + hours(1)) == minutes(5));
  CHECK(capWait(minutes(5), now, now + seconds(30)) == seconds(30));
  CHECK(capWait(minutes(5), now, now) == Duration::zero());
  CHECK(capWait(minutes(5), now, now - hours(1)) == Duration::zero());
  CHECK(capWait(Duration(-5), now, now + hours(1)) == Duration::zero());
  // Sub-millisecond remainders round down, so the wait ends at or before the deadline.
  const SystemTime deadline = now + std::chrono::microseconds(2'500);
  CHECK(capWait(seconds(1), now, deadline) == milliseconds(2));

  const Duration waits[] = {milliseconds(1), seconds(7), minutes(3), hours(2)};
  for (const Duration wait : waits) {
    for (const auto left : {std::chrono::nanoseconds(1), std::chrono::nanoseconds(999'999),
                            std::chrono::nanoseconds(seconds(61)), std::chrono::nanoseconds(hours(3))}) {
      CHECK(now + capWait(wait, now, now + left) <= now + left);
    }
  }
}

}  // namespace cacerts
