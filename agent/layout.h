// The file sets istiod reads, and how a validated bundle maps onto them.
//
// istio layout: ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem.
// tls layout (istiod 1.15+): tls.crt (signing cert + intermediates), tls.key, ca.crt (roots).
// Exactly one layout is ever present: istiod picks tls whenever tls.crt exists, so a
// stale tls.crt would silently hide the .pem files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/ca_bundle.h"
#include "common/atomic_writer.h"

namespace cacerts {

enum class Layout { kIstio, kTls };

// Optional CRL file of the istio layout (istiod 1.27+; the tls layout has none).
inline constexpr const char* kCrlFile = "ca-crl.pem";

struct LayoutNames {
  std::string cert, key, chain, root;  // chain is empty for the tls layout
};

LayoutNames layoutNames(Layout layout);
// The spelling of --layout: "istio" or "tls".
std::string_view toString(Layout layout);

// All top-level names of both layouts (used to detect which one a directory holds).
std::vector<std::string> allLayoutNames();

// The PEM text of a bundle's certificate files, serialised once at writing time.
struct BundleText {
  std::string cert;   // ca-cert alone (istio layout); ca-cert and intermediates (tls.crt)
  std::string chain;  // the verified path ca-cert..root (istio layout only)
  std::string root;   // bundle.root_file, or the canonical PEM of bundle.roots
  std::string crl;    // the CRLs (istio layout only); no ca-crl.pem when empty
};

// Files to publish for a validated bundle, serialised from its typed objects into `text`;
// ca-crl.pem only when the bundle carries CRLs (istio layout).
// The files view into `text` and into `bundle` (the key): keep both alive and in place
// while publishing. The key file gets key_mode, every other file 0644.
std::vector<OutputFile> filesFor(const ValidatedBundle& bundle, Layout layout, unsigned key_mode, BundleText& text);

// Reads whichever layout a published directory holds back into CaMaterial (for check and
// for the sidecar adopting an existing generation). Sets the layout found.
// Errors: kNotFound when nothing is published; kValidation when files are missing.
Result<CaMaterial> readPublished(const AtomicDirWriter& writer, Layout& layout);
// Same, for a plain directory that may not have been written by the agent (check mode).
Result<CaMaterial> readDirectory(const std::string& dir, Layout& layout);

}  // namespace cacerts
