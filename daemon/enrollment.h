/* Individual enrollments and enrollment groups: validation of the DPS-shaped documents the
 * admin API receives, the canonical form the store keeps, the views the admin API answers, and
 * the parsed form the registration pipeline reads. */
#ifndef PROVD_ENROLLMENT_H
#define PROVD_ENROLLMENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "certinfo.h"
#include "store.h"

#define ETAG_MAX 16 /* base64 of 8 bytes is 12 characters, plus the NUL */

/* The bounds of customAllocationDefinition.timeoutMs. */
#define ENROLLMENT_WEBHOOK_MIN_MS 100
#define ENROLLMENT_WEBHOOK_MAX_MS 60000

/* The bounds of certificateValidityDays. */
#define ENROLLMENT_CERT_DAYS_MAX (100 * 365)

enum enrollment_attestation { ENROLLMENT_SYMMETRIC_KEY, ENROLLMENT_X509 };

/* The parsed form of a stored document. Its strings and JSON members point into doc, which it
 * holds a reference to; only the keys are copies of their own (wiped when cleared). */
struct enrollment {
    enum store_kind kind;
    json_t *doc;                   /* the canonical document without its keys */
    const char *id;                /* registration ID (lower-cased) or group ID */
    const char *device_id;         /* NULL: the registration ID; "auto": a UUID at first use */
    int enabled;                   /* provisioningStatus == "enabled" */
    char *primary_key;             /* base64; NULL in a copy (enrollment_copy) */
    char *secondary_key;           /* base64, may be NULL */
    const char *iot_hub_host_name; /* NULL when not set */
    const char **iot_hubs;         /* NULL-terminated list, may be NULL; the array is owned */
    size_t n_iot_hubs;
    const char *allocation_policy; /* "hashed" unless set */
    int reprovision_update_hub;    /* reprovisionPolicy.updateHubAssignment, default 1 */
    int reprovision_migrate_data;  /* reprovisionPolicy.migrateDeviceData, default 1 */
    json_t *initial_twin;          /* NULL when not set */
    json_t *configuration;         /* the configuration template, NULL when not set */
    const char *template_group;    /* an individual enrollment's enrollmentGroupId, or NULL */
    const char *webhook_url;       /* customAllocationDefinition, NULL when not set */
    const char *webhook_api_version;
    int webhook_timeout_ms; /* 0: the server's default */
    int cert_days;          /* certificateValidityDays; 0: the server's default */
    enum enrollment_attestation attestation;
    /* X.509 attestation, [0] primary and [1] secondary. An individual enrollment's enrolled
     * device certificates (NULL where only a thumbprint was enrolled) and their SHA-256
     * thumbprints; a group's signing CA certificates (thumbprints unused). "" / NULL: none. */
    X509 *x509_certs[2];
    char x509_thumbprints[2][CERTINFO_THUMB_LEN];
    int64_t version;
};

/* Validates a document received by the admin API for the enrollment (or group) path_id and
 * builds the canonical document the store keeps: registration ID lower-cased, defaults filled,
 * missing symmetric keys generated (64 random bytes each), read-only fields (etag, timestamps)
 * dropped. Unknown fields, wrong types, bad keys (not base64, or not 16-64 bytes), an ID that
 * breaks the registration ID rules or differs from path_id are refused. JSON null counts as an
 * absent field. path_id may be NULL (bulk items): the ID is then taken from the document.
 * Returns 0 and *out (a new reference), or -1 with a message naming the field in err and, when
 * code is not NULL, the error code to send (400003 for an ID that breaks the rules or is
 * missing, 400004 for an ID mismatch, 500001 when no key could be generated, 400006 otherwise). */
int enrollment_normalize(enum store_kind kind, const char *path_id, json_t *in, json_t **out,
                         int *code, char *err, size_t errlen);

/* As enrollment_normalize, for a document that replaces prev (the stored document, or NULL):
 * a symmetric key the document leaves out is taken from prev rather than generated, so that
 * changing other fields does not change the keys devices hold. */
int enrollment_normalize_replace(enum store_kind kind, const char *path_id, json_t *in,
                                 const struct store_doc *prev, json_t **out, int *code, char *err,
                                 size_t errlen);

/* Wipes in place the symmetric keys held by doc (an enrollment document, canonical or received,
 * or an attestation object), since jansson frees strings without wiping them. Call it before
 * releasing a document that may hold keys; the document is unusable afterwards. NULL is
 * ignored. */
void enrollment_wipe(json_t *doc);

/* Parses a stored canonical document. Returns 0, or -1 when it is not one (logged). Release
 * with enrollment_clear. */
int enrollment_parse(enum store_kind kind, const struct store_doc *d, struct enrollment *out);

/* Makes dst a copy of src without its keys, which outlives src (a registration waiting for its
 * custom allocation webhook keeps one, while the enrollment group cache it came from may be
 * reloaded). Returns 0, or -1 when out of memory (logged). Release with enrollment_clear. */
int enrollment_copy(const struct enrollment *src, struct enrollment *dst);

/* Releases what enrollment_parse or enrollment_copy stored; keys are wiped. */
void enrollment_clear(struct enrollment *e);

/* The admin API's view of a stored document: the canonical fields plus etag,
 * createdDateTimeUtc and lastUpdatedDateTimeUtc. Keys are left out unless with_secrets.
 * Returns a new reference, or NULL when d->doc is not valid JSON. */
json_t *enrollment_view(const struct store_doc *d, int with_secrets);

/* The admin API's view of any stored document (enrollment, group, endpoint): its JSON plus etag,
 * createdDateTimeUtc and lastUpdatedDateTimeUtc. Returns a new reference, or NULL when d->doc
 * is not a JSON object (logged). */
json_t *doc_view(const struct store_doc *d);

/* Formats version as an etag (base64 of the 8-byte big-endian version). */
void etag_format(int64_t version, char out[ETAG_MAX]);

/* Parses an If-Match header value or a body etag: surrounding double quotes are allowed;
 * "*" gives STORE_IF_EXISTS. Returns 0 and *version, or -1 when malformed. */
int etag_parse(const char *s, int64_t *version);

#endif
