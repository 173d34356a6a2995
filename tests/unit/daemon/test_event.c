/* Events and webhooks as receivers and operators see them: the signature of a delivery, the
 * retry schedule, the JSON bodies of each event type, and the checks of a webhook document. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "webhook.h"

/* The value receivers compute, by two independent tools:
 *   printf '%s' '1795654923.{"id":"0b7e","type":"device.registered"}' |
 *       openssl dgst -sha256 -hmac 'provd-test-secret-0123456789'
 * and Python's hmac.new(secret, msg, hashlib.sha256).hexdigest(). */
static void test_signature_vector(void **state) {
    const char *body = "{\"id\":\"0b7e\",\"type\":\"device.registered\"}";
    char sig[EVENT_SIGNATURE_LEN];
    (void)state;

    assert_int_equal(
        event_sign("provd-test-secret-0123456789", 1795654923, body, strlen(body), sig), 0);
    assert_string_equal(sig,
                        "sha256=fef0114d6fdbecf9a3041c4cbcaaae5309a0db773a43fb82c923c33cf46fde7f");
    /* Another time stamp, another signature: a replayed body does not verify with a new one. */
    assert_int_equal(
        event_sign("provd-test-secret-0123456789", 1795654924, body, strlen(body), sig), 0);
    assert_string_not_equal(
        sig, "sha256=fef0114d6fdbecf9a3041c4cbcaaae5309a0db773a43fb82c923c33cf46fde7f");
    /* The body is signed by its length, not up to a NUL. */
    assert_int_equal(event_sign("provd-test-secret-0123456789", 1795654923, body, 5, sig), 0);
    assert_string_not_equal(
        sig, "sha256=fef0114d6fdbecf9a3041c4cbcaaae5309a0db773a43fb82c923c33cf46fde7f");
}

static void test_retry_schedule(void **state) {
    /* 1 s, 2 s, 4 s ... up to 10 min, each between half and all of it. */
    static const int64_t full[] = {1000,  2000,   4000,   8000,   16000,  32000,
                                   64000, 128000, 256000, 512000, 600000, 600000};
    (void)state;

    for (int a = 1; a <= 12; a++) {
        int64_t d = full[a - 1];

        assert_int_equal(event_retry_delay_ms(1000, 600000, a, 0), d - d / 2);
        assert_int_equal(event_retry_delay_ms(1000, 600000, a, UINT32_MAX / 2 + 1),
                         d - d / 2 + d / 4);
        assert_true(event_retry_delay_ms(1000, 600000, a, UINT32_MAX) < d);
        assert_true(event_retry_delay_ms(1000, 600000, a, UINT32_MAX) >= d - d / 1000 - 1);
    }
    /* Far past the cap, and with a cap below the base, the cap holds. */
    assert_int_equal(event_retry_delay_ms(1000, 600000, 1000000, 0), 300000);
    assert_int_equal(event_retry_delay_ms(1000, 100, 1, 0), 50);
    assert_int_equal(event_retry_delay_ms(20, 100, 3, 0), 40);
}

static json_t *body_of(const struct store_event *ev) {
    json_error_t jerr;
    json_t *v = json_loads(ev->body, JSON_REJECT_DUPLICATES, &jerr);

    assert_non_null(v);
    return v;
}

static void test_device_event_shape(void **state) {
    const struct event_device d = {
        .registration_id = "dev-1",
        .device_id = "dev-1",
        .group_id = "fleet",
        .status = "assigned",
        .substatus = "deviceDataMigrated",
        .assigned_hub = "hub-b.example.com",
        .previous_hub = "hub-a.example.com",
        .operation_id = "op-1",
        .http_status = 200,
        .error_code = 0,
        .reason = "assigned to hub-b.example.com",
        .tracking_id = "trk-1",
    };
    struct store_event ev;
    json_t *v;
    (void)state;

    assert_int_equal(
        event_device(&ev, EVENT_DEVICE_REPROVISIONED, "2026-11-26T01:02:03.0000000Z", &d), 0);
    assert_string_equal(ev.type, "device.reprovisioned");
    assert_string_equal(ev.subject, "dev-1");
    assert_string_equal(ev.ts, "2026-11-26T01:02:03.0000000Z");
    assert_int_equal(strlen(ev.id), 36);
    v = body_of(&ev);
    /* Members in the documented order, nothing else. */
    assert_int_equal(json_object_size(v), 5);
    assert_string_equal(json_string_value(json_object_get(v, "id")), ev.id);
    assert_string_equal(json_string_value(json_object_get(v, "type")), "device.reprovisioned");
    assert_string_equal(json_string_value(json_object_get(v, "timestampUtc")),
                        "2026-11-26T01:02:03.0000000Z");
    assert_string_equal(json_string_value(json_object_get(v, "subject")), "dev-1");
    assert_true(strncmp(ev.body, "{\"id\":", 6) == 0);
    assert_non_null(strstr(ev.body, "\"subject\":\"dev-1\",\"data\":{\"registrationId\":"));
    json_decref(v);
    assert_string_equal(
        strstr(ev.body, "\"data\":"),
        "\"data\":{\"registrationId\":\"dev-1\",\"deviceId\":\"dev-1\","
        "\"enrollmentGroupId\":\"fleet\",\"status\":\"assigned\","
        "\"substatus\":\"deviceDataMigrated\",\"assignedHub\":\"hub-b.example.com\","
        "\"previousHub\":\"hub-a.example.com\",\"operationId\":\"op-1\","
        "\"httpStatus\":200,\"errorCode\":0,"
        "\"reason\":\"assigned to hub-b.example.com\",\"trackingId\":\"trk-1\"}}");
    store_event_clear(&ev);
}

static void test_refused_event_leaves_out_what_is_unknown(void **state) {
    /* A path segment the front end refused may hold any bytes: they reach the event as '?'. */
    const struct event_device d = {
        .registration_id = "bad\xff\xfe id",
        .http_status = 401,
        .error_code = 401002,
        .reason = "SAS token refused: bad signature",
        .tracking_id = "trk-2",
    };
    struct store_event ev;
    json_t *v, *data;
    (void)state;

    assert_int_equal(event_device(&ev, EVENT_DEVICE_REFUSED, "2026-11-26T01:02:03.0000000Z", &d),
                     0);
    assert_string_equal(ev.subject, "bad?? id");
    v = body_of(&ev);
    data = json_object_get(v, "data");
    assert_int_equal(json_object_size(data), 5);
    assert_string_equal(json_string_value(json_object_get(data, "registrationId")), "bad?? id");
    assert_int_equal(json_integer_value(json_object_get(data, "httpStatus")), 401);
    assert_int_equal(json_integer_value(json_object_get(data, "errorCode")), 401002);
    assert_null(json_object_get(data, "deviceId"));
    assert_null(json_object_get(data, "assignedHub"));
    json_decref(v);
    store_event_clear(&ev);
}

static void test_enrollment_event_shape(void **state) {
    const struct event_enrollment grp = {STORE_GROUP, "fleet", "replaced", "disabled"};
    const struct event_enrollment del = {STORE_ENROLLMENT, "dev-9", "deleted", NULL};
    struct store_event ev;
    (void)state;

    assert_int_equal(event_enrollment(&ev, "2026-11-26T01:02:03.0000000Z", &grp), 0);
    assert_string_equal(ev.type, "enrollment.changed");
    assert_string_equal(ev.subject, "fleet");
    assert_string_equal(strstr(ev.body, "\"data\":"),
                        "\"data\":{\"kind\":\"enrollmentGroup\",\"enrollmentGroupId\":\"fleet\","
                        "\"change\":\"replaced\",\"provisioningStatus\":\"disabled\"}}");
    store_event_clear(&ev);
    assert_int_equal(event_enrollment(&ev, "2026-11-26T01:02:03.0000000Z", &del), 0);
    assert_string_equal(strstr(ev.body, "\"data\":"),
                        "\"data\":{\"kind\":\"enrollment\",\"registrationId\":\"dev-9\","
                        "\"change\":\"deleted\"}}");
    store_event_clear(&ev);
}

static void test_event_types(void **state) {
    (void)state;
    assert_int_equal(event_type_bit("device.refused"), 2);
    assert_int_equal(event_type_bit("device.reprovisioned"), 4);
    assert_int_equal(event_type_bit("device.Registered"), 0);
    assert_int_equal(event_type_bit("*"), 0);
    assert_null(event_types[EVENT_NTYPES]);
    assert_int_equal(event_type_bit("device.registered"), 1);
    assert_int_equal(event_type_bit("enrollment.changed"), 8);
    assert_int_equal(event_type_bit("device"), 0);
    assert_int_equal(event_types_set("*"), 15);
    assert_int_equal(event_types_set("device.refused,enrollment.changed"), 2 | 8);
    assert_int_equal(event_types_set("device.reprovisioned"), 4);
    assert_int_equal(event_types_set("device.refused,,nonsense,device.refused"), 2);
    assert_int_equal(event_types_set(""), 0);
}

/* webhook_from_json on the JSON text in, for webhook "hook", with no stored webhook. */
static int from_text(const char *in, struct store_webhook *out, int *generated, char *msg) {
    json_t *v = json_loads(in, 0, NULL);
    int rc;

    assert_non_null(v);
    rc = webhook_from_json("hook", v, NULL, out, generated, msg, 256);
    json_decref(v);
    return rc;
}

static void test_webhook_documents(void **state) {
    struct store_webhook w, prev;
    char msg[256];
    int gen;
    (void)state;

    assert_int_equal(from_text("{\"url\":\"https://h.example:8443/hook?x=1\"}", &w, &gen, msg), 0);
    assert_string_equal(w.id, "hook");
    assert_string_equal(w.events, "*");
    assert_int_equal(w.enabled, 1);
    assert_int_equal(gen, 1);
    assert_int_equal(strlen(w.secret), 44); /* base64 of 32 random bytes */
    prev = w;

    /* Types are kept in the documented order whatever the order given; the secret stays. */
    json_t *v = json_loads("{\"url\":\"https://h.example/\",\"enabled\":false,"
                           "\"events\":[\"enrollment.changed\",\"device.registered\","
                           "\"enrollment.changed\"],\"id\":\"HOOK\"}",
                           0, NULL);
    assert_int_equal(webhook_from_json("hook", v, &prev, &w, &gen, msg, sizeof(msg)), 0);
    json_decref(v);
    assert_string_equal(w.events, "device.registered,enrollment.changed");
    assert_int_equal(w.enabled, 0);
    assert_int_equal(gen, 0);
    assert_string_equal(w.secret, prev.secret);

    v = webhook_view(&w, 0);
    assert_null(json_object_get(v, "secret"));
    assert_int_equal(json_array_size(json_object_get(v, "events")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "events"), 1)),
                        "enrollment.changed");
    json_decref(v);
    v = webhook_view(&w, 1);
    assert_string_equal(json_string_value(json_object_get(v, "secret")), prev.secret);
    json_decref(v);
    store_webhook_clear(&w);
    store_webhook_clear(&prev);

    assert_int_equal(from_text("{\"url\":\"https://h/\",\"secret\":\"0123456789abcdef\","
                               "\"events\":[\"*\",\"device.refused\"]}",
                               &w, &gen, msg),
                     0);
    assert_string_equal(w.secret, "0123456789abcdef");
    assert_string_equal(w.events, "*");
    assert_int_equal(gen, 0);
    store_webhook_clear(&w);
}

static void test_webhook_documents_refused(void **state) {
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"{}", "url is required"},
        {"[]", "the body must be a JSON object"},
        {"{\"url\":\"http://h.example/\"}", "url must be an https URL"},
        {"{\"url\":\"h.example/hook\"}", "url is not a valid absolute URL"},
        {"{\"url\":\"https://u:p@h.example/\"}", "url must not carry a user name or password"},
        {"{\"url\":\"https://h.example/a b\"}", "url is not a valid absolute URL"},
        {"{\"url\":7}", "url must be a string"},
        {"{\"url\":\"https://h/\",\"events\":[]}",
         "events must be a non-empty array of event types"},
        {"{\"url\":\"https://h/\",\"events\":\"*\"}",
         "events must be a non-empty array of event types"},
        {"{\"url\":\"https://h/\",\"events\":[\"device.deleted\"]}",
         "events[0] \"device.deleted\" is not an event type"},
        {"{\"url\":\"https://h/\",\"events\":[\"*\",3]}", "events[1] is not a string"},
        {"{\"url\":\"https://h/\",\"enabled\":\"yes\"}", "enabled must be true or false"},
        {"{\"url\":\"https://h/\",\"secret\":\"short\"}", "secret must have 16 to 128 characters"},
        {"{\"url\":\"https://h/\",\"secret\":\"0123456789 abcdef\"}",
         "secret must be printable ASCII without spaces"},
        {"{\"url\":\"https://h/\",\"id\":\"other\"}", "id differs from the ID in the path"},
        {"{\"url\":\"https://h/\",\"urls\":[]}", "unknown field \"urls\""},
    };
    struct store_webhook w;
    char msg[256];
    int gen;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(from_text(bad[i].in, &w, &gen, msg), -1);
        assert_string_equal(msg, bad[i].msg);
        assert_null(w.id);
        assert_null(w.secret);
    }
}

static void test_delivery_view(void **state) {
    struct store_delivery d = {
        .id = 7,
        .event_id = "e-1",
        .type = "device.registered",
        .subject = "dev-1",
        .webhook_id = "hook",
        .state = STORE_DELIVERY_FAILED,
        .attempts = 3,
        .created_ms = INT64_C(1795654923456),
        .last_ms = INT64_C(1795654925000),
        .last_status = 503,
        .last_error = "the webhook answered HTTP 503",
        .done_ms = INT64_C(1795654925000),
        .body = "{\"id\":\"e-1\"}",
    };
    json_t *v;
    char *text;
    (void)state;

    v = delivery_view(&d, 1);
    text = json_dumps(v, JSON_COMPACT);
    assert_string_equal(text, "{\"id\":7,\"eventId\":\"e-1\",\"type\":\"device.registered\","
                              "\"subject\":\"dev-1\",\"webhookId\":\"hook\",\"state\":\"failed\","
                              "\"attempts\":3,\"createdUtc\":\"2026-11-26T01:02:03.4560000Z\","
                              "\"lastAttemptUtc\":\"2026-11-26T01:02:05.0000000Z\","
                              "\"lastStatus\":503,"
                              "\"lastError\":\"the webhook answered HTTP 503\","
                              "\"failedUtc\":\"2026-11-26T01:02:05.0000000Z\","
                              "\"event\":{\"id\":\"e-1\"}}");
    free(text);
    json_decref(v);
    d.state = STORE_DELIVERY_PENDING;
    d.next_ms = INT64_C(1795654926000);
    v = delivery_view(&d, 0);
    assert_string_equal(json_string_value(json_object_get(v, "nextAttemptUtc")),
                        "2026-11-26T01:02:06.0000000Z");
    assert_null(json_object_get(v, "event"));
    assert_null(json_object_get(v, "failedUtc"));
    json_decref(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_device_event_shape),
        cmocka_unit_test(test_refused_event_leaves_out_what_is_unknown),
        cmocka_unit_test(test_enrollment_event_shape),
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_webhook_documents),
        cmocka_unit_test(test_webhook_documents_refused),
        cmocka_unit_test(test_delivery_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
