/* Unit tests for lib/client.c and lib/errors.c: settings and their validation, the error
 * descriptions, key derivation against the vectors, and a log that never shows a secret. */
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

static void strerror_describes_every_error(void **state) {
    const char *seen[PROV_ERR_IO + 1];
    int e, i;

    (void)state;
    for (e = PROV_OK; e <= PROV_ERR_IO; e++) {
        seen[e] = prov_strerror((prov_err)e);
        assert_non_null(seen[e]);
        assert_string_not_equal(seen[e], "unknown error");
        for (i = 0; i < e; i++)
            assert_string_not_equal(seen[i], seen[e]);
    }
    assert_string_equal(prov_strerror((prov_err)(PROV_ERR_IO + 1)), "unknown error");
    assert_string_equal(prov_strerror((prov_err)-1), "unknown error");
    assert_string_equal(prov_version(), PROV_VERSION);
}

static void endpoint_must_be_https_with_a_host(void **state) {
    static const char *const bad[] = {
        "http://h",      "h:8443",         "https://", "https:///path", "https://h/a b",
        "https://h?x=1", "https://h#frag", "ftp://h",  "https://h\n",   "",
    };
    prov_client *c = NULL;
    size_t i;

    (void)state;
    assert_int_equal(prov_client_new(&c), PROV_OK);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(prov_client_set_endpoint(c, bad[i]), PROV_ERR_INVALID_ARG);
        assert_true(strlen(prov_client_last_error(c)) > 0);
    }
    assert_int_equal(prov_client_set_endpoint(c, NULL), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_endpoint(c, "HTTPS://h:1"), PROV_OK);
    assert_string_equal(prov_client_last_error(c), "");
    assert_int_equal(prov_client_set_endpoint(c, "https://[::1]:8443/"), PROV_OK);
    prov_client_free(c);
}

static void identifiers_are_checked(void **state) {
    prov_client *c = NULL;
    char long_id[130];

    (void)state;
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_registration_id(c, ""), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_registration_id(c, "-dev"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_registration_id(c, "dev/1"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_registration_id(c, "dev&1"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_registration_id(c, long_id), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_registration_id(c, NULL), PROV_ERR_INVALID_ARG);
    assert_non_null(strstr(prov_client_last_error(c), "invalid registration ID"));
    long_id[128] = '\0';
    assert_int_equal(prov_client_set_registration_id(c, long_id), PROV_OK);
    assert_int_equal(prov_client_set_id_scope(c, "0ne/00"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_id_scope(c, ""), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_id_scope(c, NULL), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_id_scope(c, "0ne00ABCDEF"), PROV_OK);
    prov_client_free(c);
}

static void keys_must_be_base64(void **state) {
    prov_client *c = NULL;

    (void)state;
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_symmetric_key(c, "not base64!"), PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_group_key(c, "abc"), PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_symmetric_key(c, ""), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_group_key(c, NULL), PROV_ERR_INVALID_ARG);
    /* The message names the kind of key, never the key. */
    assert_string_equal(prov_client_last_error(c), "group key is missing");
    assert_int_equal(prov_client_set_symmetric_key(c, VEC_KEY), PROV_OK);
    assert_int_equal(prov_client_set_group_key(c, VEC_GROUP_KEY), PROV_OK);
    prov_client_free(c);
}

static void other_settings_are_checked(void **state) {
    prov_client *c = NULL;

    (void)state;
    assert_int_equal(prov_client_new(NULL), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_payload(c, "{\"a\":"), PROV_ERR_INVALID_ARG);
    assert_non_null(strstr(prov_client_last_error(c), "payload is not valid JSON"));
    assert_int_equal(prov_client_set_payload(c, "[1,2] x"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_payload(c, "42"), PROV_OK);
    assert_int_equal(prov_client_set_ca_file(c, ""), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_ca_file(c, PROV_TEST_DATA "/ca/root.pem"), PROV_OK);
    assert_int_equal(prov_client_set_ca_file(c, NULL), PROV_OK);
    assert_int_equal(prov_client_set_deadline(c, 0), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_deadline(c, 1), PROV_OK);
    assert_int_equal(prov_client_set_request_timeout(c, 0), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_sas_ttl(c, 0), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_backoff(c, 0, 10), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_backoff(c, 10, 9), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_backoff(c, 10, 10), PROV_OK);
    assert_int_equal(prov_client_set_transport(c, NULL), PROV_OK);
    assert_int_equal(prov_client_set_deadline(NULL, 1), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_endpoint(NULL, "https://h"), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_transport(NULL, NULL), PROV_ERR_INVALID_ARG);
    prov_client_set_log(NULL, NULL, NULL, PROV_LOG_DEBUG);
    prov_client_free(c);
    prov_client_free(NULL);
}

static void derived_keys_match_the_vectors(void **state) {
    char out[PROV_DEVICE_KEY_LEN];
    json_t *v;
    size_t i;

    (void)state;
    json_array_foreach(json_object_get(vectors, "group_key_derivation"), i, v) {
        assert_int_equal(prov_derive_device_key(vector_str(v, "group_key_b64"),
                                                vector_str(v, "registration_id"), out),
                         PROV_OK);
        assert_string_equal(out, vector_str(v, "derived_key_b64"));
    }
    assert_true(i >= 2);
    assert_int_equal(prov_derive_device_key("!!", "dev", out), PROV_ERR_CRYPTO);
    assert_int_equal(prov_derive_device_key(NULL, "dev", out), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_derive_device_key(VEC_GROUP_KEY, NULL, out), PROV_ERR_INVALID_ARG);
}

struct log_capture {
    char text[16384];
    int count[4];
};

static void capture(void *ctx, prov_log_level level, const char *msg) {
    struct log_capture *cap = ctx;
    size_t len = strlen(cap->text);

    assert_true(level >= PROV_LOG_ERROR && level <= PROV_LOG_DEBUG);
    assert_null(strchr(msg, '\n'));
    cap->count[level]++;
    snprintf(cap->text + len, sizeof(cap->text) - len, "%s\n", msg);
}

static void log_shows_no_secret(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 503, FAKE_JSON, "1", "{}", 0},
        {PROV_OK, 202, FAKE_JSON, "1", "{\"operationId\":\"op-1\",\"status\":\"assigning\"}", 0},
        FAKE_ASSIGNED,
    };
    struct log_capture cap;
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;

    (void)state;
    memset(&cap, 0, sizeof(cap));
    fake_init(&f, script, 3);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_group_key(c, VEC_GROUP_KEY), PROV_OK);
    prov_client_set_log(c, capture, &cap, PROV_LOG_DEBUG);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_true(cap.count[PROV_LOG_DEBUG] >= 6);   /* each request and each answer */
    assert_int_equal(cap.count[PROV_LOG_WARN], 1); /* the 503 */
    assert_true(cap.count[PROV_LOG_INFO] >= 1);
    assert_non_null(strstr(cap.text, "PUT https://prov.example.com:8443/"));
    assert_null(strstr(cap.text, VEC_GROUP_KEY));
    assert_null(strstr(cap.text, VEC_KEY));
    assert_null(strstr(cap.text, "SharedAccessSignature"));
    assert_null(strstr(cap.text, "sig="));
    prov_result_free(r);

    /* The level is a ceiling: at warn, the debug and info lines disappear. */
    memset(&cap, 0, sizeof(cap));
    prov_client_set_log(c, capture, &cap, PROV_LOG_WARN);
    fake_free(&f);
    fake_init(&f, script, 3);
    fake_install(&f, c);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_int_equal(cap.count[PROV_LOG_DEBUG] + cap.count[PROV_LOG_INFO], 0);
    assert_int_equal(cap.count[PROV_LOG_WARN], 1);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
}

/* A server's text goes into the log and the last error with its control characters replaced:
 * a newline in an error message cannot start a line of the server's own. */
static void server_text_cannot_forge_lines(void **state) {
    static const struct fake_answer refused[] = {
        {PROV_OK, 401, FAKE_JSON, NULL,
         "{\"errorCode\":401002,\"trackingId\":\"t\",\"message\":\"bad\\nprov-agent: "
         "provisioned: device evil\\r\\u001b[2K\\u007f\"}",
         0},
    };
    static const struct fake_answer failed[] = {
        {PROV_OK, 200, FAKE_JSON, NULL,
         "{\"operationId\":\"op-1\",\"status\":\"failed\",\"registrationState\":{"
         "\"registrationId\":\"my-device-01\",\"status\":\"failed\",\"errorCode\":"
         "403001,\"errorMessage\":\"no\\nprov-agent: provisioned\"}}",
         0},
    };
    struct log_capture cap;
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    const char *err;

    (void)state;
    memset(&cap, 0, sizeof(cap));
    fake_init(&f, refused, 1);
    c = fake_client(&f);
    prov_client_set_log(c, capture, &cap, PROV_LOG_DEBUG);
    assert_int_equal(prov_register(c, &r), PROV_ERR_REFUSED);
    err = prov_client_last_error(c);
    assert_non_null(strstr(err, "bad?prov-agent: provisioned: device evil??[2K?"));
    for (; *err != '\0'; err++)
        assert_false((unsigned char)*err < 0x20 || (unsigned char)*err == 0x7f);
    assert_non_null(strstr(cap.text, "bad?prov-agent"));
    /* The result keeps the message as the server sent it. */
    assert_non_null(r);
    assert_non_null(strchr(r->error_message, '\n'));
    prov_result_free(r);
    r = NULL;

    fake_free(&f);
    fake_init(&f, failed, 1);
    fake_install(&f, c);
    assert_int_equal(prov_register(c, &r), PROV_ERR_REGISTRATION_FAILED);
    assert_non_null(strstr(prov_client_last_error(c), "no?prov-agent: provisioned"));
    assert_null(strchr(prov_client_last_error(c), '\n'));
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strerror_describes_every_error),
        cmocka_unit_test(endpoint_must_be_https_with_a_host),
        cmocka_unit_test(identifiers_are_checked),
        cmocka_unit_test(keys_must_be_base64),
        cmocka_unit_test(other_settings_are_checked),
        cmocka_unit_test(derived_keys_match_the_vectors),
        cmocka_unit_test(log_shows_no_secret),
        cmocka_unit_test(server_text_cannot_forge_lines),
    };
    return cmocka_run_group_tests(tests, vectors_load, vectors_free);
}
