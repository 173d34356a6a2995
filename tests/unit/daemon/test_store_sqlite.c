/* The SQLite store backend, driven through the store interface against a database in a fresh
 * temporary directory per test. The schema and the append-only audit table are also checked
 * from the outside, with a separate sqlite3 handle. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store.h"
#include "store_fixture.h"
#include "timefmt.h"

/* The schema version the store writes: the number of its migration steps. */
#define SCHEMA     8
#define SCHEMA_STR "8"
#define NEWER_STR  "9"

/* Runs sql on a handle of its own and returns SQLite's result code; *msg gets the message. */
static int raw_exec(const char *path, const char *sql, char *msg, size_t msglen) {
    sqlite3 *db = NULL;
    int rc;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (msg)
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

/* Returns the integer that sql yields, on a handle of its own. */
static int64_t raw_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_ts(const char *ts) {
    assert_int_equal(strlen(ts), TIME_DPS_LEN - 1);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[TIME_DPS_LEN - 2], 'Z');
}

/* Waits long enough for the next time stamp to differ (they have a resolution of 100 ns). */
static void tick(void) {
    struct timespec d = {0, 2000000};

    nanosleep(&d, NULL);
}

static struct store_audit audit_rec(const char *event, const char *subject) {
    struct store_audit a = {0};

    a.event = (char *)event;
    a.subject = (char *)subject;
    a.outcome = "accepted";
    a.http_status = 200;
    return a;
}

static struct store_registration reg_rec(const char *id, const char *group, const char *hub) {
    struct store_registration r = {0};

    r.registration_id = (char *)id;
    r.device_id = (char *)id;
    r.group_id = (char *)group;
    r.assigned_hub = (char *)hub;
    r.status = "assigned";
    r.substatus = "initialAssignment";
    r.operation_id = "op-1";
    return r;
}

static void assert_counts(struct store_conn *c, int64_t enr, int64_t grp, int64_t reg,
                          int64_t aud) {
    struct store_counts n;

    assert_int_equal(store_counts(c, &n), STORE_OK);
    assert_int_equal(n.enrollments, enr);
    assert_int_equal(n.groups, grp);
    assert_int_equal(n.registrations, reg);
    assert_int_equal(n.audit, aud);
}

static void put(struct store_conn *c, enum store_kind k, const char *id, const char *text,
                int64_t if_match, int expect) {
    struct store_doc d = {0};

    d.id = (char *)id;
    d.doc = (char *)text;
    assert_int_equal(store_doc_put(c, k, &d, if_match, NULL), expect);
}

static void test_open_creates_schema(void **state) {
    struct fx *f = *state;

    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), SCHEMA);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                      " AND name IN ('enrollments', 'enrollment_groups',"
                                      " 'registrations', 'audit', 'admin_tokens')"),
                     5);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name IN ('registrations_group', 'audit_subject')"),
                     2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                                      " AND tbl_name = 'audit'"),
                     2);
    assert_int_equal(
        raw_int(f->path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    assert_counts(f->c, 0, 0, 0, 0);
}

static void test_reopen_keeps_data(void **state) {
    struct fx *f = *state;
    struct store_registration r = reg_rec("dev-1", NULL, "hub.example.net"), got;
    struct store_write w = {.reg = &r};
    struct store_doc d;
    char err[256];

    put(f->c, STORE_ENROLLMENT, "dev-1", "{\"k\":\"secret\"}", STORE_IF_ANY, STORE_OK);
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    store_conn_close(f->c);
    store_close(f->st);
    f->c = NULL;
    f->st = NULL;

    /* A bare path is taken as SQLite too. */
    assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_open(f->st, &f->c), STORE_OK);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), SCHEMA);
    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-1", &d), STORE_OK);
    assert_string_equal(d.doc, "{\"k\":\"secret\"}");
    assert_int_equal(d.version, 1);
    store_doc_clear(&d);
    assert_int_equal(store_reg_get(f->c, "dev-1", &got), STORE_OK);
    assert_string_equal(got.assigned_hub, "hub.example.net");
    store_registration_clear(&got);
    assert_counts(f->c, 1, 0, 1, 0);
}

static void test_future_schema_refused(void **state) {
    struct fx *f = *state;
    struct store *st = (struct store *)1;
    char err[256];

    store_conn_close(f->c);
    store_close(f->st);
    f->c = NULL;
    f->st = NULL;
    assert_int_equal(raw_exec(f->path, "PRAGMA user_version = " NEWER_STR, NULL, 0), SQLITE_OK);
    assert_int_equal(store_open(f->path, &st, err, sizeof(err)), STORE_ERROR);
    assert_null(st);
    assert_non_null(strstr(err, "has schema version " NEWER_STR
                                ", newer than this program knows (" SCHEMA_STR ")"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), SCHEMA + 1);
}

static void test_bad_targets_refused(void **state) {
    struct fx *f = *state;
    struct store *st = (struct store *)1;
    char err[256], junk[160];
    FILE *fp;

    assert_int_equal(store_open("postgres://provd:hunter2@db/provd", &st, err, sizeof(err)),
                     STORE_ERROR);
    assert_null(st);
    assert_string_equal(err, "unknown store scheme \"postgres\" (known: sqlite)");
    assert_null(strstr(err, "hunter2"));

    assert_int_equal(store_open("", &st, err, sizeof(err)), STORE_ERROR);
    assert_string_equal(err, "no store given");
    assert_int_equal(store_open("sqlite:", &st, err, sizeof(err)), STORE_ERROR);
    assert_string_equal(err, "no SQLite database path given");

    snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
    fp = fopen(junk, "w");
    assert_non_null(fp);
    fputs("this is not a database, just enough text to fill a header..........................."
          "....................................................................................",
          fp);
    fclose(fp);
    assert_int_equal(store_open(junk, &st, err, sizeof(err)), STORE_ERROR);
    assert_null(st);
    assert_non_null(strstr(err, "file is not a database"));

    assert_int_equal(store_open("sqlite:/nonexistent-dir/provd.db", &st, err, sizeof(err)),
                     STORE_ERROR);
    assert_non_null(strstr(err, "cannot open SQLite database /nonexistent-dir/provd.db"));
}

static void test_doc_put_get_update(void **state) {
    struct fx *f = *state;
    struct store_doc d = {0}, got;
    char created[TIME_DPS_LEN], updated[TIME_DPS_LEN];

    d.id = "dev-a";
    d.doc = "{\"v\":1}";
    assert_int_equal(store_doc_put(f->c, STORE_ENROLLMENT, &d, STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(d.version, 1);
    assert_ts(d.created);
    assert_string_equal(d.created, d.updated);
    memcpy(created, d.created, sizeof(created));
    memcpy(updated, d.updated, sizeof(updated));

    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-a", &got), STORE_OK);
    assert_string_equal(got.id, "dev-a");
    assert_string_equal(got.doc, "{\"v\":1}");
    assert_int_equal(got.version, 1);
    assert_string_equal(got.created, created);
    assert_string_equal(got.updated, updated);
    store_doc_clear(&got);
    assert_null(got.id);
    assert_null(got.doc);

    /* The same ID in the other table is another document. */
    assert_int_equal(store_doc_get(f->c, STORE_GROUP, "dev-a", &got), STORE_NOT_FOUND);
    assert_null(got.doc);

    tick();
    d.doc = "{\"v\":2}";
    assert_int_equal(store_doc_put(f->c, STORE_ENROLLMENT, &d, STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(d.version, 2);
    assert_string_equal(d.created, created);
    assert_true(strcmp(d.updated, updated) > 0);

    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-a", &got), STORE_OK);
    assert_string_equal(got.doc, "{\"v\":2}");
    assert_int_equal(got.version, 2);
    assert_string_equal(got.created, created);
    assert_string_equal(got.updated, d.updated);
    store_doc_clear(&got);

    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "nobody", &got), STORE_NOT_FOUND);
    assert_counts(f->c, 1, 0, 0, 0);
}

static void test_doc_if_match(void **state) {
    struct fx *f = *state;
    struct store_doc d = {0}, got;
    struct store_audit a = audit_rec("enrollment.put", "grp");

    d.id = "grp";
    d.doc = "{\"n\":1}";
    /* Create only when absent. */
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, STORE_IF_ABSENT, &a), STORE_OK);
    assert_int_equal(d.version, 1);
    assert_int_equal(a.seq, 1);
    assert_ts(a.ts);
    assert_string_equal(a.ts, d.updated);

    /* Every refused condition leaves the document, and the audit log, as they were. */
    a = audit_rec("enrollment.put", "grp");
    d.doc = "{\"n\":99}";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, STORE_IF_ABSENT, &a), STORE_CONFLICT);
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, 7, &a), STORE_CONFLICT);
    assert_int_equal(a.seq, 0);
    assert_string_equal(a.ts, "");
    d.id = "absent";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, STORE_IF_EXISTS, &a), STORE_NOT_FOUND);
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, 1, &a), STORE_NOT_FOUND);
    assert_int_equal(store_doc_get(f->c, STORE_GROUP, "absent", &got), STORE_NOT_FOUND);
    assert_int_equal(store_doc_get(f->c, STORE_GROUP, "grp", &got), STORE_OK);
    assert_string_equal(got.doc, "{\"n\":1}");
    assert_int_equal(got.version, 1);
    store_doc_clear(&got);
    assert_counts(f->c, 0, 1, 0, 1);

    d.id = "grp";
    d.doc = "{\"n\":2}";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, STORE_IF_EXISTS, &a), STORE_OK);
    assert_int_equal(d.version, 2);
    assert_int_equal(a.seq, 2);
    d.doc = "{\"n\":3}";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, 2, NULL), STORE_OK);
    assert_int_equal(d.version, 3);
    d.doc = "{\"n\":4}";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, 2, NULL), STORE_CONFLICT);
    assert_int_equal(d.version, 3);
    d.doc = "{\"n\":4}";
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(d.version, 4);

    assert_int_equal(store_doc_get(f->c, STORE_GROUP, "grp", &got), STORE_OK);
    assert_string_equal(got.doc, "{\"n\":4}");
    assert_int_equal(got.version, 4);
    store_doc_clear(&got);
    assert_counts(f->c, 0, 1, 0, 2);

    /* A condition that is no version at all is a caller's error. */
    assert_int_equal(store_doc_put(f->c, STORE_GROUP, &d, -2, NULL), STORE_ERROR);
}

static void test_doc_delete(void **state) {
    struct fx *f = *state;
    struct store_audit a = audit_rec("enrollment.delete", "dev-d");
    struct store_doc got;

    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-d", STORE_IF_ANY, &a),
                     STORE_NOT_FOUND);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-d", 3, &a), STORE_NOT_FOUND);
    assert_int_equal(a.seq, 0);

    put(f->c, STORE_ENROLLMENT, "dev-d", "{}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_ENROLLMENT, "dev-d", "{}", STORE_IF_ANY, STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-d", 1, &a), STORE_CONFLICT);
    assert_int_equal(a.seq, 0);
    assert_int_equal(store_doc_delete(f->c, STORE_GROUP, "dev-d", STORE_IF_ANY, &a),
                     STORE_NOT_FOUND);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-d", 2, &a), STORE_OK);
    assert_int_equal(a.seq, 1);
    assert_ts(a.ts);
    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-d", &got), STORE_NOT_FOUND);

    /* Unconditional, If-Match: * and "absent" (taken as unconditional) deletes. */
    put(f->c, STORE_ENROLLMENT, "e1", "{}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_ENROLLMENT, "e2", "{}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_ENROLLMENT, "e3", "{}", STORE_IF_ANY, STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "e1", STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "e2", STORE_IF_EXISTS, NULL),
                     STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "e3", STORE_IF_ABSENT, NULL),
                     STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "e3", STORE_IF_EXISTS, NULL),
                     STORE_NOT_FOUND);
    assert_counts(f->c, 0, 0, 0, 1);

    /* A deleted document made again gets a version it never had (versions 1 to 5 were given
     * out): a condition read from the old one fails. */
    put(f->c, STORE_ENROLLMENT, "dev-d", "{}", STORE_IF_ABSENT, STORE_OK);
    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-d", &got), STORE_OK);
    assert_int_equal(got.version, 6);
    store_doc_clear(&got);
    put(f->c, STORE_ENROLLMENT, "dev-d", "{}", 2, STORE_CONFLICT);
}

static void test_doc_list_paging(void **state) {
    struct fx *f = *state;
    struct store_doc *v = (struct store_doc *)1;
    char id[16], text[32], after[16];
    size_t n = 99;

    /* Inserted out of order, so that ID order is the store's doing. */
    for (int i = 0; i < 25; i++) {
        int j = (i * 7) % 25;

        snprintf(id, sizeof(id), "grp-%02d", j);
        snprintf(text, sizeof(text), "{\"n\":%d}", j);
        put(f->c, STORE_GROUP, id, text, STORE_IF_ABSENT, STORE_OK);
    }
    put(f->c, STORE_ENROLLMENT, "enr-a", "{}", STORE_IF_ANY, STORE_OK);

    assert_int_equal(store_doc_list(f->c, STORE_GROUP, NULL, 0, &v, &n), STORE_OK);
    assert_null(v);
    assert_int_equal(n, 0);

    after[0] = '\0';
    for (int page = 0; page < 3; page++) {
        size_t want = page < 2 ? 10 : 5;

        assert_int_equal(store_doc_list(f->c, STORE_GROUP, page ? after : NULL, 10, &v, &n),
                         STORE_OK);
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) {
            int k = page * 10 + (int)i;

            snprintf(id, sizeof(id), "grp-%02d", k);
            snprintf(text, sizeof(text), "{\"n\":%d}", k);
            assert_string_equal(v[i].id, id);
            assert_string_equal(v[i].doc, text);
            /* Inserted as the (i * 7 % 25)-th, each from the store's one counter. */
            assert_int_equal(v[i].version, (k * 18) % 25 + 1);
            assert_ts(v[i].created);
        }
        snprintf(after, sizeof(after), "%s", v[n - 1].id);
        store_docs_free(v, n);
    }
    assert_string_equal(after, "grp-24");
    assert_int_equal(store_doc_list(f->c, STORE_GROUP, after, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(v);

    /* after need not be a stored ID. */
    assert_int_equal(store_doc_list(f->c, STORE_GROUP, "grp-095", 2, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "grp-10");
    assert_string_equal(v[1].id, "grp-11");
    store_docs_free(v, n);

    assert_int_equal(store_doc_list(f->c, STORE_ENROLLMENT, NULL, 100, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "enr-a");
    store_docs_free(v, n);
}

static void test_commit_registrations(void **state) {
    struct fx *f = *state;
    struct store_registration r = reg_rec("dev-r", NULL, "hub1.example.net"), got;
    struct store_audit a = audit_rec("device.register", "dev-r");
    struct store_write w = {.reg = &r, .audit = &a};
    char created[TIME_DPS_LEN];

    r.payload = "{\"p\":1}";
    r.version = -5;
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(r.version, 1);
    assert_ts(r.created);
    assert_string_equal(r.created, r.updated);
    assert_string_equal(a.ts, r.updated);
    assert_int_equal(a.seq, 1);
    memcpy(created, r.created, sizeof(created));

    assert_int_equal(store_reg_get(f->c, "dev-r", &got), STORE_OK);
    assert_string_equal(got.registration_id, "dev-r");
    assert_string_equal(got.device_id, "dev-r");
    assert_null(got.group_id);
    assert_string_equal(got.assigned_hub, "hub1.example.net");
    assert_string_equal(got.status, "assigned");
    assert_string_equal(got.substatus, "initialAssignment");
    assert_string_equal(got.operation_id, "op-1");
    assert_int_equal(got.error_code, 0);
    assert_null(got.error_message);
    assert_string_equal(got.payload, "{\"p\":1}");
    assert_int_equal(got.version, 1);
    assert_string_equal(got.created, created);
    assert_string_equal(got.updated, created);
    store_registration_clear(&got);

    /* A second write replaces every field but created. */
    tick();
    r.group_id = "grp-x";
    r.assigned_hub = NULL;
    r.status = "failed";
    r.substatus = NULL;
    r.operation_id = "op-2";
    r.error_code = 400209;
    r.error_message = "device disabled";
    r.payload = NULL;
    a = audit_rec("device.register", "dev-r");
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(r.version, 2);
    assert_string_equal(r.created, created);
    assert_true(strcmp(r.updated, created) > 0);
    assert_int_equal(a.seq, 2);

    assert_int_equal(store_reg_get(f->c, "dev-r", &got), STORE_OK);
    assert_string_equal(got.group_id, "grp-x");
    assert_null(got.assigned_hub);
    assert_string_equal(got.status, "failed");
    assert_null(got.substatus);
    assert_string_equal(got.operation_id, "op-2");
    assert_int_equal(got.error_code, 400209);
    assert_string_equal(got.error_message, "device disabled");
    assert_null(got.payload);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.created, created);
    assert_string_equal(got.updated, r.updated);
    store_registration_clear(&got);

    /* Two writes of one device in one batch land in order. */
    {
        struct store_registration r1 = reg_rec("dev-s", NULL, "h1"),
                                  r2 = reg_rec("dev-s", NULL, "h2");
        struct store_write ww[2] = {{.reg = &r1}, {.reg = &r2}};

        assert_int_equal(store_commit(f->c, ww, 2), STORE_OK);
        assert_int_equal(r1.version, 1);
        assert_int_equal(r2.version, 2);
        assert_string_equal(r1.created, r2.created);
        assert_int_equal(store_reg_get(f->c, "dev-s", &got), STORE_OK);
        assert_string_equal(got.assigned_hub, "h2");
        store_registration_clear(&got);
    }

    a = audit_rec("device.delete", "dev-r");
    assert_int_equal(store_reg_delete(f->c, "dev-r", &a), STORE_OK);
    assert_int_equal(a.seq, 3);
    assert_int_equal(store_reg_get(f->c, "dev-r", &got), STORE_NOT_FOUND);
    assert_null(got.registration_id);
    a = audit_rec("device.delete", "dev-r");
    assert_int_equal(store_reg_delete(f->c, "dev-r", &a), STORE_NOT_FOUND);
    assert_int_equal(a.seq, 0);
    assert_counts(f->c, 0, 0, 1, 3);

    /* An empty batch is nothing to do. */
    assert_int_equal(store_commit(f->c, NULL, 0), STORE_OK);
}

/* A conditional registration write lands only over the version it was decided on; a unit whose
 * condition fails writes nothing (not its audit record either) and the rest of the batch lands. */
static void test_commit_conditional(void **state) {
    struct fx *f = *state;
    struct store_registration first = reg_rec("dev-c", NULL, "hub1"),
                              again = reg_rec("dev-c", NULL, "hub2"),
                              other = reg_rec("dev-o", NULL, "hub1"), got;
    struct store_audit a1 = audit_rec("device.register", "dev-c"),
                       a2 = audit_rec("device.register", "dev-c"),
                       a3 = audit_rec("device.register", "dev-o");
    /* Both decided when dev-c had no registration; dev-o likewise. */
    struct store_write w[3] = {
        {.reg = &first, .audit = &a1, .reg_conditional = 1, .reg_if_version = 0},
        {.reg = &again, .audit = &a2, .reg_conditional = 1, .reg_if_version = 0},
        {.reg = &other, .audit = &a3, .reg_conditional = 1, .reg_if_version = 0}};

    assert_int_equal(store_commit(f->c, w, 3), STORE_OK);
    assert_int_equal(w[0].conflict, 0);
    assert_int_equal(w[1].conflict, 1);
    assert_int_equal(w[2].conflict, 0);
    assert_int_equal(a2.seq, 0);
    assert_counts(f->c, 0, 0, 2, 2);
    assert_int_equal(store_reg_get(f->c, "dev-c", &got), STORE_OK);
    assert_string_equal(got.assigned_hub, "hub1");
    assert_int_equal(got.version, 1);
    store_registration_clear(&got);

    /* Decided again over version 1: it lands, once. */
    struct store_write re = {
        .reg = &again, .audit = &a2, .reg_conditional = 1, .reg_if_version = 1};
    assert_int_equal(store_commit(f->c, &re, 1), STORE_OK);
    assert_int_equal(re.conflict, 0);
    assert_int_equal(again.version, 2);
    assert_int_equal(store_commit(f->c, &re, 1), STORE_OK);
    assert_int_equal(re.conflict, 1);
    assert_int_equal(store_reg_get(f->c, "dev-c", &got), STORE_OK);
    assert_string_equal(got.assigned_hub, "hub2");
    assert_int_equal(got.version, 2);
    store_registration_clear(&got);

    /* Unconditional writes replace whatever is stored. */
    struct store_write any = {.reg = &first};
    assert_int_equal(store_commit(f->c, &any, 1), STORE_OK);
    assert_int_equal(any.conflict, 0);
    assert_int_equal(first.version, 3);
}

static void test_reg_list_by_group(void **state) {
    struct fx *f = *state;
    struct store_registration regs[30], *v;
    struct store_write w[30];
    char ids[30][8], after[8];
    size_t n;

    memset(w, 0, sizeof(w));
    for (int i = 0; i < 30; i++) {
        int j = (i * 11) % 30;
        const char *g = j % 3 == 0 ? "ga" : j % 3 == 1 ? "gb" : NULL;

        snprintf(ids[i], sizeof(ids[i]), "d%02d", j);
        regs[i] = reg_rec(ids[i], g, "hub");
        w[i].reg = &regs[i];
        w[i].audit = NULL;
        w[i].event = NULL;
        w[i].cert = NULL;
    }
    assert_int_equal(store_commit(f->c, w, 30), STORE_OK);

    /* Group ga holds d00, d03, ..., d27: pages of 4, 4 and 2. */
    after[0] = '\0';
    for (int page = 0; page < 3; page++) {
        assert_int_equal(store_reg_list(f->c, "ga", page ? after : NULL, 4, &v, &n), STORE_OK);
        assert_int_equal(n, page < 2 ? 4 : 2);
        for (size_t i = 0; i < n; i++) {
            char id[8];

            snprintf(id, sizeof(id), "d%02d", (page * 4 + (int)i) * 3);
            assert_string_equal(v[i].registration_id, id);
            assert_string_equal(v[i].group_id, "ga");
            assert_int_equal(v[i].version, 1);
        }
        snprintf(after, sizeof(after), "%s", v[n - 1].registration_id);
        store_registrations_free(v, n);
    }
    assert_string_equal(after, "d27");
    assert_int_equal(store_reg_list(f->c, "ga", after, 4, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(v);

    assert_int_equal(store_reg_list(f->c, NULL, NULL, 100, &v, &n), STORE_OK);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++) {
        char id[8];

        snprintf(id, sizeof(id), "d%02d", (int)i);
        assert_string_equal(v[i].registration_id, id);
        if (i % 3 == 2)
            assert_null(v[i].group_id);
    }
    store_registrations_free(v, n);

    assert_int_equal(store_reg_list(f->c, NULL, "d28", 100, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].registration_id, "d29");
    store_registrations_free(v, n);

    assert_int_equal(store_reg_list(f->c, "gc", NULL, 100, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_commit_audit_only(void **state) {
    struct fx *f = *state;
    struct store_audit a[3] = {audit_rec("device.status", "s1"), audit_rec("device.status", "s2"),
                               audit_rec("device.status", "s3")};
    struct store_write w[3] = {{.audit = &a[0]}, {.audit = &a[1]}, {.audit = &a[2]}};
    struct store_audit *v;
    size_t n;

    snprintf(a[1].ts, sizeof(a[1].ts), "2020-01-02T03:04:05.0000000Z");
    assert_int_equal(store_commit(f->c, w, 3), STORE_OK);
    assert_int_equal(a[0].seq, 1);
    assert_int_equal(a[1].seq, 2);
    assert_int_equal(a[2].seq, 3);
    assert_ts(a[0].ts);
    assert_string_equal(a[1].ts, "2020-01-02T03:04:05.0000000Z");
    assert_string_equal(a[2].ts, a[0].ts);

    assert_int_equal(store_audit_list(f->c, NULL, 0, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].ts, a[0].ts);
    assert_string_equal(v[1].ts, "2020-01-02T03:04:05.0000000Z");
    assert_string_equal(v[2].subject, "s3");
    store_audits_free(v, n);
    assert_counts(f->c, 0, 0, 0, 3);
}

static void test_commit_all_or_nothing(void **state) {
    struct fx *f = *state;
    struct store_registration keep = reg_rec("keep", NULL, "old-hub"), got;
    struct store_registration upd = reg_rec("keep", NULL, "new-hub");
    struct store_registration bad = reg_rec(NULL, NULL, "hub");
    struct store_registration fresh = reg_rec("fresh", NULL, "hub");
    struct store_audit a0 = audit_rec("device.register", "keep");
    struct store_audit a2 = audit_rec("device.register", "fresh");
    struct store_audit noevent = audit_rec(NULL, "fresh");
    struct store_write w1 = {.reg = &keep};
    struct store_write batch[3] = {
        {.reg = &upd, .audit = &a0}, {.reg = &bad}, {.reg = &fresh, .audit = &a2}};

    assert_int_equal(store_commit(f->c, &w1, 1), STORE_OK);
    assert_counts(f->c, 0, 0, 1, 0);

    /* The second unit breaks the NOT NULL registration ID: nothing of the batch lands, and the
     * caller's structs are not touched. */
    upd.version = -7;
    assert_int_equal(store_commit(f->c, batch, 3), STORE_ERROR);
    assert_counts(f->c, 0, 0, 1, 0);
    assert_int_equal(store_reg_get(f->c, "keep", &got), STORE_OK);
    assert_string_equal(got.assigned_hub, "old-hub");
    assert_int_equal(got.version, 1);
    store_registration_clear(&got);
    assert_int_equal(store_reg_get(f->c, "fresh", &got), STORE_NOT_FOUND);
    assert_int_equal(upd.version, -7);
    assert_string_equal(upd.created, "");
    assert_int_equal(a0.seq, 0);
    assert_string_equal(a0.ts, "");

    /* The same with an audit record that lacks its event, last in the batch. */
    batch[1].reg = NULL;
    batch[2].audit = &noevent;
    assert_int_equal(store_commit(f->c, batch, 3), STORE_ERROR);
    assert_counts(f->c, 0, 0, 1, 0);
    assert_int_equal(upd.version, -7);

    /* The connection is still good, and the repaired batch goes through. */
    batch[2].audit = &a2;
    assert_int_equal(store_commit(f->c, batch, 3), STORE_OK);
    assert_int_equal(upd.version, 2);
    assert_int_equal(fresh.version, 1);
    assert_int_equal(a0.seq, 1);
    assert_int_equal(a2.seq, 2);
    assert_counts(f->c, 0, 0, 2, 2);
}

static void test_audit_list(void **state) {
    struct fx *f = *state;
    struct store_audit a[10], *v;
    struct store_write w[10];
    char reasons[10][8], remotes[10][16];
    int64_t after = 0;
    size_t n, total = 0;

    memset(w, 0, sizeof(w));
    for (int i = 0; i < 10; i++) {
        a[i] = audit_rec("device.register", i % 2 ? "b" : "a");
        a[i].outcome = i % 3 ? "accepted" : "refused";
        a[i].http_status = 200 + i;
        a[i].error_code = i % 3 ? 0 : 401002;
        snprintf(reasons[i], sizeof(reasons[i]), "r%d", i);
        a[i].reason = reasons[i];
        snprintf(remotes[i], sizeof(remotes[i]), "10.0.0.%d", i);
        a[i].remote = i == 4 ? NULL : remotes[i];
        w[i].reg = NULL;
        w[i].audit = &a[i];
        w[i].event = NULL;
        w[i].cert = NULL;
    }
    assert_int_equal(store_commit(f->c, w, 10), STORE_OK);

    while (total < 10) {
        assert_int_equal(store_audit_list(f->c, NULL, after, 4, &v, &n), STORE_OK);
        assert_int_equal(n, total < 8 ? 4 : 2);
        for (size_t i = 0; i < n; i++) {
            size_t k = total + i;

            assert_int_equal(v[i].seq, (int64_t)k + 1);
            assert_string_equal(v[i].event, "device.register");
            assert_string_equal(v[i].subject, k % 2 ? "b" : "a");
            assert_string_equal(v[i].outcome, k % 3 ? "accepted" : "refused");
            assert_int_equal(v[i].http_status, 200 + (int)k);
            assert_int_equal(v[i].error_code, k % 3 ? 0 : 401002);
            assert_string_equal(v[i].reason, reasons[k]);
            if (k == 4)
                assert_null(v[i].remote);
            else
                assert_string_equal(v[i].remote, remotes[k]);
            assert_string_equal(v[i].ts, a[k].ts);
        }
        after = v[n - 1].seq;
        total += n;
        store_audits_free(v, n);
    }
    assert_int_equal(store_audit_list(f->c, NULL, after, 4, &v, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* Subject "b" has seqs 2, 4, 6, 8, 10. */
    assert_int_equal(store_audit_list(f->c, "b", 0, 3, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].seq, 2);
    assert_int_equal(v[1].seq, 4);
    assert_int_equal(v[2].seq, 6);
    store_audits_free(v, n);
    assert_int_equal(store_audit_list(f->c, "b", 6, 3, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].seq, 8);
    assert_int_equal(v[1].seq, 10);
    assert_string_equal(v[1].subject, "b");
    store_audits_free(v, n);
    assert_int_equal(store_audit_list(f->c, "nobody", 0, 3, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_audit_append_only(void **state) {
    struct fx *f = *state;
    struct store_audit a = audit_rec("admin.token", "t");
    struct store_write w = {.audit = &a};
    char msg[128];

    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(raw_exec(f->path, "UPDATE audit SET outcome = 'refused'", msg, sizeof(msg)),
                     SQLITE_CONSTRAINT);
    assert_string_equal(msg, "audit records are append-only");
    assert_int_equal(raw_exec(f->path, "DELETE FROM audit", msg, sizeof(msg)), SQLITE_CONSTRAINT);
    assert_string_equal(msg, "audit records are append-only");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit WHERE outcome = 'accepted'"), 1);
}

static void test_tokens(void **state) {
    struct fx *f = *state;
    const char *h1 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const char *h2 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    assert_int_equal(store_token_find(f->c, h1), STORE_NOT_FOUND);
    assert_int_equal(store_token_add(f->c, h1, "bootstrap"), STORE_OK);
    assert_int_equal(store_token_find(f->c, h1), STORE_OK);
    assert_int_equal(store_token_find(f->c, h2), STORE_NOT_FOUND);
    /* Adding it again renames it and keeps one row. */
    assert_int_equal(store_token_add(f->c, h1, "ops"), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM admin_tokens"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM admin_tokens WHERE name = 'ops'"), 1);
    assert_int_equal(store_token_add(f->c, h2, NULL), STORE_OK);
    assert_int_equal(store_token_find(f->c, h2), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM admin_tokens"), 2);
}

static void test_counts(void **state) {
    struct fx *f = *state;
    struct store_registration r[3] = {reg_rec("c1", NULL, "h"), reg_rec("c2", "g", "h"),
                                      reg_rec("c3", NULL, "h")};
    struct store_audit a = audit_rec("device.register", "c1");
    struct store_write w[3] = {{.reg = &r[0], .audit = &a}, {.reg = &r[1]}, {.reg = &r[2]}};

    assert_counts(f->c, 0, 0, 0, 0);
    put(f->c, STORE_ENROLLMENT, "c1", "{}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_ENROLLMENT, "c2", "{}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_GROUP, "g", "{}", STORE_IF_ANY, STORE_OK);
    assert_int_equal(store_commit(f->c, w, 3), STORE_OK);
    assert_counts(f->c, 2, 1, 3, 1);
}

/* Two threads with a connection each: one commits batches, the other reads all the while. Each
 * batch adds as many registrations as audit records, so a reader that ever sees the two counts
 * differ has seen half a batch. cmocka's assertions belong to the main thread, so the threads
 * only record what they saw. */
#define CC_BATCHES 40
#define CC_BATCH   256

struct cc {
    struct store *st;
    atomic_int writer_done;
    int writer_rc;
    int reader_errors;
    int torn_reads;
    int backwards;
    long reads;
};

static void *cc_writer(void *arg) {
    struct cc *cc = arg;
    struct store_conn *c;
    static struct store_registration r[CC_BATCH];
    static struct store_audit a[CC_BATCH];
    static struct store_write w[CC_BATCH];
    static char ids[CC_BATCH][16];

    cc->writer_rc = store_conn_open(cc->st, &c);
    for (int b = 0; b < CC_BATCHES && cc->writer_rc == STORE_OK; b++) {
        for (int i = 0; i < CC_BATCH; i++) {
            snprintf(ids[i], sizeof(ids[i]), "cc-%02d-%03d", b, i);
            r[i] = reg_rec(ids[i], "ccg", "hub");
            a[i] = audit_rec("device.register", ids[i]);
            w[i].reg = &r[i];
            w[i].audit = &a[i];
            w[i].event = NULL;
            w[i].cert = NULL;
        }
        cc->writer_rc = store_commit(c, w, CC_BATCH);
    }
    store_conn_close(c);
    atomic_store(&cc->writer_done, 1);
    return NULL;
}

static void *cc_reader(void *arg) {
    struct cc *cc = arg;
    struct store_conn *c;
    struct store_counts n;
    struct store_registration *v;
    int64_t last = 0;
    size_t cnt;

    if (store_conn_open(cc->st, &c) != STORE_OK) {
        cc->reader_errors++;
        return NULL;
    }
    while (!atomic_load(&cc->writer_done)) {
        if (store_counts(c, &n) != STORE_OK ||
            store_reg_list(c, "ccg", NULL, 50, &v, &cnt) != STORE_OK) {
            cc->reader_errors++;
            break;
        }
        store_registrations_free(v, cnt);
        if (n.registrations != n.audit)
            cc->torn_reads++;
        if (n.registrations < last)
            cc->backwards++;
        last = n.registrations;
        cc->reads++;
    }
    store_conn_close(c);
    return NULL;
}

static void test_concurrent_connections(void **state) {
    struct fx *f = *state;
    struct cc cc = {.st = f->st};
    pthread_t tw, tr;

    assert_int_equal(pthread_create(&tr, NULL, cc_reader, &cc), 0);
    assert_int_equal(pthread_create(&tw, NULL, cc_writer, &cc), 0);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    assert_int_equal(cc.writer_rc, STORE_OK);
    assert_int_equal(cc.reader_errors, 0);
    assert_int_equal(cc.torn_reads, 0);
    assert_int_equal(cc.backwards, 0);
    assert_true(cc.reads > 0);
    assert_counts(f->c, 0, 0, CC_BATCHES * CC_BATCH, CC_BATCHES * CC_BATCH);
}

/* Measures the group-commit path: each unit is a registration and its audit record, every
 * batch one durable (fsync'ed) transaction. The rate is printed, not asserted: it depends on
 * the disk. */
static double commit_rate(struct store_conn *c, const char *prefix, int units, int batch) {
    struct store_registration *r = calloc((size_t)batch, sizeof(*r));
    struct store_audit *a = calloc((size_t)batch, sizeof(*a));
    struct store_write *w = calloc((size_t)batch, sizeof(*w));
    char(*ids)[24] = calloc((size_t)batch, sizeof(*ids));
    uint64_t t0, us;

    assert_non_null(r);
    assert_non_null(a);
    assert_non_null(w);
    assert_non_null(ids);
    t0 = time_mono_us();
    for (int done = 0; done < units;) {
        int m = units - done < batch ? units - done : batch;

        for (int i = 0; i < m; i++) {
            snprintf(ids[i], sizeof(ids[i]), "%s-%06d", prefix, done + i);
            r[i] = reg_rec(ids[i], "bench", "hub.example.net");
            r[i].payload = "{\"tier\":\"gold\"}";
            a[i] = audit_rec("device.register", ids[i]);
            a[i].remote = "192.0.2.10";
            w[i].reg = &r[i];
            w[i].audit = &a[i];
        }
        assert_int_equal(store_commit(c, w, (size_t)m), STORE_OK);
        done += m;
    }
    us = time_mono_us() - t0;
    free(r);
    free(a);
    free(w);
    free(ids);
    return (double)units * 1e6 / (double)(us ? us : 1);
}

static void test_group_commit_rate(void **state) {
    struct fx *f = *state;
    double grouped = commit_rate(f->c, "g", 10000, 256);
    double single = commit_rate(f->c, "s", 200, 1);

    print_message("group commit: 10000 units in batches of 256: %.0f units/s\n", grouped);
    print_message("group commit: 200 units one per commit: %.0f units/s\n", single);
    assert_counts(f->c, 0, 0, 10200, 10200);
}

/* Endpoints are documents like enrollments; a delete of one that enrollments or groups still
 * name is refused with STORE_IN_USE, inside the transaction, and doc_referrers lists who names
 * it. Individual enrollments name the group whose templates they take the same way. */
static void test_endpoints_and_referrers(void **state) {
    struct fx *f = *state;
    struct store_ref *refs = NULL;
    struct store_doc d;
    size_t n = 0;

    put(f->c, STORE_ENDPOINT, "hub-a.example.com", "{\"hostName\":\"hub-a.example.com\"}",
        STORE_IF_ABSENT, STORE_OK);
    put(f->c, STORE_ENDPOINT, "hub-b.example.com", "{\"hostName\":\"hub-b.example.com\"}",
        STORE_IF_ABSENT, STORE_OK);
    assert_int_equal(store_doc_get(f->c, STORE_ENDPOINT, "hub-a.example.com", &d), STORE_OK);
    assert_string_equal(d.doc, "{\"hostName\":\"hub-a.example.com\"}");
    store_doc_clear(&d);
    put(f->c, STORE_ENROLLMENT, "dev-1",
        "{\"iotHubs\":[\"hub-b.example.com\",\"hub-a.example.com\"]}", STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_GROUP, "fleet",
        "{\"enrollmentGroupId\":\"fleet\","
        "\"iotHubHostName\":\"hub-a.example.com\"}",
        STORE_IF_ANY, STORE_OK);
    put(f->c, STORE_ENROLLMENT, "dev-2",
        "{\"enrollmentGroupId\":\"fleet\",\"iotHubHostName\":\"hub-b.example.com\"}", STORE_IF_ANY,
        STORE_OK);
    /* A document naming an endpoint or group that does not exist is not written. */
    put(f->c, STORE_ENROLLMENT, "dev-3", "{\"iotHubs\":[\"hub-a.example.com\",\"hub-z\"]}",
        STORE_IF_ANY, STORE_DANGLING);
    put(f->c, STORE_ENROLLMENT, "dev-3", "{\"iotHubHostName\":\"hub-z\"}", STORE_IF_ANY,
        STORE_DANGLING);
    put(f->c, STORE_ENROLLMENT, "dev-3", "{\"enrollmentGroupId\":\"no-group\"}", STORE_IF_ANY,
        STORE_DANGLING);
    put(f->c, STORE_GROUP, "fleet-2", "{\"enrollmentGroupId\":\"fleet-2\",\"iotHubs\":[\"hub-z\"]}",
        STORE_IF_ANY, STORE_DANGLING);
    assert_int_equal(store_doc_get(f->c, STORE_ENROLLMENT, "dev-3", &d), STORE_NOT_FOUND);
    assert_int_equal(store_doc_get(f->c, STORE_GROUP, "fleet-2", &d), STORE_NOT_FOUND);

    assert_int_equal(store_doc_referrers(f->c, STORE_ENDPOINT, "hub-a.example.com", 10, &refs, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(refs[0].kind, STORE_ENROLLMENT);
    assert_string_equal(refs[0].id, "dev-1");
    assert_int_equal(refs[1].kind, STORE_GROUP);
    assert_string_equal(refs[1].id, "fleet");
    store_refs_free(refs, n);
    assert_int_equal(store_doc_referrers(f->c, STORE_ENDPOINT, "hub-b.example.com", 1, &refs, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0].id, "dev-1");
    store_refs_free(refs, n);
    assert_int_equal(store_doc_referrers(f->c, STORE_GROUP, "fleet", 10, &refs, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(refs[0].kind, STORE_ENROLLMENT);
    assert_string_equal(refs[0].id, "dev-2");
    store_refs_free(refs, n);
    assert_int_equal(store_doc_referrers(f->c, STORE_ENROLLMENT, "dev-1", 10, &refs, &n), STORE_OK);
    assert_int_equal(n, 0);

    assert_int_equal(
        store_doc_delete(f->c, STORE_ENDPOINT, "hub-a.example.com", STORE_IF_ANY, NULL),
        STORE_IN_USE);
    assert_int_equal(store_doc_delete(f->c, STORE_GROUP, "fleet", STORE_IF_ANY, NULL),
                     STORE_IN_USE);
    assert_int_equal(store_doc_get(f->c, STORE_ENDPOINT, "hub-a.example.com", &d), STORE_OK);
    store_doc_clear(&d);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-1", STORE_IF_ANY, NULL),
                     STORE_OK);
    assert_int_equal(store_doc_delete(f->c, STORE_ENROLLMENT, "dev-2", STORE_IF_ANY, NULL),
                     STORE_OK);
    assert_int_equal(
        store_doc_delete(f->c, STORE_ENDPOINT, "hub-a.example.com", STORE_IF_ANY, NULL),
        STORE_IN_USE);
    assert_int_equal(store_doc_delete(f->c, STORE_GROUP, "fleet", STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(
        store_doc_delete(f->c, STORE_ENDPOINT, "hub-a.example.com", STORE_IF_ANY, NULL), STORE_OK);
    assert_int_equal(
        store_doc_delete(f->c, STORE_ENDPOINT, "hub-a.example.com", STORE_IF_ANY, NULL),
        STORE_NOT_FOUND);
}

/* The operator's forced reprovisioning: a flag on the registration that only a registration
 * honouring it clears, so that one requested while the device registers is not lost. */
static void test_reprovision_flag(void **state) {
    struct fx *f = *state;
    struct store_registration r = reg_rec("dev-1", NULL, "hub-a"), got;
    struct store_audit a = audit_rec("registration.reprovision", "dev-1");
    struct store_write w = {0};

    w.reg = &r;
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(store_reg_get(f->c, "dev-1", &got), STORE_OK);
    assert_int_equal(got.reprovision, 0);
    store_registration_clear(&got);
    assert_int_equal(store_reg_reprovision(f->c, "dev-none", NULL), STORE_NOT_FOUND);
    assert_int_equal(store_reg_reprovision(f->c, "dev-1", &a), STORE_OK);
    assert_true(a.seq > 0);
    assert_int_equal(store_reg_get(f->c, "dev-1", &got), STORE_OK);
    assert_int_equal(got.reprovision, 1);
    store_registration_clear(&got);
    r.reprovision = 0;
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(store_reg_get(f->c, "dev-1", &got), STORE_OK);
    assert_int_equal(got.reprovision, 1);
    store_registration_clear(&got);
    r.reprovision = 1;
    assert_int_equal(store_commit(f->c, &w, 1), STORE_OK);
    assert_int_equal(store_reg_get(f->c, "dev-1", &got), STORE_OK);
    assert_int_equal(got.reprovision, 0);
    assert_int_equal(got.version, 3);
    store_registration_clear(&got);
}

/* A database of schema version 1 (the tables of the first release, with a registration in it)
 * is brought to the current version when opened, and its registration keeps working. */
static void test_migrates_from_version_1(void **state) {
    struct fx *f = *state;
    struct store_registration got;
    char uri[160], err[256], drop[128], *names[32];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = 0;

    store_conn_close(f->c);
    store_close(f->st);
    f->c = NULL;
    f->st = NULL;
    /* Later steps only add tables and columns: taking them away leaves version 1. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT IN ('enrollments', 'enrollment_groups',"
                                        " 'registrations', 'audit', 'admin_tokens',"
                                        " 'sqlite_sequence')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && n < 32)
        names[n++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        snprintf(drop, sizeof(drop), "DROP TABLE %s", names[i]);
        assert_int_equal(sqlite3_exec(db, drop, NULL, NULL, NULL), SQLITE_OK);
        free(names[i]);
    }
    assert_int_equal(
        sqlite3_exec(db,
                     "ALTER TABLE registrations DROP COLUMN reprovision;"
                     "PRAGMA user_version = 1;"
                     "INSERT INTO registrations (registration_id, device_id,"
                     " assigned_hub, status, version, created, updated) VALUES"
                     " ('old-1', 'old-1', 'hub-a', 'assigned', 4,"
                     " '2025-01-01T00:00:00.0000000Z', '2025-01-01T00:00:00.0000000Z')",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    snprintf(uri, sizeof(uri), "sqlite:%s", f->path);
    assert_int_equal(store_open(uri, &f->st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_open(f->st, &f->c), STORE_OK);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), SCHEMA);
    assert_int_equal(store_reg_get(f->c, "old-1", &got), STORE_OK);
    assert_string_equal(got.assigned_hub, "hub-a");
    assert_int_equal(got.reprovision, 0);
    assert_int_equal(got.version, 4);
    store_registration_clear(&got);
    assert_int_equal(store_reg_reprovision(f->c, "old-1", NULL), STORE_OK);
    put(f->c, STORE_ENDPOINT, "hub-a", "{}", STORE_IF_ABSENT, STORE_OK);
}

/* The query plan of sql, its steps' details joined by "; ", on a handle of its own. */
static void query_plan(const char *path, const char *sql, char *out, size_t outlen) {
    char eqp[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t used = 0;

    snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
    out[0] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && used < outlen)
        used += (size_t)snprintf(out + used, outlen - used, "%s; ", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A database of schema version 4 indexed every certificate by status; version 5 indexes only
 * the revoked ones and version 7 puts what the CRL lists in that index. Opening it migrates the
 * index, the CRL's query reads the index alone and in order, and revoking still reaches it. */
/* Migrations 5 to 8, from a version-4 database holding certificates and an endpoint. */
static void test_migrates_from_version_4(void **state) {
    static const char revoked_sql[] = "SELECT serial, revoked_at, reason FROM certificates"
                                      " WHERE status = 'revoked' ORDER BY serial";
    struct fx *f = *state;
    const struct store_cert_filter v1 = {"V1", NULL, NULL};
    struct store_revoked *v = NULL;
    char uri[160], err[256], plan[512];
    size_t n = 0;
    int64_t count = 0;

    store_conn_close(f->c);
    store_close(f->st);
    f->c = NULL;
    f->st = NULL;
    assert_int_equal(
        raw_exec(f->path,
                 "DROP INDEX certificates_revoked;"
                 "CREATE INDEX certificates_revoked ON certificates (status, serial);"
                 "INSERT INTO certificates (serial, registration_id, device_id, subject, issuer,"
                 " thumbprint, not_before, not_after, status, revoked_at, created) VALUES"
                 " ('R1', 'dev-1', 'dev-1', 'CN=dev-1', 'CN=ca', 'AB', '2026-01-01T00:00:00Z',"
                 " '2027-01-01T00:00:00Z', 'revoked', 1700000000, '2026-01-01T00:00:00Z'),"
                 " ('V1', 'dev-2', 'dev-2', 'CN=dev-2', 'CN=ca', 'CD', '2026-01-01T00:00:00Z',"
                 " '2027-01-01T00:00:00Z', 'valid', NULL, '2026-01-01T00:00:00Z');"
                 "DELETE FROM meta WHERE key IN ('doc_version', 'revocations');"
                 "INSERT INTO endpoints (id, doc, version, created, updated) VALUES"
                 " ('hub-7', '{}', 7, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"
                 "PRAGMA user_version = 4;",
                 err, sizeof(err)),
        SQLITE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM certificates"
                                      " INDEXED BY certificates_revoked WHERE status = 'valid'"),
                     1);

    snprintf(uri, sizeof(uri), "sqlite:%s", f->path);
    assert_int_equal(store_open(uri, &f->st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_open(f->st, &f->c), STORE_OK);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), SCHEMA);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE"
                                      " name = 'certificates_revoked'"
                                      " AND sql LIKE '%(serial, revoked_at, reason, status)"
                                      " WHERE status = ''revoked'''"),
                     1);
    query_plan(f->path, revoked_sql, plan, sizeof(plan));
    assert_string_equal(plan, "SCAN certificates USING COVERING INDEX certificates_revoked; ");

    uint64_t number = 0, revocations = 0;
    assert_int_equal(store_crl_take(f->c, &number, &revocations, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].serial, "R1");
    assert_int_equal(v[0].revoked_at, 1700000000);
    store_revoked_free(v, n);
    assert_int_equal(store_cert_revoke(f->c, &v1, 1700000001, "superseded", NULL, &count),
                     STORE_OK);
    assert_int_equal(count, 1);
    assert_int_equal(store_crl_take(f->c, &number, &revocations, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].serial, "R1");
    assert_string_equal(v[1].serial, "V1");
    assert_string_equal(v[1].reason, "superseded");
    store_revoked_free(v, n);
    /* Migration 8: revocations are counted from then on. */
    assert_int_equal(revocations, 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM certificates"
                                      " INDEXED BY certificates_revoked WHERE status = 'revoked'"),
                     2);

    /* Migration 6: document versions go on 2^32 past the largest one stored. */
    struct store_doc d = {.id = "hub-8", .doc = "{}"};
    assert_int_equal(store_doc_put(f->c, STORE_ENDPOINT, &d, STORE_IF_ABSENT, NULL), STORE_OK);
    assert_int_equal(d.version, 7 + 4294967296LL + 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_schema, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_future_schema_refused, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_bad_targets_refused, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_doc_put_get_update, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_doc_if_match, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_doc_delete, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_doc_list_paging, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_registrations, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_conditional, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_reg_list_by_group, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_audit_only, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_all_or_nothing, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_audit_list, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_audit_append_only, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_tokens, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_counts, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_concurrent_connections, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_group_commit_rate, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_endpoints_and_referrers, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_reprovision_flag, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_migrates_from_version_1, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_migrates_from_version_4, fx_open, fx_close),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
