/* Unit tests for common/urlenc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "urlenc.h"

static void expect_decode(const char *in, size_t len, const char *want) {
    char *out = url_decode(in, len);
    if (out == NULL)
        fail_msg("\"%s\" refused", in);
    assert_string_equal(out, want);
    free(out);
}

static void test_decode(void **state) {
    (void)state;
    expect_decode("", 0, "");
    expect_decode("plain", 5, "plain");
    expect_decode("0ne00AB%2fregistrations%2fdev-1", 31, "0ne00AB/registrations/dev-1");
    expect_decode("0ne00AB%2Fregistrations%2Fdev-1", 31, "0ne00AB/registrations/dev-1");
    expect_decode("%41%62%7e", 9, "Ab~");
    expect_decode("a+b", 3, "a+b"); /* '+' is not a space here: base64 signatures contain it */
    expect_decode("%2B%2b", 6, "++");
    expect_decode("%25", 3, "%");
    expect_decode("%2541", 5, "%41"); /* decoded once, not twice */
    expect_decode("%C3%A9", 6, "\xc3\xa9");
    expect_decode("%ff%01", 6, "\xff\x01");
}

static void test_decode_uses_length(void **state) {
    (void)state;
    expect_decode("abc%2F", 3, "abc");
    expect_decode("%2Fzzz", 3, "/");
    /* The length cuts an escape in half: that is a malformed escape, not a shorter string. */
    assert_null(url_decode("a%2Fb", 3));
    assert_null(url_decode("a%2Fb", 2));
}

static void test_decode_malformed(void **state) {
    static const char *const bad[] = {"%",  "%2",   "abc%", "abc%4", "%G0", "%2G",
                                      "%%", "%%41", "% 41", "%-1",   "%+1", "%0x"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = url_decode(bad[i], strlen(bad[i]));
        if (out != NULL)
            fail_msg("\"%s\" accepted as \"%s\"", bad[i], out);
    }
    assert_null(url_decode(NULL, 0));
}

static void test_decode_refuses_nul(void **state) {
    (void)state;
    assert_null(url_decode("%00", 3));
    assert_null(url_decode("ab%00cd", 7));
    /* A raw NUL inside the given length is refused as well. */
    assert_null(url_decode("ab\0cd", 5));
}

static void test_encode(void **state) {
    static const char unreserved[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    char *e;
    (void)state;

    e = url_encode(unreserved, 1);
    assert_string_equal(e, unreserved);
    free(e);
    e = url_encode("Z4EuSOuHpVww2iHOBIRx/YZn59DOod4l+uTTw9QlOnc=", 1);
    assert_string_equal(e, "Z4EuSOuHpVww2iHOBIRx%2FYZn59DOod4l%2BuTTw9QlOnc%3D");
    free(e);
    e = url_encode("a/b+c= d", 0);
    assert_string_equal(e, "a%2fb%2bc%3d%20d");
    free(e);
    e = url_encode("a/b+c= d", 1);
    assert_string_equal(e, "a%2Fb%2Bc%3D%20d");
    free(e);
    e = url_encode("\xc3\xa9%&?#\x7f\x01", 1);
    assert_string_equal(e, "%C3%A9%25%26%3F%23%7F%01");
    free(e);
    e = url_encode("", 1);
    assert_string_equal(e, "");
    free(e);
    assert_null(url_encode(NULL, 1));
}

static void test_roundtrip_all_bytes(void **state) {
    char all[256];
    (void)state;
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    for (int upper = 0; upper <= 1; upper++) {
        char *e = url_encode(all, upper);
        char *d;
        assert_non_null(e);
        /* 66 unreserved characters stay as they are, the other 189 take three characters each. */
        assert_int_equal(strlen(e), 66 + 189 * 3);
        d = url_decode(e, strlen(e));
        assert_non_null(d);
        assert_string_equal(d, all);
        free(d);
        free(e);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),           cmocka_unit_test(test_decode_uses_length),
        cmocka_unit_test(test_decode_malformed), cmocka_unit_test(test_decode_refuses_nul),
        cmocka_unit_test(test_encode),           cmocka_unit_test(test_roundtrip_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
