/* prov_register: one registration from the first PUT to the final answer, with the retry
 * policy. What is worth retrying: network errors, 429 and 5xx. What is final: every other
 * answer, a TLS failure, and the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "backoff.h"
#include "hmac.h"

/* How long to wait between polls when a 202 names no Retry-After. */
#define POLL_DEFAULT_MS 2000u

#define USER_AGENT "libprov/" PROV_VERSION

/* Sends one request, signed with a fresh SAS token when device_key is set; the answer lands in
 * resp. */
static prov_err send_one(prov_client *c, const char *method, const char *url, const char *body,
                         const char *device_key, uint32_t timeout_ms, prov_http_response *resp) {
    struct prov_http_header headers[4];
    struct prov_http_request req;
    const char *why = NULL;
    char *auth = NULL;
    size_t n = 0;
    prov_err rc;

    /* With X.509 attestation the client certificate is the credential: no token. */
    if (device_key != NULL &&
        (auth = request_sas(c, device_key, client_unix_time(c) + (int64_t)c->sas_ttl_s, &why)) ==
            NULL) {
        snprintf(resp->error, sizeof(resp->error), "cannot sign the request: %s", why);
        return strcmp(why, "out of memory") == 0 ? PROV_ERR_NOMEM : PROV_ERR_CRYPTO;
    }
    headers[n++] = (struct prov_http_header){"Accept", "application/json"};
    if (body != NULL)
        headers[n++] = (struct prov_http_header){"Content-Type", "application/json; charset=utf-8"};
    if (auth != NULL)
        headers[n++] = (struct prov_http_header){"Authorization", auth};
    headers[n++] = (struct prov_http_header){"User-Agent", USER_AGENT};
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.n_headers = n;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    req.ca_file = c->ca_file;
    req.client_cert_file = c->cert_file;
    req.client_key_file = c->cert_key_file;
    req.timeout_ms = timeout_ms < c->request_timeout_ms ? timeout_ms : c->request_timeout_ms;

    response_reset(resp);
    client_log(c, PROV_LOG_DEBUG, "%s %s", method, url);
    rc = client_perform(c, &req, resp);
    if (rc == PROV_OK && resp->status == 0) {
        snprintf(resp->error, sizeof(resp->error), "transport gave no HTTP status");
        rc = PROV_ERR_PROTOCOL;
    }
    if (rc == PROV_OK)
        client_log(c, PROV_LOG_DEBUG, "HTTP %d (%zu bytes)", resp->status, resp->body_len);
    request_free_secret(auth);
    return rc;
}

/* Checks that everything a registration needs is set. */
static prov_err check_settings(prov_client *c) {
    const char *missing = c->endpoint == NULL                      ? "endpoint"
                          : c->id_scope == NULL                    ? "ID scope"
                          : c->regid == NULL                       ? "registration ID"
                          : c->key == NULL && c->cert_file == NULL ? "key or client certificate"
                                                                   : NULL;

    if (missing == NULL)
        return PROV_OK;
    client_fail(c, 1, "cannot register: no %s set", missing);
    return PROV_ERR_INVALID_ARG;
}

/* The key that signs: the device's own, or the one derived from the group key; NULL with X.509
 * attestation. */
static prov_err device_key_of(prov_client *c, char **key) {
    const char *why = NULL;

    *key = NULL;
    if (c->key == NULL)
        return PROV_OK;

    if (c->key_is_group) {
        *key = derive_device_key(c->key, c->regid, &why);
        /* The HMAC context keeps the group key it was given: wipe it now. */
        hmac_sha256_forget();
    } else {
        *key = strdup(c->key);
    }
    if (*key != NULL)
        return PROV_OK;
    if (!c->key_is_group) {
        client_fail(c, 1, "out of memory");
        return PROV_ERR_NOMEM;
    }
    client_fail(c, 1, "cannot derive the device key: %s", why != NULL ? why : "unknown reason");
    return PROV_ERR_CRYPTO;
}

/* One registration in progress. */
struct run {
    prov_client *c;
    prov_http_response resp; /* the last answer */
    prov_result *res;        /* what it said */
    char *op_url;            /* the operation to poll, once the server named one */
    uint32_t failures;       /* consecutive failed attempts: the backoff exponent */
    char last[ERRMSG_MAX];   /* why the last attempt did not end the registration */
};

/* The next backoff, one failure further. */
static uint32_t next_backoff(struct run *r) {
    return backoff_delay_ms(r->failures++, r->c->backoff_base_ms, r->c->backoff_cap_ms,
                            client_random(r->c));
}

/* Ends the registration with rc, reporting why. */
static int finish(struct run *r, prov_err rc, prov_err *final, const char *why) {
    *final = rc;
    if (rc != PROV_OK)
        client_fail(r->c, 1, "%s", why);
    return 1;
}

/* Judges one attempt: rc from send_one, its answer in r->resp. Returns 1 when the registration
 * is over, with *final set; else 0 with *wait_ms, the time to wait before the next attempt. */
static int judge(struct run *r, prov_err rc, prov_err *final, uint32_t *wait_ms) {
    prov_http_response *resp = &r->resp;
    int have_ra = rc == PROV_OK && backoff_retry_after_ms(resp->retry_after, wait_ms) == 0;
    char why[ERRMSG_MAX];
    enum answer_kind kind;

    if (rc == PROV_ERR_NETWORK) {
        snprintf(r->last, sizeof(r->last), "%s",
                 resp->error[0] != '\0' ? resp->error : prov_strerror(rc));
        *wait_ms = next_backoff(r);
        return 0;
    }
    if (rc != PROV_OK)
        return finish(r, rc, final, resp->error[0] != '\0' ? resp->error : prov_strerror(rc));
    if (resp->status == 429 || resp->status >= 500) {
        snprintf(r->last, sizeof(r->last), "HTTP %d from the server", resp->status);
        if (have_ra)
            r->failures++;
        else
            *wait_ms = next_backoff(r);
        return 0;
    }
    if (resp->status >= 400 && resp->status < 500) {
        if ((rc = response_parse_error(resp, r->res)) != PROV_OK)
            return finish(r, rc, final, "out of memory");
        snprintf(why, sizeof(why), "HTTP %d, error %ld: %s", resp->status, r->res->error_code,
                 r->res->error_message != NULL ? r->res->error_message : "(no message)");
        return finish(r, PROV_ERR_REFUSED, final, why);
    }
    if (resp->status != 200 && resp->status != 202) {
        snprintf(why, sizeof(why), "unexpected HTTP status %d (redirects are not followed)",
                 resp->status);
        return finish(r, PROV_ERR_PROTOCOL, final, why);
    }

    if ((rc = response_parse_registration(resp, r->res, &kind, why, sizeof(why))) != PROV_OK)
        return finish(r, rc, final, why);
    if (kind == ANSWER_ASSIGNED) {
        if (r->res->registration_id == NULL &&
            (r->res->registration_id = strdup(r->c->regid)) == NULL)
            return finish(r, PROV_ERR_NOMEM, final, "out of memory");
        /* The device asked for a certificate and holds nothing else it could use with the key:
         * an answer without one, or with one for another key, did not provision it. */
        if (r->c->csr_key != NULL && r->res->issued_chain_pem == NULL)
            return finish(r, PROV_ERR_PROTOCOL, final,
                          "assigned, but the server issued no certificate for the CSR");
        if (r->c->csr_key != NULL && !chain_certifies(r->res, r->c->csr_key))
            return finish(r, PROV_ERR_PROTOCOL, final,
                          "the issued certificate does not certify the device's key");
        client_log(r->c, PROV_LOG_INFO, "assigned: device %s on %s", r->res->device_id,
                   r->res->assigned_hub);
        return finish(r, PROV_OK, final, NULL);
    }
    if (kind == ANSWER_FAILED) {
        snprintf(why, sizeof(why), "registration %s: %ld %s", r->res->status, r->res->error_code,
                 r->res->error_message != NULL ? r->res->error_message : "(no message)");
        return finish(r, PROV_ERR_REGISTRATION_FAILED, final, why);
    }
    /* Assigning: from now on, poll the operation the server named. The server is making
     * progress, so the backoff starts over. */
    free(r->op_url);
    r->op_url = request_operation_url(r->c, r->res->operation_id);
    result_clear(r->res);
    if (r->op_url == NULL)
        return finish(r, PROV_ERR_NOMEM, final, "out of memory");
    snprintf(r->last, sizeof(r->last), "registration still assigning");
    r->failures = 0;
    if (!have_ra)
        *wait_ms = POLL_DEFAULT_MS;
    return 0;
}

prov_err prov_register(prov_client *client, prov_result **result) {
    struct run r;
    char *device_key = NULL, *reg_url = NULL, *body = NULL, *csr = NULL;
    uint64_t deadline;
    prov_err rc;

    if (client == NULL)
        return PROV_ERR_INVALID_ARG;
    memset(&r, 0, sizeof(r));
    r.c = client;
    snprintf(r.last, sizeof(r.last), "no attempt made");
    client->last_error[0] = '\0';
    if (result == NULL) {
        client_fail(client, 1, "no place for the result");
        return PROV_ERR_INVALID_ARG;
    }
    *result = NULL;
    if ((rc = check_settings(client)) != PROV_OK ||
        (rc = device_key_of(client, &device_key)) != PROV_OK)
        goto out;
    if (client->csr_key != NULL) {
        const char *why = NULL;

        /* One CSR for the whole registration: retries and polls are about the same request. */
        if ((csr = csr_build_b64(client->csr_key, client->regid, &why)) == NULL) {
            rc = strcmp(why, "out of memory") == 0 ? PROV_ERR_NOMEM : PROV_ERR_CRYPTO;
            client_fail(client, 1, "%s", why);
            goto out;
        }
        client_log(client, PROV_LOG_DEBUG, "sending a CSR for CN=%s", client->regid);
    }
    reg_url = request_register_url(client);
    body = request_register_body(client, csr);
    r.res = calloc(1, sizeof(*r.res));
    if (reg_url == NULL || body == NULL || r.res == NULL) {
        rc = PROV_ERR_NOMEM;
        client_fail(client, 1, "out of memory");
        goto out;
    }

    deadline = client_now_ms(client) + client->deadline_ms;
    for (;;) {
        uint64_t now = client_now_ms(client);
        uint32_t wait_ms = 0;

        if (now >= deadline) {
            rc = PROV_ERR_TIMEOUT;
            client_fail(client, 1, "no final answer within %u ms; last: %s", client->deadline_ms,
                        r.last);
            break;
        }
        if (r.op_url == NULL)
            rc = send_one(client, "PUT", reg_url, body, device_key, (uint32_t)(deadline - now),
                          &r.resp);
        else
            rc = send_one(client, "GET", r.op_url, NULL, device_key, (uint32_t)(deadline - now),
                          &r.resp);
        if (judge(&r, rc, &rc, &wait_ms))
            break;
        /* Waiting past the deadline would only delay the same answer. */
        if (client_now_ms(client) + wait_ms >= deadline) {
            rc = PROV_ERR_TIMEOUT;
            client_fail(client, 1,
                        "no final answer within %u ms (the next attempt would be too late); "
                        "last: %s",
                        client->deadline_ms, r.last);
            break;
        }
        client_log(client, r.resp.status / 100 == 2 ? PROV_LOG_INFO : PROV_LOG_WARN,
                   "%s; next attempt in %u ms", r.last, wait_ms);
        client_sleep_ms(client, wait_ms);
    }

out:
    response_release(&r.resp);
    request_free_secret(device_key);
    free(reg_url);
    free(r.op_url);
    free(body);
    free(csr);
    if (rc == PROV_OK || rc == PROV_ERR_REGISTRATION_FAILED || rc == PROV_ERR_REFUSED) {
        *result = r.res;
        r.res = NULL;
    }
    prov_result_free(r.res);
    return rc;
}
