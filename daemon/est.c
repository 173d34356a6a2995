/* The EST front end. See est.h and docs/est.md. */
#include "est.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "base64.h"
#include "ca.h"
#include "certinfo.h"
#include "log.h"
#include "pipeline.h"
#include "provd.h"
#include "regid.h"

#define CT_TEXT   "text/plain; charset=utf-8"
#define CT_PKCS7  "application/pkcs7-mime"
#define CT_CERTS  "application/pkcs7-mime; smime-type=certs-only"
#define CT_PKCS10 "application/pkcs10"
#define REALM     "Basic realm=\"provd EST\", charset=\"UTF-8\""

/* The operations under /.well-known/est/[{label}/]. */
struct est_op {
    const char *name;
    enum evhttp_cmd_type method;
    enum reg_op op; /* for the enrollments (POST) */
};

static const struct est_op ops[] = {
    {"cacerts", EVHTTP_REQ_GET, REG_OP_STATUS},
    {"csrattrs", EVHTTP_REQ_GET, REG_OP_STATUS},
    {"simpleenroll", EVHTTP_REQ_POST, REG_OP_EST_ENROLL},
    {"simplereenroll", EVHTTP_REQ_POST, REG_OP_EST_REENROLL},
    {"serverkeygen", EVHTTP_REQ_POST, REG_OP_EST_KEYGEN},
};

int est_basic_parse(const char *header, char *user, size_t size, char **password) {
    unsigned char *dec = NULL;
    size_t len = 0;
    int rc = -1;

    *password = NULL;
    if (!header || strncasecmp(header, "Basic", 5) != 0 || (header[5] != ' ' && header[5] != '\t'))
        return -1;
    const char *b = header + 5;
    while (*b == ' ' || *b == '\t')
        b++;
    if (b64_decode(b, strlen(b), &dec, &len, NULL) != 0)
        return -1;
    const unsigned char *colon = memchr(dec, ':', len);
    size_t ulen = colon ? (size_t)(colon - dec) : 0;
    if (!colon || ulen == 0 || ulen >= size)
        goto out;
    for (size_t i = 0; i < len; i++)
        if (dec[i] < 0x20 || dec[i] == 0x7f)
            goto out;
    if (!(*password = strdup((const char *)colon + 1)))
        goto out;
    memcpy(user, dec, ulen);
    user[ulen] = '\0';
    rc = 0;
out:
    b64_free(dec, len);
    return rc;
}

static void wipe_free(const void *data, size_t len, void *arg) {
    (void)arg;
    OPENSSL_clear_free((void *)(uintptr_t)data, len);
}

int est_multipart(struct evbuffer *out, char *key_b64, const char *p7_b64) {
    static const char part[] = "--" EST_BOUNDARY "\r\nContent-Type: %s\r\n"
                               "Content-Transfer-Encoding: base64\r\n\r\n";
    size_t klen = strlen(key_b64);

    /* The key is copied into memory of OpenSSL's allocator so that the wipe-and-free callback
     * matches its allocation whoever made key_b64. */
    char *ref = OPENSSL_malloc(klen + 1);
    if (ref)
        memcpy(ref, key_b64, klen + 1);
    OPENSSL_cleanse(key_b64, klen);
    free(key_b64);
    if (!ref)
        return -1;
    if (evbuffer_add_printf(out, part, "application/pkcs8") < 0 ||
        evbuffer_add_reference(out, ref, klen, wipe_free, NULL) != 0) {
        OPENSSL_clear_free(ref, klen + 1);
        return -1;
    }
    if (evbuffer_add_printf(out, "\r\n") < 0 || evbuffer_add_printf(out, part, CT_CERTS) < 0 ||
        evbuffer_add(out, p7_b64, strlen(p7_b64)) != 0 ||
        evbuffer_add_printf(out, "\r\n--" EST_BOUNDARY "--\r\n") < 0)
        return -1;
    return 0;
}

/* Appends obj (a new ASN1_TYPE holding an OBJECT IDENTIFIER) to sk. Returns 0 or -1. */
static int push_oid(STACK_OF(ASN1_TYPE) * sk, int nid) {
    ASN1_TYPE *t = ASN1_TYPE_new();
    if (!t || !ASN1_TYPE_set1(t, V_ASN1_OBJECT, OBJ_nid2obj(nid)) || !sk_ASN1_TYPE_push(sk, t)) {
        ASN1_TYPE_free(t);
        return -1;
    }
    return 0;
}

/* Appends the attribute ecPublicKey { the allowed curves } to sk (RFC 7030 section 4.5.2's
 * example), as the whole DER of the Attribute in a SEQUENCE-typed ASN1_TYPE. */
static int push_ec_attr(STACK_OF(ASN1_TYPE) * sk, unsigned allow) {
    X509_ATTRIBUTE *attr = NULL;
    ASN1_STRING *s = NULL;
    ASN1_TYPE *t = NULL;
    unsigned char *der = NULL;
    int n, rc = -1;
    static const struct {
        unsigned bit;
        int nid;
    } curves[] = {{CSR_KEY_P256, NID_X9_62_prime256v1}, {CSR_KEY_P384, NID_secp384r1}};

    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (!(allow & curves[i].bit))
            continue;
        if (!attr)
            attr = X509_ATTRIBUTE_create_by_NID(NULL, NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT,
                                                OBJ_nid2obj(curves[i].nid), -1);
        else if (!X509_ATTRIBUTE_set1_data(attr, V_ASN1_OBJECT, OBJ_nid2obj(curves[i].nid), -1))
            goto out;
        if (!attr)
            goto out;
    }
    if ((n = i2d_X509_ATTRIBUTE(attr, &der)) <= 0 || !(s = ASN1_STRING_new()) ||
        !ASN1_STRING_set(s, der, n) || !(t = ASN1_TYPE_new()))
        goto out;
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
    s = NULL;
    if (!sk_ASN1_TYPE_push(sk, t))
        goto out;
    t = NULL;
    rc = 0;
out:
    ASN1_TYPE_free(t);
    ASN1_STRING_free(s);
    OPENSSL_free(der);
    X509_ATTRIBUTE_free(attr);
    return rc;
}

unsigned char *est_csrattrs_der(const struct csr_policy *p, size_t *len) {
    STACK_OF(ASN1_TYPE) *sk = sk_ASN1_TYPE_new_null();
    unsigned char *der = NULL;
    int n = 0;

    if (!sk || ((p->allow & (CSR_KEY_P256 | CSR_KEY_P384)) && push_ec_attr(sk, p->allow) != 0) ||
        ((p->allow & CSR_KEY_RSA) && push_oid(sk, NID_rsaEncryption) != 0) ||
        ((p->allow & CSR_KEY_ED25519) && push_oid(sk, NID_ED25519) != 0) ||
        (n = i2d_ASN1_SEQUENCE_ANY(sk, &der)) <= 0) {
        OPENSSL_free(der);
        der = NULL;
    }
    *len = der ? (size_t)n : 0;
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
    ERR_clear_error();
    return der;
}

/* An error answer: status and a short plain-text reason (no secrets in it). */
static void reply_text(struct evhttp_request *req, int status, const char *reason) {
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    http_set_header(req, "Content-Type", CT_TEXT);
    http_retry_after(req, status);
    evbuffer_add_printf(out, "%s\n", reason);
    http_send(req, status, NULL);
}

/* A base64 body of type ct. Takes b64 (NULL: out of memory, answered 500). */
static void reply_b64(struct evhttp_request *req, const char *ct, char *b64) {
    if (!b64) {
        reply_text(req, 500, "out of memory");
        return;
    }
    http_set_header(req, "Content-Type", ct);
    http_set_header(req, "Content-Transfer-Encoding", "base64");
    evbuffer_add(evhttp_request_get_output_buffer(req), b64, strlen(b64));
    free(b64);
    http_send(req, 200, NULL);
}

/* serverkeygen's answer: the key made for the device and its certificate. */
static void reply_keygen(struct reg_job *job, struct evhttp_request *req) {
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(job->server_key);
    unsigned char *der = NULL;
    char *p7 = ca_pkcs7_b64(job->w->pd->ca, job->issued.cert), *key_b64 = NULL;
    int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
    struct evbuffer *body = evbuffer_new();

    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n > 0)
        key_b64 = b64_encode(der, (size_t)n);
    if (der)
        OPENSSL_clear_free(der, (size_t)n);
    int built = body && p7 && key_b64 && est_multipart(body, key_b64, p7) == 0;
    if (!built && (!body || !p7) && key_b64) {
        OPENSSL_cleanse(key_b64, strlen(key_b64));
        free(key_b64);
    }
    if (!built) {
        log_error("est.serverkeygen subject=%s tracking=%s: the answer could not be built",
                  job->regid, job->tracking);
        reply_text(req, 500, "the answer could not be built");
    } else {
        http_set_header(req, "Content-Type", "multipart/mixed; boundary=" EST_BOUNDARY);
        http_send_secret(req, 200, body);
    }
    evbuffer_free(body);
    free(p7);
}

/* The pipeline's outcome, as EST clients expect it. */
static void reply(struct reg_job *job) {
    struct evhttp_request *req = job->ctx;
    int status = job->http_status;

    if (status == 200 && !job->issued.cert)
        status = 500;
    if (status != 200) {
        if (status == 401 && job->op != REG_OP_EST_REENROLL)
            http_set_header(req, "WWW-Authenticate", REALM);
        reply_text(req, status,
                   job->message[0] ? reg_job_answer(job) : "no certificate was issued");
    } else if (job->op == REG_OP_EST_KEYGEN) {
        reply_keygen(job, req);
    } else {
        reply_b64(req, CT_CERTS, ca_pkcs7_b64(job->w->pd->ca, job->issued.cert));
    }
    reg_job_free(job);
}

/* Whether the request's Content-Type is application/pkcs10 (parameters allowed). */
static int is_pkcs10(struct evhttp_request *req) {
    const char *ct = http_header(req, "Content-Type");
    size_t n = sizeof(CT_PKCS10) - 1;
    return ct && strncasecmp(ct, CT_PKCS10, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* The registration ID a client certificate names: the one provd issued it to, when it is one
 * of provd's (the store has a certificate of its serial and SHA-256 thumbprint; its CN is the
 * device ID, which may differ), else its CN. The pipeline then decides whether the certificate
 * attests that device. Returns 0, or -1 when it names none. */
static int peer_regid(struct reg_job *job, char *id, size_t size) {
    char serial[CERTINFO_SERIAL_MAX], thumb[CERTINFO_THUMB_LEN];
    struct store_cert rec = {0};
    int rc = -1;

    if (certinfo_serial(job->peer, serial) == 0 && certinfo_thumbprint(job->peer, thumb) == 0 &&
        store_cert_get(job->w->conn, serial, &rec) == STORE_OK &&
        strcmp(rec.thumbprint, thumb) == 0 && strlen(rec.registration_id) < size) {
        snprintf(id, size, "%s", rec.registration_id);
        rc = 0;
    }
    store_cert_clear(&rec);
    return rc == 0 ? 0 : certinfo_cn(job->peer, id, size);
}

/* Takes the device's credentials: HTTP Basic (registration ID and key) when sent, else the
 * registration ID the client certificate names (peer_regid). Writes the reason of a refusal
 * into why (whylen bytes) and returns -1 when the device named none (answered without an audit
 * record: nothing names a device). */
static int credentials(struct reg_job *job, struct evhttp_request *req, char *why, size_t whylen) {
    const char *auth = http_header(req, "Authorization"), *bad = NULL;
    char id[REGID_MAX + 1];

    job->peer = http_peer_cert(req, &job->peer_chain);
    if (auth && job->op != REG_OP_EST_REENROLL) {
        if (est_basic_parse(auth, id, sizeof(id), &job->password) != 0) {
            snprintf(why, whylen, "malformed Authorization: HTTP Basic credentials expected");
            return -1;
        }
    } else if (!job->peer) {
        snprintf(why, whylen, "%s",
                 job->op == REG_OP_EST_REENROLL
                     ? "simplereenroll needs the device's current certificate in the TLS handshake"
                     : "HTTP Basic credentials or a client certificate are required");
        return -1;
    } else if (peer_regid(job, id, sizeof(id)) != 0) {
        snprintf(why, whylen,
                 "the client certificate has no single CN of 1 to %d characters of text",
                 REGID_MAX);
        return -1;
    }
    if (regid_check(id, &bad) != 0) {
        snprintf(why, whylen, "%s is not a registration ID: %s",
                 job->password ? "the HTTP Basic user name" : "the client certificate's CN", bad);
        return -1;
    }
    snprintf(job->regid, sizeof(job->regid), "%s", id);
    regid_lower(job->regid);
    return 0;
}

/* simpleenroll, simplereenroll, serverkeygen: a registration job for the pipeline. */
static void enroll(struct worker *w, struct evhttp_request *req, const struct est_op *o,
                   const char *label) {
    struct reg_job *job = reg_job_new(w, o->op);
    char why[160];
    size_t len = 0;
    int too_big = 0;
    char *body = NULL;

    if (!job) {
        reply_text(req, 500, "out of memory");
        return;
    }
    job->ctx = req;
    job->failure_as_error = 1; /* EST has no "failed" state to answer 200 with */
    job->reply = reply;
    http_remote(req, job->remote, sizeof(job->remote));
    if (credentials(job, req, why, sizeof(why)) != 0) {
        char quoted[2 * sizeof(why)];
        log_info("est.%s outcome=refused status=401 remote=%s reason=\"%s\"", o->name, job->remote,
                 log_quoted(why, quoted, sizeof(quoted)));
        if (o->op != REG_OP_EST_REENROLL)
            http_set_header(req, "WWW-Authenticate", REALM);
        reply_text(req, 401, why);
        reg_job_free(job);
        return;
    }
    /* From here on every refusal names the device and is audited. */
    if (label && !(job->label = strdup(label))) {
        pipeline_refuse(job, 500, 500001, "out of memory");
    } else if (!is_pkcs10(req)) {
        pipeline_refuse(job, 415, 415001, "Content-Type must be application/pkcs10");
    } else if (!(body = http_body(req, w->pd->cfg.max_body_bytes, &len, &too_big))) {
        pipeline_refuse(job, too_big ? 413 : 400, too_big ? 413001 : 400020,
                        too_big ? "request body is larger than the configured limit"
                                : "the request has no CSR");
    } else {
        job->csr = body;
        job->csr_len = len;
        job->csr_format = CSR_FMT_TEXT;
        body = NULL;
        pipeline_run(job);
    }
    free(body);
}

/* csrattrs: the attributes of est_csrattrs_der, base64. */
static void csrattrs(struct worker *w, struct evhttp_request *req) {
    size_t len = 0;
    unsigned char *der = est_csrattrs_der(&w->pd->csr_policy, &len);
    reply_b64(req, "application/csrattrs", der ? b64_encode(der, len) : NULL);
    OPENSSL_free(der);
}

/* Checks the label of the path: the ID of an existing enrollment group. Answers and returns -1
 * otherwise. */
static int check_label(struct worker *w, struct evhttp_request *req, char *label) {
    struct store_doc doc = {0};
    const char *why = NULL;
    int got;

    if (regid_check(label, &why) != 0) {
        reply_text(req, 404, "no such EST label");
        return -1;
    }
    regid_lower(label);
    got = store_doc_get(w->conn, STORE_GROUP, label, &doc);
    store_doc_clear(&doc);
    if (got == STORE_OK)
        return 0;
    if (got == STORE_NOT_FOUND)
        reply_text(req, 404, "no such EST label: it names no enrollment group");
    else
        reply_text(req, 500, "the store could not be read");
    return -1;
}

void est_handle(struct worker *w, struct evhttp_request *req, const struct http_path *p,
                int bad_query) {
    const struct est_op *o = NULL;
    char *label = NULL;

    if (bad_query) {
        reply_text(req, 400, "malformed query string: name=value pairs expected");
        return;
    }
    if (p->nseg != 3 && p->nseg != 4) {
        reply_text(req, 404, "no such EST path");
        return;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !o; i++)
        if (http_seg_is(p, p->nseg - 1, ops[i].name))
            o = &ops[i];
    if (!o) {
        reply_text(req, 404, "no such EST operation");
        return;
    }
    /* A path with an unknown label names nothing, whatever the method. */
    if (p->nseg == 4) {
        if (!(label = strdup(p->seg[2]))) {
            reply_text(req, 500, "out of memory");
            return;
        }
        if (check_label(w, req, label) != 0)
            goto out;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    /* HEAD wherever GET is (RFC 9110): the same answer, whose body http_send leaves out. */
    if (method != o->method && !(method == EVHTTP_REQ_HEAD && o->method == EVHTTP_REQ_GET)) {
        http_set_header(req, "Allow", o->method == EVHTTP_REQ_GET ? "GET, HEAD" : "POST");
        reply_text(req, 405, "method not allowed on this path");
        goto out;
    }
    if (strcmp(o->name, "cacerts") == 0)
        reply_b64(req, CT_PKCS7, ca_pkcs7_b64(w->pd->ca, NULL));
    else if (strcmp(o->name, "csrattrs") == 0)
        csrattrs(w, req);
    else
        enroll(w, req, o, label);
out:
    free(label);
}
