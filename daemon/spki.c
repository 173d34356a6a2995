/* Public keys from their SubjectPublicKeyInfo. See spki.h.
 *
 * OpenSSL 3.0 decodes a public key (d2i_PUBKEY, and so every d2i of a request or a certificate)
 * by setting up a chain of decoders over all the key managers and decoders its providers offer,
 * under their locks: about 85 us on the machine of BENCHMARKS.md, more than the ECDSA verify and
 * sign of an issuance together. The keys devices send are on a named curve, P-256 or P-384; such a
 * key is made here as a copy of a key holding only the curve, made once, with the point set into
 * it (about 4 us; the point is checked to be on the curve as it is set). bench/physics times
 * both ways. Every other key goes through d2i_PUBKEY. */
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

/* The point at infinity (a single zero byte), which no private key has, is refused here; a point
 * of the wrong size or off the curve is refused as it is set. */
static EVP_PKEY *curve_key(const EVP_PKEY *curve, const ASN1_BIT_STRING *bits) {
    const unsigned char *point = ASN1_STRING_get0_data(bits);
    int len = ASN1_STRING_length(bits);
    if (len < 2 || point[0] == 0)
        return NULL;
    EVP_PKEY *key = EVP_PKEY_dup((EVP_PKEY *)curve);
    if (key && EVP_PKEY_set1_encoded_public_key(key, point, (size_t)len) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

static EVP_PKEY *decoded_key(const SPKI_DER *s) {
    unsigned char *der = NULL;
    int len = ASN1_item_i2d((const ASN1_VALUE *)s, &der, ASN1_ITEM_rptr(SPKI_DER));
    const unsigned char *p = der;
    EVP_PKEY *key = len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
    if (key && p != der + len) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OPENSSL_free(der);
    return key;
}

EVP_PKEY *spki_key(const SPKI_DER *s) {
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
