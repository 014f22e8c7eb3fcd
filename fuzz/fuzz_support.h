// Shared by the Vault fuzz targets. scriptedTransport turns one fuzz input into the HTTP responses
// of consecutive requests, so that the real VaultClient, KvSource and PkiSource code parses
// attacker-controlled bodies exactly as it would parse a hostile or broken Vault's.
//
// Input format: responses separated by a NUL byte (JSON text never contains a raw NUL, so
// seed files stay readable). A response that starts with three digits and a space carries
// its own status ("404 {...}"); any other response is a 200. Requests beyond the last
// response are answered 404 with an empty body, which every caller treats as an error, so
// each input ends after a bounded number of requests.
#pragma once

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http.h"
#include "common/vault_client.h"
#include "tests/fakes.h"

namespace cacerts::fuzzing {

// More requests than any flow makes for one well-formed answer set; caps work per input.
inline constexpr std::size_t kMaxResponses = 32;

inline std::vector<HttpResponse> splitResponses(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<HttpResponse> out;
  std::size_t start = 0;
  while (start <= input.size() && out.size() < kMaxResponses) {
    std::size_t end = input.find('\0', start);
    if (end == std::string_view::npos) end = input.size();
    std::string_view part = input.substr(start, end - start);
    HttpResponse r;
    r.status = 200;
    if (part.size() >= 4 && std::isdigit(static_cast<unsigned char>(part[0])) &&
        std::isdigit(static_cast<unsigned char>(part[1])) && std::isdigit(static_cast<unsigned char>(part[2])) &&
        part[3] == ' ') {
      r.status = (part[0] - '0') * 100 + (part[1] - '0') * 10 + (part[2] - '0');
      part.remove_prefix(4);
    }
    r.body = std::string(part);
    r.headers["content-type"] = "application/json";
    out.push_back(std::move(r));
    start = end + 1;
  }
  return out;
}

// A transport that answers the n-th request with the n-th response of the input.
inline std::unique_ptr<testing::FakeHttpTransport> scriptedTransport(const std::uint8_t* data, std::size_t size) {
  auto responses = std::make_shared<std::vector<HttpResponse>>(splitResponses(data, size));
  auto next = std::make_shared<std::size_t>(0);
  return std::make_unique<testing::FakeHttpTransport>([responses, next](const HttpRequest&) -> Result<HttpResponse> {
    if (*next >= responses->size()) return HttpResponse{404, {}, ""};
    return (*responses)[(*next)++];
  });
}

// Every log line is still formatted (fuzz-derived values reach the formatter, as in
// production), then dropped: printing would dominate the run time.
inline void formatLogsIntoNothing() {
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_st>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

// A client that already holds a token, so the first request is the one under test.
inline void giveToken(VaultClient& client) {
  client.setToken(VaultToken{Secret("hvs.fuzz-token"), std::chrono::hours(1), true});
}

// One fuzz input as a Vault: a VaultClient over the scripted transport, with a clock set
// to `now` (real wall time keeps the committed seed certificates inside their validity).
struct ScriptedVault {
  ScriptedVault(const std::uint8_t* data, std::size_t size, SystemTime now = SystemTime(testing::FakeClock::kDefaultStart))
      : transport(scriptedTransport(data, size)), clock(now), client(*transport, "", clock, random) {}
  std::unique_ptr<testing::FakeHttpTransport> transport;
  testing::FakeClock clock;
  testing::FakeRandom random;
  VaultClient client;
};

}  // namespace cacerts::fuzzing
