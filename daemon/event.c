/* Event bodies, signatures and the retry schedule. See event.h. */
#include "event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "hmac.h"
#include "rand.h"
#include "regid.h"

const char *const event_types[EVENT_NTYPES + 1] = {
    EVENT_DEVICE_REGISTERED,
    EVENT_DEVICE_REFUSED,
    EVENT_DEVICE_REPROVISIONED,
    EVENT_ENROLLMENT_CHANGED,
    NULL,
};

unsigned event_type_bit(const char *name) {
    for (unsigned i = 0; i < EVENT_NTYPES; i++)
        if (strcmp(event_types[i], name) == 0)
            return 1u << i;
    return 0;
}

unsigned event_types_set(const char *events) {
    unsigned set = 0;
    char name[64];

    if (strcmp(events, "*") == 0)
        return (1u << EVENT_NTYPES) - 1;
    while (*events) {
        size_t n = strcspn(events, ",");

        if (n < sizeof(name)) {
            memcpy(name, events, n);
            name[n] = '\0';
            set |= event_type_bit(name);
        }
        events += n + (events[n] == ',');
    }
    return set;
}

/* Fills ev with a fresh ID and the body {"id","type","timestampUtc","subject","data"}. Takes the
 * reference to data (which may be NULL when building it ran out of memory). */
static int build(struct store_event *ev, const char *type, const char *subject, const char *ts,
                 json_t *data) {
    char id[UUID_STR_LEN];
    json_t *body = NULL;
    int rc = -1;

    memset(ev, 0, sizeof(*ev));
    if (!data || uuid_v4(id) != 0)
        goto out;
    body = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", id, "type", type, "timestampUtc", ts,
                     "subject", subject, "data", data);
    if (!body)
        goto out;
    snprintf(ev->ts, sizeof(ev->ts), "%s", ts);
    ev->id = strdup(id);
    ev->type = strdup(type);
    ev->subject = strdup(subject);
    ev->body = json_dumps(body, JSON_COMPACT);
    if (!ev->id || !ev->type || !ev->subject || !ev->body) {
        store_event_clear(ev);
        goto out;
    }
    rc = 0;
out:
    json_decref(body);
    json_decref(data);
    return rc;
}

/* Sets member key of o to the text s, unless s is NULL. Text that is not UTF-8 (a hostile
 * registration ID that the front end refused, say) is sent with its other bytes as '?'.
 * Returns 0, or -1 when out of memory. */
static int put_text(json_t *o, const char *key, const char *s) {
    char safe[REGID_MAX + 64];
    json_t *v;
    size_t i;

    if (!s)
        return 0;
    if (!(v = json_string(s))) {
        for (i = 0; s[i] && i < sizeof(safe) - 1; i++)
            safe[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
        safe[i] = '\0';
        v = json_string(safe);
    }
    return json_object_set_new(o, key, v);
}

int event_device(struct store_event *ev, const char *type, const char *ts,
                 const struct event_device *d) {
    json_t *data = json_object();
    int bad = !data;

    bad = bad || put_text(data, "registrationId", d->registration_id) != 0 ||
          put_text(data, "deviceId", d->device_id) != 0 ||
          put_text(data, "enrollmentGroupId", d->group_id) != 0 ||
          put_text(data, "status", d->status) != 0 ||
          put_text(data, "substatus", d->substatus) != 0 ||
          put_text(data, "assignedHub", d->assigned_hub) != 0 ||
          put_text(data, "previousHub", d->previous_hub) != 0 ||
          put_text(data, "operationId", d->operation_id) != 0 ||
          json_object_set_new(data, "httpStatus", json_integer(d->http_status)) != 0 ||
          json_object_set_new(data, "errorCode", json_integer(d->error_code)) != 0 ||
          put_text(data, "reason", d->reason) != 0 ||
          put_text(data, "trackingId", d->tracking_id) != 0;
    if (bad) {
        json_decref(data);
        memset(ev, 0, sizeof(*ev));
        return -1;
    }
    return build(ev, type, json_string_value(json_object_get(data, "registrationId")), ts, data);
}

int event_enrollment(struct store_event *ev, const char *ts, const struct event_enrollment *e) {
    int group = e->kind == STORE_GROUP;
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s*}", "kind", group ? "enrollmentGroup" : "enrollment",
                  group ? "enrollmentGroupId" : "registrationId", e->id, "change", e->change,
                  "provisioningStatus", e->provisioning_status);

    return build(ev, EVENT_ENROLLMENT_CHANGED, e->id, ts, data);
}

int event_sign(const char *secret, int64_t ts, const char *body, size_t len,
               char out[EVENT_SIGNATURE_LEN]) {
    unsigned char mac[HMAC_SHA256_LEN];
    char prefix[32];
    char *msg;
    int n, rc = -1;

    n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", ts);
    msg = malloc((size_t)n + len);
    if (!msg)
        return -1;
    memcpy(msg, prefix, (size_t)n);
    memcpy(msg + n, body, len);
    if (hmac_sha256(secret, strlen(secret), msg, (size_t)n + len, mac) == 0) {
        memcpy(out, "sha256=", 7);
        for (size_t i = 0; i < sizeof(mac); i++)
            snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
        rc = 0;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    free(msg);
    return rc;
}

int64_t event_retry_delay_ms(int64_t base_ms, int64_t max_ms, int attempts, uint32_t rnd) {
    int64_t d = base_ms, half;

    for (int i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    half = d / 2;
    return d - half + (int64_t)(((uint64_t)half * rnd) >> 32);
}
