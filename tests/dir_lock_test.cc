#include "common/dir_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <catch2/catch.hpp>

#include "tests/fakes.h"
#include "tests/support/process.h"

namespace cacerts::testing {
namespace {

TEST_CASE("DirLock admits one holder per directory and names it to the next", "[dir_lock]") {
  TempDir dir;
  FakeClock clock;
  Result<DirLock> first = DirLock::acquire(dir.path(), "sidecar", Duration::zero(), clock);
  REQUIRE(first);

  SECTION("the lock is a directory whose holder record names pid and mode") {
    struct stat st {};
    REQUIRE(::lstat(dir.file("..lock").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(DirLock::holderOf(dir.path()) == "pid=" + std::to_string(::getpid()) + " mode=sidecar");
  }

  SECTION("a second writer waits the bounded time, then fails naming the holder") {
    Result<DirLock> second = DirLock::acquire(dir.path(), "init", std::chrono::seconds(10), clock);
    REQUIRE_FALSE(second);
    CHECK(second.error().code == ErrorCode::kOutput);
    CHECK_THAT(second.error().message, Catch::Contains("pid=" + std::to_string(::getpid()) + " mode=sidecar"));
    CHECK_THAT(second.error().message, Catch::Contains(dir.path()));
    // It polled on the clock for the whole wait, and not much longer.
    CHECK(clock.totalSlept() >= std::chrono::seconds(10));
    CHECK(clock.totalSlept() < std::chrono::seconds(11));
  }

  SECTION("releasing the lock lets the next writer in, which records itself") {
    { DirLock released = std::move(first).value(); }
    Result<DirLock> second = DirLock::acquire(dir.path(), "init", Duration::zero(), clock);
    REQUIRE(second);
    CHECK_THAT(DirLock::holderOf(dir.path()), Catch::EndsWith("mode=init"));
  }

  SECTION("a holder that releases during the wait is waited for") {
    clock.onSleep([&](Duration) {
      if (first) {
        DirLock gone = std::move(first).value();
      }
    });
    Result<DirLock> second = DirLock::acquire(dir.path(), "init", std::chrono::seconds(10), clock);
    REQUIRE(second);
    CHECK(clock.totalSlept() < std::chrono::seconds(1));
  }
}

TEST_CASE("DirLock reports a directory it cannot use", "[dir_lock]") {
  FakeClock clock;
  Result<DirLock> lock = DirLock::acquire("/nonexistent-cacerts-dir", "init", Duration::zero(), clock);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().code == ErrorCode::kOutput);
  CHECK_THAT(lock.error().message, Catch::Contains("/nonexistent-cacerts-dir/..lock"));
}

}  // namespace
}  // namespace cacerts::testing
