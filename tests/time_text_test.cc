#include "common/time_text.h"

#include <catch2/catch.hpp>

#include "common/x509.h"

namespace cacerts {

TEST_CASE("parseRfc3339 reads UTC, offsets and fractions, and refuses everything else", "[time-text]") {
  const auto at = [](const char* text) {
    Result<SystemTime> t = parseRfc3339(text);
    REQUIRE(t);
    return *t;
  };
  CHECK(formatTime(at("2026-12-01T09:00:00Z")) == "2026-12-01T09:00:00Z");
  CHECK(at("2026-12-01t09:00:00z") == at("2026-12-01T09:00:00Z"));
  CHECK(at("2026-12-01 09:00:00Z") == at("2026-12-01T09:00:00Z"));
  CHECK(at("2026-12-01T10:30:00+01:30") == at("2026-12-01T09:00:00Z"));
  CHECK(at("2026-11-30T23:00:00-10:00") == at("2026-12-01T09:00:00Z"));
  CHECK(at("2026-12-01T09:00:00.250Z") - at("2026-12-01T09:00:00Z") == std::chrono::milliseconds(250));
  CHECK(at("2028-02-29T00:00:00Z") - at("2028-02-28T00:00:00Z") == std::chrono::hours(24));
  for (const char* bad : {"", "2026-12-01", "2026-12-01T09:00", "2026-12-01T09:00:00", "2026-12-01T09:00:00+0100",
                          "2026-12-01T09:00:00.Z", "2026-12-01T24:00:00Z", "2027-02-29T00:00:00Z",
                          "1969-12-31T23:59:59Z", "2026-12-01T09:00:00Z ", "+2026-12-01T09:00:00Z"}) {
    INFO(bad);
    Result<SystemTime> t = parseRfc3339(bad);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(t.error().message, Catch::Contains("RFC 3339"));
  }
}

}  // namespace cacerts
