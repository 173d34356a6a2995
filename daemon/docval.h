/* Shared parts of the document validators (enrollment.c, endpoint.c): each refusal names its field
 * and carries the error code to answer. They are static inline so that a validator compiled on
 * its own (a fuzz harness, a unit test) needs no further source file. */
#ifndef PROVD_DOCVAL_H
#define PROVD_DOCVAL_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define DOCVAL_INVALID  400006
#define DOCVAL_INTERNAL 500001

/* Where a refusal is written: the error code and a message naming the field. */
struct verr {
    int code;
    char *msg;
    size_t len;
};

static inline int verr_set(struct verr *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a refusal; returns -1 so that validators can `return verr_set(...)`. */
static inline int verr_set(struct verr *e, int code, const char *fmt, ...) {
    va_list ap;

    e->code = code;
    if (e->msg != NULL && e->len > 0) {
        va_start(ap, fmt);
        vsnprintf(e->msg, e->len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* JSON null counts as absent for every optional field: service SDKs serialise unset members as
 * null, and refusing them would break round trips of their own documents. */
static inline json_t *json_opt(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Refuses the first member of obj whose name is not in allowed (a NULL-terminated list). */
static inline int json_check_members(json_t *obj, const char *const *allowed, const char *prefix,
                                     struct verr *e) {
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(obj, key, v) {
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL)
            return verr_set(e, DOCVAL_INVALID, "unknown field \"%s%.64s\"", prefix, key);
    }
    return 0;
}

/* Returns the canonical spelling of s among the NULL-terminated names (compared without regard
 * to case), or NULL. */
static inline const char *enum_match(const char *s, const char *const *names) {
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcasecmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

/* Sets key of obj to the new reference v; a NULL v (a refusal already written, or no memory)
 * makes it fail. */
static inline int json_put_new(json_t *obj, const char *key, json_t *v, struct verr *e) {
    if (v == NULL) {
        if (e->code == 0)
            verr_set(e, DOCVAL_INTERNAL, "out of memory");
        return -1;
    }
    if (json_object_set_new(obj, key, v) != 0)
        return verr_set(e, DOCVAL_INTERNAL, "out of memory");
    return 0;
}

/* Checks that v is a string without NUL characters of 1 to max bytes. */
static inline int json_check_string(const char *field, json_t *v, size_t max, struct verr *e) {
    if (!json_is_string(v))
        return verr_set(e, DOCVAL_INVALID, "%s must be a string", field);
    if (json_string_length(v) == 0 || json_string_length(v) > max)
        return verr_set(e, DOCVAL_INVALID, "%s must have 1 to %zu characters", field, max);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return verr_set(e, DOCVAL_INVALID, "%s contains a NUL character", field);
    return 0;
}

#endif
