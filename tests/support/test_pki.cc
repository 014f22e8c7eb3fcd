#include "tests/support/test_pki.h"

#include <algorithm>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/openssl_ptr.h"

namespace cacerts::testing {
namespace {

using BnPtr = BignumPtr;
using ReqPtr = X509ReqPtr;
using ExtPtr = X509ExtensionPtr;
using NamePtr = X509NamePtr;
using AsnIntPtr = Asn1IntegerPtr;

std::shared_ptr<EVP_PKEY> ownKey(EVP_PKEY* p) {
  return p ? std::shared_ptr<EVP_PKEY>(p, OpenSslFree{}) : nullptr;
}

std::string bioToString(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem ? std::string(mem->data, mem->length) : std::string();
}

// Refuses any passphrase prompt: test keys are never encrypted.
int noPassphrase(char*, int, int, void*) { return -1; }

SystemTime fromAsn1(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string joinSans(const std::string& prefix, const std::vector<std::string>& values,
                     std::string out) {
  for (const auto& v : values) {
    if (!out.empty()) out += ",";
    out += prefix + v;
  }
  return out;
}

// Adds one extension in openssl.cnf syntax; ctx carries issuer/subject for SKI/AKI.
bool addExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

bool setSubject(X509_NAME* name, const CertSpec& spec) {
  auto add = [&](const std::string& field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!spec.subject_entries.empty()) {
    for (const auto& [field, value] : spec.subject_entries) {
      if (!add(field, value)) return false;
    }
    return true;
  }
  if (!spec.organization.empty() && !add("O", spec.organization)) return false;
  return add("CN", spec.common_name);
}

bool setSerial(X509* cert, const std::string& serial_hex) {
  BnPtr bn(BN_new());
  if (!bn) return false;
  if (serial_hex.empty()) {
    // 16 random bytes, top bit clear so the DER INTEGER stays positive and 16 bytes long.
    if (BN_rand(bn.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1) return false;
  } else {
    std::string hex;
    for (char c : serial_hex) {
      if (c != ':') hex += c;
    }
    BIGNUM* raw = bn.release();
    const int parsed = BN_hex2bn(&raw, hex.c_str());
    bn.reset(raw);
    if (parsed == 0) return false;
  }
  AsnIntPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  return serial && X509_set_serialNumber(cert, serial.get()) == 1;
}

std::string keyUsageText(const CertSpec& spec) {
  std::string out;
  auto add = [&out](const char* s) {
    if (!out.empty()) out += ",";
    out += s;
  };
  if (spec.digital_signature) add("digitalSignature");
  if (spec.key_encipherment) add("keyEncipherment");
  if (spec.key_cert_sign) add("keyCertSign");
  if (spec.crl_sign) add("cRLSign");
  return out;
}

void collectSans(const GENERAL_NAMES* names, ParsedCsr& out) {
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_URI || gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.ia5;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      (gn->type == GEN_URI ? out.uri_sans : out.dns_sans).push_back(std::move(v));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = gn->d.iPAddress;
      const unsigned char* b = ASN1_STRING_get0_data(s);
      if (ASN1_STRING_length(s) == 4) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        out.ip_sans.emplace_back(buf);
      }
    }
  }
}

}  // namespace

// ---- TestKey ----

std::string TestKey::pkcs8Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bioToString(bio.get());
}

std::string TestKey::traditionalPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio) return {};
  const int ok = EVP_PKEY_get_base_id(pkey.get()) == EVP_PKEY_ED25519
                     ? PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0,
                                                nullptr, nullptr)
                     : PEM_write_bio_PrivateKey_traditional(bio.get(), pkey.get(), nullptr,
                                                            nullptr, 0, nullptr, nullptr);
  return ok == 1 ? bioToString(bio.get()) : std::string();
}

std::string TestKey::publicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) return {};
  return bioToString(bio.get());
}

std::string TestKey::type() const {
  if (!pkey) return {};
  switch (EVP_PKEY_get_base_id(pkey.get())) {
    case EVP_PKEY_RSA: return "rsa";
    case EVP_PKEY_EC: return "ec";
    case EVP_PKEY_ED25519: return "ed25519";
    default: return "unknown";
  }
}

TestKey TestKey::fromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return {};
  return TestKey{ownKey(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr))};
}

TestKey makeKey(const std::string& type, int bits) {
  if (type == "ec") {
    const char* curve = bits == 256 ? "P-256" : bits == 384 ? "P-384" : bits == 521 ? "P-521" : nullptr;
    if (!curve) return {};
    return TestKey{ownKey(EVP_EC_gen(curve))};
  }
  if (type == "rsa") {
    if (bits < 2048 || bits > 8192) return {};
    return TestKey{ownKey(EVP_RSA_gen(static_cast<unsigned>(bits)))};
  }
  if (type == "ed25519") {
    return TestKey{ownKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"))};
  }
  return {};
}

bool samePublicKey(const TestKey& a, const TestKey& b) {
  return a.pkey && b.pkey && EVP_PKEY_eq(a.pkey.get(), b.pkey.get()) == 1;
}

// ---- TestCert ----

std::string TestCert::pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!x509 || !bio || PEM_write_bio_X509(bio.get(), x509.get()) != 1) return {};
  return bioToString(bio.get());
}

std::string TestCert::pemTrimmed() const {
  std::string p = pem();
  while (!p.empty() && p.back() == '\n') p.pop_back();
  return p;
}

std::string TestCert::der() const {
  if (!x509) return {};
  unsigned char* raw = nullptr;
  const int n = i2d_X509(x509.get(), &raw);
  const OpenSslBytes buf(raw);
  if (n <= 0) return {};
  return std::string(reinterpret_cast<char*>(buf.get()), static_cast<size_t>(n));
}

std::string TestCert::serialColonHex() const {
  if (!x509) return {};
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509.get()), nullptr));
  if (!bn) return {};
  // A zero serial has no bytes; Vault prints it as "00".
  std::vector<unsigned char> bytes(static_cast<size_t>(std::max(1, BN_num_bytes(bn.get()))), 0);
  if (!BN_is_zero(bn.get())) BN_bn2bin(bn.get(), bytes.data());
  std::string out;
  char buf[4];
  for (unsigned char b : bytes) {
    if (!out.empty()) out += ':';
    std::snprintf(buf, sizeof(buf), "%02x", b);
    out += buf;
  }
  return out;
}

std::string TestCert::commonName() const {
  if (!x509) return {};
  const X509_NAME* name = X509_get_subject_name(x509.get());
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

SystemTime TestCert::notBefore() const { return x509 ? fromAsn1(X509_get0_notBefore(x509.get())) : SystemTime{}; }
SystemTime TestCert::notAfter() const { return x509 ? fromAsn1(X509_get0_notAfter(x509.get())) : SystemTime{}; }

int TestCert::pathLen() const {
  if (!x509) return -1;
  BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(
          X509_get_ext_d2i(x509.get(), NID_basic_constraints, nullptr, nullptr)));
  if (!bc || !bc->pathlen) return -1;
  return static_cast<int>(ASN1_INTEGER_get(bc->pathlen));
}

bool TestCert::isCa() const { return x509 && X509_check_ca(x509.get()) > 0; }

bool TestCert::selfSigned() const { return x509 && X509_self_signed(x509.get(), 1) == 1; }

TestKey TestCert::publicKey() const {
  if (!x509) return {};
  return TestKey{ownKey(X509_get_pubkey(x509.get()))};
}

TestCert TestCert::fromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return {};
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr);
  return x ? TestCert{std::shared_ptr<X509>(x, OpenSslFree{})} : TestCert{};
}

std::vector<TestCert> parseCertChain(const std::string& pem) {
  std::vector<TestCert> out;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr)) {
    out.push_back(TestCert{std::shared_ptr<X509>(x, OpenSslFree{})});
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
  return out;
}

// ---- issuing ----

TestCert issueCert(const CertSpec& spec, const TestKey& subject_key, const TestCert* issuer,
                   const TestKey& issuer_key) {
  if (!subject_key.pkey || !issuer_key.pkey) return {};
  if (issuer && !issuer->x509) return {};
  std::shared_ptr<X509> cert(X509_new(), OpenSslFree{});
  if (!cert || X509_set_version(cert.get(), spec.v1 ? 0 : 2) != 1) return {};
  if (!setSerial(cert.get(), spec.serial_hex)) return {};

  NamePtr subject(X509_NAME_new());
  if (!subject || !setSubject(subject.get(), spec)) return {};
  if (X509_set_subject_name(cert.get(), subject.get()) != 1) return {};
  const X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer->x509.get()) : subject.get();
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1) return {};

  const auto now = std::chrono::system_clock::now();
  const SystemTime nb = spec.not_before == SystemTime{} ? now - std::chrono::hours(1) : spec.not_before;
  const SystemTime na = spec.not_after == SystemTime{} ? now + std::chrono::hours(24 * 365) : spec.not_after;
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(nb)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(na))) {
    return {};
  }
  if (X509_set_pubkey(cert.get(), subject_key.pkey.get()) != 1) return {};

  const EVP_MD* md = EVP_PKEY_get_base_id(issuer_key.pkey.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (spec.v1) {
    if (X509_sign(cert.get(), issuer_key.pkey.get(), md) <= 0) return {};
    return TestCert{cert};
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer->x509.get() : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.basic_constraints) {
    std::string bc = spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
    if (spec.is_ca && spec.path_len >= 0) bc += ",pathlen:" + std::to_string(spec.path_len);
    if (!addExt(cert.get(), &ctx, NID_basic_constraints, bc)) return {};
  }
  if (const std::string ku = keyUsageText(spec); !ku.empty()) {
    if (!addExt(cert.get(), &ctx, NID_key_usage, "critical," + ku)) return {};
  }
  if (!spec.ext_key_usage.empty()) {
    std::string eku;
    for (const auto& e : spec.ext_key_usage) eku += (eku.empty() ? "" : ",") + e;
    if (!addExt(cert.get(), &ctx, NID_ext_key_usage, eku)) return {};
  }
  std::string sans = joinSans("URI:", spec.uri_sans, "");
  sans = joinSans("DNS:", spec.dns_sans, sans);
  sans = joinSans("IP:", spec.ip_sans, sans);
  if (!sans.empty() && !addExt(cert.get(), &ctx, NID_subject_alt_name, sans)) return {};
  if (!addExt(cert.get(), &ctx, NID_subject_key_identifier, "hash")) return {};
  // An issuer without a subject key identifier (an X.509 v1 root) has no key id to name.
  const bool issuer_has_key_id = issuer == nullptr || X509_get0_subject_key_id(issuer->x509.get()) != nullptr;
  if (issuer_has_key_id && !addExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always")) return {};

  if (X509_sign(cert.get(), issuer_key.pkey.get(), md) <= 0) return {};
  return TestCert{cert};
}

TestCa makeRoot(const std::string& cn, SystemTime nb, SystemTime na) {
  TestCa ca;
  ca.key = makeKey("ec", 256);
  CertSpec spec;
  spec.common_name = cn;
  spec.not_before = nb;
  spec.not_after = na;
  ca.cert = issueCert(spec, ca.key, nullptr, ca.key);
  return ca;
}

TestCa makeIntermediate(const TestCa& parent, const std::string& cn, CertSpec spec) {
  TestCa ca;
  ca.key = makeKey("ec", 256);
  spec.common_name = cn;
  ca.cert = issueCert(spec, ca.key, &parent.cert, parent.key);
  return ca;
}

// ---- CRLs ----

std::string makeCrl(const TestCa& issuer, const CrlSpec& spec) {
  if (!issuer.key.pkey || !issuer.cert.x509) return {};
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1) return {};
  if (X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.x509.get())) != 1) return {};
  const auto now = std::chrono::system_clock::now();
  const SystemTime this_update = spec.this_update == SystemTime{} ? now - std::chrono::hours(1) : spec.this_update;
  const SystemTime next_update = spec.next_update == SystemTime{} ? now + std::chrono::hours(24 * 7) : spec.next_update;
  // ASN1_TIME and ASN1_INTEGER are one OpenSSL type, so the integer owner frees times too.
  auto asn1Time = [](SystemTime t) { return AsnIntPtr(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(t))); };
  const AsnIntPtr last = asn1Time(this_update), next = asn1Time(next_update);
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1) return {};
  if (!spec.without_next_update && X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) return {};
  for (const std::string& serial : spec.revoked_serials_hex) {
    std::string hex;
    for (char c : serial) {
      if (c != ':') hex += c;
    }
    BIGNUM* raw_bn = nullptr;
    if (BN_hex2bn(&raw_bn, hex.c_str()) == 0) return {};
    const BnPtr bn(raw_bn);
    const AsnIntPtr number(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    X509RevokedPtr revoked(X509_REVOKED_new());
    if (!number || !revoked || X509_REVOKED_set_serialNumber(revoked.get(), number.get()) != 1 ||
        X509_REVOKED_set_revocationDate(revoked.get(), last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) {
      return {};
    }
    (void)revoked.release();  // the CRL owns it now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), issuer.key.pkey.get(), EVP_sha256()) <= 0) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

// ---- CSRs ----

std::string makeCsr(const TestKey& key, const CsrSpec& spec) {
  if (!key.pkey) return {};
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return {};
  CertSpec names;
  names.common_name = spec.common_name;
  names.organization = spec.organization;
  NamePtr subject(X509_NAME_new());
  if (!subject || !setSubject(subject.get(), names)) return {};
  if (X509_REQ_set_subject_name(req.get(), subject.get()) != 1) return {};
  if (X509_REQ_set_pubkey(req.get(), key.pkey.get()) != 1) return {};

  ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  auto push = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value.c_str());
    return ext && sk_X509_EXTENSION_push(exts.get(), ext) > 0;
  };
  if (spec.request_ca && !push(NID_basic_constraints, "critical,CA:TRUE")) return {};
  std::string sans = joinSans("URI:", spec.uri_sans, "");
  sans = joinSans("DNS:", spec.dns_sans, sans);
  if (!sans.empty() && !push(NID_subject_alt_name, sans)) return {};
  if (sk_X509_EXTENSION_num(exts.get()) > 0 && X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return {};
  }
  const EVP_MD* md = EVP_PKEY_get_base_id(key.pkey.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_REQ_sign(req.get(), key.pkey.get(), md) <= 0) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return {};
  return bioToString(bio.get());
}

ParsedCsr parseCsr(const std::string& csr_pem) {
  ParsedCsr out;
  BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  if (!bio) return out;
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, noPassphrase, nullptr));
  if (!req) {
    ERR_clear_error();
    return out;
  }
  std::shared_ptr<EVP_PKEY> pub = ownKey(X509_REQ_get_pubkey(req.get()));
  if (!pub || X509_REQ_verify(req.get(), pub.get()) != 1) {
    ERR_clear_error();
    return out;
  }
  const X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
    if (!sn) continue;
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(e);
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
    if (nid == NID_commonName) out.common_name = value;
    out.subject_entries.emplace_back(sn, std::move(value));
  }
  ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  if (exts) {
    for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
      X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
      if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
      GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
      if (names) collectSans(names.get(), out);
    }
  }
  out.public_key = TestKey{pub};
  return out;
}

TestCert signCsr(const std::string& csr_pem, const CertSpec& spec, const TestCa& issuer) {
  const ParsedCsr csr = parseCsr(csr_pem);
  if (csr.public_key.empty()) return {};
  return issueCert(spec, csr.public_key, &issuer.cert, issuer.key);
}

}  // namespace cacerts::testing
