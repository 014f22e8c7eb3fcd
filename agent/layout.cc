#include "agent/layout.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "common/x509.h"

namespace cacerts {

LayoutNames layoutNames(Layout layout) {
  if (layout == Layout::kTls) return {"tls.crt", "tls.key", "", "ca.crt"};
  return {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"};
}

std::vector<std::string> allLayoutNames() {
  return {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem", "tls.crt", "tls.key", "ca.crt"};
}

std::vector<OutputFile> filesFor(const ValidatedBundle& b, Layout layout, unsigned key_mode,
                                 std::string& tls_crt_storage) {
  const LayoutNames n = layoutNames(layout);
  const auto kmode = static_cast<mode_t>(key_mode);
  if (layout == Layout::kTls) {
    // tls.crt carries the signing cert and any intermediates; istiod appends ca.crt itself.
    tls_crt_storage.clear();
    Result<std::vector<Certificate>> chain = parseCertificates(b.cert_chain_pem, "cert-chain");
    if (chain) {
      for (const auto& c : *chain) {
        if (!c.info().self_signed) tls_crt_storage += c.pem();
      }
    }
    if (tls_crt_storage.empty()) tls_crt_storage = b.ca_cert_pem;
    return {{n.cert, tls_crt_storage, 0644}, {n.key, b.ca_key_pem.view(), kmode}, {n.root, b.root_cert_pem, 0644}};
  }
  return {{n.cert, b.ca_cert_pem, 0644},
          {n.key, b.ca_key_pem.view(), kmode},
          {n.chain, b.cert_chain_pem, 0644},
          {n.root, b.root_cert_pem, 0644}};
}

namespace {

Result<CaMaterial> materialFrom(const std::map<std::string, Secret>& files, const std::string& dir, std::string& layout) {
  const bool tls = files.count("tls.crt") != 0;
  layout = tls ? "tls" : "istio";
  const LayoutNames n = layoutNames(tls ? Layout::kTls : Layout::kIstio);
  bool any = false;
  std::string missing;
  for (const auto& name : {n.cert, n.key, n.chain, n.root}) {
    if (name.empty()) continue;
    if (files.count(name)) any = true;
    else missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!any) return Error{ErrorCode::kNotFound, "no CA files in " + dir};
  if (!missing.empty()) {
    return Error{ErrorCode::kValidation, "incomplete " + layout + " layout in " + dir + ": missing " + missing +
                                             " (istiod 1.26.1+ refuses to start with an incomplete bundle)"};
  }
  CaMaterial m;
  m.cert_pem = std::string(files.at(n.cert).view());
  m.key_pem = files.at(n.key);
  m.root_pem = std::string(files.at(n.root).view());
  if (!n.chain.empty()) m.chain_pem = std::string(files.at(n.chain).view());
  else m.chain_pem = m.cert_pem + m.root_pem;  // what istiod serves for the tls layout
  return m;
}

}  // namespace

Result<CaMaterial> readPublished(const AtomicDirWriter& writer, std::string& layout) {
  ASSIGN_OR_RETURN(auto files, writer.readCurrent(allLayoutNames()));
  return materialFrom(files, writer.dir(), layout);
}

Result<CaMaterial> readDirectory(const std::string& dir, std::string& layout) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error{ErrorCode::kOutput, dir + " is not a readable directory"};
  }
  std::map<std::string, Secret> files;
  for (const auto& name : allLayoutNames()) {
    std::ifstream in(dir + "/" + name, std::ios::binary);
    if (!in) continue;
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    files[name] = Secret::takeFrom(raw);
  }
  return materialFrom(files, dir, layout);
}

}  // namespace cacerts
