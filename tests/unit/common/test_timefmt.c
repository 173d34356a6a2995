/* Unit tests for common/timefmt.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timefmt.h"

static void expect_fmt(time_t sec, long nsec, const char *want) {
    struct timespec ts = {.tv_sec = sec, .tv_nsec = nsec};
    char out[TIME_DPS_LEN];
    memset(out, 'X', sizeof(out));
    time_format_dps(&ts, out);
    assert_string_equal(out, want);
}

static void test_format_fixed(void **state) {
    (void)state;
    expect_fmt(1795659795, 123456789, "2026-11-26T02:23:15.1234567Z");
    expect_fmt(0, 0, "1970-01-01T00:00:00.0000000Z");
    expect_fmt(951782400, 500000000, "2000-02-29T00:00:00.5000000Z");
    expect_fmt(1700000000, 1000, "2023-11-14T22:13:20.0000010Z");
}

static void test_fraction_is_truncated_to_100ns(void **state) {
    (void)state;
    expect_fmt(0, 99, "1970-01-01T00:00:00.0000000Z");
    expect_fmt(0, 100, "1970-01-01T00:00:00.0000001Z");
    expect_fmt(0, 199, "1970-01-01T00:00:00.0000001Z");
    expect_fmt(0, 999999999, "1970-01-01T00:00:00.9999999Z");
}

static void test_out_of_range(void **state) {
    (void)state;
    /* Four year digits at most: times beyond are clamped instead of overflowing the buffer. */
    expect_fmt(253402300799, 0, "9999-12-31T23:59:59.0000000Z");
    expect_fmt((time_t)INT64_C(253402300800), 0, "9999-12-31T23:59:59.9999999Z");
    expect_fmt((time_t)INT64_MAX, 0, "9999-12-31T23:59:59.9999999Z");
    expect_fmt(-1, 0, "1969-12-31T23:59:59.0000000Z");
    expect_fmt((time_t)INT64_C(-62167219200), 0, "0000-01-01T00:00:00.0000000Z");
    expect_fmt((time_t)INT64_MIN, 0, "0000-01-01T00:00:00.0000000Z");
    /* An impossible nanosecond count gives no fraction rather than extra digits. */
    expect_fmt(0, 1000000000, "1970-01-01T00:00:00.0000000Z");
    expect_fmt(0, -1, "1970-01-01T00:00:00.0000000Z");
}

static int digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/* The clock read as the time_now_ functions read it: time() may read a coarser one,
 * a tick behind, which a second may have passed in between. */
static struct timespec realtime(void) {
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
    return ts;
}

static void test_now_dps(void **state) {
    char out[TIME_DPS_LEN];
    struct tm tm;
    time_t before = realtime().tv_sec, after;
    char want[20];
    (void)state;

    time_now_dps(out);
    after = realtime().tv_sec;
    assert_int_equal(strlen(out), TIME_DPS_LEN - 1);
    assert_true(digits(out, 4) && digits(out + 5, 2) && digits(out + 8, 2) && digits(out + 11, 2) &&
                digits(out + 14, 2) && digits(out + 17, 2) && digits(out + 20, 7));
    assert_int_equal(out[4], '-');
    assert_int_equal(out[7], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[13], ':');
    assert_int_equal(out[16], ':');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[27], 'Z');
    /* The seconds part equals the clock's, read before or after (a second may tick between). */
    gmtime_r(&before, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
    if (strncmp(out, want, 19) != 0) {
        gmtime_r(&after, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        assert_memory_equal(out, want, 19);
    }
}

static void test_now_unix(void **state) {
    struct timespec before = realtime();
    int64_t now = time_now_unix();
    struct timespec after = realtime();
    (void)state;
    assert_true(now >= (int64_t)before.tv_sec);
    assert_true(now <= (int64_t)after.tv_sec);
    assert_true(now > INT64_C(1700000000));
}

static void test_ms(void **state) {
    char out[TIME_DPS_LEN];
    struct timespec before = realtime();
    int64_t now = time_now_unix_ms();
    struct timespec after = realtime();
    (void)state;
    assert_true(now >= (int64_t)before.tv_sec * 1000 + before.tv_nsec / 1000000);
    assert_true(now <= (int64_t)after.tv_sec * 1000 + after.tv_nsec / 1000000);
    time_format_dps_ms(INT64_C(1795654923456), out);
    assert_string_equal(out, "2026-11-26T01:02:03.4560000Z");
    /* Before 1970 the fraction still counts forward from the second before. */
    time_format_dps_ms(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.9990000Z");
}

static void test_mono_us(void **state) {
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    uint64_t a, b, c;
    (void)state;
    a = time_mono_us();
    b = time_mono_us();
    assert_true(b >= a);
    nanosleep(&pause, NULL);
    c = time_mono_us();
    assert_true(c - b >= 20000);
    assert_true(c - b < 5 * 1000 * 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_fixed), cmocka_unit_test(test_fraction_is_truncated_to_100ns),
        cmocka_unit_test(test_out_of_range), cmocka_unit_test(test_now_dps),
        cmocka_unit_test(test_now_unix),     cmocka_unit_test(test_mono_us),
        cmocka_unit_test(test_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
