// PKI secrets engine: issuers and keys in a mount, root generation and import, the
// default issuer, intermediate CSR generation, sign-intermediate with Vault's TTL clamping
// (mount max_lease_ttl, then the issuer's notAfter) and the read endpoints (vault-api.md §5).
//
// Certificates it signs carry what Vault's do: CA:TRUE (critical) with the path length,
// keyCertSign + cRLSign (critical), SKI/AKI, no EKU, notBefore backdated by not_before_duration
// (30 s); as Vault 1.21.1+, signing fails when that backdating reaches before the signer's notBefore.
// Simplifications: no CRLs, roles, leaf issuance, AIA URLs, name constraints or DER CSRs;
// the common name is not copied into the DNS SANs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/vault_server/engine.h"

namespace cacerts::testing {

class PkiEngine final : public Engine {
 public:
  std::string type() const override { return "pki"; }
  bool unauthenticated(const Call& call, const VaultBehaviour& behaviour) const override;
  Reply handle(const Call& call, EngineContext& ctx) override;

  // Test API, same semantics as the HTTP endpoints; the Reply carries the Vault answer.
  Reply generateRoot(const std::string& type, const json& params, EngineContext& ctx, SystemTime now);
  Reply importBundle(const std::string& pem_bundle, bool allow_keys);
  Reply setDefault(const json& params);
  // DELETE <mount>/issuer/<ref>: removes the issuer (its key stays). Deleting the default
  // issuer leaves the mount without one, with a warning, as Vault does.
  Reply deleteIssuer(const std::string& ref);
  // DELETE <mount>/key/<ref>: removes a stored key; 400 while an issuer uses it, as Vault.
  Reply deleteKey(const std::string& ref);
  // Certificates this mount has signed (each stored, as Vault stores them before answering),
  // and keys it holds (generated, imported or left by intermediate/generate).
  std::size_t issuedCount() const { return issued_.size(); }
  std::size_t keyCount() const { return keys_.size(); }
  // Issuer by reference (id, name or "default"); key is empty for issuers without a key.
  std::optional<TestCa> issuer(const std::string& ref) const;

 private:
  struct Key {
    std::string id, name;
    TestKey key;
  };
  struct Issuer {
    std::string id, name, key_id;
    TestCert cert;
    std::string leaf_not_after_behavior = "err";
  };

  const Issuer* resolve(const std::string& ref) const;
  const Key* keyById(const std::string& id) const;
  std::vector<const Issuer*> chainOf(const Issuer& issuer) const;
  std::string addIssuer(const TestCert& cert, const std::string& name);
  std::string addKey(const TestKey& key, const std::string& name);

  Reply signIntermediate(const std::string& ref, const Call& call, EngineContext& ctx);
  Reply generateIntermediate(const std::string& type, const Call& call);
  Reply listIssuers() const;
  Reply issuerJson(const std::string& ref, bool full) const;
  Reply updateIssuer(const std::string& ref, const json& params);
  Reply readCa(const std::string& what) const;
  Reply configIssuers() const;
  json expiration(const TestCert& cert, const VaultBehaviour& b) const;

  std::vector<Key> keys_;
  std::vector<Issuer> issuers_;
  std::string default_issuer_;
  bool default_follows_latest_ = false;
  std::map<std::string, std::string> issued_;  // serial (colon hex) → PEM
};

}  // namespace cacerts::testing
