// Process-wide logging setup. Log lines are a fixed event name plus key=value fields
// ("event=published dir=/etc/cacerts serial=..."); in json format every line is one JSON
// object whose "msg" holds that text, so it parses back even with quotes or newlines.
//
// Nothing secret is ever passed to a logger: Secret has a size-only formatter, and error
// messages are built without payload bytes.
#pragma once

#include <string>

#include "common/result.h"

namespace cacerts {

// format: "text" | "json"; level: trace, debug, info, warn, error. Logs go to stderr.
Status setupLogging(const std::string& format, const std::string& level);

}  // namespace cacerts
