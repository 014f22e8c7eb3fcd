#include "agent/init_mode.h"

#include <spdlog/spdlog.h>

#include "agent/publisher.h"
#include "agent/vault_session.h"
#include "common/x509.h"

namespace cacerts {
namespace {

Result<PublishOutcome> loadAndPublish(const Config& config, VaultSession& vault, AtomicDirWriter& writer,
                                      Clock& clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<CaSource> source, makeSource(config, *vault.client, clock));
  ASSIGN_OR_RETURN(CaMaterial material, source->load());
  // Only now: Vault calls can take up to --timeout, and the lock is for writing.
  ASSIGN_OR_RETURN(DirLock lock, lockOutputDir(writer, "init", clock));
  return validateAndPublish(material, writer, config, clock.now());
}

Result<PublishOutcome> initOnce(const Config& config, Clock& clock, Random& random) {
  AtomicDirWriter writer(config.dir);
  RETURN_IF_ERROR(prepareOutputDir(config, writer));
  ASSIGN_OR_RETURN(VaultSession vault, openVaultSession(config, clock, random));
  vault.client->setRetryDeadline(clock.now() + config.timeout);
  Result<PublishOutcome> published = loadAndPublish(config, vault, writer, clock);
  // Published or failed, init is done with Vault: a login token left behind would live on
  // for its TTL, one per pod start (a token the user supplied is left alone).
  (void)vault.client->revokeToken();
  vault.transport->releaseConnection();
  return published;
}

}  // namespace

int runInit(const Config& config, Clock& clock, Random& random) {
  Result<PublishOutcome> r = initOnce(config, clock, random);
  if (!r) {
    spdlog::error("event=init_failed code={} exit_code={} error=\"{}\"", toString(r.error().code),
                  exitCodeFor(r.error().code), r.error().message);
    return exitCodeFor(r.error().code);
  }
  const CertInfo& ca = r->ca_cert;
  spdlog::info("event=published dir={} layout={} generation={} changed={} subject=\"{}\" serial={} not_after={} "
               "sha256={} roots={}",
               config.dir, toString(config.layout), r->result.generation, r->result.changed, ca.subject, ca.serial_hex,
               formatTime(ca.not_after), ca.sha256_fingerprint, r->roots.size());
  return 0;
}

}  // namespace cacerts
