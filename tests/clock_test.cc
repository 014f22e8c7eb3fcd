// SystemClock with real time: short waits only, bounds generous (shared cores).
#include "common/clock.h"

#include <catch2/catch.hpp>

#include <thread>

namespace cacerts {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

milliseconds since(Steady::time_point t0) { return std::chrono::duration_cast<milliseconds>(Steady::now() - t0); }

TEST_CASE("SystemClock::sleepUntil wakes at the wall-clock deadline", "[clock]") {
  SystemClock clock;
  const auto t0 = Steady::now();
  CHECK(clock.sleepUntil(clock.now() + milliseconds(200)));
  CHECK(since(t0) >= milliseconds(190));
  CHECK(since(t0) < milliseconds(5000));
  // A deadline already passed returns at once.
  const auto t1 = Steady::now();
  CHECK(clock.sleepUntil(clock.now() - milliseconds(1)));
  CHECK(since(t1) < milliseconds(1000));
}

TEST_CASE("SystemClock::sleepUntil is ended by interrupt(), latched or from another thread", "[clock]") {
  SystemClock clock;
  SECTION("an interrupt before the sleep") {
    clock.interrupt();
    const auto t0 = Steady::now();
    CHECK_FALSE(clock.sleepUntil(clock.now() + std::chrono::hours(1)));
    CHECK(since(t0) < milliseconds(1000));
    // Consumed: the next sleep runs to its deadline.
    CHECK(clock.sleepUntil(clock.now() + milliseconds(50)));
  }
  SECTION("an interrupt during the sleep") {
    std::thread waker([&] {
      std::this_thread::sleep_for(milliseconds(100));
      clock.interrupt();
    });
    const auto t0 = Steady::now();
    CHECK_FALSE(clock.sleepUntil(clock.now() + std::chrono::hours(1)));
    CHECK(since(t0) < milliseconds(5000));
    waker.join();
  }
  SECTION("an interrupt already taken by sleepFor does not end a later sleepUntil") {
    clock.interrupt();
    CHECK_FALSE(clock.sleepFor(std::chrono::hours(1)));
    const auto t0 = Steady::now();
    CHECK(clock.sleepUntil(clock.now() + milliseconds(200)));
    CHECK(since(t0) >= milliseconds(190));
  }
}


TEST_CASE("SystemClock::sleepUntil returns after its recheck bound, far ahead of the deadline", "[clock]") {
  // What a wall-clock step the kernel does not report looks like from inside: the timer,
  // armed for an hour ahead, does not fire, and only the bound gets the caller to read the
  // clock again (the real binary under a faked clock: tests/hostile_e2e_test.cc).
  SystemClock clock(milliseconds(200));
  const auto t0 = Steady::now();
  CHECK(clock.sleepUntil(clock.now() + std::chrono::hours(1)));
  CHECK(since(t0) >= milliseconds(190));
  CHECK(since(t0) < milliseconds(5000));
  // An interrupt still ends it (false: not the bound), and the bound holds for the next sleep.
  std::thread waker([&] {
    std::this_thread::sleep_for(milliseconds(50));
    clock.interrupt();
  });
  CHECK_FALSE(clock.sleepUntil(clock.now() + std::chrono::hours(1)));
  waker.join();
  const auto t2 = Steady::now();
  CHECK(clock.sleepUntil(clock.now() + std::chrono::hours(1)));
  CHECK(since(t2) >= milliseconds(190));
}

}  // namespace
}  // namespace cacerts
