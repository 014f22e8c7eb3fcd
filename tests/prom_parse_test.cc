#include "common/prom_parse.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace cacerts {
namespace {

// An excerpt in the shape istiod serves (Go client library formatting).
constexpr const char* kIstiodExcerpt =
    "# HELP citadel_server_root_cert_expiry_timestamp The unix timestamp, in seconds, when Citadel root cert will expire.\n"
    "# TYPE citadel_server_root_cert_expiry_timestamp gauge\n"
    "citadel_server_root_cert_expiry_timestamp 2.0431392e+09\n"
    "# HELP citadel_server_cert_chain_expiry_timestamp The unix timestamp, in seconds, when Citadel cert chain will expire.\n"
    "# TYPE citadel_server_cert_chain_expiry_timestamp gauge\n"
    "citadel_server_cert_chain_expiry_timestamp 1.7356896e+09\n"
    "# HELP go_info Information about the Go environment.\n"
    "# TYPE go_info gauge\n"
    "go_info{version=\"go1.22.5\"} 1\n";

}  // namespace

TEST_CASE("finds istiod's chain expiry timestamp in exponent notation", "[prom_parse]") {
  auto v = findMetricValue(kIstiodExcerpt, "citadel_server_cert_chain_expiry_timestamp");
  REQUIRE(v);
  REQUIRE(v->has_value());
  CHECK(**v == 1735689600.0);
}

TEST_CASE("a metric that is not present is reported as absent, not as an error", "[prom_parse]") {
  auto v = findMetricValue(kIstiodExcerpt, "citadel_server_cert_chain_expiry");  // a prefix only
  REQUIRE(v);
  CHECK_FALSE(v->has_value());
  auto empty = findMetricValue("", "x");
  REQUIRE(empty);
  CHECK_FALSE(empty->has_value());
}

TEST_CASE("the first sample wins whatever its labels", "[prom_parse]") {
  const char* text =
      "requests_total{code=\"200\",method=\"GET\"} 7 1700000000000\n"
      "requests_total{code=\"500\"} 2\n";
  auto v = findMetricValue(text, "requests_total");
  REQUIRE(v);
  CHECK(v->value() == 7);
  auto s = findMetricSample(text, "requests_total", {{"code", "500"}});
  REQUIRE(s);
  REQUIRE(s->has_value());
  CHECK((*s)->value == 2);
  CHECK((*s)->labels == Labels{{"code", "500"}});
  auto none = findMetricSample(text, "requests_total", {{"code", "404"}});
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("label values with escaped quotes, backslashes and newlines are unescaped", "[prom_parse]") {
  const char* text = "m{a=\"say \\\"hi\\\"\", b=\"C:\\\\dir\" ,c=\"x\\ny\",} 1\n";
  auto s = findMetricSample(text, "m");
  REQUIRE(s);
  REQUIRE(s->has_value());
  CHECK((*s)->labels == Labels{{"a", "say \"hi\""}, {"b", "C:\\dir"}, {"c", "x\ny"}});
  // A closing brace or '#' inside a quoted value does not end anything.
  auto tricky = findMetricValue("m{a=\"} # 5\"} 3\n", "m");
  REQUIRE(tricky);
  CHECK(tricky->value() == 3);
}

TEST_CASE("comments, blank lines, CRLF, tabs and exemplars are tolerated", "[prom_parse]") {
  const char* text =
      "\n"
      "   \t\n"
      "# just a comment\r\n"
      "#\n"
      "\tother 1\r\n"
      "m_total{a=\"b\"}\t42 # {trace_id=\"abc\"} 1.0 1700000000.001\r\n"
      "# EOF\n";
  auto v = findMetricValue(text, "m_total");
  REQUIRE(v);
  CHECK(v->value() == 42);
}

TEST_CASE("special and signed values parse like Prometheus", "[prom_parse]") {
  CHECK(std::isnan(*parsePromNumber("NaN")));
  CHECK(std::isnan(*parsePromNumber("nan")));
  CHECK(*parsePromNumber("+Inf") == HUGE_VAL);
  CHECK(*parsePromNumber("Inf") == HUGE_VAL);
  CHECK(*parsePromNumber("-Inf") == -HUGE_VAL);
  CHECK(*parsePromNumber("infinity") == HUGE_VAL);
  CHECK(*parsePromNumber("1.7e+09") == 1.7e9);
  CHECK(*parsePromNumber("1.7E9") == 1.7e9);
  CHECK(*parsePromNumber("-0.5") == -0.5);
  CHECK(*parsePromNumber("+3") == 3);
  CHECK(*parsePromNumber(".5") == 0.5);
  CHECK(*parsePromNumber("5.") == 5);
  for (const char* bad : {"", "+", "-", "--1", "+-1", "1e", "0x10", "1,5", "1.2.3", "abc", "infinit", "nan1",
                          "1e400", " 1", "1 ", "e5"}) {
    INFO(bad);
    CHECK_FALSE(parsePromNumber(bad).has_value());
  }
}

TEST_CASE("a malformed line before the match is an error naming its line number", "[prom_parse]") {
  const char* cases[] = {
      "ok 1\n{a=\"b\"} 1\nm 2\n",          // no name
      "ok 1\nm{a=\"b\" 1\n",                // unterminated label set
      "ok 1\nm{a=b} 1\n",                   // unquoted value
      "ok 1\nm{a=\"\\x\"} 1\n",             // bad escape
      "ok 1\nm{a=\"unterminated} 1\n",      // unterminated value
      "ok 1\nm{a=\"1\",a=\"2\"} 1\n",       // duplicate label
      "ok 1\nm{1a=\"1\"} 1\n",              // bad label name
      "ok 1\nm\n",                          // missing value
      "ok 1\nm one\n",                      // bad value
      "ok 1\nm 1 2 3\n",                    // trailing junk
      "ok 1\nm 1 notatime\n",               // bad timestamp
      "ok 1\n<html><body>502 Bad Gateway\n",  // not metrics at all
  };
  for (const char* text : cases) {
    INFO(text);
    auto v = findMetricValue(text, "m");
    REQUIRE_FALSE(v);
    CHECK(v.error().code == ErrorCode::kInvalidArgument);
    CHECK(v.error().message.rfind("metrics text line 2: ", 0) == 0);
  }
}

TEST_CASE("error messages do not quote the input", "[prom_parse]") {
  const std::string canary = "s3cr3t-canary-value";
  auto v = findMetricValue("m{a=\"" + canary + "\\q\"} 1\n", "m");
  REQUIRE_FALSE(v);
  CHECK(v.error().message.find(canary) == std::string::npos);
  auto w = findMetricValue(canary + "{ 1\n", "m");
  REQUIRE_FALSE(w);
  CHECK(w.error().message.find(canary) == std::string::npos);
}

TEST_CASE("lines after the first match are not read", "[prom_parse]") {
  auto v = findMetricValue("m 1\n!!! garbage\n", "m");
  REQUIRE(v);
  CHECK(v->value() == 1);
  CHECK_FALSE(parsePromText("m 1\n!!! garbage\n"));
}

TEST_CASE("arbitrary bytes give a value or an error", "[prom_parse]") {
  // A cheap deterministic fuzz loop (a libFuzzer target covers this more deeply): every
  // input must return, whatever it holds. Run under ASan/UBSan to catch memory errors.
  const std::string alphabet = std::string("m{}=\",\\n# \t\r\n.e+-0123456789aINfxyz_:") + '\0' + "\xff";
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int values = 0;
  int errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    const std::size_t len = next() % 40;
    for (std::size_t j = 0; j < len; ++j) input += alphabet[next() % alphabet.size()];
    auto v = findMetricValue(input, "m");
    (v ? values : errors)++;
    auto all = parsePromText(input);
    (void)all;
  }
  CHECK(values > 0);
  CHECK(errors > 0);
}

}  // namespace cacerts
