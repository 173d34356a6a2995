/* Unit tests for lib/backoff.c: the exact waits of exponential backoff with full jitter, and the
 * Retry-After values a server may send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static void ceiling_doubles_up_to_the_cap(void **state) {
    (void)state;
    assert_int_equal(backoff_ceiling_ms(0, 1000, 60000), 1000);
    assert_int_equal(backoff_ceiling_ms(1, 1000, 60000), 2000);
    assert_int_equal(backoff_ceiling_ms(2, 1000, 60000), 4000);
    assert_int_equal(backoff_ceiling_ms(5, 1000, 60000), 32000);
    assert_int_equal(backoff_ceiling_ms(6, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(7, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(0, 250, 250), 250);
    assert_int_equal(backoff_ceiling_ms(3, 250, 1500), 1500);
}

static void ceiling_never_overflows(void **state) {
    (void)state;
    assert_int_equal(backoff_ceiling_ms(31, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(32, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(63, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(UINT32_MAX, 1000, 60000), 60000);
    assert_int_equal(backoff_ceiling_ms(31, UINT32_MAX, UINT32_MAX), UINT32_MAX);
    assert_int_equal(backoff_ceiling_ms(1, UINT32_MAX, UINT32_MAX), UINT32_MAX);
    assert_int_equal(backoff_ceiling_ms(0, UINT32_MAX, UINT32_MAX), UINT32_MAX);
}

static void delay_spans_zero_to_ceiling(void **state) {
    (void)state;
    /* The extremes of the random number land on the ends of [0, ceiling]. */
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, 0), 0);
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, UINT32_MAX), 1000);
    assert_int_equal(backoff_delay_ms(3, 1000, 60000, UINT32_MAX), 8000);
    assert_int_equal(backoff_delay_ms(10, 1000, 60000, UINT32_MAX), 60000);
    assert_int_equal(backoff_delay_ms(10, 1000, 60000, 0), 0);
    assert_int_equal(backoff_delay_ms(0, UINT32_MAX, UINT32_MAX, UINT32_MAX), UINT32_MAX);
}

static void delay_scales_the_random_number(void **state) {
    (void)state;
    /* rnd / 2^32 * (ceiling + 1), rounded down. */
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, 0x80000000u), 500);
    assert_int_equal(backoff_delay_ms(1, 1000, 60000, 0x80000000u), 1000);
    assert_int_equal(backoff_delay_ms(2, 1000, 60000, 0x40000000u), 1000);
    assert_int_equal(backoff_delay_ms(2, 1000, 60000, 0xC0000000u), 3000);
    assert_int_equal(backoff_delay_ms(6, 1000, 60000, 0x40000000u), 15000);
    /* 4290676.6 is 2^32 / 1001: the edges between 6 and 7 ms around 7 of those steps. */
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, 4290676u * 7), 6);
    assert_int_equal(backoff_delay_ms(0, 1000, 60000, 4290677u * 7), 7);
}

static void delay_never_exceeds_ceiling(void **state) {
    uint32_t attempt, r;

    (void)state;
    for (attempt = 0; attempt < 40; attempt++) {
        for (r = 0; r < 64; r++) {
            uint32_t rnd = r * 0x04000000u + (r & 1u) * 0x03FFFFFFu;
            uint32_t d = backoff_delay_ms(attempt, 1000, 60000, rnd);
            assert_true(d <= backoff_ceiling_ms(attempt, 1000, 60000));
        }
    }
}

static void retry_after_seconds(void **state) {
    uint32_t ms = 0;

    (void)state;
    assert_int_equal(backoff_retry_after_ms("1", &ms), 0);
    assert_int_equal(ms, 1000);
    assert_int_equal(backoff_retry_after_ms("7", &ms), 0);
    assert_int_equal(ms, 7000);
    assert_int_equal(backoff_retry_after_ms("120", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(backoff_retry_after_ms("300", &ms), 0);
    assert_int_equal(ms, 300000);
}

static void retry_after_is_clamped(void **state) {
    uint32_t ms = 0;

    (void)state;
    assert_int_equal(backoff_retry_after_ms("0", &ms), 0);
    assert_int_equal(ms, RETRY_AFTER_MIN_MS);
    assert_int_equal(backoff_retry_after_ms("000", &ms), 0);
    assert_int_equal(ms, RETRY_AFTER_MIN_MS);
    assert_int_equal(backoff_retry_after_ms("301", &ms), 0);
    assert_int_equal(ms, RETRY_AFTER_MAX_MS);
    assert_int_equal(backoff_retry_after_ms("86400", &ms), 0);
    assert_int_equal(ms, RETRY_AFTER_MAX_MS);
    assert_int_equal(backoff_retry_after_ms("99999999999999999999999999999", &ms), 0);
    assert_int_equal(ms, RETRY_AFTER_MAX_MS);
}

static void retry_after_other_forms_are_ignored(void **state) {
    static const char *const bad[] = {
        "", "-1", "1.5", " 1", "1 ", "+3", "0x10", "abc", "Wed, 21 Oct 2026 07:28:00 GMT"};
    uint32_t ms = 4242;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(backoff_retry_after_ms(bad[i], &ms), -1);
        assert_int_equal(ms, 4242);
    }
    assert_int_equal(backoff_retry_after_ms(NULL, &ms), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ceiling_doubles_up_to_the_cap),
        cmocka_unit_test(ceiling_never_overflows),
        cmocka_unit_test(delay_spans_zero_to_ceiling),
        cmocka_unit_test(delay_scales_the_random_number),
        cmocka_unit_test(delay_never_exceeds_ceiling),
        cmocka_unit_test(retry_after_seconds),
        cmocka_unit_test(retry_after_is_clamped),
        cmocka_unit_test(retry_after_other_forms_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
