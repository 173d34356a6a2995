/* Unit tests of daemon/enrollment.c: validation and canonical form of enrollment documents, the
 * parsed form, the admin views and etags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "enrollment.h"
#include "prompts.h"

/* Bytes 0..15 and a 64-byte key, both valid. */
#define KEY16 "AAECAwQFBgcICQoLDA0ODw=="
#define KEY64                                                                                      \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
#define KEY15 "AAECAwQFBgcICQoLDA0O"
#define KEY65                                                                                      \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A="

struct result {
    int rc;
    int code;
    char err[256];
    json_t *out;
};

static struct result norm_kind(enum store_kind kind, const char *path_id, const char *text) {
    struct result r;
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);

    memset(&r, 0, sizeof(r));
    if (in == NULL)
        fail_msg("test input is not JSON: %s: %s", text, jerr.text);
    r.code = -12345;
    r.rc = enrollment_normalize(kind, path_id, in, &r.out, &r.code, r.err, sizeof(r.err));
    json_decref(in);
    return r;
}

static struct result norm(const char *path_id, const char *text) {
    return norm_kind(STORE_ENROLLMENT, path_id, text);
}

static void result_clear(struct result *r) {
    enrollment_wipe(r->out);
    json_decref(r->out);
    r->out = NULL;
}

/* Asserts a refusal with the given code and exact message. */
static void assert_refused(struct result r, int code, const char *msg) {
    assert_int_equal(r.rc, -1);
    assert_null(r.out);
    assert_int_equal(r.code, code);
    assert_string_equal(r.err, msg);
}

static const char *str_at(json_t *doc, const char *path1, const char *path2, const char *path3) {
    json_t *v = json_object_get(doc, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    if (path3 != NULL)
        v = json_object_get(v, path3);
    return json_string_value(v);
}

static size_t decoded_len(const char *b64) {
    unsigned char *raw = NULL;
    size_t n = 0;

    assert_int_equal(b64_decode(b64, strlen(b64), &raw, &n, NULL), 0);
    b64_free(raw, n);
    return n;
}

static void test_defaults_and_generated_keys(void **state) {
    struct result r = norm("Dev-1", "{}"), r2 = norm("dev-1", "{}");
    const char *pk, *sk;
    (void)state;

    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 0);
    assert_string_equal(str_at(r.out, "registrationId", NULL, NULL), "dev-1");
    assert_null(json_object_get(r.out, "deviceId"));
    assert_string_equal(str_at(r.out, "attestation", "type", NULL), "symmetricKey");
    pk = str_at(r.out, "attestation", "symmetricKey", "primaryKey");
    sk = str_at(r.out, "attestation", "symmetricKey", "secondaryKey");
    assert_non_null(pk);
    assert_non_null(sk);
    assert_int_equal(decoded_len(pk), 64);
    assert_int_equal(decoded_len(sk), 64);
    assert_string_not_equal(pk, sk);
    /* Every document gets keys of its own. */
    assert_int_equal(r2.rc, 0);
    assert_string_not_equal(pk, str_at(r2.out, "attestation", "symmetricKey", "primaryKey"));
    assert_string_equal(str_at(r.out, "provisioningStatus", NULL, NULL), "enabled");
    assert_string_equal(str_at(r.out, "allocationPolicy", NULL, NULL), "hashed");
    assert_true(json_is_true(
        json_object_get(json_object_get(r.out, "reprovisionPolicy"), "updateHubAssignment")));
    assert_true(json_is_true(
        json_object_get(json_object_get(r.out, "reprovisionPolicy"), "migrateDeviceData")));
    /* Exactly these members: nothing optional is invented. */
    assert_int_equal(json_object_size(r.out), 5);
    assert_int_equal(json_object_size(json_object_get(r.out, "attestation")), 2);
    assert_int_equal(json_object_size(json_object_get(r.out, "reprovisionPolicy")), 2);
    result_clear(&r);
    result_clear(&r2);
}

static void test_given_keys_kept(void **state) {
    struct result r =
        norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                      "{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY64 "\"}}}");
    (void)state;

    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.out, "attestation", "symmetricKey", "primaryKey"), KEY16);
    assert_string_equal(str_at(r.out, "attestation", "symmetricKey", "secondaryKey"), KEY64);
    result_clear(&r);

    /* Only the secondary given: the primary is generated. */
    r = norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                      "{\"secondaryKey\":\"" KEY16 "\"}}}");
    assert_int_equal(r.rc, 0);
    assert_int_equal(decoded_len(str_at(r.out, "attestation", "symmetricKey", "primaryKey")), 64);
    assert_string_equal(str_at(r.out, "attestation", "symmetricKey", "secondaryKey"), KEY16);
    result_clear(&r);
}

static void test_full_document(void **state) {
    struct result r;
    json_t *want;
    (void)state;

    r = norm("DEV-1", "{\"registrationId\":\"Dev-1\",\"deviceId\":\"Device_1\","
                      "\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                      "{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY64 "\"},"
                      "\"x509\":null},"
                      "\"provisioningStatus\":\"Disabled\",\"iotHubHostName\":\"hub-a.example\","
                      "\"iotHubs\":[\"hub-a.example\",\"hub-b.example\"],"
                      "\"allocationPolicy\":\"GEOLATENCY\","
                      "\"reprovisionPolicy\":{\"updateHubAssignment\":false},"
                      "\"initialTwin\":{\"tags\":{\"t\":1},\"properties\":{\"desired\":{}}},"
                      "\"capabilities\":{\"iotEdge\":true},"
                      "\"etag\":\"AAAAAAAAAAE=\",\"createdDateTimeUtc\":\"x\","
                      "\"lastUpdatedDateTimeUtc\":\"y\",\"registrationState\":{\"a\":1}}");
    assert_int_equal(r.rc, 0);
    want = json_loads(
        "{\"registrationId\":\"dev-1\",\"deviceId\":\"Device_1\","
        "\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
        "{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY64 "\"}},"
        "\"provisioningStatus\":\"disabled\",\"iotHubHostName\":\"hub-a.example\","
        "\"iotHubs\":[\"hub-a.example\",\"hub-b.example\"],\"allocationPolicy\":\"geoLatency\","
        "\"reprovisionPolicy\":{\"updateHubAssignment\":false,\"migrateDeviceData\":true},"
        "\"initialTwin\":{\"tags\":{\"t\":1},\"properties\":{\"desired\":{}}},"
        "\"capabilities\":{\"iotEdge\":true}}",
        0, NULL);
    assert_non_null(want);
    assert_true(json_equal(r.out, want));
    json_decref(want);
    result_clear(&r);
}

static void test_read_only_and_null_dropped(void **state) {
    struct result r = norm("dev-1", "{\"etag\":\"whatever\",\"createdDateTimeUtc\":5,"
                                    "\"lastUpdatedDateTimeUtc\":null,\"registrationState\":[],"
                                    "\"iotHubHostName\":null,\"deviceId\":null,"
                                    "\"attestation\":null,\"initialTwin\":null}");
    (void)state;

    assert_int_equal(r.rc, 0);
    assert_null(json_object_get(r.out, "etag"));
    assert_null(json_object_get(r.out, "createdDateTimeUtc"));
    assert_null(json_object_get(r.out, "lastUpdatedDateTimeUtc"));
    assert_null(json_object_get(r.out, "registrationState"));
    assert_null(json_object_get(r.out, "iotHubHostName"));
    assert_null(json_object_get(r.out, "deviceId"));
    assert_null(json_object_get(r.out, "initialTwin"));
    assert_int_equal(json_object_size(r.out), 5);
    result_clear(&r);
}

static void test_device_id_auto(void **state) {
    struct result r = norm("dev-1", "{\"deviceId\":\"auto\"}");
    (void)state;

    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.out, "deviceId", NULL, NULL), "auto");
    result_clear(&r);
}

static void test_refuse_unknown_fields(void **state) {
    (void)state;
    assert_refused(norm("dev-1", "{\"colour\":\"red\"}"), 400006, "unknown field \"colour\"");
    assert_refused(norm("dev-1", "{\"reprovisionPolicy\":{\"foo\":true}}"), 400006,
                   "unknown field \"reprovisionPolicy.foo\"");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"sym\":{}}}"),
                   400006, "unknown field \"attestation.sym\"");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                                 "{\"primary\":\"" KEY16 "\"}}}"),
                   400006, "unknown field \"attestation.symmetricKey.primary\"");
    assert_refused(norm("dev-1", "{\"capabilities\":{\"edge\":true}}"), 400006,
                   "unknown field \"capabilities.edge\"");
}

static void test_refuse_wrong_types(void **state) {
    (void)state;
    assert_refused(norm("dev-1", "[]"), 400006, "the enrollment must be a JSON object");
    assert_refused(norm("dev-1", "{\"registrationId\":5}"), 400006,
                   "registrationId must be a string");
    assert_refused(norm("dev-1", "{\"deviceId\":5}"), 400006, "deviceId must be a string");
    assert_refused(norm("dev-1", "{\"attestation\":\"symmetricKey\"}"), 400006,
                   "attestation must be an object");
    assert_refused(norm("dev-1", "{\"attestation\":{}}"), 400006,
                   "attestation.type must be a string");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\","
                                 "\"symmetricKey\":[]}}"),
                   400006, "attestation.symmetricKey must be an object");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                                 "{\"primaryKey\":12}}}"),
                   400006, "attestation.symmetricKey.primaryKey must be a string");
    assert_refused(norm("dev-1", "{\"provisioningStatus\":true}"), 400006,
                   "provisioningStatus must be enabled or disabled");
    assert_refused(norm("dev-1", "{\"iotHubHostName\":[]}"), 400006,
                   "iotHubHostName must be a string");
    assert_refused(norm("dev-1", "{\"iotHubHostName\":\"\"}"), 400006,
                   "iotHubHostName must have 1 to 253 characters");
    assert_refused(norm("dev-1", "{\"iotHubs\":\"hub\"}"), 400006,
                   "iotHubs must be an array of strings");
    assert_refused(norm("dev-1", "{\"iotHubs\":[\"a\",1]}"), 400006, "iotHubs[1] must be a string");
    assert_refused(norm("dev-1", "{\"iotHubs\":[\"\"]}"), 400006,
                   "iotHubs[0] must have 1 to 253 characters");
    assert_refused(norm("dev-1", "{\"allocationPolicy\":1}"), 400006,
                   "allocationPolicy must be hashed, evenlyWeighted, static, geoLatency or custom");
    assert_refused(norm("dev-1", "{\"reprovisionPolicy\":true}"), 400006,
                   "reprovisionPolicy must be an object");
    assert_refused(norm("dev-1", "{\"reprovisionPolicy\":{\"updateHubAssignment\":\"yes\"}}"),
                   400006, "reprovisionPolicy.updateHubAssignment must be a boolean");
    assert_refused(norm("dev-1", "{\"reprovisionPolicy\":{\"migrateDeviceData\":1}}"), 400006,
                   "reprovisionPolicy.migrateDeviceData must be a boolean");
    assert_refused(norm("dev-1", "{\"initialTwin\":[]}"), 400006, "initialTwin must be an object");
    assert_refused(norm("dev-1", "{\"capabilities\":{\"iotEdge\":\"no\"}}"), 400006,
                   "capabilities.iotEdge must be a boolean");
}

static void test_iot_hubs_limit(void **state) {
    char text[65 * 8 + 64] = "{\"iotHubs\":[";
    struct result r;
    (void)state;

    for (int i = 0; i < 64; i++)
        sprintf(text + strlen(text), "%s\"h%d\"", i == 0 ? "" : ",", i);
    strcat(text, "]}");
    r = norm("dev-1", text);
    assert_int_equal(r.rc, 0);
    assert_int_equal(json_array_size(json_object_get(r.out, "iotHubs")), 64);
    result_clear(&r);
    text[strlen(text) - 2] = '\0';
    strcat(text, ",\"h64\"]}");
    assert_refused(norm("dev-1", text), 400006, "iotHubs has more than 64 entries");
}

static void test_refuse_bad_keys(void **state) {
    struct result r;
    (void)state;

    r = norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                      "{\"primaryKey\":\"c2VjcmV0c2VjcmV0c2VjcmV0!!\"}}}");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.code, 400006);
    assert_non_null(strstr(r.err, "attestation.symmetricKey.primaryKey is not valid base64"));
    /* The refused key never appears in the message. */
    assert_null(strstr(r.err, "c2VjcmV0"));

    /* Whitespace and missing padding are not base64 here. */
    r = norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                      "{\"primaryKey\":\"AAECAwQFBgcICQoLDA0ODw\"}}}");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.code, 400006);
    assert_non_null(strstr(r.err, "attestation.symmetricKey.primaryKey is not valid base64"));

    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                                 "{\"primaryKey\":\"" KEY15 "\"}}}"),
                   400006,
                   "attestation.symmetricKey.primaryKey must decode to 16 to 64 bytes, not 15");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                                 "{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY65 "\"}}}"),
                   400006,
                   "attestation.symmetricKey.secondaryKey must decode to 16 to 64 bytes, not 65");
}

static void test_refuse_ids(void **state) {
    struct result r;
    (void)state;

    r = norm("bad id", "{}");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.code, 400003);
    assert_non_null(strstr(r.err, "registrationId \"bad id\" is invalid"));

    r = norm("dev-1", "{\"registrationId\":\"-dev-1\"}");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.code, 400003);
    assert_non_null(strstr(r.err, "registrationId \"-dev-1\" is invalid"));

    assert_refused(norm("dev-1", "{\"registrationId\":\"dev-2\"}"), 400004,
                   "registrationId \"dev-2\" differs from \"dev-1\" in the path");
    assert_refused(norm(NULL, "{}"), 400003, "registrationId is missing");

    /* The comparison ignores case: the stored ID is lower-cased anyway. */
    r = norm("dev-1", "{\"registrationId\":\"DEV-1\"}");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.out, "registrationId", NULL, NULL), "dev-1");
    result_clear(&r);

    /* Without a path (bulk), the body's ID is taken. */
    r = norm(NULL, "{\"registrationId\":\"Bulk.Item_1\"}");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.out, "registrationId", NULL, NULL), "bulk.item_1");
    result_clear(&r);

    assert_refused(norm("dev-1", "{\"deviceId\":\"a/b\"}"), 400006,
                   "deviceId has a character not allowed (0x2f)");
    assert_refused(norm("dev-1", "{\"deviceId\":\"\"}"), 400006,
                   "deviceId must have 1 to 128 characters");
}

static void test_refuse_enums(void **state) {
    (void)state;
    assert_refused(norm("dev-1", "{\"provisioningStatus\":\"on\"}"), 400006,
                   "provisioningStatus must be enabled or disabled");
    assert_refused(norm("dev-1", "{\"allocationPolicy\":\"random\"}"), 400006,
                   "allocationPolicy must be hashed, evenlyWeighted, static, geoLatency or custom");
}

static void test_refuse_attestation_types(void **state) {
    (void)state;
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":{}}}"), 400006,
                   "attestation.x509.clientCertificates.primary is missing");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"tpm\"}}"), 400006,
                   "attestation type tpm is not supported yet");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"password\"}}"), 400006,
                   "attestation.type must be symmetricKey, x509 or tpm");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"symmetricKey\",\"tpm\":{}}}"),
                   400006, "attestation.tpm is set but the type is symmetricKey");
}

/* A self-signed P-256 certificate with subject CN = cn, a CA (basicConstraints CA:TRUE) or not,
 * as PEM (freed with free()). */
/* A self-signed certificate for CN cn as PEM (freed with free()), with the basicConstraints bc
 * and the keyUsage ku (NULL: none of it) and the serial number serial (hex); *out (when out is
 * not NULL) the certificate, which the caller frees. */
static char *make_cert_ext(const char *cn, const char *bc, const char *ku, const char *serial,
                           X509 **out) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    BIGNUM *bn = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    const char *vals[2] = {bc, ku};
    const int nids[2] = {NID_basic_constraints, NID_key_usage};
    long n;

    assert_non_null(key);
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_true(BN_hex2bn(&bn, serial) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    assert_true(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    assert_true(X509_set_subject_name(x, name) && X509_set_issuer_name(x, name));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_true(X509_set_pubkey(x, key));
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    for (int i = 0; i < 2; i++) {
        if (!vals[i])
            continue;
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nids[i], vals[i]);
        assert_non_null(ext);
        assert_true(X509_add_ext(x, ext, -1));
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_true(PEM_write_bio_X509(bio, x));
    n = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)n);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (out)
        *out = x;
    else
        X509_free(x);
    return pem;
}

static char *make_cert(const char *cn, int ca, X509 **out) {
    return make_cert_ext(cn, ca ? "critical,CA:TRUE" : "critical,CA:FALSE", NULL, "1092", out);
}

/* doc with its "@" replaced by the JSON string of s (freed with free()). */
static char *with_string(const char *doc, const char *s) {
    json_t *j = json_string(s);
    char *enc = json_dumps(j, JSON_ENCODE_ANY), *out = NULL;
    const char *at = strchr(doc, '@');

    assert_non_null(at);
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - doc), doc, enc, at + 1) > 0);
    free(enc);
    json_decref(j);
    return out;
}

static void parse_canon(enum store_kind kind, json_t *canon, struct enrollment *e) {
    struct store_doc d = {0};

    d.id = "x";
    d.doc = json_dumps(canon, JSON_COMPACT);
    d.version = 1;
    assert_int_equal(enrollment_parse(kind, &d, e), 0);
    free(d.doc);
}

static void test_x509_individual(void **state) {
    X509 *x;
    char *pem = make_cert("dev-1", 0, &x), *doc, thumb[CERTINFO_THUMB_LEN];
    unsigned char *der = NULL;
    struct enrollment e;
    struct result r;
    (void)state;

    assert_int_equal(certinfo_thumbprint(x, thumb), 0);
    /* PEM, then base64 DER: both become the same canonical PEM with its info. */
    for (int form = 0; form < 2; form++) {
        char *b64 = NULL;
        int n = i2d_X509(x, &der);
        b64 = b64_encode(der, (size_t)n);
        OPENSSL_free(der);
        der = NULL;
        doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                          "{\"primary\":{\"certificate\":@}}}}}",
                          form == 0 ? pem : b64);
        r = norm("dev-1", doc);
        assert_int_equal(r.rc, 0);
        json_t *p = json_object_get(
            json_object_get(json_object_get(json_object_get(r.out, "attestation"), "x509"),
                            "clientCertificates"),
            "primary");
        assert_string_equal(json_string_value(json_object_get(p, "certificate")), pem);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(p, "info"), "sha256Thumbprint")),
            thumb);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(p, "info"), "subjectName")),
            "CN=dev-1");
        assert_null(json_object_get(json_object_get(r.out, "attestation"), "symmetricKey"));
        parse_canon(STORE_ENROLLMENT, r.out, &e);
        assert_int_equal(e.attestation, ENROLLMENT_X509);
        assert_null(e.primary_key);
        assert_non_null(e.x509_certs[0]);
        assert_int_equal(X509_cmp(e.x509_certs[0], x), 0);
        assert_string_equal(e.x509_thumbprints[0], thumb);
        assert_string_equal(e.x509_thumbprints[1], "");
        enrollment_clear(&e);
        result_clear(&r);
        free(doc);
        free(b64);
    }
    X509_free(x);
    free(pem);
}

static void test_x509_thumbprint(void **state) {
    /* Lower case with colons, and the whole line `openssl x509 -fingerprint -sha256` prints. */
    static const char *const forms[] = {
        "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:"
        "45:67:89",
        "sha256 Fingerprint=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
        "89:AB:CD:EF:01:23:45:67:89",
    };
    char *doc;
    struct enrollment e;
    struct result r;
    (void)state;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                          "{\"primary\":{\"info\":{\"sha256Thumbprint\":@}}}}}}",
                          forms[i]);
        r = norm("dev-1", doc);
        assert_int_equal(r.rc, 0);
        parse_canon(STORE_ENROLLMENT, r.out, &e);
        assert_null(e.x509_certs[0]);
        assert_string_equal(e.x509_thumbprints[0],
                            "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
        enrollment_clear(&e);
        result_clear(&r);
        free(doc);
    }
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"clientCertificates\":{\"primary\":{\"info\":"
                                 "{\"sha256Thumbprint\":\"ABCD\"}}}}}}"),
                   400006,
                   "attestation.x509.clientCertificates.primary.info.sha256Thumbprint must be 64"
                   " hex digits");
}

static void test_x509_group(void **state) {
    X509 *x;
    char *ca = make_cert("Fleet CA", 1, &x), *leaf = make_cert("dev-1", 0, NULL), *doc;
    struct enrollment e;
    struct result r;
    (void)state;

    doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":"
                      "{\"primary\":{\"certificate\":@}}}},\"certificateValidityDays\":30}",
                      ca);
    r = norm_kind(STORE_GROUP, "fleet", doc);
    assert_int_equal(r.rc, 0);
    parse_canon(STORE_GROUP, r.out, &e);
    assert_int_equal(e.attestation, ENROLLMENT_X509);
    assert_int_equal(X509_cmp(e.x509_certs[0], x), 0);
    assert_null(e.x509_certs[1]);
    assert_int_equal(e.cert_days, 30);
    enrollment_clear(&e);
    result_clear(&r);
    free(doc);

    doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":"
                      "{\"primary\":{\"certificate\":@}}}}}",
                      leaf);
    assert_refused(norm_kind(STORE_GROUP, "fleet", doc), 400006,
                   "attestation.x509.signingCertificates.primary.certificate is not a CA"
                   " certificate (basicConstraints CA:TRUE is needed to sign device"
                   " certificates)");
    free(doc);
    X509_free(x);
    free(ca);
    free(leaf);

    /* keyCertSign without basicConstraints is not a CA; CA:TRUE without keyCertSign cannot
     * sign. */
    static const struct {
        const char *bc, *ku, *why;
    } bad[] = {
        {NULL, "critical,keyCertSign,cRLSign",
         "attestation.x509.signingCertificates.primary.certificate is not a CA certificate"},
        {"critical,CA:TRUE", "critical,digitalSignature",
         "attestation.x509.signingCertificates.primary.certificate's keyUsage leaves out"
         " keyCertSign"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *c = make_cert_ext("Odd CA", bad[i].bc, bad[i].ku, "1092", NULL);
        doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":"
                          "{\"primary\":{\"certificate\":@}}}}}",
                          c);
        struct result rr = norm_kind(STORE_GROUP, "fleet", doc);
        assert_int_equal(rr.code, 400006);
        assert_non_null(strstr(rr.err, bad[i].why));
        result_clear(&rr);
        free(doc);
        free(c);
    }
}

static void test_x509_refusals(void **state) {
    (void)state;
    /* A serial number over 20 octets (RFC 5280) cannot be described. */
    char *big = make_cert_ext("dev-1", "critical,CA:FALSE", NULL,
                              "111111111111111111111111111111111111111111", NULL);
    char *doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                            "{\"primary\":{\"certificate\":@}}}}}",
                            big);
    assert_refused(norm("dev-1", doc), 400006,
                   "attestation.x509.clientCertificates.primary.certificate has a serial number"
                   " over 20 octets (RFC 5280 allows 20)");
    free(doc);
    free(big);
    /* A private key pasted with the certificate is refused, not dropped in silence. */
    char *cert = make_cert("dev-1", 0, NULL), *keyed = NULL;
    assert_true(asprintf(&keyed, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n%s",
                         cert) > 0);
    doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                      "{\"primary\":{\"certificate\":@}}}}}",
                      keyed);
    assert_refused(norm("dev-1", doc), 400006,
                   "attestation.x509.clientCertificates.primary.certificate holds a private key:"
                   " give the certificate alone");
    free(doc);
    free(keyed);
    free(cert);
    /* An unknown member is named with its path. */
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"clientCertificates\":{\"primary\":{\"bogus\":1}}}}}"),
                   400006, "unknown field \"attestation.x509.clientCertificates.primary.bogus\"");
    assert_refused(norm_kind(STORE_GROUP, "fleet",
                             "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                             "{\"clientCertificates\":{\"primary\":{}}}}}"),
                   400006,
                   "attestation.x509.clientCertificates is for individual enrollments; groups"
                   " take signingCertificates");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"signingCertificates\":{\"primary\":{}}}}}"),
                   400006,
                   "attestation.x509.signingCertificates is for enrollment groups; individual"
                   " enrollments take clientCertificates");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"clientCertificates\":{\"primary\":"
                                 "{\"certificate\":\"not a certificate!\"}}}}}"),
                   400006,
                   "attestation.x509.clientCertificates.primary.certificate is neither PEM nor"
                   " base64 (invalid character)");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"clientCertificates\":{\"primary\":"
                                 "{\"certificate\":\"AAAA\"}}}}}"),
                   400006,
                   "attestation.x509.clientCertificates.primary.certificate is not a DER"
                   " certificate");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"clientCertificates\":{\"primary\":{}}}}}"),
                   400006,
                   "attestation.x509.clientCertificates.primary.certificate is missing (or give"
                   " info.sha256Thumbprint)");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"x509\":"
                                 "{\"caReferences\":{\"primary\":\"ca\"}}}}"),
                   400006,
                   "attestation.x509.caReferences is not supported: give the CA certificate in"
                   " signingCertificates");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\",\"symmetricKey\":{}}}"),
                   400006, "attestation.symmetricKey is set but the type is x509");
    assert_refused(norm("dev-1", "{\"attestation\":{\"type\":\"x509\"}}"), 400006,
                   "attestation.x509 is missing");
    assert_refused(norm("dev-1", "{\"certificateValidityDays\":0}"), 400006,
                   "certificateValidityDays must be an integer from 1 to 36500");
    assert_refused(norm("dev-1", "{\"certificateValidityDays\":\"30\"}"), 400006,
                   "certificateValidityDays must be an integer from 1 to 36500");
}

/* A certificate in a PEM block with encryption headers is refused without asking anyone for a
 * passphrase: OpenSSL asks on the terminal or standard input unless told otherwise. */
static void test_x509_encrypted_pem(void **state) {
    (void)state;
    char *doc = with_string("{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                            "{\"primary\":{\"certificate\":@}}}}}",
                            "-----BEGIN CERTIFICATE-----\n"
                            "Proc-Type: 4,ENCRYPTED\n"
                            "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n"
                            "\n"
                            "AAAAAAAAAAAAAAAAAAAAAA==\n"
                            "-----END CERTIFICATE-----\n");
    prompts_watch();
    struct result r = norm("dev-1", doc);
    int prompts = prompts_unwatch();
    assert_refused(r, 400006,
                   "attestation.x509.clientCertificates.primary.certificate is not a PEM"
                   " certificate");
    assert_int_equal(prompts, 0);
    free(doc);
}

/* A name without attributes (a certificate's subject may be empty) is described as empty. */
static void test_certinfo_empty_name(void **state) {
    X509_NAME *name = X509_NAME_new();
    char *s;
    (void)state;

    assert_non_null(name);
    assert_non_null(s = certinfo_name(name));
    assert_string_equal(s, "");
    free(s);
    X509_NAME_free(name);
}

static void test_group_shape(void **state) {
    struct result r;
    (void)state;

    r = norm_kind(STORE_GROUP, "Fleet-A",
                  "{\"enrollmentGroupId\":\"FLEET-a\","
                  "\"iotHubHostName\":\"hub\"}");
    assert_int_equal(r.rc, 0);
    assert_string_equal(str_at(r.out, "enrollmentGroupId", NULL, NULL), "fleet-a");
    assert_null(json_object_get(r.out, "registrationId"));
    assert_null(json_object_get(r.out, "deviceId"));
    assert_int_equal(decoded_len(str_at(r.out, "attestation", "symmetricKey", "primaryKey")), 64);
    assert_int_equal(json_object_size(r.out), 6);
    result_clear(&r);

    assert_refused(norm_kind(STORE_GROUP, "fleet", "{\"deviceId\":\"d\"}"), 400006,
                   "unknown field \"deviceId\"");
    assert_refused(norm_kind(STORE_GROUP, "fleet", "{\"registrationId\":\"fleet\"}"), 400006,
                   "unknown field \"registrationId\"");
    assert_refused(norm_kind(STORE_GROUP, "fleet", "{\"enrollmentGroupId\":\"other\"}"), 400004,
                   "enrollmentGroupId \"other\" differs from \"fleet\" in the path");
    r = norm_kind(STORE_GROUP, "a b", "{}");
    assert_int_equal(r.code, 400003);
    assert_non_null(strstr(r.err, "enrollmentGroupId \"a b\" is invalid"));
}

static void test_replace_keeps_keys(void **state) {
    struct store_doc prev = {0};
    json_t *in, *out = NULL;
    char err[256];
    int code = 0;
    (void)state;

    prev.id = "dev-1";
    prev.doc = "{\"registrationId\":\"dev-1\",\"attestation\":{\"type\":\"symmetricKey\","
               "\"symmetricKey\":{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY64
               "\"}},\"provisioningStatus\":\"enabled\",\"allocationPolicy\":\"hashed\","
               "\"reprovisionPolicy\":{\"updateHubAssignment\":true,\"migrateDeviceData\":true}}";
    prev.version = 3;

    in = json_loads("{\"provisioningStatus\":\"disabled\"}", 0, NULL);
    assert_int_equal(enrollment_normalize_replace(STORE_ENROLLMENT, "dev-1", in, &prev, &out, &code,
                                                  err, sizeof(err)),
                     0);
    assert_string_equal(str_at(out, "attestation", "symmetricKey", "primaryKey"), KEY16);
    assert_string_equal(str_at(out, "attestation", "symmetricKey", "secondaryKey"), KEY64);
    assert_string_equal(str_at(out, "provisioningStatus", NULL, NULL), "disabled");
    json_decref(out);
    json_decref(in);

    /* A key given wins over the stored one. */
    in = json_loads("{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
                    "{\"primaryKey\":\"" KEY64 "\"}}}",
                    0, NULL);
    assert_int_equal(enrollment_normalize_replace(STORE_ENROLLMENT, "dev-1", in, &prev, &out, &code,
                                                  err, sizeof(err)),
                     0);
    assert_string_equal(str_at(out, "attestation", "symmetricKey", "primaryKey"), KEY64);
    assert_string_equal(str_at(out, "attestation", "symmetricKey", "secondaryKey"), KEY64);
    json_decref(out);
    json_decref(in);

    /* An X.509 enrollment stays one when the replacement leaves attestation out. */
    prev.doc = "{\"registrationId\":\"dev-1\",\"attestation\":{\"type\":\"x509\",\"x509\":"
               "{\"clientCertificates\":{\"primary\":{\"info\":{\"sha256Thumbprint\":"
               "\"ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\"}}}}},"
               "\"provisioningStatus\":\"enabled\",\"allocationPolicy\":\"hashed\","
               "\"reprovisionPolicy\":{\"updateHubAssignment\":true,\"migrateDeviceData\":true}}";
    in = json_loads("{\"provisioningStatus\":\"disabled\"}", 0, NULL);
    assert_int_equal(enrollment_normalize_replace(STORE_ENROLLMENT, "dev-1", in, &prev, &out, &code,
                                                  err, sizeof(err)),
                     0);
    assert_string_equal(str_at(out, "attestation", "type", NULL), "x509");
    assert_null(json_object_get(json_object_get(out, "attestation"), "symmetricKey"));
    const char *tp = NULL;
    assert_int_equal(json_unpack(out, "{s:{s:{s:{s:{s:{s:s}}}}}}", "attestation", "x509",
                                 "clientCertificates", "primary", "info", "sha256Thumbprint", &tp),
                     0);
    assert_string_equal(tp, "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
    assert_string_equal(str_at(out, "provisioningStatus", NULL, NULL), "disabled");
    json_decref(out);
    json_decref(in);
}

static const char CANONICAL[] =
    "{\"registrationId\":\"dev-1\",\"deviceId\":\"device-one\","
    "\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":"
    "{\"primaryKey\":\"" KEY16 "\",\"secondaryKey\":\"" KEY64 "\"}},"
    "\"provisioningStatus\":\"disabled\",\"iotHubHostName\":\"hub-a\","
    "\"iotHubs\":[\"hub-a\",\"hub-b\"],\"allocationPolicy\":\"static\","
    "\"reprovisionPolicy\":{\"updateHubAssignment\":false,\"migrateDeviceData\":true},"
    "\"initialTwin\":{\"tags\":{\"room\":\"7\"}},\"capabilities\":{\"iotEdge\":false}}";

static void test_parse_canonical(void **state) {
    struct store_doc d = {0};
    struct enrollment e;
    (void)state;

    d.id = "dev-1";
    d.doc = (char *)CANONICAL;
    d.version = 7;
    assert_int_equal(enrollment_parse(STORE_ENROLLMENT, &d, &e), 0);
    assert_int_equal(e.kind, STORE_ENROLLMENT);
    assert_string_equal(e.id, "dev-1");
    assert_string_equal(e.device_id, "device-one");
    assert_int_equal(e.enabled, 0);
    assert_string_equal(e.primary_key, KEY16);
    assert_string_equal(e.secondary_key, KEY64);
    assert_string_equal(e.iot_hub_host_name, "hub-a");
    assert_int_equal(e.n_iot_hubs, 2);
    assert_string_equal(e.iot_hubs[0], "hub-a");
    assert_string_equal(e.iot_hubs[1], "hub-b");
    assert_null(e.iot_hubs[2]);
    assert_string_equal(e.allocation_policy, "static");
    assert_int_equal(e.reprovision_update_hub, 0);
    assert_int_equal(e.reprovision_migrate_data, 1);
    assert_non_null(e.initial_twin);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e.initial_twin, "tags"), "room")), "7");
    assert_int_equal(e.version, 7);
    enrollment_clear(&e);
    assert_null(e.id);
    assert_null(e.primary_key);
}

static void test_parse_normalized_defaults(void **state) {
    struct result r = norm_kind(STORE_GROUP, "fleet", "{}");
    struct store_doc d = {0};
    struct enrollment e;
    (void)state;

    assert_int_equal(r.rc, 0);
    d.id = "fleet";
    d.doc = json_dumps(r.out, JSON_COMPACT);
    d.version = 1;
    assert_int_equal(enrollment_parse(STORE_GROUP, &d, &e), 0);
    assert_int_equal(e.kind, STORE_GROUP);
    assert_string_equal(e.id, "fleet");
    assert_null(e.device_id);
    assert_int_equal(e.enabled, 1);
    assert_string_equal(e.primary_key, str_at(r.out, "attestation", "symmetricKey", "primaryKey"));
    assert_null(e.iot_hub_host_name);
    assert_null(e.iot_hubs);
    assert_int_equal(e.n_iot_hubs, 0);
    assert_string_equal(e.allocation_policy, "hashed");
    assert_int_equal(e.reprovision_update_hub, 1);
    assert_int_equal(e.reprovision_migrate_data, 1);
    assert_null(e.initial_twin);
    enrollment_clear(&e);
    free(d.doc);
    result_clear(&r);
}

static void test_parse_minimal(void **state) {
    struct store_doc d = {0};
    struct enrollment e;
    (void)state;

    /* Older or hand-written documents may lack the members that have defaults. */
    d.id = "dev-1";
    d.doc = "{\"registrationId\":\"dev-1\",\"attestation\":{\"type\":\"symmetricKey\","
            "\"symmetricKey\":{\"primaryKey\":\"" KEY16 "\"}},"
            "\"provisioningStatus\":\"enabled\",\"allocationPolicy\":\"hashed\"}";
    assert_int_equal(enrollment_parse(STORE_ENROLLMENT, &d, &e), 0);
    assert_string_equal(e.primary_key, KEY16);
    assert_null(e.secondary_key);
    assert_int_equal(e.enabled, 1);
    assert_int_equal(e.reprovision_update_hub, 1);
    assert_int_equal(e.reprovision_migrate_data, 1);
    enrollment_clear(&e);
}

static void test_parse_refuses(void **state) {
    struct store_doc d = {0};
    struct enrollment e;
    (void)state;

    d.id = "dev-1";
    d.doc = "not json";
    assert_int_equal(enrollment_parse(STORE_ENROLLMENT, &d, &e), -1);
    d.doc = "{\"registrationId\":\"dev-1\"}";
    assert_int_equal(enrollment_parse(STORE_ENROLLMENT, &d, &e), -1);
    assert_null(e.id);
    /* A group's document is not an individual enrollment's. */
    d.doc = (char *)CANONICAL;
    assert_int_equal(enrollment_parse(STORE_GROUP, &d, &e), -1);
}

static void test_view(void **state) {
    struct store_doc d = {0};
    json_t *v;
    json_t *sk;
    (void)state;

    d.id = "dev-1";
    d.doc = (char *)CANONICAL;
    d.version = 1;
    strcpy(d.created, "2026-11-26T01:02:03.1234567Z");
    strcpy(d.updated, "2026-11-27T01:02:03.1234567Z");

    v = enrollment_view(&d, 1);
    assert_non_null(v);
    assert_string_equal(str_at(v, "etag", NULL, NULL), "AAAAAAAAAAE=");
    assert_string_equal(str_at(v, "createdDateTimeUtc", NULL, NULL),
                        "2026-11-26T01:02:03.1234567Z");
    assert_string_equal(str_at(v, "lastUpdatedDateTimeUtc", NULL, NULL),
                        "2026-11-27T01:02:03.1234567Z");
    assert_string_equal(str_at(v, "attestation", "symmetricKey", "primaryKey"), KEY16);
    assert_string_equal(str_at(v, "attestation", "symmetricKey", "secondaryKey"), KEY64);
    assert_string_equal(str_at(v, "deviceId", NULL, NULL), "device-one");
    assert_int_equal(json_object_size(v), 13);
    json_decref(v);

    v = enrollment_view(&d, 0);
    assert_non_null(v);
    sk = json_object_get(json_object_get(v, "attestation"), "symmetricKey");
    assert_true(json_is_object(sk));
    assert_int_equal(json_object_size(sk), 0);
    assert_string_equal(str_at(v, "attestation", "type", NULL), "symmetricKey");
    assert_string_equal(str_at(v, "etag", NULL, NULL), "AAAAAAAAAAE=");
    assert_string_equal(str_at(v, "iotHubHostName", NULL, NULL), "hub-a");
    json_decref(v);

    d.doc = "{broken";
    assert_null(enrollment_view(&d, 1));
}

static void test_wipe(void **state) {
    json_t *doc = json_loads(CANONICAL, 0, NULL);
    json_t *sk = json_object_get(json_object_get(doc, "attestation"), "symmetricKey");
    json_t *pk = json_object_get(sk, "primaryKey");
    size_t n = json_string_length(pk);
    (void)state;

    enrollment_wipe(doc);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_string_value(pk)[i], 0);
    assert_int_equal(json_string_value(json_object_get(sk, "secondaryKey"))[0], 0);
    assert_string_equal(str_at(doc, "registrationId", NULL, NULL), "dev-1");
    enrollment_wipe(NULL);
    json_decref(doc);
}

static void test_etag(void **state) {
    static const int64_t versions[] = {1, 2, 255, 256, 1LL << 40, INT64_MAX - 1};
    char etag[ETAG_MAX], quoted[ETAG_MAX + 2];
    int64_t v;
    (void)state;

    etag_format(1, etag);
    assert_string_equal(etag, "AAAAAAAAAAE=");
    etag_format(258, etag);
    assert_string_equal(etag, "AAAAAAAAAQI=");
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        etag_format(versions[i], etag);
        assert_int_equal(strlen(etag), 12);
        v = 0;
        assert_int_equal(etag_parse(etag, &v), 0);
        assert_int_equal(v, versions[i]);
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        v = 0;
        assert_int_equal(etag_parse(quoted, &v), 0);
        assert_int_equal(v, versions[i]);
    }
    v = 0;
    assert_int_equal(etag_parse("*", &v), 0);
    assert_int_equal(v, STORE_IF_EXISTS);
    v = 0;
    assert_int_equal(etag_parse("\"*\"", &v), 0);
    assert_int_equal(v, STORE_IF_EXISTS);

    v = 42;
    assert_int_equal(etag_parse("", &v), -1);
    assert_int_equal(etag_parse("\"\"", &v), -1);
    assert_int_equal(etag_parse("\"", &v), -1);
    assert_int_equal(etag_parse("\"AAAAAAAAAAE=", &v), -1);
    assert_int_equal(etag_parse("AAAAAAAAAAE", &v), -1);
    assert_int_equal(etag_parse("AAAAAAAAAAE=x", &v), -1);
    assert_int_equal(etag_parse("AAAAAAAAAA==", &v), -1); /* 7 bytes */
    assert_int_equal(etag_parse("AAAAAAAAAAA=", &v), -1); /* version 0 */
    assert_int_equal(etag_parse("f/////////8=", &v), -1); /* INT64_MAX, reserved for "*" */
    assert_int_equal(etag_parse("gAAAAAAAAAA=", &v), -1); /* negative */
    assert_int_equal(etag_parse("AAAAAAAAAAAB", &v), -1); /* 9 bytes */
    assert_int_equal(etag_parse("W/\"AAAAAAAAAAE=\"", &v), -1);
    assert_int_equal(etag_parse(NULL, &v), -1);
    assert_int_equal(v, 42);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_generated_keys),
        cmocka_unit_test(test_given_keys_kept),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_read_only_and_null_dropped),
        cmocka_unit_test(test_device_id_auto),
        cmocka_unit_test(test_refuse_unknown_fields),
        cmocka_unit_test(test_refuse_wrong_types),
        cmocka_unit_test(test_iot_hubs_limit),
        cmocka_unit_test(test_refuse_bad_keys),
        cmocka_unit_test(test_refuse_ids),
        cmocka_unit_test(test_refuse_enums),
        cmocka_unit_test(test_refuse_attestation_types),
        cmocka_unit_test(test_group_shape),
        cmocka_unit_test(test_replace_keeps_keys),
        cmocka_unit_test(test_parse_canonical),
        cmocka_unit_test(test_parse_normalized_defaults),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_x509_individual),
        cmocka_unit_test(test_x509_thumbprint),
        cmocka_unit_test(test_x509_group),
        cmocka_unit_test(test_x509_refusals),
        cmocka_unit_test(test_x509_encrypted_pem),
        cmocka_unit_test(test_certinfo_empty_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
