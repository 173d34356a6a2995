/* Allocation policies. See allocation.h. */
#include "allocation.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char *const POLICIES[] = {
    [ALLOC_HASHED] = "hashed", [ALLOC_EVENLY_WEIGHTED] = "evenlyWeighted",
    [ALLOC_STATIC] = "static", [ALLOC_GEO_LATENCY] = "geoLatency",
    [ALLOC_CUSTOM] = "custom",
};

int alloc_policy_parse(const char *s, enum alloc_policy *out) {
    for (size_t i = 0; i < sizeof(POLICIES) / sizeof(POLICIES[0]); i++) {
        if (s != NULL && strcmp(s, POLICIES[i]) == 0) {
            *out = (enum alloc_policy)i;
            return 0;
        }
    }
    return -1;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* MurmurHash3's 64-bit finaliser: every input bit flips about half of the output bits, which
 * FNV-1a alone does not achieve for inputs that differ only in their last bytes. */
static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The pseudo-random score of endpoint host for the device whose mixed ID hash is key. */
static uint64_t score(uint64_t key, const char *host) {
    return mix(key ^ mix(fnv1a(host)));
}

/* Weighted rendezvous hashing: with u uniform in (0, 1), weight / -ln(u) is largest for
 * endpoint i with probability weight_i / sum(weights) (the minimum of exponential variables of
 * rates weight_i), and it still depends on nothing but the pair. */
static double weighted(uint64_t s, unsigned weight) {
    double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */

    return (double)weight / -log(u);
}

/* Highest score among the enabled endpoints of eps that match region (all when NULL). */
static long rendezvous(const char *regid, const struct endpoint *eps, size_t n, int use_weight,
                       const char *region) {
    uint64_t key = mix(fnv1a(regid));
    double best_w = -1.0;
    uint64_t best = 0;
    long chosen = -1;

    for (size_t i = 0; i < n; i++) {
        if (!eps[i].enabled ||
            (region != NULL && (eps[i].region == NULL || strcasecmp(eps[i].region, region) != 0)))
            continue;
        uint64_t s = score(key, eps[i].host);
        if (use_weight) {
            double w = weighted(s, eps[i].weight);
            if (w > best_w) {
                best_w = w;
                chosen = (long)i;
            }
        } else if (chosen < 0 || s > best) {
            best = s;
            chosen = (long)i;
        }
    }
    return chosen;
}

long alloc_choose(enum alloc_policy p, const char *regid, const struct endpoint *eps, size_t n,
                  const char *region) {
    long i;

    switch (p) {
    case ALLOC_HASHED:
        return rendezvous(regid, eps, n, 0, NULL);
    case ALLOC_EVENLY_WEIGHTED:
        return rendezvous(regid, eps, n, 1, NULL);
    case ALLOC_STATIC:
        return n > 0 && eps[0].enabled ? 0 : -1;
    case ALLOC_GEO_LATENCY:
        if (region != NULL && region[0] != '\0' && (i = rendezvous(regid, eps, n, 0, region)) >= 0)
            return i;
        return rendezvous(regid, eps, n, 0, NULL);
    case ALLOC_CUSTOM:
        break;
    }
    return -1;
}
