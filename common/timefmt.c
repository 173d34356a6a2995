/* UTC timestamps in the DPS wire format and the two clocks the programs use. */
#include "timefmt.h"

#include <stdio.h>

/* The format has room for four year digits only, so seconds are kept between
 * 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z rather than letting an absurd time from a hostile
 * or corrupt record spill past the buffer. */
#define DPS_MIN_SEC (-62167219200LL)
#define DPS_MAX_SEC 253402300799LL

static void put_digits(char *dst, long v, int width) {
    int i;

    for (i = width - 1; i >= 0; i--) {
        dst[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void time_format_dps(const struct timespec *ts, char out[TIME_DPS_LEN]) {
    long long sec = (long long)ts->tv_sec;
    long frac = ts->tv_nsec / 100;
    time_t t;
    struct tm tm;

    if (ts->tv_nsec < 0 || ts->tv_nsec > 999999999L)
        frac = 0;
    if (sec < DPS_MIN_SEC) {
        sec = DPS_MIN_SEC;
        frac = 0;
    } else if (sec > DPS_MAX_SEC) {
        sec = DPS_MAX_SEC;
        frac = 9999999;
    }
    t = (time_t)sec;
    if (gmtime_r(&t, &tm) == NULL) {
        /* Only a 32-bit time_t can get here; print the epoch rather than garbage. */
        t = 0;
        frac = 0;
        gmtime_r(&t, &tm);
    }
    put_digits(out, (long)tm.tm_year + 1900, 4);
    out[4] = '-';
    put_digits(out + 5, tm.tm_mon + 1, 2);
    out[7] = '-';
    put_digits(out + 8, tm.tm_mday, 2);
    out[10] = 'T';
    put_digits(out + 11, tm.tm_hour, 2);
    out[13] = ':';
    put_digits(out + 14, tm.tm_min, 2);
    out[16] = ':';
    put_digits(out + 17, tm.tm_sec, 2);
    out[19] = '.';
    put_digits(out + 20, frac, 7);
    out[27] = 'Z';
    out[28] = '\0';
}

void time_now_dps(char out[TIME_DPS_LEN]) {
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    time_format_dps(&ts, out);
}

int64_t time_now_unix(void) {
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t time_now_unix_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_dps_ms(int64_t ms, char out[TIME_DPS_LEN]) {
    /* Floor division, so that times before 1970 keep a fraction in [0, 1000). */
    int64_t sec = ms / 1000, rem = ms % 1000;
    struct timespec ts;

    if (rem < 0) {
        sec--;
        rem += 1000;
    }
    ts.tv_sec = (time_t)sec;
    ts.tv_nsec = (long)rem * 1000000L;
    time_format_dps(&ts, out);
}

uint64_t time_mono_us(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
