/* Unit tests of daemon/template.c (configuration templates: every variable, escapes, unknown
 * variables refused, payload fields, the output cap as the device's JSON counts it, the
 * precedence of merged templates) and of daemon/custom_alloc.c (what the custom allocation
 * webhook is sent and how its answer is read); the messages of both stay UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "custom_alloc.h"
#include "template.h"

static json_t *parse(const char *text) {
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    if (v == NULL)
        fail_msg("test input is not JSON: %s: %s", text, jerr.text);
    return v;
}

/* Asserts that two JSON values are equal, showing both when they are not. */
static void assert_json(json_t *got, const char *want_text) {
    json_t *want = parse(want_text);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    assert_non_null(g);
    assert_string_equal(g, w);
    free(g);
    free(w);
    json_decref(want);
}

static const struct template_vars VARS = {
    .device_id = "device-7",
    .registration_id = "sensor-7",
    .endpoint_host = "hub-a.example.com",
    .endpoint_port = 8883,
    .endpoint_protocol = "mqtts",
    .group = "fleet",
};

static json_t *render(const char *tmpl_text, const struct template_vars *v, char *err,
                      size_t errlen) {
    json_t *tmpl = parse(tmpl_text);
    json_t *out = template_render(tmpl, v, err, errlen);

    json_decref(tmpl);
    return out;
}

static void test_every_variable(void **state) {
    char err[160];
    json_t *out;
    (void)state;

    out = render("{\"id\":\"${deviceId}\",\"reg\":\"${registrationId}\","
                 "\"url\":\"${endpoint.protocol}://${endpoint.host}:${endpoint.port}\","
                 "\"topics\":[\"fleets/${group}/devices/${deviceId}/telemetry\",7,true,null],"
                 "\"nested\":{\"deeper\":{\"v\":\"${registrationId}-${deviceId}\"}},"
                 "\"${deviceId}\":\"keys are not rendered\",\"interval\":30}",
                 &VARS, err, sizeof(err));
    assert_non_null(out);
    assert_json(out, "{\"id\":\"device-7\",\"reg\":\"sensor-7\","
                     "\"url\":\"mqtts://hub-a.example.com:8883\","
                     "\"topics\":[\"fleets/fleet/devices/device-7/telemetry\",7,true,null],"
                     "\"nested\":{\"deeper\":{\"v\":\"sensor-7-device-7\"}},"
                     "\"${deviceId}\":\"keys are not rendered\",\"interval\":30}");
    json_decref(out);
}

static void test_escapes_and_plain_dollars(void **state) {
    char err[160];
    json_t *out;
    struct template_vars v = VARS;
    (void)state;

    v.group = NULL;
    out = render("[\"$${deviceId}\",\"cost: $5\",\"$$\",\"$\",\"a$\",\"${group}|\"]", &v, err,
                 sizeof(err));
    assert_non_null(out);
    assert_json(out, "[\"${deviceId}\",\"cost: $5\",\"$\",\"$\",\"a$\",\"|\"]");
    json_decref(out);
}

static void test_payload_fields(void **state) {
    struct template_vars v = VARS;
    char err[160];
    json_t *out;
    (void)state;

    v.payload = parse("{\"site\":\"lab-3\",\"floor\":2,\"loc\":{\"room\":\"7b\"},"
                      "\"tags\":[1,\"x\"],\"off\":false,\"nothing\":null}");
    out = render("{\"a\":\"${payload.site}/${payload.floor}\",\"b\":\"${payload.loc.room}\","
                 "\"c\":\"${payload.loc}\",\"d\":\"${payload.tags}\",\"e\":\"${payload.off}\","
                 "\"f\":\"[${payload.missing}][${payload.site.deeper}][${payload.nothing}]\"}",
                 &v, err, sizeof(err));
    assert_non_null(out);
    assert_json(out, "{\"a\":\"lab-3/2\",\"b\":\"7b\",\"c\":\"{\\\"room\\\":\\\"7b\\\"}\","
                     "\"d\":\"[1,\\\"x\\\"]\",\"e\":\"false\",\"f\":\"[][][]\"}");
    json_decref(out);
    /* A device that sent no payload: its fields render as "". */
    json_decref((json_t *)v.payload);
    v.payload = NULL;
    out = render("\"<${payload.site}>\"", &v, err, sizeof(err));
    assert_json(out, "\"<>\"");
    json_decref(out);
}

static void assert_check_refused(const char *tmpl_text, const char *message) {
    json_t *tmpl = parse(tmpl_text);
    char err[160];

    assert_int_equal(template_check(tmpl, "configuration", err, sizeof(err)), -1);
    assert_string_equal(err, message);
    assert_null(template_render(tmpl, &VARS, err, sizeof(err)));
    assert_string_equal(err, message);
    json_decref(tmpl);
}

static void test_unknown_variables_refused(void **state) {
    json_t *ok;
    char err[160];
    (void)state;

    assert_check_refused("{\"a\":[\"x\",\"${deviceid}\"]}",
                         "configuration.a[1]: unknown variable ${deviceid}");
    assert_check_refused("{\"a\":{\"b\":\"${endpoint.user}\"}}",
                         "configuration.a.b: unknown variable ${endpoint.user}");
    assert_check_refused("\"${payload.}\"", "configuration: unknown variable ${payload.}");
    assert_check_refused("\"${payload.a..b}\"", "configuration: unknown variable ${payload.a..b}");
    assert_check_refused("\"${payload}\"", "configuration: unknown variable ${payload}");
    assert_check_refused("\"${}\"", "configuration: unknown variable ${}");
    assert_check_refused("\"x ${deviceId\"", "configuration: \"${\" without a closing \"}\"");
    /* A field name longer than 255 characters, which could only be looked up cut short. */
    char long_field[320], text[400], want[400];
    memset(long_field, 'a', 256);
    long_field[256] = '\0';
    snprintf(text, sizeof(text), "\"${payload.%s}\"", long_field);
    snprintf(want, sizeof(want), "configuration: unknown variable ${payload.%.53s", long_field);
    json_t *tmpl = parse(text);
    assert_int_equal(template_check(tmpl, "configuration", err, sizeof(err)), -1);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s", err);
    json_decref(tmpl);
    long_field[255] = '\0';
    snprintf(text, sizeof(text), "\"${payload.%s}\"", long_field);
    tmpl = parse(text);
    assert_int_equal(template_check(tmpl, "configuration", err, sizeof(err)), 0);
    json_decref(tmpl);
    ok = parse("{\"a\":[\"${deviceId}\",1,{\"b\":\"${payload.x-y.z_1}\"}],\"c\":\"$${nope}\"}");
    assert_int_equal(template_check(ok, "configuration", err, sizeof(err)), 0);
    json_decref(ok);
}

static void test_output_capped(void **state) {
    struct template_vars v = VARS;
    char *big = malloc(70000), err[160];
    json_t *arr = json_array(), *out;
    (void)state;

    memset(big, 'x', 69999);
    big[69999] = '\0';
    v.payload = json_pack("{s:s}", "blob", big);
    for (int i = 0; i < 4; i++)
        json_array_append_new(arr, json_string("${payload.blob}"));
    out = template_render(arr, &v, err, sizeof(err));
    assert_null(out);
    assert_string_equal(err, "configuration[3]: the rendered configuration exceeds 262144 bytes");
    json_array_remove(arr, 3);
    out = template_render(arr, &v, err, sizeof(err));
    assert_non_null(out);
    json_decref(out);
    json_decref(arr);
    json_decref((json_t *)v.payload);
    free(big);
}

/* The cap is on the rendering as the device receives it, JSON: a payload field of control
 * characters or quotes counts with its escapes ("\u0001" is six bytes there, "\"" two). */
static void test_output_capped_as_json(void **state) {
    struct template_vars v = VARS;
    char *ctl = malloc(30001), *quotes = malloc(100001), err[160];
    json_t *tmpl, *out;
    (void)state;

    memset(ctl, 1, 30000);
    ctl[30000] = '\0';
    memset(quotes, '"', 100000);
    quotes[100000] = '\0';
    v.payload = json_pack("{s:s, s:s}", "ctl", ctl, "q", quotes);
    tmpl = parse("{\"a\":\"${payload.ctl}\"}");
    out = template_render(tmpl, &v, err, sizeof(err));
    assert_non_null(out);
    json_decref(out);
    json_decref(tmpl);
    tmpl = parse("{\"a\":\"${payload.ctl}\",\"b\":\"${payload.ctl}\"}");
    assert_null(template_render(tmpl, &v, err, sizeof(err)));
    assert_string_equal(err, "configuration.b: the rendered configuration exceeds 262144 bytes");
    json_decref(tmpl);
    tmpl = parse("[\"${payload.q}\",\"${payload.q}\"]");
    assert_null(template_render(tmpl, &v, err, sizeof(err)));
    assert_string_equal(err, "configuration[1]: the rendered configuration exceeds 262144 bytes");
    json_decref(tmpl);
    json_decref((json_t *)v.payload);
    free(ctl);
    free(quotes);
}

/* Messages quote member names and variables cut short; a cut inside a character must not leave
 * half of it, since the message goes into a JSON answer. */
static void test_messages_stay_utf8(void **state) {
    char err[160], key[128], text[512], want[160];
    json_t *tmpl, *s;
    (void)state;

    /* A member name of 39 ASCII characters and then "é" (2 bytes): quoted up to 40 bytes, the
     * cut falls inside the "é". */
    memset(key, 'a', 39);
    strcpy(key + 39, "\xc3\xa9\xc3\xa9");
    snprintf(text, sizeof(text), "{\"%s\":\"${nope}\"}", key);
    tmpl = parse(text);
    assert_int_equal(template_check(tmpl, "configuration", err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "configuration.%.39s?: unknown variable ${nope}", key);
    assert_string_equal(err, want);
    assert_non_null(s = json_string(err));
    json_decref(s);
    json_decref(tmpl);
    /* A long unknown variable of 3-byte characters, quoted up to 64 bytes: "xy", twenty "€"
     * and two bytes of the next one. */
    strcpy(text, "\"${xy");
    for (int i = 0; i < 23; i++)
        strcat(text, "\xe2\x82\xac");
    strcat(text, "}\"");
    tmpl = parse(text);
    assert_null(template_render(tmpl, &VARS, err, sizeof(err)));
    strcpy(want, "configuration: unknown variable ${xy");
    for (int i = 0; i < 20; i++)
        strcat(want, "\xe2\x82\xac");
    strcat(want, "??}");
    assert_string_equal(err, want);
    json_decref(tmpl);
}

/* The precedence of templates: group < individual enrollment < webhook. Objects merge member by
 * member at every depth; anything else is replaced. */
static void test_merge_precedence(void **state) {
    json_t *group = parse("{\"tags\":{\"site\":\"lab\",\"tier\":\"bronze\"},"
                          "\"properties\":{\"desired\":{\"interval\":60,\"mode\":\"eco\","
                          "\"list\":[1,2]}}}");
    json_t *indiv = parse("{\"tags\":{\"tier\":\"gold\"},"
                          "\"properties\":{\"desired\":{\"interval\":30,\"list\":[3]}}}");
    json_t *hook = parse("{\"properties\":{\"desired\":{\"mode\":\"turbo\"}}}");
    json_t *a, *b;
    (void)state;

    a = template_merge(group, indiv);
    b = template_merge(a, hook);
    assert_json(b, "{\"tags\":{\"site\":\"lab\",\"tier\":\"gold\"},"
                   "\"properties\":{\"desired\":{\"interval\":30,\"mode\":\"turbo\","
                   "\"list\":[3]}}}");
    /* The inputs are left as they were. */
    assert_json(group, "{\"tags\":{\"site\":\"lab\",\"tier\":\"bronze\"},"
                       "\"properties\":{\"desired\":{\"interval\":60,\"mode\":\"eco\","
                       "\"list\":[1,2]}}}");
    json_decref(a);
    json_decref(b);
    a = template_merge(NULL, indiv);
    assert_json(a, "{\"tags\":{\"tier\":\"gold\"},"
                   "\"properties\":{\"desired\":{\"interval\":30,\"list\":[3]}}}");
    json_decref(a);
    a = template_merge(group, NULL);
    assert_true(json_equal(a, group));
    json_decref(a);
    assert_null(template_merge(NULL, NULL));
    json_decref(group);
    json_decref(indiv);
    json_decref(hook);
}

/* An enrollment as enrollment_parse makes it: the keys are gone from its document. */
static void parsed_group(struct enrollment *e) {
    struct store_doc d = {0};

    d.id = "fleet";
    d.doc = "{\"enrollmentGroupId\":\"fleet\",\"attestation\":{\"type\":\"symmetricKey\","
            "\"symmetricKey\":{\"primaryKey\":\"AAECAwQFBgcICQoLDA0ODw==\"}},"
            "\"provisioningStatus\":\"enabled\",\"allocationPolicy\":\"custom\","
            "\"customAllocationDefinition\":{\"webhookUrl\":\"https://hook.example.com/a?code=s\","
            "\"apiVersion\":\"2021-10-01\"},\"iotHubs\":[\"hub-a\",\"hub-b\"]}";
    d.version = 3;
    assert_int_equal(enrollment_parse(STORE_GROUP, &d, e), 0);
}

static void test_custom_request(void **state) {
    static const char *const linked[] = {"hub-a", "hub-b"};
    struct enrollment e, copy;
    json_t *payload = parse("{\"model\":\"x1\"}"), *req;
    struct custom_alloc_device dev = {"dev-1", "hub-b", "device-1", payload, 0};
    char *text;
    (void)state;

    parsed_group(&e);
    assert_int_equal(enrollment_copy(&e, &copy), 0);
    enrollment_clear(&e);
    assert_null(copy.primary_key);
    assert_string_equal(copy.webhook_url, "https://hook.example.com/a?code=s");
    req = custom_alloc_request(&copy, &dev, linked, 2);
    assert_non_null(req);
    text = json_dumps(req, JSON_COMPACT);
    assert_null(strstr(text, "AAECAwQFBgcICQoLDA0ODw=="));
    assert_null(strstr(text, "primaryKey"));
    free(text);
    assert_json(json_object_get(req, "deviceRuntimeContext"),
                "{\"registrationId\":\"dev-1\",\"currentIotHubHostName\":\"hub-b\","
                "\"currentDeviceId\":\"device-1\",\"symmetricKey\":{},"
                "\"payload\":{\"model\":\"x1\"}}");
    assert_json(json_object_get(req, "linkedHubs"), "[\"hub-a\",\"hub-b\"]");
    assert_string_equal(json_string_value(json_object_get(json_object_get(req, "enrollmentGroup"),
                                                          "allocationPolicy")),
                        "custom");
    json_decref(req);
    /* A first registration: no current hub or device, no payload; attested by certificate. */
    dev = (struct custom_alloc_device){"dev-2", NULL, NULL, NULL, 1};
    req = custom_alloc_request(&copy, &dev, linked, 1);
    assert_json(json_object_get(req, "deviceRuntimeContext"),
                "{\"registrationId\":\"dev-2\",\"x509\":{}}");
    assert_json(json_object_get(req, "linkedHubs"), "[\"hub-a\"]");
    json_decref(req);
    enrollment_clear(&copy);
    json_decref(payload);
}

static long answer(const char *body, json_t **twin, json_t **payload, char *err, size_t errlen) {
    static const char *const linked[] = {"hub-a.example.com", "hub-b.example.com"};

    return custom_alloc_answer(body, strlen(body), linked, 2, twin, payload, err, errlen);
}

static void test_custom_answer(void **state) {
    json_t *twin, *payload;
    char err[160];
    (void)state;

    assert_int_equal(answer("{\"iotHubHostName\":\"HUB-B.example.com\",\"initialTwin\":"
                            "{\"tags\":{\"x\":1}},\"payload\":[1,2]}",
                            &twin, &payload, err, sizeof(err)),
                     1);
    assert_json(twin, "{\"tags\":{\"x\":1}}");
    assert_json(payload, "[1,2]");
    json_decref(twin);
    json_decref(payload);
    assert_int_equal(answer("{\"iotHubHostName\":\"hub-a.example.com\",\"initialTwin\":null}",
                            &twin, &payload, err, sizeof(err)),
                     0);
    assert_null(twin);
    assert_null(payload);

    assert_int_equal(answer("not json", &twin, &payload, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the webhook's answer is not a JSON object: "));
    assert_int_equal(answer("[\"hub-a.example.com\"]", &twin, &payload, err, sizeof(err)), -1);
    assert_string_equal(err, "the webhook's answer is not a JSON object");
    assert_int_equal(answer("{\"iotHubHostName\":7}", &twin, &payload, err, sizeof(err)), -1);
    assert_string_equal(err, "the webhook's answer has no iotHubHostName string");
    assert_int_equal(
        answer("{\"iotHubHostName\":\"hub-c.example.com\"}", &twin, &payload, err, sizeof(err)),
        -1);
    assert_string_equal(
        err, "the webhook chose \"hub-c.example.com\", which is not one of the linkedHubs");
    assert_int_equal(answer("{\"iotHubHostName\":\"hub-a.example.com\",\"initialTwin\":[]}", &twin,
                            &payload, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "the webhook's initialTwin is not an object");
    assert_null(twin);
    assert_null(payload);
}

/* A webhook naming a long host of two-byte characters: the message quotes its first 64 bytes,
 * which end inside a character, and stays UTF-8 (it goes into the device's JSON answer). */
static void test_custom_answer_message_utf8(void **state) {
    char body[256], err[160], want[160], name[128] = "a";
    json_t *twin, *payload, *s;
    (void)state;

    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9");
    snprintf(body, sizeof(body), "{\"iotHubHostName\":\"%s\"}", name);
    assert_int_equal(answer(body, &twin, &payload, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "the webhook chose \"%.63s?\", which is not one of the linkedHubs",
             name);
    assert_string_equal(err, want);
    assert_non_null(s = json_string(err));
    json_decref(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_variable),
        cmocka_unit_test(test_escapes_and_plain_dollars),
        cmocka_unit_test(test_payload_fields),
        cmocka_unit_test(test_unknown_variables_refused),
        cmocka_unit_test(test_output_capped),
        cmocka_unit_test(test_merge_precedence),
        cmocka_unit_test(test_custom_request),
        cmocka_unit_test(test_custom_answer),
        cmocka_unit_test(test_output_capped_as_json),
        cmocka_unit_test(test_messages_stay_utf8),
        cmocka_unit_test(test_custom_answer_message_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
