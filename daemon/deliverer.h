/* Webhook delivery (docs/events.md): one thread with a store connection of its own sends the
 * events the store queued, signed, and tries failed ones again with backoff until they are
 * delivered or given up (kept as failed, for the operator to see and retry).
 *
 * Registrations never wait for it: the pipeline and the admin API only add outbox rows inside
 * the transactions they already make, then wake the thread. Deliveries are at least once: one
 * whose answer was lost (a crash, a shutdown in the middle) is sent again. */
#ifndef PROVD_DELIVERER_H
#define PROVD_DELIVERER_H

#include <stdatomic.h>

#include "config.h"
#include "store.h"

struct deliverer;

/* Starts the thread with its own connection to st and the event_* settings of cfg (copied).
 * It keeps *subscribed, the set of event types some enabled webhook subscribes to, up to date
 * with the store: set before this returns, then read again every few seconds, so that changes
 * made by other provd nodes sharing the store are seen too. libcurl must be initialised
 * (curl_global_init). Returns NULL on failure (logged). */
struct deliverer *deliverer_start(struct store *st, const struct provd_config *cfg,
                                  atomic_uint *subscribed);

/* Tells the thread that deliveries may be due now (from any thread). NULL is ignored. */
void deliverer_wake(struct deliverer *d);

/* Stops the thread and frees d. A delivery in flight is abandoned and stays pending, so it is
 * sent again after the next start. NULL is ignored. */
void deliverer_stop(struct deliverer *d);

#endif
