// The sidecar's metric families (issue "sidecar mode"), registered in one place so the
// names and help texts cannot drift between the code that sets them and the docs.
#pragma once

#include <chrono>
#include <string_view>

#include "common/clock.h"
#include "common/metrics.h"

namespace cacerts {

// Gauges, seconds since the epoch.
inline constexpr char kMetricCaCertExpiry[] = "cacerts_agent_ca_cert_expiry_timestamp_seconds";
inline constexpr char kMetricRootCertExpiry[] = "cacerts_agent_root_cert_expiry_timestamp_seconds";
inline constexpr char kMetricCrlNextUpdate[] = "cacerts_agent_crl_next_update_timestamp_seconds";
inline constexpr char kMetricNextRenewal[] = "cacerts_agent_next_renewal_timestamp_seconds";
inline constexpr char kMetricLastSuccess[] = "cacerts_agent_last_success_timestamp_seconds";
// Counters: {result} and {operation,code}.
inline constexpr char kMetricRotations[] = "cacerts_agent_rotations_total";
inline constexpr char kMetricVaultRequests[] = "cacerts_agent_vault_requests_total";
// Gauges: 1/0 flags and the root rotation phase (0 = none, 1..3 as in the docs).
inline constexpr char kMetricReloadConfirmed[] = "cacerts_agent_istiod_reload_confirmed";
inline constexpr char kMetricRootRotationPhase[] = "cacerts_agent_root_rotation_phase";
inline constexpr char kMetricRootChangeBlocked[] = "cacerts_agent_root_change_blocked";
inline constexpr char kMetricBuildInfo[] = "cacerts_agent_build_info";
// Reload confirmation (reload_verdict.h): the last publish's verdict as a 1 on its
// {verdict} (0 on the others), publishes in a row whose verdict was not_confirmed or
// refused, and 1 once istiod refused a root change (ISTIO_MULTIROOT_MESH off).
inline constexpr char kMetricReloadVerdict[] = "cacerts_agent_istiod_reload_verdict";
inline constexpr char kMetricUnconfirmedPublishes[] = "cacerts_agent_istiod_unconfirmed_publishes";
inline constexpr char kMetricIstiodRootChangeRefused[] = "cacerts_agent_istiod_root_change_refused";
// Gauge: renewal attempts failed in a row since the last success (0 after one).
inline constexpr char kMetricConsecutiveFailures[] = "cacerts_agent_consecutive_failures";
// Gauges of a migration from the mesh's old CA (migration_source.h), absent without one:
// the phase (1 trust both, 2 Vault signs, 3 old root retired) at the scrape, and the switch
// instant in seconds since the epoch, so that replicas reading different instants show.
inline constexpr char kMetricMigrationPhase[] = "cacerts_agent_migration_phase";
inline constexpr char kMetricMigrationSwitch[] = "cacerts_agent_migration_switch_timestamp_seconds";

// A timestamp gauge's value: whole seconds since the epoch.
inline double epochSeconds(SystemTime t) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

// Registers every family above with its help text and sets build_info{version} to 1.
void registerAgentMetrics(Metrics& metrics, std::string_view version);

}  // namespace cacerts
