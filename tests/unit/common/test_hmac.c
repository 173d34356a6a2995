/* Unit tests for common/hmac.c: RFC 4231 known answers and every seed-token and group-derivation
 * vector of tests/data/crypto-vectors.json. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "vectors.h"

#include "hmac.h"

static void hex(const unsigned char *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void test_rfc4231(void **state) {
    unsigned char key1[20], key6[131], mac[HMAC_SHA256_LEN];
    char h[2 * HMAC_SHA256_LEN + 1];
    static const char msg6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    (void)state;

    memset(key1, 0x0b, sizeof(key1));
    assert_int_equal(hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    assert_int_equal(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* A key longer than the block is hashed first; this case checks that path. */
    memset(key6, 0xaa, sizeof(key6));
    assert_int_equal(hmac_sha256(key6, sizeof(key6), msg6, sizeof(msg6) - 1, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* HMAC-SHA256 of RFC 4231's test case 2 ("Jefe"), and of an empty key and message. */
static const char jefe_mac[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
static const char empty_mac[] = "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";

/* Each call takes its own key: an empty key right after another one is not the previous key
 * (OpenSSL keeps the previous key when given none), and going back gives the first answer. */
static void test_key_changes(void **state) {
    unsigned char mac[HMAC_SHA256_LEN];
    char h[2 * HMAC_SHA256_LEN + 1];
    (void)state;

    assert_int_equal(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, jefe_mac);
    assert_int_equal(hmac_sha256(NULL, 0, NULL, 0, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, empty_mac);
    assert_int_equal(hmac_sha256("", 0, "", 0, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, empty_mac);
    assert_int_equal(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, jefe_mac);
}

/* Forgetting the thread's context wipes the last key; the next call makes a new context and
 * computes as before. Forgetting before any use, or twice, is harmless. */
static void *forget_in_new_thread(void *arg) {
    unsigned char mac[HMAC_SHA256_LEN];
    char h[2 * HMAC_SHA256_LEN + 1];
    int *ok = arg;

    /* This thread has no context yet. */
    hmac_sha256_forget();
    if (hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac) != 0)
        return NULL;
    hex(mac, sizeof(mac), h);
    if (strcmp(h, jefe_mac) != 0)
        return NULL;
    hmac_sha256_forget();
    hmac_sha256_forget();
    /* An empty key on a new context is the empty key, not the forgotten one. */
    if (hmac_sha256(NULL, 0, NULL, 0, mac) != 0)
        return NULL;
    hex(mac, sizeof(mac), h);
    if (strcmp(h, empty_mac) != 0)
        return NULL;
    hmac_sha256_forget();
    if (hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac) != 0)
        return NULL;
    hex(mac, sizeof(mac), h);
    *ok = strcmp(h, jefe_mac) == 0;
    hmac_sha256_forget();
    return NULL;
}

static void test_forget(void **state) {
    unsigned char mac[HMAC_SHA256_LEN];
    char h[2 * HMAC_SHA256_LEN + 1];
    pthread_t t;
    int ok = 0;
    (void)state;

    assert_int_equal(pthread_create(&t, NULL, forget_in_new_thread, &ok), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(ok);
    /* The same in this thread, which has used its context before. */
    assert_int_equal(hmac_sha256("key", 3, "msg", 3, mac), 0);
    hmac_sha256_forget();
    hmac_sha256_forget();
    assert_int_equal(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    hex(mac, sizeof(mac), h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

#define THREADS     4
#define THREAD_MACS 2000

/* Computes the RFC 4231 case 2 answer THREAD_MACS times, alternating with another key; counts
 * in *arg how many answers were wrong. */
static void *mac_loop(void *arg) {
    static const unsigned char want[HMAC_SHA256_LEN] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    unsigned char mac[HMAC_SHA256_LEN];
    size_t *wrong = arg;

    for (int i = 0; i < THREAD_MACS; i++) {
        if (hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac) != 0 ||
            memcmp(mac, want, sizeof(mac)) != 0)
            (*wrong)++;
        if (hmac_sha256("other key", 9, &i, sizeof(i), mac) != 0)
            (*wrong)++;
    }
    return NULL;
}

/* Threads computing at the same time each get their own answers. */
static void test_threads(void **state) {
    pthread_t t[THREADS];
    size_t wrong[THREADS] = {0};
    (void)state;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mac_loop, &wrong[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(wrong[i], 0);
    }
}

static void test_seed_token_vectors(void **state) {
    json_t *arr = json_object_get(vectors, "seed_token"), *v;
    size_t i;
    (void)state;

    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);
    json_array_foreach(arr, i, v) {
        const char *secret = vector_str(v, "secret_raw");
        char *tok = derive_raw_secret(secret, strlen(secret), vector_str(v, "device_id"));
        assert_non_null(tok);
        assert_string_equal(tok, vector_str(v, "token"));
        free(tok);
    }
}

static void test_group_derivation_vectors(void **state) {
    json_t *arr = json_object_get(vectors, "group_key_derivation"), *v;
    size_t i;
    (void)state;

    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 2);
    json_array_foreach(arr, i, v) {
        const char *why = NULL;
        char *key = derive_device_key(vector_str(v, "group_key_b64"),
                                      vector_str(v, "registration_id"), &why);
        if (key == NULL)
            fail_msg("vector %zu refused: %s", i, why);
        assert_string_equal(key, vector_str(v, "derived_key_b64"));
        free(key);
    }
}

static void test_derivations_differ(void **state) {
    /* The raw form keys HMAC with the secret's characters, the DPS form with its decoded bytes, so
     * the same text gives different keys: a tool mixing them up must be caught. */
    const char *k = "c2VjcmV0";
    char *a = derive_raw_secret(k, strlen(k), "dev-1");
    char *b = derive_device_key(k, "dev-1", NULL);
    char *c = derive_raw_secret("secret", 6, "dev-1");
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_not_equal(a, b);
    assert_string_equal(b, c);
    free(a);
    free(b);
    free(c);
}

static void test_empty_secret(void **state) {
    char *t;
    (void)state;
    t = derive_raw_secret(NULL, 0, "device-001");
    assert_non_null(t);
    assert_string_equal(t, "LcHk9vgOHgVRDE8a3iIa41zb7dgk3yz8mM4r1Wl90/U=");
    free(t);
    t = derive_raw_secret("", 0, "device-001");
    assert_string_equal(t, "LcHk9vgOHgVRDE8a3iIa41zb7dgk3yz8mM4r1Wl90/U=");
    free(t);
}

static void test_derive_refuses_bad_group_key(void **state) {
    const char *why = NULL;
    (void)state;
    assert_null(derive_device_key("not-base64!", "dev", &why));
    assert_string_equal(why, "invalid character");
    why = NULL;
    assert_null(derive_device_key("Zm9vY", "dev", &why));
    assert_string_equal(why, "bad length");
    why = NULL;
    assert_null(derive_device_key(NULL, "dev", &why));
    assert_non_null(why);
    why = NULL;
    assert_null(derive_device_key("Zm9v", NULL, &why));
    assert_non_null(why);
    assert_null(derive_raw_secret("x", 1, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_key_changes),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_seed_token_vectors),
        cmocka_unit_test(test_group_derivation_vectors),
        cmocka_unit_test(test_derivations_differ),
        cmocka_unit_test(test_empty_secret),
        cmocka_unit_test(test_derive_refuses_bad_group_key),
    };
    return cmocka_run_group_tests(tests, vectors_load, vectors_free);
}
