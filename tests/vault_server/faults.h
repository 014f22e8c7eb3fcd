// Fault injection for the Vault test server: for the next N requests whose path (after
// "/v1/") starts with a prefix, answer with a chosen failure instead of (or before) the
// normal answer. Thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "tests/vault_server/response.h"

namespace cacerts::testing {

struct Fault {
  enum class Kind {
    kStatus,         // answer `status` with `body` (empty: Vault's error body for that status)
    kDelay,          // wait `delay`, then answer normally
    kDrop,           // reset the connection without any response bytes
    kTruncate,       // send headers with a Content-Length, half the body, then close
    kMalformedJson,  // a complete response whose JSON body does not parse
    kHugeBody,       // a syntactically valid JSON body of `huge_bytes` bytes
    kResetMidBody,   // send headers with a Content-Length and half the body, then reset (RST)
    kRespond,        // answer with respond(request body): a well-formed answer the test composes
    kTrickle,        // send the headers, then a long body one byte every `delay` (0: 300 ms)
  };
  Kind kind = Kind::kStatus;
  std::string path_prefix{};  // e.g. "secret/data/"; empty: every request
  int count = 1;            // matching requests affected; -1: until cleared
  int status = 0;           // 0: 500 for kStatus, 200 for the body faults
  std::string body{};
  std::vector<std::pair<std::string, std::string>> headers{};  // e.g. {"Retry-After", "1"}
  Duration delay{0};
  std::size_t huge_bytes = 16 * 1024 * 1024;
  // kRespond only. Runs on a server thread; must not block.
  std::function<Reply(const std::string& request_body)> respond{};
};

class FaultQueue {
 public:
  void add(Fault fault);
  void clear();
  // The first pending fault matching path, consuming one of its count; nullopt if none.
  std::optional<Fault> take(const std::string& path);

 private:
  std::mutex mu_;
  std::deque<Fault> faults_;
};

// The Reply for a kStatus fault on path; a Vault-worded error body when fault.body is empty.
Reply statusFaultReply(const Fault& fault, const std::string& path);

// A fault from the control API's JSON: {"kind": "status|delay|drop|truncate|malformed_json|
// huge_body|reset_mid_body|trickle", "path_prefix", "count", "status", "body", "headers": {..}, "delay_ms",
// "huge_bytes"}.
Result<Fault> faultFromJson(const json& j);

}  // namespace cacerts::testing
