/* Webhooks as the admin API takes and shows them (docs/admin-api.md), and their deliveries.
 * The JSON documents are checked and turned into the store's structs here, so that the admin
 * API's routes stay thin. */
#ifndef PROVD_WEBHOOK_H
#define PROVD_WEBHOOK_H

#include <stddef.h>

#include <jansson.h>

#include "store.h"

#define WEBHOOK_MAX        100 /* webhooks per server: every event is fanned out to each */
#define WEBHOOK_URL_MAX    2048
#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 128
#define WEBHOOK_SECRET_GEN 32 /* random bytes of a generated secret (base64) */

/* Checks the body in of PUT /webhooks/{id} and fills out (release with store_webhook_clear).
 * A body without "secret" keeps the secret of prev (the stored webhook, or NULL when there is
 * none) or, for a new webhook, gets a generated one, and then sets *generated. Returns 0, or -1
 * with a message naming the field (never the secret) in msg. */
int webhook_from_json(const char *id, const json_t *in, const struct store_webhook *prev,
                      struct store_webhook *out, int *generated, char *msg, size_t msglen);

/* Reads from c the set of event types (event_type_bit) some enabled webhook subscribes to.
 * When the store cannot be read the set is every type, so that no event is skipped for want of
 * knowing: the store still queues events only for the webhooks it holds. */
unsigned webhook_subscribed(struct store_conn *c);

/* The document of a webhook; the secret only when with_secret. NULL when out of memory. */
json_t *webhook_view(const struct store_webhook *w, int with_secret);

/* The document of a delivery, with the event's body under "event" when with_event (and the
 * store read it). NULL when out of memory. */
json_t *delivery_view(const struct store_delivery *d, int with_event);

#endif
