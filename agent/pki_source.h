// PkiSource: a fresh intermediate signed by Vault's PKI engine.
//
// Default flow: the key is generated here, in memory, and only a CSR crosses the wire; the
// request body of the sign call never holds key material. Optional flow
// (--pki-generate-path): Vault's intermediate/generate/exported creates the key and
// returns it once — supported for compatibility, warned about.
//
// Before anything is signed (Vault stores every certificate it signs), load() reads the
// signing issuer and the trust bundle and refuses what the agent would reject afterwards:
// no self-signed issuer to trust, a signer that does not chain to the bundle, or a
// certificate that could not meet --min-remaining within the signer's and roots' notAfter.
// The trust bundle comes from --pki-root-mount (default: the signing mount), so the
// two-mount layout (root in pki, intermediate in pki_int without its root) works.
//
// The signing mount's max_lease_ttl caps --ttl, so it is checked before signing too: from
// sys/internal/ui/mounts/<mount> (any token that may sign there may read it) when the mount
// was tuned, else from sys/mounts/<mount>/tune (the system default applies; reading it needs
// a policy granting read there). When neither tells, the check after signing remains.
//
// Which issuer signs: with an explicit --pki-sign-path issuer reference, that one. With the
// default issuer (<mount>/root/sign-intermediate), the one root_plan.h chooses from the trust
// mount's roots, addressed explicitly as <mount>/issuer/<id>/sign-intermediate, so that a new
// root made the mount's default does not sign before every replica trusts it.
//
// Vault requests per load: LIST <root mount>/issuers and one <root mount>/issuer/<id>/json per
// issuer (two-mount layout: the same for the signing mount; an explicit reference or a
// forbidden LIST: GET <mount>/issuer/<ref>/json for the signer instead), GET
// sys/internal/ui/mounts/<mount> (+ GET sys/mounts/<mount>/tune for an untuned mount, until
// it is once denied), then sign (+ generate before it and DELETE <mount>/key/<key_id> after
// it in exported mode). The issuer reads are unauthenticated paths in Vault 1.11+.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/source.h"
#include "common/clock.h"
#include "common/vault_client.h"
#include "common/x509.h"

namespace cacerts {

// "<mount>/root/sign-intermediate" or "<mount>/issuer/<ref>/sign-intermediate" -> "<mount>".
// Errors: kInvalidArgument naming --pki-sign-path.
Result<std::string> pkiMountOf(const std::string& sign_path);

// Sorts roots oldest first (notBefore, then serial) and drops expired ones and duplicates:
// the byte-stable order of root-cert.pem.
// The issuer reference of a sign path: "default" for <mount>/root/sign-intermediate.
Result<std::string> pkiIssuerRefOf(const std::string& sign_path);

// Vault's default not_before_duration for sign-intermediate.
inline constexpr std::chrono::seconds kVaultDefaultBackdate{30};

std::vector<Certificate> orderTrustBundle(std::vector<Certificate> roots, SystemTime now);

class PkiSource final : public CaSource {
 public:
  PkiSource(VaultClient& vault, PkiSettings settings, Duration ttl, Duration min_remaining, Clock& clock)
      : vault_(vault), settings_(std::move(settings)), ttl_(ttl), min_remaining_(min_remaining), clock_(clock) {}
  Result<CaMaterial> load() override;
  std::string describe() const override { return "pki " + settings_.sign_path; }
  // The trust mount's roots, and with the default issuer the plan of root_plan.h.
  Result<TrustSet> trustSet() override;

 private:
  struct KeyAndCsr {
    Secret key_pem;
    std::string csr;
    std::string vault_key_id;  // exported mode: the copy Vault stored, to delete after signing
  };
  struct Signer {
    std::string id;                  // the issuer reference it was read by
    Certificate cert;
    std::vector<Certificate> chain;  // signer first, as its ca_chain
  };
  Result<CaMaterial> loadUnguarded();
  Result<std::string> rootMount() const;
  Result<Signer> readSigner(const std::string& mount, const std::string& ref);
  // Every issuer of mount (LIST, then one read each); nullopt when LIST is forbidden or
  // unknown (Vault before 1.11).
  Result<std::optional<std::vector<Signer>>> listIssuers(const std::string& mount);
  // The issuer of the signing mount that signs under `signing_root`: the root itself in
  // the one-mount layout, else the newest unexpired issuer that chains to it.
  Result<Signer> plannedSigner(const std::string& mount, const std::string& root_mount,
                               const std::vector<Signer>& root_issuers, const Certificate& signing_root);
  // The not_before_duration that Vault 1.21.1+ accepts for this signer (at most 30 s), or
  // the reason not to sign.
  Result<std::chrono::seconds> preflight(const Signer& signer, const std::vector<Certificate>& roots,
                                         const std::string& mount, const std::string& root_mount);
  // The max_lease_ttl Vault will cap --ttl at on mount; nullopt when Vault does not tell.
  Result<std::optional<Duration>> mountMaxTtl(const std::string& mount);
  // Best effort: a failed delete is warned about, never fatal.
  void deleteVaultKey(const std::string& key_id);
  Result<KeyAndCsr> keyAndCsr();
  // Unexpired self-signed CA issuers of mount. When LIST is forbidden (pre-1.11 Vault),
  // the self-signed end of `fallback_chain`.
  Result<std::vector<Certificate>> trustBundle(const std::string& mount, const std::vector<Certificate>& fallback_chain);
  // The self-signed CA certificates among issuers, ordered as orderTrustBundle.
  std::vector<Certificate> rootsOf(const std::vector<Signer>& issuers) const;

  VaultClient& vault_;
  PkiSettings settings_;
  Duration ttl_;
  Duration min_remaining_;
  Clock& clock_;
  bool warned_list_forbidden_ = false;
  bool tune_denied_ = false;  // asked once: a denial costs Vault a token check each time
};

// "istiod intermediate <POD_NAME or hostname>".
std::string defaultCommonName();

}  // namespace cacerts
