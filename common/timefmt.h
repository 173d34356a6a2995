/* UTC timestamps in the DPS format: 2026-11-26T01:02:03.1234567Z (seven fraction digits). */
#ifndef PROV_COMMON_TIMEFMT_H
#define PROV_COMMON_TIMEFMT_H

#include <stdint.h>
#include <time.h>

#define TIME_DPS_LEN 29 /* 28 characters and the NUL */

/* Formats ts as a DPS UTC timestamp into out. */
void time_format_dps(const struct timespec *ts, char out[TIME_DPS_LEN]);

/* Formats the current time (CLOCK_REALTIME) as a DPS UTC timestamp into out. */
void time_now_dps(char out[TIME_DPS_LEN]);

/* Current Unix time in seconds. */
int64_t time_now_unix(void);

/* Current Unix time in milliseconds. */
int64_t time_now_unix_ms(void);

/* Formats a Unix time in milliseconds as a DPS UTC timestamp into out. */
void time_format_dps_ms(int64_t ms, char out[TIME_DPS_LEN]);

/* Monotonic clock in microseconds, for measuring durations. */
uint64_t time_mono_us(void);

#endif
