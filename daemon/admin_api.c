/* The admin API (docs/admin-api.md): enrollments, enrollment groups, registration states and the
 * audit log, in the shapes of the DPS service API.
 *
 * A request runs start to finish on the worker that received it, against that worker's own store
 * connection; admin calls are rare next to device traffic, so they use the store synchronously
 * rather than through the committer. Each route is one function; admin_api_handle authenticates,
 * finds the route, checks the path's ID and reads the body before calling it. */
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "ca.h"
#include "certinfo.h"
#include "certserial.h"
#include "deliverer.h"
#include "endpoint.h"
#include "enrollment.h"
#include "event.h"
#include "hostname.h"
#include "http.h"
#include "log.h"
#include "provd.h"
#include "rand.h"
#include "regid.h"
#include "registration.h"
#include "store.h"
#include "template.h"
#include "timefmt.h"
#include "utf8.h"
#include "webhook.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000
#define BULK_MAX     1000
#define MSG_MAX      256

enum body_use { BODY_NONE, BODY_REQUIRED, BODY_OPTIONAL };

struct call;

struct route {
    const char *pat[4]; /* literal segments, "*" for an ID, "#" for a certificate serial number;
                           NULL ends the pattern */
    enum evhttp_cmd_type method;
    enum body_use body;
    enum store_kind kind; /* for the routes shared by enrollments and groups */
    void (*fn)(struct call *c);
};

/* One admin request being served. */
struct call {
    struct evhttp_request *req;
    struct worker *w;
    const struct route *route;
    struct http_path path;
    char id[HOSTNAME_MAX + 1]; /* the path's ID, checked and lower-cased, or "" */
    json_t *body;              /* the parsed body, or NULL */
    char remote[64];
};

static void fail(struct call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers an error of docs/errors.md; the status is the code's first three digits. The tracking
 * ID goes into the log line too, so an operator can match the answer to it. */
static void fail(struct call *c, int code, const char *fmt, ...) {
    char msg[MSG_MAX], quoted[2 * MSG_MAX], tracking[UUID_STR_LEN];
    int status = code / 1000;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (uuid_v4(tracking) != 0)
        tracking[0] = '\0';
    log_quoted(msg, quoted, sizeof(quoted));
    if (status >= 500)
        log_error("admin request failed code=%d tracking=%s remote=%s reason=\"%s\"", code,
                  tracking, c->remote, quoted);
    else if (status == 401)
        log_info("admin request refused code=%d tracking=%s remote=%s reason=\"%s\"", code,
                 tracking, c->remote, quoted);
    else
        log_debug("admin request refused code=%d tracking=%s remote=%s reason=\"%s\"", code,
                  tracking, c->remote, quoted);
    http_reply_error(c->req, status, code, tracking[0] != '\0' ? tracking : NULL, msg);
}

static void fail_internal(struct call *c) {
    fail(c, 500001, "internal error");
}

/* Answers 200 with v, taking its reference; a v that could not be built (NULL) is answered as an
 * internal error instead. */
static void reply_ok(struct call *c, json_t *v) {
    if (v == NULL)
        fail_internal(c);
    else
        http_reply_json(c->req, 200, v);
}

/* Answers a store call about c->id that did not succeed: STORE_NOT_FOUND as code with "no <what>
 * <id>", any other failure as an internal error. Returns 0 when rc is STORE_OK, else -1 after
 * answering. */
static int answer_store_error(struct call *c, int rc, int code, const char *what) {
    if (rc == STORE_NOT_FOUND)
        fail(c, code, "no %s %s", what, c->id);
    else if (rc != STORE_OK)
        fail_internal(c);
    return rc == STORE_OK ? 0 : -1;
}

/* Wipes the keys of a document or of each document of an array. */
static void wipe_docs(json_t *v) {
    json_t *item;
    size_t i;

    if (!json_is_array(v)) {
        enrollment_wipe(v);
        return;
    }
    json_array_foreach(v, i, item) {
        enrollment_wipe(item);
    }
}

/* Answers a document, or an array of documents, that may hold keys, wiping them once the answer
 * is serialised. Takes the reference to v. */
static void reply_secret(struct call *c, int status, json_t *v) {
    json_incref(v);
    http_reply_json(c->req, status, v);
    wipe_docs(v);
    json_decref(v);
}

static void free_secret(char *s) {
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* What differs between the kinds of documents, indexed by enum store_kind. */
static const struct {
    const char *name;
    const char *put_event, *delete_event; /* of their audit records */
    int not_found;
} KINDS[STORE_KINDS] = {
    [STORE_ENROLLMENT] = {"enrollment", "enrollment.put", "enrollment.delete", 404002},
    [STORE_GROUP] = {"enrollment group", "group.put", "group.delete", 404003},
    [STORE_ENDPOINT] = {"endpoint", "endpoint.put", "endpoint.delete", 404006},
};

static int not_found_code(enum store_kind kind) {
    return KINDS[kind].not_found;
}

static const char *kind_name(enum store_kind kind) {
    return KINDS[kind].name;
}

/* Tells the workers' registration pipelines that documents of kind changed. */
static void bump_gen(struct call *c, enum store_kind kind) {
    if (kind == STORE_GROUP)
        atomic_fetch_add(&c->w->pd->groups_gen, 1);
    else if (kind == STORE_ENDPOINT)
        atomic_fetch_add(&c->w->pd->endpoints_gen, 1);
}

/* The admin API's view of a stored document, keys included. */
static json_t *view_of(enum store_kind kind, const struct store_doc *d) {
    return kind == STORE_ENDPOINT ? doc_view(d) : enrollment_view(d, 1);
}

/* Checks the IDs of the kind of document a route names: host names for endpoints, the
 * registration ID rules for everything else. */
static int id_check(enum store_kind kind, const char *id, const char **why) {
    return kind == STORE_ENDPOINT ? hostname_check(id, why) : regid_check(id, why);
}

/* Checks what a canonical enrollment or group refers to: its endpoints and the group whose
 * templates it takes must exist, and its configuration template may name only known
 * variables. Returns 0, or an error code with a message in msg. */
static int check_references(struct call *c, const json_t *canon, char *msg, size_t msglen) {
    json_t *hubs = json_object_get(canon, "iotHubs"), *host, *conf;
    const char *group = json_string_value(json_object_get(canon, "enrollmentGroupId"));
    struct store_doc d = {0};
    size_t i, n = json_array_size(hubs);
    int rc;

    for (i = 0; i <= n; i++) {
        host = i < n ? json_array_get(hubs, i) : json_object_get(canon, "iotHubHostName");
        if (host == NULL)
            continue;
        rc = store_doc_get(c->w->conn, STORE_ENDPOINT, json_string_value(host), &d);
        store_doc_clear(&d);
        if (rc == STORE_NOT_FOUND) {
            snprintf(msg, msglen,
                     "%s names endpoint \"%s\", which does not exist (PUT /endpoints/%s first)",
                     i < n ? "iotHubs" : "iotHubHostName", json_string_value(host),
                     json_string_value(host));
            return 400006;
        }
        if (rc != STORE_OK)
            goto internal;
    }
    /* A group's own ID is in enrollmentGroupId too: only individual enrollments refer. */
    if (group != NULL && json_object_get(canon, "registrationId") != NULL) {
        rc = store_doc_get(c->w->conn, STORE_GROUP, group, &d);
        store_doc_clear(&d);
        if (rc == STORE_NOT_FOUND) {
            snprintf(msg, msglen, "enrollmentGroupId names group \"%s\", which does not exist",
                     group);
            return 400006;
        }
        if (rc != STORE_OK)
            goto internal;
    }
    if ((conf = json_object_get(canon, "configuration")) != NULL &&
        template_check(conf, "configuration", msg, msglen) != 0)
        return 400006;
    return 0;
internal:
    snprintf(msg, msglen, "internal error");
    return 500001;
}

/* Validates in as the document id of kind (replacing prev, the stored one, or NULL) and checks
 * what it refers to. Returns 0 with *canon, or an error code with a message in msg (*canon may
 * then be set too, for the caller to release). */
static int normalize_doc(struct call *c, enum store_kind kind, const char *id, json_t *in,
                         const struct store_doc *prev, json_t **canon, char *msg, size_t msglen) {
    int code = 0;

    if (kind == STORE_ENDPOINT)
        endpoint_normalize(id, in, canon, &code, msg, msglen);
    else if (enrollment_normalize_replace(kind, id, in, prev, canon, &code, msg, msglen) == 0)
        code = check_references(c, *canon, msg, msglen);
    return code;
}

/* Writes into msg why document id of kind cannot be deleted: the documents that still name it. */
static int in_use(struct call *c, enum store_kind kind, const char *id, char *msg, size_t msglen) {
    struct store_ref *refs = NULL;
    size_t n = 0, at;

    at = (size_t)snprintf(msg, msglen, "%s %s is still named by", kind_name(kind), id);
    if (store_doc_referrers(c->w->conn, kind, id, 8, &refs, &n) == STORE_OK) {
        for (size_t i = 0; i < n && at < msglen; i++)
            at += (size_t)snprintf(msg + at, msglen - at, "%s %s %s", i > 0 ? "," : "",
                                   kind_name(refs[i].kind), refs[i].id);
    }
    if (at < msglen)
        snprintf(msg + at, msglen - at, "%s", n == 8 ? ", ..." : "");
    store_refs_free(refs, n);
    return 409002;
}

/* An audit record of an administrative change; the store appends it with the change. */
static void audit_init(struct store_audit *a, struct call *c, const char *event, char *subject,
                       int http_status, const char *reason) {
    memset(a, 0, sizeof(*a));
    time_now_dps(a->ts);
    a->event = (char *)event;
    a->subject = subject;
    a->outcome = "accepted";
    a->http_status = http_status;
    a->reason = (char *)reason;
    a->remote = c->remote[0] != '\0' ? c->remote : NULL;
}

/* Builds the enrollment.changed event of a change (docs/events.md), stamped like its audit
 * record; status is the stored document's provisioningStatus, NULL for a deletion. Returns 0, or
 * -1 (logged) when out of memory. */
static int change_event(struct store_event *ev, const struct store_audit *a, enum store_kind kind,
                        const char *id, const char *change, const char *status) {
    const struct event_enrollment e = {kind, id, change, status};

    if (event_enrollment(ev, a->ts, &e) != 0) {
        log_error("admin: the enrollment.changed event of %s could not be built", id);
        return -1;
    }
    return 0;
}

/* Wakes the delivery thread when the store queued ev for a webhook. */
static void event_queued(struct call *c, const struct store_event *ev) {
    if (ev->seq > 0)
        deliverer_wake(c->w->pd->deliverer);
}

/* Parses a decimal integer in [min, max] with nothing around it. */
static int parse_int(const char *s, long long min, long long max, long long *out) {
    long long v = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (LLONG_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The condition of a write: If-Match (an etag, or * for "exists"), or on a PUT If-None-Match: *
 * (create only; a document that exists is 409 / 409001). STORE_IF_ANY when there is none; a
 * malformed If-Match cannot match any etag, so it is answered as a failed condition. */
static int read_if_match(struct call *c, int64_t *if_match) {
    const char *h = http_header(c->req, "If-Match");
    const char *none = http_header(c->req, "If-None-Match");

    *if_match = STORE_IF_ANY;
    if (none != NULL) {
        if (h != NULL || strcmp(none, "*") != 0 ||
            evhttp_request_get_command(c->req) != EVHTTP_REQ_PUT) {
            fail(c, 400001, "%s",
                 "If-None-Match takes only *, on a PUT, and not together with If-Match");
            return -1;
        }
        *if_match = STORE_IF_ABSENT;
        return 0;
    }
    if (h == NULL)
        return 0;
    if (etag_parse(h, if_match) != 0) {
        fail(c, 412001, "If-Match is not an etag of this server");
        return -1;
    }
    return 0;
}

/* Paging of the query routes: x-ms-max-item-count and x-ms-continuation, whose token is the
 * base64 of the last ID of the previous page. */
struct page {
    size_t limit;
    char after[HOSTNAME_MAX + 1];
    int has_after;
};

static int page_read(struct call *c, struct page *pg) {
    const char *count = http_header(c->req, "x-ms-max-item-count");
    const char *token = http_header(c->req, "x-ms-continuation");
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    long long n = PAGE_DEFAULT;
    int ok;

    memset(pg, 0, sizeof(*pg));
    if (count != NULL && parse_int(count, 1, PAGE_MAX, &n) != 0) {
        fail(c, 400007, "x-ms-max-item-count must be a number from 1 to %d", PAGE_MAX);
        return -1;
    }
    pg->limit = (size_t)n;
    /* An empty token is what some clients send for the first page. */
    if (token == NULL || *token == '\0')
        return 0;
    ok = b64_decode(token, strlen(token), &raw, &rawlen, NULL) == 0 && rawlen <= HOSTNAME_MAX &&
         strlen((const char *)raw) == rawlen &&
         id_check(c->route->kind, (const char *)raw, NULL) == 0;
    if (ok) {
        memcpy(pg->after, raw, rawlen + 1);
        pg->has_after = 1;
    }
    b64_free(raw, rawlen);
    if (!ok) {
        fail(c, 400007, "x-ms-continuation is not a token of this server");
        return -1;
    }
    return 0;
}

/* Sets x-ms-continuation to resume after last_id. */
static int page_continue(struct call *c, const char *last_id) {
    char *token = b64_encode(last_id, strlen(last_id));

    if (token == NULL)
        return -1;
    http_set_header(c->req, "x-ms-continuation", token);
    free(token);
    return 0;
}

/* Checks the body of a query route: absent, or {"query": "*"}. */
static int check_query(struct call *c) {
    json_error_t jerr;
    const char *q = NULL;

    if (c->body == NULL)
        return 0;
    if (json_unpack_ex(c->body, &jerr, 0, "{s:s!}", "query", &q) != 0) {
        fail(c, 400001, "the body must be {\"query\": \"*\"}: %s", jerr.text);
        return -1;
    }
    if (strcmp(q, "*") != 0) {
        fail(c, 400001, "only the query \"*\" is supported");
        return -1;
    }
    return 0;
}

/* One attempt of put_doc. A write without an etag (no If-Match, or If-Match: *) is made over
 * the document read here (whose keys a replacing one may take), so that one written meanwhile is
 * not overwritten with keys it no longer has: *again is set when one was. */
static int put_doc_once(struct call *c, enum store_kind kind, const char *id, json_t *in,
                        int64_t if_match, json_t **view, char *msg, size_t msglen, int *again) {
    struct store_doc prev = {0}, doc = {0};
    struct store_audit audit;
    struct store_event event = {0};
    json_t *canon = NULL;
    int have_prev = 0, code = 0, rc;

    *again = 0;
    if (view != NULL)
        *view = NULL;
    /* The stored document supplies the keys a replacing one leaves out. */
    if (if_match != STORE_IF_ABSENT) {
        rc = store_doc_get(c->w->conn, kind, id, &prev);
        if (rc == STORE_OK)
            have_prev = 1;
        else if (rc != STORE_NOT_FOUND) {
            snprintf(msg, msglen, "internal error");
            code = 500001;
            goto out;
        }
    }
    if ((code = normalize_doc(c, kind, id, in, have_prev ? &prev : NULL, &canon, msg, msglen)) != 0)
        goto out;
    doc.id = strdup(id);
    doc.doc = json_dumps(canon, JSON_COMPACT);
    if (doc.id == NULL || doc.doc == NULL) {
        snprintf(msg, msglen, "internal error");
        code = 500001;
        goto out;
    }
    audit_init(&audit, c, KINDS[kind].put_event, doc.id, 200, have_prev ? "replaced" : "created");
    if (kind != STORE_ENDPOINT &&
        change_event(&event, &audit, kind, doc.id, audit.reason,
                     json_string_value(json_object_get(canon, "provisioningStatus"))) != 0) {
        snprintf(msg, msglen, "internal error");
        code = 500001;
        goto out;
    }
    /* Without an etag (no If-Match, or If-Match: *), the write is held to the version read. */
    int retryable = if_match == STORE_IF_ANY || (if_match == STORE_IF_EXISTS && have_prev);
    rc = store_doc_put_event(c->w->conn, kind, &doc,
                             !retryable  ? if_match
                             : have_prev ? prev.version
                                         : STORE_IF_ABSENT,
                             &audit, kind != STORE_ENDPOINT ? &event : NULL);
    if (retryable && (rc == STORE_CONFLICT || rc == STORE_NOT_FOUND)) {
        snprintf(msg, msglen, "%s %s kept changing while it was written: write it again",
                 kind_name(kind), id);
        code = 409003;
        *again = 1;
    } else if (rc == STORE_CONFLICT && if_match == STORE_IF_ABSENT) {
        snprintf(msg, msglen, "%s %s already exists", kind_name(kind), id);
        code = 409001;
    } else if (rc == STORE_CONFLICT || (rc == STORE_NOT_FOUND && if_match != STORE_IF_ANY)) {
        snprintf(msg, msglen, "the etag does not match that of %s %s", kind_name(kind), id);
        code = 412001;
    } else if (rc == STORE_DANGLING) {
        /* Checked above; deleted by another request since. */
        snprintf(msg, msglen, "%s %s names an endpoint or group that no longer exists",
                 kind_name(kind), id);
        code = 400006;
    } else if (rc != STORE_OK) {
        snprintf(msg, msglen, "internal error");
        code = 500001;
    }
    if (code != 0)
        goto out;
    event_queued(c, &event);
    bump_gen(c, kind);
    if (view != NULL && (*view = view_of(kind, &doc)) == NULL) {
        snprintf(msg, msglen, "internal error");
        code = 500001;
    }
out:
    store_event_clear(&event);
    enrollment_wipe(canon);
    json_decref(canon);
    free(doc.id);
    free_secret(doc.doc);
    store_doc_clear(&prev);
    return code;
}

/* Validates in and stores it as id with the condition if_match, auditing the change. Returns 0
 * and, when view is not NULL, the stored document's view with keys; or an error code with a
 * message in msg. */
static int put_doc(struct call *c, enum store_kind kind, const char *id, json_t *in,
                   int64_t if_match, json_t **view, char *msg, size_t msglen) {
    int again = 0, code = 0;
    for (int attempt = 0; attempt < 3 && (attempt == 0 || again); attempt++)
        code = put_doc_once(c, kind, id, in, if_match, view, msg, msglen, &again);
    return code;
}

/* Deletes id with the condition if_match, auditing the change. Returns 0 or an error code with
 * a message in msg. */
static int delete_doc(struct call *c, enum store_kind kind, char *id, int64_t if_match, char *msg,
                      size_t msglen) {
    struct store_audit audit;
    struct store_event event = {0};
    int rc;

    audit_init(&audit, c, KINDS[kind].delete_event, id, 204, "deleted");
    if (kind != STORE_ENDPOINT && change_event(&event, &audit, kind, id, audit.reason, NULL) != 0) {
        snprintf(msg, msglen, "internal error");
        return 500001;
    }
    rc = store_doc_delete_event(c->w->conn, kind, id, if_match, &audit,
                                kind != STORE_ENDPOINT ? &event : NULL);
    event_queued(c, &event);
    store_event_clear(&event);
    switch (rc) {
    case STORE_OK:
        bump_gen(c, kind);
        return 0;
    case STORE_IN_USE:
        return in_use(c, kind, id, msg, msglen);
    case STORE_NOT_FOUND:
        snprintf(msg, msglen, "no %s %s", kind_name(kind), id);
        return not_found_code(kind);
    case STORE_CONFLICT:
        snprintf(msg, msglen, "the etag does not match that of %s %s", kind_name(kind), id);
        return 412001;
    default:
        snprintf(msg, msglen, "internal error");
        return 500001;
    }
}

static void get_healthz(struct call *c) {
    http_reply_json(c->req, 200, json_pack("{s:s}", "status", "ok"));
}

/* The issuing CA as an operator watches it: its subject, the span in which it issues (its
 * chain's earliest expiry ends it) and whether it can issue now, and if not why. */
static json_t *ca_view(const struct ca *ca) {
    char from[TIME_DPS_LEN], until[TIME_DPS_LEN], why[160];
    char *subject = certinfo_name(X509_get_subject_name(ca_issuing_cert(ca)));
    int usable = ca_usable(ca, why, sizeof(why)) == 0;
    int64_t not_before, not_after;
    json_t *v;

    ca_validity(ca, &not_before, &not_after);
    time_format_dps_ms(not_before * 1000, from);
    time_format_dps_ms(not_after * 1000, until);
    v = json_pack("{s:s?, s:s, s:s, s:b, s:s*}", "subject", subject, "notBefore", from, "notAfter",
                  until, "canIssue", usable, "reason", usable ? NULL : why);
    free(subject);
    return v;
}

static void get_info(struct call *c) {
    struct store_counts n = {0};

    if (store_counts(c->w->conn, &n) != STORE_OK) {
        fail_internal(c);
        return;
    }
    reply_ok(c, json_pack("{s:s?, s:s, s:{s:I, s:I, s:I, s:I}, s:o}", "idScope",
                          c->w->pd->cfg.id_scope, "version", PROV_VERSION, "counts", "enrollments",
                          (json_int_t)n.enrollments, "enrollmentGroups", (json_int_t)n.groups,
                          "registrations", (json_int_t)n.registrations, "auditRecords",
                          (json_int_t)n.audit, "ca", ca_view(c->w->pd->ca)));
}

/* Reads the document of the route's kind named by the path into d. Returns 0, or -1 after
 * answering. */
static int read_doc(struct call *c, struct store_doc *d) {
    enum store_kind kind = c->route->kind;

    return answer_store_error(c, store_doc_get(c->w->conn, kind, c->id, d), not_found_code(kind),
                              kind_name(kind));
}

static void get_doc(struct call *c) {
    struct store_doc d = {0};
    json_t *v;

    if (read_doc(c, &d) != 0)
        goto out;
    if ((v = view_of(c->route->kind, &d)) == NULL) {
        fail_internal(c);
        goto out;
    }
    reply_secret(c, 200, v);
out:
    store_doc_clear(&d);
}

static void put_one(struct call *c) {
    char msg[MSG_MAX];
    int64_t if_match;
    json_t *view = NULL;
    int code;

    if (read_if_match(c, &if_match) != 0)
        return;
    code = put_doc(c, c->route->kind, c->id, c->body, if_match, &view, msg, sizeof(msg));
    if (code != 0) {
        fail(c, code, "%s", msg);
        return;
    }
    reply_secret(c, 200, view);
}

static void delete_one(struct call *c) {
    char msg[MSG_MAX];
    int64_t if_match;
    int code;

    if (read_if_match(c, &if_match) != 0)
        return;
    code = delete_doc(c, c->route->kind, c->id, if_match, msg, sizeof(msg));
    if (code != 0) {
        fail(c, code, "%s", msg);
        return;
    }
    http_reply_empty(c->req, 204);
}

static void post_attestation(struct call *c) {
    struct store_doc d = {0};
    json_t *view = NULL, *att;

    if (read_doc(c, &d) != 0)
        goto out;
    if ((view = enrollment_view(&d, 1)) == NULL ||
        !json_is_object(att = json_object_get(view, "attestation"))) {
        fail_internal(c);
        goto out;
    }
    /* att belongs to view, which is wiped and released below: the answer takes a reference of
     * its own. */
    reply_secret(c, 200, json_incref(att));
out:
    enrollment_wipe(view);
    json_decref(view);
    store_doc_clear(&d);
}

static void post_query_docs(struct call *c) {
    struct store_doc *docs = NULL;
    struct page pg;
    size_t n = 0, i;
    json_t *arr = NULL, *v;

    if (check_query(c) != 0 || page_read(c, &pg) != 0)
        return;
    /* One more than the page tells whether a further page exists. */
    if (store_doc_list(c->w->conn, c->route->kind, pg.has_after ? pg.after : NULL, pg.limit + 1,
                       &docs, &n) != STORE_OK) {
        fail_internal(c);
        return;
    }
    arr = json_array();
    if (arr == NULL)
        goto internal;
    for (i = 0; i < n && i < pg.limit; i++) {
        if ((v = view_of(c->route->kind, &docs[i])) == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
    }
    if (n > pg.limit && page_continue(c, docs[pg.limit - 1].id) != 0)
        goto internal;
    reply_secret(c, 200, arr);
    arr = NULL;
    goto out;
internal:
    fail_internal(c);
out:
    wipe_docs(arr);
    json_decref(arr);
    store_docs_free(docs, n);
}

enum bulk_mode { BULK_CREATE, BULK_UPDATE, BULK_UPDATE_IF_MATCH, BULK_DELETE };

/* Runs one item of a bulk operation. Returns 0, or an error code with a message in msg. */
static int bulk_item(struct call *c, enum bulk_mode mode, json_t *item, size_t idx, char *msg,
                     size_t msglen) {
    const char *raw_id = json_string_value(json_object_get(item, "registrationId"));
    json_t *etag = json_object_get(item, "etag");
    char id[REGID_MAX + 1];
    const char *why = NULL;
    int64_t if_match = STORE_IF_ANY;

    if (!json_is_object(item)) {
        snprintf(msg, msglen, "enrollments[%zu] is not an object", idx);
        return 400006;
    }
    if (raw_id == NULL) {
        snprintf(msg, msglen, "enrollments[%zu].registrationId is missing or not a string", idx);
        return 400003;
    }
    if (regid_check(raw_id, &why) != 0) {
        snprintf(msg, msglen, "registrationId \"%.64s\" is invalid: %s", raw_id,
                 why != NULL ? why : "breaks the registration ID rules");
        return 400003;
    }
    snprintf(id, sizeof(id), "%s", raw_id);
    regid_lower(id);

    /* updateIfMatchETag needs the item's etag; delete honours one when given. */
    if (mode == BULK_UPDATE_IF_MATCH ||
        (mode == BULK_DELETE && etag != NULL && !json_is_null(etag))) {
        if (!json_is_string(etag) || etag_parse(json_string_value(etag), &if_match) != 0) {
            snprintf(msg, msglen, "the etag of %s is missing or not an etag of this server", id);
            return 412001;
        }
    }
    switch (mode) {
    case BULK_CREATE:
        return put_doc(c, STORE_ENROLLMENT, id, item, STORE_IF_ABSENT, NULL, msg, msglen);
    case BULK_UPDATE:
    case BULK_UPDATE_IF_MATCH:
        return put_doc(c, STORE_ENROLLMENT, id, item, if_match, NULL, msg, msglen);
    case BULK_DELETE:
        return delete_doc(c, STORE_ENROLLMENT, id, if_match, msg, msglen);
    }
    return 500001;
}

static void post_bulk(struct call *c) {
    static const char *const modes[] = {"create", "update", "updateIfMatchETag", "delete"};
    json_t *items = NULL, *item, *errors = NULL, *err;
    const char *mode_s = NULL, *raw_id;
    char msg[MSG_MAX];
    json_error_t jerr;
    size_t i, m;
    int code;

    if (json_unpack_ex(c->body, &jerr, 0, "{s:s, s:o !}", "mode", &mode_s, "enrollments", &items) !=
        0) {
        fail(c, 400001, "the body must be {\"mode\": \"...\", \"enrollments\": [...]}: %s",
             jerr.text);
        return;
    }
    for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
        if (strcasecmp(mode_s, modes[m]) == 0)
            break;
    if (m == sizeof(modes) / sizeof(modes[0])) {
        fail(c, 400001, "mode must be create, update, updateIfMatchETag or delete");
        return;
    }
    if (!json_is_array(items)) {
        fail(c, 400001, "enrollments must be an array");
        return;
    }
    if (json_array_size(items) > BULK_MAX) {
        fail(c, 400001, "at most %d enrollments per bulk operation", BULK_MAX);
        return;
    }
    errors = json_array();
    if (errors == NULL)
        goto internal;
    json_array_foreach(items, i, item) {
        code = bulk_item(c, (enum bulk_mode)m, item, i, msg, sizeof(msg));
        if (code == 0)
            continue;
        raw_id = json_string_value(json_object_get(item, "registrationId"));
        err = json_pack("{s:s, s:i, s:s}", "registrationId", raw_id != NULL ? raw_id : "",
                        "errorCode", code, "errorStatus", msg);
        if (err == NULL || json_array_append_new(errors, err) != 0)
            goto internal;
    }
    reply_ok(
        c, json_pack("{s:b, s:O}", "isSuccessful", json_array_size(errors) == 0, "errors", errors));
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(errors);
}

static void get_registration(struct call *c) {
    struct store_registration r = {0};
    json_t *v;
    int rc;

    rc = store_reg_get(c->w->conn, c->id, &r);
    if (answer_store_error(c, rc, 404004, "registration") != 0)
        goto out;
    /* The admin view tells whether a forced reprovisioning waits for the device. */
    if ((v = registration_view(&r)) == NULL ||
        (r.reprovision && json_object_set_new(v, "reprovisionPending", json_true()) != 0)) {
        fail_internal(c);
        goto out;
    }
    http_reply_json(c->req, 200, v);
out:
    store_registration_clear(&r);
}

/* Answers a change to the registration c->id: 204, or why it could not be made. */
static void reply_registration_change(struct call *c, int rc) {
    if (answer_store_error(c, rc, 404004, "registration") == 0)
        http_reply_empty(c->req, 204);
}

/* The device's next registration re-allocates it whatever its reprovisioning policy says. */
static void post_reprovision(struct call *c) {
    struct store_audit audit;

    audit_init(&audit, c, "registration.reprovision", c->id, 204,
               "the next registration re-allocates the device");
    reply_registration_change(c, store_reg_reprovision(c->w->conn, c->id, &audit));
}

static void delete_registration(struct call *c) {
    struct store_audit audit;

    audit_init(&audit, c, "registration.delete", c->id, 204, "deleted");
    reply_registration_change(c, store_reg_delete(c->w->conn, c->id, &audit));
}

static void post_query_registrations(struct call *c) {
    struct store_registration *regs = NULL;
    struct store_doc group = {0};
    struct page pg;
    size_t n = 0, i;
    json_t *arr = NULL, *v;
    int rc;

    if (check_query(c) != 0 || page_read(c, &pg) != 0)
        return;
    /* An unknown group is worth telling apart from a group nobody has registered with yet. */
    rc = store_doc_get(c->w->conn, STORE_GROUP, c->id, &group);
    store_doc_clear(&group);
    if (rc == STORE_NOT_FOUND) {
        fail(c, 404003, "no enrollment group %s", c->id);
        return;
    }
    if (rc != STORE_OK || store_reg_list(c->w->conn, c->id, pg.has_after ? pg.after : NULL,
                                         pg.limit + 1, &regs, &n) != STORE_OK) {
        fail_internal(c);
        return;
    }
    arr = json_array();
    if (arr == NULL)
        goto internal;
    for (i = 0; i < n && i < pg.limit; i++) {
        if ((v = registration_view(&regs[i])) == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
    }
    if (n > pg.limit && page_continue(c, regs[pg.limit - 1].registration_id) != 0)
        goto internal;
    http_reply_json(c->req, 200, arr);
    arr = NULL;
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(arr);
    store_registrations_free(regs, n);
}

/* Reads the query parameters after (a sequence number, default 0) and limit (1 to PAGE_MAX,
 * default PAGE_DEFAULT) of the routes that page by sequence number. Returns 0, or -1 after
 * answering 400. */
static int seq_page_read(struct call *c, long long *after, long long *limit) {
    char *after_s = http_query_get(&c->path, "after");
    char *limit_s = http_query_get(&c->path, "limit");
    int rc = 0;

    *after = 0;
    *limit = PAGE_DEFAULT;
    if ((after_s != NULL && parse_int(after_s, 0, INT64_MAX, after) != 0) ||
        (limit_s != NULL && parse_int(limit_s, 1, PAGE_MAX, limit) != 0)) {
        fail(c, 400007, "after must be a sequence number and limit a number from 1 to %d",
             PAGE_MAX);
        rc = -1;
    }
    free(after_s);
    free(limit_s);
    return rc;
}

/* Checks id, the value of query parameter name (NULL when absent), with the registration ID
 * rules and lower-cases it in place. Returns 0, or -1 after answering 400 / 400003 saying that
 * name is not what. */
static int check_query_id(struct call *c, char *id, const char *name, const char *what) {
    if (id == NULL)
        return 0;
    if (regid_check(id, NULL) != 0) {
        fail(c, 400003, "%s is not %s", name, what);
        return -1;
    }
    regid_lower(id);
    return 0;
}

/* Answers a page of sequence-numbered items: {"<name>": items, "next": next}, where next is the
 * last sequence number answered (the caller's "after" when there was none). */
static void reply_seq_page(struct call *c, const char *name, json_t *items, int64_t next) {
    reply_ok(c, json_pack("{s:O, s:I}", name, items, "next", (json_int_t)next));
}

/* A string of an audit record as JSON, or NULL for NULL. Records hold what devices sent, which
 * older versions stored as it came: bytes that are not UTF-8 are answered as '?' rather than
 * making the whole page fail. */
static json_t *audit_text(const char *s) {
    json_t *v = s ? json_string(s) : NULL;
    if (s && !v) {
        char *copy = strdup(s);
        for (char *p = copy; p && *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        v = copy ? json_string(copy) : NULL;
        free(copy);
    }
    return v;
}

static void get_audit(struct call *c) {
    char *subject = http_query_get(&c->path, "subject");
    struct store_audit *recs = NULL;
    long long after, limit;
    size_t n = 0, i;
    json_t *arr = NULL, *v;
    int64_t next;

    if (seq_page_read(c, &after, &limit) != 0)
        goto out;
    if (subject != NULL) {
        if (regid_check(subject, NULL) != 0 && hostname_check(subject, NULL) != 0) {
            fail(c, 400003, "subject is not a valid registration, group ID or host name");
            goto out;
        }
        regid_lower(subject);
    }
    if (store_audit_list(c->w->conn, subject, after, (size_t)limit, &recs, &n) != STORE_OK)
        goto internal;
    arr = json_array();
    if (arr == NULL)
        goto internal;
    next = after;
    for (i = 0; i < n; i++) {
        const struct store_audit *a = &recs[i];
        v = json_pack("{s:I, s:s, s:o?, s:o?, s:o?, s:i, s:i, s:o?, s:o?, s:o?}", "seq",
                      (json_int_t)a->seq, "timestampUtc", a->ts, "event", audit_text(a->event),
                      "subject", audit_text(a->subject), "outcome", audit_text(a->outcome),
                      "httpStatus", a->http_status, "errorCode", a->error_code, "reason",
                      audit_text(a->reason), "remote", audit_text(a->remote), "trackingId",
                      audit_text(a->tracking));
        if (v == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
        next = a->seq;
    }
    reply_seq_page(c, "records", arr, next);
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(arr);
    store_audits_free(recs, n);
    free(subject);
}

/* Wipes the "secret" member of a webhook document (the request's, or an answer's). */
static void wipe_webhook_secret(json_t *doc) {
    json_t *s = json_object_get(doc, "secret");

    if (json_is_string(s))
        OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

/* Tells the registration pipeline at once which event types have a subscriber now. */
static void subscriptions_changed(struct call *c) {
    atomic_store(&c->w->pd->events_subscribed, webhook_subscribed(c->w->conn));
}

static void get_webhooks(struct call *c) {
    struct store_webhook *hooks = NULL;
    size_t n = 0, i;
    json_t *arr = NULL, *v;

    if (store_webhook_list(c->w->conn, NULL, PAGE_MAX, &hooks, &n) != STORE_OK ||
        (arr = json_array()) == NULL)
        goto internal;
    for (i = 0; i < n; i++) {
        if ((v = webhook_view(&hooks[i], 0)) == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
    }
    http_reply_json(c->req, 200, arr);
    arr = NULL;
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(arr);
    store_webhooks_free(hooks, n);
}

static void get_webhook(struct call *c) {
    struct store_webhook wh = {0};
    int rc;

    rc = store_webhook_get(c->w->conn, c->id, &wh);
    if (answer_store_error(c, rc, 404010, "webhook") == 0)
        reply_ok(c, webhook_view(&wh, 0));
    store_webhook_clear(&wh);
}

/* Creates or replaces a webhook; a create is refused once WEBHOOK_MAX exist. The secret is
 * answered only when provd generated it, so this is the one time it is shown; If-None-Match: *
 * only creates. */
static void put_webhook(struct call *c) {
    const char *inm = http_header(c->req, "If-None-Match");
    struct store_webhook prev = {0}, wh = {0};
    struct store_audit audit;
    char msg[MSG_MAX];
    int rc, generated = 0;
    json_t *v = NULL;

    rc = store_webhook_get(c->w->conn, c->id, &prev);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        fail_internal(c);
        goto out;
    }
    if (webhook_from_json(c->id, c->body, prev.id ? &prev : NULL, &wh, &generated, msg,
                          sizeof(msg)) != 0) {
        fail(c, strcmp(msg, "internal error") == 0 ? 500001 : 400010, "%s", msg);
        goto out;
    }
    audit_init(&audit, c, "webhook.put", wh.id, 200, prev.id ? "replaced" : "created");
    /* The store counts the webhooks in the transaction of the write, so that creations racing
     * each other on other workers cannot together pass the limit. As for every other refusal of
     * the admin API, nothing is written for it, not even an audit record. */
    rc = store_webhook_put(c->w->conn, &wh, inm != NULL && strcmp(inm, "*") == 0, WEBHOOK_MAX,
                           &audit);
    if (rc == STORE_CONFLICT) {
        fail(c, 409001, "webhook %s already exists", c->id);
        goto out;
    }
    if (rc == STORE_LIMIT) {
        fail(c, 400010, "there are %d webhooks already, the most a server takes", WEBHOOK_MAX);
        goto out;
    }
    if (rc != STORE_OK) {
        fail_internal(c);
        goto out;
    }
    subscriptions_changed(c);
    if ((v = webhook_view(&wh, generated)) == NULL) {
        fail_internal(c);
        goto out;
    }
    json_incref(v);
    http_reply_json(c->req, 200, v);
out:
    wipe_webhook_secret(c->body);
    wipe_webhook_secret(v);
    json_decref(v);
    store_webhook_clear(&prev);
    store_webhook_clear(&wh);
}

static void delete_webhook(struct call *c) {
    struct store_audit audit;
    int rc;

    audit_init(&audit, c, "webhook.delete", c->id, 204, "deleted");
    rc = store_webhook_delete(c->w->conn, c->id, &audit);
    if (answer_store_error(c, rc, 404010, "webhook") == 0) {
        subscriptions_changed(c);
        http_reply_empty(c->req, 204);
    }
}

static void get_events(struct call *c) {
    char *state_s = http_query_get(&c->path, "state");
    char *webhook = http_query_get(&c->path, "webhook");
    enum store_delivery_state state = STORE_DELIVERY_ANY;
    struct store_delivery *ds = NULL;
    long long after, limit;
    size_t n = 0, i;
    json_t *arr = NULL, *v;
    int64_t next;

    if (seq_page_read(c, &after, &limit) != 0)
        goto out;
    if (state_s != NULL && store_delivery_state_parse(state_s, &state) != 0) {
        fail(c, 400001, "state must be pending, delivered or failed");
        goto out;
    }
    if (check_query_id(c, webhook, "webhook", "a valid webhook ID") != 0)
        goto out;
    if (store_delivery_list(c->w->conn, state, webhook, after, (size_t)limit, &ds, &n) !=
            STORE_OK ||
        (arr = json_array()) == NULL)
        goto internal;
    next = after;
    for (i = 0; i < n; i++) {
        if ((v = delivery_view(&ds[i], 0)) == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
        next = ds[i].id;
    }
    reply_seq_page(c, "events", arr, next);
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(arr);
    store_deliveries_free(ds, n);
    free(state_s);
    free(webhook);
}

/* Reads the delivery named by the path into d. Returns 0, or -1 after answering. */
static int read_delivery(struct call *c, struct store_delivery *d) {
    long long id = 0;
    int rc = STORE_NOT_FOUND;

    memset(d, 0, sizeof(*d));
    if (parse_int(c->id, 1, INT64_MAX, &id) == 0)
        rc = store_delivery_get(c->w->conn, id, d);
    return answer_store_error(c, rc, 404011, "event delivery");
}

static void get_event(struct call *c) {
    struct store_delivery d;

    if (read_delivery(c, &d) == 0)
        reply_ok(c, delivery_view(&d, 1));
    store_delivery_clear(&d);
}

/* Makes a failed delivery pending again, due at once, with its attempts counted afresh. */
static void post_event_retry(struct call *c) {
    struct store_delivery d;
    struct store_audit audit;
    int rc;

    if (read_delivery(c, &d) != 0)
        goto out;
    audit_init(&audit, c, "event.retry", c->id, 200, "delivery retried");
    rc = store_delivery_retry(c->w->conn, d.id, time_now_unix_ms(), &audit);
    store_delivery_clear(&d);
    if (rc == STORE_CONFLICT) {
        fail(c, 409010, "event delivery %s has not failed; only failed ones are retried", c->id);
    } else if (answer_store_error(c, rc, 404011, "event delivery") == 0) {
        deliverer_wake(c->w->pd->deliverer);
        if (read_delivery(c, &d) == 0)
            reply_ok(c, delivery_view(&d, 1));
    }
out:
    store_delivery_clear(&d);
}

/* ---- Device certificates ---- */

/* The admin API's view of a certificate provd issued. */
static json_t *cert_view(const struct store_cert *x) {
    char revoked[TIME_DPS_LEN] = "";

    if (x->revoked)
        time_format_dps_ms(x->revoked_at * 1000, revoked);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:s*, s:s}",
                     "serialNumber", x->serial, "registrationId", x->registration_id, "deviceId",
                     x->device_id, "subjectName", x->subject, "issuerName", x->issuer,
                     "sha256Thumbprint", x->thumbprint, "notBeforeUtc", x->not_before,
                     "notAfterUtc", x->not_after, "status", x->revoked ? "revoked" : "valid",
                     "revokedDateTimeUtc", x->revoked ? revoked : NULL, "revocationReason",
                     x->revoked ? (x->reason ? x->reason : "unspecified") : NULL,
                     "createdDateTimeUtc", x->created);
}

/* Lists certificates, optionally only those of a registration or a device, paged by serial
 * number: after (the last serial of the previous page) and limit; "next" is there when more
 * may follow. */
static void get_certificates(struct call *c) {
    char *reg = http_query_get(&c->path, "registrationId");
    char *dev = http_query_get(&c->path, "deviceId");
    char *after_s = http_query_get(&c->path, "after");
    char *limit_s = http_query_get(&c->path, "limit");
    char after[CERT_SERIAL_MAX] = "";
    struct store_cert *certs = NULL;
    long long limit = PAGE_DEFAULT;
    size_t n = 0, i;
    json_t *arr = NULL, *v;

    if ((after_s && cert_serial_parse(after_s, after) != 0) ||
        (limit_s && parse_int(limit_s, 1, PAGE_MAX, &limit) != 0)) {
        fail(c, 400007, "after must be a serial number and limit a number from 1 to %d", PAGE_MAX);
        goto out;
    }
    if (check_query_id(c, reg, "registrationId", "a valid registration ID") != 0)
        goto out;
    const struct store_cert_filter f = {NULL, reg, dev};
    if (store_cert_list(c->w->conn, &f, after, (size_t)limit + 1, &certs, &n) != STORE_OK ||
        (arr = json_array()) == NULL)
        goto internal;
    for (i = 0; i < n && i < (size_t)limit; i++) {
        if ((v = cert_view(&certs[i])) == NULL || json_array_append_new(arr, v) != 0)
            goto internal;
    }
    reply_ok(c, json_pack("{s:O, s:s*}", "certificates", arr, "next",
                          n > (size_t)limit ? certs[limit - 1].serial : NULL));
    goto out;
internal:
    fail_internal(c);
out:
    json_decref(arr);
    store_certs_free(certs, n);
    free(reg);
    free(dev);
    free(after_s);
    free(limit_s);
}

/* Reads the certificate named by the path into x. Returns 0, or -1 after answering. */
static int read_cert(struct call *c, struct store_cert *x) {
    return answer_store_error(c, store_cert_get(c->w->conn, c->id, x), 404012, "certificate");
}

static void reply_cert(struct call *c) {
    struct store_cert x;

    if (read_cert(c, &x) == 0)
        reply_ok(c, cert_view(&x));
    store_cert_clear(&x);
}

static void get_certificate(struct call *c) {
    reply_cert(c);
}

/* Reads the revocation reason of the body ({"reason": RFC 5280 name}, any case; absent:
 * unspecified) and the other members the route allows (NULL-terminated). Returns 0 with *reason
 * (NULL for unspecified), or -1 after answering 400. */
static int read_reason(struct call *c, const char *const *members, const char **reason) {
    const char *key;
    json_t *v, *r;
    int code;

    *reason = NULL;
    if (c->body == NULL)
        return 0;
    if (!json_is_object(c->body)) {
        fail(c, 400001, "the body must be a JSON object");
        return -1;
    }
    json_object_foreach(c->body, key, v) {
        size_t i = 0;
        while (members[i] != NULL && strcmp(members[i], key) != 0)
            i++;
        if (members[i] == NULL) {
            fail(c, 400001, "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    r = json_object_get(c->body, "reason");
    if (r == NULL || json_is_null(r))
        return 0;
    if (!json_is_string(r) || ca_crl_reason_parse(json_string_value(r), &code) != 0) {
        fail(c, 400001,
             "reason must be an RFC 5280 reason: unspecified, keyCompromise, cACompromise,"
             " affiliationChanged, superseded, cessationOfOperation, certificateHold,"
             " privilegeWithdrawn or aACompromise");
        return -1;
    }
    *reason = code == CRL_REASON_UNSPECIFIED ? NULL : ca_crl_reason_name(code);
    return 0;
}

/* Revokes the valid certificates matching f with their audit records; the CRL is signed anew
 * when it is next asked for (crl_fresh). Returns the store's answer with *n the number revoked. */
static int revoke(struct call *c, const struct store_cert_filter *f, const char *reason,
                  int64_t *n) {
    char why[256];
    struct store_audit audit;

    snprintf(why, sizeof(why), "%s%s revoked (%s)",
             f->serial            ? "certificate "
             : f->registration_id ? "certificates of "
                                  : "certificates of device ",
             f->serial            ? f->serial
             : f->registration_id ? f->registration_id
                                  : f->device_id,
             reason ? reason : "unspecified");
    utf8_repair(why); /* a long device ID may be cut inside a character */
    /* The store records it about each registration ID the certificates were issued to. */
    audit_init(&audit, c, "certificate.revoke", NULL, 200, why);
    return store_cert_revoke(c->w->conn, f, time_now_unix(), reason, &audit, n);
}

/* POST /certificates/{serial}/revoke: answers the revoked certificate. */
static void post_cert_revoke(struct call *c) {
    static const char *const members[] = {"reason", NULL};
    struct store_cert x = {0};
    const char *reason;
    int64_t n = 0;
    int rc;

    if (read_reason(c, members, &reason) != 0 || read_cert(c, &x) != 0)
        goto out;
    const struct store_cert_filter f = {c->id, NULL, NULL};
    rc = revoke(c, &f, reason, &n);
    if (rc == STORE_CONFLICT || rc == STORE_NOT_FOUND)
        fail(c, 409011, "certificate %s is revoked already", c->id);
    else if (rc != STORE_OK)
        fail_internal(c);
    else
        reply_cert(c);
out:
    store_cert_clear(&x);
}

/* Revokes every valid certificate of the filter and answers how many. */
static void revoke_all(struct call *c, const struct store_cert_filter *f, const char *reason) {
    int64_t n = 0;
    int rc = revoke(c, f, reason, &n);

    if (rc != STORE_OK && rc != STORE_NOT_FOUND && rc != STORE_CONFLICT)
        fail_internal(c);
    else
        http_reply_json(c->req, 200, json_pack("{s:I}", "revoked", (json_int_t)n));
}

/* POST /registrations/{id}/revokeCertificates: every valid certificate issued to the device. */
static void post_reg_revoke(struct call *c) {
    static const char *const members[] = {"reason", NULL};
    const char *reason;

    if (read_reason(c, members, &reason) != 0)
        return;
    const struct store_cert_filter f = {NULL, c->id, NULL};
    revoke_all(c, &f, reason);
}

/* POST /certificates/revoke: every valid certificate of a device ID or registration ID. */
static void post_certs_revoke(struct call *c) {
    static const char *const members[] = {"reason", "deviceId", "registrationId", NULL};
    char reg[REGID_MAX + 1] = "";
    const char *reason, *dev, *r;

    if (read_reason(c, members, &reason) != 0)
        return;
    json_t *jdev = json_object_get(c->body, "deviceId"),
           *jr = json_object_get(c->body, "registrationId");
    /* A member of another type is a mistake, not an absent one: revocations cannot be undone. */
    if ((jdev && !json_is_null(jdev) && !json_is_string(jdev)) ||
        (jr && !json_is_null(jr) && !json_is_string(jr))) {
        fail(c, 400001, "deviceId and registrationId must be strings");
        return;
    }
    dev = json_string_value(jdev);
    r = json_string_value(jr);
    if ((dev == NULL) == (r == NULL)) {
        fail(c, 400001, "give exactly one of deviceId and registrationId (strings)");
        return;
    }
    if (r != NULL) {
        if (regid_check(r, NULL) != 0) {
            fail(c, 400003, "registrationId is not a valid registration ID");
            return;
        }
        snprintf(reg, sizeof(reg), "%s", r);
        regid_lower(reg);
    }
    const struct store_cert_filter f = {NULL, r ? reg : NULL, dev};
    revoke_all(c, &f, reason);
}

#define GET    EVHTTP_REQ_GET
#define PUT    EVHTTP_REQ_PUT
#define POST   EVHTTP_REQ_POST
#define DELETE EVHTTP_REQ_DELETE
#define ENR    STORE_ENROLLMENT
#define GRP    STORE_GROUP
#define EPT    STORE_ENDPOINT

/* Literal segments are matched without regard to case, so "query" and "attestationmechanism"
 * are tried before the ID patterns that would also match them. */
static const struct route routes[] = {
    {{"healthz"}, GET, BODY_NONE, ENR, get_healthz},
    {{"info"}, GET, BODY_NONE, ENR, get_info},
    {{"enrollments"}, POST, BODY_REQUIRED, ENR, post_bulk},
    {{"enrollments", "query"}, POST, BODY_OPTIONAL, ENR, post_query_docs},
    {{"enrollments", "*"}, GET, BODY_NONE, ENR, get_doc},
    {{"enrollments", "*"}, PUT, BODY_REQUIRED, ENR, put_one},
    {{"enrollments", "*"}, DELETE, BODY_NONE, ENR, delete_one},
    {{"enrollments", "*", "attestationmechanism"}, POST, BODY_NONE, ENR, post_attestation},
    {{"enrollmentgroups", "query"}, POST, BODY_OPTIONAL, GRP, post_query_docs},
    {{"enrollmentgroups", "*"}, GET, BODY_NONE, GRP, get_doc},
    {{"enrollmentgroups", "*"}, PUT, BODY_REQUIRED, GRP, put_one},
    {{"enrollmentgroups", "*"}, DELETE, BODY_NONE, GRP, delete_one},
    {{"enrollmentgroups", "*", "attestationmechanism"}, POST, BODY_NONE, GRP, post_attestation},
    {{"registrations", "*"}, GET, BODY_NONE, ENR, get_registration},
    {{"registrations", "*"}, DELETE, BODY_NONE, ENR, delete_registration},
    {{"registrations", "*", "query"}, POST, BODY_OPTIONAL, GRP, post_query_registrations},
    {{"registrations", "*", "reprovision"}, POST, BODY_NONE, ENR, post_reprovision},
    {{"endpoints"}, GET, BODY_NONE, EPT, post_query_docs},
    {{"endpoints", "query"}, POST, BODY_OPTIONAL, EPT, post_query_docs},
    {{"endpoints", "*"}, GET, BODY_NONE, EPT, get_doc},
    {{"endpoints", "*"}, PUT, BODY_REQUIRED, EPT, put_one},
    {{"endpoints", "*"}, DELETE, BODY_NONE, EPT, delete_one},
    {{"audit"}, GET, BODY_NONE, ENR, get_audit},
    {{"webhooks"}, GET, BODY_NONE, ENR, get_webhooks},
    {{"webhooks", "*"}, GET, BODY_NONE, ENR, get_webhook},
    {{"webhooks", "*"}, PUT, BODY_REQUIRED, ENR, put_webhook},
    {{"webhooks", "*"}, DELETE, BODY_NONE, ENR, delete_webhook},
    {{"events"}, GET, BODY_NONE, ENR, get_events},
    {{"events", "*"}, GET, BODY_NONE, ENR, get_event},
    {{"events", "*", "retry"}, POST, BODY_NONE, ENR, post_event_retry},
    {{"certificates"}, GET, BODY_NONE, ENR, get_certificates},
    {{"certificates", "revoke"}, POST, BODY_REQUIRED, ENR, post_certs_revoke},
    {{"certificates", "#"}, GET, BODY_NONE, ENR, get_certificate},
    {{"certificates", "#", "revoke"}, POST, BODY_OPTIONAL, ENR, post_cert_revoke},
    {{"registrations", "*", "revokecertificates"}, POST, BODY_OPTIONAL, ENR, post_reg_revoke},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Whether the path is the route's. A "#" takes any segment (take_path_id then refuses one that is
 * not a serial number) or, when strict, only a serial number. */
static int route_matches_path(const struct route *r, const struct http_path *p, int strict) {
    char serial[CERT_SERIAL_MAX];
    int i;

    for (i = 0; i < 4 && r->pat[i] != NULL; i++) {
        if (i >= p->nseg)
            return 0;
        if (strcmp(r->pat[i], "#") == 0) {
            if (strict && cert_serial_parse(p->seg[i], serial) != 0)
                return 0;
        } else if (strcmp(r->pat[i], "*") != 0 && !http_seg_is(p, i, r->pat[i])) {
            return 0;
        }
    }
    return i == p->nseg;
}

static const char *method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "?";
    }
}

/* Finds the route of the request. On a path without the request's method, answers 405 with an
 * Allow header; on an unknown path, 404. A "#" is first matched only by serial numbers, so that
 * a path that is another route's (GET /certificates/revoke) is not taken for a malformed one. */
static const struct route *route_find(struct call *c) {
    enum evhttp_cmd_type m = evhttp_request_get_command(c->req);
    char allow[64] = "";
    size_t i;

    for (int strict = 1; strict >= 0 && allow[0] == '\0'; strict--) {
        for (i = 0; i < NROUTES; i++) {
            if (!route_matches_path(&routes[i], &c->path, strict))
                continue;
            if (routes[i].method == m)
                return &routes[i];
            if (strstr(allow, method_name(routes[i].method)) == NULL)
                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                         allow[0] != '\0' ? ", " : "", method_name(routes[i].method));
        }
    }
    if (allow[0] != '\0') {
        http_set_header(c->req, "Allow", allow);
        fail(c, 405001, "method not allowed; this path takes %s", allow);
    } else {
        fail(c, 404005, "no such path");
    }
    return NULL;
}

/* Checks the Authorization header against the stored token hashes. Only the SHA-256 of a token
 * is ever looked up, so the token itself is neither stored nor logged. */
static int authenticate(struct call *c) {
    const char *h = http_header(c->req, "Authorization");
    unsigned char md[EVP_MAX_MD_SIZE];
    char hex[2 * 32 + 1];
    unsigned int mdlen = 0, i;
    size_t len;
    int rc;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        http_set_header(c->req, "WWW-Authenticate", "Bearer");
        fail(c, 401002, "a bearer token is required");
        return -1;
    }
    h += 7;
    while (*h == ' ')
        h++;
    len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len == 0 || EVP_Digest(h, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        http_set_header(c->req, "WWW-Authenticate", "Bearer");
        fail(c, 401002, "a bearer token is required");
        return -1;
    }
    for (i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    OPENSSL_cleanse(md, sizeof(md));
    rc = store_token_find(c->w->conn, hex);
    OPENSSL_cleanse(hex, sizeof(hex));
    if (rc == STORE_OK)
        return 0;
    if (rc == STORE_NOT_FOUND) {
        http_set_header(c->req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        fail(c, 401002, "unknown bearer token");
    } else {
        fail_internal(c);
    }
    return -1;
}

/* Checks the ID segment of the path and keeps it lower-cased in c->id. */
static int take_path_id(struct call *c) {
    const char *why = NULL;

    for (int i = 0; i < 4 && c->route->pat[i] != NULL; i++) {
        if (strcmp(c->route->pat[i], "#") == 0) {
            if (cert_serial_parse(c->path.seg[i], c->id) != 0) {
                fail(c, 400001,
                     "invalid serial number \"%.64s\": an even number of 2 to 40 hex digits "
                     "expected",
                     c->path.seg[i]);
                return -1;
            }
            continue;
        }
        if (strcmp(c->route->pat[i], "*") != 0)
            continue;
        if (id_check(c->route->kind, c->path.seg[i], &why) != 0) {
            fail(c, 400003, "invalid ID \"%.64s\": %s", c->path.seg[i],
                 why != NULL ? why : "breaks the registration ID rules");
            return -1;
        }
        snprintf(c->id, sizeof(c->id), "%s", c->path.seg[i]);
        regid_lower(c->id);
    }
    return 0;
}

/* Reads and parses the body of routes that take one. */
static int take_body(struct call *c) {
    size_t len = 0, max = c->w->pd->cfg.max_body_bytes;
    int too_big = 0, rc = -1;
    char *text, jerr[160];

    if (c->route->body == BODY_NONE)
        return 0;
    text = http_body(c->req, max, &len, &too_big);
    if (text == NULL) {
        if (too_big)
            fail(c, 413001, "the body is larger than %zu bytes", max);
        else if (c->route->body == BODY_REQUIRED)
            fail(c, 400001, "a JSON body is required");
        else
            rc = 0;
        return rc;
    }
    if (http_is_json(c->req) != 0) {
        fail(c, 415001, "the body must be application/json");
        goto out;
    }
    c->body = http_json_parse(text, len, jerr, sizeof(jerr));
    if (c->body == NULL) {
        fail(c, 400002, "the body is not valid JSON: %s", jerr);
        goto out;
    }
    rc = 0;
out:
    /* Enrollment bodies carry keys. */
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

void admin_api_handle(struct evhttp_request *req, void *worker) {
    struct call c;

    memset(&c, 0, sizeof(c));
    c.req = req;
    c.w = worker;
    http_remote(req, c.remote, sizeof(c.remote));
    int parsed = http_path_parse(req, &c.path);
    /* Only the health check answers without a token; every other path, known or not (even one
     * that does not parse), first needs one, so that the API's shape is not open to anonymous
     * probing. */
    if (!(parsed == 0 && c.path.nseg == 1 && http_seg_is(&c.path, 0, "healthz")) &&
        authenticate(&c) != 0)
        goto out;
    if (parsed != 0) {
        fail(&c, parsed == HTTP_BAD_QUERY ? 400001 : 404005,
             parsed == HTTP_BAD_QUERY ? "malformed query string: name=value pairs expected"
                                      : "no such path");
        goto out;
    }
    if ((c.route = route_find(&c)) == NULL)
        goto out;
    if (take_path_id(&c) != 0 || take_body(&c) != 0)
        goto out;
    c.route->fn(&c);
out:
    enrollment_wipe(c.body);
    json_decref(c.body);
    http_path_clear(&c.path);
}
