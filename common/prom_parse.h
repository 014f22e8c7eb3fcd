// Reading values out of a Prometheus text exposition (format 0.0.4, plus the parts of
// OpenMetrics a scrape may carry: "# EOF", exemplars after " # "). Enough to read one
// metric from istiod's /metrics or from our own, not a full scraper.
//
// Input is untrusted: every byte sequence gives a value or an Error, never UB. Error
// messages name the line number and what is wrong, never the line's text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"

namespace cacerts {

struct PromSample {
  std::string name;
  Labels labels;  // unescaped values
  double value = 0;
};

// Parses a sample value the way Prometheus does: decimal or exponent notation with an
// optional sign ("1.7e+09", "-0.5", "+3"), and case-insensitive "NaN", "Inf", "+Inf",
// "-Inf", "Infinity". Hex floats, empty text, trailing bytes and out-of-range values
// (e.g. 1e400) are rejected.
std::optional<double> parsePromNumber(std::string_view text);

// Every sample in the text, in order. Blank lines and '#' lines (HELP, TYPE, comments)
// are skipped; any other line must be `name[{label="value",...}] value [timestamp]`
// optionally followed by an exemplar (" # ..."). The first malformed line fails the
// whole parse (kInvalidArgument, "line N: ...").
Result<std::vector<PromSample>> parsePromText(std::string_view text);

// The first sample named exactly `name` whose labels include every pair in `labels`
// (any further labels allowed). Lines are read in order and reading stops at the match,
// so a malformed line before it is an error and one after it is not looked at.
// std::nullopt when no sample matches.
Result<std::optional<PromSample>> findMetricSample(std::string_view text, std::string_view name,
                                                   const Labels& labels = {});

// The value of the first sample named `name` (any labels); see findMetricSample.
Result<std::optional<double>> findMetricValue(std::string_view text, std::string_view name);

}  // namespace cacerts
