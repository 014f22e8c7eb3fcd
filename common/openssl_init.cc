#include "common/openssl_init.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <cstdint>

namespace cacerts {

bool initOpenSsl() {
  constexpr uint64_t kLean =
      OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_LOAD_SSL_STRINGS;
  return OPENSSL_init_crypto(kLean, nullptr) == 1 && OPENSSL_init_ssl(kLean, nullptr) == 1;
}

namespace {

// Priority 101 (the first one not reserved for the implementation) runs before every
// default-priority static initialiser of the same binary; a shared libcpp-httplib has
// initialised OpenSSL before any of the executable's code runs, so this only helps the
// static build, where it matters (the image).
__attribute__((constructor(101))) void initOpenSslEarly() { (void)initOpenSsl(); }

}  // namespace
}  // namespace cacerts
