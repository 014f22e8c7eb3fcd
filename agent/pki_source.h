// PkiSource: a fresh intermediate signed by Vault's PKI engine.
//
// Default flow: the key is generated here, in memory, and only a CSR crosses the wire; the
// request body of the sign call never holds key material. Optional flow
// (--pki-generate-path): Vault's intermediate/generate/exported creates the key and
// returns it once — supported for compatibility, warned about.
//
// Vault requests per load: sign (+ generate in exported mode), LIST <mount>/issuers and one
// <mount>/issuer/<id>/json per issuer for the trust bundle; nothing else.
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
std::vector<Certificate> orderTrustBundle(std::vector<Certificate> roots, SystemTime now);

class PkiSource final : public CaSource {
 public:
  PkiSource(VaultClient& vault, PkiSettings settings, Duration ttl, Duration min_remaining, Clock& clock)
      : vault_(vault), settings_(std::move(settings)), ttl_(ttl), min_remaining_(min_remaining), clock_(clock) {}
  Result<CaMaterial> load() override;
  std::string describe() const override { return "pki " + settings_.sign_path; }
  // SHA-256 fingerprints of the mount's trusted roots (LIST issuers + one read per
  // issuer, nothing signed). nullopt when the issuers cannot be listed.
  Result<std::optional<std::string>> changeStamp() override;

 private:
  struct KeyAndCsr {
    Secret key_pem;
    std::string csr;
  };
  Result<CaMaterial> loadUnguarded();
  Result<std::optional<std::string>> changeStampUnguarded();
  Result<KeyAndCsr> keyAndCsr();
  Result<std::vector<Certificate>> trustBundle(const std::string& mount, const std::vector<Certificate>& returned);

  VaultClient& vault_;
  PkiSettings settings_;
  Duration ttl_;
  Duration min_remaining_;
  Clock& clock_;
  bool warned_list_forbidden_ = false;
};

// "istiod intermediate <POD_NAME or hostname>".
std::string defaultCommonName();

}  // namespace cacerts
