/* Unit tests for how libprov reads the server's answers (lib/response.c, lib/http.c), driven
 * through prov_register with a scripted server: assigned, assigning then polled, failed,
 * refused, and every kind of answer it must not trust. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fake_transport.h"

#define ASSIGNING(ra)                                                                              \
    { PROV_OK, 202, FAKE_JSON, ra, "{\"operationId\":\"op-7\",\"status\":\"assigning\"}", 0 }

/* Registers against script and checks the outcome; returns the result (caller frees). */
static prov_result *run(const struct fake_answer *script, size_t n, prov_err want,
                        size_t want_requests) {
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    prov_err rc;

    fake_init(&f, script, n);
    c = fake_client(&f);
    rc = prov_register(c, &r);
    if (rc != want)
        fail_msg("prov_register: %s (%s), wanted %s", prov_strerror(rc), prov_client_last_error(c),
                 prov_strerror(want));
    assert_int_equal(f.n_reqs, want_requests);
    assert_false(f.overrun);
    if (want == PROV_OK)
        assert_string_equal(prov_client_last_error(c), "");
    else
        assert_true(strlen(prov_client_last_error(c)) > 0);
    prov_client_free(c);
    fake_free(&f);
    return r;
}

static void assigned_answer_fills_the_result(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_OK, 1);
    assert_non_null(r);
    assert_int_equal(r->http_status, 200);
    assert_string_equal(r->operation_id, "op-1");
    assert_string_equal(r->status, "assigned");
    assert_string_equal(r->registration_id, "my-device-01");
    assert_string_equal(r->device_id, "dev-id-1");
    assert_string_equal(r->assigned_hub, "hub-a.example.com");
    assert_string_equal(r->substatus, "initialAssignment");
    assert_string_equal(r->created_at, "2026-11-26T01:02:03.1234567Z");
    assert_string_equal(r->updated_at, "2026-11-26T01:02:04.1234567Z");
    assert_string_equal(r->etag, "AAAAAAAAAAE=");
    assert_string_equal(r->enrollment_group_id, "fleet");
    assert_string_equal(r->payload, "{\"interval\":30,\"topics\":[\"a\"]}");
    assert_int_equal(r->error_code, 0);
    assert_null(r->error_message);
    assert_null(r->tracking_id);
    prov_result_free(r);
}

static void minimal_assigned_answer(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 200, "Application/JSON", NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"d\",\"assignedHub\":\"h\"}"
         "}",
         0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_OK, 1);
    assert_string_equal(r->device_id, "d");
    assert_string_equal(r->assigned_hub, "h");
    /* The registration ID the client used stands in for one the server left out. */
    assert_string_equal(r->registration_id, "my-device-01");
    assert_null(r->operation_id);
    assert_null(r->substatus);
    assert_null(r->payload);
    assert_null(r->enrollment_group_id);
    prov_result_free(r);
}

static void x509_group_is_recorded(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"d\",\"assignedHub\":\"h\","
         "\"x509\":{\"enrollmentGroupId\":\"fleet\",\"certificateInfo\":{\"subjectName\":\"CN=d\"}}"
         "}}",
         0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_OK, 1);
    assert_string_equal(r->enrollment_group_id, "fleet");
    prov_result_free(r);
}

static void assigning_is_polled_until_assigned(void **state) {
    static const struct fake_answer script[] = {ASSIGNING("3"), ASSIGNING(NULL), FAKE_ASSIGNED};
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;

    (void)state;
    fake_init(&f, script, 3);
    c = fake_client(&f);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_string_equal(r->device_id, "dev-id-1");
    assert_int_equal(f.n_reqs, 3);
    assert_string_equal(f.reqs[0].method, "PUT");
    assert_string_equal(f.reqs[1].method, "GET");
    assert_string_equal(f.reqs[2].method, "GET");
    /* Retry-After first, then the default poll interval. */
    assert_int_equal(f.n_sleeps, 2);
    assert_int_equal(f.sleeps[0], 3000);
    assert_int_equal(f.sleeps[1], 2000);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
}

static void assigning_over_200_is_polled_too(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"operationId\":\"op-7\",\"status\":\"assigning\"}", 0},
        FAKE_ASSIGNED};
    prov_result *r;

    (void)state;
    r = run(script, 2, PROV_OK, 2);
    prov_result_free(r);
}

static void failed_registration_carries_its_error(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"operationId\":\"op-2\",\"status\":\"failed\",\"registrationState\":{"
         "\"registrationId\":\"my-device-01\",\"status\":\"failed\",\"errorCode\":403001,"
         "\"errorMessage\":\"enrollment is disabled\"}}",
         0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_ERR_REGISTRATION_FAILED, 1);
    assert_non_null(r);
    assert_string_equal(r->status, "failed");
    assert_int_equal(r->error_code, 403001);
    assert_string_equal(r->error_message, "enrollment is disabled");
    assert_null(r->device_id);
    prov_result_free(r);
}

static void disabled_status_is_a_failure(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"disabled\"}", 0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_ERR_REGISTRATION_FAILED, 1);
    assert_string_equal(r->status, "disabled");
    assert_int_equal(r->error_code, 0);
    prov_result_free(r);
}

static void refusal_carries_the_dps_error(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 401, FAKE_JSON, NULL,
         "{\"errorCode\":401002,\"trackingId\":\"4f0f8a1e-0000-4000-8000-000000000001\","
         "\"message\":\"SAS token refused\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}",
         0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_ERR_REFUSED, 1);
    assert_non_null(r);
    assert_int_equal(r->http_status, 401);
    assert_int_equal(r->error_code, 401002);
    assert_string_equal(r->error_message, "SAS token refused");
    assert_string_equal(r->tracking_id, "4f0f8a1e-0000-4000-8000-000000000001");
    assert_null(r->status);
    prov_result_free(r);
}

static void refusal_without_a_json_body(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 404, "text/html", NULL, "<html>not here</html>", 0},
    };
    prov_result *r;

    (void)state;
    r = run(script, 1, PROV_ERR_REFUSED, 1);
    assert_int_equal(r->http_status, 404);
    assert_int_equal(r->error_code, 0);
    assert_null(r->error_message);
    prov_result_free(r);
}

/* Answers of status 200 that must be rejected as not understood, without a retry. */
static void untrustworthy_answers_are_protocol_errors(void **state) {
    static const struct fake_answer bad[] = {
        {PROV_OK, 200, "text/html", NULL, FAKE_ASSIGNED_BODY, 0},
        {PROV_OK, 200, NULL, NULL, FAKE_ASSIGNED_BODY, 0},
        {PROV_OK, 200, "application/jsonx", NULL, FAKE_ASSIGNED_BODY, 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"assigned\",\"registrationState\":{\"de", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "[1, 2]", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"registrationState\":{}}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":7}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"unassigned\"}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"assigned\"}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"assignedHub\":\"h\"}}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":5,\"assignedHub\":\"h\"}}",
         0},
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"\",\"assignedHub\":\"h\"}"
         "}",
         0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"assigned\",\"registrationState\":[]}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"d\",\"assignedHub\":\"h\","
         "\"symmetricKey\":{\"enrollmentGroupId\":1}}}",
         0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"assigning\"}", 0},
        {PROV_OK, 202, FAKE_JSON, NULL, "{\"status\":\"assigning\",\"operationId\":\"\"}", 0},
        {PROV_OK, 200, FAKE_JSON, NULL, "{\"status\":\"assigned\"} trailing", 0},
        {PROV_OK, 204, NULL, NULL, NULL, 0},
        {PROV_OK, 302, "text/html", NULL, "moved", 0},
        {PROV_ERR_PROTOCOL, 0, NULL, NULL, NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("answer %zu\n", i);
        assert_null(run(&bad[i], 1, PROV_ERR_PROTOCOL, 1));
    }
}

static void response_setters_check_their_input(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    char *big;

    (void)state;
    assert_int_equal(prov_http_response_set_status(NULL, 200), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_http_response_add_header(NULL, "a", 1, "b", 1), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_http_response_append_body(NULL, "a", 1), PROV_ERR_INVALID_ARG);
    prov_http_response_set_error(NULL, "ignored");

    /* The body cap, through a transport that sends one byte too many. */
    big = malloc(PROV_MAX_RESPONSE_BODY + 2);
    assert_non_null(big);
    memset(big, ' ', PROV_MAX_RESPONSE_BODY + 1);
    big[PROV_MAX_RESPONSE_BODY + 1] = '\0';
    {
        const struct fake_answer huge[] = {{PROV_OK, 200, FAKE_JSON, NULL, big, 0}};
        fake_init(&f, huge, 1);
        c = fake_client(&f);
        assert_int_equal(prov_register(c, &r), PROV_ERR_PROTOCOL);
        assert_null(r);
        prov_client_free(c);
        fake_free(&f);
    }
    /* Exactly at the cap is accepted by the buffer (and then fails as JSON: all blanks). */
    big[PROV_MAX_RESPONSE_BODY] = '\0';
    {
        const struct fake_answer huge[] = {{PROV_OK, 200, FAKE_JSON, NULL, big, 0}};
        fake_init(&f, huge, 1);
        c = fake_client(&f);
        assert_int_equal(prov_register(c, &r), PROV_ERR_PROTOCOL);
        assert_non_null(strstr(prov_client_last_error(c), "not valid JSON"));
        prov_client_free(c);
        fake_free(&f);
    }
    free(big);

    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
}

static void result_renders_as_json(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    prov_result *r, failed = {0};
    char *json = NULL;

    (void)state;
    r = run(script, 1, PROV_OK, 1);
    assert_int_equal(prov_result_to_json(r, &json), PROV_OK);
    assert_string_equal(json, "{\"registrationId\":\"my-device-01\",\"deviceId\":\"dev-id-1\","
                              "\"assignedHub\":\"hub-a.example.com\",\"status\":\"assigned\","
                              "\"substatus\":\"initialAssignment\","
                              "\"createdDateTimeUtc\":\"2026-11-26T01:02:03.1234567Z\","
                              "\"lastUpdatedDateTimeUtc\":\"2026-11-26T01:02:04.1234567Z\","
                              "\"etag\":\"AAAAAAAAAAE=\",\"operationId\":\"op-1\","
                              "\"enrollmentGroupId\":\"fleet\","
                              "\"payload\":{\"interval\":30,\"topics\":[\"a\"]}}");
    free(json);
    prov_result_free(r);

    failed.http_status = 401;
    failed.error_code = 401002;
    failed.error_message = "no";
    assert_int_equal(prov_result_to_json(&failed, &json), PROV_OK);
    assert_string_equal(json, "{\"httpStatus\":401,\"errorCode\":401002,\"errorMessage\":\"no\"}");
    free(json);

    failed.payload = "{bad";
    json = (char *)"untouched";
    assert_int_equal(prov_result_to_json(&failed, &json), PROV_ERR_PROTOCOL);
    assert_null(json);
    assert_int_equal(prov_result_to_json(NULL, &json), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_result_to_json(&failed, NULL), PROV_ERR_INVALID_ARG);
    prov_result_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(assigned_answer_fills_the_result),
        cmocka_unit_test(minimal_assigned_answer),
        cmocka_unit_test(x509_group_is_recorded),
        cmocka_unit_test(assigning_is_polled_until_assigned),
        cmocka_unit_test(assigning_over_200_is_polled_too),
        cmocka_unit_test(failed_registration_carries_its_error),
        cmocka_unit_test(disabled_status_is_a_failure),
        cmocka_unit_test(refusal_carries_the_dps_error),
        cmocka_unit_test(refusal_without_a_json_body),
        cmocka_unit_test(untrustworthy_answers_are_protocol_errors),
        cmocka_unit_test(response_setters_check_their_input),
        cmocka_unit_test(result_renders_as_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
