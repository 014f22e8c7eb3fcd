// Parsing of absolute instants given by operators (RFC 3339), the inverse of formatTime
// (common/x509.h) for configuration values such as --migrate-switch-at.
#pragma once

#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace cacerts {

// "2026-11-23T15:04:05Z", "2026-11-23T17:04:05+02:00", "2026-11-23T15:04:05.250Z" (RFC 3339:
// 'T'/'t' or a space between date and time, 'Z'/'z' or a numeric offset; fractions kept to
// the millisecond). A leap second (:60) and dates before 1970 are refused.
// kInvalidArgument naming the expected form; the message quotes the text (it is no secret).
Result<SystemTime> parseRfc3339(std::string_view text);

}  // namespace cacerts
