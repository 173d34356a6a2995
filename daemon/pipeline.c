/* The registration pipeline. See pipeline.h for its place in provd. */
#include "pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "allocation.h"
#include "ca.h"
#include "certinfo.h"
#include "crl.h"
#include "custom_alloc.h"
#include "deliverer.h"
#include "endpoint.h"
#include "enrollment.h"
#include "event.h"
#include "hmac.h"
#include "http_client.h"
#include "log.h"
#include "provd.h"
#include "sas.h"
#include "template.h"
#include "timefmt.h"
#include "utf8.h"

/* How long a worker trusts its copies of the enrollment groups and the endpoints when nothing
 * in this process changed them: other provd nodes sharing the store may have. */
#define CACHE_TTL_US (2 * 1000 * 1000)
#define CACHE_PAGE   256

/* How many times a registration is decided again when the device's state changed meanwhile. */
#define RERUNS_MAX 3

/* Room for the reason a certificate does not verify up to a group's CA. */
#define X509_WHY_MAX 160

/* Codes of registrations that fail (registrationState.errorCode, docs/errors.md). */
#define CODE_NO_ENDPOINT 400008
#define CODE_RENDER      400009

/* The documents of one kind as one worker last read them, parsed once for every device: the
 * enrollment groups, tried for every device without an individual enrollment, and the
 * endpoints, read for every allocation. Items are in ID order, as the store lists them. */
struct doc_cache {
    enum store_kind kind;
    size_t size; /* bytes of one parsed item */
    int (*parse)(const struct store_doc *d, void *out);
    void (*clear)(void *item);
    const char *(*id_of)(const void *item);
    uint64_t gen;
    uint64_t loaded_us;
    char *items;
    size_t n;
};

/* The pipeline's state in each worker (worker.pipeline). */
struct pipeline_worker {
    struct doc_cache groups, endpoints;
    struct http_client *http; /* made at the first custom allocation */
};

static int parse_group(const struct store_doc *d, void *out) {
    return enrollment_parse(STORE_GROUP, d, out);
}
static void clear_group(void *item) {
    enrollment_clear(item);
}
static const char *id_of_group(const void *item) {
    return ((const struct enrollment *)item)->id;
}
static int parse_endpoint(const struct store_doc *d, void *out) {
    return endpoint_parse(d, out);
}
static void clear_endpoint(void *item) {
    endpoint_clear(item);
}
static const char *id_of_endpoint(const void *item) {
    return ((const struct endpoint *)item)->host;
}

static void cache_clear(struct doc_cache *dc) {
    for (size_t i = 0; i < dc->n; i++)
        dc->clear(dc->items + i * dc->size);
    free(dc->items);
    dc->items = NULL;
    dc->n = 0;
}

void pipeline_worker_free(struct worker *w) {
    struct pipeline_worker *pw = w->pipeline;
    if (pw) {
        cache_clear(&pw->groups);
        cache_clear(&pw->endpoints);
        http_client_free(pw->http);
        free(pw);
        w->pipeline = NULL;
    }
}

static int cache_reload(struct worker *w, struct doc_cache *dc, uint64_t gen, uint64_t now) {
    char *all = NULL;
    size_t n = 0, cap = 0;
    char *after = NULL;
    int rc = -1;
    for (;;) {
        struct store_doc *docs = NULL;
        size_t got = 0;
        if (store_doc_list(w->conn, dc->kind, after, CACHE_PAGE, &docs, &got) != STORE_OK)
            goto out;
        for (size_t i = 0; i < got; i++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char *grown = realloc(all, cap * dc->size);
                if (!grown) {
                    store_docs_free(docs, got);
                    goto out;
                }
                all = grown;
            }
            if (dc->parse(&docs[i], all + n * dc->size) == 0)
                n++;
        }
        free(after);
        after = got ? strdup(docs[got - 1].id) : NULL;
        store_docs_free(docs, got);
        if (got < CACHE_PAGE)
            break;
    }
    cache_clear(dc);
    dc->items = all;
    dc->n = n;
    dc->gen = gen;
    dc->loaded_us = now;
    all = NULL;
    n = 0;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        dc->clear(all + i * dc->size);
    free(all);
    free(after);
    return rc;
}

static struct pipeline_worker *worker_state(struct worker *w) {
    struct pipeline_worker *pw = w->pipeline;
    if (!pw && (pw = w->pipeline = calloc(1, sizeof(*pw)))) {
        pw->groups = (struct doc_cache){.kind = STORE_GROUP,
                                        .size = sizeof(struct enrollment),
                                        .parse = parse_group,
                                        .clear = clear_group,
                                        .id_of = id_of_group};
        pw->endpoints = (struct doc_cache){.kind = STORE_ENDPOINT,
                                           .size = sizeof(struct endpoint),
                                           .parse = parse_endpoint,
                                           .clear = clear_endpoint,
                                           .id_of = id_of_endpoint};
    }
    return pw;
}

/* The worker's cache of kind (STORE_GROUP or STORE_ENDPOINT), reloaded when it may be stale,
 * which invalidates the items of the previous load; NULL when the store could not be read. */
static struct doc_cache *cache_of(struct worker *w, enum store_kind kind) {
    struct pipeline_worker *pw = worker_state(w);
    if (!pw)
        return NULL;
    struct doc_cache *dc = kind == STORE_GROUP ? &pw->groups : &pw->endpoints;
    uint64_t gen = atomic_load(kind == STORE_GROUP ? &w->pd->groups_gen : &w->pd->endpoints_gen);
    uint64_t now = time_mono_us();
    if (dc->loaded_us == 0 || dc->gen != gen || now - dc->loaded_us > CACHE_TTL_US) {
        if (cache_reload(w, dc, gen, now) != 0)
            return NULL;
    }
    return dc;
}

/* The cached item whose ID is id, or NULL. */
static const void *cache_find(const struct doc_cache *dc, const char *id) {
    size_t lo = 0, hi = dc->n;
    while (id && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const void *item = dc->items + mid * dc->size;
        int c = strcmp(id, dc->id_of(item));
        if (c == 0)
            return item;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

struct reg_job *reg_job_new(struct worker *w, enum reg_op op) {
    struct reg_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->w = w;
    job->op = op;
    if (uuid_v4(job->tracking) != 0) {
        free(job);
        return NULL;
    }
    return job;
}

/* Releases what the pipeline filled in job, its outcome, and leaves the front end's input, so
 * that the job can run again. */
static void clear_outcome(struct reg_job *job) {
    store_registration_clear(&job->reg);
    json_decref(job->reg_payload);
    free(job->audit.event);
    free(job->audit.subject);
    free(job->audit.outcome);
    free(job->audit.reason);
    free(job->audit.remote);
    free(job->audit.tracking);
    free(job->previous_hub);
    store_event_clear(&job->event);
    json_decref(job->x509);
    issuance_clear(&job->issued);
    csr_free(job->csr_req);
    EVP_PKEY_free(job->server_key); /* OpenSSL wipes private key material */
    memset(&job->commit, 0, sizeof(job->commit));
    job->http_status = job->error_code = job->group_attested = 0;
    job->message[0] = job->answer[0] = job->attested_by[0] = '\0';
    memset(&job->audit, 0, sizeof(job->audit));
    job->reg_payload = NULL;
    job->previous_hub = NULL;
    job->x509 = NULL;
    job->csr_req = NULL;
    job->server_key = NULL;
}

void reg_job_free(struct reg_job *job) {
    if (!job)
        return;
    clear_outcome(job);
    free(job->authorization);
    if (job->password) {
        OPENSSL_cleanse(job->password, strlen(job->password));
        free(job->password);
    }
    free(job->label);
    json_decref(job->payload);
    free(job->operation_id);
    free(job->csr);
    X509_free(job->peer);
    sk_X509_pop_free(job->peer_chain, X509_free);
    free(job);
}

static const char *op_event(enum reg_op op) {
    switch (op) {
    case REG_OP_REGISTER:
        return "device.register";
    case REG_OP_OPERATION:
        return "device.operation";
    case REG_OP_STATUS:
        return "device.status";
    case REG_OP_EST_ENROLL:
        return "est.simpleenroll";
    case REG_OP_EST_REENROLL:
        return "est.simplereenroll";
    case REG_OP_EST_KEYGEN:
        return "est.serverkeygen";
    }
    return "device.unknown";
}

static void refuse(struct reg_job *job, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The committer is done with the job: answer, unless the write failed. When another
 * registration of the device was stored after this one read the device's state (a device that
 * retried, two devices with one registration ID), or the provd certificate that attested the
 * device was revoked meanwhile, nothing of this one was written: it is decided again, over what
 * is stored now, so that its answer is what the store holds. */
static void committed(struct commit_job *cj) {
    struct reg_job *job = (struct reg_job *)(void *)cj;
    if (cj->rc == STORE_OK && cj->write.conflict) {
        /* Decided again, a job whose certificate was revoked meanwhile is refused for it (and
         * conflicts no more), however many decisions came before. */
        int revoked = cj->write.revoked;
        clear_outcome(job);
        if (revoked || ++job->reruns <= RERUNS_MAX)
            pipeline_run(job);
        else
            refuse(job, 503, 503003, "%s",
                   "the device's registration kept changing while this one was decided: register"
                   " again");
        return;
    }
    if (cj->rc == STORE_OK && job->event.seq > 0)
        deliverer_wake(job->w->pd->deliverer);
    if (cj->rc != STORE_OK) {
        job->http_status = 500;
        job->error_code = 500001;
        snprintf(job->message, sizeof(job->message), "the decision could not be stored");
        job->answer[0] = '\0';
    }
    job->reply(job);
}

/* The webhook event of a register decision: device.registered, device.reprovisioned for a
 * device that was assigned before, or device.refused. Returns NULL when no webhook subscribes to
 * its type, or (logged) when it cannot be built. */
static struct store_event *decision_event(struct reg_job *job, int accepted) {
    const struct store_registration *r = &job->reg;
    const char *type = !accepted           ? EVENT_DEVICE_REFUSED
                       : job->previous_hub ? EVENT_DEVICE_REPROVISIONED
                                           : EVENT_DEVICE_REGISTERED;
    const struct event_device d = {
        .registration_id = job->regid,
        .device_id = r->device_id,
        .group_id = r->group_id,
        .status = r->status,
        .substatus = r->substatus,
        .assigned_hub = r->assigned_hub,
        .previous_hub = job->previous_hub,
        .operation_id = r->operation_id,
        .http_status = job->http_status,
        .error_code = job->error_code,
        .reason = job->message,
        .tracking_id = job->tracking,
    };
    if (!(atomic_load(&job->w->pd->events_subscribed) & event_type_bit(type)))
        return NULL;
    if (event_device(&job->event, type, job->audit.ts, &d) != 0) {
        log_error("%s subject=%s tracking=%s: its webhook event could not be built", type,
                  job->regid, job->tracking);
        return NULL;
    }
    return &job->event;
}

/* Every decision ends here: its audit record (and the registration, when one was written)
 * becomes durable in the next group commit, and only then does the front end answer. The
 * webhook event of a register decision is queued in that same commit. */
static void finish(struct reg_job *job, int accepted) {
    struct store_audit *a = &job->audit;
    /* Once the worker has begun to stop, nothing new reaches the committer, so the worker can
     * leave as soon as what it already handed over is answered. Nothing was decided durably:
     * the device is told to come back. */
    if (job->w->stopping) {
        job->http_status = 503;
        job->error_code = 503001;
        snprintf(job->message, sizeof(job->message), "the server is shutting down");
        job->answer[0] = '\0';
        job->reply(job);
        return;
    }
    time_now_dps(a->ts);
    a->event = strdup(op_event(job->op));
    a->subject = strdup(job->regid);
    a->outcome = strdup(accepted ? "accepted" : "refused");
    a->http_status = job->http_status;
    a->error_code = job->error_code;
    a->reason = strdup(job->message);
    a->remote = strdup(job->remote);
    a->tracking = strdup(job->tracking);
    char quoted[2 * sizeof(job->message)];
    log_info("%s subject=%s outcome=%s status=%d code=%d tracking=%s remote=%s reason=\"%s\"",
             a->event, job->regid, a->outcome, job->http_status, job->error_code, job->tracking,
             job->remote, log_quoted(job->message, quoted, sizeof(quoted)));
    job->commit.w = job->w;
    job->commit.write.audit = a;
    if (reg_op_registers(job->op))
        job->commit.write.event = decision_event(job, accepted);
    job->commit.done = committed;
    committer_submit(job->w->pd->committer, &job->commit);
}

static void vrefuse(struct reg_job *job, int status, int code, const char *fmt, va_list ap) {
    job->http_status = status;
    job->error_code = code;
    vsnprintf(job->message, sizeof(job->message), fmt, ap);
    /* The message goes into the JSON answer and record: a quote, or the cut at the buffer's
     * end, may fall inside a character. */
    utf8_repair(job->message);
    finish(job, 0);
}

static void refuse(struct reg_job *job, int status, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vrefuse(job, status, code, fmt, ap);
    va_end(ap);
}

/* A 401 the audit record and the log explain, while the device is told only answer: the words
 * of a refusal that finds nothing, so that it does not tell which registration IDs have an
 * individual enrollment, nor of which kind. */
static void refuse_unsaid(struct reg_job *job, const char *answer, const char *fmt, ...) {
    va_list ap;
    snprintf(job->answer, sizeof(job->answer), "%s", answer);
    utf8_repair(job->answer);
    va_start(ap, fmt);
    vrefuse(job, 401, 401002, fmt, ap);
    va_end(ap);
}

void pipeline_refuse(struct reg_job *job, int status, int code, const char *message) {
    refuse(job, status, code, "%s", message);
}

/* Whether the device proved possession of one of keys (base64; keys[1] may be NULL): by the
 * signature of tok when there is one, else by sending the key itself as its HTTP Basic
 * password (compared in constant time). */
static int proves_key(const struct reg_job *job, const struct sas_token *tok,
                      const char *const keys[2]) {
    if (tok)
        return sas_verify_sig(tok, keys, 2, NULL) == SAS_OK;
    size_t n = strlen(job->password);
    int ok = 0;
    for (int k = 0; k < 2; k++)
        ok |= keys[k] && strlen(keys[k]) == n && CRYPTO_memcmp(keys[k], job->password, n) == 0;
    return ok;
}

/* Whether the device proved, by the SAS token arg (NULL: the HTTP Basic password), the key
 * group g derives for it (g within job->label when set). */
static int key_attests(struct reg_job *job, const void *arg, const struct enrollment *g) {
    const struct sas_token *tok = arg;
    char *keys[2] = {NULL, NULL};
    if (g->attestation != ENROLLMENT_SYMMETRIC_KEY ||
        (job->label && strcmp(g->id, job->label) != 0))
        return 0;
    keys[0] = derive_device_key(g->primary_key, job->regid, NULL);
    if (g->secondary_key)
        keys[1] = derive_device_key(g->secondary_key, job->regid, NULL);
    int ok = keys[0] && proves_key(job, tok, (const char *const *)keys);
    for (int k = 0; k < 2; k++) {
        if (keys[k]) {
            OPENSSL_cleanse(keys[k], strlen(keys[k]));
            free(keys[k]);
        }
    }
    return ok;
}

/* The group that attests the device, by attests(job, arg, g): the group it is registered under
 * (home, NULL when none) when that one does, so that a device two groups attest stays where it
 * is; else the first in ID order. NULL when none does. */
static const struct enrollment *
find_group(struct reg_job *job, const struct doc_cache *gc, const char *home,
           int (*attests)(struct reg_job *, const void *, const struct enrollment *),
           const void *arg) {
    const struct enrollment *first = home ? cache_find(gc, home) : NULL;
    if (first && attests(job, arg, first))
        return first;
    for (size_t i = 0; i < gc->n; i++) {
        const struct enrollment *g = (const struct enrollment *)(const void *)gc->items + i;
        if (g != first && attests(job, arg, g))
            return g;
    }
    return NULL;
}

/* Reads the device's individual enrollment into e. Returns STORE_OK (e filled, the caller clears
 * it) or STORE_NOT_FOUND, or -1 after refusing. */
static int find_individual(struct reg_job *job, struct enrollment *e) {
    struct store_doc doc = {0};
    int got = store_doc_get(job->w->conn, STORE_ENROLLMENT, job->regid, &doc);

    if (got == STORE_OK && enrollment_parse(STORE_ENROLLMENT, &doc, e) != 0) {
        refuse(job, 500, 500001, "%s", "stored enrollment is unreadable");
        got = -1;
    } else if (got != STORE_OK && got != STORE_NOT_FOUND) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        got = -1;
    }
    store_doc_clear(&doc);
    return got;
}

/* An individual enrollment takes precedence over the groups, so a device that has one cannot be
 * enrolled through a group by an EST label. That is said (403) only to a device whose credentials
 * prove that enrollment (proven) or the label's group, by attests(job, arg, group): to anyone
 * else a label is no way to learn which registration IDs have an individual enrollment. Returns
 * 1 after refusing, else 0. */
static int refuse_label(struct reg_job *job, int proven,
                        int (*attests)(struct reg_job *, const void *, const struct enrollment *),
                        const void *arg) {
    struct doc_cache *gc = proven ? NULL : cache_of(job->w, STORE_GROUP);
    const struct enrollment *g = gc ? cache_find(gc, job->label) : NULL;
    if (!proven && !(g && attests(job, arg, g)))
        return 0;
    refuse(job, 403, 403003,
           "%s has an individual enrollment: it cannot enroll through enrollment group %s",
           job->regid, job->label);
    return 1;
}

/* Refuses a SAS token tok (NULL: an HTTP Basic password) that no key proves, in the same words
 * whether or not the device has an individual enrollment; detail (NULL: none), what the audit
 * record adds. */
static void refuse_key(struct reg_job *job, const struct sas_token *tok, const char *detail) {
    const char *what = tok ? "SAS token" : "HTTP Basic password";
    char nothing[128];
    snprintf(nothing, sizeof(nothing), "%s refused: no enrollment or enrollment group key %s", what,
             tok ? "signed it" : "matches it");
    if (detail)
        refuse_unsaid(job, nothing, "%s refused: %s", what, detail);
    else
        refuse(job, 401, 401002, "%s", nothing);
}

/* Symmetric-key attestation, by the SAS token tok or (tok NULL) the HTTP Basic password:
 * against the device's individual enrollment, else the enrollment groups (only job->label's
 * when set). Arguments and result as for authenticate. */
static int authenticate_key(struct reg_job *job, const struct sas_token *tok, const char *home,
                            struct enrollment *e, const struct enrollment **out) {
    struct worker *w = job->w;
    int got = find_individual(job, e);
    if (got < 0)
        return -1;
    if (got == STORE_OK) {
        const char *keys[2] = {e->primary_key, e->secondary_key};
        int proven = e->attestation == ENROLLMENT_SYMMETRIC_KEY && proves_key(job, tok, keys);
        if (job->label && refuse_label(job, proven, key_attests, tok))
            return -1;
        if (!proven) {
            /* The groups are tried all the same, so that the time of the answer does not tell
             * either (an individual enrollment takes precedence: none of them may attest). */
            struct doc_cache *gc = cache_of(w, STORE_GROUP);
            if (gc)
                find_group(job, gc, home, key_attests, tok);
            refuse_key(job, tok,
                       e->attestation != ENROLLMENT_SYMMETRIC_KEY
                           ? "the enrollment uses X.509 attestation (the device certificate goes "
                             "in the TLS handshake)"
                           : NULL);
            return -1;
        }
        *out = e;
        return 0;
    }
    struct doc_cache *gc = cache_of(w, STORE_GROUP);
    if (!gc) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        return -1;
    }
    const struct enrollment *g = find_group(job, gc, home, key_attests, tok);
    if (!g) {
        refuse_key(job, tok, NULL);
        return -1;
    }
    *out = g;
    return 0;
}

/* Symmetric-key attestation by the SAS token job->authorization; arguments and result as for
 * authenticate (the group is the one whose derived key signed the token). */
static int authenticate_sas(struct reg_job *job, const char *home, struct enrollment *e,
                            const struct enrollment **out) {
    const struct provd_config *cfg = &job->w->pd->cfg;
    struct sas_token tok;
    const char *why = NULL;
    int rc = -1;

    if (sas_parse(job->authorization, &tok, &why) != SAS_OK) {
        refuse(job, 401, 401002, "malformed SAS token: %s", why);
        return -1;
    }
    enum sas_result r = sas_check_resource(&tok, cfg->id_scope, job->regid);
    if (r == SAS_OK)
        r = sas_check_expiry(&tok, time_now_unix(), cfg->sas_max_lifetime_s);
    if (r != SAS_OK)
        refuse(job, 401, 401002, "SAS token refused: %s", sas_result_str(r));
    else
        rc = authenticate_key(job, &tok, home, e, out);
    sas_token_free(&tok);
    return rc;
}

/* Verifies leaf, with the certificates the client sent above it, up to a signing certificate of
 * group g (a root or an intermediate CA: either is a trust anchor) for TLS client use, at the
 * current time. Returns X509_V_OK, or the X509_V_ERR_ code of the failure with its text in
 * err. */
static int verify_with_group(const struct enrollment *g, X509 *leaf, STACK_OF(X509) * chain,
                             char *err, size_t errlen) {
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = X509_V_ERR_OUT_OF_MEM;

    if (!store || !ctx)
        goto out;
    for (int i = 0; i < 2; i++)
        if (g->x509_certs[i] && !X509_STORE_add_cert(store, g->x509_certs[i]))
            goto out;
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (!X509_STORE_CTX_init(ctx, store, leaf, chain) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
        goto out;
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
out:
    if (rc != X509_V_OK)
        snprintf(err, errlen, "%s", X509_verify_cert_error_string(rc));
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* Whether leaf is the individual enrollment e's primary or secondary certificate (compared by
 * SHA-256 thumbprint, which also covers enrollments by thumbprint alone). */
static int matches_enrolled(const struct enrollment *e, const char *thumbprint) {
    for (int i = 0; i < 2; i++)
        if (e->x509_thumbprints[i][0] && strcmp(e->x509_thumbprints[i], thumbprint) == 0)
            return 1;
    return 0;
}

/* Whether serial is the certificate provd issued last to the device: only that one attests
 * it, so an older certificate stops working once the device has a newer one (re-enrolled, or
 * registered with a new CSR). Returns 1, 0, or -1 after refusing. */
static int is_current(struct reg_job *job, const char *serial) {
    struct store_cert cur = {0};
    int got = store_cert_current(job->w->conn, job->regid, &cur);
    int rc = got == STORE_OK && strcmp(cur.serial, serial) == 0;

    if (got != STORE_OK && got != STORE_NOT_FOUND) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        rc = -1;
    }
    store_cert_clear(&cur);
    return rc;
}

/* What the store says about leaf when provd issued it: the record of leaf's serial is leaf's
 * when its SHA-256 thumbprint is (a serial and an issuer name alone are easy to copy), whatever
 * CA provd has now. Refuses and returns -1 when it is revoked, or was issued to another
 * registration ID; else returns 0 with *own set when it is this device's own certificate (the
 * current one of this registration ID, verifying up to provd's root), *superseded when provd has
 * issued this registration ID a newer one since, and job->attested_by set to its serial when
 * provd issued it (its registration is stored only if it is still not revoked then). */
static int check_issued(struct reg_job *job, X509 *leaf, const struct ca_cert_info *info, int *own,
                        int *superseded) {
    struct store_cert rec = {0};
    char err[160];
    int got = store_cert_get(job->w->conn, info->serial, &rec), rc = -1, cur = 0;

    *own = *superseded = 0;
    if (got == STORE_OK && strcmp(rec.thumbprint, info->thumbprint) != 0)
        got = STORE_NOT_FOUND;
    if (got == STORE_NOT_FOUND) {
        rc = 0;
    } else if (got != STORE_OK) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
    } else if (rec.revoked) {
        refuse(job, 401, 401002, "client certificate refused: certificate %s is revoked%s%s",
               info->serial, rec.reason ? " for " : "", rec.reason ? rec.reason : "");
    } else if (strcmp(rec.registration_id, job->regid) != 0) {
        /* Its CN is a device ID, which another registration ID may equal: provd's certificates
         * attest only the registration they were issued to. */
        refuse(job, 401, 401002, "%s",
               "client certificate refused: provd issued it to another registration");
    } else if ((cur = is_current(job, info->serial)) == 0 && !job->peer_was_current) {
        *superseded = 1;
        rc = 0;
    } else if (cur >= 0) {
        /* A certificate of a CA provd no longer has is not the device's own any more. */
        *own = ca_verify(job->w->pd->ca, leaf, err, sizeof(err)) == 0;
        /* Decided again after a conflict: the certificate was current when the request came,
         * though the conflicting registration (a retry of this one) replaced it since. */
        job->peer_was_current = *own;
        rc = 0;
    }
    if (rc == 0 && got == STORE_OK)
        snprintf(job->attested_by, sizeof(job->attested_by), "%s", info->serial);
    store_cert_clear(&rec);
    return rc;
}

/* Why no X.509 group attests a certificate: the reason of a group whose CA is among the
 * certificate's issuers when one is, since a group of another fleet says nothing about it. */
struct x509_why {
    char text[X509_WHY_MAX];
    int issuer_found; /* text is from a group whose CA is an issuer of the certificate */
};

/* Whether X.509 group g (within job->label when set) attests the device's certificate; the
 * reason it does not goes into the struct x509_why arg. */
static int x509_attests(struct reg_job *job, const void *arg, const struct enrollment *g) {
    struct x509_why *why = (struct x509_why *)arg;
    char text[X509_WHY_MAX];
    if (g->attestation != ENROLLMENT_X509 || (job->label && strcmp(g->id, job->label) != 0))
        return 0;
    int rc = verify_with_group(g, job->peer, job->peer_chain, text, sizeof(text));
    if (rc == X509_V_OK)
        return 1;
    int found = rc != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY &&
                rc != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT &&
                rc != X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
    if (found || !why->issuer_found) {
        memcpy(why->text, text, sizeof(text));
        why->issuer_found = found;
    }
    return 0;
}

/* X.509 attestation: the device presented job->peer in the TLS handshake. It must be valid
 * now and not revoked by provd. The device's own certificate, the one provd issued it last,
 * attests for the enrollment the device registered with (its CN is the device ID, which may
 * differ from the registration ID). Any other must have the registration ID as its CN and be
 * the certificate of the device's individual enrollment, or chain to a signing certificate of
 * an enrollment group. Arguments and result as for authenticate. */
static int authenticate_x509(struct reg_job *job, const char *home, struct enrollment *e,
                             const struct enrollment **out) {
    struct worker *w = job->w;
    X509 *leaf = job->peer;
    struct ca_cert_info info = {0};
    const struct enrollment *found = NULL;
    char cn[REGID_MAX + 1];
    struct x509_why why = {"no enrollment group's CA signed it", 0};
    int own = 0, superseded = 0, rc = -1, got;

    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0 ||
        X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        refuse(job, 401, 401002, "client certificate refused: %s",
               X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0 ? "it has expired"
                                                                    : "it is not yet valid");
        return -1;
    }
    if (ca_cert_info(leaf, &info) != 0) {
        refuse(job, 401, 401002, "%s", "client certificate refused: it is malformed");
        return -1;
    }
    if (check_issued(job, leaf, &info, &own, &superseded) != 0)
        goto out;
    /* Before the CN is read: a certificate provd issued carries the device ID as its CN. */
    if (job->op == REG_OP_EST_REENROLL && !own) {
        refuse(job, 403, 403002, "%s",
               "simplereenroll needs the current certificate provd issued to this device");
        goto out;
    }
    if (superseded) {
        refuse(job, 401, 401002, "%s",
               "client certificate refused: provd has issued this device a newer certificate");
        goto out;
    }
    if (!own && certinfo_cn(leaf, cn, sizeof(cn)) != 0) {
        refuse(job, 401, 401002,
               "client certificate refused: no single CN of 1 to %d characters of text", REGID_MAX);
        goto out;
    }
    if (!own && strcasecmp(cn, job->regid) != 0) {
        refuse(job, 401, 401002,
               "client certificate refused: its CN \"%.64s\" is not the registration ID", cn);
        goto out;
    }

    got = find_individual(job, e);
    if (got < 0)
        goto out;
    if (got == STORE_OK) {
        int proven =
            own || (e->attestation == ENROLLMENT_X509 && matches_enrolled(e, info.thumbprint));
        /* With a label, certificates that prove nothing are refused as for a device without an
         * individual enrollment, with the verdict of the label's group. */
        if (job->label) {
            if (!refuse_label(job, proven, x509_attests, &why))
                refuse(job, 401, 401002, "client certificate refused: %s", why.text);
            goto out;
        }
        if (!proven) {
            /* The device is told the groups' verdict, as a certificate of no enrollment is; the
             * audit record says what was found. */
            struct doc_cache *gc = cache_of(w, STORE_GROUP);
            char answer[X509_WHY_MAX + 32];
            if (gc)
                find_group(job, gc, home, x509_attests, &why);
            snprintf(answer, sizeof(answer), "client certificate refused: %s", why.text);
            if (e->attestation != ENROLLMENT_X509)
                refuse_unsaid(job, answer, "%s",
                              "client certificate refused: the enrollment uses symmetric-key "
                              "attestation");
            else
                refuse_unsaid(job, answer,
                              "client certificate refused: thumbprint %.16s... is not the "
                              "enrolled certificate's",
                              info.thumbprint);
            goto out;
        }
        found = e;
    } else {
        struct doc_cache *gc = cache_of(w, STORE_GROUP);
        if (!gc) {
            refuse(job, 500, 500001, "%s", "the store could not be read");
            goto out;
        }
        /* The device's own certificate attests for the group it is registered under. */
        if (own && home)
            found = cache_find(gc, home);
        if (!found)
            found = find_group(job, gc, home, x509_attests, &why);
        /* Only the device's own certificate finds a group the label does not name: its home. */
        if (found && job->label && strcmp(found->id, job->label) != 0) {
            refuse(job, 403, 403004, "%s is registered under another enrollment", job->regid);
            goto out;
        }
        if (!found) {
            refuse(job, 401, 401002, "client certificate refused: %s",
                   !own   ? why.text
                   : home ? "the enrollment group the device is registered under no longer exists"
                          : "neither an individual enrollment nor a registration through a group "
                            "holds the device any more (a device of a group registers again with "
                            "the group's credentials)");
            goto out;
        }
    }
    job->x509 = json_pack("{s:s*, s:o*}", "enrollmentGroupId",
                          found->kind == STORE_GROUP ? found->id : NULL, "certificateInfo",
                          certinfo_json(leaf));
    *out = found;
    rc = 0;
out:
    ca_cert_info_free(&info);
    return rc;
}

/* Authenticates the device: by its SAS token when it sent one, else by the certificate it
 * presented in the TLS handshake; home is the group it is registered under, or NULL. On success
 * points *out at its enrollment and returns 0: the individual enrollment (parsed into *e, which the
 * caller clears), or else a cached group (valid until the worker next reloads its cache). Otherwise
 * refuses and returns -1. */
static int authenticate(struct reg_job *job, const char *home, struct enrollment *e,
                        const struct enrollment **out) {
    if (job->label) {
        struct doc_cache *gc = cache_of(job->w, STORE_GROUP);
        if (!gc) {
            refuse(job, 500, 500001, "%s", "the store could not be read");
            return -1;
        }
        if (!cache_find(gc, job->label)) {
            refuse(job, 404, 404003, "no enrollment group %s", job->label);
            return -1;
        }
    }
    if (job->op == REG_OP_EST_REENROLL && !job->peer) {
        refuse(job, 401, 401002, "%s",
               "simplereenroll needs the device's current certificate in the TLS handshake");
        return -1;
    }
    if (job->authorization)
        return authenticate_sas(job, home, e, out);
    if (job->password && job->op != REG_OP_EST_REENROLL)
        return authenticate_key(job, NULL, home, e, out);
    if (job->peer)
        return authenticate_x509(job, home, e, out);
    refuse(job, 401, 401002, "%s",
           job->op == REG_OP_REGISTER ? "missing SAS token or client certificate"
                                      : "missing HTTP Basic credentials or client certificate");
    return -1;
}

/* A registration from its authentication to its decision. It outlives pipeline_run while the
 * custom allocation webhook is asked, so it holds copies rather than the worker's cached
 * documents, which may be reloaded meanwhile. */
struct reg_state {
    struct reg_job *job;
    struct enrollment e;            /* the device's enrollment or group, without keys */
    struct store_registration prev; /* its previous registration, when has_prev */
    int has_prev;
    char **linked; /* the endpoints the webhook may choose from */
    size_t nlinked;
};

static void reg_state_free(struct reg_state *st) {
    enrollment_clear(&st->e);
    store_registration_clear(&st->prev);
    for (size_t i = 0; i < st->nlinked; i++)
        free(st->linked[i]);
    free(st->linked);
    free(st);
}

/* The device was assigned an endpoint before. */
static int was_assigned(const struct reg_state *st) {
    return st->has_prev && st->prev.assigned_hub && st->prev.status &&
           strcmp(st->prev.status, "assigned") == 0;
}

/* The HTTP status of an error code: its first three digits (docs/errors.md). */
static int http_status_of(int code) {
    int status = code / 1000;
    return status >= 400 && status < 600 ? status : 500;
}

/* A registration that cannot be assigned is answered 200 with status "failed" and the reason
 * in the registration state: the DPS device SDKs only understand assigning, assigned and
 * failed (job->failure_as_error: with its code's status). Nothing is written but the audit
 * record. */
static void fail_registration(struct reg_job *job, const struct enrollment *e, int code,
                              const char *message) {
    struct store_registration *r = &job->reg;
    char opid[UUID_STR_LEN] = "";
    uuid_v4(opid);
    r->registration_id = strdup(job->regid);
    r->status = strdup("failed");
    r->group_id = e->kind == STORE_GROUP ? strdup(e->id) : NULL;
    r->operation_id = strdup(opid);
    time_now_dps(r->updated);
    memcpy(r->created, r->updated, sizeof(r->created));
    r->error_code = code;
    r->error_message = strdup(message);
    job->group_attested = e->kind == STORE_GROUP;
    refuse(job, job->failure_as_error ? http_status_of(code) : 200, code, "%s", message);
}

static void reg_fail(struct reg_state *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails the registration of st (see fail_registration) and releases st. */
static void reg_fail(struct reg_state *st, int code, const char *fmt, ...) {
    char msg[sizeof(st->job->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg); /* as in refuse */
    fail_registration(st->job, &st->e, code, msg);
    reg_state_free(st);
}

/* The substatus of a registration that lands on hub (docs/device-api.md): a first assignment,
 * and a registration that leaves the device where it was, are initialAssignment; a move follows
 * the reprovisioning policy; an operator's forced reprovisioning is always
 * reprovisionedToInitialAssignment. */
static const char *substatus_of(const struct reg_state *st, const char *hub) {
    if (!was_assigned(st))
        return "initialAssignment";
    if (st->prev.reprovision)
        return "reprovisionedToInitialAssignment";
    if (strcmp(hub, st->prev.assigned_hub) == 0)
        return "initialAssignment";
    return st->e.reprovision_migrate_data ? "deviceDataMigrated" : "deviceDataReset";
}

/* The device ID: kept from the previous registration under "auto", else the enrollment's, else
 * the registration ID. Writes a fresh UUID into uuid when one is needed. */
static const char *device_id_of(const struct reg_state *st, char uuid[UUID_STR_LEN]) {
    const char *id = st->e.device_id;
    if (!id)
        return st->job->regid;
    if (strcmp(id, "auto") != 0)
        return id;
    if (st->has_prev && st->prev.device_id)
        return st->prev.device_id;
    return uuid_v4(uuid) == 0 ? uuid : NULL;
}

/* The payload the device receives (docs/device-api.md): its endpoint, its rendered
 * configuration, its initial twin and what the custom allocation webhook added. Templates of a
 * group come before those of an individual enrollment that names it, and the webhook's twin
 * comes last. Returns a new reference, or NULL with the reason in err. */
static json_t *device_payload(struct reg_state *st, const struct endpoint *ep,
                              const char *device_id, json_t *hook_twin, json_t *hook_payload,
                              char *err, size_t errlen) {
    const struct enrollment *e = &st->e, *g = NULL;
    json_t *twin = NULL, *tmpl = NULL, *conf = NULL, *base;
    if (e->template_group) {
        struct doc_cache *gc = cache_of(st->job->w, STORE_GROUP);
        if (!gc) {
            snprintf(err, errlen, "the store could not be read");
            return NULL;
        }
        g = cache_find(gc, e->template_group);
    }
    base = template_merge(g ? g->initial_twin : NULL, e->initial_twin);
    twin = template_merge(base, hook_twin);
    json_decref(base);
    tmpl = template_merge(g ? g->configuration : NULL, e->configuration);
    if (tmpl) {
        const struct template_vars vars = {
            .device_id = device_id,
            .registration_id = st->job->regid,
            .endpoint_host = ep->host,
            .endpoint_port = ep->port,
            .endpoint_protocol = ep->protocol,
            .group = e->kind == STORE_GROUP ? e->id : e->template_group,
            .payload = st->job->payload,
        };
        conf = template_render(tmpl, &vars, err, errlen);
        json_decref(tmpl);
        if (!conf) {
            json_decref(twin);
            return NULL;
        }
    }
    json_t *out = json_pack("{s:o, s:o*, s:o*, s:O*}", "endpoint", endpoint_device_view(ep),
                            "configuration", conf, "initialTwin", twin, "webhook", hook_payload);
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

/* Issues the certificate of the device's CSR to device_id, valid for the enrollment's
 * certificateValidityDays or the server's cert_validity_days; its record goes into the
 * registration's group commit. Returns 0, or -1 with the reason in err. */
static int issue(struct reg_state *st, const char *device_id, char *err, size_t errlen) {
    struct reg_job *job = st->job;
    const struct provd *pd = job->w->pd;
    int days = st->e.cert_days ? st->e.cert_days : pd->cfg.cert_validity_days;

    return issuance_issue(pd->ca, job->csr_req, job->regid, device_id, days, &job->issued, err,
                          errlen);
}

/* Refuses with 500 a registration that complete() had begun to fill as assigned: that state is
 * dropped first, so that the refusal's event does not describe an assignment never stored. */
static void refuse_assigned(struct reg_job *job, const char *reason) {
    store_registration_clear(&job->reg);
    json_decref(job->reg_payload);
    job->reg_payload = NULL;
    refuse(job, 500, 500001, "%s", reason);
}

/* Checks the device's CSR once it is authenticated. Returns 0, or -1 after refusing with the
 * code of the check that failed (nothing is issued or stored but the audit record). */
static int check_csr(struct reg_job *job) {
    char msg[160];
    /* A re-enrollment's CSR carries the subject of the current certificate, whose CN is the
     * device ID: that subject is compared whole below. */
    const char *cn = job->op == REG_OP_EST_REENROLL ? NULL : job->regid;
    enum csr_err e;

    /* Nothing to check a request for when no certificate can be issued. */
    if (ca_usable(job->w->pd->ca, msg, sizeof(msg)) != 0) {
        refuse(job, 503, 503004, "%s", msg);
        return -1;
    }
    e = csr_parse(job->csr, job->csr_len, job->csr_format, &job->w->pd->csr_policy, cn,
                  &job->csr_req, msg, sizeof(msg));

    if (e != CSR_OK) {
        refuse(job, 400, issuance_csr_code(e), "CSR refused: %s", msg);
        return -1;
    }
    /* RFC 7030 section 4.2.2: a re-enrollment keeps the subject of the current certificate. */
    if (job->op == REG_OP_EST_REENROLL &&
        X509_NAME_cmp(job->csr_req->subject, X509_get_subject_name(job->peer)) != 0) {
        refuse(job, 400, 400034, "%s",
               "CSR refused: its subject is not the one of the current certificate");
        return -1;
    }
    if (job->op == REG_OP_EST_REENROLL && !csr_san_matches(job->csr_req, job->peer)) {
        refuse(job, 400, 400034, "%s",
               "CSR refused: its subjectAltName is not the one of the current certificate");
        return -1;
    }
    if (job->op == REG_OP_EST_KEYGEN &&
        issuance_server_key(job->csr_req, &job->server_key, msg, sizeof(msg)) != 0) {
        refuse(job, 500, 500001, "%s", msg);
        return -1;
    }
    return 0;
}

/* The decision of a registration: the device goes to ep (valid during the call), with what the
 * webhook added (NULL when there was none). Fills job->reg, makes it durable and answers;
 * releases st. */
static void complete(struct reg_state *st, const struct endpoint *ep, json_t *hook_twin,
                     json_t *hook_payload) {
    struct reg_job *job = st->job;
    struct store_registration *r = &job->reg;
    char uuid[UUID_STR_LEN], opid[UUID_STR_LEN], err[160];
    const char *device_id = device_id_of(st, uuid);
    if (!device_id || uuid_v4(opid) != 0) {
        refuse(job, 500, 500001, "%s", "no random UUID could be made");
        goto out;
    }
    json_t *payload = device_payload(st, ep, device_id, hook_twin, hook_payload, err, sizeof(err));
    if (!payload) {
        reg_fail(st, CODE_RENDER, "the device's configuration could not be rendered: %s", err);
        return;
    }
    r->payload = json_dumps(payload, JSON_COMPACT);
    job->reg_payload = payload;
    r->registration_id = strdup(job->regid);
    r->device_id = strdup(device_id);
    r->group_id = st->e.kind == STORE_GROUP ? strdup(st->e.id) : NULL;
    r->assigned_hub = strdup(ep->host);
    r->status = strdup("assigned");
    r->substatus = strdup(substatus_of(st, ep->host));
    r->operation_id = strdup(opid);
    /* This registration honours a pending forced reprovisioning: the store clears the flag. */
    r->reprovision = st->has_prev && st->prev.reprovision;
    if (st->has_prev)
        memcpy(r->created, st->prev.created, sizeof(r->created));
    time_now_dps(r->updated);
    if (!st->has_prev)
        memcpy(r->created, r->updated, sizeof(r->created));
    job->group_attested = st->e.kind == STORE_GROUP;
    if (!r->payload || !r->registration_id || !r->device_id || !r->assigned_hub || !r->status ||
        !r->substatus || !r->operation_id ||
        (was_assigned(st) && !(job->previous_hub = strdup(st->prev.assigned_hub)))) {
        refuse_assigned(job, "out of memory");
        goto out;
    }
    if (job->csr_req && issue(st, r->device_id, err, sizeof(err)) != 0) {
        char reason[sizeof(err) + 40];
        snprintf(reason, sizeof(reason), "the certificate could not be issued: %s", err);
        refuse_assigned(job, reason);
        goto out;
    }
    job->http_status = 200;
    snprintf(job->message, sizeof(job->message), "assigned to %s as %s (%s)%s%s", r->assigned_hub,
             r->device_id, r->substatus, job->issued.nchain ? ", certificate issued, serial " : "",
             job->issued.nchain ? job->issued.rec.serial : "");
    job->commit.write.reg = r;
    job->commit.write.reg_conditional = 1;
    job->commit.write.reg_if_version = st->has_prev ? st->prev.version : 0;
    job->commit.write.cert = job->issued.nchain ? &job->issued.rec : NULL;
    job->commit.write.attested_by = job->attested_by[0] ? job->attested_by : NULL;
    finish(job, 1);
out:
    reg_state_free(st);
}

/* The endpoints the enrollment's devices may go to, as shallow copies of the cached ones in a
 * new array *out (NULL when there are none): for static the one it names; otherwise those of
 * iotHubs, else its iotHubHostName, else (when it names none) every endpoint. A named endpoint
 * that no longer exists is left out. Returns 0, or -1 when out of memory. */
static int candidates(const struct enrollment *e, enum alloc_policy policy,
                      const struct doc_cache *dc, struct endpoint **out, size_t *n) {
    const char *const *names = (const char *const *)e->iot_hubs;
    size_t nnames = e->n_iot_hubs;
    if (policy == ALLOC_STATIC || nnames == 0) {
        names = e->iot_hub_host_name ? &e->iot_hub_host_name : names;
        nnames = e->iot_hub_host_name ? 1 : nnames;
    }
    *n = 0;
    *out = NULL;
    if (nnames == 0) {
        if (dc->n > 0 && !(*out = malloc(dc->n * sizeof(**out))))
            return -1;
        if (dc->n > 0)
            memcpy(*out, dc->items, dc->n * sizeof(**out));
        *n = dc->n;
        return 0;
    }
    if (!(*out = calloc(nnames, sizeof(**out))))
        return -1;
    for (size_t i = 0; i < nnames; i++) {
        const struct endpoint *ep = cache_find(dc, names[i]);
        if (ep)
            (*out)[(*n)++] = *ep;
    }
    return 0;
}

/* The region a geoLatency allocation prefers: the one the device reports in its payload
 * ("region", when not empty), else the one of this listener (the region setting). */
static const char *device_region(const struct reg_job *job) {
    const char *r = json_string_value(json_object_get(job->payload, "region"));
    return r && *r ? r : job->w->pd->cfg.region;
}

/* The custom allocation webhook has answered, or failed: the registration goes on (or fails)
 * on the worker's event loop. */
static void webhook_done(const struct http_client_result *res, void *arg) {
    struct reg_state *st = arg;
    struct worker *w = st->job->w;
    json_t *twin = NULL, *payload = NULL;
    char err[160];
    long i = -1;
    if (res->timed_out)
        reg_fail(st, CUSTOM_ALLOC_TIMEOUT, "the custom allocation webhook did not answer in time");
    else if (res->too_large)
        reg_fail(st, CUSTOM_ALLOC_MALFORMED,
                 "the custom allocation webhook's answer is over %d bytes",
                 CUSTOM_ALLOC_ANSWER_MAX);
    else if (res->status == 0)
        reg_fail(st, CUSTOM_ALLOC_FAILED, "the custom allocation webhook failed: %.100s",
                 res->error ? res->error : "no answer");
    else if (res->status < 200 || res->status > 299)
        reg_fail(st, CUSTOM_ALLOC_FAILED, "the custom allocation webhook answered HTTP %ld",
                 res->status);
    else if ((i = custom_alloc_answer(res->body, res->body_len, (const char *const *)st->linked,
                                      st->nlinked, &twin, &payload, err, sizeof(err))) < 0)
        reg_fail(st, CUSTOM_ALLOC_MALFORMED, "%s", err);
    if (i >= 0) {
        struct doc_cache *dc = cache_of(w, STORE_ENDPOINT);
        const struct endpoint *ep = dc ? cache_find(dc, st->linked[i]) : NULL;
        if (!dc) {
            refuse(st->job, 500, 500001, "%s", "the store could not be read");
            reg_state_free(st);
        } else if (!ep || !ep->enabled) {
            reg_fail(st, CODE_NO_ENDPOINT,
                     "the endpoint %s the webhook chose is no longer available", st->linked[i]);
        } else {
            complete(st, ep, twin, payload);
        }
    }
    json_decref(twin);
    json_decref(payload);
    /* The registration has been handed to the committer (or answered) by now, so the worker
     * cannot take this for the end of its last request; but a stopping worker that waited only
     * for this webhook may leave now. */
    atomic_fetch_sub(&w->inflight, 1);
    worker_maybe_exit(w);
}

/* Asks the enrollment's webhook to choose among the enabled endpoints of cand; the registration
 * goes on in webhook_done. */
static void ask_webhook(struct reg_state *st, const struct endpoint *cand, size_t n) {
    struct reg_job *job = st->job;
    struct worker *w = job->w;
    const struct provd_config *cfg = &w->pd->cfg;
    struct pipeline_worker *pw = worker_state(w);
    char *body = NULL, *secret = NULL;
    json_t *req = NULL;
    if (!(st->linked = calloc(n + 1, sizeof(char *))))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (cand[i].enabled && !(st->linked[st->nlinked++] = strdup(cand[i].host)))
            goto oom;
    }
    if (st->nlinked == 0) {
        reg_fail(st, CODE_NO_ENDPOINT, "no enabled endpoint is available for this device");
        return;
    }
    const struct custom_alloc_device dev = {
        .registration_id = job->regid,
        .current_hub = was_assigned(st) ? st->prev.assigned_hub : NULL,
        .current_device_id = was_assigned(st) ? st->prev.device_id : NULL,
        .payload = job->payload,
        .x509 = job->x509 != NULL,
    };
    if (!(req = custom_alloc_request(&st->e, &dev, (const char *const *)st->linked, st->nlinked)) ||
        !(body = json_dumps(req, JSON_COMPACT)) ||
        (cfg->allocation_secret &&
         asprintf(&secret, "X-Provd-Allocation-Secret: %s", cfg->allocation_secret) < 0))
        goto oom;
    if (!pw->http && !(pw->http = http_client_new(w->base, cfg->allocation_ca_file))) {
        refuse(job, 500, 500001, "%s", "the HTTP client could not be set up");
        reg_state_free(st);
        goto out;
    }
    const char *headers[] = {secret, NULL};
    long timeout = st->e.webhook_timeout_ms ? st->e.webhook_timeout_ms : cfg->allocation_timeout_ms;
    atomic_fetch_add(&w->inflight, 1);
    if (http_client_post(pw->http, st->e.webhook_url, body, headers, timeout,
                         CUSTOM_ALLOC_ANSWER_MAX, webhook_done, st) != 0) {
        atomic_fetch_sub(&w->inflight, 1);
        reg_fail(st, CUSTOM_ALLOC_FAILED, "the custom allocation webhook could not be called");
    }
    goto out;
oom:
    refuse(job, 500, 500001, "%s", "out of memory");
    reg_state_free(st);
out:
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    free(body);
    json_decref(req);
}

/* Chooses the device's endpoint by the enrollment's allocation policy. */
static void allocate(struct reg_state *st, const struct doc_cache *dc) {
    enum alloc_policy policy = ALLOC_HASHED;
    struct endpoint *cand = NULL;
    size_t n = 0;
    if (alloc_policy_parse(st->e.allocation_policy, &policy) != 0)
        log_warn("enrollment %s: unknown allocation policy, hashed is used", st->e.id);
    if (candidates(&st->e, policy, dc, &cand, &n) != 0) {
        refuse(st->job, 500, 500001, "%s", "out of memory");
        reg_state_free(st);
    } else if (policy == ALLOC_CUSTOM) {
        ask_webhook(st, cand, n);
    } else {
        long i = alloc_choose(policy, st->job->regid, cand, n, device_region(st->job));
        if (i < 0)
            reg_fail(st, CODE_NO_ENDPOINT, "no enabled endpoint is available for this device");
        else
            complete(st, &cand[i], NULL, NULL);
    }
    free(cand);
}

/* A device registers: e is its enrollment (valid during the call), prev its previous
 * registration or NULL (taken over). */
static void do_register(struct reg_job *job, const struct enrollment *e,
                        struct store_registration *prev) {
    struct reg_state *st = calloc(1, sizeof(*st));
    if (!st || enrollment_copy(e, &st->e) != 0) {
        free(st);
        refuse(job, 500, 500001, "%s", "out of memory");
        return;
    }
    st->job = job;
    if (prev) {
        st->prev = *prev;
        memset(prev, 0, sizeof(*prev));
        st->has_prev = 1;
    }
    if (!st->e.enabled) {
        reg_fail(st, 403001,
                 e->kind == STORE_GROUP ? "enrollment group is disabled"
                                        : "enrollment is disabled");
        return;
    }
    struct doc_cache *dc = cache_of(job->w, STORE_ENDPOINT);
    if (!dc) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        reg_state_free(st);
        return;
    }
    /* A device the policy keeps where it is stays there, whatever became of the enrollment's
     * endpoints, unless an operator asked for it to be reprovisioned. */
    if (was_assigned(st) && !st->prev.reprovision && !st->e.reprovision_update_hub) {
        const struct endpoint *ep = cache_find(dc, st->prev.assigned_hub);
        if (ep)
            complete(st, ep, NULL, NULL);
        else
            reg_fail(st, CODE_NO_ENDPOINT,
                     "endpoint %s of this device no longer exists and its reprovisioning policy"
                     " keeps devices where they are",
                     st->prev.assigned_hub);
        return;
    }
    allocate(st, dc);
}

/* Polls and status look-ups answer the stored state of the device. */
static void do_lookup(struct reg_job *job, struct store_registration *prev) {
    if (!prev || (job->op == REG_OP_OPERATION &&
                  (!prev->operation_id || strcmp(prev->operation_id, job->operation_id) != 0))) {
        refuse(job, 404, 404004, "%s",
               job->op == REG_OP_OPERATION ? "no such operation" : "device is not registered");
        return;
    }
    job->reg = *prev;
    memset(prev, 0, sizeof(*prev));
    job->group_attested = job->reg.group_id != NULL;
    job->http_status = 200;
    snprintf(job->message, sizeof(job->message), "%s", "state answered");
    finish(job, 1);
}

/* Whether the device, attested by e, may register or look up its registration prev (NULL: it
 * has none). A registration stays with the enrollment group it was made under while that group
 * exists: another group's key or CA does not take the device over (an operator deletes the
 * registration to move it), and look-ups are answered only through the enrollment that made
 * it. An individual enrollment, made for this very device, takes over from a group. The devices
 * of a disabled enrollment cannot look up their state. Returns 0, or -1 after refusing. */
static int check_binding(struct reg_job *job, const struct enrollment *e,
                         const struct store_registration *prev) {
    int registers = reg_op_registers(job->op);

    if (!registers && !e->enabled) {
        refuse(job, 403, 403001, "%s",
               e->kind == STORE_GROUP ? "enrollment group is disabled" : "enrollment is disabled");
        return -1;
    }
    if (!prev || e->kind != STORE_GROUP || (prev->group_id && strcmp(prev->group_id, e->id) == 0))
        return 0;
    if (registers) {
        /* Registered through an individual enrollment that no longer exists, or through a
         * group that was deleted: nothing holds the device any more. (The store is asked rather
         * than the worker's copy of the groups, whose reload would free e.) */
        struct store_doc doc = {0};
        int got = prev->group_id ? store_doc_get(job->w->conn, STORE_GROUP, prev->group_id, &doc)
                                 : STORE_NOT_FOUND;
        store_doc_clear(&doc);
        if (got == STORE_NOT_FOUND)
            return 0;
        if (got != STORE_OK) {
            refuse(job, 500, 500001, "%s", "the store could not be read");
            return -1;
        }
    }
    refuse(job, 403, 403004, "%s is registered under another enrollment%s", job->regid,
           registers ? ": an operator must delete that registration before this enrollment group"
                       " can take the device over"
                     : "");
    return -1;
}

void pipeline_run(struct reg_job *job) {
    struct enrollment indiv;
    memset(&indiv, 0, sizeof(indiv));
    const struct enrollment *e = NULL;
    struct store_registration prev = {0};
    int got = store_reg_get(job->w->conn, job->regid, &prev);
    if (got != STORE_OK && got != STORE_NOT_FOUND) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        goto out;
    }
    if (authenticate(job, got == STORE_OK ? prev.group_id : NULL, &indiv, &e) != 0)
        goto out;
    if (check_binding(job, e, got == STORE_OK ? &prev : NULL) != 0)
        goto out;
    /* A disabled enrollment's devices get its answer whatever they send. */
    if (reg_op_registers(job->op) && job->csr && e->enabled && check_csr(job) != 0)
        goto out;
    if (reg_op_registers(job->op))
        do_register(job, e, got == STORE_OK ? &prev : NULL);
    else
        do_lookup(job, got == STORE_OK ? &prev : NULL);
out:
    store_registration_clear(&prev);
    enrollment_clear(&indiv);
}
