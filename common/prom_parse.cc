#include "common/prom_parse.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace cacerts {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLabelStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isLabelChar(char c) { return isLabelStart(c) || isDigit(c); }
bool isNameStart(char c) { return isLabelStart(c) || c == ':'; }
bool isNameChar(char c) { return isLabelChar(c) || c == ':'; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

// A cursor over one line. All reads are bounds-checked.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  // Returns the sample, or nullopt for a blank or comment line; problem() explains a
  // failure (then the return value is nullopt too).
  std::optional<PromSample> parse() {
    skipBlanks();
    if (atEnd() || peek() == '#') return std::nullopt;
    PromSample sample;
    if (!isNameStart(peek())) return fail("invalid metric name");
    sample.name = std::string(take(isNameChar));
    skipBlanks();
    if (!atEnd() && peek() == '{') {
      ++i_;
      if (!parseLabels(sample.labels)) return std::nullopt;
      skipBlanks();
    }
    const std::string_view value_text = takeToken();
    if (value_text.empty()) return fail("missing sample value");
    const auto value = parsePromNumber(value_text);
    if (!value) return fail("invalid sample value");
    sample.value = *value;
    skipBlanks();
    if (!atEnd() && peek() != '#') {
      const auto timestamp = parsePromNumber(takeToken());
      if (!timestamp || !std::isfinite(*timestamp)) return fail("invalid timestamp");
      skipBlanks();
    }
    // An OpenMetrics exemplar (" # {trace_id=...} 1") is ignored; anything else is not.
    if (!atEnd() && peek() != '#') return fail("unexpected text after the sample");
    return sample;
  }

  const std::string& problem() const { return problem_; }

 private:
  bool atEnd() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  void skipBlanks() {
    while (!atEnd() && isBlank(peek())) ++i_;
  }
  template <class Pred>
  std::string_view take(Pred pred) {
    const std::size_t start = i_;
    while (!atEnd() && pred(peek())) ++i_;
    return s_.substr(start, i_ - start);
  }
  std::string_view takeToken() {
    return take([](char c) { return !isBlank(c); });
  }
  std::nullopt_t fail(const char* what) {
    problem_ = what;
    return std::nullopt;
  }

  // After '{': label="value" pairs separated by ',' (a trailing ',' is allowed), then '}'.
  bool parseLabels(Labels& labels) {
    for (;;) {
      skipBlanks();
      if (atEnd()) return failed("unterminated label set");
      if (peek() == '}') {
        ++i_;
        return true;
      }
      if (!isLabelStart(peek())) return failed("invalid label name");
      std::string name(take(isLabelChar));
      skipBlanks();
      if (atEnd() || peek() != '=') return failed("expected '=' after a label name");
      ++i_;
      skipBlanks();
      if (atEnd() || peek() != '"') return failed("expected a quoted label value");
      ++i_;
      std::string value;
      if (!parseQuoted(value)) return false;
      if (!labels.emplace(std::move(name), std::move(value)).second) {
        return failed("duplicate label name");
      }
      skipBlanks();
      if (atEnd()) return failed("unterminated label set");
      if (peek() == ',') {
        ++i_;
      } else if (peek() != '}') {
        return failed("expected ',' or '}' after a label value");
      }
    }
  }

  // After the opening quote: reads up to the closing quote, unescaping \\ \" \n.
  bool parseQuoted(std::string& out) {
    while (!atEnd()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (atEnd()) break;
      const char e = s_[i_++];
      if (e == '\\') out += '\\';
      else if (e == '"') out += '"';
      else if (e == 'n') out += '\n';
      else return failed("invalid escape sequence in a label value");
    }
    return failed("unterminated label value");
  }

  bool failed(const char* what) {
    problem_ = what;
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string problem_;
};

// Calls on_sample(sample) for each sample line until it returns true (stop).
template <class OnSample>
Status forEachSample(std::string_view text, OnSample on_sample) {
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineParser parser(line);
    std::optional<PromSample> sample = parser.parse();
    if (!sample) {
      if (parser.problem().empty()) continue;  // blank or comment
      return Error{ErrorCode::kInvalidArgument,
                   "metrics text line " + std::to_string(line_number) + ": " + parser.problem()};
    }
    if (on_sample(std::move(*sample))) break;
  }
  return ok();
}

bool hasLabels(const Labels& have, const Labels& want) {
  for (const auto& [name, value] : want) {
    auto it = have.find(name);
    if (it == have.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

std::optional<double> parsePromNumber(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  if (equalsIgnoreCase(text, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (equalsIgnoreCase(text, "inf") || equalsIgnoreCase(text, "infinity")) {
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  // from_chars would accept a second sign and its own spellings of inf/nan: allow only
  // digits or a point here.
  if (!isDigit(text[0]) && text[0] != '.') return std::nullopt;
  double value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto res = std::from_chars(first, last, value, std::chars_format::general);
  if (res.ec != std::errc() || res.ptr != last) return std::nullopt;
  return negative ? -value : value;
}

Result<std::vector<PromSample>> parsePromText(std::string_view text) {
  std::vector<PromSample> samples;
  RETURN_IF_ERROR(forEachSample(text, [&](PromSample sample) {
    samples.push_back(std::move(sample));
    return false;
  }));
  return samples;
}

Result<std::optional<PromSample>> findMetricSample(std::string_view text, std::string_view name,
                                                   const Labels& labels) {
  std::optional<PromSample> found;
  RETURN_IF_ERROR(forEachSample(text, [&](PromSample sample) {
    if (sample.name != name || !hasLabels(sample.labels, labels)) return false;
    found = std::move(sample);
    return true;
  }));
  return found;
}

Result<std::optional<double>> findMetricValue(std::string_view text, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<PromSample> sample, findMetricSample(text, name));
  if (!sample) return std::optional<double>();
  return std::optional<double>(sample->value);
}

}  // namespace cacerts
