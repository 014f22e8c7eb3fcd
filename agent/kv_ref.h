// References to a field of a Vault KV secret, in the Bank-Vaults syntax:
//   [vault:]<path>#<field>[#<version>]      e.g. vault:secret/data/pki/istiod#certificate#3
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace cacerts {

struct KvRef {
  std::string path;   // as written, without "vault:" and without leading/trailing '/'
  std::string field;
  int version = 0;    // 0: current version
};

// Errors: kInvalidArgument naming the option (e.g. "--kv-cert") and the expected syntax.
Result<KvRef> parseKvRef(std::string_view text, std::string_view option);

}  // namespace cacerts
