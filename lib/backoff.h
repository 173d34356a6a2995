/* The waiting rules of libprov's retries, as pure functions so that they can be checked to the
 * millisecond: exponential backoff with full jitter, and the server's Retry-After. */
#ifndef PROV_LIB_BACKOFF_H
#define PROV_LIB_BACKOFF_H

#include <stdint.h>

/* A Retry-After is honoured within these bounds, as the DPS device SDKs do: a server asking
 * for no wait at all still gets a second, one asking for hours is not obeyed blindly. */
#define RETRY_AFTER_MIN_MS 1000u
#define RETRY_AFTER_MAX_MS 300000u

/* The upper bound of the wait before retry number attempt (0 for the first retry):
 * min(cap_ms, base_ms * 2^attempt), without overflow for any attempt. */
uint32_t backoff_ceiling_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms);

/* The wait before retry number attempt with "full jitter": uniform in [0, ceiling] given a
 * uniform 32-bit random number rnd (0 gives 0, UINT32_MAX gives the ceiling). */
uint32_t backoff_delay_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd);

/* Parses a Retry-After value in its delta-seconds form (digits only). Returns 0 and sets *ms
 * to the wait clamped to [RETRY_AFTER_MIN_MS, RETRY_AFTER_MAX_MS], or -1 when value is NULL,
 * empty, an HTTP date or anything else (the caller then falls back to its own backoff). */
int backoff_retry_after_ms(const char *value, uint32_t *ms);

#endif
