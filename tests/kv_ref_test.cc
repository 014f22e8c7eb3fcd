#include "agent/kv_ref.h"

#include <catch2/catch.hpp>

#include "common/duration.h"

namespace cacerts {

TEST_CASE("kv references accept the Bank-Vaults syntax", "[kv_ref]") {
  auto r = parseKvRef("vault:secret/data/pki/istiod#certificate", "--kv-cert");
  REQUIRE(r);
  CHECK(r->path == "secret/data/pki/istiod");
  CHECK(r->field == "certificate");
  CHECK(r->version == 0);
  auto v = parseKvRef("secret/pki/istiod#key#3", "--kv-key");
  REQUIRE(v);
  CHECK(v->path == "secret/pki/istiod");
  CHECK(v->version == 3);
  auto slashes = parseKvRef("/team/kv/a/b/#f", "--kv-cert");
  REQUIRE(slashes);
  CHECK(slashes->path == "team/kv/a/b");
}

TEST_CASE("malformed kv references name the option and the syntax", "[kv_ref]") {
  for (const char* bad : {"", "vault:", "secret/x", "secret/x#", "#field", "secret/x#f#", "secret/x#f#0", "secret/x#f#-1",
                          "secret/x#f#abc", "secret/x#f#99999999999", "secret/x?y#f"}) {
    auto r = parseKvRef(bad, "--kv-cert");
    INFO(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(r.error().message, Catch::StartsWith("--kv-cert"));
    CHECK_THAT(r.error().message, Catch::Contains("[vault:]<path>#<field>[#<version>]"));
  }
}

TEST_CASE("durations parse Vault's syntax and reject nonsense", "[duration]") {
  CHECK(*parseDuration("90") == std::chrono::seconds(90));
  CHECK(*parseDuration("5m") == std::chrono::minutes(5));
  CHECK(*parseDuration("720h") == std::chrono::hours(720));
  CHECK(*parseDuration("1h30m") == std::chrono::minutes(90));
  CHECK(*parseDuration("1.5h") == std::chrono::minutes(90));
  CHECK(*parseDuration("7d") == std::chrono::hours(168));
  CHECK(*parseDuration("250ms") == std::chrono::milliseconds(250));
  for (const char* bad : {"", "h", "5x", "-5s", "5 m", "1e400h", "abc"}) {
    INFO(bad);
    CHECK_FALSE(parseDuration(bad));
  }
  CHECK(formatDuration(std::chrono::hours(720)) == "2592000s");
}

TEST_CASE("describeDuration prints Go-style durations, the one formatter for people", "[duration]") {
  CHECK(describeDuration(std::chrono::hours(24)) == "24h0m0s");
  CHECK(describeDuration(std::chrono::minutes(90) + std::chrono::seconds(5)) == "1h30m5s");
  CHECK(describeDuration(std::chrono::seconds(42)) == "42s");
  CHECK(describeDuration(std::chrono::milliseconds(0)) == "0s");
  CHECK(describeDuration(-std::chrono::hours(2)) == "-2h0m0s");
}

}  // namespace cacerts
