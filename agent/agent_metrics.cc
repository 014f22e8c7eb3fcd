#include "agent/agent_metrics.h"

#include <string>

namespace cacerts {

void registerAgentMetrics(Metrics& metrics, std::string_view version) {
  metrics.gauge(kMetricCaCertExpiry, "notAfter of the published ca-cert.pem, in seconds since the epoch.");
  metrics.gauge(kMetricRootCertExpiry,
                "notAfter of the earliest-expiring root in the published root-cert.pem, in seconds since the epoch.");
  metrics.gauge(kMetricCrlNextUpdate,
                "nextUpdate of the earliest-expiring CRL in the published ca-crl.pem, in seconds since the epoch "
                "(absent without --kv-crl); after it Envoy rejects the chain's peers until a fresh CRL is published.");
  metrics.gauge(kMetricNextRenewal, "When the next renewal is scheduled, in seconds since the epoch.");
  metrics.gauge(kMetricLastSuccess, "When the last renewal or adoption succeeded, in seconds since the epoch.");
  metrics.counter(kMetricRotations, "Renewal attempts by result.");
  metrics.counter(kMetricVaultRequests, "Vault requests by operation and HTTP status code.");
  metrics.gauge(kMetricReloadConfirmed,
                "1 when istiod's metrics proved it loaded the last publish, 0 when they did not (see "
                "cacerts_agent_istiod_reload_verdict for why).");
  metrics.gauge(kMetricRootRotationPhase,
                "Root rotation phase: 0 when none is in progress, 1 old and new roots published, "
                "2 signing from the new root, 3 old root retired.");
  metrics.gauge(kMetricRootChangeBlocked,
                "1 while Vault's roots differ from the published ones and the change is refused "
                "(needs --istiod-multiroot with ISTIO_MULTIROOT_MESH=true, or an istiod restart).");
  metrics.gauge(kMetricReloadVerdict,
                "1 on the verdict of the last publish's reload confirmation (confirmed, unverified: a change istiod "
                "shows no evidence of, unsupported: istiod < 1.24, not_confirmed, refused), 0 on the others.");
  metrics.gauge(kMetricUnconfirmedPublishes,
                "Publishes in a row whose reload istiod did not confirm (verdict not_confirmed or refused).");
  metrics.gauge(kMetricIstiodRootChangeRefused,
                "1 once istiod refused a root change (ISTIO_MULTIROOT_MESH off on istiod while the agent runs with "
                "--istiod-multiroot): root changes stay blocked until the agent restarts.");
  metrics.gauge(kMetricConsecutiveFailures, "Renewal attempts that failed in a row since the last success.");
  metrics.gauge(kMetricMigrationPhase,
                "Migration from the mesh's old CA (--migrate-from): 1 old CA signs with both roots trusted, 2 Vault "
                "signs with both roots, 3 old root retired. Absent without a migration.");
  metrics.gauge(kMetricMigrationSwitch,
                "The migration's --migrate-switch-at, in seconds since the epoch; every replica must report the same.");
  metrics.gauge(kMetricBuildInfo, "Build information; the value is always 1.");
  metrics.setGauge(kMetricBuildInfo, {{"version", std::string(version)}}, 1.0);
}

}  // namespace cacerts
