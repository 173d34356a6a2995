/* Enrollment documents (daemon/enrollment.c): enrollment_normalize on the input parsed as the
 * admin API parses a body, for individual enrollments and for groups, with and without an ID in
 * the path. A document it accepts is followed the way provd follows it: stored as JSON text, read
 * back by enrollment_parse (which must accept every canonical document: the registration pipeline
 * depends on it) and shown by enrollment_view. The canonical form must also be a fixed point:
 * normalizing it, or the view with secrets that the admin API returns, gives it back unchanged. */
#include <stdio.h>

#include <jansson.h>

#include "enrollment.h"
#include "fuzz.h"
#include "regid.h"

static void release(json_t *doc) {
    enrollment_wipe(doc);
    json_decref(doc);
}

/* Normalizes in and requires success and a result equal to want. */
static void check_fixed_point(enum store_kind kind, const char *path_id, json_t *in,
                              const struct store_doc *prev, json_t *want) {
    json_t *again = NULL;
    char err[256];
    int code = -1, rc;

    rc = enrollment_normalize_replace(kind, path_id, in, prev, &again, &code, err, sizeof(err));
    if (rc != 0 || code != 0 || !json_equal(again, want)) {
        fprintf(stderr, "canonical document not a fixed point: %s\n", err);
        abort();
    }
    release(again);
}

/* What enrollment_parse gives for the attestation: the two symmetric keys, or no keys and an
 * X.509 attestation with a primary certificate (a group's) or at least its thumbprint (an
 * individual enrollment's), each certificate with its own thumbprint. */
static int attestation_ok(enum store_kind kind, const struct enrollment *e) {
    char thumb[CERTINFO_THUMB_LEN];

    if (e->attestation == ENROLLMENT_SYMMETRIC_KEY)
        return e->primary_key != NULL && e->secondary_key != NULL;
    if (e->attestation != ENROLLMENT_X509 || e->primary_key != NULL || e->secondary_key != NULL ||
        e->x509_thumbprints[0][0] == '\0' || (kind == STORE_GROUP && e->x509_certs[0] == NULL))
        return 0;
    for (int i = 0; i < 2; i++)
        if (e->x509_certs[i] != NULL && (certinfo_thumbprint(e->x509_certs[i], thumb) != 0 ||
                                         strcmp(thumb, e->x509_thumbprints[i]) != 0))
            return 0;
    return 1;
}

static void check_stored(enum store_kind kind, json_t *canon) {
    const char *id_field = kind == STORE_GROUP ? "enrollmentGroupId" : "registrationId";
    const char *id = json_string_value(json_object_get(canon, id_field));
    struct store_doc d = {.version = 7,
                          .created = "2024-01-02T03:04:05.0000000Z",
                          .updated = "2024-05-06T07:08:09.0000000Z"};
    struct enrollment e;
    json_t *view, *secret_view, *nokeys;

    if (id == NULL || regid_check(id, NULL) != 0)
        abort();
    for (const char *p = id; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            abort();
    d.id = strdup(id);
    d.doc = json_dumps(canon, JSON_COMPACT);
    if (d.id == NULL || d.doc == NULL)
        abort();

    if (enrollment_parse(kind, &d, &e) != 0)
        abort();
    if (e.id == NULL || strcmp(e.id, id) != 0 || !attestation_ok(kind, &e) ||
        e.allocation_policy == NULL || e.version != d.version ||
        e.enabled != (strcmp(json_string_value(json_object_get(canon, "provisioningStatus")),
                             "enabled") == 0) ||
        e.n_iot_hubs != json_array_size(json_object_get(canon, "iotHubs")))
        abort();
    enrollment_clear(&e);

    view = enrollment_view(&d, 0);
    if (view == NULL ||
        json_object_get(json_object_get(json_object_get(view, "attestation"), "symmetricKey"),
                        "primaryKey") != NULL)
        abort();
    json_decref(view);

    /* What the admin API returns with secrets can be sent back as it is. */
    secret_view = enrollment_view(&d, 1);
    if (secret_view == NULL)
        abort();
    check_fixed_point(kind, id, secret_view, NULL, canon);
    release(secret_view);

    /* A replacement that leaves the attestation out keeps the stored keys. */
    nokeys = json_deep_copy(canon);
    if (nokeys == NULL)
        abort();
    json_object_del(nokeys, "attestation");
    check_fixed_point(kind, NULL, nokeys, &d, canon);
    json_decref(nokeys);

    store_doc_clear(&d);
}

static void one(enum store_kind kind, const char *path_id, json_t *in) {
    json_t *out = NULL;
    char err[256];
    int code = -1;

    err[0] = 'x';
    if (enrollment_normalize(kind, path_id, in, &out, &code, err, sizeof(err)) != 0) {
        /* A refusal names its field and carries one of the documented codes. */
        if (out != NULL || err[0] == '\0' ||
            (code != 400003 && code != 400004 && code != 400006 && code != 500001))
            abort();
        return;
    }
    if (out == NULL || code != 0)
        abort();
    check_fixed_point(kind, path_id, out, NULL, out);
    check_stored(kind, out);
    release(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

    if (in == NULL)
        return 0;
    one(STORE_ENROLLMENT, NULL, in);
    one(STORE_ENROLLMENT, "Dev-1", in);
    one(STORE_GROUP, NULL, in);
    one(STORE_GROUP, "Group-1", in);
    release(in);
    return 0;
}
