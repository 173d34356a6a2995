/* Unit tests for common/regid.c: the registration ID rules of DESIGN.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "regid.h"

static void expect_ok(const char *id) {
    const char *why = NULL;
    if (regid_check(id, &why) != 0)
        fail_msg("\"%s\" refused: %s", id, why);
    assert_null(why);
}

static void expect_refused(const char *id, const char *reason) {
    const char *why = NULL;
    if (regid_check(id, &why) != -1)
        fail_msg("\"%s\" accepted", id);
    assert_non_null(why);
    if (strcmp(why, reason) != 0)
        fail_msg("\"%s\" refused with \"%s\", wanted \"%s\"", id, why, reason);
}

static void test_valid(void **state) {
    (void)state;
    expect_ok("a");
    expect_ok("Z");
    expect_ok("0");
    expect_ok("my-device-01");
    expect_ok("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
    expect_ok("a.b_c:d-e");
    expect_ok("a--b..c__d::e");
    expect_ok("0f8fad5b-d9cb-469f-a165-70867728950e");
    expect_ok("MixedCase09");
}

static void test_length_boundaries(void **state) {
    char id[REGID_MAX + 2];
    (void)state;
    assert_int_equal(REGID_MAX, 128);
    memset(id, 'a', sizeof(id));
    id[REGID_MAX] = '\0';
    expect_ok(id);
    id[REGID_MAX] = 'a';
    id[REGID_MAX + 1] = '\0';
    expect_refused(id, "longer than 128 characters");
    /* Length is reported even when the too-long ID would also break the edge rule. */
    id[REGID_MAX] = '-';
    expect_refused(id, "longer than 128 characters");
}

static void test_empty(void **state) {
    (void)state;
    expect_refused("", "empty");
    expect_refused(NULL, "empty");
}

static void test_special_at_edges(void **state) {
    static const char specials[] = "-._:";
    char id[8];
    (void)state;
    for (size_t i = 0; i < sizeof(specials) - 1; i++) {
        char c = specials[i];
        snprintf(id, sizeof(id), "%cabc", c);
        expect_refused(id, "starts or ends with a special character");
        snprintf(id, sizeof(id), "abc%c", c);
        expect_refused(id, "starts or ends with a special character");
        snprintf(id, sizeof(id), "%c", c);
        expect_refused(id, "starts or ends with a special character");
        snprintf(id, sizeof(id), "a%cb", c);
        expect_ok(id);
    }
}

static void test_forbidden_characters(void **state) {
    static const char *const bad[] = {
        "a b",  "a/b",  "a@b",  "a+b", "a%2fb", "a\tb", "dev~", "dev!", "\xc3\xa9t\xc3\xa9",
        "a\nb", "a\"b", "a\\b", "a,b", "a;b",   "a=b",  "a&b",  " a",   "a "};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i], "forbidden character");
}

static void test_why_optional(void **state) {
    (void)state;
    assert_int_equal(regid_check("-x", NULL), -1);
    assert_int_equal(regid_check("x", NULL), 0);
}

static void test_lower(void **state) {
    char id[] = "My-Device.01:X_Y";
    char all[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:abc";
    (void)state;
    regid_lower(id);
    assert_string_equal(id, "my-device.01:x_y");
    regid_lower(all);
    assert_string_equal(all, "abcdefghijklmnopqrstuvwxyz0123456789-._:abc");
    regid_lower(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_length_boundaries),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_special_at_edges),
        cmocka_unit_test(test_forbidden_characters),
        cmocka_unit_test(test_why_optional),
        cmocka_unit_test(test_lower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
