/* Exponential backoff with full jitter, and Retry-After. */
#include "backoff.h"

#include <stddef.h>

uint32_t backoff_ceiling_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms) {
    uint64_t v;

    /* base_ms < 2^32, so shifting by fewer than 32 bits cannot overflow 64 bits. */
    if (attempt >= 32)
        return cap_ms;
    v = (uint64_t)base_ms << attempt;
    return v < cap_ms ? (uint32_t)v : cap_ms;
}

uint32_t backoff_delay_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd) {
    uint64_t ceiling = backoff_ceiling_ms(attempt, base_ms, cap_ms);

    /* Scaling rnd by (ceiling + 1) / 2^32 maps [0, 2^32) onto [0, ceiling] evenly, without the
     * bias a modulo has, and UINT32_MAX lands exactly on the ceiling. */
    return (uint32_t)(((uint64_t)rnd * (ceiling + 1)) >> 32);
}

int backoff_retry_after_ms(const char *value, uint32_t *ms) {
    uint64_t secs = 0;
    size_t i;

    if (value == NULL || value[0] == '\0')
        return -1;
    for (i = 0; value[i] != '\0'; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        /* Anything past the maximum clamps to it; stop growing before overflow. */
        if (secs <= RETRY_AFTER_MAX_MS)
            secs = secs * 10 + (uint64_t)(value[i] - '0');
    }
    if (secs * 1000 < RETRY_AFTER_MIN_MS)
        *ms = RETRY_AFTER_MIN_MS;
    else if (secs * 1000 > RETRY_AFTER_MAX_MS)
        *ms = RETRY_AFTER_MAX_MS;
    else
        *ms = (uint32_t)(secs * 1000);
    return 0;
}
