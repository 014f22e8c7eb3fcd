#include "agent/layout.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>

#include "common/x509.h"

namespace cacerts {

LayoutNames layoutNames(Layout layout) {
  if (layout == Layout::kTls) return {"tls.crt", "tls.key", "", "ca.crt"};
  return {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"};
}

std::string_view toString(Layout layout) { return layout == Layout::kTls ? "tls" : "istio"; }

std::vector<std::string> allLayoutNames() {
  return {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem", kCrlFile, "tls.crt", "tls.key", "ca.crt"};
}

std::vector<OutputFile> filesFor(const ValidatedBundle& b, Layout layout, unsigned key_mode, BundleText& text) {
  const LayoutNames n = layoutNames(layout);
  const auto kmode = static_cast<mode_t>(key_mode);
  text.root = b.rootPem();
  if (layout == Layout::kTls) {
    // tls.crt carries the signing cert and any intermediates; istiod appends ca.crt itself.
    text.cert.clear();
    for (const Certificate& c : b.path) {
      if (!c.info().self_signed) text.cert += c.pem();
    }
    if (text.cert.empty()) text.cert = b.caCert().pem();
    text.chain.clear();
    return {{n.cert, text.cert, 0644}, {n.key, b.key_pem.view(), kmode}, {n.root, text.root, 0644}};
  }
  text.cert = b.caCert().pem();
  text.chain = toPem(b.path);
  std::vector<OutputFile> files = {{n.cert, text.cert, 0644},
                                   {n.key, b.key_pem.view(), kmode},
                                   {n.chain, text.chain, 0644},
                                   {n.root, text.root, 0644}};
  text.crl = toPem(b.crls);
  if (!text.crl.empty()) files.push_back({kCrlFile, text.crl, 0644});
  return files;
}

namespace {

Result<CaMaterial> materialFrom(const std::map<std::string, Secret>& files, const std::string& dir, Layout& layout) {
  const bool tls = files.count("tls.crt") != 0;
  layout = tls ? Layout::kTls : Layout::kIstio;
  const LayoutNames n = layoutNames(layout);
  bool any = false;
  std::string missing;
  for (const auto& name : {n.cert, n.key, n.chain, n.root}) {
    if (name.empty()) continue;
    if (files.count(name)) any = true;
    else missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!any) return Error{ErrorCode::kNotFound, "no CA files in " + dir};
  if (!missing.empty()) {
    return Error{ErrorCode::kValidation, "incomplete " + std::string(toString(layout)) + " layout in " + dir + ": missing " + missing +
                                             " (istiod 1.26.1+ refuses to start with an incomplete bundle)"};
  }
  CaMaterial m;
  m.cert_pem = std::string(files.at(n.cert).view());
  m.key_pem = files.at(n.key);
  m.root_pem = std::string(files.at(n.root).view());
  if (!n.chain.empty()) m.chain_pem = std::string(files.at(n.chain).view());
  else m.chain_pem = m.cert_pem + m.root_pem;  // what istiod serves for the tls layout
  // istiod looks for ca-crl.pem only next to the *.pem files.
  if (!tls && files.count(kCrlFile) != 0) m.crl_pem = std::string(files.at(kCrlFile).view());
  return m;
}

}  // namespace

Result<CaMaterial> readPublished(const AtomicDirWriter& writer, Layout& layout) {
  ASSIGN_OR_RETURN(auto files, writer.readCurrent(allLayoutNames()));
  return materialFrom(files, writer.dir(), layout);
}

Result<CaMaterial> readDirectory(const std::string& dir, Layout& layout) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error{ErrorCode::kOutput, dir + " is not a readable directory"};
  }
  // Any directory may be checked: a FIFO, a link to /dev/zero or a huge file at one of
  // the names must end the check with a message, not hang it or exhaust memory.
  std::map<std::string, Secret> files;
  for (const auto& name : allLayoutNames()) {
    const std::string path = dir + "/" + name;
    ASSIGN_OR_RETURN(std::optional<Secret> content, readBoundedFile(AT_FDCWD, path, path));
    if (content) files[name] = std::move(*content);
  }
  return materialFrom(files, dir, layout);
}

}  // namespace cacerts
