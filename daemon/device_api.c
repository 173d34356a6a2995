/* The DPS-compatible device front end (docs/device-api.md): turns HTTP requests into
 * registration jobs for the pipeline and the pipeline's outcomes into DPS answers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "crl.h"
#include "est.h"
#include "http.h"
#include "log.h"
#include "pipeline.h"
#include "provd.h"
#include "regid.h"
#include "registration.h"

/* api-version: the dates DPS clients send, and any later date (YYYY-MM-DD, month 01 to 12, day
 * 01 to 31), optionally with "-preview". */
static int api_version_ok(const char *v) {
    if (!v || strlen(v) < 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        int want_dash = i == 4 || i == 7;
        if (want_dash ? v[i] != '-' : !isdigit((unsigned char)v[i]))
            return 0;
    }
    int month = (v[5] - '0') * 10 + v[6] - '0', day = (v[8] - '0') * 10 + v[9] - '0';
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return 0;
    if (v[10] != '\0' && strcmp(v + 10, "-preview") != 0)
        return 0;
    return strncmp(v, "2019-03-31", 10) >= 0;
}

/* The registration state with what the device API adds: the attesting group and the payload. */
static json_t *state_json(const struct reg_job *job) {
    const struct store_registration *r = &job->reg;
    json_t *s = registration_view(r);
    if (!s)
        return NULL;
    if (job->x509)
        json_object_set(s, "x509", job->x509);
    else if (job->group_attested && r->group_id)
        json_object_set_new(s, "symmetricKey",
                            json_pack("{s:s}", "enrollmentGroupId", r->group_id));
    if (job->reg_payload) {
        json_object_set(s, "payload", job->reg_payload);
    } else if (r->payload) {
        json_t *p = json_loads(r->payload, 0, NULL);
        if (p)
            json_object_set_new(s, "payload", p);
    }
    if (job->issued.nchain > 0) {
        json_t *chain = json_array();
        /* Base64 is ASCII: no UTF-8 check of the 2-3 KB. */
        for (size_t i = 0; chain && i < job->issued.nchain; i++)
            json_array_append_new(chain, json_string_nocheck(job->issued.chain[i]));
        json_object_set_new(s, "issuedCertificateChain", chain);
    }
    return s;
}

/* The pipeline's outcome, as DPS clients expect it. */
static void reply(struct reg_job *job) {
    struct evhttp_request *req = job->ctx;
    if (job->http_status != 200) {
        http_reply_error(req, job->http_status, job->error_code, job->tracking,
                         reg_job_answer(job));
    } else if (job->op == REG_OP_STATUS) {
        http_reply_json(req, 200, state_json(job));
    } else {
        json_t *body = json_object();
        json_object_set_new(body, "operationId", json_string(job->reg.operation_id));
        json_object_set_new(body, "status", json_string(job->reg.status));
        json_object_set_new(body, "registrationState", state_json(job));
        http_reply_json(req, 200, body);
    }
    reg_job_free(job);
}

/* Refuses with an audit record when the request names a device, else answers directly. */
static void refuse(struct reg_job *job, int status, int code, const char *message) {
    if (job->regid[0]) {
        pipeline_refuse(job, status, code, message);
        return;
    }
    http_reply_error(job->ctx, status, code, job->tracking, message);
    reg_job_free(job);
}

/* Reads the register body: a JSON object whose registrationId (when present) is the path's and
 * whose payload is kept for the pipeline. Refuses and returns -1 otherwise. */
static int read_register_body(struct reg_job *job, struct evhttp_request *req, size_t max) {
    size_t len = 0;
    int too_big = 0;
    char err[256];
    if (http_is_json(req) != 0) {
        refuse(job, 415, 415001, "Content-Type must be application/json");
        return -1;
    }
    char *body = http_body(req, max, &len, &too_big);
    if (too_big) {
        refuse(job, 413, 413001, "request body is larger than the configured limit");
        return -1;
    }
    json_t *doc = body ? http_json_parse(body, len, err, sizeof(err)) : NULL;
    free(body);
    if (!doc) {
        refuse(job, 400, 400002, body ? err : "request body is empty");
        return -1;
    }
    int rc = -1;
    json_t *id = json_object_get(doc, "registrationId");
    json_t *csr = json_object_get(doc, "csr");
    if (!json_is_object(doc)) {
        refuse(job, 400, 400002, "request body must be a JSON object");
    } else if (id && !json_is_string(id)) {
        refuse(job, 400, 400002, "registrationId must be a string");
    } else if (id && strcasecmp(json_string_value(id), job->regid) != 0) {
        refuse(job, 400, 400004, "registrationId in the body differs from the one in the path");
    } else if (json_object_get(doc, "tpm")) {
        refuse(job, 400, 400001, "tpm registrations are not supported yet");
    } else if (csr && !json_is_null(csr) && !json_is_string(csr)) {
        refuse(job, 400, 400002, "csr must be a string (base64 of a DER PKCS#10 request)");
    } else if (json_is_string(csr) && !(job->csr = strdup(json_string_value(csr)))) {
        refuse(job, 500, 500001, "out of memory");
    } else {
        job->csr_len = job->csr ? strlen(job->csr) : 0; /* JSON strings hold no NUL here */
        job->csr_format = CSR_FMT_TEXT;
        job->payload = json_incref(json_object_get(doc, "payload"));
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

static void release_crl(const void *data, size_t len, void *blob) {
    (void)data;
    (void)len;
    crl_blob_release(blob);
}

/* The current CRL of the issuing CA, DER (GET /crl) or PEM (GET /crl.pem), served from memory
 * (signed anew first when it is stale: crl_fresh). */
static void serve_crl(struct worker *w, struct evhttp_request *req, int pem) {
    struct crl_blob *b = crl_fresh(w->pd->crl, w->conn);

    if (!b) {
        http_reply_error(req, 503, 503002, NULL,
                         "the current CRL is not available: it could not be signed (try again)");
        return;
    }
    http_set_header(req, "Cache-Control", "max-age=60");
    if (pem)
        http_reply_ref(req, "application/x-pem-file", b->pem, b->pem_len, release_crl, b);
    else
        http_reply_ref(req, "application/pkix-crl", b->der, b->der_len, release_crl, b);
}

static void discard_body(struct evhttp_request *req) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* 405 / 405001 with the methods the path takes. */
static void not_allowed(struct evhttp_request *req, const char *allow) {
    http_set_header(req, "Allow", allow);
    http_reply_error(req, 405, 405001, NULL, "method not allowed on this path");
}

void device_api_handle(struct evhttp_request *req, void *arg) {
    struct worker *w = arg;
    const struct provd_config *cfg = &w->pd->cfg;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct http_path p;
    struct reg_job *job = NULL;
    char *version = NULL;
    const char *why = NULL;

    int parsed = http_path_parse(req, &p);
    if (parsed == HTTP_BAD_PATH) {
        http_reply_error(req, 400, 400001, NULL, "malformed request path");
        return;
    }
    /* EST answers in its own form, a malformed query string included. */
    if (p.nseg >= 2 && http_seg_is(&p, 0, EST_SEG0) && http_seg_is(&p, 1, EST_SEG1)) {
        est_handle(w, req, &p, parsed == HTTP_BAD_QUERY);
        goto out;
    }
    if (parsed == HTTP_BAD_QUERY) {
        http_reply_error(req, 400, 400001, NULL,
                         "malformed query string: name=value pairs expected");
        goto out;
    }
    int get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
    if (p.nseg == 1 && http_seg_is(&p, 0, "healthz")) {
        if (!get)
            not_allowed(req, "GET, HEAD");
        else
            http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
        goto out;
    }
    if (p.nseg == 1 && (http_seg_is(&p, 0, "crl") || http_seg_is(&p, 0, "crl.pem"))) {
        if (!get)
            not_allowed(req, "GET, HEAD");
        else
            serve_crl(w, req, http_seg_is(&p, 0, "crl.pem"));
        goto out;
    }
    /* The registration paths, each with its one method. */
    enum reg_op op;
    enum evhttp_cmd_type want;
    const char *allow;
    if (p.nseg == 4 && http_seg_is(&p, 3, "register"))
        op = REG_OP_REGISTER, want = EVHTTP_REQ_PUT, allow = "PUT";
    else if (p.nseg == 5 && http_seg_is(&p, 3, "operations"))
        op = REG_OP_OPERATION, want = EVHTTP_REQ_GET, allow = "GET";
    else if (p.nseg == 3)
        op = REG_OP_STATUS, want = EVHTTP_REQ_POST, allow = "POST";
    else {
        http_reply_error(req, 404, 404005, NULL, "no such path");
        goto out;
    }
    if (!http_seg_is(&p, 1, "registrations")) {
        http_reply_error(req, 404, 404005, NULL, "no such path");
        goto out;
    }
    if (method != want) {
        not_allowed(req, allow);
        goto out;
    }
    if (!(job = reg_job_new(w, op))) {
        http_reply_error(req, 500, 500001, NULL, "out of memory");
        goto out;
    }
    job->ctx = req;
    job->reply = reply;
    http_remote(req, job->remote, sizeof(job->remote));

    /* The registration ID is checked before anything else, so that a refusal can name it. */
    const char *regid = p.seg[2];
    if (regid_check(regid, &why) != 0) {
        /* Named in the audit record and the log as far as it is printable ASCII: what a
         * client sends is not trusted to be text. */
        size_t i;
        for (i = 0; regid[i] && i < REGID_MAX; i++)
            job->regid[i] = regid[i] >= 0x20 && regid[i] < 0x7f ? regid[i] : '?';
        job->regid[i] = '\0';
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid registration ID: %s", why);
        refuse(job, 400, 400003, msg);
        goto out;
    }
    snprintf(job->regid, sizeof(job->regid), "%s", regid);
    regid_lower(job->regid);

    version = http_query_get(&p, "api-version");
    if (!api_version_ok(version)) {
        refuse(job, 400, 400005, "missing or unsupported api-version");
        goto out;
    }
    if (strcasecmp(p.seg[0], cfg->id_scope) != 0) {
        refuse(job, 404, 404001, "unknown ID scope");
        goto out;
    }
    if (op == REG_OP_REGISTER) {
        if (read_register_body(job, req, cfg->max_body_bytes) != 0)
            goto out;
    } else {
        /* Some clients send "{}" with the polling GET; it is read and ignored. */
        discard_body(req);
    }
    if (op == REG_OP_OPERATION)
        job->operation_id = strdup(p.seg[4]);
    const char *auth = http_header(req, "Authorization");
    job->authorization = auth ? strdup(auth) : NULL;
    job->peer = http_peer_cert(req, &job->peer_chain);
    pipeline_run(job);
out:
    free(version);
    http_path_clear(&p);
}
