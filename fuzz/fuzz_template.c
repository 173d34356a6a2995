/* Configuration templates (template_check and template_render, daemon/template.c). The input is
 * a template, then optionally a NUL and the payload a device sent; both are JSON of any kind.
 * The template is checked, then rendered for a device with a group and that payload, and for one
 * with neither.
 *
 * A reference renderer written from template.h reads every string the way the header defines:
 * "$$" is one '$', "${NAME}" a variable, any other '$' itself. Then: a template that
 * template_check accepts names only variables that exist and leaves no "${" open; one it refuses
 * is refused by template_render too. A rendering has the template's shape, names and other values,
 * and the reference's strings, which take at most TEMPLATE_OUTPUT_MAX bytes in the device's JSON
 * answer (serialised as http.c serialises answers, without the quotes). A template that
 * template_check accepts fails to render only when that bound is passed (or memory runs out),
 * never for a reason template_check would have given. Every reason is UTF-8 in its buffer. */
#include <stdio.h>

#include <jansson.h>

#include "fuzz.h"
#include "fuzz_err.h"
#include "template.h"

#define HARNESS "fuzz_template"

/* The ends of the two reasons template_render may give for a template template_check accepts. */
#define OVER_BOUND "the rendered configuration exceeds %d bytes"
#define NO_MEMORY  "out of memory"

/* A growing string of the reference renderer; aborts when out of memory. */
struct text {
    char *p;
    size_t len, cap;
};

static void text_put(struct text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;

        while (cap < t->len + n + 1)
            cap *= 2;
        if ((t->p = realloc(t->p, cap)) == NULL)
            abort();
        t->cap = cap;
    }
    if (n > 0)
        memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* A dotted path of FIELDs: segments of letters, digits, '_' and '-'. */
static int field_path(const char *s, size_t n) {
    size_t seg = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

/* Appends the payload field at path (n bytes): a string as it is, another value as compact
 * JSON, nothing when the device did not send it (JSON null counting as not sent). */
static void payload_field(struct text *t, const json_t *payload, const char *path, size_t n) {
    const json_t *v = payload;
    char *dump;

    while (v != NULL && n > 0) {
        const char *dot = memchr(path, '.', n);
        size_t len = dot != NULL ? (size_t)(dot - path) : n;
        char *key = fuzz_cstr((const uint8_t *)path, len);

        v = json_is_object(v) ? json_object_get(v, key) : NULL;
        free(key);
        path += len;
        n -= len;
        if (n > 0) {
            path++;
            n--;
        }
    }
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        text_put(t, json_string_value(v), json_string_length(v));
        return;
    }
    if ((dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        abort();
    text_put(t, dump, strlen(dump));
    free(dump);
}

/* Appends the value of the variable name (n bytes) for vars; returns -1 when there is no such
 * variable. t is NULL when only checking. */
static int variable(struct text *t, const struct template_vars *vars, const char *name, size_t n) {
    char port[16];
    const char *s;

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    if (n > 8 && memcmp(name, "payload.", 8) == 0 && field_path(name + 8, n - 8)) {
        if (t != NULL)
            payload_field(t, vars->payload, name + 8, n - 8);
        return 0;
    }
    if (IS("deviceId"))
        s = t != NULL ? vars->device_id : NULL;
    else if (IS("registrationId"))
        s = t != NULL ? vars->registration_id : NULL;
    else if (IS("endpoint.host"))
        s = t != NULL ? vars->endpoint_host : NULL;
    else if (IS("endpoint.protocol"))
        s = t != NULL ? vars->endpoint_protocol : NULL;
    else if (IS("group"))
        s = t != NULL ? vars->group : NULL;
    else if (IS("endpoint.port"))
        s = t != NULL && snprintf(port, sizeof(port), "%d", vars->endpoint_port) > 0 ? port : NULL;
    else
        return -1;
#undef IS
    if (s != NULL)
        text_put(t, s, strlen(s));
    return 0;
}

/* Renders the string s (n bytes) into t (NULL when only checking). Returns -1 when it names a
 * variable that does not exist or leaves "${" open. */
static int render_string(struct text *t, const struct template_vars *vars, const char *s,
                         size_t n) {
    size_t i = 0;

    while (i < n) {
        const char *end;

        if (s[i] != '$' || i + 1 == n || (s[i + 1] != '$' && s[i + 1] != '{')) {
            if (t != NULL)
                text_put(t, s + i, 1);
            i++;
        } else if (s[i + 1] == '$') {
            if (t != NULL)
                text_put(t, "$", 1);
            i += 2;
        } else if ((end = memchr(s + i + 2, '}', n - i - 2)) == NULL ||
                   variable(t, vars, s + i + 2, (size_t)(end - (s + i + 2))) != 0) {
            return -1;
        } else {
            i = (size_t)(end - s) + 1;
        }
    }
    return 0;
}

/* The bytes the string s (n bytes) takes inside the quotes of a JSON answer, as serialised by
 * jansson with the flags of http.c. */
static size_t answer_size(const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    size_t size;

    if (v == NULL) {
        fprintf(stderr, HARNESS ": a rendered string is not UTF-8\n");
        abort();
    }
    size = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (size < 2)
        abort();
    return size - 2;
}

/* Walks tmpl with the reference renderer, and with out, template_render's rendering, when not
 * NULL: out must have the shape, names and other values of tmpl and the reference's strings.
 * Adds to *size what the strings take in the answer. Returns -1 when some string names a
 * variable that does not exist or leaves "${" open; vars is NULL when only checking. */
static int reference(json_t *tmpl, json_t *out, const struct template_vars *vars, size_t *size) {
    const char *key;
    json_t *item;
    size_t i;
    int rc = 0;

    if (json_is_string(tmpl)) {
        struct text t = {0};

        if (render_string(vars != NULL ? &t : NULL, vars, json_string_value(tmpl),
                          json_string_length(tmpl)) != 0) {
            free(t.p);
            return -1;
        }
        if (vars != NULL) {
            *size += answer_size(t.p != NULL ? t.p : "", t.len);
            if (out != NULL && (!json_is_string(out) || json_string_length(out) != t.len ||
                                (t.len > 0 && memcmp(json_string_value(out), t.p, t.len) != 0))) {
                fprintf(stderr, HARNESS ": a string rendered as \"%s\", not as \"%s\"\n",
                        json_string_value(out), t.p != NULL ? t.p : "");
                abort();
            }
        }
        free(t.p);
        return 0;
    }
    if (json_is_object(tmpl)) {
        if (out != NULL &&
            (!json_is_object(out) || json_object_size(out) != json_object_size(tmpl)))
            abort();
        json_object_foreach(tmpl, key, item) {
            json_t *o = out != NULL ? json_object_get(out, key) : NULL;

            if (out != NULL && o == NULL)
                abort();
            rc |= reference(item, o, vars, size);
        }
        return rc;
    }
    if (json_is_array(tmpl)) {
        if (out != NULL && (!json_is_array(out) || json_array_size(out) != json_array_size(tmpl)))
            abort();
        json_array_foreach(tmpl, i, item) {
            rc |= reference(item, out != NULL ? json_array_get(out, i) : NULL, vars, size);
        }
        return rc;
    }
    if (out != NULL && !json_equal(out, tmpl)) {
        fprintf(stderr, HARNESS ": a value other than a string changed\n");
        abort();
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void render(json_t *tmpl, const struct template_vars *vars, int checked, size_t errlen) {
    char err[FUZZ_ERR_SIZE], over[64];
    size_t size = 0;
    json_t *out;

    fuzz_err_arm(err);
    out = template_render(tmpl, vars, err, errlen);
    fuzz_err_check(HARNESS, "template_render", err, errlen, out == NULL);
    if (!checked) {
        if (out != NULL) {
            fprintf(stderr, HARNESS ": a template template_check refuses rendered\n");
            abort();
        }
        return;
    }
    if (reference(tmpl, out, vars, &size) != 0)
        abort();
    if (out != NULL) {
        if (size > TEMPLATE_OUTPUT_MAX) {
            fprintf(stderr, HARNESS ": a rendering takes %zu bytes in the answer\n", size);
            abort();
        }
        json_decref(out);
        return;
    }
    /* A reason cut short by a small buffer cannot be told apart; the full one can. */
    if (errlen < FUZZ_ERR_SIZE)
        return;
    snprintf(over, sizeof(over), OVER_BOUND, TEMPLATE_OUTPUT_MAX);
    if (!(ends_with(err, over) && size > TEMPLATE_OUTPUT_MAX) && !ends_with(err, NO_MEMORY)) {
        fprintf(stderr, HARNESS ": a checked template of %zu bytes failed to render: %s\n", size,
                err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, '\0', size);
    size_t tlen = nul != NULL ? (size_t)(nul - data) : size, unused = 0;
    struct template_vars device = {.device_id = "dev-1",
                                   .registration_id = "Dev-1",
                                   .endpoint_host = "hub-a.example.com",
                                   .endpoint_port = 8883,
                                   .endpoint_protocol = "mqtts",
                                   .group = "fleet-7"};
    /* No group and no payload: both render as "". */
    const struct template_vars bare = {.device_id = "4f0c2b1e-5a9d-4c3b-8e7f-1a2b3c4d5e6f",
                                       .registration_id = "sensor.42",
                                       .endpoint_host = "10.0.0.7",
                                       .endpoint_port = 443,
                                       .endpoint_protocol = "https"};
    json_t *tmpl, *payload = NULL;
    char err[FUZZ_ERR_SIZE];
    int checked;

    tmpl = json_loadb((const char *)data, tlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (tmpl == NULL)
        return 0;
    /* The payload as the device API parses it, absent when it is not JSON. */
    if (nul != NULL)
        payload = json_loadb((const char *)nul + 1, size - tlen - 1,
                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    device.payload = payload;

    fuzz_err_arm(err);
    checked = template_check(tmpl, "configuration", err, FUZZ_ERR_SIZE) == 0;
    fuzz_err_check(HARNESS, "template_check", err, FUZZ_ERR_SIZE, !checked);
    /* What template_check accepts names only variables that exist and closes every "${". */
    if (checked && reference(tmpl, NULL, NULL, &unused) != 0) {
        fprintf(stderr, HARNESS ": template_check accepted an unknown variable or open \"${\"\n");
        abort();
    }
    fuzz_err_arm(err);
    if ((template_check(tmpl, "configuration", err, 1 + size % 128) == 0) != checked)
        abort();
    fuzz_err_check(HARNESS, "template_check", err, 1 + size % 128, !checked);

    render(tmpl, &device, checked, FUZZ_ERR_SIZE);
    render(tmpl, &bare, checked, FUZZ_ERR_SIZE);
    render(tmpl, &device, checked, 1 + size % 128);
    json_decref(payload);
    json_decref(tmpl);
    return 0;
}
