/* The custom allocation webhook's request and answer. See custom_alloc.h. */
#include "custom_alloc.h"

#include <stdio.h>
#include <strings.h>

#include "utf8.h"

json_t *custom_alloc_request(const struct enrollment *e, const struct custom_alloc_device *d,
                             const char *const *linked, size_t nlinked) {
    json_t *hubs = json_array(), *ctx;

    for (size_t i = 0; hubs != NULL && i < nlinked; i++) {
        if (json_array_append_new(hubs, json_string(linked[i])) != 0) {
            json_decref(hubs);
            hubs = NULL;
        }
    }
    ctx = json_pack("{s:s, s:s*, s:s*, s:{}, s:O*}", "registrationId", d->registration_id,
                    "currentIotHubHostName", d->current_hub, "currentDeviceId",
                    d->current_device_id, d->x509 ? "x509" : "symmetricKey", "payload", d->payload);
    if (hubs == NULL || ctx == NULL) {
        json_decref(hubs);
        json_decref(ctx);
        return NULL;
    }
    return json_pack("{s:O, s:o, s:o}",
                     e->kind == STORE_GROUP ? "enrollmentGroup" : "individualEnrollment", e->doc,
                     "deviceRuntimeContext", ctx, "linkedHubs", hubs);
}

long custom_alloc_answer(const char *body, size_t len, const char *const *linked, size_t nlinked,
                         json_t **twin, json_t **payload, char *err, size_t errlen) {
    json_t *root, *hub, *t, *p;
    json_error_t jerr;
    long chosen = -1;

    *twin = *payload = NULL;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the webhook's answer is not a JSON object%s%s",
                 root == NULL ? ": " : "", root == NULL ? jerr.text : "");
        goto out;
    }
    hub = json_object_get(root, "iotHubHostName");
    t = json_object_get(root, "initialTwin");
    p = json_object_get(root, "payload");
    if (!json_is_string(hub)) {
        snprintf(err, errlen, "the webhook's answer has no iotHubHostName string");
        goto out;
    }
    if (t != NULL && !json_is_null(t) && !json_is_object(t)) {
        snprintf(err, errlen, "the webhook's initialTwin is not an object");
        goto out;
    }
    for (size_t i = 0; i < nlinked; i++) {
        if (strcasecmp(linked[i], json_string_value(hub)) == 0) {
            chosen = (long)i;
            break;
        }
    }
    if (chosen < 0) {
        snprintf(err, errlen, "the webhook chose \"%.64s\", which is not one of the linkedHubs",
                 json_string_value(hub));
        goto out;
    }
    if (t != NULL && !json_is_null(t))
        *twin = json_incref(t);
    if (p != NULL && !json_is_null(p))
        *payload = json_incref(p);
out:
    if (chosen < 0 && errlen > 0)
        utf8_repair(err);
    json_decref(root);
    return chosen;
}
