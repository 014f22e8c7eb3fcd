#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace cacerts {
namespace {

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string escapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escapeLabelValue(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool validLabels(const Labels& labels) {
  for (const auto& [name, value] : labels) {
    if (!isValidLabelName(name)) return false;
  }
  return true;
}

}  // namespace

bool isValidMetricName(std::string_view name) {
  if (name.empty() || !(isNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(isNameStart(c) || isDigit(c) || c == ':')) return false;
  }
  return true;
}

bool isValidLabelName(std::string_view name) {
  if (name.empty() || !isNameStart(name[0])) return false;
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return false;
  for (char c : name) {
    if (!(isNameStart(c) || isDigit(c))) return false;
  }
  return true;
}

std::string formatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
  if (std::fabs(value) < kExactIntegerLimit && value == std::trunc(value)) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, res.ptr);
}

bool Metrics::gauge(const std::string& name, const std::string& help) {
  return registerFamily(name, help, Type::kGauge);
}

bool Metrics::counter(const std::string& name, const std::string& help) {
  return registerFamily(name, help, Type::kCounter);
}

bool Metrics::registerFamily(const std::string& name, const std::string& help, Type type) {
  if (!isValidMetricName(name)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) return it->second.type == type;
  Family family;
  family.type = type;
  family.help = help;
  families_.emplace(name, std::move(family));
  return true;
}

Metrics::Family* Metrics::find(std::string_view name, Type type, const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != type || !validLabels(labels)) return nullptr;
  return &it->second;
}

bool Metrics::setGauge(std::string_view name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* family = find(name, Type::kGauge, labels);
  if (family == nullptr) return false;
  family->samples[labels] = value;
  return true;
}

bool Metrics::incCounter(std::string_view name, const Labels& labels, double delta) {
  if (!(delta >= 0.0)) return false;  // counters only go up; also rejects NaN
  std::lock_guard<std::mutex> lock(mu_);
  Family* family = find(name, Type::kCounter, labels);
  if (family == nullptr) return false;
  family->samples[labels] += delta;
  return true;
}

std::optional<double> Metrics::value(std::string_view name, const Labels& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return std::nullopt;
  auto sample = it->second.samples.find(labels);
  if (sample == it->second.samples.end()) return std::nullopt;
  return sample->second;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (family.samples.empty()) continue;
    out += "# HELP " + name + " " + escapeHelp(family.help) + "\n";
    out += "# TYPE " + name + (family.type == Type::kGauge ? " gauge\n" : " counter\n");
    for (const auto& [labels, value] : family.samples) {
      out += name;
      if (!labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [label, label_value] : labels) {
          if (!first) out += ',';
          first = false;
          out += label + "=\"" + escapeLabelValue(label_value) + "\"";
        }
        out += '}';
      }
      out += ' ' + formatMetricValue(value) + '\n';
    }
  }
  return out;
}

}  // namespace cacerts
