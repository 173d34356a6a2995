/* Events for the operator's webhooks (docs/events.md): their types, their JSON bodies, how a
 * delivery is signed and when a failed one is tried again. The registration pipeline and the
 * admin API decide which event a decision or a change produces; this file only gives it its
 * shape, so that the wire contract lives in one place and is tested on its own. */
#ifndef PROVD_EVENT_H
#define PROVD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define EVENT_DEVICE_REGISTERED    "device.registered"
#define EVENT_DEVICE_REFUSED       "device.refused"
#define EVENT_DEVICE_REPROVISIONED "device.reprovisioned"
#define EVENT_ENROLLMENT_CHANGED   "enrollment.changed"

/* Every event type, in the order of docs/events.md, ended by NULL. */
#define EVENT_NTYPES 4
extern const char *const event_types[EVENT_NTYPES + 1];

/* The bit of event type name in a set of types (1 << its index in event_types), 0 for an
 * unknown name. */
unsigned event_type_bit(const char *name);

/* The set of types a webhook's stored "events" text names ("*" or types separated by commas). */
unsigned event_types_set(const char *events);

/* What an event about a device's registration says. Strings may be NULL (left out). */
struct event_device {
    const char *registration_id;
    const char *device_id;
    const char *group_id; /* the enrollment group, when the device belongs to one */
    const char *status;   /* "assigned", "failed", ... */
    const char *substatus;
    const char *assigned_hub;
    const char *previous_hub; /* the endpoint before a reprovisioning */
    const char *operation_id;
    int http_status;
    int error_code; /* 0 when accepted */
    const char *reason;
    const char *tracking_id; /* the tracking ID of the request, also in its answer and audit */
};

/* What an enrollment.changed event says. */
struct event_enrollment {
    enum store_kind kind;
    const char *id;
    const char *change;              /* "created", "replaced" or "deleted" */
    const char *provisioning_status; /* NULL for a deletion */
};

/* Builds into ev (release with store_event_clear) the event of type about a device: a fresh
 * ID, the subject (the registration ID), the time ts (a DPS timestamp) and the body. Returns 0,
 * or -1 when out of memory or randomness (ev is then empty). */
int event_device(struct store_event *ev, const char *type, const char *ts,
                 const struct event_device *d);

/* Builds an enrollment.changed event into ev, as event_device does. */
int event_enrollment(struct store_event *ev, const char *ts, const struct event_enrollment *e);

/* "sha256=" and 64 hex digits. */
#define EVENT_SIGNATURE_LEN (7 + 2 * 32 + 1)

/* Writes the X-Provd-Signature value of a delivery sent at Unix time ts:
 * "sha256=" + hex(HMAC-SHA256(key = the secret's bytes, msg = decimal ts + "." + body)).
 * Returns 0, or -1 when the crypto library fails. */
int event_sign(const char *secret, int64_t ts, const char *body, size_t len,
               char out[EVENT_SIGNATURE_LEN]);

/* How long to wait after the attempts-th failed attempt (1 for the first): base_ms doubled for
 * each attempt after the first, at most max_ms, then shortened by a random part of up to a half
 * taken from rnd (uniform over all values), so that deliveries failed together spread out. */
int64_t event_retry_delay_ms(int64_t base_ms, int64_t max_ms, int attempts, uint32_t rnd);

#endif
