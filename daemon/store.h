/* The store: the one interface through which provd reads and writes its state.
 *
 * A backend (SQLite now, PostgreSQL later) supplies a table of functions. A `struct store` is one
 * opened database; a `struct store_conn` is a connection to it that belongs to one thread at a
 * time (each worker and the committer open their own). Nothing above this interface sees SQL.
 *
 * Every function returns one of enum store_rc. Backends log their own errors (never secrets). */
#ifndef PROVD_STORE_H
#define PROVD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "timefmt.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,
    STORE_CONFLICT = 2, /* If-Match version did not match the stored one */
    STORE_ERROR = -1,
};

enum store_kind { STORE_ENROLLMENT, STORE_GROUP };

/* Conditions of a write (the if_match argument): any version, or a given version (> 0). */
#define STORE_IF_ANY    ((int64_t)-1)        /* unconditional */
#define STORE_IF_ABSENT ((int64_t)0)         /* only when nothing is stored (create) */
#define STORE_IF_EXISTS ((int64_t)INT64_MAX) /* only when something is stored (If-Match: *) */

/* An individual enrollment or an enrollment group: its ID and its full JSON document. */
struct store_doc {
    char *id;        /* registration ID (lower-cased) or enrollment group ID */
    char *doc;       /* the JSON document, secrets included */
    int64_t version; /* starts at 1, bumped on every write; the etag is derived from it */
    char created[TIME_DPS_LEN];
    char updated[TIME_DPS_LEN];
};

/* The state of one device's registration. */
struct store_registration {
    char *registration_id; /* lower-cased */
    char *device_id;
    char *group_id;             /* NULL when the device is an individual enrollment */
    char *assigned_hub;         /* NULL unless assigned */
    char *status;               /* "assigned", "failed", "disabled" */
    char *substatus;            /* "initialAssignment", ... or NULL */
    char *operation_id;         /* the last register operation */
    int error_code;             /* 0, or the 6-digit code of a failed registration */
    char *error_message;        /* NULL, or why it failed */
    char *payload;              /* JSON text returned to the device, or NULL */
    int64_t version;            /* bumped on every write */
    char created[TIME_DPS_LEN]; /* kept from the first registration on update */
    char updated[TIME_DPS_LEN];
};

/* One append-only audit record: a decision about a device, or an administrative change. */
struct store_audit {
    int64_t seq; /* assigned by the store on append, increasing */
    char ts[TIME_DPS_LEN];
    char *event;   /* "device.register", "device.status", "enrollment.put", ... */
    char *subject; /* registration ID or group ID the decision was about */
    char *outcome; /* "accepted", "refused" or "error" */
    int http_status;
    int error_code; /* 0 or the 6-digit error code sent */
    char *reason;   /* human-readable, never a key or a token */
    char *remote;   /* peer address, or NULL */
    char *tracking; /* the tracking ID of the request (also in its answer), or NULL */
};

/* One unit of a group commit: all writes of a batch land in one transaction. */
struct store_write {
    struct store_registration *reg; /* upserted when not NULL; version and created set on return */
    struct store_audit *audit;      /* appended when not NULL; seq set on return */
};

struct store_counts {
    int64_t enrollments, groups, registrations, audit;
};

struct store;
struct store_conn;

struct store_ops {
    const char *scheme; /* "sqlite" */
    /* Opens (creating when needed) the database named by target and brings its schema to the
     * current version; a schema newer than this program knows is refused. On failure writes the
     * reason into err. */
    int (*open)(const char *target, struct store **out, char *err, size_t errlen);
    void (*close)(struct store *st);
    int (*conn_open)(struct store *st, struct store_conn **out);
    void (*conn_close)(struct store_conn *c);

    int (*doc_get)(struct store_conn *c, enum store_kind k, const char *id, struct store_doc *out);
    /* Creates or replaces doc->id when the condition if_match holds (see STORE_IF_*; a version
     * must equal the stored one). A failed condition is STORE_CONFLICT, except that a condition
     * on something absent is STORE_NOT_FOUND.
     * On STORE_OK fills version, created and updated of doc (created kept on replace);
     * audit, when not NULL, is appended in the same transaction (only when the write happens). */
    int (*doc_put)(struct store_conn *c, enum store_kind k, struct store_doc *doc, int64_t if_match,
                   struct store_audit *audit);
    /* Deletes when if_match holds (STORE_IF_ABSENT is treated as STORE_IF_ANY); STORE_NOT_FOUND
     * when nothing is stored; audit as for doc_put. */
    int (*doc_delete)(struct store_conn *c, enum store_kind k, const char *id, int64_t if_match,
                      struct store_audit *audit);
    /* Lists up to limit documents with ID > after (NULL: from the start) in ID order. On
     * STORE_OK *out is an array of *n documents freed with store_docs_free. */
    int (*doc_list)(struct store_conn *c, enum store_kind k, const char *after, size_t limit,
                    struct store_doc **out, size_t *n);

    int (*reg_get)(struct store_conn *c, const char *regid, struct store_registration *out);
    int (*reg_delete)(struct store_conn *c, const char *regid, struct store_audit *audit);
    /* Lists registrations with ID > after, optionally only those of group_id, in ID order. */
    int (*reg_list)(struct store_conn *c, const char *group_id, const char *after, size_t limit,
                    struct store_registration **out, size_t *n);

    /* Writes the n units of w in one durable transaction: every one or none. */
    int (*commit)(struct store_conn *c, struct store_write *w, size_t n);

    /* Lists audit records with seq > after, optionally only those about subject, in seq order. */
    int (*audit_list)(struct store_conn *c, const char *subject, int64_t after, size_t limit,
                      struct store_audit **out, size_t *n);

    /* Admin bearer tokens are kept as the hex SHA-256 of the token only. */
    int (*token_add)(struct store_conn *c, const char *hash_hex, const char *name);
    int (*token_find)(struct store_conn *c, const char *hash_hex);

    int (*counts)(struct store_conn *c, struct store_counts *out);
};

/* Every store and connection starts with its ops, so the wrappers below can dispatch. */
struct store {
    const struct store_ops *ops;
};
struct store_conn {
    const struct store_ops *ops;
};

/* Opens the store named by uri: "sqlite:PATH" (or a bare PATH, taken as SQLite). */
int store_open(const char *uri, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);
int store_conn_open(struct store *st, struct store_conn **out);
void store_conn_close(struct store_conn *c);

static inline int store_doc_get(struct store_conn *c, enum store_kind k, const char *id,
                                struct store_doc *out) {
    return c->ops->doc_get(c, k, id, out);
}
static inline int store_doc_put(struct store_conn *c, enum store_kind k, struct store_doc *doc,
                                int64_t if_match, struct store_audit *audit) {
    return c->ops->doc_put(c, k, doc, if_match, audit);
}
static inline int store_doc_delete(struct store_conn *c, enum store_kind k, const char *id,
                                   int64_t if_match, struct store_audit *audit) {
    return c->ops->doc_delete(c, k, id, if_match, audit);
}
static inline int store_doc_list(struct store_conn *c, enum store_kind k, const char *after,
                                 size_t limit, struct store_doc **out, size_t *n) {
    return c->ops->doc_list(c, k, after, limit, out, n);
}
static inline int store_reg_get(struct store_conn *c, const char *regid,
                                struct store_registration *out) {
    return c->ops->reg_get(c, regid, out);
}
static inline int store_reg_delete(struct store_conn *c, const char *regid,
                                   struct store_audit *audit) {
    return c->ops->reg_delete(c, regid, audit);
}
static inline int store_reg_list(struct store_conn *c, const char *group_id, const char *after,
                                 size_t limit, struct store_registration **out, size_t *n) {
    return c->ops->reg_list(c, group_id, after, limit, out, n);
}
static inline int store_commit(struct store_conn *c, struct store_write *w, size_t n) {
    return c->ops->commit(c, w, n);
}
static inline int store_audit_list(struct store_conn *c, const char *subject, int64_t after,
                                   size_t limit, struct store_audit **out, size_t *n) {
    return c->ops->audit_list(c, subject, after, limit, out, n);
}
static inline int store_token_add(struct store_conn *c, const char *hash_hex, const char *name) {
    return c->ops->token_add(c, hash_hex, name);
}
static inline int store_token_find(struct store_conn *c, const char *hash_hex) {
    return c->ops->token_find(c, hash_hex);
}
static inline int store_counts(struct store_conn *c, struct store_counts *out) {
    return c->ops->counts(c, out);
}

/* Release what the store allocated. All accept NULL. The doc text may hold keys: it is wiped. */
void store_doc_clear(struct store_doc *d);
void store_docs_free(struct store_doc *d, size_t n);
void store_registration_clear(struct store_registration *r);
void store_registrations_free(struct store_registration *r, size_t n);
void store_audit_clear(struct store_audit *a);
void store_audits_free(struct store_audit *a, size_t n);

extern const struct store_ops store_sqlite_ops;

#endif
