/* The registration pipeline. See pipeline.h for its place in provd. */
#include "pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "enrollment.h"
#include "hmac.h"
#include "log.h"
#include "provd.h"
#include "sas.h"
#include "timefmt.h"

/* How long a worker trusts its copy of the enrollment groups when nothing in this process
 * changed them: other provd nodes sharing the store may have. */
#define GROUP_CACHE_TTL_US (2 * 1000 * 1000)
#define GROUP_PAGE         256

/* The enrollment groups as one worker last read them, parsed once for every device that
 * authenticates with a group-derived key. */
struct group_cache {
    uint64_t gen;
    uint64_t loaded_us;
    struct enrollment *groups;
    size_t n;
};

static void cache_clear(struct group_cache *gc) {
    for (size_t i = 0; i < gc->n; i++)
        enrollment_clear(&gc->groups[i]);
    free(gc->groups);
    gc->groups = NULL;
    gc->n = 0;
}

void pipeline_worker_free(struct worker *w) {
    struct group_cache *gc = w->group_cache;
    if (gc) {
        cache_clear(gc);
        free(gc);
        w->group_cache = NULL;
    }
}

static int cache_reload(struct worker *w, struct group_cache *gc, uint64_t gen, uint64_t now) {
    struct enrollment *all = NULL;
    size_t n = 0, cap = 0;
    char *after = NULL;
    int rc = -1;
    for (;;) {
        struct store_doc *docs = NULL;
        size_t got = 0;
        if (store_doc_list(w->conn, STORE_GROUP, after, GROUP_PAGE, &docs, &got) != STORE_OK)
            goto out;
        for (size_t i = 0; i < got; i++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                struct enrollment *grown = realloc(all, cap * sizeof(*all));
                if (!grown) {
                    store_docs_free(docs, got);
                    goto out;
                }
                all = grown;
            }
            if (enrollment_parse(STORE_GROUP, &docs[i], &all[n]) == 0)
                n++;
        }
        free(after);
        after = got ? strdup(docs[got - 1].id) : NULL;
        store_docs_free(docs, got);
        if (got < GROUP_PAGE)
            break;
    }
    cache_clear(gc);
    gc->groups = all;
    gc->n = n;
    gc->gen = gen;
    gc->loaded_us = now;
    all = NULL;
    n = 0;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        enrollment_clear(&all[i]);
    free(all);
    free(after);
    return rc;
}

static struct group_cache *groups_of(struct worker *w) {
    struct group_cache *gc = w->group_cache;
    if (!gc && !(gc = w->group_cache = calloc(1, sizeof(*gc))))
        return NULL;
    uint64_t gen = atomic_load(&w->pd->groups_gen), now = time_mono_us();
    if (gc->loaded_us == 0 || gc->gen != gen || now - gc->loaded_us > GROUP_CACHE_TTL_US) {
        if (cache_reload(w, gc, gen, now) != 0)
            return NULL;
    }
    return gc;
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

void reg_job_free(struct reg_job *job) {
    if (!job)
        return;
    free(job->authorization);
    json_decref(job->payload);
    free(job->operation_id);
    store_registration_clear(&job->reg);
    free(job->audit.event);
    free(job->audit.subject);
    free(job->audit.outcome);
    free(job->audit.reason);
    free(job->audit.remote);
    free(job->audit.tracking);
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
    }
    return "device.unknown";
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* The committer is done with the job: answer, unless the write failed. */
static void committed(struct commit_job *cj) {
    struct reg_job *job = (struct reg_job *)(void *)cj;
    if (cj->rc != STORE_OK) {
        job->http_status = 500;
        job->error_code = 500001;
        snprintf(job->message, sizeof(job->message), "the decision could not be stored");
    }
    job->reply(job);
}

/* Every decision ends here: its audit record (and the registration, when one was written)
 * becomes durable in the next group commit, and only then does the front end answer. */
static void finish(struct reg_job *job, int accepted) {
    struct store_audit *a = &job->audit;
    /* Once the worker has begun to stop, nothing new reaches the committer, so the worker can
     * leave as soon as what it already handed over is answered. Nothing was decided durably:
     * the device is told to come back. */
    if (job->w->stopping) {
        job->http_status = 503;
        job->error_code = 503001;
        snprintf(job->message, sizeof(job->message), "the server is shutting down");
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
    log_info("%s subject=%s outcome=%s status=%d code=%d tracking=%s remote=%s reason=\"%s\"",
             a->event, job->regid, a->outcome, job->http_status, job->error_code, job->tracking,
             job->remote, job->message);
    job->commit.w = job->w;
    job->commit.write.audit = a;
    job->commit.done = committed;
    committer_submit(job->w->pd->committer, &job->commit);
}

static void refuse(struct reg_job *job, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(struct reg_job *job, int status, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    job->http_status = status;
    job->error_code = code;
    vsnprintf(job->message, sizeof(job->message), fmt, ap);
    va_end(ap);
    finish(job, 0);
}

void pipeline_refuse(struct reg_job *job, int status, int code, const char *message) {
    refuse(job, status, code, "%s", message);
}

/* A stable choice among n endpoints for a registration ID (FNV-1a). */
static size_t hub_index(const char *regid, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)regid; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % n);
}

static const char *allocate_hub(const struct enrollment *e, const char *regid) {
    if (e->iot_hub_host_name)
        return e->iot_hub_host_name;
    if (e->n_iot_hubs > 0)
        return e->iot_hubs[hub_index(regid, e->n_iot_hubs)];
    return NULL;
}

/* Finds the group whose derived key signed the token. Returns its index or -1. */
static long match_group(struct reg_job *job, const struct sas_token *tok,
                        const struct group_cache *gc) {
    for (size_t i = 0; i < gc->n; i++) {
        const struct enrollment *g = &gc->groups[i];
        char *keys[2] = {NULL, NULL};
        keys[0] = derive_device_key(g->primary_key, job->regid, NULL);
        if (g->secondary_key)
            keys[1] = derive_device_key(g->secondary_key, job->regid, NULL);
        enum sas_result r = sas_verify_sig(tok, (const char *const *)keys, 2, NULL);
        for (int k = 0; k < 2; k++) {
            if (keys[k]) {
                OPENSSL_cleanse(keys[k], strlen(keys[k]));
                free(keys[k]);
            }
        }
        if (r == SAS_OK)
            return (long)i;
    }
    return -1;
}

/* Authenticates the device. On success points *out at its enrollment and returns 0: the
 * individual enrollment (parsed into *e, which the caller clears), or else the cached group whose
 * key signed the token (valid until the worker next reloads its cache). Otherwise refuses and
 * returns -1. */
static int authenticate(struct reg_job *job, struct enrollment *e, const struct enrollment **out) {
    struct worker *w = job->w;
    const struct provd_config *cfg = &w->pd->cfg;
    struct sas_token tok;
    const char *why = NULL;
    struct store_doc doc = {0};
    int rc = -1;

    if (!job->authorization) {
        refuse(job, 401, 401002, "%s", "missing SAS token");
        return -1;
    }
    if (sas_parse(job->authorization, &tok, &why) != SAS_OK) {
        refuse(job, 401, 401002, "malformed SAS token: %s", why);
        return -1;
    }
    enum sas_result r = sas_check_resource(&tok, cfg->id_scope, job->regid);
    if (r == SAS_OK)
        r = sas_check_expiry(&tok, time_now_unix(), cfg->sas_max_lifetime_s);
    if (r != SAS_OK) {
        refuse(job, 401, 401002, "SAS token refused: %s", sas_result_str(r));
        goto out;
    }

    int got = store_doc_get(w->conn, STORE_ENROLLMENT, job->regid, &doc);
    if (got == STORE_OK) {
        if (enrollment_parse(STORE_ENROLLMENT, &doc, e) != 0) {
            refuse(job, 500, 500001, "%s", "stored enrollment is unreadable");
            goto out;
        }
        const char *keys[2] = {e->primary_key, e->secondary_key};
        if (sas_verify_sig(&tok, keys, 2, NULL) != SAS_OK) {
            refuse(job, 401, 401002, "SAS token refused: %s", sas_result_str(SAS_BAD_SIGNATURE));
            goto out;
        }
        *out = e;
        rc = 0;
        goto out;
    }
    if (got != STORE_NOT_FOUND) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        goto out;
    }
    struct group_cache *gc = groups_of(w);
    if (!gc) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        goto out;
    }
    long gi = match_group(job, &tok, gc);
    if (gi < 0) {
        refuse(job, 401, 401002, "%s",
               "SAS token refused: no enrollment or enrollment group key signed it");
        goto out;
    }
    *out = &gc->groups[gi];
    rc = 0;
out:
    store_doc_clear(&doc);
    sas_token_free(&tok);
    return rc;
}

/* Fills job->reg with the assignment of a registering device, keeping what must stay stable
 * from its previous registration (device ID, creation time, and the endpoint when the
 * reprovisioning policy says so). */
static int assign(struct reg_job *job, const struct enrollment *e,
                  const struct store_registration *prev) {
    struct store_registration *r = &job->reg;
    char uuid[UUID_STR_LEN];
    const char *device_id = job->regid;
    if (e->device_id && strcmp(e->device_id, "auto") == 0) {
        if (prev && prev->device_id)
            device_id = prev->device_id;
        else if (uuid_v4(uuid) == 0)
            device_id = uuid;
        else
            return -1;
    } else if (e->device_id) {
        device_id = e->device_id;
    }
    const char *hub = allocate_hub(e, job->regid);
    const char *substatus = "initialAssignment";
    if (prev && prev->assigned_hub && strcmp(prev->status, "assigned") == 0) {
        substatus = prev->substatus ? prev->substatus : "initialAssignment";
        if (!e->reprovision_update_hub)
            hub = prev->assigned_hub;
        else if (hub && strcmp(hub, prev->assigned_hub) != 0)
            substatus = e->reprovision_migrate_data ? "deviceDataMigrated" : "deviceDataReset";
    }
    char opid[UUID_STR_LEN];
    if (uuid_v4(opid) != 0)
        return -1;
    r->registration_id = strdup(job->regid);
    r->device_id = strdup(device_id);
    r->group_id = e->kind == STORE_GROUP ? strdup(e->id) : NULL;
    r->assigned_hub = dup_or_null(hub);
    r->status = strdup("assigned");
    r->substatus = strdup(substatus);
    r->operation_id = strdup(opid);
    r->payload = e->initial_twin ? json_dumps(e->initial_twin, JSON_COMPACT) : NULL;
    if (prev)
        memcpy(r->created, prev->created, sizeof(r->created));
    time_now_dps(r->updated);
    if (!prev)
        memcpy(r->created, r->updated, sizeof(r->created));
    job->group_attested = e->kind == STORE_GROUP;
    return r->registration_id && r->device_id && r->status && r->substatus && r->operation_id ? 0
                                                                                              : -1;
}

/* A registration that cannot be assigned is answered 200 with status "failed" and the reason
 * in the registration state: the DPS device SDKs only understand assigning, assigned and
 * failed. Nothing is written but the audit record. */
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
    refuse(job, 200, code, "%s", message);
}

static void do_register(struct reg_job *job, const struct enrollment *e,
                        const struct store_registration *prev) {
    if (!e->enabled) {
        fail_registration(job, e, 403001,
                          e->kind == STORE_GROUP ? "enrollment group is disabled"
                                                 : "enrollment is disabled");
        return;
    }
    if (!allocate_hub(e, job->regid) &&
        !(prev && prev->assigned_hub && !e->reprovision_update_hub)) {
        fail_registration(job, e, 400008,
                          "the enrollment names no endpoint (iotHubHostName or iotHubs)");
        return;
    }
    if (assign(job, e, prev) != 0) {
        refuse(job, 500, 500001, "%s", "out of memory");
        return;
    }
    job->http_status = 200;
    snprintf(job->message, sizeof(job->message), "assigned to %s as %s (%s)", job->reg.assigned_hub,
             job->reg.device_id, job->reg.substatus);
    job->commit.write.reg = &job->reg;
    finish(job, 1);
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

void pipeline_run(struct reg_job *job) {
    struct enrollment indiv;
    memset(&indiv, 0, sizeof(indiv));
    const struct enrollment *e = NULL;
    struct store_registration prev = {0};
    if (authenticate(job, &indiv, &e) != 0)
        goto out;
    int got = store_reg_get(job->w->conn, job->regid, &prev);
    if (got != STORE_OK && got != STORE_NOT_FOUND) {
        refuse(job, 500, 500001, "%s", "the store could not be read");
        goto out;
    }
    if (job->op == REG_OP_REGISTER)
        do_register(job, e, got == STORE_OK ? &prev : NULL);
    else
        do_lookup(job, got == STORE_OK ? &prev : NULL);
out:
    store_registration_clear(&prev);
    enrollment_clear(&indiv);
}
