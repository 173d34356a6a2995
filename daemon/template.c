/* Configuration templates. See template.h. */
#include "template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define PATH_MAX_B   256
#define VAR_NAME_MAX 256

/* One walk over a template: checking (vars NULL) or rendering. */
struct walk {
    const struct template_vars *vars;
    char path[PATH_MAX_B]; /* where in the template, for messages */
    size_t budget;         /* bytes of output left */
    char *err;
    size_t errlen;
};

/* A growing string of at most the walk's budget. */
struct buf {
    char *p;
    size_t len, cap;
};

static int fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct walk *w, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(w->err, w->errlen, "%s: ", w->path);

    if (n >= 0 && (size_t)n < w->errlen) {
        va_start(ap, fmt);
        vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The bytes that n bytes of s take once serialised inside a JSON string, where '"', '\\' and
 * control characters are escaped: the budget bounds the answer the device gets, and a payload
 * field of quotes or control characters grows up to six times there. */
static size_t escaped_size(const char *s, size_t n) {
    size_t size = n;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            size += 1;
        else if (c < 0x20)
            size += 5;
    }
    return size;
}

static int put(struct walk *w, struct buf *b, const char *s, size_t n) {
    size_t size;

    if (b == NULL)
        return 0;
    if ((size = escaped_size(s, n)) > w->budget)
        return fail(w, "the rendered configuration exceeds %d bytes", TEMPLATE_OUTPUT_MAX);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            return fail(w, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    w->budget -= size;
    return 0;
}

/* A payload field path: segments of letters, digits, '_' and '-' separated by dots. */
static int field_path_ok(const char *s, size_t n) {
    size_t seg = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-') &&
                   seg + 1 < VAR_NAME_MAX) {
            /* A segment longer than a field name put_payload_field can look up is refused
             * rather than looked up cut short. */
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

/* Writes the value of the payload field at path (n bytes) into b. */
static int put_payload_field(struct walk *w, struct buf *b, const char *path, size_t n) {
    const json_t *v = w->vars->payload;
    char seg[VAR_NAME_MAX];
    char *text;
    int rc;

    while (n > 0 && v != NULL) {
        const char *dot = memchr(path, '.', n);
        size_t len = dot != NULL ? (size_t)(dot - path) : n;

        snprintf(seg, sizeof(seg), "%.*s", (int)len, path);
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
        path += len;
        n -= len;
        if (n > 0) {
            path++;
            n--;
        }
    }
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return put(w, b, json_string_value(v), json_string_length(v));
    if ((text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return fail(w, "out of memory");
    rc = put(w, b, text, strlen(text));
    free(text);
    return rc;
}

/* Checks the variable name (n bytes) and, when rendering, writes its value into b. */
static int variable(struct walk *w, struct buf *b, const char *name, size_t n) {
    const struct template_vars *v = w->vars;
    const char *s = NULL;
    char port[16];

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    if (n > 8 && memcmp(name, "payload.", 8) == 0 && field_path_ok(name + 8, n - 8))
        return v != NULL ? put_payload_field(w, b, name + 8, n - 8) : 0;
    if (!(IS("deviceId") || IS("registrationId") || IS("endpoint.host") || IS("endpoint.port") ||
          IS("endpoint.protocol") || IS("group")))
        return fail(w, "unknown variable ${%.*s}", (int)(n > 64 ? 64 : n), name);
    if (v == NULL)
        return 0;
    if (IS("deviceId"))
        s = v->device_id;
    else if (IS("registrationId"))
        s = v->registration_id;
    else if (IS("endpoint.host"))
        s = v->endpoint_host;
    else if (IS("endpoint.protocol"))
        s = v->endpoint_protocol;
    else if (IS("group"))
        s = v->group;
    else {
        snprintf(port, sizeof(port), "%d", v->endpoint_port);
        s = port;
    }
#undef IS
    return s != NULL ? put(w, b, s, strlen(s)) : 0;
}

/* Scans the string s (n bytes): checks its variables and, when b is not NULL, renders it. */
static int scan(struct walk *w, struct buf *b, const char *s, size_t n) {
    size_t i = 0, text = 0;

    while (i < n) {
        if (s[i] != '$' || i + 1 >= n || (s[i + 1] != '$' && s[i + 1] != '{')) {
            i++;
            continue;
        }
        if (put(w, b, s + text, i - text) != 0)
            return -1;
        if (s[i + 1] == '$') {
            if (put(w, b, "$", 1) != 0)
                return -1;
            i += 2;
        } else {
            const char *end = memchr(s + i + 2, '}', n - i - 2);

            if (end == NULL)
                return fail(w, "\"${\" without a closing \"}\"");
            if (variable(w, b, s + i + 2, (size_t)(end - (s + i + 2))) != 0)
                return -1;
            i = (size_t)(end - s) + 1;
        }
        text = i;
    }
    return put(w, b, s + text, n - text);
}

/* Walks v: returns the rendered copy (when rendering), v itself with a new reference (when
 * checking), or NULL after fail(). */
static json_t *walk_value(struct walk *w, json_t *v);

/* Walks v, the member key of an object (or, when key is NULL, item idx of an array). */
static json_t *walk_child(struct walk *w, json_t *v, const char *key, size_t idx) {
    size_t at = strlen(w->path);
    json_t *out;

    if (key != NULL)
        snprintf(w->path + at, sizeof(w->path) - at, ".%.40s", key);
    else
        snprintf(w->path + at, sizeof(w->path) - at, "[%zu]", idx);
    out = walk_value(w, v);
    w->path[at] = '\0';
    return out;
}

static json_t *walk_value(struct walk *w, json_t *v) {
    struct buf b = {0};
    json_t *out = NULL, *item, *r;
    const char *key;
    size_t i;

    if (json_is_string(v)) {
        if (scan(w, w->vars != NULL ? &b : NULL, json_string_value(v), json_string_length(v)) != 0)
            goto out;
        out = w->vars != NULL ? json_stringn(b.p != NULL ? b.p : "", b.len) : json_incref(v);
        if (out == NULL)
            fail(w, "out of memory");
    } else if (json_is_object(v)) {
        if ((out = json_object()) == NULL) {
            fail(w, "out of memory");
            goto out;
        }
        json_object_foreach(v, key, item) {
            if ((r = walk_child(w, item, key, 0)) == NULL ||
                json_object_set_new(out, key, r) != 0) {
                json_decref(out);
                out = NULL;
                goto out;
            }
        }
    } else if (json_is_array(v)) {
        if ((out = json_array()) == NULL) {
            fail(w, "out of memory");
            goto out;
        }
        json_array_foreach(v, i, item) {
            if ((r = walk_child(w, item, NULL, i)) == NULL || json_array_append_new(out, r) != 0) {
                json_decref(out);
                out = NULL;
                goto out;
            }
        }
    } else {
        out = json_incref(v);
    }
out:
    free(b.p);
    return out;
}

static json_t *walk(json_t *tmpl, const struct template_vars *vars, const char *where, char *err,
                    size_t errlen) {
    struct walk w = {.vars = vars, .budget = TEMPLATE_OUTPUT_MAX, .err = err, .errlen = errlen};
    json_t *out;

    snprintf(w.path, sizeof(w.path), "%s", where);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    out = walk_value(&w, tmpl);
    if (out == NULL && err != NULL && errlen > 0)
        utf8_repair(err);
    return out;
}

int template_check(json_t *tmpl, const char *where, char *err, size_t errlen) {
    json_t *r = walk(tmpl, NULL, where, err, errlen);

    json_decref(r);
    return r != NULL ? 0 : -1;
}

json_t *template_render(json_t *tmpl, const struct template_vars *v, char *err, size_t errlen) {
    return walk(tmpl, v, "configuration", err, errlen);
}

json_t *template_merge(json_t *base, json_t *over) {
    json_t *out, *item, *merged;
    const char *key;

    if (!json_is_object(base) || !json_is_object(over))
        return json_deep_copy(over != NULL ? over : base);
    if ((out = json_deep_copy(base)) == NULL)
        return NULL;
    json_object_foreach(over, key, item) {
        merged = template_merge(json_object_get(base, key), item);
        if (merged == NULL || json_object_set_new(out, key, merged) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
