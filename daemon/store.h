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
    STORE_IN_USE = 3,   /* a delete refused: other documents still name this one */
    STORE_DANGLING = 4, /* a write refused: it names a document that does not exist */
    STORE_LIMIT = 5,    /* a create refused: as many as may be stored are stored already */
    STORE_ERROR = -1,
};

/* The kinds of documents: enrollments and groups (DPS shapes), and the endpoints devices are
 * assigned to (DPS's linked hubs), which enrollments and groups name by host name. */
enum store_kind { STORE_ENROLLMENT, STORE_GROUP, STORE_ENDPOINT };
#define STORE_KINDS 3

/* Conditions of a write (the if_match argument): any version, or a given version (> 0). */
#define STORE_IF_ANY    ((int64_t)-1)        /* unconditional */
#define STORE_IF_ABSENT ((int64_t)0)         /* only when nothing is stored (create) */
#define STORE_IF_EXISTS ((int64_t)INT64_MAX) /* only when something is stored (If-Match: *) */

/* An individual enrollment, an enrollment group or an endpoint: its ID and its JSON document. */
struct store_doc {
    char *id;        /* registration ID (lower-cased), enrollment group ID or endpoint host name */
    char *doc;       /* the JSON document, secrets included */
    int64_t version; /* starts at 1, bumped on every write; the etag is derived from it */
    char created[TIME_DPS_LEN];
    char updated[TIME_DPS_LEN];
};

/* The state of one device's registration. */
struct store_registration {
    char *registration_id; /* lower-cased */
    char *device_id;
    char *group_id;      /* NULL when the device is an individual enrollment */
    char *assigned_hub;  /* NULL unless assigned */
    char *status;        /* "assigned", "failed", "disabled" */
    char *substatus;     /* "initialAssignment", ... or NULL */
    char *operation_id;  /* the last register operation */
    int error_code;      /* 0, or the 6-digit code of a failed registration */
    char *error_message; /* NULL, or why it failed */
    char *payload;       /* JSON text returned to the device, or NULL */
    /* Read: 1 while an operator's forced reprovisioning waits for the device's next registration.
     * Written: 1 clears that flag (this registration honoured it); 0 leaves it as stored, so that
     * a request made while the device was registering is not lost. */
    int reprovision;
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

/* An event for the operator's webhooks (docs/events.md): a decision about a device or an
 * administrative change. The store queues it in the transaction of what it describes, once for
 * every enabled webhook that subscribes to its type, so that a crash neither loses nor invents
 * one; when no webhook subscribes, nothing is written. */
struct store_event {
    int64_t seq;           /* set by the store: the event's number, or 0 when nobody subscribed */
    char *id;              /* a UUID, also in the body */
    char *type;            /* "device.registered", ... */
    char *subject;         /* the registration ID or enrollment ID it is about */
    char ts[TIME_DPS_LEN]; /* when it happened, also in the body */
    char *body;            /* the JSON text delivered; never holds keys or tokens */
};

/* A device certificate provd issued. Serials are upper-case hex as `openssl x509 -serial`
 * prints them; they are random 128-bit numbers, so the serial alone names a certificate. */
struct store_cert {
    char *serial;
    char *registration_id; /* lower-cased */
    char *device_id;
    char *subject; /* RFC 2253 */
    char *issuer;
    char *thumbprint; /* upper-case hex SHA-256 of the DER certificate */
    char not_before[TIME_DPS_LEN];
    char not_after[TIME_DPS_LEN];
    int revoked;                /* status: 0 valid, 1 revoked */
    int64_t revoked_at;         /* Unix time of the revocation, 0 while valid */
    char *reason;               /* RFC 5280 reason name ("keyCompromise"), or NULL (unspecified) */
    char created[TIME_DPS_LEN]; /* set by the store on insert */
};

/* A revoked certificate as a CRL lists it. */
struct store_revoked {
    char *serial;
    int64_t revoked_at; /* Unix time */
    char *reason;       /* as in struct store_cert */
};

/* Which certificates a listing or a revocation is about: every field that is not NULL must
 * match (none set: every certificate). */
struct store_cert_filter {
    const char *serial;
    const char *registration_id;
    const char *device_id;
};

/* One unit of a group commit: all writes of a batch land in one transaction. */
struct store_write {
    struct store_registration *reg; /* upserted when not NULL; version and created set on return */
    struct store_audit *audit;      /* appended when not NULL; seq set on return */
    struct store_event *event;      /* queued when not NULL; seq set on return */
    struct store_cert *cert;        /* inserted when not NULL (a certificate issued with reg) */
    /* When set, reg replaces only the registration of version reg_if_version (0: only when none
     * is stored). When another is stored, nothing of this unit is written (the other units of the
     * batch are) and conflict is set on return. */
    int reg_conditional;
    int64_t reg_if_version;
    /* When not NULL, the serial of the certificate provd issued that attested the device: the
     * unit is written only while that certificate is stored and valid. When it has been revoked
     * since, nothing of this unit is written and conflict is set on return, as above, with
     * revoked. */
    const char *attested_by;
    int conflict;
    int revoked;
};

/* An operator's webhook: where events of the types it subscribes to are delivered. */
struct store_webhook {
    char *id;     /* follows the registration ID rules, lower-cased */
    char *url;    /* https://... */
    char *events; /* event types separated by commas, or "*" for every type */
    char *secret; /* the signing secret; wiped when cleared */
    int enabled;
    int64_t version; /* starts at 1, bumped on every write */
    char created[TIME_DPS_LEN];
    char updated[TIME_DPS_LEN];
};

enum store_delivery_state {
    STORE_DELIVERY_ANY = -1, /* as a filter only */
    STORE_DELIVERY_PENDING = 0,
    STORE_DELIVERY_DELIVERED,
    STORE_DELIVERY_FAILED,
};

/* The delivery of one event to one webhook. Times are Unix milliseconds, 0 when not yet. */
struct store_delivery {
    int64_t id; /* increasing; also the X-Provd-Delivery header */
    char *event_id;
    char *type;
    char *subject;
    char *webhook_id;
    enum store_delivery_state state;
    int attempts;       /* attempts made so far */
    int64_t created_ms; /* when the event was stored */
    int64_t next_ms;    /* when the next attempt is due (pending only) */
    int64_t last_ms;    /* when the last attempt was made */
    int last_status;    /* HTTP status answered to the last attempt, 0 when none came */
    char *last_error;   /* why the last attempt failed, or NULL */
    int64_t done_ms;    /* when it was delivered or given up */
    char *body;         /* the event's JSON text (delivery_due and delivery_get only) */
    char *url;          /* the webhook's URL (delivery_due only) */
    char *secret;       /* the webhook's secret (delivery_due only); wiped when cleared */
};

/* A document that names another one (see doc_referrers). */
struct store_ref {
    enum store_kind kind;
    char *id;
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
     * on something absent is STORE_NOT_FOUND. An enrollment or group naming an endpoint or group
     * that does not exist is STORE_DANGLING (nothing written).
     * On STORE_OK fills version, created and updated of doc (created kept on replace);
     * audit and event, when not NULL, are appended in the same transaction (only when the write
     * happens). */
    int (*doc_put)(struct store_conn *c, enum store_kind k, struct store_doc *doc, int64_t if_match,
                   struct store_audit *audit, struct store_event *event);
    /* Deletes when if_match holds (STORE_IF_ABSENT is treated as STORE_IF_ANY); STORE_NOT_FOUND
     * when nothing is stored; audit and event as for doc_put. */
    int (*doc_delete)(struct store_conn *c, enum store_kind k, const char *id, int64_t if_match,
                      struct store_audit *audit, struct store_event *event);
    /* Lists up to limit documents with ID > after (NULL: from the start) in ID order. On
     * STORE_OK *out is an array of *n documents freed with store_docs_free. */
    int (*doc_list)(struct store_conn *c, enum store_kind k, const char *after, size_t limit,
                    struct store_doc **out, size_t *n);

    int (*reg_get)(struct store_conn *c, const char *regid, struct store_registration *out);
    int (*reg_delete)(struct store_conn *c, const char *regid, struct store_audit *audit);
    /* Flags the registration so that the device's next registration re-allocates it whatever the
     * reprovisioning policy says; STORE_NOT_FOUND when there is none; audit as for doc_put. */
    int (*reg_reprovision)(struct store_conn *c, const char *regid, struct store_audit *audit);
    /* Lists up to limit documents that name document id of kind k (enrollments and groups that
     * name an endpoint; enrollments that take their templates from a group). doc_delete refuses
     * with STORE_IN_USE while there is one. Free with store_refs_free. */
    int (*doc_referrers)(struct store_conn *c, enum store_kind k, const char *id, size_t limit,
                         struct store_ref **out, size_t *n);
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

    /* Creates or replaces wh->id (only creates when if_absent: STORE_CONFLICT when it exists)
     * and fills version, created and updated; audit as for doc_put. Creating one when max
     * webhooks are stored already (max > 0; 0: no limit) is STORE_LIMIT, nothing written;
     * replacing one never is. Both are decided in the transaction of the write, so writers
     * racing each other cannot together store more than max. */
    int (*webhook_put)(struct store_conn *c, struct store_webhook *wh, int if_absent, size_t max,
                       struct store_audit *audit);
    int (*webhook_get)(struct store_conn *c, const char *id, struct store_webhook *out);
    /* Deletes the webhook and, with it, its deliveries; STORE_NOT_FOUND when there is none. */
    int (*webhook_delete)(struct store_conn *c, const char *id, struct store_audit *audit);
    /* Lists webhooks with ID > after in ID order; free with store_webhooks_free. */
    int (*webhook_list)(struct store_conn *c, const char *after, size_t limit,
                        struct store_webhook **out, size_t *n);

    /* Lists up to limit pending deliveries due at now_ms to enabled webhooks, the earliest due
     * first, with body, url and secret; free with store_deliveries_free. */
    int (*delivery_due)(struct store_conn *c, int64_t now_ms, size_t limit,
                        struct store_delivery **out, size_t *n);
    /* Sets *next_ms to when the next pending delivery to an enabled webhook is due, or returns
     * STORE_NOT_FOUND when none is pending. */
    int (*delivery_next_due)(struct store_conn *c, int64_t *next_ms);
    /* Writes the state, attempts, next_ms, last_ms, last_status, last_error and done_ms of the
     * pending delivery d->id; STORE_NOT_FOUND when it is gone or no longer pending. */
    int (*delivery_update)(struct store_conn *c, const struct store_delivery *d);
    /* Lists deliveries with id > after in id order, only those in state (unless
     * STORE_DELIVERY_ANY) and of webhook_id (unless NULL); without body, url or secret. */
    int (*delivery_list)(struct store_conn *c, enum store_delivery_state state,
                         const char *webhook_id, int64_t after, size_t limit,
                         struct store_delivery **out, size_t *n);
    /* Reads one delivery with its body (no url or secret). */
    int (*delivery_get)(struct store_conn *c, int64_t id, struct store_delivery *out);
    /* Makes a failed delivery pending again with no attempts, due at now_ms; STORE_CONFLICT when
     * it is not failed, STORE_NOT_FOUND when there is none; audit as for doc_put. */
    int (*delivery_retry)(struct store_conn *c, int64_t id, int64_t now_ms,
                          struct store_audit *audit);
    /* Deletes the deliveries delivered before before_ms and the events stored before then that
     * have no delivery left; *n counts the deliveries deleted. */
    int (*delivery_prune)(struct store_conn *c, int64_t before_ms, int64_t *n);

    /* Reads the certificate of serial (upper-case hex); STORE_NOT_FOUND when there is none. */
    int (*cert_get)(struct store_conn *c, const char *serial, struct store_cert *out);
    /* Reads the certificate issued last to registration_id (lower-cased), valid or revoked:
     * the device's current one. STORE_NOT_FOUND when it has none. */
    int (*cert_current)(struct store_conn *c, const char *registration_id, struct store_cert *out);
    /* Lists up to limit certificates matching f with serial > after (NULL: from the start) in
     * serial order; free with store_certs_free. */
    int (*cert_list)(struct store_conn *c, const struct store_cert_filter *f, const char *after,
                     size_t limit, struct store_cert **out, size_t *n);
    /* Revokes every valid certificate matching f (at least one field set) at revoked_at with
     * reason (NULL: unspecified) and appends audit once for each registration ID they were
     * issued to, with that ID as its subject (audit->subject is not used), in one transaction;
     * *n counts them. When none was revoked nothing is written: STORE_NOT_FOUND when nothing
     * matches f, STORE_CONFLICT when everything that matches is revoked already. */
    int (*cert_revoke)(struct store_conn *c, const struct store_cert_filter *f, int64_t revoked_at,
                       const char *reason, struct store_audit *audit, int64_t *n);
    /* How many cert_revoke calls revoked something, ever: what tells any process serving the
     * store that a CRL signed before is stale. */
    int (*cert_revocations)(struct store_conn *c, uint64_t *n);
    /* What a new CRL is made of, read in one transaction: the next CRL number (1, 2, ... kept
     * across restarts and shared by every process using the store), the count of revocations
     * (cert_revocations) and every revoked certificate in serial order (free with
     * store_revoked_free). A CRL of a higher number so lists every certificate one of a lower
     * number lists, whichever process signed each. */
    int (*crl_take)(struct store_conn *c, uint64_t *number, uint64_t *revocations,
                    struct store_revoked **out, size_t *n);
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
    return c->ops->doc_put(c, k, doc, if_match, audit, NULL);
}
/* store_doc_put that also queues event (see struct store_event). */
static inline int store_doc_put_event(struct store_conn *c, enum store_kind k,
                                      struct store_doc *doc, int64_t if_match,
                                      struct store_audit *audit, struct store_event *event) {
    return c->ops->doc_put(c, k, doc, if_match, audit, event);
}
static inline int store_doc_delete(struct store_conn *c, enum store_kind k, const char *id,
                                   int64_t if_match, struct store_audit *audit) {
    return c->ops->doc_delete(c, k, id, if_match, audit, NULL);
}
/* store_doc_delete that also queues event (see struct store_event). */
static inline int store_doc_delete_event(struct store_conn *c, enum store_kind k, const char *id,
                                         int64_t if_match, struct store_audit *audit,
                                         struct store_event *event) {
    return c->ops->doc_delete(c, k, id, if_match, audit, event);
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
static inline int store_reg_reprovision(struct store_conn *c, const char *regid,
                                        struct store_audit *audit) {
    return c->ops->reg_reprovision(c, regid, audit);
}
static inline int store_doc_referrers(struct store_conn *c, enum store_kind k, const char *id,
                                      size_t limit, struct store_ref **out, size_t *n) {
    return c->ops->doc_referrers(c, k, id, limit, out, n);
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
static inline int store_webhook_put(struct store_conn *c, struct store_webhook *wh, int if_absent,
                                    size_t max, struct store_audit *audit) {
    return c->ops->webhook_put(c, wh, if_absent, max, audit);
}
static inline int store_webhook_get(struct store_conn *c, const char *id,
                                    struct store_webhook *out) {
    return c->ops->webhook_get(c, id, out);
}
static inline int store_webhook_delete(struct store_conn *c, const char *id,
                                       struct store_audit *audit) {
    return c->ops->webhook_delete(c, id, audit);
}
static inline int store_webhook_list(struct store_conn *c, const char *after, size_t limit,
                                     struct store_webhook **out, size_t *n) {
    return c->ops->webhook_list(c, after, limit, out, n);
}
static inline int store_delivery_due(struct store_conn *c, int64_t now_ms, size_t limit,
                                     struct store_delivery **out, size_t *n) {
    return c->ops->delivery_due(c, now_ms, limit, out, n);
}
static inline int store_delivery_next_due(struct store_conn *c, int64_t *next_ms) {
    return c->ops->delivery_next_due(c, next_ms);
}
static inline int store_delivery_update(struct store_conn *c, const struct store_delivery *d) {
    return c->ops->delivery_update(c, d);
}
static inline int store_delivery_list(struct store_conn *c, enum store_delivery_state state,
                                      const char *webhook_id, int64_t after, size_t limit,
                                      struct store_delivery **out, size_t *n) {
    return c->ops->delivery_list(c, state, webhook_id, after, limit, out, n);
}
static inline int store_delivery_get(struct store_conn *c, int64_t id, struct store_delivery *out) {
    return c->ops->delivery_get(c, id, out);
}
static inline int store_delivery_retry(struct store_conn *c, int64_t id, int64_t now_ms,
                                       struct store_audit *audit) {
    return c->ops->delivery_retry(c, id, now_ms, audit);
}
static inline int store_delivery_prune(struct store_conn *c, int64_t before_ms, int64_t *n) {
    return c->ops->delivery_prune(c, before_ms, n);
}

static inline int store_cert_get(struct store_conn *c, const char *serial, struct store_cert *out) {
    return c->ops->cert_get(c, serial, out);
}
static inline int store_cert_current(struct store_conn *c, const char *registration_id,
                                     struct store_cert *out) {
    return c->ops->cert_current(c, registration_id, out);
}
static inline int store_cert_list(struct store_conn *c, const struct store_cert_filter *f,
                                  const char *after, size_t limit, struct store_cert **out,
                                  size_t *n) {
    return c->ops->cert_list(c, f, after, limit, out, n);
}
static inline int store_cert_revoke(struct store_conn *c, const struct store_cert_filter *f,
                                    int64_t revoked_at, const char *reason,
                                    struct store_audit *audit, int64_t *n) {
    return c->ops->cert_revoke(c, f, revoked_at, reason, audit, n);
}
static inline int store_cert_revocations(struct store_conn *c, uint64_t *n) {
    return c->ops->cert_revocations(c, n);
}
static inline int store_crl_take(struct store_conn *c, uint64_t *number, uint64_t *revocations,
                                 struct store_revoked **out, size_t *n) {
    return c->ops->crl_take(c, number, revocations, out, n);
}

/* Release what the store allocated. All accept NULL. The doc text may hold keys: it is wiped. */
void store_doc_clear(struct store_doc *d);
void store_docs_free(struct store_doc *d, size_t n);
void store_registration_clear(struct store_registration *r);
void store_registrations_free(struct store_registration *r, size_t n);
void store_refs_free(struct store_ref *r, size_t n);
void store_audit_clear(struct store_audit *a);
void store_audits_free(struct store_audit *a, size_t n);
void store_event_clear(struct store_event *e);
void store_webhook_clear(struct store_webhook *w);
void store_webhooks_free(struct store_webhook *w, size_t n);
void store_delivery_clear(struct store_delivery *d);
void store_deliveries_free(struct store_delivery *d, size_t n);
void store_cert_clear(struct store_cert *c);
void store_certs_free(struct store_cert *c, size_t n);
void store_revoked_clear(struct store_revoked *r);
void store_revoked_free(struct store_revoked *r, size_t n);

/* The name of a delivery state ("pending", "delivered", "failed"), and back: returns 0 with
 * *out, or -1 for an unknown name. */
const char *store_delivery_state_name(enum store_delivery_state s);
int store_delivery_state_parse(const char *name, enum store_delivery_state *out);

extern const struct store_ops store_sqlite_ops;

#endif
