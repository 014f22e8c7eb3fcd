// PEM bundle splitting and parsing: certificates (ca-cert, cert-chain, root-cert, Vault's
// certificate fields) and private keys (ca-key), plus the facts read from what parsed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/x509.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cacerts;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  Result<std::vector<Certificate>> certs = parseCertificates(text, "fuzz input");
  if (certs) {
    if (certs->empty()) std::abort();
    for (const Certificate& c : *certs) {
      const CertInfo info = c.info();
      (void)info;
      // Canonical PEM must parse back to the same certificate.
      Result<Certificate> again = parseCertificate(c.pem(), "canonical pem");
      if (!again || !again->sameAs(c)) std::abort();
    }
    const std::vector<Certificate> rest(certs->begin() + 1, certs->end());
    (void)verifyChain(certs->front(), rest, {certs->back()}, std::chrono::system_clock::now());
    if (toPem(*certs).empty()) std::abort();
  }

  Result<PrivateKey> key = parsePrivateKey(Secret(text), "fuzz input");
  if (key) {
    if (key->description().empty()) std::abort();
    // PKCS#8 re-encoding must parse back.
    if (!parsePrivateKey(key->pkcs8Pem(), "pkcs8 re-encoding")) std::abort();
    if (certs) (void)keyMatchesCertificate(*key, certs->front());
  }
  return 0;
}
