/* Endpoint documents (endpoint_normalize, daemon/endpoint.c). The input is the body the admin API
 * receives, parsed as http.c parses bodies, then optionally a NUL and the host name of the path;
 * the body is also tried for a few fixed path hosts (a valid one in either case, an invalid one)
 * and for its own hostName. A refusal returns no document and carries 400004 or 400006 (500001
 * when memory runs out), with a NUL-terminated UTF-8 reason that stays within its buffer;
 * 400004 only for a hostName that differs from the path, and always for one when the body
 * without it is accepted. An accepted body gives exactly the canonical members, with the path's
 * host name lower-cased, the defaults the header names for what the body leaves out and what it
 * gives otherwise (the protocol in its canonical spelling, the trust bundle byte for byte). The
 * canonical document is a fixed point of endpoint_normalize, read back by endpoint_parse as
 * provd stores it, and shown to devices with the same trust bundle. */
#include <stdio.h>
#include <strings.h>

#include <jansson.h>

#include "endpoint.h"
#include "fuzz.h"
#include "fuzz_err.h"
#include "hostname.h"
#include "protocol.h"

#define HARNESS "fuzz_endpoint"

/* The buffer the admin API passes (admin_api.c). */
#define REASON_LEN 256

static const char *const CANONICAL[] = {"hostName", "port",        "protocol", "weight",
                                        "enabled",  "trustBundle", "region"};

static void fail(const char *what, const char *host) {
    fprintf(stderr, HARNESS ": path host \"%s\": %s\n", host, what);
    abort();
}

/* Returns the member key of obj, with JSON null taken as absent. */
static json_t *member(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Checks that the member key of the body went into the canonical document as it is, or def
 * when the body leaves it out (def NULL: the member stays absent). */
static void check_kept(json_t *in, json_t *out, const char *key, json_t *def, const char *host) {
    json_t *want = member(in, key), *got = json_object_get(out, key);

    if (want == NULL)
        want = def;
    if ((want == NULL) != (got == NULL) || (want != NULL && !json_equal(want, got)))
        fail(key, host);
}

/* Requires endpoint_normalize to accept in for host and give back want unchanged. */
static void check_fixed_point(const char *host, json_t *in, json_t *want) {
    char err[REASON_LEN];
    json_t *again = NULL;
    int code = -1;

    if (endpoint_normalize(host, in, &again, &code, err, sizeof(err)) != 0 || code != 0 ||
        !json_equal(again, want)) {
        fprintf(stderr, HARNESS ": not a fixed point: %d %s\n", code, err);
        abort();
    }
    json_decref(again);
}

/* Stores out as the admin API does and reads it back as allocation does. */
static void check_stored(json_t *out, const char *host) {
    struct store_doc d = {.version = 3};
    struct endpoint e;
    json_t *view, *bundle = json_object_get(out, "trustBundle");
    json_t *region = json_object_get(out, "region");

    d.id = strdup(json_string_value(json_object_get(out, "hostName")));
    d.doc = json_dumps(out, JSON_COMPACT);
    if (d.id == NULL || d.doc == NULL)
        abort();
    if (endpoint_parse(&d, &e) != 0)
        fail("canonical document not read back", host);
    if (strcmp(e.host, d.id) != 0 || e.port != json_integer_value(json_object_get(out, "port")) ||
        strcmp(e.protocol, json_string_value(json_object_get(out, "protocol"))) != 0 ||
        e.weight != json_integer_value(json_object_get(out, "weight")) ||
        e.enabled != json_is_true(json_object_get(out, "enabled")) ||
        (e.region == NULL) != (region == NULL) ||
        (region != NULL && strcmp(e.region, json_string_value(region)) != 0) ||
        (e.trust_bundle == NULL) != (bundle == NULL) ||
        (bundle != NULL && strcmp(e.trust_bundle, json_string_value(bundle)) != 0))
        fail("canonical document read back otherwise", host);

    view = endpoint_device_view(&e);
    if (view == NULL || (bundle != NULL ? !json_equal(json_object_get(view, "trustBundle"), bundle)
                                        : json_object_get(view, "trustBundle") != NULL))
        fail("device view", host);
    json_decref(view);
    endpoint_clear(&e);
    free(d.id);
    free(d.doc);
}

static void check_canonical(const char *host, json_t *in, json_t *out) {
    const char *key, *name, *protocol;
    json_t *v, *def;
    size_t known = 0;
    int usual = 0;

    json_object_foreach(out, key, v) {
        size_t i = 0;

        while (i < sizeof(CANONICAL) / sizeof(CANONICAL[0]) && strcmp(key, CANONICAL[i]) != 0)
            i++;
        if (i == sizeof(CANONICAL) / sizeof(CANONICAL[0]))
            fail("a member that is not canonical", host);
        known++;
    }
    /* The host name of the path, lower-cased, and one the body may spell in any case. */
    name = json_string_value(json_object_get(out, "hostName"));
    if (name == NULL || strcasecmp(name, host) != 0 || hostname_check(name, NULL) != 0)
        fail("hostName", host);
    for (const char *p = name; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            fail("hostName not lower-cased", host);
    if ((v = member(in, "hostName")) != NULL &&
        (!json_is_string(v) || strcasecmp(json_string_value(v), name) != 0))
        fail("a hostName that differs accepted", host);

    /* The protocol in its canonical spelling, mqtts by default; its usual port by default. */
    v = member(in, "protocol");
    if (v != NULL && !json_is_string(v))
        fail("a protocol that is not a string accepted", host);
    protocol = protocol_find(v != NULL ? json_string_value(v) : "mqtts", &usual);
    if (protocol == NULL ||
        strcmp(protocol, json_string_value(json_object_get(out, "protocol"))) != 0)
        fail("protocol", host);
    def = json_integer(usual);
    check_kept(in, out, "port", def, host);
    json_decref(def);
    def = json_integer(1);
    check_kept(in, out, "weight", def, host);
    json_decref(def);
    check_kept(in, out, "enabled", json_true(), host);
    check_kept(in, out, "region", NULL, host);
    check_kept(in, out, "trustBundle", NULL, host);
    if (known != 5 + (size_t)(json_object_get(out, "region") != NULL) +
                     (size_t)(json_object_get(out, "trustBundle") != NULL))
        fail("canonical members missing", host);
    v = json_object_get(out, "port");
    if (json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        fail("port out of range", host);
    v = json_object_get(out, "weight");
    if (json_integer_value(v) < 1 || json_integer_value(v) > ENDPOINT_WEIGHT_MAX)
        fail("weight out of range", host);

    check_fixed_point(host, out, out);
    check_fixed_point(name, out, out);
    check_stored(out, host);
}

/* Whether in without its hostName is accepted for host. */
static int accepted_without_name(const char *host, json_t *in) {
    json_t *copy = json_copy(in), *out = NULL;
    char err[REASON_LEN];
    int code, ok;

    if (copy == NULL || json_object_del(copy, "hostName") != 0)
        abort();
    ok = endpoint_normalize(host, copy, &out, &code, err, sizeof(err)) == 0;
    json_decref(out);
    json_decref(copy);
    return ok;
}

static void one(const char *host, json_t *in, size_t errlen) {
    char err[FUZZ_ERR_SIZE];
    json_t *out = NULL, *named;
    int code = -1;

    fuzz_err_arm(err);
    if (endpoint_normalize(host, in, &out, &code, err, errlen) != 0) {
        fuzz_err_check(HARNESS, "endpoint_normalize", err, errlen, 1);
        if (out != NULL || (code != 400004 && code != 400006 && code != 500001))
            fail("refused with a document or an undocumented code", host);
        /* 400004 only for a hostName that differs from the path, and always for one when
         * nothing else is wrong. */
        named = json_object_get(in, "hostName");
        if (code == 400004 &&
            (!json_is_string(named) || strcasecmp(json_string_value(named), host) == 0))
            fail("400004 without a hostName that differs", host);
        if (code != 400004 && json_is_string(named) && json_string_length(named) > 0 &&
            json_string_length(named) <= HOSTNAME_MAX &&
            strlen(json_string_value(named)) == json_string_length(named) &&
            strcasecmp(json_string_value(named), host) != 0 && accepted_without_name(host, in))
            fail("a hostName that differs refused with another code", host);
        return;
    }
    fuzz_err_check(HARNESS, "endpoint_normalize", err, errlen, 0);
    if (out == NULL || code != 0)
        fail("accepted without a document", host);
    if (errlen == REASON_LEN)
        check_canonical(host, in, out);
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const HOSTS[] = {"hub-a.example.com", "Hub-A.Example.COM", "hub_a"};
    const uint8_t *nul = memchr(data, '\0', size);
    size_t dlen = nul != NULL ? (size_t)(nul - data) : size;
    json_t *in = json_loadb((const char *)data, dlen, JSON_REJECT_DUPLICATES, NULL), *named;

    if (in == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(HOSTS) / sizeof(HOSTS[0]); i++)
        one(HOSTS[i], in, REASON_LEN);
    if (json_is_string(named = json_object_get(in, "hostName")))
        one(json_string_value(named), in, REASON_LEN);
    if (nul != NULL) {
        char *host = fuzz_cstr(nul + 1, size - dlen - 1);

        one(host, in, REASON_LEN);
        one(host, in, 1 + size % 96);
        free(host);
    } else {
        one(HOSTS[0], in, 1 + size % 96);
    }
    json_decref(in);
    return 0;
}
