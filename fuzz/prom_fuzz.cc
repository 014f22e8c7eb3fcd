// The Prometheus text reader that confirms istiod reloaded its CA (a scrape of istiod's
// /metrics is untrusted input).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/reload_confirm.h"
#include "common/prom_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto value = cacerts::findMetricValue(text, cacerts::kIstiodChainExpiryMetric);
  auto all = cacerts::parsePromText(text);
  if (all) {
    // A text that parses as a whole must also answer a single lookup.
    if (!value) std::abort();
    bool found = false;
    for (const auto& sample : *all) found = found || sample.name == cacerts::kIstiodChainExpiryMetric;
    if (found != value->has_value()) std::abort();
  }
  // The number parser on its own, on the first line.
  const std::string_view first = text.substr(0, text.find('\n'));
  const auto number = cacerts::parsePromNumber(first);
  if (number && std::isnan(*number) && first.find_first_of("nN") == std::string_view::npos) {
    std::abort();  // NaN only from the literal "NaN"
  }
  return 0;
}
