#include "tests/support/chain_verify.h"

#include <openssl/x509_vfy.h>

#include "common/openssl_ptr.h"

namespace cacerts::testing {

std::optional<std::string> verifyToRoots(const TestCert& leaf, const std::vector<TestCert>& untrusted,
                                         const std::vector<TestCert>& roots) {
  if (leaf.empty()) return "no certificate to verify";
  X509StorePtr store(X509_STORE_new());
  BorrowedX509StackPtr chain(sk_X509_new_null());  // entries stay owned by the TestCerts
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !chain || !ctx) return "out of memory";
  for (const TestCert& r : roots) {
    if (r.empty() || X509_STORE_add_cert(store.get(), r.x509.get()) != 1) {
      return "cannot add a root certificate to the trust store";
    }
  }
  for (const TestCert& c : untrusted) {
    if (c.empty() || sk_X509_push(chain.get(), c.x509.get()) <= 0) return "out of memory";
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.x509.get(), chain.get()) != 1) {
    return "cannot set up verification";
  }
  if (X509_verify_cert(ctx.get()) == 1) return std::nullopt;
  const int err = X509_STORE_CTX_get_error(ctx.get());
  return std::string(X509_verify_cert_error_string(err)) + " at depth " +
         std::to_string(X509_STORE_CTX_get_error_depth(ctx.get()));
}

}  // namespace cacerts::testing
