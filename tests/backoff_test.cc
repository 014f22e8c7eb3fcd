#include "common/backoff.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "tests/fakes.h"

namespace cacerts {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const double kAlmostOne = std::nextafter(1.0, 0.0);

TEST_CASE("backoff grows exponentially with full jitter", "[backoff]") {
  const BackoffPolicy p{seconds(5), minutes(5)};
  CHECK(backoffDelay(0, p, 0.5) == seconds(2) + milliseconds(500));
  CHECK(backoffDelay(1, p, 0.5) == seconds(5));
  CHECK(backoffDelay(2, p, 0.5) == seconds(10));
  CHECK(backoffDelay(3, p, 0.5) == seconds(20));
  CHECK(backoffDelay(0, p, kAlmostOne) < seconds(5));
  CHECK(backoffDelay(0, p, kAlmostOne) >= seconds(5) - milliseconds(1));
}

TEST_CASE("backoff is capped at the maximum for any attempt", "[backoff]") {
  const BackoffPolicy p{seconds(5), minutes(5)};
  CHECK(backoffDelay(6, p, 0.5) == seconds(150));  // 5s * 64 = 320s, capped at 300s
  for (int attempt : {7, 30, 62, 63, 64, 1000, 1 << 30}) {
    const Duration d = backoffDelay(attempt, p, kAlmostOne);
    CHECK(d < minutes(5));
    CHECK(d >= minutes(5) - milliseconds(1));
  }
  CHECK(backoffDelay(1000, p, 2.0) < minutes(5));  // u >= 1 still stays below the cap
}

TEST_CASE("backoff never returns a zero delay", "[backoff]") {
  CHECK(backoffDelay(0, BackoffPolicy{seconds(5), minutes(5)}, 0.0) == kMinBackoffDelay);
  CHECK(backoffDelay(5, BackoffPolicy{seconds(5), minutes(5)}, -1.0) == kMinBackoffDelay);
  CHECK(backoffDelay(3, BackoffPolicy{Duration(0), Duration(0)}, 0.9) == kMinBackoffDelay);
  CHECK(backoffDelay(-4, BackoffPolicy{seconds(5), minutes(5)}, 0.5) == backoffDelay(0, BackoffPolicy{seconds(5), minutes(5)}, 0.5));
}

TEST_CASE("a retry sequence driven by a fake random source doubles its ceiling", "[backoff]") {
  const BackoffPolicy p{seconds(1), seconds(30)};
  testing::FakeRandom rng{0.5};
  std::vector<Duration> delays;
  for (int attempt = 0; attempt < 8; ++attempt) delays.push_back(backoffDelay(attempt, p, rng.uniform01()));
  CHECK(delays == std::vector<Duration>{milliseconds(500), seconds(1), seconds(2), seconds(4), seconds(8),
                                        seconds(15), seconds(15), seconds(15)});
}

TEST_CASE("backoff treats NaN randomness as zero", "[backoff]") {
  CHECK(backoffDelay(3, BackoffPolicy{seconds(5), minutes(5)}, std::numeric_limits<double>::quiet_NaN()) == kMinBackoffDelay);
}

}  // namespace
}  // namespace cacerts
