/* Allocation: which endpoint a device is assigned to. Pure functions over a list of endpoints,
 * so that the policies can be measured in unit tests; the registration pipeline supplies the
 * enrollment's endpoints (and runs the custom allocation webhook itself).
 *
 * hashed and evenlyWeighted use rendezvous (highest-random-weight) hashing: every endpoint gets
 * a pseudo-random score from the pair (endpoint host name, registration ID) and the device goes
 * to the highest. A device's choice therefore depends only on its own ID and the endpoints
 * present, and adding or removing one endpoint moves only the devices that endpoint wins or
 * loses: about 1/N of them. */
#ifndef PROVD_ALLOCATION_H
#define PROVD_ALLOCATION_H

#include <stddef.h>

#include "endpoint.h"

enum alloc_policy {
    ALLOC_HASHED,          /* rendezvous hashing, every endpoint alike */
    ALLOC_EVENLY_WEIGHTED, /* weighted rendezvous hashing: shares proportional to weight */
    ALLOC_STATIC,          /* the endpoint the enrollment names */
    ALLOC_GEO_LATENCY,     /* an endpoint of the device's region, else hashed */
    ALLOC_CUSTOM,          /* the enrollment's webhook decides (not chosen here) */
};

/* Parses an allocationPolicy as enrollment documents store it. Returns 0, or -1 when unknown. */
int alloc_policy_parse(const char *s, enum alloc_policy *out);

/* Chooses the endpoint of the device regid among the n endpoints eps. Disabled endpoints are
 * never chosen. ALLOC_STATIC takes eps[0] (the caller passes the one endpoint the enrollment
 * names); ALLOC_GEO_LATENCY prefers the endpoints whose region equals region (without regard to
 * case) and falls back to ALLOC_HASHED over all of them when there is none or region is NULL.
 * Returns the index of the chosen endpoint, or -1 when none is available (and always for
 * ALLOC_CUSTOM). */
long alloc_choose(enum alloc_policy p, const char *regid, const struct endpoint *eps, size_t n,
                  const char *region);

#endif
