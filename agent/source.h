// CaSource: where candidate CA material comes from (Vault KV or Vault PKI). A source only
// fetches; validation and publishing happen in the caller, so a source can never put
// unchecked material on disk.
#pragma once

#include <string>

#include "agent/ca_bundle.h"
#include "common/result.h"

namespace cacerts {

class CaSource {
 public:
  virtual ~CaSource() = default;
  // Returns a complete candidate, or an error naming the Vault path/field at fault.
  virtual Result<CaMaterial> load() = 0;
  // "kv secret/data/istio/cacerts" — for logs.
  virtual std::string describe() const = 0;
};

}  // namespace cacerts
