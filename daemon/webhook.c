/* Webhook documents and delivery documents of the admin API. See webhook.h. */
#include "webhook.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "event.h"
#include "rand.h"
#include "timefmt.h"

/* Checks that url is an https URL with a host and without credentials, which would otherwise
 * be shown by every listing. The URL is parsed by libcurl, which also sends to it. */
static int check_url(const char *url, char *msg, size_t msglen) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    int rc = -1;

    if (!u) {
        snprintf(msg, msglen, "internal error");
        return -1;
    }
    if (strlen(url) > WEBHOOK_URL_MAX)
        snprintf(msg, msglen, "url is longer than %d characters", WEBHOOK_URL_MAX);
    else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        snprintf(msg, msglen, "url is not a valid absolute URL");
    else if (strcasecmp(scheme, "https") != 0)
        snprintf(msg, msglen, "url must be an https URL");
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        snprintf(msg, msglen, "url has no host");
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
        snprintf(msg, msglen, "url must not carry a user name or password");
    else
        rc = 0;
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

/* Turns the "events" array into the stored form: "*", or the types in the order of
 * event_types, separated by commas. Returns a string the caller frees, or NULL with msg. */
static char *events_text(const json_t *arr, char *msg, size_t msglen) {
    unsigned want = 0, bit;
    int all = 0;
    char buf[256] = "", *text;
    const json_t *v;
    size_t i, t;

    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(msg, msglen, "events must be a non-empty array of event types");
        return NULL;
    }
    json_array_foreach(arr, i, v) {
        const char *name = json_string_value(v);

        if (!name) {
            snprintf(msg, msglen, "events[%zu] is not a string", i);
            return NULL;
        }
        if (strcmp(name, "*") == 0) {
            all = 1;
            continue;
        }
        if (!(bit = event_type_bit(name))) {
            snprintf(msg, msglen, "events[%zu] \"%.64s\" is not an event type", i, name);
            return NULL;
        }
        want |= bit;
    }
    if (all)
        snprintf(buf, sizeof(buf), "*");
    for (t = 0; !all && event_types[t]; t++)
        if (want & 1u << t)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? "," : "",
                     event_types[t]);
    if (!(text = strdup(buf)))
        snprintf(msg, msglen, "internal error");
    return text;
}

static int check_secret(const char *s, char *msg, size_t msglen) {
    size_t n = strlen(s);

    if (n < WEBHOOK_SECRET_MIN || n > WEBHOOK_SECRET_MAX) {
        snprintf(msg, msglen, "secret must have %d to %d characters", WEBHOOK_SECRET_MIN,
                 WEBHOOK_SECRET_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            snprintf(msg, msglen, "secret must be printable ASCII without spaces");
            return -1;
        }
    }
    return 0;
}

int webhook_from_json(const char *id, const json_t *in, const struct store_webhook *prev,
                      struct store_webhook *out, int *generated, char *msg, size_t msglen) {
    const char *key, *url = NULL, *secret = NULL;
    const json_t *events = NULL;
    json_t *v;
    int enabled = 1;

    memset(out, 0, sizeof(*out));
    *generated = 0;
    if (!json_is_object(in)) {
        snprintf(msg, msglen, "the body must be a JSON object");
        return -1;
    }
    json_object_foreach((json_t *)in, key, v) {
        if (json_is_null(v) || strcmp(key, "createdDateTimeUtc") == 0 ||
            strcmp(key, "lastUpdatedDateTimeUtc") == 0)
            continue;
        if (strcmp(key, "id") == 0) {
            if (!json_is_string(v) || strcasecmp(json_string_value(v), id) != 0) {
                snprintf(msg, msglen, "id differs from the ID in the path");
                return -1;
            }
        } else if (strcmp(key, "url") == 0 && json_is_string(v)) {
            url = json_string_value(v);
        } else if (strcmp(key, "events") == 0) {
            events = v;
        } else if (strcmp(key, "enabled") == 0 && json_is_boolean(v)) {
            enabled = json_is_true(v);
        } else if (strcmp(key, "secret") == 0 && json_is_string(v)) {
            secret = json_string_value(v);
        } else if (strcmp(key, "url") == 0 || strcmp(key, "secret") == 0) {
            snprintf(msg, msglen, "%s must be a string", key);
            return -1;
        } else if (strcmp(key, "enabled") == 0) {
            snprintf(msg, msglen, "enabled must be true or false");
            return -1;
        } else {
            snprintf(msg, msglen, "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    if (!url) {
        snprintf(msg, msglen, "url is required");
        return -1;
    }
    if (check_url(url, msg, msglen) != 0 || (secret && check_secret(secret, msg, msglen) != 0))
        return -1;
    out->events = events ? events_text(events, msg, msglen) : strdup("*");
    if (!out->events)
        return -1;
    snprintf(msg, msglen, "internal error");
    out->enabled = enabled;
    out->id = strdup(id);
    out->url = strdup(url);
    if (secret) {
        out->secret = strdup(secret);
    } else if (prev) {
        out->secret = strdup(prev->secret);
    } else {
        out->secret = rand_key_b64(WEBHOOK_SECRET_GEN);
        *generated = 1;
    }
    if (!out->id || !out->url || !out->secret) {
        store_webhook_clear(out);
        return -1;
    }
    msg[0] = '\0';
    return 0;
}

unsigned webhook_subscribed(struct store_conn *c) {
    struct store_webhook *w = NULL;
    unsigned set = 0;
    size_t n = 0;

    if (store_webhook_list(c, NULL, SIZE_MAX, &w, &n) != STORE_OK)
        return (1u << EVENT_NTYPES) - 1;
    for (size_t i = 0; i < n; i++)
        if (w[i].enabled)
            set |= event_types_set(w[i].events);
    store_webhooks_free(w, n);
    return set;
}

json_t *webhook_view(const struct store_webhook *w, int with_secret) {
    json_t *events = json_array(), *v = NULL;
    const char *p = w->events, *comma;

    if (!events)
        return NULL;
    while (p && *p) {
        comma = strchr(p, ',');
        if (json_array_append_new(events,
                                  json_stringn(p, comma ? (size_t)(comma - p) : strlen(p))) != 0)
            goto out;
        p = comma ? comma + 1 : NULL;
    }
    v = json_pack("{s:s, s:s, s:O, s:b, s:s, s:s}", "id", w->id, "url", w->url, "events", events,
                  "enabled", w->enabled, "createdDateTimeUtc", w->created, "lastUpdatedDateTimeUtc",
                  w->updated);
    if (v && with_secret && json_object_set_new(v, "secret", json_string(w->secret)) != 0) {
        json_decref(v);
        v = NULL;
    }
out:
    json_decref(events);
    return v;
}

/* Sets member key of o to the DPS time of ms. Returns 0 or -1. */
static int set_time(json_t *o, const char *key, int64_t ms) {
    char ts[TIME_DPS_LEN];

    time_format_dps_ms(ms, ts);
    return json_object_set_new(o, key, json_string(ts));
}

json_t *delivery_view(const struct store_delivery *d, int with_event) {
    json_t *v =
        json_pack("{s:I, s:s*, s:s*, s:s*, s:s*, s:s, s:i}", "id", (json_int_t)d->id, "eventId",
                  d->event_id, "type", d->type, "subject", d->subject, "webhookId", d->webhook_id,
                  "state", store_delivery_state_name(d->state), "attempts", d->attempts);
    int bad = 0;

    if (!v)
        return NULL;
    bad |= set_time(v, "createdUtc", d->created_ms);
    if (d->state == STORE_DELIVERY_PENDING)
        bad |= set_time(v, "nextAttemptUtc", d->next_ms);
    if (d->last_ms > 0)
        bad |= set_time(v, "lastAttemptUtc", d->last_ms);
    if (d->last_status > 0)
        bad |= json_object_set_new(v, "lastStatus", json_integer(d->last_status));
    if (d->last_error)
        bad |= json_object_set_new(v, "lastError", json_string(d->last_error));
    if (d->state == STORE_DELIVERY_DELIVERED)
        bad |= set_time(v, "deliveredUtc", d->done_ms);
    else if (d->state == STORE_DELIVERY_FAILED)
        bad |= set_time(v, "failedUtc", d->done_ms);
    if (with_event && d->body)
        bad |= json_object_set_new(v, "event", json_loads(d->body, 0, NULL));
    if (bad) {
        json_decref(v);
        return NULL;
    }
    return v;
}
