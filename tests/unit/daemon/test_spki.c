/* Public keys from their SubjectPublicKeyInfo: the short path of P-256 and P-384 gives the key
 * OpenSSL's own decoder gives, in both point forms, and refuses what it refuses; every other key
 * goes through OpenSSL's decoder and comes out the same. Both refuse what OpenSSL's decoder takes
 * but a certificate may not carry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "spki.h"

/* The SubjectPublicKeyInfo of key, decoded as SPKI_DER; the caller frees it with spki_free. */
static SPKI_DER *spki_of(EVP_PKEY *key) {
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    assert_true(n > 0);
    const unsigned char *p = der;
    SPKI_DER *s = (SPKI_DER *)ASN1_item_d2i(NULL, &p, n, ASN1_ITEM_rptr(SPKI_DER));
    assert_non_null(s);
    assert_ptr_equal(p, der + n);
    OPENSSL_free(der);
    return s;
}

static void spki_free(SPKI_DER *s) {
    ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(SPKI_DER));
}

/* spki_key of key's encoding is key (public half). */
static void assert_round_trip(EVP_PKEY *key) {
    SPKI_DER *s = spki_of(key);
    EVP_PKEY *got = spki_key(s);
    assert_non_null(got);
    assert_int_equal(EVP_PKEY_eq(got, key), 1);
    assert_int_equal(EVP_PKEY_get_bits(got), EVP_PKEY_get_bits(key));
    EVP_PKEY_free(got);
    spki_free(s);
}

static void test_named_curves(void **state) {
    (void)state;
    static const char *const curves[] = {"P-256", "P-384"};
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        EVP_PKEY *key = EVP_EC_gen(curves[i]);
        assert_non_null(key);
        assert_round_trip(key);
        /* The compressed form of the same point. */
        assert_int_equal(EVP_PKEY_set_utf8_string_param(
                             key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                         1);
        SPKI_DER *s = spki_of(key);
        assert_int_equal(ASN1_STRING_length(s->key), i == 0 ? 33 : 49);
        spki_free(s);
        assert_round_trip(key);
        EVP_PKEY_free(key);
    }
}

/* The point of a P-256 key with byte i XORed with bits (or its length cut to len when len > 0):
 * refused by the short path and by OpenSSL's decoder alike. */
static void assert_bad_point(size_t i, unsigned char bits, int len) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    SPKI_DER *s = spki_of(key);
    unsigned char point[65];
    assert_int_equal(ASN1_STRING_length(s->key), 65);
    memcpy(point, ASN1_STRING_get0_data(s->key), 65);
    if (len > 0) {
        assert_int_equal(ASN1_BIT_STRING_set(s->key, point, len), 1);
    } else {
        point[i] ^= bits;
        assert_int_equal(ASN1_BIT_STRING_set(s->key, point, 65), 1);
    }
    assert_null(spki_key(s));
    unsigned char *der = NULL;
    int n = ASN1_item_i2d((ASN1_VALUE *)s, &der, ASN1_ITEM_rptr(SPKI_DER));
    const unsigned char *p = der;
    assert_null(d2i_PUBKEY(NULL, &p, n));
    OPENSSL_free(der);
    spki_free(s);
    EVP_PKEY_free(key);
}

static void test_bad_points(void **state) {
    (void)state;
    assert_bad_point(64, 1, 0); /* y changed: off the curve */
    assert_bad_point(0, 1, 0);  /* form 5: no such form */
    assert_bad_point(0, 0, 64); /* one byte short */
    assert_bad_point(0, 0, 1);  /* the form byte alone */
}

/* The point at infinity, a single zero byte: OpenSSL's decoder takes it, the short path does
 * not (no private key has it, and a signature "by" it is easy to forge). */
static void test_infinity(void **state) {
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    SPKI_DER *s = spki_of(key);
    static const unsigned char zero = 0;
    assert_int_equal(ASN1_BIT_STRING_set(s->key, (unsigned char *)&zero, 1), 1);
    assert_null(spki_key(s));
    unsigned char *der = NULL;
    int n = ASN1_item_i2d((ASN1_VALUE *)s, &der, ASN1_ITEM_rptr(SPKI_DER));
    const unsigned char *p = der;
    EVP_PKEY *theirs = d2i_PUBKEY(NULL, &p, n);
    assert_non_null(theirs);
    EVP_PKEY_free(theirs);
    OPENSSL_free(der);
    spki_free(s);
    EVP_PKEY_free(key);
}

/* Keys without a short path come out of OpenSSL's decoder: RSA, Ed25519, another named curve, a
 * curve given by its explicit parameters. */
static void test_other_keys(void **state) {
    (void)state;
    EVP_PKEY *keys[] = {
        EVP_RSA_gen(2048),
        EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
        EVP_EC_gen("secp256k1"),
        NULL,
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, "explicit", 0),
        OSSL_PARAM_construct_end(),
    };
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &keys[3]), 1);
    EVP_PKEY_CTX_free(ctx);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_non_null(keys[i]);
        assert_round_trip(keys[i]);
        EVP_PKEY_free(keys[i]);
    }
}

/* An algorithm OpenSSL does not know, and RSA key bits that are not an RSAPublicKey. */
static void test_unknown(void **state) {
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    SPKI_DER *s = spki_of(rsa);
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01};
    assert_int_equal(ASN1_BIT_STRING_set(s->key, (unsigned char *)junk, sizeof(junk)), 1);
    assert_null(spki_key(s));
    assert_int_equal(
        X509_ALGOR_set0(s->alg, OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1), V_ASN1_UNDEF, NULL), 1);
    assert_null(spki_key(s));
    spki_free(s);
    EVP_PKEY_free(rsa);
}

/* s as OpenSSL's decoder takes it but spki_key does not: an encoding a certificate may not carry.
 * Frees s. */
static void assert_lenient_only(SPKI_DER *s) {
    unsigned char *der = NULL;
    int n = ASN1_item_i2d((ASN1_VALUE *)s, &der, ASN1_ITEM_rptr(SPKI_DER));
    const unsigned char *p = der;
    EVP_PKEY *theirs = d2i_PUBKEY(NULL, &p, n);
    assert_non_null(theirs);
    assert_ptr_equal(p, der + n);
    EVP_PKEY_free(theirs);
    /* Decoded again, as a request's would be. */
    p = der;
    SPKI_DER *again = (SPKI_DER *)ASN1_item_d2i(NULL, &p, n, ASN1_ITEM_rptr(SPKI_DER));
    assert_non_null(again);
    assert_null(spki_key(again));
    spki_free(again);
    OPENSSL_free(der);
    spki_free(s);
}

/* The hybrid point forms 0x06 and 0x07 (RFC 5480 allows neither), on the short path and on the
 * long one (secp256k1). */
static void test_hybrid_points(void **state) {
    (void)state;
    static const char *const curves[] = {"P-256", "P-384", "secp256k1"};
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        EVP_PKEY *key = EVP_EC_gen(curves[i]);
        assert_non_null(key);
        SPKI_DER *s = spki_of(key);
        int len = ASN1_STRING_length(s->key);
        unsigned char point[97];
        assert_true(len <= (int)sizeof(point));
        memcpy(point, ASN1_STRING_get0_data(s->key), (size_t)len);
        assert_int_equal(point[0], 0x04);
        point[0] = (unsigned char)(0x06 | (point[len - 1] & 1));
        assert_int_equal(ASN1_BIT_STRING_set(s->key, point, len), 1);
        assert_lenient_only(s);
        EVP_PKEY_free(key);
    }
}

/* On the long path too, a point must be on the curve, and the point at infinity is refused,
 * though OpenSSL's decoder takes it. */
static void test_long_path_points(void **state) {
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("secp256k1");
    assert_non_null(key);
    SPKI_DER *s = spki_of(key);
    unsigned char point[65];
    assert_int_equal(ASN1_STRING_length(s->key), 65);
    memcpy(point, ASN1_STRING_get0_data(s->key), 65);
    point[64] ^= 1;
    assert_int_equal(ASN1_BIT_STRING_set(s->key, point, 65), 1);
    assert_null(spki_key(s));
    static const unsigned char zero = 0;
    assert_int_equal(ASN1_BIT_STRING_set(s->key, (unsigned char *)&zero, 1), 1);
    assert_lenient_only(s);
    EVP_PKEY_free(key);
}

/* The RSAPublicKey of rsa with its exponent written as e_der, followed by the text junk. */
static SPKI_DER *rsa_spki(EVP_PKEY *rsa, const unsigned char *e_der, size_t e_len,
                          const char *junk) {
    BIGNUM *n = NULL;
    unsigned char bits[300];
    size_t o = 0;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(BN_num_bytes(n), 256);
    /* SEQUENCE { INTEGER n (257 bytes: a leading zero), INTEGER e } */
    size_t inner = 4 + 257 + e_len;
    const unsigned char head[] = {
        0x30, 0x82, (unsigned char)(inner >> 8), (unsigned char)inner, 0x02, 0x82, 0x01,
        0x01, 0x00};
    memcpy(bits, head, sizeof(head));
    o = sizeof(head);
    assert_int_equal(BN_bn2binpad(n, bits + o, 256), 256);
    o += 256;
    memcpy(bits + o, e_der, e_len);
    o += e_len;
    assert_true(o + strlen(junk) <= sizeof(bits));
    memcpy(bits + o, junk, strlen(junk));
    o += strlen(junk);
    BN_free(n);
    SPKI_DER *s = spki_of(rsa);
    assert_int_equal(ASN1_BIT_STRING_set(s->key, bits, (int)o), 1);
    return s;
}

/* RSA keys OpenSSL decodes from what is not their encoding: bytes after the RSAPublicKey inside
 * the BIT STRING, an INTEGER with a needless leading zero, the X.500 identifier 2.5.8.1.1. Written
 * as OpenSSL writes them, the same keys are taken. */
static void test_rsa_encodings(void **state) {
    (void)state;
    static const unsigned char e[] = {0x02, 0x03, 0x01, 0x00, 0x01};
    static const unsigned char e_padded[] = {0x02, 0x04, 0x00, 0x01, 0x00, 0x01};
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);

    SPKI_DER *s = rsa_spki(rsa, e, sizeof(e), "");
    EVP_PKEY *key = spki_key(s);
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_eq(key, rsa), 1);
    EVP_PKEY_free(key);
    spki_free(s);

    assert_lenient_only(rsa_spki(rsa, e, sizeof(e), "JUNK"));
    assert_lenient_only(rsa_spki(rsa, e_padded, sizeof(e_padded), ""));
    s = spki_of(rsa);
    assert_int_equal(X509_ALGOR_set0(s->alg, OBJ_txt2obj("2.5.8.1.1", 1), V_ASN1_NULL, NULL), 1);
    assert_lenient_only(s);
    EVP_PKEY_free(rsa);
}

/* A point in a BIT STRING with unused bits: it would lose them in a certificate. The point's
 * last bit is zero, so that the octets OpenSSL decodes stay the point. */
static void test_unused_bits(void **state) {
    (void)state;
    EVP_PKEY *key = NULL;
    SPKI_DER *s = NULL;
    do {
        EVP_PKEY_free(key);
        spki_free(s);
        key = EVP_EC_gen("P-256");
        assert_non_null(key);
        s = spki_of(key);
    } while (ASN1_STRING_get0_data(s->key)[64] & 1);
    s->key->flags = ASN1_STRING_FLAG_BITS_LEFT | 1;
    assert_lenient_only(s);
    EVP_PKEY_free(key);
}

/* The keys holding only the curve are made once, whichever thread comes first. */
static void *decode_many(void *arg) {
    EVP_PKEY *key = arg;
    SPKI_DER *s = spki_of(key);
    for (int i = 0; i < 200; i++) {
        EVP_PKEY *got = spki_key(s);
        if (!got || EVP_PKEY_eq(got, key) != 1)
            return (void *)1;
        EVP_PKEY_free(got);
    }
    spki_free(s);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-384");
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, decode_many, key), 0);
    for (size_t i = 0; i < 4; i++) {
        void *rc = (void *)1;
        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
    EVP_PKEY_free(key);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_named_curves),
        cmocka_unit_test(test_bad_points),    cmocka_unit_test(test_infinity),
        cmocka_unit_test(test_other_keys),    cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_hybrid_points), cmocka_unit_test(test_rsa_encodings),
        cmocka_unit_test(test_unused_bits),   cmocka_unit_test(test_long_path_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
