// Metrics: a small thread-safe registry of Prometheus gauges and counters with label sets,
// rendered in the text exposition format 0.0.4. No external library.
//
// Families are registered once with a name and help text; samples are then set or
// incremented by label set. render() is deterministic: families sorted by name, samples
// by their label sets (names, then values), labels within a sample sorted by name.
//
// Example:
//   Metrics m;
//   m.counter("cacerts_agent_rotations_total", "Rotation attempts by result.");
//   m.incCounter("cacerts_agent_rotations_total", {{"result", "success"}});
//   std::string page = m.render();
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace cacerts {

// Label name -> value. A std::map, so every label set has one canonical order.
using Labels = std::map<std::string, std::string>;

// The Content-Type of render()'s output.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool isValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool isValidLabelName(std::string_view name);

// A sample value as Prometheus writes it: "NaN", "+Inf", "-Inf", integers below 2^53
// without exponent (timestamps stay readable), anything else in the shortest form that
// reads back to the same double.
std::string formatMetricValue(double value);

class Metrics {
 public:
  enum class Type { kGauge, kCounter };

  // Register a family. Returns false (and changes nothing) for an invalid name or when
  // the name is already registered with the other type; registering the same name and
  // type again is a no-op that keeps the first help text.
  bool gauge(const std::string& name, const std::string& help);
  bool counter(const std::string& name, const std::string& help);

  // Set a gauge sample. Returns false and records nothing when the name is not a
  // registered gauge or a label name is invalid: a typo must not take the agent down.
  bool setGauge(std::string_view name, const Labels& labels, double value);
  bool setGauge(std::string_view name, double value) { return setGauge(name, Labels{}, value); }

  // Add delta (>= 0) to a counter sample, creating it at 0 first. Returns false for an
  // unregistered name, a gauge, an invalid label name, or a negative/NaN delta.
  bool incCounter(std::string_view name, const Labels& labels, double delta = 1.0);
  bool incCounter(std::string_view name) { return incCounter(name, Labels{}, 1.0); }

  // The current value of one sample, if it exists.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const;

  // The exposition text. Families without samples are left out (as client libraries do
  // for label vectors); every emitted family has its # HELP and # TYPE lines.
  std::string render() const;

 private:
  struct Family {
    Type type = Type::kGauge;
    std::string help;
    std::map<Labels, double> samples;
  };
  bool registerFamily(const std::string& name, const std::string& help, Type type);
  Family* find(std::string_view name, Type type, const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace cacerts
