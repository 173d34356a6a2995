/* Unit tests for common/utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void expect_repair(const char *in, const char *want) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", in);
    utf8_repair(buf);
    assert_string_equal(buf, want);
}

static void test_text_kept(void **state) {
    (void)state;
    expect_repair("", "");
    expect_repair("plain ASCII", "plain ASCII");
    expect_repair("caf\xc3\xa9", "caf\xc3\xa9");                           /* U+00E9 */
    expect_repair("\xe2\x82\xac 5", "\xe2\x82\xac 5");                     /* U+20AC */
    expect_repair("\xf0\x9f\x94\x92", "\xf0\x9f\x94\x92");                 /* U+1F512 */
    expect_repair("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");                 /* U+10FFFF */
    expect_repair("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"); /* around surrogates */
}

static void test_bytes_replaced(void **state) {
    (void)state;
    expect_repair("\xff", "?");
    expect_repair("a\x80z", "a?z");                                 /* a continuation byte alone */
    expect_repair("caf\xc3", "caf?");                               /* cut inside a character */
    expect_repair("\xe2\x82", "??");                                /* cut inside a character */
    expect_repair("\xe2\x82x", "??x");                              /* ended early */
    expect_repair("\xc0\xaf", "??");                                /* overlong '/' */
    expect_repair("\xe0\x80\xaf", "???");                           /* overlong '/' */
    expect_repair("\xf0\x80\x80\xaf", "????");                      /* overlong '/' */
    expect_repair("\xed\xa0\x80", "???");                           /* a surrogate, U+D800 */
    expect_repair("\xf4\x90\x80\x80", "????");                      /* past U+10FFFF */
    expect_repair("\xf5\x80\x80\x80", "????");                      /* past U+10FFFF */
    expect_repair("ok\xc3\xa9\xff\xc3\xa9", "ok\xc3\xa9?\xc3\xa9"); /* the rest is kept */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_kept),
        cmocka_unit_test(test_bytes_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
