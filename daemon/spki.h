/* SubjectPublicKeyInfo decoded as ASN.1 only, and the public key it encodes. */
#ifndef PROVD_SPKI_H
#define PROVD_SPKI_H

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A SubjectPublicKeyInfo (RFC 5280 section 4.1) whose key is left as its encoded bits. Unlike
 * OpenSSL's X509_PUBKEY, decoding it does not decode the key. */
typedef struct spki_der_st {
    X509_ALGOR *alg;
    ASN1_BIT_STRING *key;
} SPKI_DER;
DECLARE_ASN1_ITEM(SPKI_DER)

/* The public key s encodes, or NULL when it is malformed, of a kind OpenSSL does not know, or
 * encoded otherwise than a certificate may carry it (spki.c): s can then be copied into a
 * certificate as it is. The algorithm's parameters are not checked. The caller frees the key
 * with EVP_PKEY_free. Thread-safe. */
EVP_PKEY *spki_key(const SPKI_DER *s);

#endif
