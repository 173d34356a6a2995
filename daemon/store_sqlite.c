/* The SQLite backend of the store: one database file, normally in the data directory.
 *
 * The database runs in WAL mode, so readers never block the writer nor the writer the readers.
 * Each connection owns one sqlite3 handle opened without SQLite's own mutexes (a connection
 * belongs to one thread at a time) and prepares every statement once, when it opens.
 *
 * Writes run in BEGIN IMMEDIATE transactions. Taking the write lock at the start means a
 * transaction never has to upgrade a read snapshot into a write, which WAL mode refuses with
 * SQLITE_BUSY_SNAPSHOT without consulting the busy handler; instead, concurrent writers wait in
 * the busy handler for up to BUSY_TIMEOUT_MS. synchronous=FULL makes every COMMIT wait until the
 * WAL is on stable storage, so an acknowledged write survives a power loss; commit() amortises
 * that wait over a whole batch of registrations. */
#include "store.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "log.h"
#include "timefmt.h"

#define BUSY_TIMEOUT_MS    10000
#define SQLITE_MIN_VERSION 3035000 /* RETURNING appeared in 3.35.0 */

/* The schema migrations in order: step i brings PRAGMA user_version from i to i + 1. A released
 * step is never edited; a change to the schema is a new step at the end.
 *
 * The IDs are declared NOT NULL because SQLite, for historical reasons, otherwise accepts NULL
 * in a non-integer primary key, and non-empty so that listing "after the empty string" means
 * listing from the start. The audit triggers make the log append-only even for someone who
 * opens the file with the sqlite3 shell by mistake; AUTOINCREMENT keeps a sequence number from
 * ever being handed out twice. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE enrollments ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
    " doc TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " created TEXT NOT NULL,"
    " updated TEXT NOT NULL);"
    "CREATE TABLE enrollment_groups ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
    " doc TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " created TEXT NOT NULL,"
    " updated TEXT NOT NULL);"
    "CREATE TABLE registrations ("
    " registration_id TEXT PRIMARY KEY NOT NULL CHECK (registration_id <> ''),"
    " device_id TEXT,"
    " group_id TEXT,"
    " assigned_hub TEXT,"
    " status TEXT NOT NULL,"
    " substatus TEXT,"
    " operation_id TEXT,"
    " error_code INTEGER NOT NULL DEFAULT 0,"
    " error_message TEXT,"
    " payload TEXT,"
    " version INTEGER NOT NULL,"
    " created TEXT NOT NULL,"
    " updated TEXT NOT NULL);"
    "CREATE INDEX registrations_group ON registrations (group_id, registration_id);"
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " subject TEXT,"
    " outcome TEXT NOT NULL,"
    " http_status INTEGER NOT NULL DEFAULT 0,"
    " error_code INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT,"
    " remote TEXT,"
    " tracking TEXT);"
    "CREATE INDEX audit_subject ON audit (subject, seq);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TABLE admin_tokens ("
    " hash TEXT PRIMARY KEY NOT NULL,"
    " name TEXT,"
    " created TEXT NOT NULL);",
    /* 2: the endpoints devices are assigned to (DPS's linked hubs), as documents keyed by host
     * name like enrollments; and the operator's request to re-allocate a device at its next
     * registration whatever its reprovisioning policy says. */
    "CREATE TABLE endpoints ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
    " doc TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " created TEXT NOT NULL,"
    " updated TEXT NOT NULL);"
    "ALTER TABLE registrations ADD COLUMN reprovision INTEGER NOT NULL DEFAULT 0;",
    /* 3: webhooks and the outbox of events waiting for them. An event is stored once and
     * delivered once per subscribed webhook; deleting a webhook deletes its deliveries, and an
     * event that has none left is pruned in time. Times the delivery thread compares are Unix
     * milliseconds. */
    "CREATE TABLE webhooks ("
    " id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),"
    " url TEXT NOT NULL,"
    " events TEXT NOT NULL,"
    " secret TEXT NOT NULL,"
    " enabled INTEGER NOT NULL,"
    " version INTEGER NOT NULL,"
    " created TEXT NOT NULL,"
    " updated TEXT NOT NULL);"
    "CREATE TABLE events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " subject TEXT,"
    " ts TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " body TEXT NOT NULL);"
    "CREATE TABLE deliveries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " event_seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,"
    " webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL,"
    " last_ms INTEGER NOT NULL DEFAULT 0,"
    " last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " done_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON deliveries (state, next_ms);"
    "CREATE INDEX deliveries_event ON deliveries (event_seq);"
    "CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);",
    /* 4: the device certificates provd issued, for listing, revocation and the CRL, and the
     * number of the last CRL signed (CRL numbers must grow across restarts). Serials are
     * random, so the serial alone is the key. revoked_at is Unix seconds. */
    "CREATE TABLE certificates ("
    " serial TEXT PRIMARY KEY NOT NULL CHECK (serial <> ''),"
    " registration_id TEXT NOT NULL,"
    " device_id TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " issuer TEXT NOT NULL,"
    " thumbprint TEXT NOT NULL,"
    " not_before TEXT NOT NULL,"
    " not_after TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),"
    " revoked_at INTEGER,"
    " reason TEXT,"
    " created TEXT NOT NULL);"
    "CREATE INDEX certificates_registration ON certificates (registration_id, serial);"
    "CREATE INDEX certificates_device ON certificates (device_id, serial);"
    "CREATE INDEX certificates_revoked ON certificates (status, serial);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('crl_number', 0);",
    /* 5: only revoked certificates are looked up by their status (for the CRL), so the index on
     * status keeps only those: indexing every certificate cost each issuance an insert at a
     * random place of a B-tree as large as the table. */
    "DROP INDEX certificates_revoked;"
    "CREATE INDEX certificates_revoked ON certificates (serial) WHERE status = 'revoked';",
    /* 6: the versions of enrollments, groups and endpoints (their etags) are drawn from one
     * counter, so that a document deleted and made again never has an etag it had before: an
     * If-Match read from the old one fails rather than overwriting the new one. Until now each
     * document counted its own writes; documents deleted before this step may have had any such
     * count, so a store that has documents starts the counter 2^32 past the largest one left. */
    "INSERT INTO meta (key, value) SELECT 'doc_version', CASE WHEN m > 0 THEN m + 4294967296"
    " ELSE 0 END FROM (SELECT max("
    " (SELECT coalesce(max(version), 0) FROM enrollments),"
    " (SELECT coalesce(max(version), 0) FROM enrollment_groups),"
    " (SELECT coalesce(max(version), 0) FROM endpoints)) AS m);",
    /* 7: the index of revoked certificates holds what a CRL lists of each, so that signing a CRL
     * reads the index alone rather than also a row of the table per certificate. SQLite (3.40)
     * counts an index as covering only when it also holds the column of its WHERE clause. */
    "DROP INDEX certificates_revoked;"
    "CREATE INDEX certificates_revoked ON certificates (serial, revoked_at, reason, status)"
    " WHERE status = 'revoked';",
    /* 8: how many revocations the store has seen, which each process serving it compares with
     * the count its CRL was signed after. */
    "INSERT INTO meta (key, value) VALUES ('revocations', 0);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The statements on the document tables, which have the same shape. Rows are always read in the
 * column order of DQ_GET. */
enum doc_q { DQ_GET, DQ_VERSION, DQ_INSERT, DQ_UPDATE, DQ_DELETE, DQ_LIST, DQ_COUNT };

#define DOC_COLS "id, doc, version, created, updated"
#define DOC_SQL(t)                                                                                 \
    {                                                                                              \
        [DQ_GET] = "SELECT " DOC_COLS " FROM " t " WHERE id = ?1",                                 \
        [DQ_VERSION] = "SELECT version FROM " t " WHERE id = ?1",                                  \
        [DQ_INSERT] = "INSERT INTO " t " (" DOC_COLS ") VALUES (?1, ?2, ?4, ?3, ?3)"               \
                      " RETURNING version, created",                                               \
        [DQ_UPDATE] = "UPDATE " t " SET doc = ?2, version = ?4, updated = ?3"                      \
                      " WHERE id = ?1 RETURNING version, created",                                 \
        [DQ_DELETE] = "DELETE FROM " t " WHERE id = ?1",                                           \
        [DQ_LIST] = "SELECT " DOC_COLS " FROM " t " WHERE id > ?1 ORDER BY id LIMIT ?2",           \
    }

/* Indexed by enum store_kind. */
static const char *const doc_sql[STORE_KINDS][DQ_COUNT] = {
    DOC_SQL("enrollments"), DOC_SQL("enrollment_groups"), DOC_SQL("endpoints")};

/* The documents that name a document of each kind (?1), at most ?2 of them, as rows of (kind,
 * id); the kind numbers are those of enum store_kind. Enrollments and groups name endpoints in
 * iotHubHostName and iotHubs; an individual enrollment names the group whose templates it takes
 * in enrollmentGroupId. Nothing names an individual enrollment. These scan the documents, which
 * is fine for the rare deletes they guard. */
#define NAMES_ENDPOINT                                                                             \
    " WHERE json_extract(doc, '$.iotHubHostName') = ?1"                                            \
    " OR EXISTS (SELECT 1 FROM json_each(doc, '$.iotHubs') WHERE value = ?1)"
static const char *const refs_sql[STORE_KINDS] = {
    [STORE_GROUP] = "SELECT 0, id FROM enrollments"
                    " WHERE json_extract(doc, '$.enrollmentGroupId') = ?1 ORDER BY id LIMIT ?2",
    [STORE_ENDPOINT] =
        "SELECT * FROM (SELECT 0, id FROM enrollments" NAMES_ENDPOINT
        " UNION ALL SELECT 1, id FROM enrollment_groups" NAMES_ENDPOINT ") ORDER BY 1, 2 LIMIT ?2",
};

/* Whether a document (?1, its JSON) names an endpoint or group that does not exist: checked in
 * the transaction that writes it, as a delete checks its referrers in its own, so that a write
 * and a delete racing each other cannot leave a document naming nothing. */
#define NAMES_MISSING_ENDPOINT                                                                     \
    "SELECT 1 FROM json_each(?1, '$.iotHubs') WHERE value NOT IN (SELECT id FROM endpoints)"       \
    " UNION ALL SELECT 1 FROM (SELECT json_extract(?1, '$.iotHubHostName') AS h)"                  \
    " WHERE h IS NOT NULL AND h NOT IN (SELECT id FROM endpoints)"
static const char *const dangling_sql[STORE_KINDS] = {
    [STORE_ENROLLMENT] = NAMES_MISSING_ENDPOINT
    " UNION ALL SELECT 1 FROM (SELECT json_extract(?1, '$.enrollmentGroupId') AS g)"
    " WHERE g IS NOT NULL AND g NOT IN (SELECT id FROM enrollment_groups) LIMIT 1",
    [STORE_GROUP] = NAMES_MISSING_ENDPOINT " LIMIT 1",
};

enum q {
    Q_BEGIN,
    Q_DOC_VERSION_NEXT,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_REG_GET,
    Q_REG_UPSERT,
    Q_REG_DELETE,
    Q_REG_REPROVISION,
    Q_REG_LIST,
    Q_REG_LIST_GROUP,
    Q_AUDIT_APPEND,
    Q_AUDIT_LIST,
    Q_AUDIT_LIST_SUBJECT,
    Q_TOKEN_ADD,
    Q_TOKEN_FIND,
    Q_COUNTS,
    Q_COUNT
};

#define REG_COLS                                                                                   \
    "registration_id, device_id, group_id, assigned_hub, status, substatus, operation_id,"         \
    " error_code, error_message, payload, version, created, updated, reprovision"
#define AUDIT_COLS                                                                                 \
    "seq, ts, event, subject, outcome, http_status, error_code, reason, remote, tracking"

static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_DOC_VERSION_NEXT] = "UPDATE meta SET value = value + 1 WHERE key = 'doc_version'"
                           " RETURNING value",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_REG_GET] = "SELECT " REG_COLS " FROM registrations WHERE registration_id = ?1",
    /* Every field but created is replaced; created stays from the first registration. ?13 is
     * the version replaced (0: none may be stored), or -1 for whatever is stored: a stored
     * registration of another version is left as it is, and no row is returned. */
    [Q_REG_UPSERT] = "INSERT INTO registrations (" REG_COLS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?11, 0)"
                     " ON CONFLICT (registration_id) DO UPDATE SET"
                     " device_id = excluded.device_id, group_id = excluded.group_id,"
                     " assigned_hub = excluded.assigned_hub, status = excluded.status,"
                     " substatus = excluded.substatus, operation_id = excluded.operation_id,"
                     " error_code = excluded.error_code, error_message = excluded.error_message,"
                     " payload = excluded.payload, version = version + 1,"
                     " updated = excluded.updated,"
                     " reprovision = CASE WHEN ?12 <> 0 THEN 0 ELSE reprovision END"
                     " WHERE ?13 < 0 OR registrations.version = ?13"
                     " RETURNING version, created",
    [Q_REG_DELETE] = "DELETE FROM registrations WHERE registration_id = ?1",
    [Q_REG_REPROVISION] = "UPDATE registrations SET reprovision = 1 WHERE registration_id = ?1",
    [Q_REG_LIST] = "SELECT " REG_COLS " FROM registrations WHERE registration_id > ?1"
                   " ORDER BY registration_id LIMIT ?2",
    [Q_REG_LIST_GROUP] = "SELECT " REG_COLS " FROM registrations"
                         " WHERE group_id = ?3 AND registration_id > ?1"
                         " ORDER BY registration_id LIMIT ?2",
    [Q_AUDIT_APPEND] = "INSERT INTO audit"
                       " (ts, event, subject, outcome, http_status, error_code, reason, remote,"
                       " tracking) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [Q_AUDIT_LIST_SUBJECT] = "SELECT " AUDIT_COLS " FROM audit WHERE subject = ?3 AND seq > ?1"
                             " ORDER BY seq LIMIT ?2",
    /* Adding a token that is already there only renames it, so provisioning the same token at
     * every start is harmless. */
    [Q_TOKEN_ADD] = "INSERT INTO admin_tokens (hash, name, created) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (hash) DO UPDATE SET name = excluded.name",
    [Q_TOKEN_FIND] = "SELECT 1 FROM admin_tokens WHERE hash = ?1",
    [Q_COUNTS] = "SELECT (SELECT count(*) FROM enrollments),"
                 " (SELECT count(*) FROM enrollment_groups),"
                 " (SELECT count(*) FROM registrations), (SELECT count(*) FROM audit)",
};

/* The statements of webhooks and of the event outbox. */
enum eq {
    EQ_EVENT_APPEND,
    EQ_FANOUT,
    EQ_WEBHOOK_CENSUS,
    EQ_WEBHOOK_UPSERT,
    EQ_WEBHOOK_GET,
    EQ_WEBHOOK_DELETE,
    EQ_WEBHOOK_LIST,
    EQ_DUE,
    EQ_NEXT_DUE,
    EQ_UPDATE,
    EQ_LIST,
    EQ_GET,
    EQ_RETRY,
    EQ_STATE,
    EQ_PRUNE_DELIVERIES,
    EQ_PRUNE_EVENTS,
    EQ_COUNT
};

/* Whether a webhook is enabled and subscribes to the event type bound to parameter ?1. */
#define SUBSCRIBED                                                                                 \
    " enabled = 1 AND (events = '*' OR instr(',' || events || ',', ',' || ?1 || ',') > 0)"
#define WEBHOOK_COLS "id, url, events, secret, enabled, version, created, updated"
/* Every query of deliveries yields these columns, then body, url and secret (or NULL). */
#define DELIVERY_COLS                                                                              \
    "d.id, e.id, e.type, e.subject, d.webhook_id, d.state, d.attempts, e.created_ms, d.next_ms,"   \
    " d.last_ms, d.last_status, d.last_error, d.done_ms"
#define DELIVERY_FROM " FROM deliveries d JOIN events e ON e.seq = d.event_seq"

static const char *const event_sql[EQ_COUNT] = {
    /* An event nobody subscribes to is not stored at all, which keeps registrations as cheap
     * as before for an operator who has no webhooks. */
    [EQ_EVENT_APPEND] = "INSERT INTO events (type, id, subject, ts, created_ms, body)"
                        " SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS"
                        " (SELECT 1 FROM webhooks WHERE" SUBSCRIBED ") RETURNING seq",
    [EQ_FANOUT] = "INSERT INTO deliveries (webhook_id, event_seq, state, next_ms)"
                  " SELECT id, ?2, 'pending', ?3 FROM webhooks WHERE" SUBSCRIBED " ORDER BY id",
    /* Whether webhook ?1 is stored, and how many webhooks are: what webhook_put decides on. */
    [EQ_WEBHOOK_CENSUS] = "SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = ?1),"
                          " (SELECT count(*) FROM webhooks)",
    [EQ_WEBHOOK_UPSERT] = "INSERT INTO webhooks (" WEBHOOK_COLS ")"
                          " VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)"
                          " ON CONFLICT (id) DO UPDATE SET url = excluded.url,"
                          " events = excluded.events, secret = excluded.secret,"
                          " enabled = excluded.enabled, version = version + 1,"
                          " updated = excluded.updated"
                          " RETURNING version, created",
    [EQ_WEBHOOK_GET] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE id = ?1",
    [EQ_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?1",
    [EQ_WEBHOOK_LIST] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE id > ?1 ORDER BY id LIMIT ?2",
    [EQ_DUE] = "SELECT " DELIVERY_COLS ", e.body, w.url, w.secret" DELIVERY_FROM
               " JOIN webhooks w ON w.id = d.webhook_id"
               " WHERE d.state = 'pending' AND d.next_ms <= ?1 AND w.enabled = 1"
               " ORDER BY d.next_ms, d.id LIMIT ?2",
    [EQ_NEXT_DUE] = "SELECT min(d.next_ms) FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                    " WHERE d.state = 'pending' AND w.enabled = 1",
    [EQ_UPDATE] = "UPDATE deliveries SET state = ?2, attempts = ?3, next_ms = ?4, last_ms = ?5,"
                  " last_status = ?6, last_error = ?7, done_ms = ?8"
                  " WHERE id = ?1 AND state = 'pending'",
    [EQ_LIST] = "SELECT " DELIVERY_COLS ", NULL, NULL, NULL" DELIVERY_FROM
                " WHERE d.id > ?1 AND (?3 IS NULL OR d.state = ?3)"
                " AND (?4 IS NULL OR d.webhook_id = ?4) ORDER BY d.id LIMIT ?2",
    [EQ_GET] = "SELECT " DELIVERY_COLS ", e.body, NULL, NULL" DELIVERY_FROM " WHERE d.id = ?1",
    [EQ_RETRY] = "UPDATE deliveries SET state = 'pending', attempts = 0, next_ms = ?2,"
                 " done_ms = 0 WHERE id = ?1 AND state = 'failed'",
    [EQ_STATE] = "SELECT state FROM deliveries WHERE id = ?1",
    [EQ_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE state = 'delivered' AND done_ms < ?1",
    [EQ_PRUNE_EVENTS] = "DELETE FROM events WHERE created_ms < ?1"
                        " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = events.seq)",
};

/* The statements of certificates. A filter (struct store_cert_filter) binds ?3 serial, ?4
 * registration ID and ?5 device ID, NULL for "any"; each query comes in one variant per leading
 * column, so that SQLite can use the primary key or an index for the column that is set. */
enum cq_filter { CF_ALL, CF_SERIAL, CF_REG, CF_DEV, CF_COUNT };
enum cq_op { CO_LIST, CO_COUNT_ALL, CO_REVOKE, CO_REVOKE_REGS, CO_COUNT };
enum cq {
    CQ_INSERT,
    CQ_VALID,
    CQ_GET,
    CQ_CURRENT,
    CQ_REVOKED,
    CQ_CRL_NEXT,
    CQ_REVOCATION,
    CQ_REVOCATIONS,
    CQ_COUNT
};

#define CERT_COLS                                                                                  \
    "serial, registration_id, device_id, subject, issuer, thumbprint, not_before, not_after,"      \
    " status, revoked_at, reason, created"
#define CERT_ANY_SERIAL "(?3 IS NULL OR serial = ?3)"
#define CERT_ANY_REG    "(?4 IS NULL OR registration_id = ?4)"
#define CERT_ANY_DEV    "(?5 IS NULL OR device_id = ?5)"
/* List: ?1 after, ?2 limit. Revoke: ?1 revoked_at, ?2 reason. The registration IDs a revocation
 * is about: no ?1 and ?2. */
#define CERT_SQL(where)                                                                            \
    {                                                                                              \
        [CO_LIST] = "SELECT " CERT_COLS " FROM certificates WHERE " where " AND serial > ?1"       \
                    " ORDER BY serial LIMIT ?2",                                                   \
        [CO_COUNT_ALL] = "SELECT count(*) FROM certificates WHERE " where,                         \
        [CO_REVOKE] = "UPDATE certificates SET status = 'revoked', revoked_at = ?1, reason = ?2"   \
                      " WHERE " where " AND status = 'valid'",                                     \
        [CO_REVOKE_REGS] = "SELECT DISTINCT registration_id FROM certificates WHERE " where        \
                           " AND status = 'valid' ORDER BY registration_id",                       \
    }

static const char *const cert_filter_sql[CF_COUNT][CO_COUNT] = {
    [CF_ALL] = CERT_SQL(CERT_ANY_SERIAL " AND " CERT_ANY_REG " AND " CERT_ANY_DEV),
    [CF_SERIAL] = CERT_SQL("serial = ?3 AND " CERT_ANY_REG " AND " CERT_ANY_DEV),
    [CF_REG] = CERT_SQL("registration_id = ?4 AND " CERT_ANY_SERIAL " AND " CERT_ANY_DEV),
    [CF_DEV] = CERT_SQL("device_id = ?5 AND " CERT_ANY_SERIAL " AND " CERT_ANY_REG),
};

static const char *const cert_sql[CQ_COUNT] = {
    [CQ_INSERT] = "INSERT INTO certificates (serial, registration_id, device_id, subject, issuer,"
                  " thumbprint, not_before, not_after, status, created)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'valid', ?9)",
    [CQ_VALID] = "SELECT 1 FROM certificates WHERE serial = ?1 AND status = 'valid'",
    [CQ_GET] = "SELECT " CERT_COLS " FROM certificates WHERE serial = ?1",
    /* Rows are never deleted, so the largest rowid is the last insert. */
    [CQ_CURRENT] = "SELECT " CERT_COLS " FROM certificates WHERE registration_id = ?1"
                   " ORDER BY rowid DESC LIMIT 1",
    [CQ_REVOKED] = "SELECT serial, revoked_at, reason FROM certificates WHERE status = 'revoked'"
                   " ORDER BY serial",
    [CQ_CRL_NEXT] = "UPDATE meta SET value = value + 1 WHERE key = 'crl_number' RETURNING value",
    [CQ_REVOCATION] = "UPDATE meta SET value = value + 1 WHERE key = 'revocations'",
    [CQ_REVOCATIONS] = "SELECT value FROM meta WHERE key = 'revocations'",
};

struct store_sqlite {
    struct store base;
    char *path;
};

/* What commit() learns about one unit. It reaches the caller's structs only once the
 * transaction has committed, so that a batch that failed leaves them as they were. */
struct unit_result {
    int64_t version;
    char created[TIME_DPS_LEN];
    int64_t seq;
    int64_t event_seq;
};

struct sqlite_conn {
    struct store_conn base;
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    sqlite3_stmt *dq[STORE_KINDS][DQ_COUNT];
    sqlite3_stmt *refs[STORE_KINDS];     /* NULL where nothing names a kind */
    sqlite3_stmt *dangling[STORE_KINDS]; /* NULL where a kind names nothing */
    sqlite3_stmt *eq[EQ_COUNT];
    sqlite3_stmt *cq[CQ_COUNT];
    sqlite3_stmt *cfq[CF_COUNT][CO_COUNT];
    struct unit_result *res; /* reused from batch to batch */
    size_t res_cap;
};

static struct sqlite_conn *sconn(struct store_conn *c) {
    return (struct sqlite_conn *)c;
}

static bool kind_ok(enum store_kind k) {
    return k == STORE_ENROLLMENT || k == STORE_GROUP || k == STORE_ENDPOINT;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Logs a failed database operation. SQLite's messages name tables and columns, never values, so
 * no document (and no key) reaches the log. */
static void db_error(struct sqlite_conn *c, const char *what) {
    log_error("store: %s failed sqlite=\"%s\"", what, sqlite3_errmsg(c->db));
}

/* Makes a statement ready for its next use and drops its bindings, which point into memory of
 * the caller (bound with SQLITE_STATIC to spare a copy). */
static void done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* The values a store operation binds to its statement's parameters ?1, ?2, ... in order, each
 * tagged with its type. They are an array built by ARGS() from text() and num() rather than the
 * arguments of a variadic function: the constructors let the compiler check and convert every
 * value, where va_arg reading a value with the wrong type (an int passed where an int64 is
 * read) is undefined and no warning catches it, and ARGS() counts the values, so there is no
 * terminator to forget. The array lives on the caller's stack: binding allocates nothing. */
struct arg {
    bool is_text;
    union {
        const char *s; /* NULL binds SQL NULL */
        sqlite3_int64 i;
    };
};

struct args {
    const struct arg *v;
    int n;
};

#define ARGS(...)                                                                                  \
    ((struct args){(const struct arg[]){__VA_ARGS__},                                              \
                   (int)(sizeof((const struct arg[]){__VA_ARGS__}) / sizeof(struct arg))})
#define NO_ARGS ((struct args){NULL, 0})

/* Text, bound without a copy (SQLITE_STATIC): it must stay valid until done() drops it. */
static struct arg text(const char *s) {
    return (struct arg){.is_text = true, .s = s};
}

/* An integer; sqlite3_bind_int only widens to sqlite3_bind_int64, so one kind serves both. */
static struct arg num(sqlite3_int64 i) {
    return (struct arg){.is_text = false, .i = i};
}

/* What the first step of a statement must yield. */
enum expect {
    NO_ROW,    /* SQLITE_DONE: a change */
    ONE_ROW,   /* SQLITE_ROW: a query or RETURNING that always yields one */
    MAYBE_ROW, /* SQLITE_ROW, or SQLITE_DONE for STORE_NOT_FOUND */
};

/* Binds a to the parameters of st; a failure is logged as "<what> bind". */
static int bind_args(struct sqlite_conn *c, sqlite3_stmt *st, const char *what, struct args a) {
    for (int i = 0; i < a.n; i++) {
        const struct arg *v = &a.v[i];
        int rc;

        if (!v->is_text)
            rc = sqlite3_bind_int64(st, i + 1, v->i);
        else if (v->s)
            rc = sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK) {
            log_error("store: %s bind failed sqlite=\"%s\"", what, sqlite3_errmsg(c->db));
            return -1;
        }
    }
    return 0;
}

/* Runs one step of st with a bound: the shape of every store operation. Returns STORE_OK when st
 * yields what expect asks for, STORE_NOT_FOUND when MAYBE_ROW finds no row, and otherwise logs
 * the failure under what and returns STORE_ERROR. A statement run with NO_ROW is reset here;
 * after ONE_ROW or MAYBE_ROW the caller reads the row (on STORE_OK) and then resets st with
 * done(), whatever the result. */
static int run(struct sqlite_conn *c, sqlite3_stmt *st, enum expect expect, const char *what,
               struct args a) {
    int rc = STORE_ERROR, s;

    if (bind_args(c, st, what, a) != 0)
        goto out;
    s = sqlite3_step(st);
    if (s == (expect == NO_ROW ? SQLITE_DONE : SQLITE_ROW))
        rc = STORE_OK;
    else if (s == SQLITE_DONE && expect == MAYBE_ROW)
        rc = STORE_NOT_FOUND;
    else
        db_error(c, what);
out:
    if (expect == NO_ROW)
        done(st);
    return rc;
}

static sqlite3_int64 bind_limit(size_t limit) {
    return limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit;
}

/* Copies text column i into *out (NULL stays NULL). Returns -1 only when memory runs out. */
static int col_dup(sqlite3_stmt *st, int i, char **out) {
    const unsigned char *t;
    size_t n;

    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    t = sqlite3_column_text(st, i);
    if (!t)
        return -1;
    n = (size_t)sqlite3_column_bytes(st, i);
    *out = malloc(n + 1);
    if (!*out)
        return -1;
    memcpy(*out, t, n + 1);
    return 0;
}

static void col_ts(sqlite3_stmt *st, int i, char out[TIME_DPS_LEN]) {
    const unsigned char *t = sqlite3_column_text(st, i);

    snprintf(out, TIME_DPS_LEN, "%s", t ? (const char *)t : "");
}

/* Makes room in arr, which holds used of *cap elements of size bytes, for one more element.
 * Returns the (possibly moved) array, or NULL when memory runs out (arr is then untouched). */
static void *grow(void *arr, size_t *cap, size_t used, size_t size) {
    size_t ncap;
    void *p;

    if (used < *cap)
        return arr;
    ncap = *cap ? *cap * 2 : 16;
    p = reallocarray(arr, ncap, size);
    if (!p)
        return NULL;
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *cap = ncap;
    return p;
}

static int tx_begin(struct sqlite_conn *c) {
    return run(c, c->q[Q_BEGIN], NO_ROW, "begin", NO_ARGS) == STORE_OK ? 0 : -1;
}

/* Rolls back the open transaction, if any: some errors (I/O, full disk) already rolled it back. */
static void tx_rollback(struct sqlite_conn *c) {
    if (!sqlite3_get_autocommit(c->db))
        run(c, c->q[Q_ROLLBACK], NO_ROW, "rollback", NO_ARGS);
}

/* A COMMIT that failed with an I/O error (its fsync, say) may have left the whole transaction
 * in the WAL file all the same, where SQLite's recovery after a crash would find it and replay a
 * write answered as failed. The next commit overwrites it there, so one is made at once: it
 * draws a document version that no document gets (SQLite writes no page for an update that
 * leaves a row as it was), which only leaves a gap between versions. */
static void tx_bury(struct sqlite_conn *c) {
    sqlite3_stmt *st = c->q[Q_DOC_VERSION_NEXT];
    int rc = tx_begin(c) == 0 ? run(c, st, ONE_ROW, "bury", NO_ARGS) : STORE_ERROR;

    done(st);
    if (rc != STORE_OK || run(c, c->q[Q_COMMIT], NO_ROW, "commit", NO_ARGS) != STORE_OK) {
        tx_rollback(c);
        log_error("store: after a failed commit no other could be made: a crash before the next"
                  " one may still bring back what the failed one wrote");
    }
}

static int tx_commit(struct sqlite_conn *c) {
    if (run(c, c->q[Q_COMMIT], NO_ROW, "commit", NO_ARGS) != STORE_OK) {
        int io = (sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_IOERR;

        tx_rollback(c);
        if (io)
            tx_bury(c);
        return -1;
    }
    return 0;
}

/* Appends one audit record inside the caller's transaction, stamped ts, and returns its seq. */
static int audit_append(struct sqlite_conn *c, const struct store_audit *a, const char *ts,
                        int64_t *seq) {
    int rc =
        run(c, c->q[Q_AUDIT_APPEND], NO_ROW, "audit append",
            ARGS(text(ts), text(a->event), text(a->subject), text(a->outcome), num(a->http_status),
                 num(a->error_code), text(a->reason), text(a->remote), text(a->tracking)));

    /* seq is the row's rowid. It is read back here rather than with RETURNING, for which SQLite
     * builds a temporary table at every insert. */
    if (rc == STORE_OK)
        *seq = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Gives a successfully appended audit record its seq, and its time when the caller left it. */
static void audit_fill(struct store_audit *a, int64_t seq, const char *now) {
    a->seq = seq;
    if (!a->ts[0])
        memcpy(a->ts, now, TIME_DPS_LEN);
}

/* Queues event e inside the caller's transaction, stamped now (now_ms): stores it and adds a
 * pending delivery, due at once, for every enabled webhook subscribed to its type. *seq is the
 * event's number, or 0 when no webhook subscribes (and nothing was written). */
static int event_append(struct sqlite_conn *c, const struct store_event *e, const char *now,
                        int64_t now_ms, int64_t *seq) {
    sqlite3_stmt *st = c->eq[EQ_EVENT_APPEND];
    int rc;

    *seq = 0;
    if (!e->id || !e->type || !e->body) {
        log_error("store: event append: invalid arguments");
        return STORE_ERROR;
    }
    rc = run(c, st, MAYBE_ROW, "event append",
             ARGS(text(e->type), text(e->id), text(e->subject), text(e->ts[0] ? e->ts : now),
                  num(now_ms), text(e->body)));
    if (rc == STORE_OK)
        *seq = sqlite3_column_int64(st, 0);
    done(st);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (*seq == 0)
        return STORE_OK;
    return run(c, c->eq[EQ_FANOUT], NO_ROW, "event deliveries",
               ARGS(text(e->type), num(*seq), num(now_ms)));
}

/* Ends a write transaction that went well so far: appends audit and queues event (each when not
 * NULL) inside it, stamped now, and commits. Only once the transaction has committed do they
 * learn their seq (and audit its time). Rolls back on failure. */
static int tx_end(struct sqlite_conn *c, const char *now, struct store_audit *audit,
                  struct store_event *event) {
    int64_t seq = 0, eseq = 0;

    if (audit && audit_append(c, audit, audit->ts[0] ? audit->ts : now, &seq) != STORE_OK)
        goto fail;
    if (event && event_append(c, event, now, time_now_unix_ms(), &eseq) != STORE_OK)
        goto fail;
    if (tx_commit(c) != 0)
        return STORE_ERROR;
    if (audit)
        audit_fill(audit, seq, now);
    if (event)
        event->seq = eseq;
    return STORE_OK;
fail:
    tx_rollback(c);
    return STORE_ERROR;
}

/* Runs a write of one row with a whose RETURNING clause yields the row's version and created
 * time, and reads them into *version and created. With MAYBE_ROW, a write its condition skipped
 * is STORE_NOT_FOUND. */
static int run_returning(struct sqlite_conn *c, sqlite3_stmt *st, enum expect expect,
                         const char *what, struct args a, int64_t *version,
                         char created[TIME_DPS_LEN]) {
    int rc = run(c, st, expect, what, a);

    if (rc == STORE_OK) {
        *version = sqlite3_column_int64(st, 0);
        col_ts(st, 1, created);
    }
    done(st);
    return rc;
}

/* Reads the stored version of a document: STORE_OK with *version, or STORE_NOT_FOUND. */
static int doc_version(struct sqlite_conn *c, enum store_kind k, const char *id, int64_t *version) {
    sqlite3_stmt *st = c->dq[k][DQ_VERSION];
    int rc = run(c, st, MAYBE_ROW, "doc version", ARGS(text(id)));

    if (rc == STORE_OK)
        *version = sqlite3_column_int64(st, 0);
    done(st);
    return rc;
}

/* Decides whether a write conditioned by if_match may go ahead, given what is stored. */
static int check_if_match(bool exists, int64_t cur, int64_t if_match) {
    if (if_match == STORE_IF_ANY)
        return STORE_OK;
    if (if_match == STORE_IF_ABSENT)
        return exists ? STORE_CONFLICT : STORE_OK;
    if (!exists)
        return STORE_NOT_FOUND;
    if (if_match == STORE_IF_EXISTS)
        return STORE_OK;
    return cur == if_match ? STORE_OK : STORE_CONFLICT;
}

static int read_doc(sqlite3_stmt *st, struct store_doc *d) {
    memset(d, 0, sizeof(*d));
    if (col_dup(st, 0, &d->id) != 0 || col_dup(st, 1, &d->doc) != 0) {
        store_doc_clear(d);
        return -1;
    }
    d->version = sqlite3_column_int64(st, 2);
    col_ts(st, 3, d->created);
    col_ts(st, 4, d->updated);
    return 0;
}

static int read_reg(sqlite3_stmt *st, struct store_registration *r) {
    memset(r, 0, sizeof(*r));
    if (col_dup(st, 0, &r->registration_id) != 0 || col_dup(st, 1, &r->device_id) != 0 ||
        col_dup(st, 2, &r->group_id) != 0 || col_dup(st, 3, &r->assigned_hub) != 0 ||
        col_dup(st, 4, &r->status) != 0 || col_dup(st, 5, &r->substatus) != 0 ||
        col_dup(st, 6, &r->operation_id) != 0 || col_dup(st, 8, &r->error_message) != 0 ||
        col_dup(st, 9, &r->payload) != 0) {
        store_registration_clear(r);
        return -1;
    }
    r->error_code = sqlite3_column_int(st, 7);
    r->version = sqlite3_column_int64(st, 10);
    col_ts(st, 11, r->created);
    col_ts(st, 12, r->updated);
    r->reprovision = sqlite3_column_int(st, 13);
    return 0;
}

static int read_audit(sqlite3_stmt *st, struct store_audit *a) {
    memset(a, 0, sizeof(*a));
    if (col_dup(st, 2, &a->event) != 0 || col_dup(st, 3, &a->subject) != 0 ||
        col_dup(st, 4, &a->outcome) != 0 || col_dup(st, 7, &a->reason) != 0 ||
        col_dup(st, 8, &a->remote) != 0 || col_dup(st, 9, &a->tracking) != 0) {
        store_audit_clear(a);
        return -1;
    }
    a->seq = sqlite3_column_int64(st, 0);
    col_ts(st, 1, a->ts);
    a->http_status = sqlite3_column_int(st, 5);
    a->error_code = sqlite3_column_int(st, 6);
    return 0;
}

/* Binds a to st, steps it to its end and reads each row with read into an array of elements of
 * size bytes. On STORE_OK *out (freed by the caller) holds *n rows; otherwise the rows read so
 * far are released with clear. The statement is reset either way. */
static int read_rows(struct sqlite_conn *c, sqlite3_stmt *st, const char *what, struct args a,
                     size_t size, int (*read)(sqlite3_stmt *, void *), void (*clear)(void *),
                     void **out, size_t *n) {
    char *v = NULL, *p;
    size_t cap = 0, cnt = 0;
    int rc = STORE_ERROR, s;

    *out = NULL;
    *n = 0;
    if (bind_args(c, st, what, a) != 0)
        goto out;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (!(p = grow(v, &cap, cnt, size))) {
            log_error("store: %s: out of memory", what);
            goto out;
        }
        v = p;
        if (read(st, v + cnt * size) != 0) {
            log_error("store: %s: out of memory", what);
            goto out;
        }
        cnt++;
    }
    if (s != SQLITE_DONE) {
        db_error(c, what);
        goto out;
    }
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
    rc = STORE_OK;
out:
    done(st);
    for (size_t i = 0; i < cnt; i++)
        clear(v + i * size);
    free(v);
    return rc;
}

/* Runs st with a for at most one row and reads it with read into out; STORE_NOT_FOUND when
 * there is none. */
static int read_one(struct sqlite_conn *c, sqlite3_stmt *st, const char *what, struct args a,
                    int (*read)(sqlite3_stmt *, void *), void *out) {
    int rc = run(c, st, MAYBE_ROW, what, a);

    if (rc == STORE_OK && read(st, out) != 0) {
        log_error("store: %s: out of memory", what);
        rc = STORE_ERROR;
    }
    done(st);
    return rc;
}

/* The row readers and element clearers of read_rows, for each record type. */
static int read_doc_row(sqlite3_stmt *st, void *out) {
    return read_doc(st, out);
}
static void clear_doc(void *p) {
    store_doc_clear(p);
}
static int read_reg_row(sqlite3_stmt *st, void *out) {
    return read_reg(st, out);
}
static void clear_reg(void *p) {
    store_registration_clear(p);
}
static int read_audit_row(sqlite3_stmt *st, void *out) {
    return read_audit(st, out);
}
static void clear_audit(void *p) {
    store_audit_clear(p);
}
static int read_ref_row(sqlite3_stmt *st, void *out) {
    struct store_ref *r = out;
    r->kind = (enum store_kind)sqlite3_column_int(st, 0);
    return col_dup(st, 1, &r->id);
}
static void clear_ref(void *p) {
    struct store_ref *r = p;
    free(r->id);
    r->id = NULL;
}

/* Opens path with the settings every connection needs. On failure writes why into err. */
static int db_open(const char *path, sqlite3 **out, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc;

    *out = NULL;
    rc = sqlite3_open_v2(path, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot open SQLite database %s: %s", path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* secure_delete=FAST zeroes deleted rows where that costs no extra I/O, so that replaced
     * and deleted enrollments (which hold keys) do not linger in the pages of the file. */
    if (sqlite3_exec(db,
                     "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                     " PRAGMA secure_delete = FAST;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errlen, "cannot configure SQLite database %s: %s", path,
                msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto fail;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return -1;
}

/* Switches the database to WAL mode. The mode is stored in the file, so this is done once, at
 * open, rather than on every connection. */
static int set_wal(sqlite3 *db, const char *path, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int rc = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, errlen, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    if (!mode || strcasecmp((const char *)mode, "wal") != 0) {
        set_err(err, errlen, "%s cannot use WAL mode (journal mode stays %s)", path,
                mode ? (const char *)mode : "unknown");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int schema_version(sqlite3 *db, int *version) {
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction, so that a failed migration leaves the
 * database as it was. The write lock is taken before user_version is read, so two processes
 * opening the same new file cannot both migrate it. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen) {
    char *msg = NULL;
    char set[64];
    int have = 0;

    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        schema_version(db, &have) != 0) {
        set_err(err, errlen, "cannot read the schema version of %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (have > SCHEMA_VERSION) {
        set_err(err, errlen,
                "%s has schema version %d, newer than this program knows (%d); "
                "it was written by a newer provd",
                path, have, SCHEMA_VERSION);
        goto fail;
    }
    if (have < 0) {
        set_err(err, errlen, "%s has schema version %d, which no provd writes", path, have);
        goto fail;
    }
    for (int v = have; v < SCHEMA_VERSION; v++) {
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK) {
            set_err(err, errlen, "migrating %s to schema version %d failed: %s", path, v + 1,
                    msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            goto fail;
        }
    }
    snprintf(set, sizeof(set), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot commit the schema of %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (have < SCHEMA_VERSION)
        log_info("store: schema migrated path=%s from=%d to=%d", path, have, SCHEMA_VERSION);
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int open_store(const char *target, struct store **out, char *err, size_t errlen) {
    struct store_sqlite *s = NULL;
    sqlite3 *db = NULL;
    int rc = STORE_ERROR;

    *out = NULL;
    if (sqlite3_libversion_number() < SQLITE_MIN_VERSION) {
        set_err(err, errlen, "SQLite %s is too old: 3.35.0 or newer is needed",
                sqlite3_libversion());
        goto out;
    }
    /* Connections opened with SQLITE_OPEN_NOMUTEX are only safe in threads when the library
     * was built thread-safe. */
    if (!sqlite3_threadsafe()) {
        set_err(err, errlen, "this SQLite library was built without thread support");
        goto out;
    }
    if (!target || !target[0]) {
        set_err(err, errlen, "no SQLite database path given");
        goto out;
    }
    if (db_open(target, &db, err, errlen) != 0 || set_wal(db, target, err, errlen) != 0 ||
        migrate(db, target, err, errlen) != 0)
        goto out;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(target))) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    s->base.ops = &store_sqlite_ops;
    *out = &s->base;
    s = NULL;
    rc = STORE_OK;
out:
    sqlite3_close(db);
    if (s)
        free(s->path);
    free(s);
    return rc;
}

static void close_store(struct store *st) {
    struct store_sqlite *s = (struct store_sqlite *)st;

    free(s->path);
    free(s);
}

static void conn_close(struct store_conn *sc) {
    struct sqlite_conn *c = sconn(sc);

    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(c->q[i]);
    for (int k = 0; k < STORE_KINDS; k++) {
        for (int i = 0; i < DQ_COUNT; i++)
            sqlite3_finalize(c->dq[k][i]);
        sqlite3_finalize(c->refs[k]);
        sqlite3_finalize(c->dangling[k]);
    }
    for (int i = 0; i < EQ_COUNT; i++)
        sqlite3_finalize(c->eq[i]);
    for (int i = 0; i < CQ_COUNT; i++)
        sqlite3_finalize(c->cq[i]);
    for (int f = 0; f < CF_COUNT; f++)
        for (int i = 0; i < CO_COUNT; i++)
            sqlite3_finalize(c->cfq[f][i]);
    if (c->db && sqlite3_close(c->db) != SQLITE_OK)
        db_error(c, "close");
    free(c->res);
    free(c);
}

static int prepare(struct sqlite_conn *c, const char *text, sqlite3_stmt **st) {
    if (sqlite3_prepare_v3(c->db, text, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        log_error("store: prepare failed sqlite=\"%s\" sql=\"%s\"", sqlite3_errmsg(c->db), text);
        return -1;
    }
    return 0;
}

static int conn_open(struct store *st, struct store_conn **out) {
    struct store_sqlite *s = (struct store_sqlite *)st;
    struct sqlite_conn *c;
    char err[512];

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c) {
        log_error("store: out of memory opening a connection");
        return STORE_ERROR;
    }
    c->base.ops = &store_sqlite_ops;
    if (db_open(s->path, &c->db, err, sizeof(err)) != 0) {
        log_error("store: %s", err);
        goto fail;
    }
    for (int i = 0; i < Q_COUNT; i++) {
        if (prepare(c, sql[i], &c->q[i]) != 0)
            goto fail;
    }
    for (int k = 0; k < STORE_KINDS; k++) {
        for (int i = 0; i < DQ_COUNT; i++) {
            if (prepare(c, doc_sql[k][i], &c->dq[k][i]) != 0)
                goto fail;
        }
        if ((refs_sql[k] && prepare(c, refs_sql[k], &c->refs[k]) != 0) ||
            (dangling_sql[k] && prepare(c, dangling_sql[k], &c->dangling[k]) != 0))
            goto fail;
    }
    for (int i = 0; i < EQ_COUNT; i++) {
        if (prepare(c, event_sql[i], &c->eq[i]) != 0)
            goto fail;
    }
    for (int i = 0; i < CQ_COUNT; i++) {
        if (prepare(c, cert_sql[i], &c->cq[i]) != 0)
            goto fail;
    }
    for (int f = 0; f < CF_COUNT; f++) {
        for (int i = 0; i < CO_COUNT; i++) {
            if (prepare(c, cert_filter_sql[f][i], &c->cfq[f][i]) != 0)
                goto fail;
        }
    }
    *out = &c->base;
    return STORE_OK;
fail:
    conn_close(&c->base);
    return STORE_ERROR;
}

static int doc_get(struct store_conn *sc, enum store_kind k, const char *id,
                   struct store_doc *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    if (!kind_ok(k) || !id) {
        log_error("store: doc_get: invalid arguments");
        return STORE_ERROR;
    }
    return read_one(c, c->dq[k][DQ_GET], "doc_get", ARGS(text(id)), read_doc_row, out);
}

static int doc_put(struct store_conn *sc, enum store_kind k, struct store_doc *doc,
                   int64_t if_match, struct store_audit *audit, struct store_event *event) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN], created[TIME_DPS_LEN];
    int64_t cur = 0, version = 0;
    bool exists;
    int rc;

    if (!kind_ok(k) || !doc || !doc->id || !doc->doc || if_match < STORE_IF_ANY) {
        log_error("store: doc_put: invalid arguments");
        return STORE_ERROR;
    }
    time_now_dps(now);
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    rc = doc_version(c, k, doc->id, &cur);
    if (rc == STORE_ERROR)
        goto out;
    exists = rc == STORE_OK;
    rc = check_if_match(exists, cur, if_match);
    if (rc != STORE_OK)
        goto out;
    if (c->dangling[k]) {
        rc = run(c, c->dangling[k], MAYBE_ROW, "doc_put references", ARGS(text(doc->doc)));
        done(c->dangling[k]);
        if (rc == STORE_OK)
            rc = STORE_DANGLING;
        if (rc != STORE_NOT_FOUND)
            goto out;
    }

    sqlite3_stmt *next = c->q[Q_DOC_VERSION_NEXT];
    rc = run(c, next, ONE_ROW, "doc version", NO_ARGS);
    int64_t v = rc == STORE_OK ? sqlite3_column_int64(next, 0) : 0;
    done(next);
    if (rc != STORE_OK)
        goto out;
    rc = run_returning(c, c->dq[k][exists ? DQ_UPDATE : DQ_INSERT], ONE_ROW, "doc_put",
                       ARGS(text(doc->id), text(doc->doc), text(now), num(v)), &version, created);
    if (rc != STORE_OK)
        goto out;
    if (tx_end(c, now, audit, event) != STORE_OK)
        return STORE_ERROR;
    doc->version = version;
    memcpy(doc->created, created, TIME_DPS_LEN);
    memcpy(doc->updated, now, TIME_DPS_LEN);
    return STORE_OK;
out:
    tx_rollback(c);
    return rc;
}

/* Lists up to limit documents that name document id of kind k (none for a kind nothing names). */
static int refs_list(struct sqlite_conn *c, enum store_kind k, const char *id, size_t limit,
                     struct store_ref **out, size_t *n) {
    sqlite3_stmt *st = c->refs[k];

    *out = NULL;
    *n = 0;
    if (!st || limit == 0)
        return STORE_OK;
    return read_rows(c, st, "referrers", ARGS(text(id), num(bind_limit(limit))), sizeof(**out),
                     read_ref_row, clear_ref, (void **)out, n);
}

/* STORE_IN_USE when a document names document id of kind k, else STORE_OK (or STORE_ERROR). */
static int refs_exist(struct sqlite_conn *c, enum store_kind k, const char *id) {
    struct store_ref *r = NULL;
    size_t n = 0;
    int rc = refs_list(c, k, id, 1, &r, &n);

    store_refs_free(r, n);
    if (rc != STORE_OK)
        return rc;
    return n > 0 ? STORE_IN_USE : STORE_OK;
}

static int doc_referrers(struct store_conn *sc, enum store_kind k, const char *id, size_t limit,
                         struct store_ref **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!kind_ok(k) || !id) {
        log_error("store: doc_referrers: invalid arguments");
        return STORE_ERROR;
    }
    return refs_list(sconn(sc), k, id, limit, out, n);
}

static int doc_delete(struct store_conn *sc, enum store_kind k, const char *id, int64_t if_match,
                      struct store_audit *audit, struct store_event *event) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN];
    int64_t cur = 0;
    int rc;

    if (!kind_ok(k) || !id || if_match < STORE_IF_ANY) {
        log_error("store: doc_delete: invalid arguments");
        return STORE_ERROR;
    }
    if (if_match == STORE_IF_ABSENT)
        if_match = STORE_IF_ANY;
    time_now_dps(now);
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    rc = doc_version(c, k, id, &cur);
    if (rc != STORE_OK)
        goto out;
    rc = check_if_match(true, cur, if_match);
    if (rc != STORE_OK)
        goto out;
    /* Checked inside the transaction, so that nothing can start naming the document between the
     * check and the delete. */
    rc = refs_exist(c, k, id);
    if (rc != STORE_OK)
        goto out;

    rc = run(c, c->dq[k][DQ_DELETE], NO_ROW, "doc_delete", ARGS(text(id)));
    if (rc != STORE_OK)
        goto out;
    return tx_end(c, now, audit, event);
out:
    tx_rollback(c);
    return rc;
}

static int doc_list(struct store_conn *sc, enum store_kind k, const char *after, size_t limit,
                    struct store_doc **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);

    *out = NULL;
    *n = 0;
    if (!kind_ok(k)) {
        log_error("store: doc_list: invalid arguments");
        return STORE_ERROR;
    }
    if (limit == 0)
        return STORE_OK;
    return read_rows(c, c->dq[k][DQ_LIST], "doc_list",
                     ARGS(text(after ? after : ""), num(bind_limit(limit))), sizeof(**out),
                     read_doc_row, clear_doc, (void **)out, n);
}

static int reg_get(struct store_conn *sc, const char *regid, struct store_registration *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    if (!regid) {
        log_error("store: reg_get: invalid arguments");
        return STORE_ERROR;
    }
    return read_one(c, c->q[Q_REG_GET], "reg_get", ARGS(text(regid)), read_reg_row, out);
}

/* Runs st with a in a transaction of its own together with audit. Returns STORE_NOT_FOUND (and
 * writes nothing) when st changes no row. */
static int change_audited(struct sqlite_conn *c, sqlite3_stmt *st, const char *what, struct args a,
                          struct store_audit *audit) {
    char now[TIME_DPS_LEN];
    int rc;

    time_now_dps(now);
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    rc = run(c, st, NO_ROW, what, a);
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_NOT_FOUND;
    if (rc != STORE_OK) {
        tx_rollback(c);
        return rc;
    }
    return tx_end(c, now, audit, NULL);
}

/* Runs statement q (a change to one registration, bound to regid) with its audit record in one
 * transaction; STORE_NOT_FOUND when it changed no row. what names it in errors. */
static int reg_change(struct store_conn *sc, enum q q, const char *what, const char *regid,
                      struct store_audit *audit) {
    struct sqlite_conn *c = sconn(sc);

    if (!regid) {
        log_error("store: %s: invalid arguments", what);
        return STORE_ERROR;
    }
    return change_audited(c, c->q[q], what, ARGS(text(regid)), audit);
}

static int reg_delete(struct store_conn *sc, const char *regid, struct store_audit *audit) {
    return reg_change(sc, Q_REG_DELETE, "reg_delete", regid, audit);
}

static int reg_reprovision(struct store_conn *sc, const char *regid, struct store_audit *audit) {
    return reg_change(sc, Q_REG_REPROVISION, "reg_reprovision", regid, audit);
}

static int reg_list(struct store_conn *sc, const char *group_id, const char *after, size_t limit,
                    struct store_registration **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);
    const struct arg v[] = {text(after ? after : ""), num(bind_limit(limit)), text(group_id)};

    *out = NULL;
    *n = 0;
    if (limit == 0)
        return STORE_OK;
    /* Only the group's variant of the query has ?3. */
    return read_rows(c, c->q[group_id ? Q_REG_LIST_GROUP : Q_REG_LIST], "reg_list",
                     (struct args){v, group_id ? 3 : 2}, sizeof(**out), read_reg_row, clear_reg,
                     (void **)out, n);
}

/* Upserts the registration of w inside the caller's transaction, stamped now: STORE_NOT_FOUND
 * when its condition (w->reg_conditional) skipped it. */
static int reg_upsert(struct sqlite_conn *c, const struct store_write *w, const char *now,
                      struct unit_result *res) {
    const struct store_registration *r = w->reg;
    return run_returning(c, c->q[Q_REG_UPSERT], MAYBE_ROW, "registration upsert",
                         ARGS(text(r->registration_id), text(r->device_id), text(r->group_id),
                              text(r->assigned_hub), text(r->status), text(r->substatus),
                              text(r->operation_id), num(r->error_code), text(r->error_message),
                              text(r->payload), text(now), num(r->reprovision),
                              num(w->reg_conditional ? w->reg_if_version : -1)),
                         &res->version, res->created);
}

/* Inserts one issued certificate inside the caller's transaction, stamped now. */
static int cert_insert(struct sqlite_conn *c, const struct store_cert *x, const char *now) {
    return run(c, c->cq[CQ_INSERT], NO_ROW, "certificate insert",
               ARGS(text(x->serial), text(x->registration_id), text(x->device_id), text(x->subject),
                    text(x->issuer), text(x->thumbprint), text(x->not_before), text(x->not_after),
                    text(now)));
}

/* Whether the certificate of serial is stored and valid, inside the caller's transaction:
 * STORE_OK, or STORE_NOT_FOUND when it is not (revoked, or not provd's). */
static int cert_valid(struct sqlite_conn *c, const char *serial) {
    sqlite3_stmt *st = c->cq[CQ_VALID];
    int rc = run(c, st, MAYBE_ROW, "certificate check", ARGS(text(serial)));

    done(st);
    return rc;
}

static int commit(struct store_conn *sc, struct store_write *w, size_t n) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN];
    int64_t now_ms;
    size_t i;

    if (n == 0)
        return STORE_OK;
    if (!w) {
        log_error("store: commit: invalid arguments");
        return STORE_ERROR;
    }
    if (n > c->res_cap) {
        struct unit_result *p = reallocarray(c->res, n, sizeof(*p));

        if (!p) {
            log_error("store: commit: out of memory units=%zu", n);
            return STORE_ERROR;
        }
        c->res = p;
        c->res_cap = n;
    }
    /* The units of a batch become durable together, so they share one time stamp. */
    time_now_dps(now);
    now_ms = time_now_unix_ms();
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    for (i = 0; i < n; i++) {
        struct store_audit *a = w[i].audit;
        int rc = w[i].attested_by ? cert_valid(c, w[i].attested_by) : STORE_OK;

        w[i].revoked = rc == STORE_NOT_FOUND;
        if (rc == STORE_OK && w[i].reg)
            rc = reg_upsert(c, &w[i], now, &c->res[i]);
        /* Another write changed the registration since it was read, or revoked the certificate
         * that attested the device: nothing of this unit. */
        w[i].conflict = rc == STORE_NOT_FOUND;
        if (w[i].conflict)
            continue;
        if (rc != STORE_OK)
            goto fail;
        if (w[i].cert && cert_insert(c, w[i].cert, now) != STORE_OK)
            goto fail;
        if (a && audit_append(c, a, a->ts[0] ? a->ts : now, &c->res[i].seq) != STORE_OK)
            goto fail;
        if (w[i].event &&
            event_append(c, w[i].event, now, now_ms, &c->res[i].event_seq) != STORE_OK)
            goto fail;
    }
    if (tx_commit(c) != 0) {
        log_error("store: commit: batch rolled back units=%zu", n);
        return STORE_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (w[i].conflict)
            continue;
        if (w[i].reg) {
            w[i].reg->version = c->res[i].version;
            memcpy(w[i].reg->created, c->res[i].created, TIME_DPS_LEN);
            memcpy(w[i].reg->updated, now, TIME_DPS_LEN);
        }
        if (w[i].audit)
            audit_fill(w[i].audit, c->res[i].seq, now);
        if (w[i].event)
            w[i].event->seq = c->res[i].event_seq;
        if (w[i].cert)
            memcpy(w[i].cert->created, now, TIME_DPS_LEN);
    }
    return STORE_OK;
fail:
    log_error("store: commit: batch rolled back unit=%zu units=%zu", i, n);
    tx_rollback(c);
    return STORE_ERROR;
}

static int audit_list(struct store_conn *sc, const char *subject, int64_t after, size_t limit,
                      struct store_audit **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);
    const struct arg v[] = {num(after), num(bind_limit(limit)), text(subject)};

    *out = NULL;
    *n = 0;
    if (limit == 0)
        return STORE_OK;
    /* Only the subject's variant of the query has ?3. */
    return read_rows(c, c->q[subject ? Q_AUDIT_LIST_SUBJECT : Q_AUDIT_LIST], "audit_list",
                     (struct args){v, subject ? 3 : 2}, sizeof(**out), read_audit_row, clear_audit,
                     (void **)out, n);
}

static int token_add(struct store_conn *sc, const char *hash_hex, const char *name) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN];

    if (!hash_hex) {
        log_error("store: token_add: invalid arguments");
        return STORE_ERROR;
    }
    time_now_dps(now);
    return run(c, c->q[Q_TOKEN_ADD], NO_ROW, "token_add",
               ARGS(text(hash_hex), text(name), text(now)));
}

static int token_find(struct store_conn *sc, const char *hash_hex) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->q[Q_TOKEN_FIND];
    int rc;

    if (!hash_hex) {
        log_error("store: token_find: invalid arguments");
        return STORE_ERROR;
    }
    rc = run(c, st, MAYBE_ROW, "token_find", ARGS(text(hash_hex)));
    done(st);
    return rc;
}

static int counts(struct store_conn *sc, struct store_counts *out) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->q[Q_COUNTS];
    int rc;

    memset(out, 0, sizeof(*out));
    rc = run(c, st, ONE_ROW, "counts", NO_ARGS);
    if (rc == STORE_OK) {
        out->enrollments = sqlite3_column_int64(st, 0);
        out->groups = sqlite3_column_int64(st, 1);
        out->registrations = sqlite3_column_int64(st, 2);
        out->audit = sqlite3_column_int64(st, 3);
    }
    done(st);
    return rc;
}

/* ---- Webhooks and the event outbox ---- */

static int read_webhook(sqlite3_stmt *st, void *out) {
    struct store_webhook *w = out;

    memset(w, 0, sizeof(*w));
    if (col_dup(st, 0, &w->id) != 0 || col_dup(st, 1, &w->url) != 0 ||
        col_dup(st, 2, &w->events) != 0 || col_dup(st, 3, &w->secret) != 0) {
        store_webhook_clear(w);
        return -1;
    }
    w->enabled = sqlite3_column_int(st, 4);
    w->version = sqlite3_column_int64(st, 5);
    col_ts(st, 6, w->created);
    col_ts(st, 7, w->updated);
    return 0;
}

static int read_delivery(sqlite3_stmt *st, void *out) {
    struct store_delivery *d = out;
    const unsigned char *state;

    memset(d, 0, sizeof(*d));
    if (col_dup(st, 1, &d->event_id) != 0 || col_dup(st, 2, &d->type) != 0 ||
        col_dup(st, 3, &d->subject) != 0 || col_dup(st, 4, &d->webhook_id) != 0 ||
        col_dup(st, 11, &d->last_error) != 0 || col_dup(st, 13, &d->body) != 0 ||
        col_dup(st, 14, &d->url) != 0 || col_dup(st, 15, &d->secret) != 0) {
        store_delivery_clear(d);
        return -1;
    }
    d->id = sqlite3_column_int64(st, 0);
    state = sqlite3_column_text(st, 5);
    if (!state || store_delivery_state_parse((const char *)state, &d->state) != 0)
        d->state = STORE_DELIVERY_FAILED; /* the CHECK constraint makes this unreachable */
    d->attempts = sqlite3_column_int(st, 6);
    d->created_ms = sqlite3_column_int64(st, 7);
    d->next_ms = sqlite3_column_int64(st, 8);
    d->last_ms = sqlite3_column_int64(st, 9);
    d->last_status = sqlite3_column_int(st, 10);
    d->done_ms = sqlite3_column_int64(st, 12);
    return 0;
}

static void clear_webhook(void *p) {
    store_webhook_clear(p);
}

static void clear_delivery(void *p) {
    store_delivery_clear(p);
}

/* Decides inside webhook_put's transaction whether wh->id may be written: STORE_CONFLICT when
 * it exists and if_absent, STORE_LIMIT when it does not and max (> 0) webhooks exist, else
 * STORE_OK. The transaction holds the write lock from its BEGIN IMMEDIATE, so no other writer
 * can add a webhook between this count and the insert. */
static int webhook_put_check(struct sqlite_conn *c, const char *id, int if_absent, size_t max) {
    sqlite3_stmt *st = c->eq[EQ_WEBHOOK_CENSUS];
    int rc = run(c, st, ONE_ROW, "webhook_put census", ARGS(text(id)));

    if (rc == STORE_OK) {
        bool exists = sqlite3_column_int(st, 0) != 0;
        sqlite3_int64 n = sqlite3_column_int64(st, 1);

        if (exists && if_absent)
            rc = STORE_CONFLICT;
        else if (!exists && max > 0 && n >= bind_limit(max))
            rc = STORE_LIMIT;
    }
    done(st);
    return rc;
}

static int webhook_put(struct store_conn *sc, struct store_webhook *wh, int if_absent, size_t max,
                       struct store_audit *audit) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN], created[TIME_DPS_LEN];
    int64_t version = 0;
    int rc;

    if (!wh || !wh->id || !wh->url || !wh->events || !wh->secret) {
        log_error("store: webhook_put: invalid arguments");
        return STORE_ERROR;
    }
    time_now_dps(now);
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    if ((rc = webhook_put_check(c, wh->id, if_absent, max)) != STORE_OK)
        goto out;
    rc = run_returning(c, c->eq[EQ_WEBHOOK_UPSERT], ONE_ROW, "webhook_put",
                       ARGS(text(wh->id), text(wh->url), text(wh->events), text(wh->secret),
                            num(wh->enabled ? 1 : 0), text(now)),
                       &version, created);
    if (rc != STORE_OK)
        goto out;
    if (tx_end(c, now, audit, NULL) != STORE_OK)
        return STORE_ERROR;
    wh->version = version;
    memcpy(wh->created, created, TIME_DPS_LEN);
    memcpy(wh->updated, now, TIME_DPS_LEN);
    return STORE_OK;
out:
    tx_rollback(c);
    return rc;
}

static int webhook_get(struct store_conn *sc, const char *id, struct store_webhook *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    if (!id) {
        log_error("store: webhook_get: invalid arguments");
        return STORE_ERROR;
    }
    return read_one(c, c->eq[EQ_WEBHOOK_GET], "webhook_get", ARGS(text(id)), read_webhook, out);
}

static int webhook_delete(struct store_conn *sc, const char *id, struct store_audit *audit) {
    struct sqlite_conn *c = sconn(sc);

    if (!id) {
        log_error("store: webhook_delete: invalid arguments");
        return STORE_ERROR;
    }
    return change_audited(c, c->eq[EQ_WEBHOOK_DELETE], "webhook_delete", ARGS(text(id)), audit);
}

static int webhook_list(struct store_conn *sc, const char *after, size_t limit,
                        struct store_webhook **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);

    return read_rows(c, c->eq[EQ_WEBHOOK_LIST], "webhook_list",
                     ARGS(text(after ? after : ""), num(bind_limit(limit))), sizeof(**out),
                     read_webhook, clear_webhook, (void **)out, n);
}

static int delivery_due(struct store_conn *sc, int64_t now_ms, size_t limit,
                        struct store_delivery **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);

    return read_rows(c, c->eq[EQ_DUE], "delivery_due", ARGS(num(now_ms), num(bind_limit(limit))),
                     sizeof(**out), read_delivery, clear_delivery, (void **)out, n);
}

static int delivery_next_due(struct store_conn *sc, int64_t *next_ms) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->eq[EQ_NEXT_DUE];
    int rc = run(c, st, ONE_ROW, "delivery_next_due", NO_ARGS);

    if (rc == STORE_OK && sqlite3_column_type(st, 0) == SQLITE_NULL)
        rc = STORE_NOT_FOUND;
    else if (rc == STORE_OK)
        *next_ms = sqlite3_column_int64(st, 0);
    done(st);
    return rc;
}

static int delivery_update(struct store_conn *sc, const struct store_delivery *d) {
    struct sqlite_conn *c = sconn(sc);
    int rc = run(c, c->eq[EQ_UPDATE], NO_ROW, "delivery_update",
                 ARGS(num(d->id), text(store_delivery_state_name(d->state)), num(d->attempts),
                      num(d->next_ms), num(d->last_ms), num(d->last_status), text(d->last_error),
                      num(d->done_ms)));

    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_NOT_FOUND;
    return rc;
}

static int delivery_list(struct store_conn *sc, enum store_delivery_state state,
                         const char *webhook_id, int64_t after, size_t limit,
                         struct store_delivery **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);
    const char *state_name = state == STORE_DELIVERY_ANY ? NULL : store_delivery_state_name(state);

    return read_rows(c, c->eq[EQ_LIST], "delivery_list",
                     ARGS(num(after), num(bind_limit(limit)), text(state_name), text(webhook_id)),
                     sizeof(**out), read_delivery, clear_delivery, (void **)out, n);
}

static int delivery_get(struct store_conn *sc, int64_t id, struct store_delivery *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    return read_one(c, c->eq[EQ_GET], "delivery_get", ARGS(num(id)), read_delivery, out);
}

static int delivery_retry(struct store_conn *sc, int64_t id, int64_t now_ms,
                          struct store_audit *audit) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->eq[EQ_STATE];
    int rc;

    rc = change_audited(c, c->eq[EQ_RETRY], "delivery_retry", ARGS(num(id), num(now_ms)), audit);
    if (rc != STORE_NOT_FOUND)
        return rc;
    /* Nothing failed had that id: tell a delivery in another state from none at all. */
    rc = run(c, st, MAYBE_ROW, "delivery_retry state", ARGS(num(id)));
    done(st);
    return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static int delivery_prune(struct store_conn *sc, int64_t before_ms, int64_t *n) {
    struct sqlite_conn *c = sconn(sc);
    const struct args before = ARGS(num(before_ms));

    *n = 0;
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    if (run(c, c->eq[EQ_PRUNE_DELIVERIES], NO_ROW, "delivery_prune", before) != STORE_OK)
        goto fail;
    *n = sqlite3_changes(c->db);
    if (run(c, c->eq[EQ_PRUNE_EVENTS], NO_ROW, "delivery_prune events", before) != STORE_OK)
        goto fail;
    return tx_commit(c) == 0 ? STORE_OK : STORE_ERROR;
fail:
    tx_rollback(c);
    return STORE_ERROR;
}

/* ---- Certificates ---- */

static int read_cert(sqlite3_stmt *st, void *out) {
    struct store_cert *x = out;
    const unsigned char *status;

    memset(x, 0, sizeof(*x));
    if (col_dup(st, 0, &x->serial) != 0 || col_dup(st, 1, &x->registration_id) != 0 ||
        col_dup(st, 2, &x->device_id) != 0 || col_dup(st, 3, &x->subject) != 0 ||
        col_dup(st, 4, &x->issuer) != 0 || col_dup(st, 5, &x->thumbprint) != 0 ||
        col_dup(st, 10, &x->reason) != 0) {
        store_cert_clear(x);
        return -1;
    }
    col_ts(st, 6, x->not_before);
    col_ts(st, 7, x->not_after);
    status = sqlite3_column_text(st, 8);
    x->revoked = status && strcmp((const char *)status, "revoked") == 0;
    x->revoked_at = sqlite3_column_int64(st, 9);
    col_ts(st, 11, x->created);
    return 0;
}

static void clear_cert(void *p) {
    store_cert_clear(p);
}

static int read_text(sqlite3_stmt *st, void *out) {
    return col_dup(st, 0, out);
}

static void clear_text(void *p) {
    free(*(char **)p);
}

/* The variant of the filtered queries for f: by its most selective column that is set. */
static enum cq_filter cert_filter_of(const struct store_cert_filter *f) {
    if (f && f->serial)
        return CF_SERIAL;
    if (f && f->registration_id)
        return CF_REG;
    if (f && f->device_id)
        return CF_DEV;
    return CF_ALL;
}

static int cert_get(struct store_conn *sc, const char *serial, struct store_cert *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    if (!serial) {
        log_error("store: cert_get: invalid arguments");
        return STORE_ERROR;
    }
    return read_one(c, c->cq[CQ_GET], "cert_get", ARGS(text(serial)), read_cert, out);
}

static int cert_current(struct store_conn *sc, const char *registration_id,
                        struct store_cert *out) {
    struct sqlite_conn *c = sconn(sc);

    memset(out, 0, sizeof(*out));
    if (!registration_id) {
        log_error("store: cert_current: invalid arguments");
        return STORE_ERROR;
    }
    return read_one(c, c->cq[CQ_CURRENT], "cert_current", ARGS(text(registration_id)), read_cert,
                    out);
}

static int cert_list(struct store_conn *sc, const struct store_cert_filter *f, const char *after,
                     size_t limit, struct store_cert **out, size_t *n) {
    static const struct store_cert_filter any;
    struct sqlite_conn *c = sconn(sc);

    if (!f)
        f = &any;
    return read_rows(c, c->cfq[cert_filter_of(f)][CO_LIST], "cert_list",
                     ARGS(text(after ? after : ""), num(bind_limit(limit)), text(f->serial),
                          text(f->registration_id), text(f->device_id)),
                     sizeof(**out), read_cert, clear_cert, (void **)out, n);
}

/* Counts the certificates matching f inside the caller's transaction. The count has no ?1 and
 * ?2: they are bound to NULL only so that the filter lands on ?3 to ?5. */
static int cert_count(struct sqlite_conn *c, const struct store_cert_filter *f, int64_t *n) {
    sqlite3_stmt *st = c->cfq[cert_filter_of(f)][CO_COUNT_ALL];
    int rc = run(c, st, ONE_ROW, "cert count",
                 ARGS(text(NULL), text(NULL), text(f->serial), text(f->registration_id),
                      text(f->device_id)));

    if (rc == STORE_OK)
        *n = sqlite3_column_int64(st, 0);
    done(st);
    return rc;
}

static int cert_revoke(struct store_conn *sc, const struct store_cert_filter *f, int64_t revoked_at,
                       const char *reason, struct store_audit *audit, int64_t *n) {
    struct sqlite_conn *c = sconn(sc);
    char now[TIME_DPS_LEN], **regs = NULL;
    size_t nregs = 0;
    int64_t matched = 0, seq = 0;
    int rc = STORE_ERROR, written = 0;

    *n = 0;
    if (!f || (!f->serial && !f->registration_id && !f->device_id)) {
        log_error("store: cert_revoke: invalid arguments");
        return STORE_ERROR;
    }
    time_now_dps(now);
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    if (read_rows(c, c->cfq[cert_filter_of(f)][CO_REVOKE_REGS], "cert_revoke",
                  ARGS(text(NULL), text(NULL), text(f->serial), text(f->registration_id),
                       text(f->device_id)),
                  sizeof(*regs), read_text, clear_text, (void **)&regs, &nregs) != STORE_OK ||
        run(c, c->cfq[cert_filter_of(f)][CO_REVOKE], NO_ROW, "cert_revoke",
            ARGS(num(revoked_at), text(reason), text(f->serial), text(f->registration_id),
                 text(f->device_id))) != STORE_OK)
        goto out;
    *n = sqlite3_changes(c->db);
    if (*n == 0) {
        if (cert_count(c, f, &matched) == STORE_OK)
            rc = matched > 0 ? STORE_CONFLICT : STORE_NOT_FOUND;
        goto out;
    }
    /* A device ID can name the certificates of several registrations: one record for each. */
    for (size_t i = 0; audit && i < nregs; i++) {
        struct store_audit a = *audit;
        a.subject = regs[i];
        if (audit_append(c, &a, audit->ts[0] ? audit->ts : now, &seq) != STORE_OK)
            goto out;
    }
    if (run(c, c->cq[CQ_REVOCATION], NO_ROW, "cert_revoke", NO_ARGS) != STORE_OK)
        goto out;
    written = 1;
out:
    if (!written)
        tx_rollback(c);
    else if ((rc = tx_end(c, now, NULL, NULL)) == STORE_OK && audit)
        audit_fill(audit, seq, now);
    if (rc != STORE_OK)
        *n = 0;
    for (size_t i = 0; i < nregs; i++)
        free(regs[i]);
    free(regs);
    return rc;
}

static int read_revoked(sqlite3_stmt *st, void *out) {
    struct store_revoked *r = out;

    memset(r, 0, sizeof(*r));
    r->revoked_at = sqlite3_column_int64(st, 1);
    if (col_dup(st, 0, &r->serial) != 0 || col_dup(st, 2, &r->reason) != 0) {
        store_revoked_clear(r);
        return -1;
    }
    return 0;
}

static void clear_revoked(void *p) {
    store_revoked_clear(p);
}

static int cert_revocations(struct store_conn *sc, uint64_t *n) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->cq[CQ_REVOCATIONS];
    int rc = run(c, st, ONE_ROW, "cert_revocations", NO_ARGS);

    if (rc == STORE_OK)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    done(st);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR;
}

/* The number is taken first: BEGIN IMMEDIATE holds the write lock from the start, so no
 * revocation commits between it and the list, in this process or another. */
static int crl_take(struct store_conn *sc, uint64_t *number, uint64_t *revocations,
                    struct store_revoked **out, size_t *n) {
    struct sqlite_conn *c = sconn(sc);
    sqlite3_stmt *st = c->cq[CQ_CRL_NEXT];
    int rc;

    *out = NULL;
    *n = 0;
    if (tx_begin(c) != 0)
        return STORE_ERROR;
    rc = run(c, st, ONE_ROW, "crl_take", NO_ARGS);
    if (rc == STORE_OK)
        *number = (uint64_t)sqlite3_column_int64(st, 0);
    done(st);
    if (rc == STORE_OK)
        rc = cert_revocations(sc, revocations);
    if (rc == STORE_OK)
        rc = read_rows(c, c->cq[CQ_REVOKED], "crl_take", NO_ARGS, sizeof(**out), read_revoked,
                       clear_revoked, (void **)out, n);
    if (rc != STORE_OK) {
        tx_rollback(c);
        return STORE_ERROR;
    }
    if (tx_commit(c) != 0) {
        store_revoked_free(*out, *n);
        *out = NULL;
        *n = 0;
        return STORE_ERROR;
    }
    return STORE_OK;
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .open = open_store,
    .close = close_store,
    .conn_open = conn_open,
    .conn_close = conn_close,
    .doc_get = doc_get,
    .doc_put = doc_put,
    .doc_delete = doc_delete,
    .doc_list = doc_list,
    .reg_get = reg_get,
    .reg_delete = reg_delete,
    .reg_reprovision = reg_reprovision,
    .doc_referrers = doc_referrers,
    .reg_list = reg_list,
    .commit = commit,
    .audit_list = audit_list,
    .token_add = token_add,
    .token_find = token_find,
    .counts = counts,
    .webhook_put = webhook_put,
    .webhook_get = webhook_get,
    .webhook_delete = webhook_delete,
    .webhook_list = webhook_list,
    .delivery_due = delivery_due,
    .delivery_next_due = delivery_next_due,
    .delivery_update = delivery_update,
    .delivery_list = delivery_list,
    .delivery_get = delivery_get,
    .delivery_retry = delivery_retry,
    .delivery_prune = delivery_prune,
    .cert_get = cert_get,
    .cert_current = cert_current,
    .cert_list = cert_list,
    .cert_revoke = cert_revoke,
    .cert_revocations = cert_revocations,
    .crl_take = crl_take,
};
