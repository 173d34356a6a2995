/* Unit tests of daemon/endpoint.c: validation and canonical form of endpoint documents (defaults,
 * protocols and ports, weights, regions, trust bundles and nothing else in them, refusals that
 * stay UTF-8), the parsed form and what a device is told about its endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "endpoint.h"

struct result {
    int rc;
    int code;
    char err[256];
    json_t *out;
};

static struct result norm(const char *host, const char *text) {
    struct result r;
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);

    memset(&r, 0, sizeof(r));
    if (in == NULL)
        fail_msg("test input is not JSON: %s: %s", text, jerr.text);
    r.code = -1;
    r.rc = endpoint_normalize(host, in, &r.out, &r.code, r.err, sizeof(r.err));
    json_decref(in);
    return r;
}

static void assert_canonical(const char *host, const char *text, const char *want) {
    struct result r = norm(host, text);
    char *got;

    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 0);
    got = json_dumps(r.out, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    json_decref(r.out);
}

static void assert_refused(const char *host, const char *text, int code, const char *message) {
    struct result r = norm(host, text);

    assert_int_equal(r.rc, -1);
    assert_null(r.out);
    assert_int_equal(r.code, code);
    assert_string_equal(r.err, message);
}

/* endpoint_normalize of {"trustBundle": bundle} for host "hub". */
static struct result norm_bundle(const char *bundle) {
    struct result r;
    json_t *in = json_pack("{s:s}", "trustBundle", bundle);

    memset(&r, 0, sizeof(r));
    assert_non_null(in);
    r.code = -1;
    r.rc = endpoint_normalize("hub", in, &r.out, &r.code, r.err, sizeof(r.err));
    json_decref(in);
    return r;
}

/* The bundle is accepted and kept exactly as given. */
static void assert_bundle_kept(const char *bundle) {
    struct result r = norm_bundle(bundle);

    assert_int_equal(r.rc, 0);
    assert_string_equal(json_string_value(json_object_get(r.out, "trustBundle")), bundle);
    json_decref(r.out);
}

static void assert_bundle_refused(const char *bundle, const char *message) {
    struct result r = norm_bundle(bundle);

    assert_int_equal(r.rc, -1);
    assert_null(r.out);
    assert_int_equal(r.code, 400006);
    assert_string_equal(r.err, message);
}

/* A self-signed certificate, made here so that no fixture can expire. */
static char *make_cert_pem(void) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem;
    long len;

    assert_non_null(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"endpoint test CA", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

static void test_defaults(void **state) {
    (void)state;
    assert_canonical("Hub-A.Example.com", "{}",
                     "{\"hostName\":\"hub-a.example.com\",\"port\":8883,\"protocol\":\"mqtts\","
                     "\"weight\":1,\"enabled\":true}");
    /* The port follows the protocol unless given; read-only members are dropped. */
    assert_canonical("hub-b", "{\"hostName\":\"HUB-B\",\"protocol\":\"HTTPS\",\"etag\":\"x\"}",
                     "{\"hostName\":\"hub-b\",\"port\":443,\"protocol\":\"https\",\"weight\":1,"
                     "\"enabled\":true}");
    assert_canonical("10.0.0.7",
                     "{\"protocol\":\"coap\",\"port\":15683,\"weight\":250,\"enabled\":false,"
                     "\"region\":\"eu-west\",\"createdDateTimeUtc\":null}",
                     "{\"hostName\":\"10.0.0.7\",\"port\":15683,\"protocol\":\"coap\","
                     "\"weight\":250,\"enabled\":false,\"region\":\"eu-west\"}");
    assert_canonical("h", "{\"protocol\":\"amqps\"}",
                     "{\"hostName\":\"h\",\"port\":5671,\"protocol\":\"amqps\",\"weight\":1,"
                     "\"enabled\":true}");
}

static void test_refusals(void **state) {
    (void)state;
    assert_refused("hub", "[]", 400006, "the endpoint must be a JSON object");
    assert_refused("hub", "{\"hub\":1}", 400006, "unknown field \"hub\"");
    assert_refused("hub", "{\"hostName\":\"other\"}", 400004,
                   "hostName \"other\" differs from \"hub\" in the path");
    assert_refused("hub_1", "{}", 400006,
                   "host name \"hub_1\" is invalid: forbidden character (letters, digits, '-' and "
                   "'.' only)");
    assert_refused("-hub", "{}", 400006,
                   "host name \"-hub\" is invalid: a label starts with a hyphen");
    assert_refused("a..b", "{}", 400006, "host name \"a..b\" is invalid: empty label");
    assert_refused("hub", "{\"protocol\":\"ftp\"}", 400006,
                   "protocol must be one of mqtts, mqtt, https, http, amqps, amqp, coaps, coap, "
                   "wss, ws");
    assert_refused("hub", "{\"protocol\":1}", 400006, "protocol must be a string");
    assert_refused("hub", "{\"port\":0}", 400006, "port must be an integer from 1 to 65535");
    assert_refused("hub", "{\"port\":65536}", 400006, "port must be an integer from 1 to 65535");
    assert_refused("hub", "{\"port\":\"443\"}", 400006, "port must be an integer from 1 to 65535");
    assert_refused("hub", "{\"weight\":0}", 400006, "weight must be an integer from 1 to 10000");
    assert_refused("hub", "{\"weight\":10001}", 400006,
                   "weight must be an integer from 1 to 10000");
    assert_refused("hub", "{\"enabled\":\"yes\"}", 400006, "enabled must be a boolean");
    assert_refused("hub", "{\"region\":\"eu west\"}", 400006,
                   "region may hold letters, digits, '-', '.', '_' and ':' only");
    assert_refused("hub", "{\"region\":\"\"}", 400006, "region must have 1 to 64 characters");
    assert_refused("hub", "{\"trustBundle\":\"hello\"}", 400006,
                   "trustBundle holds no PEM certificate");
    assert_refused("hub", "{\"trustBundle\":7}", 400006, "trustBundle must be a string");
}

static void test_trust_bundle(void **state) {
    char *pem = make_cert_pem(), *two, *text;
    (void)state;

    /* One certificate, or several, are kept as given. */
    assert_bundle_kept(pem);
    assert_true(asprintf(&two, "%s%s", pem, pem) > 0);
    assert_bundle_kept(two);

    /* A private key among them is refused, by its block name only. */
    assert_true(asprintf(&text, "%s-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                         pem) > 0);
    assert_bundle_refused(text, "trustBundle holds a \"PRIVATE KEY\" block; only CERTIFICATE "
                                "blocks belong there");
    free(text);

    /* A certificate block whose contents are not X.509, and a block left open. */
    assert_bundle_refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                          "trustBundle certificate 1 is not valid X.509");
    assert_true(asprintf(&text, "%s-----BEGIN CERTIFICATE-----\nAAAA\n", pem) > 0);
    assert_bundle_refused(text, "trustBundle block 2 is not well-formed PEM");
    free(text);
    free(two);
    free(pem);
}

/* The bundle reaches every device as given: anything but white space around its certificates
 * is refused, wherever it is. */
static void test_trust_bundle_nothing_else(void **state) {
    /* Text before, between and after two copies of the certificate ("-": one copy only). */
    static const char *const refused[][3] = {
        {"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", "-", ""}, /* a key's base64 without BEGIN line */
        {"", "-", "# a comment\n"},
        {"", "text", ""},
        {"subject=CN = endpoint test CA\n", "-", ""},
        /* A BEGIN line PEM_read_bio passes over, with the text up to the next one. */
        {"-----BEGIN CERTIFICATE----- x\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", "-", ""},
    };
    static const char *const kept[][3] = {
        {"", "-", ""}, {"\n\n  ", "-", "\n\t\n"}, {"", "", ""}, {"   ", "  ", "\n"}};
    char *pem = make_cert_pem(), *crlf = malloc(2 * strlen(pem) + 1), *text;
    size_t j = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *const *t = refused[i];
        int one = strcmp(t[1], "-") == 0;

        assert_true(
            asprintf(&text, "%s%s%s%s%s", t[0], pem, one ? "" : t[1], one ? "" : pem, t[2]) > 0);
        assert_bundle_refused(text, "trustBundle holds text outside its PEM blocks");
        free(text);
    }
    /* White space around and between the blocks, CRLF line ends and indented blocks are fine. */
    for (const char *c = pem; *c != '\0'; c++) {
        if (*c == '\n')
            crlf[j++] = '\r';
        crlf[j++] = *c;
    }
    crlf[j] = '\0';
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        const char *const *t = kept[i];
        int one = strcmp(t[1], "-") == 0;

        assert_true(asprintf(&text, "%s%s%s%s%s", t[0], i == 2 ? crlf : pem, one ? "" : t[1],
                             one ? "" : pem, t[2]) > 0);
        assert_bundle_kept(text);
        free(text);
    }
    /* Header lines inside a certificate block would reach the devices too. */
    assert_true(asprintf(&text, "-----BEGIN CERTIFICATE-----\nComment: x\n\n%s",
                         strchr(pem, '\n') + 1) > 0);
    assert_bundle_refused(text, "trustBundle certificate 1 has PEM header lines");
    free(text);
    free(crlf);
    free(pem);
}

/* Refusals go into JSON answers: the names they quote stay UTF-8 when cut inside a character,
 * and bytes of the path that are not text become '?'. */
static void test_messages_stay_utf8(void **state) {
    char name[128] = "a", want[256], doc[512];
    struct result r;
    json_t *s;
    (void)state;

    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9");
    r = norm("\xff\xfehub", "{}");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "host name \"??hub\" is invalid: forbidden character (letters, "
                               "digits, '-' and '.' only)");
    snprintf(doc, sizeof(doc), "{\"hostName\":\"%s\"}", name);
    r = norm("hub", doc);
    snprintf(want, sizeof(want), "hostName \"%.63s?\" differs from \"hub\" in the path", name);
    assert_int_equal(r.code, 400004);
    assert_string_equal(r.err, want);
    assert_non_null(s = json_string(r.err));
    json_decref(s);
    snprintf(doc, sizeof(doc), "{\"%s\":1}", name);
    r = norm("hub", doc);
    snprintf(want, sizeof(want), "unknown field \"%.63s?\"", name);
    assert_string_equal(r.err, want);
    assert_non_null(s = json_string(r.err));
    json_decref(s);
    snprintf(doc, sizeof(doc),
             "{\"trustBundle\":\"-----BEGIN %s-----\\nAAAA\\n-----END %s-----\\n\"}", name, name);
    r = norm("hub", doc);
    snprintf(want, sizeof(want),
             "trustBundle holds a \"%.39s?\" block; only CERTIFICATE blocks belong there", name);
    assert_string_equal(r.err, want);
    assert_non_null(s = json_string(r.err));
    json_decref(s);
}

static void test_parse_and_device_view(void **state) {
    struct store_doc d = {0};
    struct endpoint e;
    json_t *v;
    char *text;
    (void)state;

    d.id = "hub-a";
    d.doc = "{\"hostName\":\"hub-a\",\"port\":8883,\"protocol\":\"mqtts\",\"weight\":3,"
            "\"enabled\":false,\"region\":\"eu\",\"trustBundle\":\"PEM\"}";
    assert_int_equal(endpoint_parse(&d, &e), 0);
    assert_string_equal(e.host, "hub-a");
    assert_int_equal(e.port, 8883);
    assert_string_equal(e.protocol, "mqtts");
    assert_int_equal(e.weight, 3);
    assert_int_equal(e.enabled, 0);
    assert_string_equal(e.region, "eu");
    assert_string_equal(e.trust_bundle, "PEM");
    v = endpoint_device_view(&e);
    text = json_dumps(v, JSON_COMPACT);
    assert_string_equal(text, "{\"host\":\"hub-a\",\"port\":8883,\"protocol\":\"mqtts\","
                              "\"trustBundle\":\"PEM\"}");
    free(text);
    json_decref(v);
    endpoint_clear(&e);
    assert_null(e.host);

    d.doc = "{\"hostName\":\"hub-a\",\"port\":443,\"protocol\":\"https\",\"weight\":1,"
            "\"enabled\":true}";
    assert_int_equal(endpoint_parse(&d, &e), 0);
    assert_null(e.region);
    v = endpoint_device_view(&e);
    text = json_dumps(v, JSON_COMPACT);
    assert_string_equal(text, "{\"host\":\"hub-a\",\"port\":443,\"protocol\":\"https\"}");
    free(text);
    json_decref(v);
    endpoint_clear(&e);

    d.doc = "{\"hostName\":\"hub-a\",\"port\":0,\"protocol\":\"https\",\"weight\":1,"
            "\"enabled\":true}";
    assert_int_equal(endpoint_parse(&d, &e), -1);
    d.doc = "not json";
    assert_int_equal(endpoint_parse(&d, &e), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_trust_bundle),       cmocka_unit_test(test_trust_bundle_nothing_else),
        cmocka_unit_test(test_messages_stay_utf8), cmocka_unit_test(test_parse_and_device_view),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
