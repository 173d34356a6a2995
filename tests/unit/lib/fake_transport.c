/* The scripted server and clock of fake_transport.h. */
#include "fake_transport.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s) {
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    assert_non_null(d);
    return d;
}

static prov_err perform(void *ctx, const struct prov_http_request *req, prov_http_response *resp) {
    struct fake *f = ctx;
    const struct fake_answer *a;
    struct fake_request *r;
    size_t i;

    assert_true(f->n_reqs < FAKE_MAX);
    r = &f->reqs[f->n_reqs++];
    r->method = dup_or_null(req->method);
    r->url = dup_or_null(req->url);
    r->ca_file = dup_or_null(req->ca_file);
    r->client_cert_file = dup_or_null(req->client_cert_file);
    r->client_key_file = dup_or_null(req->client_key_file);
    if (req->body != NULL) {
        r->body = malloc(req->body_len + 1);
        assert_non_null(r->body);
        memcpy(r->body, req->body, req->body_len);
        r->body[req->body_len] = '\0';
    }
    assert_true(req->n_headers <= 8);
    for (i = 0; i < req->n_headers; i++) {
        r->header_names[i] = dup_or_null(req->headers[i].name);
        r->header_values[i] = dup_or_null(req->headers[i].value);
    }
    r->n_headers = req->n_headers;
    r->timeout_ms = req->timeout_ms;
    r->at_ms = f->now_ms;

    if (f->next >= f->n_script) {
        f->overrun = 1;
        prov_http_response_set_error(resp, "script ended");
        return PROV_ERR_NETWORK;
    }
    a = &f->script[f->next++];
    f->now_ms += a->takes_ms;
    if (a->err != PROV_OK) {
        prov_http_response_set_error(resp, "scripted failure");
        return a->err;
    }
    assert_int_equal(prov_http_response_set_status(resp, a->status), PROV_OK);
    if (a->content_type != NULL)
        assert_int_equal(prov_http_response_add_header(resp, "content-type", 12, a->content_type,
                                                       strlen(a->content_type)),
                         PROV_OK);
    if (a->retry_after != NULL)
        assert_int_equal(prov_http_response_add_header(resp, "Retry-After", 11, a->retry_after,
                                                       strlen(a->retry_after)),
                         PROV_OK);
    if (a->body != NULL)
        return prov_http_response_append_body(resp, a->body, strlen(a->body));
    return PROV_OK;
}

static void fake_sleep(void *ctx, uint32_t ms) {
    struct fake *f = ctx;

    assert_true(f->n_sleeps < FAKE_MAX);
    f->sleeps[f->n_sleeps++] = ms;
    f->now_ms += ms;
}

static uint64_t fake_now(void *ctx) {
    return ((struct fake *)ctx)->now_ms;
}

static int64_t fake_unix(void *ctx) {
    return ((struct fake *)ctx)->unix_now;
}

static uint32_t fake_random(void *ctx) {
    struct fake *f = ctx;
    uint32_t v;

    if (f->randoms == NULL || f->n_randoms == 0)
        return UINT32_MAX;
    v = f->randoms[f->next_random < f->n_randoms ? f->next_random : f->n_randoms - 1];
    f->next_random++;
    return v;
}

void fake_init(struct fake *f, const struct fake_answer *script, size_t n) {
    memset(f, 0, sizeof(*f));
    f->script = script;
    f->n_script = n;
    f->now_ms = 1000000; /* not 0, so that "since start" and "absolute" differ */
    f->unix_now = VEC_SE - PROV_DEFAULT_SAS_TTL_S;
}

void fake_install(struct fake *f, prov_client *c) {
    struct prov_transport t = {f, perform, fake_sleep, fake_now, fake_unix, fake_random};

    assert_int_equal(prov_client_set_transport(c, &t), PROV_OK);
}

void fake_free(struct fake *f) {
    size_t i, j;

    for (i = 0; i < f->n_reqs; i++) {
        struct fake_request *r = &f->reqs[i];

        free(r->method);
        free(r->url);
        free(r->body);
        free(r->ca_file);
        free(r->client_cert_file);
        free(r->client_key_file);
        for (j = 0; j < r->n_headers; j++) {
            free(r->header_names[j]);
            free(r->header_values[j]);
        }
    }
    f->n_reqs = 0;
}

const char *fake_header(const struct fake_request *r, const char *name) {
    size_t i;

    for (i = 0; i < r->n_headers; i++) {
        if (strcmp(r->header_names[i], name) == 0)
            return r->header_values[i];
    }
    return NULL;
}

prov_client *fake_client(struct fake *f) {
    prov_client *c = NULL;

    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_endpoint(c, "https://prov.example.com:8443"), PROV_OK);
    assert_int_equal(prov_client_set_id_scope(c, VEC_SCOPE), PROV_OK);
    assert_int_equal(prov_client_set_registration_id(c, VEC_REGID), PROV_OK);
    assert_int_equal(prov_client_set_symmetric_key(c, VEC_KEY), PROV_OK);
    fake_install(f, c);
    return c;
}
