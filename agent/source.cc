#include "agent/source.h"

#include "common/x509.h"

namespace cacerts {

Result<TrustSet> CaSource::trustSet() {
  ASSIGN_OR_RETURN(CaMaterial m, load());
  TrustSet out;
  ASSIGN_OR_RETURN(out.roots, declaredRoots(m));
  out.schedule = m.schedule;
  return out;
}

Result<std::vector<Certificate>> declaredRoots(const CaMaterial& m) {
  if (!m.root_pem.empty()) return parseCertificates(m.root_pem, m.names.root);
  const bool chain = !m.chain_pem.empty();
  ASSIGN_OR_RETURN(std::vector<Certificate> certs,
                   parseCertificates(chain ? m.chain_pem : m.cert_pem, chain ? m.names.chain : m.names.cert));
  return std::vector<Certificate>{certs.back()};
}

}  // namespace cacerts
