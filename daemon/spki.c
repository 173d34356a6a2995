/* Public keys from their SubjectPublicKeyInfo. See spki.h.
 *
 * OpenSSL 3.0 decodes a public key (d2i_PUBKEY, and so every d2i of a request or a certificate)
 * by setting up a chain of decoders over all the key managers and decoders its providers offer,
 * under their locks: about 85 us on the machine of BENCHMARKS.md, more than the ECDSA verify and
 * sign of an issuance together. The keys devices send are on a named curve, P-256 or P-384; such a
 * key is made here as a copy of a key holding only the curve, made once, with the point set into
 * it (about 4 us; the point is checked to be on the curve as it is set). bench/physics times
 * both ways. Every other key goes through d2i_PUBKEY.
 *
 * The key goes into the certificate as it was received (pki.c copy_pubkey), so both ways take
 * only the encodings a certificate may carry, where OpenSSL's decoder is more lenient: whole
 * octets of key; an EC point in uncompressed or compressed form (RFC 5480 section 2.2), not
 * hybrid; any other key exactly as OpenSSL encodes the key it decoded from it, so nothing after
 * the key inside its BIT STRING, no padded INTEGER, no algorithm identifier OpenSSL takes for
 * another (2.5.8.1.1 for rsaEncryption). */
#include "spki.h"

#include <pthread.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>

/* The curves of the short path, and their keys holding only the curve (made once). */
static const struct {
    int nid;
    const char *group;
} curves[] = {
    {NID_X9_62_prime256v1, "prime256v1"},
    {NID_secp384r1, "secp384r1"},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))
static EVP_PKEY *curve_keys[NCURVES];
static pthread_once_t curve_keys_once = PTHREAD_ONCE_INIT;

static void make_curve_keys(void) {
    for (size_t i = 0; i < NCURVES; i++) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curves[i].group,
                                             0),
            OSSL_PARAM_construct_end(),
        };
        /* A curve whose key could not be made (out of memory) takes the long path. */
        if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &curve_keys[i], EVP_PKEY_KEY_PARAMETERS, params) <= 0)
            curve_keys[i] = NULL;
        EVP_PKEY_CTX_free(ctx);
    }
    ERR_clear_error();
}

/* The key holding only the curve when s is a key on a curve of the short path, else NULL. */
static const EVP_PKEY *short_path(const SPKI_DER *s) {
    const ASN1_OBJECT *oid = NULL;
    const void *param = NULL;
    int ptype = 0;
    X509_ALGOR_get0(&oid, &ptype, &param, s->alg);
    if (OBJ_obj2nid(oid) != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
        return NULL;
    int nid = OBJ_obj2nid(param);
    for (size_t i = 0; i < NCURVES; i++) {
        if (curves[i].nid == nid) {
            pthread_once(&curve_keys_once, make_curve_keys);
            return curve_keys[i];
        }
    }
    return NULL;
}

/* Whether the first byte of an EC point is a form RFC 5480 allows: 0x04 (uncompressed), 0x02 or
 * 0x03 (compressed). This leaves out the point at infinity (a single zero byte), which no private
 * key has, and the hybrid forms 0x06 and 0x07, which OpenSSL decodes. */
static int point_form_ok(const ASN1_BIT_STRING *bits) {
    const unsigned char *point = ASN1_STRING_get0_data(bits);
    return ASN1_STRING_length(bits) >= 2 &&
           (point[0] == 0x02 || point[0] == 0x03 || point[0] == 0x04);
}

/* A point of the wrong size or off the curve is refused as it is set. */
static EVP_PKEY *curve_key(const EVP_PKEY *curve, const ASN1_BIT_STRING *bits) {
    EVP_PKEY *key = EVP_PKEY_dup((EVP_PKEY *)curve);
    if (key && EVP_PKEY_set1_encoded_public_key(key, ASN1_STRING_get0_data(bits),
                                                (size_t)ASN1_STRING_length(bits)) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

/* Whether OpenSSL encodes key with the algorithm and the key bits of s: what it decoded leniently
 * encodes otherwise. The parameters are left to the caller (csr.c), which takes RSA's absent NULL
 * and refuses every other form a key does not have. */
static int encodes_as(const EVP_PKEY *key, const SPKI_DER *s) {
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    const unsigned char *p = der;
    SPKI_DER *own =
        len > 0 ? (SPKI_DER *)ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_rptr(SPKI_DER)) : NULL;
    const ASN1_OBJECT *alg = NULL, *own_alg = NULL;
    int same = 0;
    if (own) {
        X509_ALGOR_get0(&alg, NULL, NULL, s->alg);
        X509_ALGOR_get0(&own_alg, NULL, NULL, own->alg);
        same = OBJ_cmp(alg, own_alg) == 0 && ASN1_STRING_cmp(s->key, own->key) == 0;
    }
    ASN1_item_free((ASN1_VALUE *)own, ASN1_ITEM_rptr(SPKI_DER));
    OPENSSL_free(der);
    return same;
}

static EVP_PKEY *decoded_key(const SPKI_DER *s) {
    unsigned char *der = NULL;
    int len = ASN1_item_i2d((const ASN1_VALUE *)s, &der, ASN1_ITEM_rptr(SPKI_DER));
    const unsigned char *p = der;
    EVP_PKEY *key = len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
    if (key && (p != der + len || !encodes_as(key, s))) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OPENSSL_free(der);
    return key;
}

/* Whether a key's BIT STRING has no unused bits: every key is whole octets, and the certificate
 * gets the octets alone. */
static int whole_octets(const ASN1_BIT_STRING *bits) {
    return !(bits->flags & ASN1_STRING_FLAG_BITS_LEFT) || (bits->flags & 0x07) == 0;
}

/* Whether s names the EC public key algorithm. */
static int is_ec(const SPKI_DER *s) {
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, s->alg);
    return OBJ_obj2nid(oid) == NID_X9_62_id_ecPublicKey;
}

EVP_PKEY *spki_key(const SPKI_DER *s) {
    if (!whole_octets(s->key) || (is_ec(s) && !point_form_ok(s->key)))
        return NULL;
    const EVP_PKEY *curve = short_path(s);
    EVP_PKEY *key = curve ? curve_key(curve, s->key) : decoded_key(s);
    if (!key)
        ERR_clear_error();
    return key;
}

/* SPKI_DER as OpenSSL's ASN.1 machinery decodes and encodes it, at the end of the file since the
 * template macros read best laid out as declarations, which clang-format would not leave. */
/* clang-format off */
ASN1_SEQUENCE(SPKI_DER) = {
    ASN1_SIMPLE(SPKI_DER, alg, X509_ALGOR),
    ASN1_SIMPLE(SPKI_DER, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(SPKI_DER)
