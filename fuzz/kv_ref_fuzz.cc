// The `vault:` reference parser (--kv-cert and friends, and their environment variables).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/kv_ref.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cacerts::Result<cacerts::KvRef> ref = cacerts::parseKvRef(text, "--kv-cert");
  if (ref) {
    // What the parser promises: a trimmed, non-empty path and field, and a version >= 0.
    if (ref->path.empty() || ref->field.empty() || ref->version < 0) std::abort();
    if (ref->path.front() == '/' || ref->path.back() == '/') std::abort();
    if (ref->field.find('#') != std::string_view::npos) std::abort();
  } else if (ref.error().message.rfind("--kv-cert: ", 0) != 0) {
    std::abort();  // errors name the option
  }
  return 0;
}
