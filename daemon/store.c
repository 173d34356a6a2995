/* The backend-independent part of the store: choosing a backend from the URI, dispatching the
 * connection calls, and releasing what the backends return. */
#include "store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

static const struct store_ops *const backends[] = {&store_sqlite_ops};

/* Returns the length of the URI scheme that starts uri (RFC 3986: a letter, then letters,
 * digits, '+', '-' or '.', then ':'), or 0 when uri does not start with one and so is a path.
 * Paths that would look like a scheme can be written "./name:..." or "sqlite:name:...". */
static size_t scheme_len(const char *uri) {
    size_t i = 0;

    if (!isalpha((unsigned char)uri[0]))
        return 0;
    while (isalnum((unsigned char)uri[i]) || uri[i] == '+' || uri[i] == '-' || uri[i] == '.')
        i++;
    return uri[i] == ':' ? i : 0;
}

int store_open(const char *uri, struct store **out, char *err, size_t errlen) {
    const struct store_ops *ops = &store_sqlite_ops;
    const char *target = uri;
    size_t n;

    *out = NULL;
    if (err && errlen > 0)
        err[0] = '\0';
    if (!uri || !uri[0]) {
        if (err && errlen > 0)
            snprintf(err, errlen, "no store given");
        return STORE_ERROR;
    }
    n = scheme_len(uri);
    if (n > 0) {
        ops = NULL;
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
            if (strlen(backends[i]->scheme) == n && strncasecmp(uri, backends[i]->scheme, n) == 0)
                ops = backends[i];
        }
        /* Only the scheme goes into the message: the rest of a URI may carry a password. */
        if (!ops) {
            if (err && errlen > 0)
                snprintf(err, errlen, "unknown store scheme \"%.*s\" (known: sqlite)", (int)n, uri);
            return STORE_ERROR;
        }
        target = uri + n + 1;
    }
    return ops->open(target, out, err, errlen);
}

void store_close(struct store *st) {
    if (st)
        st->ops->close(st);
}

int store_conn_open(struct store *st, struct store_conn **out) {
    return st->ops->conn_open(st, out);
}

void store_conn_close(struct store_conn *c) {
    if (c)
        c->ops->conn_close(c);
}

void store_doc_clear(struct store_doc *d) {
    if (!d)
        return;
    free(d->id);
    if (d->doc) {
        OPENSSL_cleanse(d->doc, strlen(d->doc));
        free(d->doc);
    }
    memset(d, 0, sizeof(*d));
}

void store_docs_free(struct store_doc *d, size_t n) {
    if (!d)
        return;
    for (size_t i = 0; i < n; i++)
        store_doc_clear(&d[i]);
    free(d);
}

void store_registration_clear(struct store_registration *r) {
    if (!r)
        return;
    free(r->registration_id);
    free(r->device_id);
    free(r->group_id);
    free(r->assigned_hub);
    free(r->status);
    free(r->substatus);
    free(r->operation_id);
    free(r->error_message);
    free(r->payload);
    memset(r, 0, sizeof(*r));
}

void store_registrations_free(struct store_registration *r, size_t n) {
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        store_registration_clear(&r[i]);
    free(r);
}

void store_refs_free(struct store_ref *r, size_t n) {
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].id);
    free(r);
}

void store_audit_clear(struct store_audit *a) {
    if (!a)
        return;
    free(a->event);
    free(a->subject);
    free(a->outcome);
    free(a->reason);
    free(a->remote);
    free(a->tracking);
    memset(a, 0, sizeof(*a));
}

void store_audits_free(struct store_audit *a, size_t n) {
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&a[i]);
    free(a);
}

void store_event_clear(struct store_event *e) {
    if (!e)
        return;
    free(e->id);
    free(e->type);
    free(e->subject);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

static void free_secret(char *s) {
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void store_webhook_clear(struct store_webhook *w) {
    if (!w)
        return;
    free(w->id);
    free(w->url);
    free(w->events);
    free_secret(w->secret);
    memset(w, 0, sizeof(*w));
}

void store_webhooks_free(struct store_webhook *w, size_t n) {
    if (!w)
        return;
    for (size_t i = 0; i < n; i++)
        store_webhook_clear(&w[i]);
    free(w);
}

void store_delivery_clear(struct store_delivery *d) {
    if (!d)
        return;
    free(d->event_id);
    free(d->type);
    free(d->subject);
    free(d->webhook_id);
    free(d->last_error);
    free(d->body);
    free(d->url);
    free_secret(d->secret);
    memset(d, 0, sizeof(*d));
}

void store_deliveries_free(struct store_delivery *d, size_t n) {
    if (!d)
        return;
    for (size_t i = 0; i < n; i++)
        store_delivery_clear(&d[i]);
    free(d);
}

void store_cert_clear(struct store_cert *c) {
    if (!c)
        return;
    free(c->serial);
    free(c->registration_id);
    free(c->device_id);
    free(c->subject);
    free(c->issuer);
    free(c->thumbprint);
    free(c->reason);
    memset(c, 0, sizeof(*c));
}

void store_certs_free(struct store_cert *c, size_t n) {
    if (!c)
        return;
    for (size_t i = 0; i < n; i++)
        store_cert_clear(&c[i]);
    free(c);
}

void store_revoked_clear(struct store_revoked *r) {
    if (!r)
        return;
    free(r->serial);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

void store_revoked_free(struct store_revoked *r, size_t n) {
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        store_revoked_clear(&r[i]);
    free(r);
}

static const char *const delivery_states[] = {
    [STORE_DELIVERY_PENDING] = "pending",
    [STORE_DELIVERY_DELIVERED] = "delivered",
    [STORE_DELIVERY_FAILED] = "failed",
};

const char *store_delivery_state_name(enum store_delivery_state s) {
    if (s < 0 || (size_t)s >= sizeof(delivery_states) / sizeof(delivery_states[0]))
        return "any";
    return delivery_states[s];
}

int store_delivery_state_parse(const char *name, enum store_delivery_state *out) {
    for (size_t i = 0; i < sizeof(delivery_states) / sizeof(delivery_states[0]); i++) {
        if (strcmp(name, delivery_states[i]) == 0) {
            *out = (enum store_delivery_state)i;
            return 0;
        }
    }
    return -1;
}
