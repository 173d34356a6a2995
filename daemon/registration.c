/* Registration states in the DPS shape. */
#include "registration.h"

#include "enrollment.h"

/* Sets key to a copy of s when s is not NULL; returns -1 when out of memory. */
static int set_opt_str(json_t *o, const char *key, const char *s) {
    if (s == NULL)
        return 0;
    return json_object_set_new(o, key, json_string(s));
}

json_t *registration_view(const struct store_registration *r) {
    char etag[ETAG_MAX];
    json_t *o = json_object();
    int bad;

    if (o == NULL)
        return NULL;
    etag_format(r->version, etag);
    bad = set_opt_str(o, "registrationId", r->registration_id) != 0 ||
          set_opt_str(o, "deviceId", r->device_id) != 0 ||
          set_opt_str(o, "assignedHub", r->assigned_hub) != 0 ||
          set_opt_str(o, "status", r->status) != 0 ||
          set_opt_str(o, "substatus", r->substatus) != 0 ||
          (r->error_code != 0 &&
           json_object_set_new(o, "errorCode", json_integer(r->error_code)) != 0) ||
          set_opt_str(o, "errorMessage", r->error_message) != 0 ||
          json_object_set_new(o, "createdDateTimeUtc", json_string(r->created)) != 0 ||
          json_object_set_new(o, "lastUpdatedDateTimeUtc", json_string(r->updated)) != 0 ||
          (r->version > 0 && json_object_set_new(o, "etag", json_string(etag)) != 0);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
