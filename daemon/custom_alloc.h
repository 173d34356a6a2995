/* The custom allocation webhook of DPS (PROTOCOL-DPS.md): what provd sends the operator's
 * webhook about a registering device, and how its answer is read. Pure functions; the pipeline
 * makes the call itself (http_client.h). */
#ifndef PROVD_CUSTOM_ALLOC_H
#define PROVD_CUSTOM_ALLOC_H

#include <stddef.h>

#include <jansson.h>

#include "enrollment.h"

/* Failure codes of a registration whose webhook did not decide (registrationState.errorCode). */
#define CUSTOM_ALLOC_FAILED    502001 /* no answer, or an HTTP status other than 2xx */
#define CUSTOM_ALLOC_MALFORMED 502002 /* an answer that is not the documented JSON */
#define CUSTOM_ALLOC_TIMEOUT   504001 /* no answer in time */

/* The largest answer read from a webhook. */
#define CUSTOM_ALLOC_ANSWER_MAX (64 * 1024)

/* What the webhook is told about the device. */
struct custom_alloc_device {
    const char *registration_id;
    const char *current_hub;       /* its endpoint when it was assigned before, or NULL */
    const char *current_device_id; /* its device ID when it was assigned before, or NULL */
    json_t *payload;               /* the payload it sent, or NULL */
    int x509;                      /* attested by certificate (else by symmetric key) */
};

/* Builds the request body: {"individualEnrollment"|"enrollmentGroup": <the enrollment without
 * its keys>, "deviceRuntimeContext": {"registrationId", "currentIotHubHostName"?,
 * "currentDeviceId"?, "symmetricKey" | "x509": {}, "payload"?}, "linkedHubs": [...]} where
 * linkedHubs are the nlinked host names of linked. e must come from enrollment_parse or
 * enrollment_copy (its document holds no key). Returns a new reference, or NULL when out of memory.
 */
json_t *custom_alloc_request(const struct enrollment *e, const struct custom_alloc_device *d,
                             const char *const *linked, size_t nlinked);

/* Reads the answer body (len bytes): a JSON object with "iotHubHostName" naming one of the
 * nlinked host names of linked (without regard to case), and optionally "initialTwin" (an
 * object) and "payload" (any JSON). Returns the index of the chosen host with *twin and
 * *payload (new references, NULL when absent), or -1 with the reason in err (UTF-8 text, fit for
 * a JSON answer). */
long custom_alloc_answer(const char *body, size_t len, const char *const *linked, size_t nlinked,
                         json_t **twin, json_t **payload, char *err, size_t errlen);

#endif
