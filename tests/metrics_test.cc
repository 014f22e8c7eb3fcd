#include "common/metrics.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "agent/agent_metrics.h"
#include "common/prom_parse.h"

namespace cacerts {

TEST_CASE("a gauge renders with HELP and TYPE lines", "[metrics]") {
  Metrics m;
  REQUIRE(m.gauge("cacerts_agent_next_renewal_timestamp_seconds", "When the next renewal is due."));
  REQUIRE(m.setGauge("cacerts_agent_next_renewal_timestamp_seconds", 1.7e9));
  CHECK(m.render() ==
        "# HELP cacerts_agent_next_renewal_timestamp_seconds When the next renewal is due.\n"
        "# TYPE cacerts_agent_next_renewal_timestamp_seconds gauge\n"
        "cacerts_agent_next_renewal_timestamp_seconds 1700000000\n");
}

TEST_CASE("render output is sorted by family and label set, whatever the update order", "[metrics]") {
  Metrics a;
  Metrics b;
  for (Metrics* m : {&a, &b}) {
    REQUIRE(m->counter("z_total", "z"));
    REQUIRE(m->gauge("a_gauge", "a"));
  }
  a.incCounter("z_total", {{"result", "success"}});
  a.incCounter("z_total", {{"result", "failure"}});
  a.setGauge("a_gauge", {{"y", "1"}, {"x", "2"}}, 3);
  b.setGauge("a_gauge", {{"x", "2"}, {"y", "1"}}, 3);
  b.incCounter("z_total", {{"result", "failure"}});
  b.incCounter("z_total", {{"result", "success"}});
  CHECK(a.render() == b.render());
  CHECK(a.render() ==
        "# HELP a_gauge a\n"
        "# TYPE a_gauge gauge\n"
        "a_gauge{x=\"2\",y=\"1\"} 3\n"
        "# HELP z_total z\n"
        "# TYPE z_total counter\n"
        "z_total{result=\"failure\"} 1\n"
        "z_total{result=\"success\"} 1\n");
}

TEST_CASE("label values and help text are escaped", "[metrics]") {
  Metrics m;
  REQUIRE(m.gauge("g", "line one\nback\\slash \"quoted\""));
  REQUIRE(m.setGauge("g", {{"path", "a\\b \"c\"\nd"}}, 1));
  CHECK(m.render() ==
        "# HELP g line one\\nback\\\\slash \"quoted\"\n"
        "# TYPE g gauge\n"
        "g{path=\"a\\\\b \\\"c\\\"\\nd\"} 1\n");
}

TEST_CASE("counters accumulate and refuse to go down", "[metrics]") {
  Metrics m;
  REQUIRE(m.counter("cacerts_agent_vault_requests_total", "Vault requests."));
  const Labels labels{{"operation", "login"}, {"code", "200"}};
  CHECK(m.incCounter("cacerts_agent_vault_requests_total", labels));
  CHECK(m.incCounter("cacerts_agent_vault_requests_total", labels, 2.5));
  CHECK_FALSE(m.incCounter("cacerts_agent_vault_requests_total", labels, -1));
  CHECK_FALSE(m.incCounter("cacerts_agent_vault_requests_total", labels, std::nan("")));
  CHECK(m.value("cacerts_agent_vault_requests_total", labels) == 3.5);
  CHECK_FALSE(m.value("cacerts_agent_vault_requests_total", {{"operation", "login"}}).has_value());
}

TEST_CASE("updates to unknown, mistyped or badly labelled metrics are refused", "[metrics]") {
  Metrics m;
  REQUIRE(m.gauge("g", "a gauge"));
  REQUIRE(m.counter("c_total", "a counter"));
  CHECK_FALSE(m.setGauge("unknown", 1));
  CHECK_FALSE(m.incCounter("unknown"));
  CHECK_FALSE(m.setGauge("c_total", 1));
  CHECK_FALSE(m.incCounter("g"));
  CHECK_FALSE(m.setGauge("g", {{"bad-name", "x"}}, 1));
  CHECK_FALSE(m.setGauge("g", {{"__reserved", "x"}}, 1));
  CHECK_FALSE(m.setGauge("g", {{"", "x"}}, 1));
  CHECK(m.render().empty());
}

TEST_CASE("registration validates names and keeps the first type", "[metrics]") {
  Metrics m;
  CHECK_FALSE(m.gauge("", "empty"));
  CHECK_FALSE(m.gauge("1abc", "leading digit"));
  CHECK_FALSE(m.gauge("a-b", "dash"));
  CHECK(m.gauge("ns:sub_metric", "colons are allowed"));
  CHECK(m.gauge("ns:sub_metric", "same type again is fine"));
  CHECK_FALSE(m.counter("ns:sub_metric", "other type"));
  REQUIRE(m.setGauge("ns:sub_metric", 2));
  CHECK(m.render().find("# HELP ns:sub_metric colons are allowed\n") != std::string::npos);
}

TEST_CASE("families without samples are not rendered", "[metrics]") {
  Metrics m;
  REQUIRE(m.gauge("unset", "never set"));
  REQUIRE(m.gauge("set", "set once"));
  REQUIRE(m.setGauge("set", 0));
  CHECK(m.render() == "# HELP set set once\n# TYPE set gauge\nset 0\n");
}

TEST_CASE("sample values use Prometheus spellings", "[metrics]") {
  CHECK(formatMetricValue(0) == "0");
  CHECK(formatMetricValue(-0.0) == "0");
  CHECK(formatMetricValue(1735689600) == "1735689600");
  CHECK(formatMetricValue(-3) == "-3");
  CHECK(formatMetricValue(0.5) == "0.5");
  CHECK(formatMetricValue(0.66) == "0.66");
  CHECK(formatMetricValue(1e-05) == "1e-05");
  CHECK(formatMetricValue(1e20) == "1e+20");
  CHECK(formatMetricValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(formatMetricValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(formatMetricValue(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("rendered text parses back to the same samples", "[metrics]") {
  Metrics m;
  REQUIRE(m.gauge("g", "gauge"));
  REQUIRE(m.counter("c_total", "counter"));
  REQUIRE(m.setGauge("g", {{"v", "q\"uo\\te\nnl"}}, 0.1));
  REQUIRE(m.setGauge("g", {{"v", "plain"}}, -2.5e-7));
  REQUIRE(m.incCounter("c_total", {}, 1e6));
  auto parsed = parsePromText(m.render());
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 3);
  CHECK((*parsed)[0].name == "c_total");
  CHECK((*parsed)[0].value == 1e6);
  CHECK((*parsed)[1].labels == Labels{{"v", "plain"}});
  CHECK((*parsed)[1].value == -2.5e-7);
  CHECK((*parsed)[2].labels == Labels{{"v", "q\"uo\\te\nnl"}});
  CHECK((*parsed)[2].value == 0.1);
}

TEST_CASE("concurrent counter increments are not lost", "[metrics]") {
  Metrics m;
  REQUIRE(m.counter("hits_total", "hits"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.incCounter("hits_total", {{"shard", std::to_string(t % 2)}});
        if (i % 100 == 0) (void)m.render();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(*m.value("hits_total", {{"shard", "0"}}) + *m.value("hits_total", {{"shard", "1"}}) ==
        kThreads * kPerThread);
}

TEST_CASE("the agent's metric families are registered with build info set", "[metrics]") {
  Metrics m;
  registerAgentMetrics(m, "1.2.3");
  CHECK(m.value(kMetricBuildInfo, {{"version", "1.2.3"}}) == 1.0);
  CHECK(m.setGauge(kMetricCaCertExpiry, 1.7e9));
  CHECK(m.setGauge(kMetricRootCertExpiry, 1.8e9));
  CHECK(m.setGauge(kMetricNextRenewal, 1.6e9));
  CHECK(m.setGauge(kMetricLastSuccess, 1.5e9));
  CHECK(m.incCounter(kMetricRotations, {{"result", "success"}}));
  CHECK(m.incCounter(kMetricVaultRequests, {{"operation", "login"}, {"code", "200"}}));
  CHECK(m.setGauge(kMetricReloadConfirmed, 1));
  CHECK(m.setGauge(kMetricRootRotationPhase, 0));
  CHECK(m.setGauge(kMetricRootChangeBlocked, 0));
  auto parsed = parsePromText(m.render());
  REQUIRE(parsed);
  CHECK(parsed->size() == 10);
}

}  // namespace cacerts
