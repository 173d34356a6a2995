/* Configuration templates: the `configuration` object of an enrollment or group, whose string
 * values may name variables that are filled in for each device (docs/device-api.md):
 *
 *   ${deviceId} ${registrationId} ${endpoint.host} ${endpoint.port} ${endpoint.protocol}
 *   ${group} ${payload.FIELD} (FIELD may be a dotted path: ${payload.site.room})
 *
 * "$$" stands for one "$", so "$${deviceId}" renders as the text "${deviceId}". Only strings are
 * rendered, at any depth of objects and arrays; names and other values are left as they are.
 * Pure functions, with template_merge for the precedence of templates (group < enrollment). */
#ifndef PROVD_TEMPLATE_H
#define PROVD_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

/* The most bytes the strings of one rendering may take in the device's JSON answer (escapes
 * counted), so that a template that repeats a large payload field cannot make a device's answer
 * grow without bound. */
#define TEMPLATE_OUTPUT_MAX (256 * 1024)

/* What the variables stand for, for one device. */
struct template_vars {
    const char *device_id;
    const char *registration_id;
    const char *endpoint_host;
    int endpoint_port;
    const char *endpoint_protocol;
    const char *group;     /* the enrollment group ID, or NULL (renders as "") */
    const json_t *payload; /* the payload the device sent, or NULL */
};

/* Checks every string of tmpl (any JSON value) for variables that do not exist and for "${"
 * left open. where names tmpl in the message ("configuration"). Returns 0, or -1 with a message
 * naming the place and the variable in err. */
int template_check(json_t *tmpl, const char *where, char *err, size_t errlen);

/* Renders tmpl for one device: a new value in which every string has its variables replaced.
 * ${payload.FIELD} renders a string field as it is, another value as compact JSON, and a field
 * the device did not send as "". Returns a new reference, or NULL with the reason in err (a
 * template template_check refuses, output over TEMPLATE_OUTPUT_MAX, no memory). */
json_t *template_render(json_t *tmpl, const struct template_vars *v, char *err, size_t errlen);

/* Merges over onto base: members of both objects are merged recursively, anything else in over
 * replaces what base has. Either may be NULL. Returns a new value (NULL when both are NULL or
 * memory ran out); base and over are left as they are. */
json_t *template_merge(json_t *base, json_t *over);

#endif
