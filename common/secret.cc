#include "common/secret.h"

#include <openssl/crypto.h>

namespace cacerts {

void cleanseMemory(void* p, std::size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

bool Secret::operator==(const Secret& other) const {
  if (bytes_.size() != other.bytes_.size()) return false;
  return CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

}  // namespace cacerts
