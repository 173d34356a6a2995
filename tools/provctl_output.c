/* Output for people (aligned tables, "Label: value" listings) and for programs (--json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "provctl.h"

void out_json(const json_t *v) {
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (s == NULL) {
        ctl_err("out of memory");
        return;
    }
    puts(s);
    /* The document may hold keys. */
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ---- Text safe for a terminal ---- */

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 when s does not start one: a stray
 * continuation byte, a truncated or overlong sequence, a surrogate, a code point past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s) {
    size_t n;
    unsigned long cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

char *term_safe(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), o = 0;
    char *out = malloc(len * 4 + 1); /* at most four bytes out for each in: \xHH */

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        size_t n = utf8_seq(p);

        if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
            o += (size_t)sprintf(out + o, "\\u%04x", p[1]);
        } else if (n == 0 || *p < 0x20 || *p == 0x7f) {
            switch (*p) {
            case '\n':
                o += (size_t)sprintf(out + o, "\\n");
                break;
            case '\r':
                o += (size_t)sprintf(out + o, "\\r");
                break;
            case '\t':
                o += (size_t)sprintf(out + o, "\\t");
                break;
            default:
                o += (size_t)sprintf(out + o, "\\x%02x", *p);
            }
            n = 1;
        } else if (*p == '\\') {
            o += (size_t)sprintf(out + o, "\\\\");
        } else {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}

/* The number of code points of s, a string term_safe returned: the columns it takes, near
 * enough (wide characters take two). */
static size_t text_width(const char *s) {
    size_t w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* ---- Tables ---- */

struct out_table {
    size_t ncols, nrows, cap;
    char **cells; /* row-major, the header row first */
    int oom;
};

struct out_table *out_table_new(size_t ncols, const char *const *headers) {
    struct out_table *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    out_table_add(t, headers);
    return t;
}

void out_table_add(struct out_table *t, const char *const *cells) {
    if (t == NULL || t->oom)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof *p);

        if (p == NULL) {
            t->oom = 1;
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *s = term_safe(cells[i] ? cells[i] : "-");

        if (s == NULL)
            t->oom = 1;
        t->cells[t->nrows * t->ncols + i] = s;
    }
    t->nrows++;
}

void out_table_print(struct out_table *t, const char *empty_msg) {
    size_t *width;

    if (t == NULL || t->oom) {
        ctl_err("out of memory");
        goto out;
    }
    if (t->nrows <= 1) {
        puts(empty_msg);
        goto out;
    }
    width = calloc(t->ncols, sizeof *width);
    if (width == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);

            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];

            if (c + 1 < t->ncols)
                printf("%s%*s  ", s, (int)(width[c] - text_width(s)), "");
            else
                puts(s);
        }
    }
    free(width);
out:
    if (t != NULL) {
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
            free(t->cells[i]);
        free(t->cells);
        free(t);
    }
}

/* ---- Label: value listings ---- */

struct out_kv {
    size_t n, cap;
    const char **label;
    char **value;
    int oom;
};

struct out_kv *out_kv_new(void) {
    return calloc(1, sizeof(struct out_kv));
}

void out_kv_add(struct out_kv *kv, const char *label, const char *value) {
    if (kv == NULL || kv->oom || value == NULL)
        return;
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 16;
        const char **l = realloc(kv->label, cap * sizeof *l);
        char **v;

        if (l == NULL) {
            kv->oom = 1;
            return;
        }
        kv->label = l;
        v = realloc(kv->value, cap * sizeof *v);
        if (v == NULL) {
            kv->oom = 1;
            return;
        }
        kv->value = v;
        kv->cap = cap;
    }
    if ((kv->value[kv->n] = term_safe(value)) == NULL) {
        kv->oom = 1;
        return;
    }
    kv->label[kv->n++] = label;
}

void out_kv_print(struct out_kv *kv) {
    size_t width = 0;

    if (kv == NULL || kv->oom)
        ctl_err("out of memory");
    if (kv == NULL)
        return;
    for (size_t i = 0; !kv->oom && i < kv->n; i++)
        if (strlen(kv->label[i]) > width)
            width = strlen(kv->label[i]);
    for (size_t i = 0; !kv->oom && i < kv->n; i++)
        printf("%s:%*s %s\n", kv->label[i], (int)(width - strlen(kv->label[i])), "", kv->value[i]);
    for (size_t i = 0; i < kv->n; i++) {
        OPENSSL_cleanse(kv->value[i], strlen(kv->value[i]));
        free(kv->value[i]);
    }
    free(kv->label);
    free(kv->value);
    free(kv);
}

/* ---- Field text ---- */

static char *join_strings(const json_t *arr) {
    size_t len = 1, i;
    const json_t *v;
    char *s;

    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            return NULL;
        len += json_string_length(v) + 2;
    }
    if ((s = calloc(1, len)) == NULL)
        return NULL;
    json_array_foreach(arr, i, v) {
        if (i > 0)
            strcat(s, ", ");
        strcat(s, json_string_value(v));
    }
    return s;
}

char *out_field(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    char *s = NULL;

    if (v == NULL)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_INTEGER:
        if (asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
            return NULL;
        return s;
    case JSON_ARRAY:
        if (json_array_size(v) == 0)
            return NULL;
        if ((s = join_strings(v)) != NULL)
            return s;
        return json_dumps(v, JSON_COMPACT);
    case JSON_REAL:
    case JSON_OBJECT:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    case JSON_NULL:
    default:
        return NULL;
    }
}

void out_kv_members(struct out_kv *kv, const json_t *o, const struct out_member *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *v = out_field(o, m[i].member);

        out_kv_add(kv, m[i].label, v);
        free(v);
    }
}

void out_table_add_members(struct out_table *t, const json_t *o, const char *const *members) {
    char **cells;

    if (t == NULL || t->oom)
        return;
    if ((cells = calloc(t->ncols, sizeof *cells)) == NULL) {
        t->oom = 1;
        return;
    }
    for (size_t c = 0; c < t->ncols; c++)
        cells[c] = out_field(o, members[c]);
    out_table_add(t, (const char *const *)cells);
    for (size_t c = 0; c < t->ncols; c++)
        free(cells[c]);
    free(cells);
}

/* ---- Listings of paged queries ---- */

int out_query_list(struct ctl *ctl, const struct query_list *l) {
    json_t *items, *it;
    size_t i;

    if (http_query_all(ctl, l->path, l->subject, &items) != CTL_OK)
        return CTL_FAIL;
    if (ctl->json) {
        out_json(items);
    } else {
        struct out_table *t = out_table_new(l->ncols, l->hdr);

        json_array_foreach(items, i, it) {
            out_table_add_members(t, it, l->members);
        }
        out_table_print(t, l->empty);
    }
    json_decref(items);
    return CTL_OK;
}

/* ---- Pages of sequence-numbered listings ---- */

int out_seq_page(struct ctl *ctl, const struct seq_page *p) {
    json_t *doc, *items, *it, *next;
    size_t i;

    if (http_get_object(ctl, p->path, p->subject, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    items = json_object_get(doc, p->items);
    next = json_object_get(doc, "next");
    if (!json_is_array(items)) {
        ctl_err("%s: the server's answer has no %s array", p->subject, p->items);
        json_decref(doc);
        return CTL_FAIL;
    }
    if (ctl->json) {
        out_json(doc);
    } else {
        struct out_table *t = out_table_new(p->ncols, p->hdr);

        json_array_foreach(items, i, it) {
            out_table_add_members(t, it, p->members);
        }
        out_table_print(t, p->empty);
        if (json_array_size(items) == (size_t)p->limit && json_is_integer(next))
            fprintf(stderr, "More %s may follow: %s --after %lld\n", p->items, p->again,
                    (long long)json_integer_value(next));
    }
    json_decref(doc);
    return CTL_OK;
}

void out_doc(const struct ctl *ctl, const json_t *doc, const struct out_member *fields, size_t n) {
    struct out_kv *kv;

    if (ctl->json) {
        out_json(doc);
        return;
    }
    kv = out_kv_new();
    out_kv_members(kv, doc, fields, n);
    out_kv_print(kv);
}
