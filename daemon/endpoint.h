/* Endpoints: the servers devices are assigned to (the "linked hubs" of DPS), managed through the
 * admin API and named by host name in the iotHubs and iotHubHostName of enrollments and groups.
 * This file validates the documents the admin API receives, builds the canonical form the store
 * keeps, and parses it into struct endpoint for allocation (allocation.h). */
#ifndef PROVD_ENDPOINT_H
#define PROVD_ENDPOINT_H

#include <stddef.h>

#include <jansson.h>

#include "store.h"

#define ENDPOINT_REGION_MAX 64
#define ENDPOINT_WEIGHT_MAX 10000

struct endpoint {
    char *host;         /* lower-cased host name, the endpoint's ID */
    int port;           /* 1-65535 */
    char *protocol;     /* "mqtts", "https", ... */
    unsigned weight;    /* share under evenlyWeighted allocation, 1-ENDPOINT_WEIGHT_MAX */
    int enabled;        /* disabled endpoints are never chosen for a device */
    char *region;       /* the region tag geoLatency matches, or NULL */
    char *trust_bundle; /* PEM certificates devices need to reach it, or NULL */
};

/* Validates a document received by the admin API for the endpoint path_host and builds the
 * canonical document: {"hostName", "port", "protocol", "weight", "enabled", "region"?,
 * "trustBundle"?}. The protocol defaults to mqtts and the port to the protocol's usual one;
 * weight defaults to 1 and enabled to true. Unknown fields, wrong types, values out of range, a
 * hostName that differs from path_host and a trust bundle that is not PEM certificates (with
 * nothing but white space around them) are refused. Read-only members (etag and the timestamps)
 * are accepted and dropped. Returns 0 and *out (a new reference), or -1 with a message naming
 * the field in err (UTF-8 text, fit for a JSON answer) and the error code in *code (400004 for a
 * hostName that differs from the path, 400006 otherwise). */
int endpoint_normalize(const char *path_host, json_t *in, json_t **out, int *code, char *err,
                       size_t errlen);

/* Parses a stored canonical document. Returns 0, or -1 when it is not one (logged). Release with
 * endpoint_clear. */
int endpoint_parse(const struct store_doc *d, struct endpoint *out);
void endpoint_clear(struct endpoint *e);

/* What a device is told about its endpoint: {"host", "port", "protocol", "trustBundle"?}.
 * Returns a new reference, or NULL when out of memory. */
json_t *endpoint_device_view(const struct endpoint *e);

#endif
