// Ownership of OpenSSL objects: one deleter for every OpenSSL type the project uses, and a
// unique_ptr alias per type. Product code, test support, tools and fuzz targets all take
// ownership through these aliases, so no file but openssl_ptr.cc calls an OpenSSL *_free.
//
// Contract:
//   * Every alias frees with the type's own free function; a null pointer is never passed
//     to it (unique_ptr and shared_ptr do not call deleters on null).
//   * OpenSslFree also works as a shared_ptr deleter: std::shared_ptr<X509>(x, OpenSslFree{}).
//   * Stacks come in two kinds: an owning stack frees its elements with it
//     (X509StackPtr, ExtensionStackPtr, GENERAL_NAMES); a BorrowedX509StackPtr frees only
//     the stack, for elements owned elsewhere (chain verification borrows them).
//   * BIGNUMs holding secrets use SecretBignumPtr (BN_clear_free wipes the digits);
//     OpenSslBytes and OpenSslChars own buffers that OpenSSL allocated (i2d_*, PEM_read_bio).
//
// Only <openssl/types.h> is included, which declares the opaque types and no functions, so
// including this header does not pull OpenSSL's API into a file.
//
// Thread safety: the deleters hold no state.
#pragma once

#include <openssl/types.h>

#include <memory>

// Declared by OpenSSL's x509 headers, which this header does not include; the typedefs
// repeat OpenSSL's own (C++ allows an identical typedef twice).
typedef struct X509_extension_st X509_EXTENSION;
typedef struct X509_req_st X509_REQ;
typedef struct BASIC_CONSTRAINTS_st BASIC_CONSTRAINTS;
typedef struct GENERAL_NAME_st GENERAL_NAME;
struct stack_st_X509;
struct stack_st_X509_EXTENSION;
struct stack_st_GENERAL_NAME;
struct stack_st_ASN1_OBJECT;

namespace cacerts {

struct OpenSslFree {
  void operator()(X509* p) const;
  void operator()(X509_REQ* p) const;
  void operator()(X509_NAME* p) const;
  void operator()(X509_EXTENSION* p) const;
  void operator()(X509_STORE* p) const;
  void operator()(X509_CRL* p) const;
  void operator()(X509_REVOKED* p) const;
  void operator()(X509_STORE_CTX* p) const;
  void operator()(EVP_PKEY* p) const;
  void operator()(EVP_PKEY_CTX* p) const;
  void operator()(EVP_MD_CTX* p) const;
  void operator()(BIO* p) const;  // BIO_free_all: a chain goes with its head
  void operator()(BIGNUM* p) const;
  void operator()(BN_CTX* p) const;
  void operator()(ASN1_INTEGER* p) const;  // also ASN1_BIT_STRING, ASN1_IA5STRING, ... (one type)
  void operator()(ASN1_OBJECT* p) const;
  void operator()(BASIC_CONSTRAINTS* p) const;
  void operator()(GENERAL_NAME* p) const;
  void operator()(stack_st_GENERAL_NAME* p) const;  // GENERAL_NAMES: frees the names too
  void operator()(stack_st_X509* p) const;          // frees the certificates too
  void operator()(stack_st_X509_EXTENSION* p) const;  // frees the extensions too
  void operator()(stack_st_ASN1_OBJECT* p) const;   // EXTENDED_KEY_USAGE: frees the OIDs too
  void operator()(OSSL_PARAM_BLD* p) const;
  void operator()(OSSL_PARAM* p) const;
};

// Frees only the stack; its X509 elements belong to someone else.
struct BorrowedStackFree {
  void operator()(stack_st_X509* p) const;
};
// Wipes the number before freeing it (private exponents, EC private scalars).
struct SecretBignumFree {
  void operator()(BIGNUM* p) const;
};
// OPENSSL_free for buffers OpenSSL allocated on our behalf.
struct OpenSslBufferFree {
  void operator()(void* p) const;
};

template <class T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

using X509Ptr = OpenSslPtr<X509>;
using X509ReqPtr = OpenSslPtr<X509_REQ>;
using X509NamePtr = OpenSslPtr<X509_NAME>;
using X509ExtensionPtr = OpenSslPtr<X509_EXTENSION>;
using X509StorePtr = OpenSslPtr<X509_STORE>;
using X509CrlPtr = OpenSslPtr<X509_CRL>;
using X509RevokedPtr = OpenSslPtr<X509_REVOKED>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY>;
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX>;
using EvpMdCtxPtr = OpenSslPtr<EVP_MD_CTX>;
using BioPtr = OpenSslPtr<BIO>;
using BignumPtr = OpenSslPtr<BIGNUM>;
using BnCtxPtr = OpenSslPtr<BN_CTX>;
using SecretBignumPtr = std::unique_ptr<BIGNUM, SecretBignumFree>;
using Asn1IntegerPtr = OpenSslPtr<ASN1_INTEGER>;
using Asn1BitStringPtr = OpenSslPtr<ASN1_BIT_STRING>;
using Asn1Ia5StringPtr = OpenSslPtr<ASN1_IA5STRING>;
using Asn1ObjectPtr = OpenSslPtr<ASN1_OBJECT>;
using BasicConstraintsPtr = OpenSslPtr<BASIC_CONSTRAINTS>;
using GeneralNamePtr = OpenSslPtr<GENERAL_NAME>;
using GeneralNamesPtr = OpenSslPtr<stack_st_GENERAL_NAME>;
using ExtendedKeyUsagePtr = OpenSslPtr<stack_st_ASN1_OBJECT>;
using X509StackPtr = OpenSslPtr<stack_st_X509>;
using BorrowedX509StackPtr = std::unique_ptr<stack_st_X509, BorrowedStackFree>;
using ExtensionStackPtr = OpenSslPtr<stack_st_X509_EXTENSION>;
using ParamBuilderPtr = OpenSslPtr<OSSL_PARAM_BLD>;
using ParamsPtr = OpenSslPtr<OSSL_PARAM>;
using OpenSslBytes = std::unique_ptr<unsigned char, OpenSslBufferFree>;
using OpenSslChars = std::unique_ptr<char, OpenSslBufferFree>;

}  // namespace cacerts
