/* Unit tests for common/rand.c: byte counts, UUIDv4 layout and bits, generated keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"
#include "rand.h"

static void test_rand_bytes(void **state) {
    unsigned char a[64], b[64], zero[64];
    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    memset(zero, 0, sizeof(zero));
    assert_int_equal(rand_bytes(a, sizeof(a)), 0);
    assert_int_equal(rand_bytes(b, sizeof(b)), 0);
    /* Each check fails by chance with probability 2^-512. */
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(rand_bytes(NULL, 0), 0);
}

static void test_rand_bytes_exact_count(void **state) {
    unsigned char buf[40];
    (void)state;
    /* Bytes past the requested count must stay as they were. */
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(rand_bytes(buf, 32), 0);
    for (size_t i = 32; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0x5a);
}

static int is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_uuid(const char *u) {
    assert_int_equal(strlen(u), UUID_STR_LEN - 1);
    for (size_t i = 0; i < UUID_STR_LEN - 1; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(u[i], '-');
        } else if (!is_lower_hex(u[i])) {
            fail_msg("uuid %s: character %zu is not lower-case hex", u, i);
        }
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

#define N_UUIDS 2000

static void test_uuid_v4(void **state) {
    static char ids[N_UUIDS][UUID_STR_LEN];
    int variants[4] = {0, 0, 0, 0};
    (void)state;

    for (size_t i = 0; i < N_UUIDS; i++) {
        memset(ids[i], 'X', UUID_STR_LEN);
        assert_int_equal(uuid_v4(ids[i]), 0);
        check_uuid(ids[i]);
        variants[strchr("89ab", ids[i][19]) - "89ab"]++;
    }
    /* All four variant digits show up: the two low bits of that nibble stay random. */
    for (size_t i = 0; i < 4; i++)
        assert_true(variants[i] > 0);
    qsort(ids, N_UUIDS, UUID_STR_LEN, cmp_str);
    for (size_t i = 1; i < N_UUIDS; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
}

static void check_key(size_t n, size_t b64len) {
    char *k = rand_key_b64(n), *k2 = rand_key_b64(n);
    unsigned char *raw = NULL;
    size_t rawlen = 0;

    assert_non_null(k);
    assert_non_null(k2);
    assert_int_equal(strlen(k), b64len);
    assert_int_equal(b64_decode(k, strlen(k), &raw, &rawlen, NULL), 0);
    assert_int_equal(rawlen, n);
    /* Two draws of 16 bytes or more collide with probability 2^-128 at most. */
    if (n >= 16)
        assert_string_not_equal(k, k2);
    b64_free(raw, rawlen);
    free(k);
    free(k2);
}

static void test_rand_key_b64(void **state) {
    (void)state;
    check_key(64, 88);
    check_key(32, 44);
    check_key(16, 24);
    check_key(1, 4);
    assert_null(rand_key_b64(0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rand_bytes),
        cmocka_unit_test(test_rand_bytes_exact_count),
        cmocka_unit_test(test_uuid_v4),
        cmocka_unit_test(test_rand_key_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
