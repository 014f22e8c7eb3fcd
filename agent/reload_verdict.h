// The verdict on one publish: did istiod's own metrics prove that it loaded the set?
// Pure functions over what one scrape of istiod's metrics page showed and what the publish
// changed; the Rotator schedules the scrapes and acts on the verdict.
//
// What istiod exposes (docs: istio-cacerts.md §4.4, §7.6; field-findings.md "istiod"):
//   citadel_server_cert_chain_expiry_timestamp  notAfter of the first certificate of
//                                               cert-chain.pem (our ca-cert.pem)
//   citadel_server_root_cert_expiry_timestamp   notAfter of the FIRST certificate of
//                                               root-cert.pem
//   istio_build{component="pilot",tag="1.24.3"} istiod's version
// Both expiry gauges are recorded at startup in every version, and on a reload only from
// 1.24.0: before that they prove nothing about a reload.
//
// istiod loads a set all or nothing (a refused root change loads no part of it), so a
// confirmed intermediate proves the whole set, roots included, was loaded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace cacerts {

inline constexpr std::string_view kIstiodChainExpiryMetric = "citadel_server_cert_chain_expiry_timestamp";
inline constexpr std::string_view kIstiodRootExpiryMetric = "citadel_server_root_cert_expiry_timestamp";
inline constexpr std::string_view kIstiodBuildMetric = "istio_build";

struct IstiodVersion {
  int major = 0;
  int minor = 0;
  std::string tag;  // as istiod reports it, e.g. "1.23.2"; for the log line
};

// What one scrape showed. Expiry values are whole seconds since the epoch (the gauges are
// rounded to the nearest second; X.509 times have no fractions).
struct IstiodMetrics {
  std::optional<std::int64_t> chain_expiry;
  std::optional<std::int64_t> root_expiry;
  std::optional<IstiodVersion> version;  // absent: no pilot istio_build sample, or an unparseable tag
};

// Reads the three facts from a metrics page. kInvalidArgument when the page is not a
// Prometheus text exposition (the message names the line number, never its text); a
// missing metric is just absent.
Result<IstiodMetrics> readIstiodMetrics(std::string_view page);

// "1.23.2", "1.24.0-beta.1", "1.25-dev" -> {1, 23}; nullopt for anything else.
std::optional<IstiodVersion> parseIstioTag(std::string_view tag);

// True when istiod re-records its expiry gauges on every reload (1.24 and later).
bool recordsExpiryOnReload(const IstiodVersion& version);

// What one publish changed, relative to the set published before it and to the roots
// istiod last proved it holds.
struct ReloadExpectation {
  SystemTime chain_not_after;  // the published ca-cert's notAfter
  // The published ca-cert's notAfter differs (in whole seconds) from the previous one's:
  // only then can the chain gauge tell the two sets apart.
  bool chain_changed = true;
  // Set when the first root's notAfter differs from the previous set's first root: the
  // root gauge can then prove the new root file was loaded.
  std::optional<SystemTime> first_root_not_after;
  // The root file differs from the one istiod last proved it holds (a root change istiod
  // has not confirmed yet).
  bool roots_changed = false;
};

enum class ReloadVerdict {
  kPending,       // no proof yet, deadline not reached: scrape again
  kConfirmed,     // the gauges show the published set
  kUnverified,    // a change istiod exposes no evidence of (roots appended behind the first)
  kUnsupported,   // istiod < 1.24 records its gauges only at startup: nothing to prove with
  kNotConfirmed,  // deadline reached without proof
  kRefused,       // an intermediate after an unconfirmed root change was not loaded: istiod
                  // refused the root change and ignores every reload until the roots it
                  // holds come back (ISTIO_MULTIROOT_MESH off)
};
std::string_view toString(ReloadVerdict verdict);

struct ReloadJudgement {
  ReloadVerdict verdict = ReloadVerdict::kPending;
  std::string reason;  // for the log line; names values and metrics, never certificate text
};

// Confirmed when the chain gauge shows a changed ca-cert's notAfter and the root gauge a
// changed first root's (a page without the root gauge: the chain alone, as istiod loads
// all or nothing). `seen`: the last successful scrape of this confirmation, if any. `at_deadline`: no
// further scrape will be made. Decides without any scrape for a change with no evidence.
ReloadJudgement judgeReload(const ReloadExpectation& expect, const std::optional<IstiodMetrics>& seen,
                            bool at_deadline);

}  // namespace cacerts
