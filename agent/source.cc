#include "agent/source.h"

#include "common/x509.h"

namespace cacerts {

Result<std::vector<Certificate>> declaredRoots(const CaMaterial& m) {
  if (!m.root_pem.empty()) return parseCertificates(m.root_pem, m.names.root);
  const bool chain = !m.chain_pem.empty();
  ASSIGN_OR_RETURN(std::vector<Certificate> certs,
                   parseCertificates(chain ? m.chain_pem : m.cert_pem, chain ? m.names.chain : m.names.cert));
  return std::vector<Certificate>{certs.back()};
}

}  // namespace cacerts
