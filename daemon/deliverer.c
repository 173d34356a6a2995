/* The webhook delivery thread. See deliverer.h. */
#include "deliverer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "event.h"
#include "log.h"
#include "rand.h"
#include "regid.h"
#include "timefmt.h"
#include "webhook.h"

#define BATCH              32   /* deliveries read from the store at a time */
#define POLL_MS            5000 /* look for due deliveries at least this often */
#define STORE_RETRY_MS     1000 /* after the store failed, wait this long before trying again, */
#define STORE_RETRY_MAX_MS (60 * 1000)   /* doubling each time up to this */
#define PRUNE_EVERY_MS     (3600 * 1000) /* how often delivered events are pruned */
#define ERROR_MAX          200           /* longest last_error kept */

struct deliverer {
    struct store_conn *conn;
    CURL *curl;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int woken;           /* under lock: deliveries may be due */
    atomic_int stopping; /* read by libcurl's progress callback too */
    atomic_uint *subscribed;

    /* The event_* settings. */
    char *ca_file;
    long timeout_ms;
    int64_t retry_base_ms, retry_max_ms, max_age_ms, retention_ms;
    int max_attempts;

    /* The webhooks whose last attempt failed, until their retry time: their other deliveries
     * share that failure, in whichever batch they are read (see deliver_batch). */
    struct failure *failed;
    size_t nfailed;
};

/* The outcome of an attempt, shared with the other due deliveries of the same webhook when it
 * failed (see deliver_batch). */
struct outcome {
    int delivered;
    int status;
    char error[ERROR_MAX];
    int64_t retry_at;
};

/* A webhook's failed attempt, shared until o.retry_at. */
struct failure {
    char webhook_id[REGID_MAX + 1]; /* webhook IDs follow the registration ID rules */
    struct outcome o;
};
#define FAILED_MAX 128 /* more than the webhooks a server takes (100) */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Aborts a transfer once the server shuts down. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    struct deliverer *d = clientp;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&d->stopping) ? 1 : 0;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value) {
    char line[256];
    struct curl_slist *l;

    if (!list)
        return NULL;
    snprintf(line, sizeof(line), "%s: %s", name, value);
    if (!(l = curl_slist_append(list, line)))
        curl_slist_free_all(list);
    return l;
}

/* POSTs the event of x to its webhook, signed. Returns 0 with *o filled, or -1 when the attempt
 * was abandoned for shutdown (x then stays as it is, to be sent after the next start). */
static int post(struct deliverer *d, const struct store_delivery *x, struct outcome *o) {
    char sig[EVENT_SIGNATURE_LEN], ts[24], id[24], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h;
    size_t len = strlen(x->body);
    int64_t now = time_now_unix();
    long status = 0;
    CURLcode rc;

    memset(o, 0, sizeof(*o));
    /* Failing here counts as a failed attempt, so that the delivery is not taken up again at
     * once, in a loop. */
    snprintf(o->error, sizeof(o->error), "provd could not prepare the request");
    if (event_sign(x->secret, now, x->body, len, sig) != 0) {
        log_error("events: cannot sign delivery=%" PRId64, x->id);
        return 0;
    }
    snprintf(ts, sizeof(ts), "%" PRId64, now);
    snprintf(id, sizeof(id), "%" PRId64, x->id);
    /* An empty Expect stops libcurl from waiting for a 100 Continue before larger bodies. */
    h = curl_slist_append(NULL, "Content-Type: application/json");
    h = add_header(h, "Expect", "");
    h = add_header(h, "X-Provd-Event", x->type);
    h = add_header(h, "X-Provd-Delivery", id);
    h = add_header(h, "X-Provd-Timestamp", ts);
    h = add_header(h, "X-Provd-Signature", sig);
    if (!h) {
        log_error("events: out of memory delivery=%" PRId64, x->id);
        return 0;
    }
    curl_easy_reset(d->curl);
    curl_easy_setopt(d->curl, CURLOPT_URL, x->url);
    curl_easy_setopt(d->curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(d->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(d->curl, CURLOPT_TIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(d->curl, CURLOPT_USERAGENT, "provd/" PROV_VERSION);
    curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(d->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(d->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(d->curl, CURLOPT_XFERINFODATA, d);
    /* The file replaces the system's CAs: libcurl's built-in CA directory is cleared with it. */
    if (d->ca_file) {
        curl_easy_setopt(d->curl, CURLOPT_CAINFO, d->ca_file);
        curl_easy_setopt(d->curl, CURLOPT_CAPATH, NULL);
    }
    rc = curl_easy_perform(d->curl);
    curl_slist_free_all(h);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return -1;
    o->error[0] = '\0';
    if (rc == CURLE_OK) {
        curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
        o->status = (int)status;
        o->delivered = status >= 200 && status < 300;
        if (!o->delivered)
            snprintf(o->error, sizeof(o->error), "the webhook answered HTTP %ld", status);
    } else {
        snprintf(o->error, sizeof(o->error), "%.*s", ERROR_MAX - 1,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    return 0;
}

/* Applies the outcome of an attempt at time now to x: delivered, or failed for good once the
 * attempts or the event's age reach their limit, or else pending until retry_at. */
static void apply(struct deliverer *d, struct store_delivery *x, const struct outcome *o,
                  int64_t now) {
    x->attempts++;
    x->last_ms = now;
    x->last_status = o->status;
    free(x->last_error);
    x->last_error = o->delivered ? NULL : strdup(o->error);
    if (o->delivered) {
        x->state = STORE_DELIVERY_DELIVERED;
        x->done_ms = now;
    } else if (x->attempts >= d->max_attempts || now - x->created_ms >= d->max_age_ms) {
        x->state = STORE_DELIVERY_FAILED;
        x->done_ms = now;
    } else {
        x->next_ms = o->retry_at;
    }
}

/* Stores the outcome of an attempt. Returns 0, or -1 when the store failed: the delivery is then
 * left as it was, due, and will be sent again. */
static int record(struct deliverer *d, const struct store_delivery *x) {
    int rc = store_delivery_update(d->conn, x);

    if (rc == STORE_NOT_FOUND)
        log_info("events: delivery=%" PRId64 " was changed meanwhile (webhook deleted?)", x->id);
    else if (rc != STORE_OK)
        log_error("events: cannot record delivery=%" PRId64
                  "; it will be sent again once the store can be written",
                  x->id);
    return rc == STORE_OK || rc == STORE_NOT_FOUND ? 0 : -1;
}

static void log_outcome(const struct store_delivery *x, const struct outcome *o, int sent) {
    if (x->state == STORE_DELIVERY_DELIVERED)
        log_debug("events: delivered delivery=%" PRId64 " webhook=%s type=%s status=%d", x->id,
                  x->webhook_id, x->type, o->status);
    else if (x->state == STORE_DELIVERY_FAILED)
        log_warn("events: delivery failed for good, kept as failed delivery=%" PRId64
                 " webhook=%s type=%s attempts=%d error=\"%s\"",
                 x->id, x->webhook_id, x->type, x->attempts, o->error);
    else if (sent)
        log_warn("events: delivery attempt failed delivery=%" PRId64
                 " webhook=%s type=%s attempt=%d error=\"%s\" retry_in_ms=%" PRId64,
                 x->id, x->webhook_id, x->type, x->attempts, o->error, x->next_ms - x->last_ms);
}

/* Delivers the due deliveries x[0..n). Once an attempt to a webhook fails, the webhook's other
 * deliveries are not sent, in this batch and the next ones, until that attempt's retry time: they
 * share its failure and its retry time, so that a webhook that is down costs one attempt (and at
 * most one timeout) per retry, however many events wait for it, and its deliveries come due again
 * together. Returns 0, or -1 when an outcome could not
 * be stored (the batch stops there). */
static int deliver_batch(struct deliverer *d, struct store_delivery *x, size_t n) {
    int64_t start = time_now_unix_ms();

    /* Failures whose retry time has come are forgotten: that webhook gets a real attempt. */
    for (size_t k = 0; k < d->nfailed;) {
        if (d->failed[k].o.retry_at <= start)
            d->failed[k] = d->failed[--d->nfailed];
        else
            k++;
    }
    for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++) {
        struct outcome o, *shared = NULL;
        uint32_t rnd = 0;
        int64_t now;

        for (size_t k = 0; k < d->nfailed && !shared; k++)
            if (strcmp(d->failed[k].webhook_id, x[i].webhook_id) == 0)
                shared = &d->failed[k].o;
        if (shared) {
            o = *shared;
            snprintf(o.error, sizeof(o.error), "not sent: %.*s", ERROR_MAX - 11, shared->error);
        } else if (post(d, &x[i], &o) != 0) {
            continue;
        }
        now = time_now_unix_ms();
        if (!shared && !o.delivered) {
            if (rand_bytes(&rnd, sizeof(rnd)) != 0)
                rnd = UINT32_MAX / 2;
            o.retry_at = now + event_retry_delay_ms(d->retry_base_ms, d->retry_max_ms,
                                                    x[i].attempts + 1, rnd);
            if (d->nfailed < FAILED_MAX && strlen(x[i].webhook_id) <= REGID_MAX) {
                struct failure *f = &d->failed[d->nfailed++];
                snprintf(f->webhook_id, sizeof(f->webhook_id), "%s", x[i].webhook_id);
                f->o = o;
            }
        }
        apply(d, &x[i], &o, now);
        log_outcome(&x[i], &o, !shared);
        if (record(d, &x[i]) != 0)
            return -1;
    }
    return 0;
}

static void prune(struct deliverer *d, int64_t now) {
    int64_t n = 0;

    if (store_delivery_prune(d->conn, now - d->retention_ms, &n) != STORE_OK)
        log_error("events: pruning delivered events failed");
    else if (n > 0)
        log_info("events: pruned delivered=%" PRId64, n);
}

/* Sleeps until deadline (Unix ms) or shutdown, and when wakeable until a wake-up. */
static void wait_until(struct deliverer *d, int64_t deadline, int wakeable) {
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000L};

    pthread_mutex_lock(&d->lock);
    while (!(wakeable && d->woken) && !atomic_load(&d->stopping) &&
           pthread_cond_timedwait(&d->wake, &d->lock, &ts) != ETIMEDOUT)
        ;
    d->woken = 0;
    pthread_mutex_unlock(&d->lock);
}

/* Reads the set of subscribed event types again, for the changes other provd nodes sharing the
 * store made. The admin API of this process sets it itself when it changes a webhook; if it did
 * while the store was read here, its value is the newer one and is kept. */
static void refresh_subscribed(struct deliverer *d) {
    unsigned before = atomic_load(d->subscribed);

    atomic_compare_exchange_strong(d->subscribed, &before, webhook_subscribed(d->conn));
}

static void *deliverer_main(void *arg) {
    struct deliverer *d = arg;
    int64_t last_prune = 0, last_refresh = time_now_unix_ms(), backoff = 0;

    while (!atomic_load(&d->stopping)) {
        struct store_delivery *due = NULL;
        int64_t now = time_now_unix_ms(), next = now + POLL_MS, at;
        size_t n = 0;
        int rc;

        if (now - last_refresh >= POLL_MS) {
            refresh_subscribed(d);
            last_refresh = now;
        }
        if (d->retention_ms > 0 && now - last_prune >= PRUNE_EVERY_MS) {
            prune(d, now);
            last_prune = now;
        }
        rc = store_delivery_due(d->conn, now, BATCH, &due, &n);
        if (rc == STORE_OK && deliver_batch(d, due, n) != 0)
            rc = STORE_ERROR;
        store_deliveries_free(due, n);
        /* The store cannot be read or written: the deliveries stay due, so they are tried again
         * (and one whose outcome was lost is sent again) after a wait that grows while the
         * store keeps failing, and that new events do not cut short. */
        if (rc != STORE_OK) {
            backoff = backoff ? backoff * 2 : STORE_RETRY_MS;
            if (backoff > STORE_RETRY_MAX_MS)
                backoff = STORE_RETRY_MAX_MS;
            wait_until(d, time_now_unix_ms() + backoff, 0);
            continue;
        }
        backoff = 0;
        /* A full batch may have left more due: read on at once. */
        if (n == BATCH)
            continue;
        if (store_delivery_next_due(d->conn, &at) == STORE_OK && at < next)
            next = at;
        if (next > time_now_unix_ms())
            wait_until(d, next, 1);
    }
    return NULL;
}

static void free_deliverer(struct deliverer *d) {
    store_conn_close(d->conn);
    if (d->curl)
        curl_easy_cleanup(d->curl);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d->ca_file);
    free(d->failed);
    free(d);
}

struct deliverer *deliverer_start(struct store *st, const struct provd_config *cfg,
                                  atomic_uint *subscribed) {
    struct deliverer *d = calloc(1, sizeof(*d));

    if (!d) {
        log_error("events: out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    d->timeout_ms = cfg->event_timeout_ms;
    d->retry_base_ms = cfg->event_retry_base_ms;
    d->retry_max_ms = cfg->event_retry_max_ms;
    d->max_attempts = cfg->event_max_attempts;
    d->max_age_ms = (int64_t)cfg->event_max_age_s * 1000;
    d->retention_ms = (int64_t)cfg->event_retention_h * 3600 * 1000;
    d->subscribed = subscribed;
    if ((cfg->event_ca_file && !(d->ca_file = strdup(cfg->event_ca_file))) ||
        !(d->failed = calloc(FAILED_MAX, sizeof(*d->failed))) || !(d->curl = curl_easy_init()) ||
        store_conn_open(st, &d->conn) != STORE_OK) {
        log_error("events: the delivery thread could not start");
        free_deliverer(d);
        return NULL;
    }
    atomic_store(subscribed, webhook_subscribed(d->conn));
    if (pthread_create(&d->thread, NULL, deliverer_main, d) != 0) {
        log_error("events: the delivery thread could not start");
        free_deliverer(d);
        return NULL;
    }
    return d;
}

void deliverer_wake(struct deliverer *d) {
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->woken = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

void deliverer_stop(struct deliverer *d) {
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    atomic_store(&d->stopping, 1);
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    free_deliverer(d);
}
