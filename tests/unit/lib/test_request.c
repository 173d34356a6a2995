/* Unit tests for the requests libprov sends (lib/request.c through prov_register): the URL, the
 * headers, the body, and SAS tokens equal byte for byte to the vectors of
 * tests/data/crypto-vectors.json when the clock is fixed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_transport.h"
#include "vectors.h"

#define REGISTER_URL                                                                               \
    "https://prov.example.com:8443/" VEC_SCOPE "/registrations/" VEC_REGID                         \
    "/register?api-version=2021-06-01"

/* The header of the first sas vector: sr sent unencoded, as libprov sends it. */
static const char *vector_header(void) {
    json_t *v = json_array_get(json_object_get(vectors, "sas"), 0);

    assert_string_equal(vector_str(v, "sr"), VEC_SCOPE "/registrations/" VEC_REGID);
    assert_string_equal(vector_str(v, "device_key_b64"), VEC_KEY);
    return vector_str(v, "header");
}

/* Registers once against a server answering 200 and returns the request it saw. */
static const struct fake_request *register_once(struct fake *f, prov_client *c) {
    prov_result *r = NULL;

    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    assert_int_equal(f->n_reqs, 1);
    return &f->reqs[0];
}

static void put_request_is_exact(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    const struct fake_request *req;
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    req = register_once(&f, c);
    assert_string_equal(req->method, "PUT");
    assert_string_equal(req->url, REGISTER_URL);
    assert_string_equal(req->body, "{\"registrationId\":\"" VEC_REGID "\"}");
    assert_int_equal(req->n_headers, 4);
    assert_string_equal(fake_header(req, "Accept"), "application/json");
    assert_string_equal(fake_header(req, "Content-Type"), "application/json; charset=utf-8");
    assert_string_equal(fake_header(req, "User-Agent"), "libprov/" PROV_VERSION);
    assert_string_equal(fake_header(req, "Authorization"), vector_header());
    assert_null(req->ca_file);
    assert_int_equal(req->timeout_ms, PROV_DEFAULT_REQUEST_TIMEOUT_MS);
    prov_client_free(c);
    fake_free(&f);
}

static void sas_expiry_is_now_plus_ttl(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_sas_ttl(c, 60), PROV_OK);
    f.unix_now = VEC_SE - 60;
    assert_string_equal(fake_header(register_once(&f, c), "Authorization"), vector_header());
    prov_client_free(c);
    fake_free(&f);
}

static void group_key_signs_with_the_derived_key(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    json_t *v = json_array_get(json_object_get(vectors, "group_key_derivation"), 1);
    struct fake f;
    prov_client *c;

    (void)state;
    /* The vector derives the sas vectors' device key from this group key and registration. */
    assert_string_equal(vector_str(v, "registration_id"), VEC_REGID);
    assert_string_equal(vector_str(v, "derived_key_b64"), VEC_KEY);
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_group_key(c, vector_str(v, "group_key_b64")), PROV_OK);
    assert_string_equal(fake_header(register_once(&f, c), "Authorization"), vector_header());
    prov_client_free(c);
    fake_free(&f);
}

static void registration_id_is_lower_cased(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    const struct fake_request *req;
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_registration_id(c, "My-Device-01"), PROV_OK);
    req = register_once(&f, c);
    assert_string_equal(req->url, REGISTER_URL);
    assert_string_equal(req->body, "{\"registrationId\":\"" VEC_REGID "\"}");
    /* Same token: the server derives and verifies with the lower-cased ID. */
    assert_string_equal(fake_header(req, "Authorization"), vector_header());
    prov_client_free(c);
    fake_free(&f);
}

static void url_escapes_and_endpoint_prefix(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    const struct fake_request *req;
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_endpoint(c, "https://dps.example.com/prefix//"), PROV_OK);
    assert_int_equal(prov_client_set_registration_id(c, "aa:bb.cc_dd"), PROV_OK);
    req = register_once(&f, c);
    assert_string_equal(req->url, "https://dps.example.com/prefix/" VEC_SCOPE
                                  "/registrations/aa%3abb.cc_dd/register?api-version=2021-06-01");
    assert_string_equal(req->body, "{\"registrationId\":\"aa:bb.cc_dd\"}");
    prov_client_free(c);
    fake_free(&f);
}

static void payload_goes_into_the_body(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED, FAKE_ASSIGNED, FAKE_ASSIGNED};
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;

    (void)state;
    fake_init(&f, script, 3);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_payload(c, " {\"fw\": \"1.2\", \"n\": [1, 2]} "), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    assert_string_equal(f.reqs[0].body, "{\"registrationId\":\"" VEC_REGID
                                        "\",\"payload\":{\"fw\":\"1.2\",\"n\":[1,2]}}");
    /* Any JSON value is a payload. */
    assert_int_equal(prov_client_set_payload(c, "\"text\""), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    assert_string_equal(f.reqs[1].body,
                        "{\"registrationId\":\"" VEC_REGID "\",\"payload\":\"text\"}");
    /* NULL removes it. */
    assert_int_equal(prov_client_set_payload(c, NULL), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    assert_string_equal(f.reqs[2].body, "{\"registrationId\":\"" VEC_REGID "\"}");
    prov_client_free(c);
    fake_free(&f);
}

static void ca_file_reaches_the_transport(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_ca_file(c, PROV_TEST_DATA "/ca/root.pem"), PROV_OK);
    assert_string_equal(register_once(&f, c)->ca_file, PROV_TEST_DATA "/ca/root.pem");
    prov_client_free(c);
    fake_free(&f);
}

static void poll_request_is_exact(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 202, FAKE_JSON, "1", "{\"operationId\":\"4.a b/c\",\"status\":\"assigning\"}", 0},
        FAKE_ASSIGNED,
    };
    const struct fake_request *req;
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;

    (void)state;
    fake_init(&f, script, 2);
    c = fake_client(&f);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    assert_int_equal(f.n_reqs, 2);
    req = &f.reqs[1];
    assert_string_equal(req->method, "GET");
    assert_string_equal(req->url,
                        "https://prov.example.com:8443/" VEC_SCOPE "/registrations/" VEC_REGID
                        "/operations/4.a%20b%2fc?api-version=2021-06-01");
    assert_null(req->body);
    assert_null(fake_header(req, "Content-Type"));
    assert_string_equal(fake_header(req, "Accept"), "application/json");
    assert_non_null(fake_header(req, "Authorization"));
    assert_int_equal(req->n_headers, 3);
    prov_client_free(c);
    fake_free(&f);
}

static void missing_settings_send_nothing(void **state) {
    static prov_result sentinel;
    struct fake f;
    prov_client *c = NULL;
    prov_result *r = &sentinel;

    (void)state;
    fake_init(&f, NULL, 0);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    fake_install(&f, c);
    assert_int_equal(prov_register(c, &r), PROV_ERR_INVALID_ARG);
    assert_null(r);
    assert_string_equal(prov_client_last_error(c), "cannot register: no endpoint set");
    assert_int_equal(prov_client_set_endpoint(c, "https://h"), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_ERR_INVALID_ARG);
    assert_string_equal(prov_client_last_error(c), "cannot register: no ID scope set");
    assert_int_equal(prov_client_set_id_scope(c, VEC_SCOPE), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_ERR_INVALID_ARG);
    assert_string_equal(prov_client_last_error(c), "cannot register: no registration ID set");
    assert_int_equal(prov_client_set_registration_id(c, VEC_REGID), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_ERR_INVALID_ARG);
    assert_string_equal(prov_client_last_error(c),
                        "cannot register: no key or client certificate set");
    assert_int_equal(prov_register(c, NULL), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_register(NULL, &r), PROV_ERR_INVALID_ARG);
    assert_int_equal(f.n_reqs, 0);
    prov_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_request_is_exact),
        cmocka_unit_test(sas_expiry_is_now_plus_ttl),
        cmocka_unit_test(group_key_signs_with_the_derived_key),
        cmocka_unit_test(registration_id_is_lower_cased),
        cmocka_unit_test(url_escapes_and_endpoint_prefix),
        cmocka_unit_test(payload_goes_into_the_body),
        cmocka_unit_test(ca_file_reaches_the_transport),
        cmocka_unit_test(poll_request_is_exact),
        cmocka_unit_test(missing_settings_send_nothing),
    };
    return cmocka_run_group_tests(tests, vectors_load, vectors_free);
}
