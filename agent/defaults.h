// The default of every option that more than one struct carries, written once. Config's
// initialisers use these, and so do the policy structs the modes fill from a Config
// (RenewalPolicy, RootPolicy, RotatorSettings, ReloadConfirmOptions, ValidationOptions), so
// a test that builds such a struct directly gets the same value a user gets.
#pragma once

#include <chrono>

#include "common/clock.h"

namespace cacerts::defaults {

inline constexpr Duration kTimeout = std::chrono::minutes(5);             // --timeout
inline constexpr Duration kMinRemaining = std::chrono::hours(24);         // --min-remaining
inline constexpr Duration kPkiTtl = std::chrono::hours(720);              // --ttl
inline constexpr Duration kRenewBefore = std::chrono::hours(24 * 7);      // --renew-before
inline constexpr double kRenewFraction = 0.66;                            // --renew-fraction
inline constexpr double kJitter = 0.05;                                   // --jitter
inline constexpr Duration kRetryInitial = std::chrono::seconds(5);        // --retry-initial
inline constexpr Duration kRetryMax = std::chrono::minutes(5);            // --retry-max
inline constexpr Duration kKvPollInterval = std::chrono::minutes(5);      // --kv-poll-interval
inline constexpr Duration kPkiPollInterval = std::chrono::minutes(5);     // --pki-poll-interval
inline constexpr Duration kConfirmTimeout = std::chrono::seconds(10);     // --confirm-timeout
inline constexpr Duration kRotateMinInterval = std::chrono::seconds(10);  // --rotate-min-interval
inline constexpr Duration kRootPropagation = std::chrono::hours(24);      // --root-propagation
inline constexpr Duration kRootRetire = std::chrono::hours(24);           // --root-retire
// --istio-version: the istiod whose rules are applied; the newest release this agent knows.
inline constexpr int kIstioMinor = 31;
inline constexpr int kOldestIstioMinor = 20;
inline constexpr const char* kIstiodMetricsUrl = "http://127.0.0.1:15014/metrics";  // --istiod-metrics-url

}  // namespace cacerts::defaults
