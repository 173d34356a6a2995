/* Public keys from their SubjectPublicKeyInfo: the short path of P-256 and P-384 gives the key
 * OpenSSL's own decoder gives, in both point forms, and refuses what it refuses; every other key
 * goes through OpenSSL's decoder and comes out the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

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
        cmocka_unit_test(test_threads),    cmocka_unit_test(test_named_curves),
        cmocka_unit_test(test_bad_points), cmocka_unit_test(test_infinity),
        cmocka_unit_test(test_other_keys), cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
