// Building Vault-shaped HTTP answers: the success envelope, error bodies, raw bodies, and
// the small formatting helpers (ids, RFC 3339 times, Go durations) Vault's answers use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"

namespace cacerts::testing {

using json = nlohmann::json;

// One answer, ready to be written by the HTTP layer.
struct Reply {
  int status = 200;
  std::string body{};
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{};
};

// The fields of Vault's success envelope (vault-api.md §1.4) that vary per endpoint.
struct Envelope {
  json data = nullptr;
  json auth = nullptr;
  std::vector<std::string> warnings{};// empty → "warnings": null
  std::string mount_type{};           // empty → field omitted
  std::int64_t lease_duration = 0;
  bool renewable = false;
};

Reply envelopeReply(const Envelope& e, int status = 200);
// {"errors":[...]}; an empty list gives {"errors":[]}.
Reply errorReply(int status, std::vector<std::string> errors);
Reply noContent();
Reply rawReply(int status, std::string body, std::string content_type);

// Vault's message for a bad token. modern: 1.17+ multierror with "invalid token".
std::string invalidTokenMessage(bool modern);
// "1 error occurred:\n\t* permission denied\n\n"
std::string permissionDeniedMessage();

// Random UUID v4 text.
std::string newUuid();
// Random token-like text of n characters from [A-Za-z0-9].
std::string randomAlnum(std::size_t n);

// "2024-06-10T06:00:00.123456789Z" (nanos=true) or "2024-06-10T06:00:00Z".
std::string rfc3339(SystemTime t, bool nanos = false);
std::int64_t unixSeconds(SystemTime t);
// Go's time.Duration String() for whole seconds: "768h0m0s", "30m0s", "45s", "0s".
std::string goDuration(std::int64_t seconds);

// A Vault duration parameter: integer seconds or a duration string. nullopt when invalid.
std::optional<std::int64_t> durationSeconds(const json& value);
// A parameter that may be a JSON bool or a string ("true"/"false"/"1"/"0").
bool boolParam(const json& params, const char* name, bool fallback);
// A parameter that may be a JSON number or a numeric string; nullopt when invalid.
std::optional<std::int64_t> intParam(const json& params, const char* name, std::int64_t fallback);
std::string stringParam(const json& params, const char* name);
// Comma-separated string or JSON array of strings.
std::vector<std::string> listParam(const json& params, const char* name);

}  // namespace cacerts::testing
