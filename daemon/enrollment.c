/* Individual enrollments and enrollment groups.
 *
 * The admin API receives documents in the shape of the DPS service API. enrollment_normalize
 * checks one field at a time (so that every refusal names its field) and builds the canonical
 * document the store keeps; everything else in provd reads only canonical documents, through
 * enrollment_parse and enrollment_view. */
#include "enrollment.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "docval.h"
#include "hostname.h"
#include "log.h"
#include "rand.h"
#include "regid.h"

#define KEY_MIN_BYTES   16
#define KEY_MAX_BYTES   64
#define KEY_GEN_BYTES   64
#define IOT_HUBS_MAX    64
#define DEVICE_ID_MAX   128
#define WEBHOOK_URL_MAX 2048
#define API_VERSION_MAX 32

#define CODE_BAD_ID      400003
#define CODE_ID_MISMATCH 400004
#define CODE_INVALID     DOCVAL_INVALID
#define CODE_INTERNAL    DOCVAL_INTERNAL

/* DPS's policies, and evenlyWeighted: hashed with the endpoints' weights (docs/admin-api.md). */
static const char *const ALLOCATION_POLICIES[] = {"hashed",     "evenlyWeighted", "static",
                                                  "geoLatency", "custom",         NULL};
static const char *const PROVISIONING_STATUSES[] = {"enabled", "disabled", NULL};

/* Overwrites the characters of a JSON string in place. jansson frees strings without wiping
 * them, so a key held in a document is cleansed before the document is released. The storage
 * belongs to the json_t and is writable; only the accessor is const. */
static void wipe_string(json_t *s) {
    if (json_is_string(s))
        OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

void enrollment_wipe(json_t *doc) {
    json_t *sk;

    if (!json_is_object(doc))
        return;
    sk = json_object_get(json_object_get(doc, "attestation"), "symmetricKey");
    if (sk == NULL)
        sk = json_object_get(doc, "symmetricKey");
    if (!json_is_object(sk))
        return;
    wipe_string(json_object_get(sk, "primaryKey"));
    wipe_string(json_object_get(sk, "secondaryKey"));
}

/* Checks a received ID (a registration ID or an enrollment group ID) and writes it lower-cased
 * into out. */
static int check_id(const char *field, const char *id, char out[REGID_MAX + 1], struct verr *e) {
    const char *why = NULL;

    if (regid_check(id, &why) != 0)
        return verr_set(e, CODE_BAD_ID, "%s \"%.64s\" is invalid: %s", field, id,
                        why != NULL ? why : "breaks the registration ID rules");
    snprintf(out, REGID_MAX + 1, "%s", id);
    regid_lower(out);
    return 0;
}

/* Device IDs become IoT Hub identities, which allow ASCII letters, digits and a few symbols. */
static int check_device_id(const char *s, struct verr *e) {
    static const char extra[] = "-.+%_#*?!(),:=@$'";
    size_t n = strlen(s);

    if (n == 0 || n > DEVICE_ID_MAX)
        return verr_set(e, CODE_INVALID, "deviceId must have 1 to %d characters", DEVICE_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            return verr_set(e, CODE_INVALID, "deviceId has a character not allowed (0x%02x)", c);
    }
    return 0;
}

/* Returns the endpoint host name v, lower-cased, as a new JSON string; or NULL after a refusal.
 * Names are stored lower-cased because the store finds the documents that name an endpoint by
 * comparing them with its (lower-cased) host name. */
static json_t *norm_host(const char *field, json_t *v, struct verr *e) {
    char host[HOSTNAME_MAX + 1];
    const char *why = NULL;

    if (json_check_string(field, v, HOSTNAME_MAX, e) != 0)
        return NULL;
    if (hostname_check(json_string_value(v), &why) != 0) {
        verr_set(e, CODE_INVALID, "%s \"%.64s\" is not a host name: %s", field,
                 json_string_value(v), why);
        return NULL;
    }
    snprintf(host, sizeof(host), "%s", json_string_value(v));
    regid_lower(host);
    return json_string(host);
}

/* Checks a received key: strict base64 of 16 to 64 bytes. The message names the field and the
 * problem, never the key. */
static int check_key(const char *field, json_t *v, struct verr *e) {
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    const char *why = NULL;

    if (!json_is_string(v))
        return verr_set(e, CODE_INVALID, "%s must be a string", field);
    if (b64_decode(json_string_value(v), json_string_length(v), &raw, &rawlen, &why) != 0)
        return verr_set(e, CODE_INVALID, "%s is not valid base64 (%s)", field,
                        why != NULL ? why : "malformed");
    b64_free(raw, rawlen);
    if (rawlen < KEY_MIN_BYTES || rawlen > KEY_MAX_BYTES)
        return verr_set(e, CODE_INVALID, "%s must decode to %d to %d bytes, not %zu", field,
                        KEY_MIN_BYTES, KEY_MAX_BYTES, rawlen);
    return 0;
}

/* Returns a new reference to the symmetric key named which of the stored document prev when it
 * has one, else a freshly generated key; NULL when no key could be generated. */
static json_t *key_from_prev_or_new(json_t *prev, const char *which) {
    json_t *sk = json_object_get(json_object_get(prev, "attestation"), "symmetricKey");
    json_t *old = json_object_get(sk, which);
    json_t *k;
    char *gen;

    if (json_is_string(old))
        return json_stringn(json_string_value(old), json_string_length(old));
    gen = rand_key_b64(KEY_GEN_BYTES);
    if (gen == NULL)
        return NULL;
    k = json_string(gen);
    OPENSSL_cleanse(gen, strlen(gen));
    free(gen);
    return k;
}

/* Checks that v, the member named field, is an object with no member outside members (a
 * NULL-terminated list); unknown members are named with field as their prefix. */
static int check_object(const char *field, json_t *v, const char *const *members, struct verr *e) {
    char prefix[64];

    if (!json_is_object(v))
        return verr_set(e, CODE_INVALID, "%s must be an object", field);
    snprintf(prefix, sizeof(prefix), "%s.", field);
    return json_check_members(v, members, prefix, e);
}

/* The members of DPS's X509CertificateInfo, accepted in a received document (a document read
 * from the API sent back as it is) and recomputed from the certificate. */
static const char *const INFO_MEMBERS[] = {
    "subjectName", "sha1Thumbprint", "sha256Thumbprint", "issuerName", "notBeforeUtc",
    "notAfterUtc", "serialNumber",   "version",          NULL,
};

/* One enrolled certificate (field names it in messages): {"certificate": PEM or base64 DER}
 * becomes {"certificate": PEM, "info": {...}}; an individual enrollment may instead enroll
 * {"info": {"sha256Thumbprint": HEX}} alone. A group's certificates must be CAs. */
static json_t *norm_x509_cert(enum store_kind kind, const char *field, json_t *v, struct verr *e) {
    static const char *const members[] = {"certificate", "info", NULL};
    char msg[128], thumb[CERTINFO_THUMB_LEN], serial[CERTINFO_SERIAL_MAX], prefix[160], *pem = NULL;
    json_t *cert, *info, *tp, *out = NULL;
    X509 *x = NULL;

    if (!json_is_object(v)) {
        verr_set(e, CODE_INVALID, "%s must be an object", field);
        return NULL;
    }
    snprintf(prefix, sizeof(prefix), "%s.", field);
    if (json_check_members(v, members, prefix, e) != 0)
        return NULL;
    cert = json_opt(v, "certificate");
    info = json_opt(v, "info");
    if (info != NULL && (!json_is_object(info) || json_check_members(info, INFO_MEMBERS, "", e))) {
        verr_set(e, CODE_INVALID, "%s.info must be an object of X509CertificateInfo members",
                 field);
        return NULL;
    }
    if (cert == NULL) {
        tp = json_opt(info, "sha256Thumbprint");
        if (kind == STORE_GROUP || tp == NULL) {
            verr_set(e, CODE_INVALID, "%s.certificate is missing%s", field,
                     kind == STORE_GROUP ? "" : " (or give info.sha256Thumbprint)");
            return NULL;
        }
        if (!json_is_string(tp) || certinfo_thumbprint_parse(json_string_value(tp), thumb) != 0) {
            verr_set(e, CODE_INVALID, "%s.info.sha256Thumbprint must be 64 hex digits", field);
            return NULL;
        }
        out = json_pack("{s:{s:s}}", "info", "sha256Thumbprint", thumb);
        goto done;
    }
    if (!json_is_string(cert) || strlen(json_string_value(cert)) != json_string_length(cert)) {
        verr_set(e, CODE_INVALID, "%s.certificate must be a string", field);
        return NULL;
    }
    if ((x = certinfo_parse(json_string_value(cert), json_string_length(cert), msg, sizeof(msg))) ==
        NULL) {
        verr_set(e, CODE_INVALID, "%s.certificate %s", field, msg);
        return NULL;
    }
    uint32_t flags = X509_get_extension_flags(x);
    if (kind == STORE_GROUP && !(flags & EXFLAG_CA)) {
        verr_set(e, CODE_INVALID,
                 "%s.certificate is not a CA certificate (basicConstraints CA:TRUE is needed to"
                 " sign device certificates)",
                 field);
        goto done;
    }
    if (kind == STORE_GROUP && (flags & EXFLAG_KUSAGE) &&
        !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN)) {
        verr_set(e, CODE_INVALID,
                 "%s.certificate's keyUsage leaves out keyCertSign, which signing device"
                 " certificates needs",
                 field);
        goto done;
    }
    if (certinfo_serial(x, serial) != 0) {
        verr_set(e, CODE_INVALID,
                 "%s.certificate has a serial number over 20 octets (RFC 5280 allows 20)", field);
        goto done;
    }
    if ((pem = certinfo_pem(x)) != NULL)
        out = json_pack("{s:s, s:o*}", "certificate", pem, "info", certinfo_json(x));
done:
    if (out == NULL && e->code == 0)
        verr_set(e, CODE_INTERNAL, "out of memory");
    free(pem);
    X509_free(x);
    return out;
}

/* The x509 member of an X.509 attestation: an individual enrollment's clientCertificates, a
 * group's signingCertificates, each with a primary and an optional secondary certificate. */
static json_t *norm_x509(enum store_kind kind, json_t *v, struct verr *e) {
    static const char *const members[] = {"clientCertificates", "signingCertificates",
                                          "caReferences", NULL};
    static const char *const slots[] = {"primary", "secondary", NULL};
    const char *want = kind == STORE_GROUP ? "signingCertificates" : "clientCertificates";
    const char *other = kind == STORE_GROUP ? "clientCertificates" : "signingCertificates";
    char field[96], prefix[64];
    json_t *set, *certs = NULL, *item;

    if (check_object("attestation.x509", v, members, e) != 0)
        return NULL;
    if (json_opt(v, "caReferences") != NULL) {
        verr_set(e, CODE_INVALID,
                 "attestation.x509.caReferences is not supported: give the CA"
                 " certificate in signingCertificates");
        return NULL;
    }
    if (json_opt(v, other) != NULL) {
        verr_set(e, CODE_INVALID, "attestation.x509.%s is for %s; %s take %s", other,
                 kind == STORE_GROUP ? "individual enrollments" : "enrollment groups",
                 kind == STORE_GROUP ? "groups" : "individual enrollments", want);
        return NULL;
    }
    set = json_opt(v, want);
    if (!json_is_object(set) || json_opt(set, "primary") == NULL) {
        verr_set(e, CODE_INVALID, "attestation.x509.%s.primary is missing", want);
        return NULL;
    }
    snprintf(prefix, sizeof(prefix), "attestation.x509.%s.", want);
    if (json_check_members(set, slots, prefix, e) != 0 || (certs = json_object()) == NULL)
        return NULL;
    for (size_t i = 0; slots[i] != NULL; i++) {
        if (json_opt(set, slots[i]) == NULL)
            continue;
        snprintf(field, sizeof(field), "%s%s", prefix, slots[i]);
        item = norm_x509_cert(kind, field, json_opt(set, slots[i]), e);
        if (json_put_new(certs, slots[i], item, e) != 0) {
            json_decref(certs);
            return NULL;
        }
    }
    return json_pack("{s:o}", want, certs);
}

/* Builds the canonical attestation object from the received one (NULL when absent). */
static json_t *norm_attestation(enum store_kind kind, json_t *att, json_t *prev, struct verr *e) {
    static const char *const att_members[] = {"type", "symmetricKey", "x509", "tpm", NULL};
    static const char *const sk_members[] = {"primaryKey", "secondaryKey", NULL};
    json_t *type, *sk = NULL, *pk = NULL, *sec = NULL, *out = NULL, *keys = NULL;
    json_t *old = json_object_get(prev, "attestation");

    /* A replacement that leaves attestation out keeps the stored one: an X.509 enrollment stays
     * one (the keys of a symmetric-key one are kept below). */
    if (att == NULL && json_is_string(json_object_get(old, "type")) &&
        strcasecmp(json_string_value(json_object_get(old, "type")), "x509") == 0)
        return json_deep_copy(old);
    if (att != NULL) {
        if (check_object("attestation", att, att_members, e) != 0)
            return NULL;
        type = json_opt(att, "type");
        if (!json_is_string(type)) {
            verr_set(e, CODE_INVALID, "attestation.type must be a string");
            return NULL;
        }
        if (strcasecmp(json_string_value(type), "tpm") == 0) {
            verr_set(e, CODE_INVALID, "attestation type tpm is not supported yet");
            return NULL;
        }
        if (strcasecmp(json_string_value(type), "x509") == 0) {
            if (json_opt(att, "symmetricKey") != NULL || json_opt(att, "tpm") != NULL) {
                verr_set(e, CODE_INVALID, "attestation.%s is set but the type is x509",
                         json_opt(att, "tpm") != NULL ? "tpm" : "symmetricKey");
                return NULL;
            }
            if (json_opt(att, "x509") == NULL) {
                verr_set(e, CODE_INVALID, "attestation.x509 is missing");
                return NULL;
            }
            return json_pack("{s:s, s:o}", "type", "x509", "x509",
                             norm_x509(kind, json_opt(att, "x509"), e));
        }
        if (strcasecmp(json_string_value(type), "symmetricKey") != 0) {
            verr_set(e, CODE_INVALID, "attestation.type must be symmetricKey, x509 or tpm");
            return NULL;
        }
        if (json_opt(att, "x509") != NULL || json_opt(att, "tpm") != NULL) {
            verr_set(e, CODE_INVALID, "attestation.%s is set but the type is symmetricKey",
                     json_opt(att, "x509") != NULL ? "x509" : "tpm");
            return NULL;
        }
        sk = json_opt(att, "symmetricKey");
        if (sk != NULL && check_object("attestation.symmetricKey", sk, sk_members, e) != 0)
            return NULL;
    }

    pk = json_opt(sk, "primaryKey");
    sec = json_opt(sk, "secondaryKey");
    if (pk != NULL && check_key("attestation.symmetricKey.primaryKey", pk, e) != 0)
        return NULL;
    if (sec != NULL && check_key("attestation.symmetricKey.secondaryKey", sec, e) != 0)
        return NULL;

    keys = json_object();
    if (keys == NULL)
        goto oom;
    if (json_object_set_new(keys, "primaryKey",
                            pk != NULL ? json_stringn(json_string_value(pk), json_string_length(pk))
                                       : key_from_prev_or_new(prev, "primaryKey")) != 0 ||
        json_object_set_new(keys, "secondaryKey",
                            sec != NULL
                                ? json_stringn(json_string_value(sec), json_string_length(sec))
                                : key_from_prev_or_new(prev, "secondaryKey")) != 0)
        goto oom;
    out = json_object();
    if (out == NULL || json_object_set_new(out, "type", json_string("symmetricKey")) != 0 ||
        json_object_set(out, "symmetricKey", keys) != 0)
        goto oom;
    json_decref(keys);
    return out;

oom:
    enrollment_wipe(out);
    json_decref(out);
    if (keys != NULL) {
        wipe_string(json_object_get(keys, "primaryKey"));
        wipe_string(json_object_get(keys, "secondaryKey"));
        json_decref(keys);
    }
    verr_set(e, CODE_INTERNAL, "could not generate the symmetric keys");
    return NULL;
}

static json_t *norm_iot_hubs(json_t *v, struct verr *e) {
    char field[32];
    size_t i;
    json_t *item, *host, *out;

    if (!json_is_array(v)) {
        verr_set(e, CODE_INVALID, "iotHubs must be an array of strings");
        return NULL;
    }
    if (json_array_size(v) > IOT_HUBS_MAX) {
        verr_set(e, CODE_INVALID, "iotHubs has more than %d entries", IOT_HUBS_MAX);
        return NULL;
    }
    out = json_array();
    if (out == NULL) {
        verr_set(e, CODE_INTERNAL, "out of memory");
        return NULL;
    }
    json_array_foreach(v, i, item) {
        snprintf(field, sizeof(field), "iotHubs[%zu]", i);
        if ((host = norm_host(field, item, e)) == NULL)
            goto fail;
        /* A name given twice would count twice in the hashing. */
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_array_get(out, j), host)) {
                verr_set(e, CODE_INVALID, "%s repeats \"%s\"", field, json_string_value(host));
                json_decref(host);
                goto fail;
            }
        }
        if (json_array_append_new(out, host) != 0) {
            verr_set(e, CODE_INTERNAL, "out of memory");
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* customAllocationDefinition: DPS's webhookUrl and apiVersion, and provd's timeoutMs. */
static json_t *norm_custom(json_t *v, struct verr *e) {
    static const char *const members[] = {"webhookUrl", "apiVersion", "timeoutMs", NULL};
    json_t *url, *api, *timeout, *out;
    const char *u;

    if (check_object("customAllocationDefinition", v, members, e) != 0)
        return NULL;
    url = json_opt(v, "webhookUrl");
    api = json_opt(v, "apiVersion");
    timeout = json_opt(v, "timeoutMs");
    if (url == NULL) {
        verr_set(e, CODE_INVALID, "customAllocationDefinition.webhookUrl is missing");
        return NULL;
    }
    if (json_check_string("customAllocationDefinition.webhookUrl", url, WEBHOOK_URL_MAX, e) != 0)
        return NULL;
    u = json_string_value(url);
    if (strncasecmp(u, "https://", 8) != 0 || u[8] == '\0') {
        verr_set(e, CODE_INVALID, "customAllocationDefinition.webhookUrl must be an https:// URL");
        return NULL;
    }
    for (; *u != '\0'; u++) {
        if ((unsigned char)*u <= 0x20 || *u == 0x7f) {
            verr_set(e, CODE_INVALID,
                     "customAllocationDefinition.webhookUrl has a space or a control character");
            return NULL;
        }
    }
    if (api != NULL &&
        json_check_string("customAllocationDefinition.apiVersion", api, API_VERSION_MAX, e) != 0)
        return NULL;
    if (timeout != NULL &&
        (!json_is_integer(timeout) || json_integer_value(timeout) < ENROLLMENT_WEBHOOK_MIN_MS ||
         json_integer_value(timeout) > ENROLLMENT_WEBHOOK_MAX_MS)) {
        verr_set(e, CODE_INVALID,
                 "customAllocationDefinition.timeoutMs must be an integer from %d to %d",
                 ENROLLMENT_WEBHOOK_MIN_MS, ENROLLMENT_WEBHOOK_MAX_MS);
        return NULL;
    }
    out =
        json_pack("{s:O, s:O*, s:O*}", "webhookUrl", url, "apiVersion", api, "timeoutMs", timeout);
    if (out == NULL)
        verr_set(e, CODE_INTERNAL, "out of memory");
    return out;
}

/* Checks what the allocation policy needs from the rest of the canonical document out. */
static int check_policy(json_t *out, struct verr *e) {
    const char *policy = json_string_value(json_object_get(out, "allocationPolicy"));

    if (strcmp(policy, "static") == 0 && json_object_get(out, "iotHubHostName") == NULL &&
        json_array_size(json_object_get(out, "iotHubs")) != 1)
        return verr_set(
            e, CODE_INVALID,
            "allocationPolicy static needs iotHubHostName or exactly one iotHubs entry");
    if (strcmp(policy, "custom") == 0 && json_object_get(out, "customAllocationDefinition") == NULL)
        return verr_set(e, CODE_INVALID,
                        "allocationPolicy custom needs a customAllocationDefinition");
    return 0;
}

static json_t *norm_reprovision(json_t *v, struct verr *e) {
    static const char *const members[] = {"updateHubAssignment", "migrateDeviceData", NULL};
    json_t *update = NULL, *migrate = NULL;

    if (v != NULL) {
        if (check_object("reprovisionPolicy", v, members, e) != 0)
            return NULL;
        update = json_opt(v, "updateHubAssignment");
        migrate = json_opt(v, "migrateDeviceData");
        if (update != NULL && !json_is_boolean(update)) {
            verr_set(e, CODE_INVALID, "reprovisionPolicy.updateHubAssignment must be a boolean");
            return NULL;
        }
        if (migrate != NULL && !json_is_boolean(migrate)) {
            verr_set(e, CODE_INVALID, "reprovisionPolicy.migrateDeviceData must be a boolean");
            return NULL;
        }
    }
    return json_pack("{s:b, s:b}", "updateHubAssignment", update == NULL || json_is_true(update),
                     "migrateDeviceData", migrate == NULL || json_is_true(migrate));
}

static json_t *norm_capabilities(json_t *v, struct verr *e) {
    static const char *const members[] = {"iotEdge", NULL};
    json_t *edge;

    if (check_object("capabilities", v, members, e) != 0)
        return NULL;
    edge = json_opt(v, "iotEdge");
    if (edge != NULL && !json_is_boolean(edge)) {
        verr_set(e, CODE_INVALID, "capabilities.iotEdge must be a boolean");
        return NULL;
    }
    return json_pack("{s:b}", "iotEdge", json_is_true(edge));
}

/* The members a document may have. The read-only ones are accepted so that a document read from
 * the API can be sent back as it is. Both kinds have COMMON_MEMBERS; each adds its ID, and an
 * individual enrollment its device ID, the group it takes templates from and its registration
 * state. */
#define COMMON_MEMBERS                                                                             \
    "attestation", "provisioningStatus", "iotHubHostName", "iotHubs", "allocationPolicy",          \
        "customAllocationDefinition", "reprovisionPolicy", "initialTwin", "configuration",         \
        "capabilities", "certificateValidityDays", "etag", "createdDateTimeUtc",                   \
        "lastUpdatedDateTimeUtc"
static const char *const ENROLLMENT_MEMBERS[] = {
    "registrationId", "deviceId", "enrollmentGroupId", "registrationState", COMMON_MEMBERS, NULL,
};
static const char *const GROUP_MEMBERS[] = {"enrollmentGroupId", COMMON_MEMBERS, NULL};

static int normalize(enum store_kind kind, const char *path_id, json_t *in, json_t *prev,
                     json_t *out, struct verr *e) {
    const char *id_field = kind == STORE_GROUP ? "enrollmentGroupId" : "registrationId";
    char id[REGID_MAX + 1], pid[REGID_MAX + 1];
    const char *s;
    json_t *v;

    if (!json_is_object(in))
        return verr_set(e, CODE_INVALID, "the %s must be a JSON object",
                        kind == STORE_GROUP ? "enrollment group" : "enrollment");
    if (json_check_members(in, kind == STORE_GROUP ? GROUP_MEMBERS : ENROLLMENT_MEMBERS, "", e) !=
        0)
        return -1;

    /* The ID: the path's wins, and a body that names another one is refused. */
    v = json_opt(in, id_field);
    if (v != NULL && !json_is_string(v))
        return verr_set(e, CODE_INVALID, "%s must be a string", id_field);
    if (path_id != NULL && check_id(id_field, path_id, pid, e) != 0)
        return -1;
    if (v != NULL) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return verr_set(e, CODE_BAD_ID, "%s contains a NUL character", id_field);
        if (check_id(id_field, json_string_value(v), id, e) != 0)
            return -1;
        if (path_id != NULL && strcmp(id, pid) != 0)
            return verr_set(e, CODE_ID_MISMATCH, "%s \"%s\" differs from \"%s\" in the path",
                            id_field, id, pid);
    } else if (path_id != NULL) {
        memcpy(id, pid, sizeof(id));
    } else {
        return verr_set(e, CODE_BAD_ID, "%s is missing", id_field);
    }
    if (json_put_new(out, id_field, json_string(id), e) != 0)
        return -1;

    if (kind == STORE_ENROLLMENT && (v = json_opt(in, "deviceId")) != NULL) {
        if (!json_is_string(v))
            return verr_set(e, CODE_INVALID, "deviceId must be a string");
        if (strlen(json_string_value(v)) != json_string_length(v))
            return verr_set(e, CODE_INVALID, "deviceId contains a NUL character");
        if (check_device_id(json_string_value(v), e) != 0)
            return -1;
        if (json_put_new(out, "deviceId", json_string(json_string_value(v)), e) != 0)
            return -1;
    }

    if (json_put_new(out, "attestation",
                     norm_attestation(kind, json_opt(in, "attestation"), prev, e), e) != 0)
        return -1;

    s = "enabled";
    if ((v = json_opt(in, "provisioningStatus")) != NULL) {
        if (!json_is_string(v) ||
            (s = enum_match(json_string_value(v), PROVISIONING_STATUSES)) == NULL)
            return verr_set(e, CODE_INVALID, "provisioningStatus must be enabled or disabled");
    }
    if (json_put_new(out, "provisioningStatus", json_string(s), e) != 0)
        return -1;

    if ((v = json_opt(in, "iotHubHostName")) != NULL &&
        json_put_new(out, "iotHubHostName", norm_host("iotHubHostName", v, e), e) != 0)
        return -1;
    if ((v = json_opt(in, "iotHubs")) != NULL &&
        json_put_new(out, "iotHubs", norm_iot_hubs(v, e), e) != 0)
        return -1;

    s = "hashed";
    if ((v = json_opt(in, "allocationPolicy")) != NULL) {
        if (!json_is_string(v) ||
            (s = enum_match(json_string_value(v), ALLOCATION_POLICIES)) == NULL)
            return verr_set(e, CODE_INVALID,
                            "allocationPolicy must be hashed, evenlyWeighted,"
                            " static, geoLatency or custom");
    }
    if (json_put_new(out, "allocationPolicy", json_string(s), e) != 0)
        return -1;
    if ((v = json_opt(in, "customAllocationDefinition")) != NULL &&
        json_put_new(out, "customAllocationDefinition", norm_custom(v, e), e) != 0)
        return -1;

    if (json_put_new(out, "reprovisionPolicy",
                     norm_reprovision(json_opt(in, "reprovisionPolicy"), e), e) != 0)
        return -1;

    if ((v = json_opt(in, "initialTwin")) != NULL) {
        if (!json_is_object(v))
            return verr_set(e, CODE_INVALID, "initialTwin must be an object");
        if (json_put_new(out, "initialTwin", json_deep_copy(v), e) != 0)
            return -1;
    }
    /* The variables of the configuration template are checked by template_check, which needs
     * the enrollment's context (admin_api.c). */
    if ((v = json_opt(in, "configuration")) != NULL) {
        if (!json_is_object(v))
            return verr_set(e, CODE_INVALID, "configuration must be an object");
        if (json_put_new(out, "configuration", json_deep_copy(v), e) != 0)
            return -1;
    }
    /* An individual enrollment may take the templates of a group (initialTwin, configuration)
     * as defaults for its own. */
    if (kind == STORE_ENROLLMENT && (v = json_opt(in, "enrollmentGroupId")) != NULL) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return verr_set(e, CODE_INVALID, "enrollmentGroupId must be a string");
        if (check_id("enrollmentGroupId", json_string_value(v), pid, e) != 0)
            return verr_set(e, CODE_INVALID, "enrollmentGroupId \"%.64s\" is not a group ID",
                            json_string_value(v));
        if (json_put_new(out, "enrollmentGroupId", json_string(pid), e) != 0)
            return -1;
    }
    if ((v = json_opt(in, "capabilities")) != NULL &&
        json_put_new(out, "capabilities", norm_capabilities(v, e), e) != 0)
        return -1;
    if ((v = json_opt(in, "certificateValidityDays")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > ENROLLMENT_CERT_DAYS_MAX)
            return verr_set(e, CODE_INVALID,
                            "certificateValidityDays must be an integer from 1 to %d",
                            ENROLLMENT_CERT_DAYS_MAX);
        if (json_put_new(out, "certificateValidityDays", json_integer(json_integer_value(v)), e) !=
            0)
            return -1;
    }

    /* etag, the timestamps and registrationState are the server's: accepted and dropped. */
    return check_policy(out, e);
}

int enrollment_normalize_replace(enum store_kind kind, const char *path_id, json_t *in,
                                 const struct store_doc *prev, json_t **out, int *code, char *err,
                                 size_t errlen) {
    struct verr e = {0, err, errlen};
    json_t *prev_doc = NULL, *doc;
    int rc = -1;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (prev != NULL && prev->doc != NULL) {
        prev_doc = json_loads(prev->doc, 0, NULL);
        if (prev_doc == NULL)
            log_warn("enrollment %s: stored document is not JSON; its keys are not kept",
                     prev->id != NULL ? prev->id : "?");
    }
    doc = json_object();
    if (doc == NULL) {
        verr_set(&e, CODE_INTERNAL, "out of memory");
        goto out;
    }
    if (normalize(kind, path_id, in, prev_doc, doc, &e) != 0) {
        enrollment_wipe(doc);
        json_decref(doc);
        goto out;
    }
    *out = doc;
    rc = 0;
out:
    if (code != NULL)
        *code = rc == 0 ? 0 : e.code;
    enrollment_wipe(prev_doc);
    json_decref(prev_doc);
    return rc;
}

int enrollment_normalize(enum store_kind kind, const char *path_id, json_t *in, json_t **out,
                         int *code, char *err, size_t errlen) {
    return enrollment_normalize_replace(kind, path_id, in, NULL, out, code, err, errlen);
}

static void free_secret(char *s) {
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Reads the X.509 attestation of the canonical document root into out. */
static int x509_from_doc(enum store_kind kind, json_t *root, const char *what,
                         struct enrollment *out) {
    static const char *const slots[2] = {"primary", "secondary"};
    json_t *set =
        json_object_get(json_object_get(json_object_get(root, "attestation"), "x509"),
                        kind == STORE_GROUP ? "signingCertificates" : "clientCertificates");
    char err[128];

    out->attestation = ENROLLMENT_X509;
    for (int i = 0; i < 2; i++) {
        json_t *slot = json_object_get(set, slots[i]);
        const char *pem = json_string_value(json_object_get(slot, "certificate"));
        const char *tp =
            json_string_value(json_object_get(json_object_get(slot, "info"), "sha256Thumbprint"));

        if (slot == NULL)
            continue;
        if (pem != NULL) {
            out->x509_certs[i] = certinfo_parse(pem, strlen(pem), err, sizeof(err));
            if (out->x509_certs[i] == NULL ||
                certinfo_thumbprint(out->x509_certs[i], out->x509_thumbprints[i]) != 0) {
                log_error("enrollment %s: stored %s certificate is unreadable", what, slots[i]);
                return -1;
            }
        } else if (tp == NULL || certinfo_thumbprint_parse(tp, out->x509_thumbprints[i]) != 0) {
            log_error("enrollment %s: stored %s certificate has no thumbprint", what, slots[i]);
            return -1;
        }
    }
    if (out->x509_thumbprints[0][0] == '\0') {
        log_error("enrollment %s: stored X.509 attestation has no primary certificate", what);
        return -1;
    }
    return 0;
}

/* Fills out from root, a canonical document without its keys, whose reference out takes: the
 * strings of out point into it. what names the document in the log. */
static int from_doc(enum store_kind kind, json_t *root, int64_t version, const char *what,
                    struct enrollment *out) {
    const char *id_field = kind == STORE_GROUP ? "enrollmentGroupId" : "registrationId";
    const char *type = NULL, *status = NULL;
    json_t *hubs = NULL, *custom = NULL, *item;
    json_error_t jerr;
    int update = 1, migrate = 1;
    json_int_t timeout = 0, days = 0;
    size_t i;

    out->kind = kind;
    out->doc = root;
    out->version = version;
    if (json_unpack_ex(
            root, &jerr, 0, "{s:s, s?s, s:{s:s}, s:s, s?s, s?o, s:s, s?{s?b, s?b}, s?o, s?o, s?o}",
            id_field, &out->id, "deviceId", &out->device_id, "attestation", "type", &type,
            "provisioningStatus", &status, "iotHubHostName", &out->iot_hub_host_name, "iotHubs",
            &hubs, "allocationPolicy", &out->allocation_policy, "reprovisionPolicy",
            "updateHubAssignment", &update, "migrateDeviceData", &migrate, "initialTwin",
            &out->initial_twin, "configuration", &out->configuration, "customAllocationDefinition",
            &custom) != 0 ||
        json_unpack_ex(root, &jerr, 0, "{s?I}", "certificateValidityDays", &days) != 0) {
        log_error("enrollment %s: stored document is not canonical: %s", what, jerr.text);
        return -1;
    }
    if (custom != NULL &&
        json_unpack_ex(custom, &jerr, 0, "{s:s, s?s, s?I}", "webhookUrl", &out->webhook_url,
                       "apiVersion", &out->webhook_api_version, "timeoutMs", &timeout) != 0) {
        log_error("enrollment %s: stored customAllocationDefinition is not canonical: %s", what,
                  jerr.text);
        return -1;
    }
    if (kind == STORE_ENROLLMENT)
        out->template_group = json_string_value(json_object_get(root, "enrollmentGroupId"));
    if ((strcmp(type, "symmetricKey") != 0 && strcmp(type, "x509") != 0) ||
        (hubs != NULL && !json_is_array(hubs)) || days < 0 || days > ENROLLMENT_CERT_DAYS_MAX ||
        (out->initial_twin != NULL && !json_is_object(out->initial_twin)) ||
        (out->configuration != NULL && !json_is_object(out->configuration)) || timeout < 0 ||
        timeout > ENROLLMENT_WEBHOOK_MAX_MS) {
        log_error("enrollment %s: stored document is not canonical", what);
        return -1;
    }
    out->enabled = strcmp(status, "enabled") == 0;
    out->reprovision_update_hub = update != 0;
    out->reprovision_migrate_data = migrate != 0;
    out->webhook_timeout_ms = (int)timeout;
    out->cert_days = (int)days;
    if (strcmp(type, "x509") == 0 && x509_from_doc(kind, root, what, out) != 0)
        return -1;
    if (hubs != NULL) {
        out->iot_hubs = calloc(json_array_size(hubs) + 1, sizeof(char *));
        if (out->iot_hubs == NULL) {
            log_error("enrollment %s: out of memory", what);
            return -1;
        }
        json_array_foreach(hubs, i, item) {
            if (!json_is_string(item)) {
                log_error("enrollment %s: iotHubs holds a non-string", what);
                return -1;
            }
            out->iot_hubs[i] = json_string_value(item);
            out->n_iot_hubs = i + 1;
        }
    }
    return 0;
}

int enrollment_parse(enum store_kind kind, const struct store_doc *d, struct enrollment *out) {
    const char *what = d->id != NULL ? d->id : "?";
    const char *pk = NULL, *sk = NULL, *type = NULL;
    json_t *root, *keys = NULL;
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    root = json_loads(d->doc != NULL ? d->doc : "", 0, &jerr);
    if (root == NULL) {
        log_error("enrollment %s: stored document is not JSON: %s", what, jerr.text);
        return -1;
    }
    if (json_unpack_ex(root, &jerr, 0, "{s:{s:s}}", "attestation", "type", &type) != 0) {
        log_error("enrollment %s: stored document has no attestation: %s", what, jerr.text);
        json_decref(root);
        return -1;
    }
    /* Only symmetric-key attestation holds secrets; the other kinds have none to take out. */
    if (strcmp(type, "symmetricKey") == 0) {
        if (json_unpack_ex(root, &jerr, 0, "{s:{s:{s:s, s?s}}}", "attestation", "symmetricKey",
                           "primaryKey", &pk, "secondaryKey", &sk) != 0) {
            log_error("enrollment %s: stored document has no symmetric key: %s", what, jerr.text);
            enrollment_wipe(root);
            json_decref(root);
            return -1;
        }
        out->primary_key = strdup(pk);
        out->secondary_key = sk != NULL ? strdup(sk) : NULL;
        /* The document kept with the parsed form holds no key: it is what the custom allocation
         * webhook is told about the enrollment. */
        enrollment_wipe(root);
        keys = json_object_get(json_object_get(root, "attestation"), "symmetricKey");
        json_object_del(keys, "primaryKey");
        json_object_del(keys, "secondaryKey");
        if (out->primary_key == NULL || (sk != NULL && out->secondary_key == NULL)) {
            log_error("enrollment %s: out of memory", what);
            json_decref(root);
            enrollment_clear(out);
            return -1;
        }
    }
    if (from_doc(kind, root, d->version, what, out) != 0) {
        enrollment_clear(out);
        return -1;
    }
    return 0;
}

int enrollment_copy(const struct enrollment *src, struct enrollment *dst) {
    memset(dst, 0, sizeof(*dst));
    if (from_doc(src->kind, json_incref(src->doc), src->version, src->id, dst) != 0) {
        enrollment_clear(dst);
        return -1;
    }
    return 0;
}

void enrollment_clear(struct enrollment *e) {
    if (e == NULL)
        return;
    free_secret(e->primary_key);
    free_secret(e->secondary_key);
    free(e->iot_hubs);
    X509_free(e->x509_certs[0]);
    X509_free(e->x509_certs[1]);
    json_decref(e->doc);
    memset(e, 0, sizeof(*e));
}

json_t *doc_view(const struct store_doc *d) {
    char etag[ETAG_MAX];
    json_t *v;
    json_error_t jerr;

    v = json_loads(d->doc != NULL ? d->doc : "", 0, &jerr);
    if (!json_is_object(v)) {
        log_error("document %s: stored document is not a JSON object: %s",
                  d->id != NULL ? d->id : "?", v == NULL ? jerr.text : "wrong type");
        json_decref(v);
        return NULL;
    }
    etag_format(d->version, etag);
    if (json_object_set_new(v, "etag", json_string(etag)) != 0 ||
        json_object_set_new(v, "createdDateTimeUtc", json_string(d->created)) != 0 ||
        json_object_set_new(v, "lastUpdatedDateTimeUtc", json_string(d->updated)) != 0) {
        enrollment_wipe(v);
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *enrollment_view(const struct store_doc *d, int with_secrets) {
    json_t *v = doc_view(d), *sk;

    if (v != NULL && !with_secrets) {
        enrollment_wipe(v);
        sk = json_object_get(json_object_get(v, "attestation"), "symmetricKey");
        if (json_is_object(sk)) {
            json_object_del(sk, "primaryKey");
            json_object_del(sk, "secondaryKey");
        }
    }
    return v;
}

void etag_format(int64_t version, char out[ETAG_MAX]) {
    unsigned char be[8];
    uint64_t u = (uint64_t)version;

    for (int i = 7; i >= 0; i--) {
        be[i] = (unsigned char)(u & 0xFF);
        u >>= 8;
    }
    /* EVP_EncodeBlock writes the 12 characters and a NUL and cannot fail for 8 bytes. */
    EVP_EncodeBlock((unsigned char *)out, be, (int)sizeof(be));
}

int etag_parse(const char *s, int64_t *version) {
    char buf[ETAG_MAX];
    unsigned char *raw = NULL;
    size_t n, rawlen = 0;
    uint64_t u = 0;

    if (s == NULL)
        return -1;
    n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n == 1 && s[0] == '*') {
        *version = STORE_IF_EXISTS;
        return 0;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (b64_decode(buf, n, &raw, &rawlen, NULL) != 0)
        return -1;
    if (rawlen != 8) {
        b64_free(raw, rawlen);
        return -1;
    }
    for (size_t i = 0; i < 8; i++)
        u = u << 8 | raw[i];
    b64_free(raw, rawlen);
    /* Versions start at 1; INT64_MAX is reserved for the "*" condition. */
    if (u == 0 || u >= (uint64_t)INT64_MAX)
        return -1;
    *version = (int64_t)u;
    return 0;
}
