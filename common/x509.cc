#include "common/x509.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <optional>

namespace cacerts {

namespace {

// Drops whatever OpenSSL pushes onto its thread-local error queue while we work, so that
// a parse failure here never surfaces later inside an unrelated TLS call (httplib reads
// the queue after SSL errors).
class ErrorQueueScope {
 public:
  ErrorQueueScope() { ERR_set_mark(); }
  ~ErrorQueueScope() { ERR_pop_to_mark(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

// PEM readers call this instead of prompting on a terminal; it always refuses.
int refusePassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

Error validationError(std::string message) { return Error{ErrorCode::kValidation, std::move(message)}; }

std::string bioToString(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  if (mem == nullptr || mem->data == nullptr) return {};
  return std::string(mem->data, mem->length);
}

using Sha256 = std::array<unsigned char, 32>;

// ---------------------------------------------------------------------------------------
// PEM block scanning. OpenSSL's PEM reader skips arbitrary text between blocks; we want
// to refuse it (a stray JSON fragment or a truncated paste is a mistake worth reporting),
// so the structure is checked here and OpenSSL decodes one block at a time.

struct PemBlock {
  std::string_view label;
  std::string_view text;  // from "-----BEGIN" through the END line's closing dashes
  std::size_t line = 0;   // 1-based line of the BEGIN line
};

constexpr std::size_t kMaxPemBytes = 16 * 1024 * 1024;

bool isPemSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

std::size_t lineAt(std::string_view text, std::size_t pos) {
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

// Labels that we name in messages (anything else is "an unrecognised block"), so that a
// hostile label can never be echoed.
std::string describeLabel(std::string_view label) {
  static constexpr std::array<std::string_view, 12> kKnown = {
      "CERTIFICATE",        "TRUSTED CERTIFICATE", "X509 CERTIFICATE",      "CERTIFICATE REQUEST",
      "NEW CERTIFICATE REQUEST", "X509 CRL",       "PRIVATE KEY",           "RSA PRIVATE KEY",
      "EC PRIVATE KEY",     "ENCRYPTED PRIVATE KEY", "PUBLIC KEY",           "RSA PUBLIC KEY"};
  for (std::string_view known : kKnown) {
    if (label == known) return "a \"" + std::string(known) + "\" block";
  }
  return "an unrecognised PEM block";
}

Result<std::vector<PemBlock>> scanPem(std::string_view in, std::string_view what) {
  static constexpr std::string_view kBegin = "-----BEGIN ";
  static constexpr std::string_view kDashes = "-----";
  const std::string w(what);
  // Far above any real bundle; keeps every length within OpenSSL's int-sized APIs.
  if (in.size() > kMaxPemBytes) {
    return validationError(w + ": PEM text is larger than " + std::to_string(kMaxPemBytes / (1024 * 1024)) + " MiB");
  }
  std::vector<PemBlock> blocks;
  std::size_t pos = 0;
  while (true) {
    while (pos < in.size() && isPemSpace(in[pos])) ++pos;
    if (pos == in.size()) break;
    if (in.substr(pos, kBegin.size()) != kBegin) {
      return validationError(w + ": unexpected text outside PEM blocks at line " + std::to_string(lineAt(in, pos)) +
                             " (only -----BEGIN/-----END blocks separated by whitespace are accepted)");
    }
    const std::size_t block_start = pos;
    const std::size_t line = lineAt(in, pos);
    std::size_t eol = in.find('\n', pos);
    if (eol == std::string_view::npos) eol = in.size();
    std::string_view begin_line = in.substr(pos, eol - pos);
    while (!begin_line.empty() && isPemSpace(begin_line.back())) begin_line.remove_suffix(1);
    if (begin_line.size() <= kBegin.size() + kDashes.size() ||
        begin_line.substr(begin_line.size() - kDashes.size()) != kDashes) {
      return validationError(w + ": malformed BEGIN line at line " + std::to_string(line));
    }
    const std::string_view label =
        begin_line.substr(kBegin.size(), begin_line.size() - kBegin.size() - kDashes.size());
    if (label.empty() || std::any_of(label.begin(), label.end(), [](char c) {
          return c == '-' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e;
        })) {
      return validationError(w + ": malformed BEGIN line at line " + std::to_string(line));
    }
    const std::string end_marker = "-----END " + std::string(label) + "-----";
    const std::size_t body_start = std::min(eol + 1, in.size());
    const std::size_t end_pos = in.find(end_marker, body_start);
    if (end_pos == std::string_view::npos) {
      return validationError(w + ": PEM block " + std::to_string(blocks.size() + 1) + " starting at line " +
                             std::to_string(line) + " has no matching END line (truncated?)");
    }
    const std::string_view body = in.substr(body_start, end_pos - body_start);
    if (!std::all_of(body.begin(), body.end(), [](char c) { return isBase64Char(c) || isPemSpace(c); })) {
      return validationError(w + ": PEM block " + std::to_string(blocks.size() + 1) + " starting at line " +
                             std::to_string(line) +
                             " contains characters that are not base64 (PEM headers such as legacy "
                             "encryption are not supported)");
    }
    pos = end_pos + end_marker.size();
    if (pos < in.size() && !isPemSpace(in[pos])) {
      return validationError(w + ": unexpected text after the END line at line " + std::to_string(lineAt(in, pos)));
    }
    blocks.push_back(PemBlock{label, in.substr(block_start, pos - block_start), line});
  }
  if (blocks.empty()) return validationError(w + ": no PEM data (the value is empty)");
  return blocks;
}

// Decodes one already-scanned block to DER with OpenSSL's PEM reader.
Result<X509Ptr> decodeCertificateBlock(const PemBlock& block, std::size_t index, std::string_view what) {
  const std::string prefix = std::string(what) + ": PEM block " + std::to_string(index) + " (line " +
                             std::to_string(block.line) + ")";
  BioPtr bio(BIO_new_mem_buf(block.text.data(), static_cast<int>(block.text.size())));
  if (!bio) return Error{ErrorCode::kInternal, "out of memory reading " + std::string(what)};
  char* name_raw = nullptr;
  char* header_raw = nullptr;
  unsigned char* data_raw = nullptr;
  long len = 0;
  const int read = PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len);
  const OpenSslChars name(name_raw), header(header_raw);
  const OpenSslBytes data(data_raw);
  if (read != 1) return validationError(prefix + " is not valid base64");
  const unsigned char* p = data.get();
  X509Ptr cert(len > 0 ? d2i_X509(nullptr, &p, len) : nullptr);
  if (!cert) return validationError(prefix + " is not a valid X.509 certificate (its DER does not parse)");
  if (p != data.get() + len) return validationError(prefix + " has extra bytes after the certificate's DER");
  return cert;
}

// ---------------------------------------------------------------------------------------
// Facts

SystemTime systemTimeFromSeconds(long long secs) {
  using std::chrono::seconds;
  constexpr long long kMax = std::chrono::duration_cast<seconds>(SystemTime::duration::max()).count();
  constexpr long long kMin = std::chrono::duration_cast<seconds>(SystemTime::duration::min()).count() + 1;
  secs = std::clamp(secs, kMin, kMax);
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(seconds(secs)));
}

SystemTime fromAsn1Time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return SystemTime{};
  return systemTimeFromSeconds(static_cast<long long>(timegm(&tm)));
}

std::time_t toTimeT(SystemTime t) {
  return static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

std::string nameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  // RFC 2253 flags escape control characters and non-ASCII bytes, so the result is one
  // printable line that cannot forge log fields.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  return bioToString(bio.get());
}

std::string hexBytes(const unsigned char* data, std::size_t len, bool upper) {
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  const char* digits = upper ? kUpper : kLower;
  std::string out;
  for (std::size_t i = 0; i < len; ++i) {
    if (i > 0) out += ':';
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

std::string serialHex(X509* x) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  // A zero serial has no bytes; it prints as "00". (Sized once: GCC 12 misreports a
  // push_back onto the empty vector as a bad free when this is inlined.)
  const int n = BN_num_bytes(bn.get());
  std::vector<unsigned char> bytes(static_cast<std::size_t>(std::max(n, 1)), 0);
  if (n > 0) BN_bn2bin(bn.get(), bytes.data());
  return hexBytes(bytes.data(), bytes.size(), false);
}

std::string describeKey(const EVP_PKEY* key) {
  if (key == nullptr) return "unknown";
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "rsa-" + std::to_string(bits);
    case EVP_PKEY_RSA_PSS:  // RSA-PSS-only keys: Go cannot parse them in certificates
      return "rsa-pss-" + std::to_string(bits);
    case EVP_PKEY_EC: {
      std::array<char, 64> group{};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &len) != 1) {
        return "ec-explicit-parameters";
      }
      const std::string_view curve(group.data(), len);
      if (curve == "prime256v1" || curve == "P-256") return "ec-256";
      if (curve == "secp384r1" || curve == "P-384") return "ec-384";
      if (curve == "secp521r1" || curve == "P-521") return "ec-521";
      return "ec-" + std::string(curve);
    }
    case EVP_PKEY_ED25519:
      return "ed25519";
    case EVP_PKEY_ED448:
      return "ed448";
    case EVP_PKEY_DSA:
      return "dsa-" + std::to_string(bits);
    default:
      return "unknown";
  }
}

std::string objectName(const ASN1_OBJECT* obj) {
  const int nid = OBJ_obj2nid(obj);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  std::array<char, 128> buf{};
  const int n = OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), obj, 1);
  if (n <= 0) return "unknown";
  return std::string(buf.data(), std::min<std::size_t>(static_cast<std::size_t>(n), buf.size() - 1));
}

void collectSans(X509* x, CertInfo& info) {
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI && gn->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = gn->type == GEN_URI ? gn->d.uniformResourceIdentifier : gn->d.dNSName;
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<std::size_t>(ASN1_STRING_length(s)));
    // Printable ASCII only, so a SAN can be logged safely.
    for (char& c : value) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    }
    (gn->type == GEN_URI ? info.uri_sans : info.dns_sans).push_back(std::move(value));
  }
}

std::string toPemString(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x) != 1) return {};
  return bioToString(bio.get());
}

std::string hintFor(int error) {
  switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      return "; the chain does not lead to any certificate of the root bundle (missing intermediate, or the "
             "certificate was issued by a different root)";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "; the chain ends in a self-signed certificate that is not in the root bundle";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "; the certificate is self-signed but is not in the root bundle";
    case X509_V_ERR_INVALID_CA:
      return "; an issuing certificate lacks basicConstraints CA:TRUE";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "; check clock skew between the issuer and this node";
    default:
      return {};
  }
}

// RSA: the relations between n, e, d and the CRT values that Go's Validate checks, with
// plain big-number arithmetic (microseconds, where OpenSSL's pairwise check spends ~0.3 s
// testing the factors for primality). Keys without factors (d only) need d*e = 1 mod
// lambda(n), which cannot be checked without them; OpenSSL never writes such PEM.
bool rsaHalvesAgree(const EVP_PKEY* key) {
  auto get = [key](const char* name) {
    BIGNUM* raw_bn = nullptr;
    EVP_PKEY_get_bn_param(key, name, &raw_bn);
    return SecretBignumPtr(raw_bn);
  };
  const SecretBignumPtr n = get(OSSL_PKEY_PARAM_RSA_N), e = get(OSSL_PKEY_PARAM_RSA_E), d = get(OSSL_PKEY_PARAM_RSA_D),
                        p = get(OSSL_PKEY_PARAM_RSA_FACTOR1), q = get(OSSL_PKEY_PARAM_RSA_FACTOR2),
                        dp = get(OSSL_PKEY_PARAM_RSA_EXPONENT1), dq = get(OSSL_PKEY_PARAM_RSA_EXPONENT2),
                        qinv = get(OSSL_PKEY_PARAM_RSA_COEFFICIENT1);
  if (!n || !e || !d || !p || !q || !dp || !dq || !qinv) return false;
  const BnCtxPtr ctx(BN_CTX_secure_new());
  const SecretBignumPtr t(BN_secure_new()), p1(BN_secure_new()), q1(BN_secure_new()), de(BN_secure_new());
  if (!ctx || !t || !p1 || !q1 || !de) return false;
  if (BN_is_one(p.get()) || BN_is_one(q.get()) || BN_is_zero(p.get()) || BN_is_zero(q.get())) return false;
  auto equalsMod = [&](const BIGNUM* a, const BIGNUM* m, const BIGNUM* expected) {
    return BN_mod(t.get(), a, m, ctx.get()) == 1 && BN_cmp(t.get(), expected) == 0;
  };
  return BN_mul(t.get(), p.get(), q.get(), ctx.get()) == 1 && BN_cmp(t.get(), n.get()) == 0 &&
         BN_sub(p1.get(), p.get(), BN_value_one()) == 1 && BN_sub(q1.get(), q.get(), BN_value_one()) == 1 &&
         BN_mul(de.get(), d.get(), e.get(), ctx.get()) == 1 && equalsMod(de.get(), p1.get(), BN_value_one()) &&
         equalsMod(de.get(), q1.get(), BN_value_one()) && equalsMod(d.get(), p1.get(), dp.get()) &&
         equalsMod(d.get(), q1.get(), dq.get()) && BN_mod_mul(t.get(), qinv.get(), q.get(), p.get(), ctx.get()) == 1 &&
         BN_is_one(t.get());
}

// The cheap structural check of parsePrivateKey (see x509.h).
bool halvesAgree(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) return rsaHalvesAgree(key);
  // EC: the point is on the curve and equals scalar * G; a few scalar multiplications.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  return ctx && EVP_PKEY_pairwise_check(ctx.get()) == 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Certificate

namespace {
CertInfo describeCertificate(X509* x);
}  // namespace

Certificate Certificate::adopt(X509Ptr x) {
  // The facts are worked out once here; every copy shares them with the X509.
  CertInfo info = describeCertificate(x.get());
  return Certificate(std::make_shared<const Shared>(Shared{std::move(x), std::move(info)}));
}

Certificate Certificate::share(X509* x) {
  X509_up_ref(x);
  return adopt(X509Ptr(x));
}

namespace {

CertInfo describeCertificate(X509* x) {
  ErrorQueueScope errors;
  CertInfo info;
  info.subject = nameToString(X509_get_subject_name(x));
  info.issuer = nameToString(X509_get_issuer_name(x));
  info.serial_hex = serialHex(x);
  info.not_before = fromAsn1Time(X509_get0_notBefore(x));
  info.not_after = fromAsn1Time(X509_get0_notAfter(x));

  Sha256 md{};
  unsigned int md_len = 0;
  if (X509_digest(x, EVP_sha256(), md.data(), &md_len) == 1 && md_len == md.size()) {
    info.sha256_fingerprint = hexBytes(md.data(), md_len, true);
  }

  // X509_get_extension_flags also caches the parsed extensions (EXFLAG_INVALID on a
  // malformed one, in which case the flags below stay false).
  const uint32_t flags = X509_get_extension_flags(x);
  info.version = static_cast<int>(X509_get_version(x)) + 1;
  info.has_basic_constraints = (flags & EXFLAG_BCONS) != 0;
  info.is_ca = (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
  info.path_len = info.is_ca ? static_cast<int>(X509_get_pathlen(x)) : -1;
  info.has_key_usage = (flags & EXFLAG_KUSAGE) != 0;
  info.key_cert_sign = info.has_key_usage && (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) != 0;
  info.crl_sign = info.has_key_usage && (X509_get_key_usage(x) & KU_CRL_SIGN) != 0;

  int critical = 0;
  ExtendedKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, &critical, nullptr)));
  // critical == -1: absent; -2: present more than once; otherwise present.
  info.has_eku = critical != -1;
  if (eku) {
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      info.ext_key_usages.push_back(objectName(sk_ASN1_OBJECT_value(eku.get(), i)));
    }
  }

  info.self_signed = X509_self_signed(x, 1) == 1;
  info.key_description = describeKey(X509_get0_pubkey(x));

  const int sig_nid = X509_get_signature_nid(x);
  info.signature_algorithm = sig_nid == NID_undef ? "unknown" : OBJ_nid2ln(sig_nid);
  int md_nid = NID_undef;
  if (X509_get_signature_info(x, &md_nid, nullptr, nullptr, nullptr) == 1 && md_nid != NID_undef) {
    info.signature_digest = OBJ_nid2sn(md_nid);
  }
  collectSans(x, info);
  return info;
}

}  // namespace

std::string Certificate::pem() const { return toPemString(raw()); }

std::string Certificate::der() const {
  unsigned char* raw_der = nullptr;
  const int len = i2d_X509(raw(), &raw_der);
  const OpenSslBytes buf(raw_der);
  if (len <= 0) return {};
  return std::string(reinterpret_cast<const char*>(buf.get()), static_cast<std::size_t>(len));
}

bool Certificate::sameAs(const Certificate& other) const {
  if (raw() == nullptr || other.raw() == nullptr || raw() == other.raw()) return raw() == other.raw();
  // X509_cmp compares the cached SHA-1 of the DER: equal digests are confirmed byte for byte.
  return X509_cmp(raw(), other.raw()) == 0 && der() == other.der();
}

// ---------------------------------------------------------------------------------------
// PrivateKey

PrivateKey PrivateKey::adopt(EvpPkeyPtr k) { return PrivateKey(std::shared_ptr<EVP_PKEY>(k.release(), OpenSslFree{})); }

Secret PrivateKey::pkcs8Pem() const {
  ErrorQueueScope errors;
  // A secure-memory BIO clears its buffer whenever it is resized or freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return Secret();
  if (PEM_write_bio_PrivateKey(bio.get(), k_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) return Secret();
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio.get(), &mem);
  if (mem == nullptr || mem->data == nullptr) return Secret();
  Secret out(std::string_view(mem->data, mem->length));
  OPENSSL_cleanse(mem->data, mem->length);
  return out;
}

std::string PrivateKey::description() const { return describeKey(k_.get()); }

// ---------------------------------------------------------------------------------------
// Parsing

Result<std::vector<Certificate>> parseCertificates(std::string_view pem, std::string_view what) {
  ErrorQueueScope errors;
  ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, scanPem(pem, what));
  std::vector<Certificate> certs;
  certs.reserve(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const PemBlock& block = blocks[i];
    if (block.label != "CERTIFICATE") {
      std::string message = std::string(what) + ": PEM block " + std::to_string(i + 1) + " (line " +
                            std::to_string(block.line) + ") is " + describeLabel(block.label) +
                            ", expected only \"CERTIFICATE\" blocks";
      if (block.label.find("PRIVATE KEY") != std::string_view::npos) {
        message += " (a private key where a certificate belongs: are the certificate and key references swapped?)";
      }
      return validationError(std::move(message));
    }
    ASSIGN_OR_RETURN(X509Ptr x, decodeCertificateBlock(block, i + 1, what));
    certs.push_back(Certificate::adopt(std::move(x)));
  }
  return certs;
}

Result<Certificate> parseCertificate(std::string_view pem, std::string_view what) {
  ASSIGN_OR_RETURN(std::vector<Certificate> certs, parseCertificates(pem, what));
  if (certs.size() != 1) {
    return validationError(std::string(what) + ": expected exactly one certificate, found " +
                           std::to_string(certs.size()));
  }
  return std::move(certs.front());
}

Result<PrivateKey> parsePrivateKey(const Secret& pem, std::string_view what) {
  ErrorQueueScope errors;
  const std::string w(what);
  auto scanned = scanPem(pem.view(), what);
  if (!scanned) return scanned.error();
  const std::vector<PemBlock>& blocks = *scanned;
  if (blocks.size() != 1) {
    return validationError(w + ": expected exactly one private key PEM block, found " + std::to_string(blocks.size()) +
                           " blocks");
  }
  const PemBlock& block = blocks.front();
  if (block.label == "ENCRYPTED PRIVATE KEY") {
    return validationError(w + ": the private key is encrypted; istiod needs an unencrypted key "
                               "(\"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\")");
  }
  if (block.label != "PRIVATE KEY" && block.label != "EC PRIVATE KEY" && block.label != "RSA PRIVATE KEY") {
    return validationError(w + ": found " + describeLabel(block.label) +
                           "; expected an unencrypted \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\"");
  }
  // The BIO reads the Secret's bytes in place; OpenSSL's own decode buffers for key
  // material are cleared when freed.
  BioPtr bio(BIO_new_mem_buf(block.text.data(), static_cast<int>(block.text.size())));
  if (!bio) return Error{ErrorCode::kInternal, "out of memory reading " + w};
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassphrase, nullptr));
  if (!key) {
    return validationError(w + ": the \"" + std::string(block.label) +
                           "\" block does not contain a valid unencrypted private key of that format");
  }
  const std::string desc = describeKey(key.get());
  const int base = EVP_PKEY_get_base_id(key.get());
  if (base == EVP_PKEY_ED25519 || base == EVP_PKEY_ED448) {
    return validationError(w + ": " + desc + " keys are not supported by istiod; use ECDSA (P-256/P-384) or RSA");
  }
  if (base == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(key.get()) < 2048) {
      return validationError(w + ": RSA key of " + std::to_string(EVP_PKEY_get_bits(key.get())) +
                             " bits is too small; use at least 2048 bits");
    }
  } else if (base == EVP_PKEY_EC) {
    if (desc != "ec-256" && desc != "ec-384" && desc != "ec-521") {
      return validationError(w + ": EC key on an unsupported curve (" + desc +
                             "); istiod needs P-256, P-384 or P-521");
    }
  } else {
    return validationError(w + ": key type " + desc + " is not supported by istiod; use ECDSA (P-256/P-384) or RSA");
  }
  if (!halvesAgree(key.get())) {
    return validationError(w + ": the private key is inconsistent (its public and private parts do not belong "
                               "together; the stored value is corrupted)");
  }
  return PrivateKey::adopt(std::move(key));
}

KeyProof proveKeyMatches(const PrivateKey& key, const Certificate& cert) {
  ErrorQueueScope errors;
  EVP_PKEY* pub = X509_get0_pubkey(cert.raw());
  if (pub == nullptr || key.raw() == nullptr || EVP_PKEY_eq(pub, key.raw()) != 1) return KeyProof::kOtherKey;
  // Equal public keys say nothing about the private half; a signature does. RSA signs
  // with PKCS#1 v1.5 and ECDSA with a fresh nonce, both over SHA-256.
  static constexpr std::string_view kMessage = "cacerts-agent: this key signs for its certificate";
  const auto* msg = reinterpret_cast<const unsigned char*>(kMessage.data());
  EvpMdCtxPtr sign_ctx(EVP_MD_CTX_new());
  std::size_t sig_len = 0;
  if (!sign_ctx || EVP_DigestSignInit(sign_ctx.get(), nullptr, EVP_sha256(), nullptr, key.raw()) != 1 ||
      EVP_DigestSign(sign_ctx.get(), nullptr, &sig_len, msg, kMessage.size()) != 1) {
    return KeyProof::kBrokenPrivate;
  }
  std::vector<unsigned char> sig(sig_len);
  if (EVP_DigestSign(sign_ctx.get(), sig.data(), &sig_len, msg, kMessage.size()) != 1) return KeyProof::kBrokenPrivate;
  EvpMdCtxPtr verify_ctx(EVP_MD_CTX_new());
  if (!verify_ctx || EVP_DigestVerifyInit(verify_ctx.get(), nullptr, EVP_sha256(), nullptr, pub) != 1 ||
      EVP_DigestVerify(verify_ctx.get(), sig.data(), sig_len, msg, kMessage.size()) != 1) {
    return KeyProof::kBrokenPrivate;
  }
  return KeyProof::kProven;
}

bool keyMatchesCertificate(const PrivateKey& key, const Certificate& cert) {
  return proveKeyMatches(key, cert) == KeyProof::kProven;
}

// ---------------------------------------------------------------------------------------
// Generation

Result<PrivateKey> generateKey(KeyType type, int bits) {
  ErrorQueueScope errors;
  EVP_PKEY* raw = nullptr;
  if (type == KeyType::kEc) {
    if (bits != 256 && bits != 384) {
      return Error{ErrorCode::kInvalidArgument, "unsupported EC key size " + std::to_string(bits) + " (use 256 or 384)"};
    }
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", bits == 256 ? "P-256" : "P-384");
  } else {
    if (bits != 2048 && bits != 3072 && bits != 4096) {
      return Error{ErrorCode::kInvalidArgument,
                   "unsupported RSA key size " + std::to_string(bits) + " (use 2048, 3072 or 4096)"};
    }
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  }
  if (raw == nullptr) return Error{ErrorCode::kInternal, "OpenSSL key generation failed"};
  return PrivateKey::adopt(EvpPkeyPtr{raw});
}

Result<std::string> makeCsr(const PrivateKey& key, const CsrSpec& spec) {
  ErrorQueueScope errors;
  auto invalid = [](std::string m) { return Error{ErrorCode::kInvalidArgument, std::move(m)}; };
  auto internal = [](std::string_view step) {
    return Error{ErrorCode::kInternal, "building the CSR failed at " + std::string(step)};
  };
  if (spec.common_name.empty()) return invalid("CSR common name is empty (set --common-name)");
  if (spec.common_name.size() > 64) return invalid("CSR common name is longer than 64 characters (--common-name)");
  if (spec.organization.size() > 64) return invalid("CSR organization is longer than 64 characters (--organization)");
  for (const std::string& uri : spec.uri_sans) {
    const bool printable = std::all_of(uri.begin(), uri.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (uri.empty() || !printable || uri.find(':') == std::string::npos) {
      return invalid("CSR URI SAN \"" + (printable ? uri : std::string("<non-printable>")) +
                     "\" is not an absolute URI (e.g. spiffe://cluster.local) (--uri-sans)");
    }
  }
  if (spec.max_path_length < -1) return invalid("max path length must be -1 (unlimited) or >= 0");

  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) return internal("version");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (!spec.organization.empty() &&
      X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.organization.data()),
                                 static_cast<int>(spec.organization.size()), -1, 0) != 1) {
    return invalid("CSR organization is not valid UTF-8 (--organization)");
  }
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.data()),
                                 static_cast<int>(spec.common_name.size()), -1, 0) != 1) {
    return invalid("CSR common name is not valid UTF-8 (--common-name)");
  }
  if (X509_REQ_set_pubkey(req.get(), key.raw()) != 1) return internal("public key");

  STACK_OF(X509_EXTENSION)* raw_exts = nullptr;
  if (spec.request_ca) {
    BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
    if (!bc) return internal("basicConstraints");
    // DER encodes BOOLEAN TRUE as 0xFF only; OpenSSL writes the int as given, and strict
    // parsers (Go's cryptobyte, rust-asn1, BoringSSL) reject any other non-zero byte.
    bc->ca = 0xFF;
    if (spec.max_path_length >= 0) {
      bc->pathlen = ASN1_INTEGER_new();
      if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, spec.max_path_length) != 1) {
        return internal("pathlen");
      }
    }
    if (X509V3_add1_i2d(&raw_exts, NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT) != 1) {
      ExtensionStackPtr cleanup(raw_exts);
      return internal("basicConstraints");
    }
    Asn1BitStringPtr ku(ASN1_BIT_STRING_new());
    // Bit numbers from RFC 5280 4.2.1.3: keyCertSign(5), cRLSign(6).
    if (!ku || ASN1_BIT_STRING_set_bit(ku.get(), 5, 1) != 1 || ASN1_BIT_STRING_set_bit(ku.get(), 6, 1) != 1 ||
        X509V3_add1_i2d(&raw_exts, NID_key_usage, ku.get(), 1, X509V3_ADD_DEFAULT) != 1) {
      ExtensionStackPtr cleanup(raw_exts);
      return internal("keyUsage");
    }
  }
  if (!spec.uri_sans.empty()) {
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    if (!names) {
      ExtensionStackPtr cleanup(raw_exts);
      return internal("subjectAltName");
    }
    for (const std::string& uri : spec.uri_sans) {
      Asn1Ia5StringPtr value(ASN1_IA5STRING_new());
      GeneralNamePtr gn(GENERAL_NAME_new());
      if (!value || !gn || ASN1_STRING_set(value.get(), uri.data(), static_cast<int>(uri.size())) != 1) {
        ExtensionStackPtr cleanup(raw_exts);
        return internal("subjectAltName");
      }
      GENERAL_NAME_set0_value(gn.get(), GEN_URI, value.release());
      if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) {
        ExtensionStackPtr cleanup(raw_exts);
        return internal("subjectAltName");
      }
      gn.release();
    }
    if (X509V3_add1_i2d(&raw_exts, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
      ExtensionStackPtr cleanup(raw_exts);
      return internal("subjectAltName");
    }
  }
  ExtensionStackPtr exts(raw_exts);
  if (exts && X509_REQ_add_extensions(req.get(), exts.get()) != 1) return internal("extensions");
  if (X509_REQ_sign(req.get(), key.raw(), EVP_sha256()) <= 0) return internal("signature");

  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return internal("PEM encoding");
  return bioToString(bio.get());
}

// ---------------------------------------------------------------------------------------
// Verification

namespace {

// OpenSSL refuses a v3 trust anchor without basicConstraints ("invalid CA certificate");
// istiod's Go verifier never asks an anchor to be a CA. Only that error, and only for a
// certificate that came from the trust store, is forgiven.
int acceptAnyTrustAnchor(int ok, X509_STORE_CTX* ctx) {
  if (ok == 1 || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_INVALID_CA) return ok;
  const int depth = X509_STORE_CTX_get_error_depth(ctx);
  const STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const bool is_anchor = chain != nullptr && depth == sk_X509_num(chain) - 1 &&
                         depth >= X509_STORE_CTX_get_num_untrusted(ctx);
  return is_anchor ? 1 : ok;
}

}  // namespace

Result<std::vector<Certificate>> verifyChain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                                             const std::vector<Certificate>& roots, SystemTime at) {
  ErrorQueueScope errors;
  auto internal = [] { return Error{ErrorCode::kInternal, "out of memory setting up chain verification"}; };
  if (roots.empty()) return validationError("no root certificates to verify against");
  X509StorePtr store(X509_STORE_new());
  if (!store) return internal();
  for (const Certificate& root : roots) {
    // Duplicates are accepted silently by OpenSSL 3; other failures mean out of memory.
    if (X509_STORE_add_cert(store.get(), root.raw()) != 1) return internal();
  }
  BorrowedX509StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return internal();
  for (const Certificate& c : intermediates) {
    if (sk_X509_push(untrusted.get(), c.raw()) <= 0) return internal();
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf.raw(), untrusted.get()) != 1) return internal();
  // Sets X509_V_FLAG_USE_CHECK_TIME: validity is judged at `at`, not at OpenSSL's now.
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), toTimeT(at));
  X509_STORE_CTX_set_verify_cb(ctx.get(), acceptAnyTrustAnchor);

  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* current = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string message = X509_verify_cert_error_string(error);
    message += " (depth " + std::to_string(depth);
    if (current != nullptr) message += ", subject \"" + nameToString(X509_get_subject_name(current)) + "\"";
    message += ")" + hintFor(error);
    return validationError(std::move(message));
  }
  // The chain holds the very X509 objects passed in: hand back the caller's Certificate
  // objects (with their CertInfo) rather than describing the same certificates again.
  auto original = [&](X509* x) {
    if (x == leaf.raw()) return leaf;
    for (const auto* group : {&intermediates, &roots}) {
      for (const Certificate& c : *group) {
        if (c.raw() == x) return c;
      }
    }
    return Certificate::share(x);
  };
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  std::vector<Certificate> path;
  for (int i = 0; i < sk_X509_num(chain); ++i) path.push_back(original(sk_X509_value(chain, i)));
  return path;
}

std::string toPem(const std::vector<Certificate>& certs) {
  std::string out;
  for (const Certificate& c : certs) out += c.pem();
  return out;
}

std::string formatTime(SystemTime t) {
  const std::time_t secs = toTimeT(t);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "invalid-time";
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

// ---------------------------------------------------------------------------------------
// CRLs

Crl Crl::adopt(X509CrlPtr crl) {
  ErrorQueueScope errors;
  CrlInfo info;
  info.issuer = nameToString(X509_CRL_get_issuer(crl.get()));
  info.this_update = fromAsn1Time(X509_CRL_get0_lastUpdate(crl.get()));
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get()); next != nullptr) info.next_update = fromAsn1Time(next);
  const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  info.revoked = revoked == nullptr ? 0 : static_cast<std::size_t>(sk_X509_REVOKED_num(revoked));
  return Crl(std::make_shared<const Shared>(Shared{std::move(crl), std::move(info)}));
}

std::string Crl::pem() const {
  ErrorQueueScope errors;
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), raw()) != 1) return {};
  return bioToString(bio.get());
}

std::string toPem(const std::vector<Crl>& crls) {
  std::string out;
  for (const Crl& c : crls) out += c.pem();
  return out;
}

Result<std::vector<Crl>> parseCrls(std::string_view pem, std::string_view what) {
  ErrorQueueScope errors;
  if (pem.size() > kMaxPemBytes) return validationError(std::string(what) + ": larger than 16 MiB");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error{ErrorCode::kInternal, "out of memory reading " + std::string(what)};
  std::vector<Crl> out;
  for (std::size_t block = 1;; ++block) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    const int read = PEM_read_bio(bio.get(), &name, &header, &data, &len);
    const OpenSslChars owned_name(name), owned_header(header);
    const OpenSslBytes owned_data(data);
    if (read != 1) {
      // The reader ends on "no start line" when only text without a block is left.
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) break;
      return validationError(std::string(what) + ": PEM block " + std::to_string(block) + " is malformed");
    }
    const unsigned char* p = data;
    X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, len));
    if (!crl || p != data + len) {
      return validationError(std::string(what) + ": PEM block " + std::to_string(block) +
                             " is not a certificate revocation list");
    }
    out.push_back(Crl::adopt(std::move(crl)));
  }
  return out;
}

bool crlSignedBy(const Crl& crl, const Certificate& signer) {
  ErrorQueueScope errors;
  const CertInfo& s = signer.info();
  if ((s.version == 3 && !s.has_basic_constraints) || (s.has_basic_constraints && !s.is_ca)) return false;
  if (s.has_key_usage && !s.crl_sign) return false;
  EVP_PKEY* key = X509_get0_pubkey(signer.raw());
  return key != nullptr && X509_CRL_verify(crl.raw(), key) == 1;
}

}  // namespace cacerts
