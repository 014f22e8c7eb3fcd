#include "agent/reload_verdict.h"

#include <charconv>
#include <cmath>

#include "common/prom_parse.h"

namespace cacerts {
namespace {

std::int64_t epochSecondsOf(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// A gauge in seconds, rounded; nullopt for NaN, infinities and absurd magnitudes.
std::optional<std::int64_t> wholeSeconds(double value) {
  if (!std::isfinite(value) || std::fabs(value) > 1e15) return std::nullopt;
  return std::llround(value);
}

Result<std::optional<std::int64_t>> gaugeSeconds(std::string_view page, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<double> value, findMetricValue(page, name));
  if (!value) return std::optional<std::int64_t>{};
  return wholeSeconds(*value);
}

bool readNumber(std::string_view text, int& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string seconds(std::optional<std::int64_t> value) {
  return value ? std::to_string(*value) : std::string("absent");
}

}  // namespace

std::optional<IstiodVersion> parseIstioTag(std::string_view tag) {
  const auto dot = tag.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view rest = tag.substr(dot + 1);
  const auto minor_end = rest.find_first_not_of("0123456789");
  IstiodVersion v;
  if (!readNumber(tag.substr(0, dot), v.major) || !readNumber(rest.substr(0, minor_end), v.minor)) {
    return std::nullopt;
  }
  // After the minor: nothing, ".patch...", or a pre-release suffix such as "-dev".
  if (minor_end != std::string_view::npos && rest[minor_end] != '.' && rest[minor_end] != '-') return std::nullopt;
  v.tag = std::string(tag);
  return v;
}

bool recordsExpiryOnReload(const IstiodVersion& version) {
  return version.major > 1 || (version.major == 1 && version.minor >= 24);
}

Result<IstiodMetrics> readIstiodMetrics(std::string_view page) {
  IstiodMetrics m;
  ASSIGN_OR_RETURN(m.chain_expiry, gaugeSeconds(page, kIstiodChainExpiryMetric));
  ASSIGN_OR_RETURN(m.root_expiry, gaugeSeconds(page, kIstiodRootExpiryMetric));
  ASSIGN_OR_RETURN(std::optional<PromSample> build, findMetricSample(page, kIstiodBuildMetric, {{"component", "pilot"}}));
  if (build) {
    const auto tag = build->labels.find("tag");
    if (tag != build->labels.end()) m.version = parseIstioTag(tag->second);
  }
  return m;
}

std::string_view toString(ReloadVerdict verdict) {
  switch (verdict) {
    case ReloadVerdict::kPending: return "pending";
    case ReloadVerdict::kConfirmed: return "confirmed";
    case ReloadVerdict::kUnverified: return "unverified";
    case ReloadVerdict::kUnsupported: return "unsupported";
    case ReloadVerdict::kNotConfirmed: return "not_confirmed";
    case ReloadVerdict::kRefused: return "refused";
  }
  return "unknown";
}

ReloadJudgement judgeReload(const ReloadExpectation& expect, const std::optional<IstiodMetrics>& seen,
                            bool at_deadline) {
  if (!expect.chain_changed && !expect.first_root_not_after) {
    return {ReloadVerdict::kUnverified,
            "the ca-cert's notAfter and the first root are unchanged: istiod's gauges cannot show this reload"};
  }
  const std::int64_t want_chain = epochSecondsOf(expect.chain_not_after);
  // A plain value and a flag: an optional here trips GCC 12's -Wmaybe-uninitialized at -O2.
  const bool root_evidence = expect.first_root_not_after.has_value();
  const std::int64_t want_root = root_evidence ? epochSecondsOf(*expect.first_root_not_after) : 0;
  if (seen) {
    const bool chain_ok = !expect.chain_changed || seen->chain_expiry == want_chain;
    // istiod loads a set all or nothing, so a changed chain shown is proof enough when the
    // page has no root gauge; a root gauge that is there must agree.
    const bool root_ok =
        !root_evidence || seen->root_expiry == want_root || (expect.chain_changed && !seen->root_expiry);
    if (chain_ok && root_ok) return {ReloadVerdict::kConfirmed, ""};
  }
  if (!at_deadline) return {ReloadVerdict::kPending, ""};
  if (!seen) return {ReloadVerdict::kNotConfirmed, "istiod's metrics could not be read"};

  std::string shown = std::string(kIstiodChainExpiryMetric) + "=" + seconds(seen->chain_expiry) + " (expected " +
                      (expect.chain_changed ? std::to_string(want_chain) : std::string("any")) + "), " +
                      std::string(kIstiodRootExpiryMetric) + "=" + seconds(seen->root_expiry) + " (expected " +
                      (root_evidence ? std::to_string(want_root) : std::string("any")) + ")";
  if (seen->version && !recordsExpiryOnReload(*seen->version)) {
    return {ReloadVerdict::kUnsupported, "istiod " + seen->version->tag +
                                             " records its expiry gauges only at startup (1.24+ on every reload); " +
                                             shown};
  }
  // The root gauge showing the new first root would mean istiod took the roots.
  const bool roots_loaded = root_evidence && seen->root_expiry == want_root;
  if (expect.roots_changed && expect.chain_changed && seen->chain_expiry && !roots_loaded) {
    return {ReloadVerdict::kRefused, "a new ca-cert published after a root change istiod never confirmed was not "
                                     "loaded: " + shown};
  }
  return {ReloadVerdict::kNotConfirmed, shown};
}

}  // namespace cacerts
