// CaSource: where candidate CA material comes from (Vault KV or Vault PKI). A source only
// fetches; validation and publishing happen in the caller, so a source can never put
// unchecked material on disk.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/ca_bundle.h"
#include "common/result.h"

namespace cacerts {

// The source's trust bundle, oldest root first, and its plan for the signing root.
struct TrustSet {
  std::vector<Certificate> roots;
  std::optional<RootSchedule> schedule;
};

class CaSource {
 public:
  virtual ~CaSource() = default;
  // Returns a complete candidate, or an error naming the Vault path/field at fault.
  virtual Result<CaMaterial> load() = 0;
  // "kv secret/data/istio/cacerts" — for logs.
  virtual std::string describe() const = 0;
  // The sidecar's cheap check between renewals; it issues nothing and reads no key. The
  // stamp changes whenever Vault's side changed in a way load() would reflect (KV v2: the
  // secrets' current versions; PKI: the mount's trust set). nullopt: this source has no
  // cheap check, callers load() and compare instead. Errors as for load().
  virtual Result<std::optional<std::string>> changeStamp() { return std::optional<std::string>(); }
  // The trust bundle as load() would return it, read without issuing anything (no default:
  // a wrapper that forgot to forward it must not fall back to a load() that signs).
  virtual Result<TrustSet> trustSet() = 0;
};

// The roots `m` declares, as assembleAndValidate reads them: root_pem, or else the last
// certificate of chain_pem (of cert_pem when there is no chain). Parsed only: whether they
// anchor anything is validation's business. kValidation naming the input that does not parse.
Result<std::vector<Certificate>> declaredRoots(const CaMaterial& m);

}  // namespace cacerts
