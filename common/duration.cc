#include "common/duration.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace cacerts {

Result<Duration> parseDuration(std::string_view text) {
  auto bad = [&] {
    return Error{ErrorCode::kInvalidArgument,
                 "invalid duration \"" + std::string(text) +
                     "\" (use seconds or a number with a unit: ms, s, m, h, d, e.g. 5m, 720h)"};
  };
  if (text.empty() || text.size() > 64) return bad();
  bool all_digits = true;
  for (char c : text) all_digits = all_digits && std::isdigit(static_cast<unsigned char>(c));
  if (all_digits) {
    const double secs = std::strtod(std::string(text).c_str(), nullptr);
    if (secs > 1e12) return bad();
    return Duration(static_cast<long long>(secs * 1000));
  }
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (start == i) return bad();
    const std::string number(text.substr(start, i - start));
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end == nullptr || *end != '\0') return bad();
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    double factor = 0;
    if (unit == "ms") factor = 1;
    else if (unit == "s") factor = 1000;
    else if (unit == "m") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else return bad();
    total_ms += value * factor;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e15) return bad();
  return Duration(static_cast<long long>(std::llround(total_ms)));
}

std::string formatDuration(Duration d) {
  const long long ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string describeDuration(Duration d) {
  std::string sign;
  long long secs = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (secs < 0) {
    sign = "-";
    secs = -secs;
  }
  const long long h = secs / 3600;
  const long long m = (secs % 3600) / 60;
  const long long s = secs % 60;
  if (h > 0) return sign + std::to_string(h) + "h" + std::to_string(m) + "m" + std::to_string(s) + "s";
  if (m > 0) return sign + std::to_string(m) + "m" + std::to_string(s) + "s";
  return sign + std::to_string(s) + "s";
}

}  // namespace cacerts
