/* The event outbox of the SQLite store: events are queued in the transaction of what they
 * describe, once per subscribed webhook, and their deliveries move through pending, delivered
 * and failed as the delivery thread and the operator drive them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_fixture.h"
#include "timefmt.h"

/* The number of rows of table, read on a handle of its own. */
static int64_t rows(const struct fx *f, const char *table) {
    char sql[128];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Writes webhook id subscribed to events on c, with if_absent, max and audit as
 * store_webhook_put takes them, and returns the store's answer (w->version, when not NULL). */
static int put_hook(struct store_conn *c, const char *id, const char *events, int enabled,
                    int if_absent, size_t max, struct store_audit *audit, int64_t *version) {
    struct store_webhook w = {0};
    char url[64];
    int rc;

    snprintf(url, sizeof(url), "https://%s.example/hook", id);
    w.id = (char *)id;
    w.url = url;
    w.events = (char *)events;
    w.secret = "secret-of-the-webhook";
    w.enabled = enabled;
    rc = store_webhook_put(c, &w, if_absent, max, audit);
    if (version != NULL)
        *version = w.version;
    return rc;
}

static void add_webhook(struct fx *f, const char *id, const char *events, int enabled) {
    assert_int_equal(put_hook(f->c, id, events, enabled, 0, 0, NULL, NULL), STORE_OK);
}

static struct store_event event_rec(const char *id, const char *type) {
    struct store_event e = {0};

    e.id = (char *)id;
    e.type = (char *)type;
    e.subject = "dev-1";
    e.body = "{\"id\":\"x\"}";
    return e;
}

/* Commits one unit holding only event e. */
static int commit_event(struct fx *f, struct store_event *e) {
    struct store_write w = {.event = e};

    return store_commit(f->c, &w, 1);
}

/* Lists every delivery in the given state (and of webhook, when not NULL). */
static size_t list(struct fx *f, enum store_delivery_state state, const char *webhook,
                   struct store_delivery **out) {
    size_t n = 0;

    assert_int_equal(store_delivery_list(f->c, state, webhook, 0, 1000, out, &n), STORE_OK);
    return n;
}

static void test_nothing_stored_without_subscriber(void **state) {
    struct fx *f = *state;
    struct store_event e = event_rec("e-1", "device.registered");

    assert_int_equal(commit_event(f, &e), STORE_OK);
    assert_int_equal(e.seq, 0);
    /* Subscribed to other types, or disabled: still nothing. */
    add_webhook(f, "refusals", "device.refused,enrollment.changed", 1);
    add_webhook(f, "off", "*", 0);
    assert_int_equal(commit_event(f, &e), STORE_OK);
    assert_int_equal(e.seq, 0);
    assert_int_equal(rows(f, "events"), 0);
    assert_int_equal(rows(f, "deliveries"), 0);
}

static void test_fanout_by_type(void **state) {
    struct fx *f = *state;
    struct store_event reg = event_rec("e-reg", "device.registered");
    struct store_event ref = event_rec("e-ref", "device.refused");
    struct store_delivery *d;
    int64_t before = time_now_unix_ms();
    size_t n;

    add_webhook(f, "all", "*", 1);
    add_webhook(f, "refusals", "device.refused", 1);
    add_webhook(f, "registrations", "device.reprovisioned,device.registered", 1);
    add_webhook(f, "off", "*", 0);
    assert_int_equal(commit_event(f, &reg), STORE_OK);
    assert_true(reg.seq > 0);
    assert_int_equal(commit_event(f, &ref), STORE_OK);
    assert_true(ref.seq > reg.seq);
    assert_int_equal(rows(f, "events"), 2);

    n = list(f, STORE_DELIVERY_ANY, NULL, &d);
    assert_int_equal(n, 4);
    /* In id order: the first event's deliveries, then the second's, each in webhook order. */
    assert_string_equal(d[0].webhook_id, "all");
    assert_string_equal(d[0].event_id, "e-reg");
    assert_string_equal(d[1].webhook_id, "registrations");
    assert_string_equal(d[2].webhook_id, "all");
    assert_string_equal(d[2].type, "device.refused");
    assert_string_equal(d[3].webhook_id, "refusals");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(d[i].state, STORE_DELIVERY_PENDING);
        assert_int_equal(d[i].attempts, 0);
        assert_string_equal(d[i].subject, "dev-1");
        assert_true(d[i].created_ms >= before && d[i].created_ms <= time_now_unix_ms());
        assert_int_equal(d[i].next_ms, d[i].created_ms);
        assert_int_equal(d[i].last_ms, 0);
        assert_null(d[i].body); /* listings leave out the body and the secret */
        assert_null(d[i].secret);
    }
    store_deliveries_free(d, n);
}

static void test_event_shares_the_transaction(void **state) {
    struct fx *f = *state;
    struct store_registration good = {0}, bad = {0};
    struct store_event e1 = event_rec("e-1", "device.registered");
    struct store_event e2 = event_rec("e-2", "device.registered");
    struct store_doc doc = {0};

    add_webhook(f, "all", "*", 1);
    good.registration_id = "dev-1";
    good.status = "assigned";
    bad.status = "assigned"; /* no registration ID: the unit fails */
    struct store_write batch[2] = {{.reg = &good, .event = &e1}, {.reg = &bad, .event = &e2}};

    /* A batch that rolls back takes its events with it and leaves the callers' seq alone. */
    assert_int_equal(store_commit(f->c, batch, 2), STORE_ERROR);
    assert_int_equal(e1.seq, 0);
    assert_int_equal(rows(f, "events"), 0);
    assert_int_equal(rows(f, "deliveries"), 0);

    /* An event that cannot be stored fails its batch: no decision without its event. */
    e2.body = NULL;
    batch[1].reg = NULL;
    assert_int_equal(store_commit(f->c, batch, 2), STORE_ERROR);
    assert_int_equal(rows(f, "registrations"), 0);

    /* Admin changes queue theirs with the change, and only when it happens. */
    doc.id = "dev-1";
    doc.doc = "{}";
    e1.type = "enrollment.changed";
    assert_int_equal(store_doc_put_event(f->c, STORE_ENROLLMENT, &doc, STORE_IF_ABSENT, NULL, &e1),
                     STORE_OK);
    assert_true(e1.seq > 0);
    e1.seq = 0;
    assert_int_equal(store_doc_put_event(f->c, STORE_ENROLLMENT, &doc, STORE_IF_ABSENT, NULL, &e1),
                     STORE_CONFLICT);
    assert_int_equal(
        store_doc_delete_event(f->c, STORE_ENROLLMENT, "nobody", STORE_IF_ANY, NULL, &e1),
        STORE_NOT_FOUND);
    assert_int_equal(e1.seq, 0);
    assert_int_equal(rows(f, "events"), 1);
    assert_int_equal(
        store_doc_delete_event(f->c, STORE_ENROLLMENT, "dev-1", STORE_IF_ANY, NULL, &e1), STORE_OK);
    assert_true(e1.seq > 0);
    assert_int_equal(rows(f, "deliveries"), 2);
}

static void test_due_and_update(void **state) {
    struct fx *f = *state;
    struct store_event e = event_rec("e-1", "device.registered");
    struct store_delivery *d, *again;
    int64_t now, next = 0;
    size_t n, m;

    assert_int_equal(store_delivery_next_due(f->c, &next), STORE_NOT_FOUND);
    add_webhook(f, "a", "*", 1);
    add_webhook(f, "b", "*", 1);
    assert_int_equal(commit_event(f, &e), STORE_OK);
    now = time_now_unix_ms();
    assert_int_equal(store_delivery_next_due(f->c, &next), STORE_OK);
    assert_true(next <= now);

    assert_int_equal(store_delivery_due(f->c, now, 10, &d, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].url, "https://a.example/hook");
    assert_string_equal(d[0].secret, "secret-of-the-webhook");
    assert_string_equal(d[0].body, "{\"id\":\"x\"}");
    assert_int_equal(store_delivery_due(f->c, now, 1, &again, &m), STORE_OK);
    assert_int_equal(m, 1);
    store_deliveries_free(again, m);
    assert_int_equal(store_delivery_due(f->c, d[0].created_ms - 1, 10, &again, &m), STORE_OK);
    assert_int_equal(m, 0);

    /* a failed once and waits; b is delivered. */
    d[0].attempts = 1;
    d[0].last_ms = now;
    d[0].last_status = 503;
    d[0].last_error = strdup("the webhook answered HTTP 503");
    d[0].next_ms = now + 60000;
    d[1].state = STORE_DELIVERY_DELIVERED;
    d[1].attempts = 1;
    d[1].last_ms = d[1].done_ms = now;
    d[1].last_status = 204;
    assert_int_equal(store_delivery_update(f->c, &d[0]), STORE_OK);
    assert_int_equal(store_delivery_update(f->c, &d[1]), STORE_OK);
    /* Only pending deliveries change: a delivered one is done. */
    assert_int_equal(store_delivery_update(f->c, &d[1]), STORE_NOT_FOUND);
    assert_int_equal(store_delivery_due(f->c, now, 10, &again, &m), STORE_OK);
    assert_int_equal(m, 0);
    assert_int_equal(store_delivery_next_due(f->c, &next), STORE_OK);
    assert_int_equal(next, now + 60000);

    struct store_delivery got;
    assert_int_equal(store_delivery_get(f->c, d[0].id, &got), STORE_OK);
    assert_int_equal(got.attempts, 1);
    assert_int_equal(got.last_status, 503);
    assert_string_equal(got.last_error, "the webhook answered HTTP 503");
    assert_string_equal(got.body, "{\"id\":\"x\"}");
    assert_null(got.secret);
    store_delivery_clear(&got);
    assert_int_equal(store_delivery_get(f->c, d[1].id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_DELIVERY_DELIVERED);
    assert_int_equal(got.done_ms, now);
    assert_null(got.last_error);
    store_delivery_clear(&got);
    assert_int_equal(store_delivery_get(f->c, 999, &got), STORE_NOT_FOUND);

    /* A disabled webhook's deliveries wait: neither due nor counted as next. */
    struct store_webhook w;
    assert_int_equal(store_webhook_get(f->c, "a", &w), STORE_OK);
    w.enabled = 0;
    assert_int_equal(store_webhook_put(f->c, &w, 0, 0, NULL), STORE_OK);
    store_webhook_clear(&w);
    assert_int_equal(store_delivery_next_due(f->c, &next), STORE_NOT_FOUND);
    assert_int_equal(store_delivery_due(f->c, now + 120000, 10, &again, &m), STORE_OK);
    assert_int_equal(m, 0);
    store_deliveries_free(d, n);
}

/* Marks delivery id failed after attempts attempts. */
static void fail_delivery(struct fx *f, int64_t id, int attempts) {
    struct store_delivery d;

    assert_int_equal(store_delivery_get(f->c, id, &d), STORE_OK);
    d.state = STORE_DELIVERY_FAILED;
    d.attempts = attempts;
    d.last_ms = d.done_ms = time_now_unix_ms();
    assert_int_equal(store_delivery_update(f->c, &d), STORE_OK);
    store_delivery_clear(&d);
}

static void test_retry(void **state) {
    struct fx *f = *state;
    struct store_event e = event_rec("e-1", "device.refused");
    struct store_audit a = {0};
    struct store_delivery *d, got;
    int64_t now;
    size_t n;

    add_webhook(f, "a", "device.refused", 1);
    add_webhook(f, "b", "*", 1);
    assert_int_equal(commit_event(f, &e), STORE_OK);
    n = list(f, STORE_DELIVERY_ANY, NULL, &d);
    assert_int_equal(n, 2);
    fail_delivery(f, d[0].id, 12);

    a.event = "event.retry";
    a.subject = "1";
    a.outcome = "accepted";
    now = time_now_unix_ms() + 5;
    assert_int_equal(store_delivery_retry(f->c, d[1].id, now, &a), STORE_CONFLICT);
    assert_int_equal(store_delivery_retry(f->c, 424242, now, &a), STORE_NOT_FOUND);
    assert_int_equal(a.seq, 0);
    assert_int_equal(store_delivery_retry(f->c, d[0].id, now, &a), STORE_OK);
    assert_true(a.seq > 0);
    assert_int_equal(store_delivery_get(f->c, d[0].id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_DELIVERY_PENDING);
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.next_ms, now);
    assert_int_equal(got.done_ms, 0);
    store_delivery_clear(&got);
    /* Retrying again is a conflict: it is pending now. */
    assert_int_equal(store_delivery_retry(f->c, d[0].id, now, NULL), STORE_CONFLICT);
    store_deliveries_free(d, n);
}

static void test_list_filters_and_pages(void **state) {
    struct fx *f = *state;
    struct store_delivery *d, *failed;
    size_t n, m;

    add_webhook(f, "a", "*", 1);
    add_webhook(f, "b", "*", 1);
    for (int i = 0; i < 5; i++) {
        char id[8];
        struct store_event e = event_rec(id, "device.registered");

        snprintf(id, sizeof(id), "e-%d", i);
        assert_int_equal(commit_event(f, &e), STORE_OK);
    }
    n = list(f, STORE_DELIVERY_ANY, NULL, &d);
    assert_int_equal(n, 10);
    fail_delivery(f, d[1].id, 3);
    fail_delivery(f, d[6].id, 3);

    m = list(f, STORE_DELIVERY_FAILED, NULL, &failed);
    assert_int_equal(m, 2);
    assert_int_equal(failed[0].id, d[1].id);
    assert_int_equal(failed[1].id, d[6].id);
    store_deliveries_free(failed, m);
    m = list(f, STORE_DELIVERY_FAILED, "a", &failed);
    assert_int_equal(m, 1);
    assert_int_equal(failed[0].id, d[6].id);
    assert_string_equal(failed[0].event_id, "e-3");
    store_deliveries_free(failed, m);
    m = list(f, STORE_DELIVERY_PENDING, "b", &failed);
    assert_int_equal(m, 4);
    store_deliveries_free(failed, m);
    m = list(f, STORE_DELIVERY_DELIVERED, NULL, &failed);
    assert_int_equal(m, 0);

    /* Pages follow ids. */
    assert_int_equal(store_delivery_list(f->c, STORE_DELIVERY_ANY, NULL, d[3].id, 4, &failed, &m),
                     STORE_OK);
    assert_int_equal(m, 4);
    assert_int_equal(failed[0].id, d[4].id);
    assert_int_equal(failed[3].id, d[7].id);
    store_deliveries_free(failed, m);
    store_deliveries_free(d, n);
}

static void test_webhooks(void **state) {
    struct fx *f = *state;
    struct store_webhook w = {0}, got, *all;
    struct store_event e = event_rec("e-1", "device.registered");
    struct store_audit a = {0};
    size_t n;

    w.id = "hook";
    w.url = "https://one.example/";
    w.events = "*";
    w.secret = "first-secret-0123";
    w.enabled = 1;
    assert_int_equal(store_webhook_put(f->c, &w, 1, 0, NULL), STORE_OK);
    assert_int_equal(w.version, 1);
    assert_string_equal(w.created, w.updated);
    assert_int_equal(store_webhook_put(f->c, &w, 1, 0, NULL), STORE_CONFLICT);
    w.url = "https://two.example/";
    w.secret = "second-secret-0123";
    assert_int_equal(store_webhook_put(f->c, &w, 0, 0, NULL), STORE_OK);
    assert_int_equal(w.version, 2);
    assert_int_equal(store_webhook_get(f->c, "hook", &got), STORE_OK);
    assert_string_equal(got.url, "https://two.example/");
    assert_string_equal(got.secret, "second-secret-0123");
    assert_string_equal(got.created, w.created);
    assert_int_equal(got.version, 2);
    store_webhook_clear(&got);
    assert_int_equal(store_webhook_get(f->c, "nope", &got), STORE_NOT_FOUND);
    add_webhook(f, "alpha", "*", 1);
    assert_int_equal(store_webhook_list(f->c, NULL, 10, &all, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].id, "alpha");
    assert_string_equal(all[1].id, "hook");
    store_webhooks_free(all, n);
    assert_int_equal(store_webhook_list(f->c, "alpha", 10, &all, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_webhooks_free(all, n);

    /* Deleting a webhook takes its deliveries with it, audited, and leaves the others. */
    assert_int_equal(commit_event(f, &e), STORE_OK);
    assert_int_equal(rows(f, "deliveries"), 2);
    a.event = "webhook.delete";
    a.subject = "hook";
    a.outcome = "accepted";
    assert_int_equal(store_webhook_delete(f->c, "hook", &a), STORE_OK);
    assert_true(a.seq > 0);
    assert_int_equal(rows(f, "deliveries"), 1);
    assert_int_equal(store_webhook_delete(f->c, "hook", NULL), STORE_NOT_FOUND);
    assert_int_equal(rows(f, "audit"), 1);
}

/* A limit on webhooks refuses a create once max are stored, in the store call itself and
 * without writing anything (nor its audit record); a replace goes through whatever the count. */
static void test_webhook_limit(void **state) {
    struct fx *f = *state;
    struct store_audit a = {0};
    struct store_webhook got;
    int64_t version = 0;

    a.event = "webhook.put";
    a.subject = "d";
    a.outcome = "accepted";
    assert_int_equal(put_hook(f->c, "a", "*", 1, 0, 3, NULL, NULL), STORE_OK);
    assert_int_equal(put_hook(f->c, "b", "*", 1, 1, 3, NULL, NULL), STORE_OK);
    assert_int_equal(put_hook(f->c, "c", "*", 1, 0, 3, NULL, NULL), STORE_OK);
    assert_int_equal(put_hook(f->c, "d", "*", 1, 0, 3, &a, NULL), STORE_LIMIT);
    assert_int_equal(put_hook(f->c, "d", "*", 1, 1, 3, &a, NULL), STORE_LIMIT);
    assert_int_equal(a.seq, 0);
    assert_int_equal(rows(f, "audit"), 0);
    assert_int_equal(rows(f, "webhooks"), 3);
    assert_int_equal(store_webhook_get(f->c, "d", &got), STORE_NOT_FOUND);

    /* At the limit, and past it, a webhook that exists is replaced; If-None-Match still
     * answers that it exists rather than that there are too many. */
    a.subject = "b";
    assert_int_equal(put_hook(f->c, "b", "device.refused", 0, 0, 3, &a, &version), STORE_OK);
    assert_int_equal(version, 2);
    assert_true(a.seq > 0);
    assert_int_equal(rows(f, "audit"), 1);
    assert_int_equal(put_hook(f->c, "b", "*", 1, 1, 3, NULL, NULL), STORE_CONFLICT);
    assert_int_equal(put_hook(f->c, "a", "*", 1, 0, 2, NULL, &version), STORE_OK);
    assert_int_equal(version, 2);
    assert_int_equal(store_webhook_get(f->c, "b", &got), STORE_OK);
    assert_string_equal(got.events, "device.refused");
    assert_int_equal(got.enabled, 0);
    store_webhook_clear(&got);

    /* 0 is no limit; a delete makes room again. */
    assert_int_equal(put_hook(f->c, "d", "*", 1, 0, 0, NULL, NULL), STORE_OK);
    assert_int_equal(rows(f, "webhooks"), 4);
    assert_int_equal(put_hook(f->c, "e", "*", 1, 0, 4, NULL, NULL), STORE_LIMIT);
    assert_int_equal(store_webhook_delete(f->c, "a", NULL), STORE_OK);
    assert_int_equal(put_hook(f->c, "e", "*", 1, 0, 4, NULL, NULL), STORE_OK);
    assert_int_equal(put_hook(f->c, "f", "*", 1, 0, 4, NULL, NULL), STORE_LIMIT);
    assert_int_equal(rows(f, "webhooks"), 4);
}

#define RACE_MAX     5
#define RACE_WRITERS 8

/* One of the writers of test_webhook_limit_race: its own connection, as each worker has. */
struct racer {
    struct store *st;
    pthread_barrier_t *start;
    char id[16];
    int rc;
};

static void *race_put(void *arg) {
    struct racer *r = arg;
    struct store_conn *c = NULL;
    struct store_audit a = {0};

    r->rc = STORE_ERROR;
    if (store_conn_open(r->st, &c) != STORE_OK) {
        pthread_barrier_wait(r->start);
        return NULL;
    }
    a.event = "webhook.put";
    a.subject = r->id;
    a.outcome = "accepted";
    pthread_barrier_wait(r->start);
    r->rc = put_hook(c, r->id, "*", 1, 0, RACE_MAX, &a, NULL);
    store_conn_close(c);
    return NULL;
}

/* Creates racing each other on their own connections, one short of the limit: exactly one is
 * stored, with its audit record, and every other one is refused. */
static void test_webhook_limit_race(void **state) {
    struct fx *f = *state;
    struct racer r[RACE_WRITERS];
    pthread_t t[RACE_WRITERS];
    pthread_barrier_t start;
    int ok = 0, limited = 0;
    char id[16];

    for (int i = 0; i < RACE_MAX - 1; i++) {
        snprintf(id, sizeof(id), "old-%d", i);
        add_webhook(f, id, "*", 1);
    }
    assert_int_equal(pthread_barrier_init(&start, NULL, RACE_WRITERS), 0);
    for (int i = 0; i < RACE_WRITERS; i++) {
        r[i].st = f->st;
        r[i].start = &start;
        snprintf(r[i].id, sizeof(r[i].id), "new-%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, race_put, &r[i]), 0);
    }
    for (int i = 0; i < RACE_WRITERS; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].rc == STORE_OK;
        limited += r[i].rc == STORE_LIMIT;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(ok, 1);
    assert_int_equal(limited, RACE_WRITERS - 1);
    assert_int_equal(rows(f, "webhooks"), RACE_MAX);
    assert_int_equal(rows(f, "audit"), 1);
}

static void test_prune(void **state) {
    struct fx *f = *state;
    struct store_event e1 = event_rec("e-1", "device.registered");
    struct store_event e2 = event_rec("e-2", "device.registered");
    struct store_delivery *d;
    int64_t pruned = -1;
    size_t n;

    add_webhook(f, "a", "*", 1);
    assert_int_equal(commit_event(f, &e1), STORE_OK);
    assert_int_equal(commit_event(f, &e2), STORE_OK);
    n = list(f, STORE_DELIVERY_ANY, NULL, &d);
    assert_int_equal(n, 2);
    d[0].state = STORE_DELIVERY_DELIVERED;
    d[0].attempts = 1;
    d[0].done_ms = d[0].last_ms = 1000;
    assert_int_equal(store_delivery_update(f->c, &d[0]), STORE_OK);
    fail_delivery(f, d[1].id, 5);

    /* Nothing delivered before 1000. */
    assert_int_equal(store_delivery_prune(f->c, 1000, &pruned), STORE_OK);
    assert_int_equal(pruned, 0);
    assert_int_equal(rows(f, "events"), 2);
    /* The delivered one goes, and its event with it; the failed one stays, with its event. */
    assert_int_equal(store_delivery_prune(f->c, time_now_unix_ms() + 1, &pruned), STORE_OK);
    assert_int_equal(pruned, 1);
    assert_int_equal(rows(f, "deliveries"), 1);
    assert_int_equal(rows(f, "events"), 1);
    store_deliveries_free(d, n);
    n = list(f, STORE_DELIVERY_FAILED, NULL, &d);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, "e-2");
    store_deliveries_free(d, n);
}

static void test_state_names(void **state) {
    enum store_delivery_state s;
    (void)state;

    assert_string_equal(store_delivery_state_name(STORE_DELIVERY_PENDING), "pending");
    assert_string_equal(store_delivery_state_name(STORE_DELIVERY_DELIVERED), "delivered");
    assert_string_equal(store_delivery_state_name(STORE_DELIVERY_FAILED), "failed");
    assert_int_equal(store_delivery_state_parse("failed", &s), 0);
    assert_int_equal(s, STORE_DELIVERY_FAILED);
    assert_int_equal(store_delivery_state_parse("Failed", &s), -1);
    assert_int_equal(store_delivery_state_parse("any", &s), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_stored_without_subscriber, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_fanout_by_type, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_event_shares_the_transaction, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_due_and_update, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_retry, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_list_filters_and_pages, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_webhooks, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_webhook_limit, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_webhook_limit_race, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_prune, fx_open, fx_close),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
