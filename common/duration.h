// Parsing and printing of durations in Vault's and Go's syntax.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace cacerts {

// Accepts a bare integer (seconds) or a sequence of number+unit pairs with units
// ms, s, m, h, d (e.g. "90", "30s", "5m", "720h", "1h30m", "1.5h"). Negative values and
// overflow are errors. The message names the offending text.
Result<Duration> parseDuration(std::string_view text);

// Prints a duration the way Vault accepts it back: whole seconds as "<n>s", or "<n>ms"
// below one second.
std::string formatDuration(Duration d);

// Go's time.Duration.String() at second precision, for people reading messages and
// output: "23h59m59s", "45m0s", "7s", "0s", "-2h0m0s". Sub-second parts are dropped.
std::string describeDuration(Duration d);

}  // namespace cacerts
