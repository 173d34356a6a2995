/* Unit tests for common/base64.c: RFC 4648 vectors, round trips and every strict rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

struct pair {
    const char *plain;
    const char *enc;
};

/* RFC 4648 section 10. */
static const struct pair rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_encode_rfc4648(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        char *e = b64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain));
        assert_non_null(e);
        assert_string_equal(e, rfc4648[i].enc);
        free(e);
    }
}

static void test_decode_rfc4648(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        unsigned char *out = NULL;
        size_t outlen = 99;
        const char *why = NULL;
        assert_int_equal(b64_decode(rfc4648[i].enc, strlen(rfc4648[i].enc), &out, &outlen, &why),
                         0);
        assert_non_null(out);
        assert_int_equal(outlen, strlen(rfc4648[i].plain));
        assert_memory_equal(out, rfc4648[i].plain, outlen);
        assert_int_equal(out[outlen], '\0');
        b64_free(out, outlen);
    }
}

static void test_binary_roundtrip(void **state) {
    unsigned char all[256];
    (void)state;
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(255 - i);
    /* Every length up to 256 exercises the three tail cases many times over. */
    for (size_t len = 0; len <= sizeof(all); len++) {
        char *e = b64_encode(all, len);
        unsigned char *out = NULL;
        size_t outlen = 0;
        assert_non_null(e);
        assert_int_equal(strlen(e), (len + 2) / 3 * 4);
        assert_int_equal(b64_decode(e, strlen(e), &out, &outlen, NULL), 0);
        assert_int_equal(outlen, len);
        if (len > 0)
            assert_memory_equal(out, all, len);
        b64_free(out, outlen);
        free(e);
    }
}

static void test_encode_alphabet(void **state) {
    /* 0xfb 0xff 0xbf encodes as "+/+/": both characters past the letters and digits. */
    static const unsigned char in[] = {0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83};
    char *e;
    (void)state;
    e = b64_encode(in, sizeof(in));
    assert_string_equal(e, "+/+/ABCD");
    free(e);
}

struct bad {
    const char *in;
    size_t len;
    const char *why;
};

static void expect_reject(int (*fn)(const char *, size_t, unsigned char **, size_t *,
                                    const char **),
                          const struct bad *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char *out = (unsigned char *)"sentinel";
        size_t outlen = 7;
        const char *why = NULL;
        int rc = fn(cases[i].in, cases[i].len, &out, &outlen, &why);
        if (rc != -1 || why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("input #%zu: rc %d, why \"%s\", wanted \"%s\"", i, rc, why ? why : "(null)",
                     cases[i].why);
        assert_null(out);
    }
}

#define S(lit) lit, sizeof(lit) - 1

static void test_strict_rejections(void **state) {
    static const struct bad cases[] = {
        {S("Zm9-"), "invalid character"}, /* URL-safe alphabet */
        {S("Zm_v"), "invalid character"}, /* URL-safe alphabet */
        {S("Zm9v!A=="), "invalid character"},
        {S("Zm\0v"), "invalid character"}, /* an embedded NUL inside the given length */
        {S("Zm9"), "bad length"},
        {S("Zm9vY"), "bad length"},
        {S("Zg"), "bad length"}, /* padding left out */
        {S("Zg="), "bad length"},
        {S("Zg==="), "bad length"},
        {S("Z==="), "bad padding"},
        {S("===="), "bad padding"},
        {S("Zg=a"), "data after padding"},
        {S("Zg==Zm9v"), "data after padding"},
        {S("Z=g="), "data after padding"},
        {S("Zh=="), "non-zero trailing bits"}, /* 'h' leaves 0001 below the byte */
        {S("Zm9="), "non-zero trailing bits"}, /* '9' leaves 01 below the two bytes */
        {S("Zm9v\n"), "whitespace not allowed"},
        {S("Zm 9v"), "whitespace not allowed"},
        {S("\tZm9v"), "whitespace not allowed"},
        {S("Zm9v\r\nYmFy"), "whitespace not allowed"},
    };
    (void)state;
    expect_reject(b64_decode, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_strict_why_optional(void **state) {
    unsigned char *out = NULL;
    size_t outlen = 0;
    (void)state;
    assert_int_equal(b64_decode(S("Zh=="), &out, &outlen, NULL), -1);
    assert_null(out);
}

static void test_strict_uses_given_length(void **state) {
    unsigned char *out = NULL;
    size_t outlen = 0;
    (void)state;
    /* Only the first four characters count; what follows is not looked at. */
    assert_int_equal(b64_decode("Zm9v!!!!", 4, &out, &outlen, NULL), 0);
    assert_int_equal(outlen, 3);
    assert_memory_equal(out, "foo", 3);
    b64_free(out, outlen);
}

static void test_empty(void **state) {
    unsigned char *out = NULL;
    size_t outlen = 5;
    (void)state;
    assert_int_equal(b64_decode("", 0, &out, &outlen, NULL), 0);
    assert_non_null(out);
    assert_int_equal(outlen, 0);
    assert_int_equal(out[0], '\0');
    b64_free(out, outlen);
}

static void test_lenient_accepts_whitespace(void **state) {
    static const struct pair cases[] = {
        {"foobar", "Zm9v\r\nYmFy"},   {"foobar", "Zm9v\nYmFy\n"}, {"fooba", " Zm9v YmE= "},
        {"foob", "\tZm9vYg=\r\n=\n"}, {"f", "Z\ng\n=\n=\n"},      {"", "\r\n \t"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *out = NULL;
        size_t outlen = 0;
        const char *why = NULL;
        int rc = b64_decode_lenient(cases[i].enc, strlen(cases[i].enc), &out, &outlen, &why);
        if (rc != 0)
            fail_msg("case #%zu refused: %s", i, why);
        assert_int_equal(outlen, strlen(cases[i].plain));
        assert_memory_equal(out, cases[i].plain, outlen);
        b64_free(out, outlen);
    }
}

static void test_lenient_still_strict(void **state) {
    static const struct bad cases[] = {
        {S("Zm9v!\n"), "invalid character"},
        {S("Zm9v\vYmFy"), "invalid character"}, /* vertical tab is not skipped */
        {S("Zm-v\n"), "invalid character"},
        {S("Zm9vY\n"), "bad length"},
        {S("Zg\n"), "bad length"},
        {S("Z===\n"), "bad padding"},
        {S("Zg==\nZm9v"), "data after padding"},
        {S("Zh==\r\n"), "non-zero trailing bits"},
    };
    (void)state;
    expect_reject(b64_decode_lenient, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_free_null(void **state) {
    (void)state;
    b64_free(NULL, 0);
    b64_free(NULL, 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_rfc4648),
        cmocka_unit_test(test_decode_rfc4648),
        cmocka_unit_test(test_binary_roundtrip),
        cmocka_unit_test(test_encode_alphabet),
        cmocka_unit_test(test_strict_rejections),
        cmocka_unit_test(test_strict_why_optional),
        cmocka_unit_test(test_strict_uses_given_length),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_lenient_accepts_whitespace),
        cmocka_unit_test(test_lenient_still_strict),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
