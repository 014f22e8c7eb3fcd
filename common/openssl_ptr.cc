#include "common/openssl_ptr.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace cacerts {

void OpenSslFree::operator()(X509* p) const { X509_free(p); }
void OpenSslFree::operator()(X509_REQ* p) const { X509_REQ_free(p); }
void OpenSslFree::operator()(X509_NAME* p) const { X509_NAME_free(p); }
void OpenSslFree::operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
void OpenSslFree::operator()(X509_STORE* p) const { X509_STORE_free(p); }
void OpenSslFree::operator()(X509_CRL* p) const { X509_CRL_free(p); }
void OpenSslFree::operator()(X509_REVOKED* p) const { X509_REVOKED_free(p); }
void OpenSslFree::operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
void OpenSslFree::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
void OpenSslFree::operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
void OpenSslFree::operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
void OpenSslFree::operator()(BIO* p) const { BIO_free_all(p); }
void OpenSslFree::operator()(BIGNUM* p) const { BN_free(p); }
void OpenSslFree::operator()(BN_CTX* p) const { BN_CTX_free(p); }
void OpenSslFree::operator()(ASN1_INTEGER* p) const { ASN1_STRING_free(p); }
void OpenSslFree::operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
void OpenSslFree::operator()(BASIC_CONSTRAINTS* p) const { BASIC_CONSTRAINTS_free(p); }
void OpenSslFree::operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
void OpenSslFree::operator()(stack_st_GENERAL_NAME* p) const { GENERAL_NAMES_free(p); }
void OpenSslFree::operator()(stack_st_X509* p) const { sk_X509_pop_free(p, X509_free); }
void OpenSslFree::operator()(stack_st_X509_EXTENSION* p) const { sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free); }
void OpenSslFree::operator()(stack_st_ASN1_OBJECT* p) const { EXTENDED_KEY_USAGE_free(p); }
void OpenSslFree::operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
void OpenSslFree::operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }

void BorrowedStackFree::operator()(stack_st_X509* p) const { sk_X509_free(p); }
void SecretBignumFree::operator()(BIGNUM* p) const { BN_clear_free(p); }
void OpenSslBufferFree::operator()(void* p) const { OPENSSL_free(p); }

}  // namespace cacerts
