/* Unit tests for common/sas.c: every SAS vector of tests/data/crypto-vectors.json is built byte
 * for byte and verified, then the parser and the checks are driven through their edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "vectors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sas.h"

#define SCOPE "0ne00ABCDEF"
#define REGID "my-device-01"
#define SE    1795659795
/* The device key of the sas vectors and another key, both from crypto-vectors.json. */
#define KEY       "i0eNaxR9P2qCHaK3RkHpn3erozYVBcdCwAsiEzQHCM4="
#define OTHER_KEY "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
/* The first vector's fields, as the Node.js SDK sends them. */
#define SR1  "sr=0ne00ABCDEF/registrations/my-device-01"
#define SIG1 "sig=Z4EuSOuHpVww2iHOBIRx%2FYZn59DOod4l%2BuTTw9QlOnc%3D"
#define SE1  "se=1795659795"
#define SKN1 "skn=registration"
#define PFX  "SharedAccessSignature "

static void parse_ok(const char *header, struct sas_token *tok) {
    const char *why = NULL;
    enum sas_result r = sas_parse(header, tok, &why);
    if (r != SAS_OK)
        fail_msg("\"%s\" refused: %s", header, why ? why : "(no reason)");
}

static void expect_malformed(const char *header, const char *reason) {
    struct sas_token tok;
    const char *why = NULL;
    enum sas_result r;

    memset(&tok, 0x55, sizeof(tok));
    r = sas_parse(header, &tok, &why);
    if (r != SAS_MALFORMED)
        fail_msg("\"%s\": result %d, wanted SAS_MALFORMED", header ? header : "(null)", r);
    if (why == NULL || strcmp(why, reason) != 0)
        fail_msg("\"%s\": reason \"%s\", wanted \"%s\"", header ? header : "(null)",
                 why ? why : "(null)", reason);
    /* A refused token is left empty, so freeing it again is harmless. */
    assert_null(tok.sr);
    assert_null(tok.se);
    assert_null(tok.skn);
    assert_null(tok.sig);
    assert_int_equal(tok.siglen, 0);
    assert_int_equal(tok.expiry, 0);
    sas_token_free(&tok);
}

static void test_vectors_build(void **state) {
    json_t *arr = json_object_get(vectors, "sas"), *v;
    size_t i;
    (void)state;

    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);
    json_array_foreach(arr, i, v) {
        const char *why = NULL;
        char *h = sas_build(vector_str(v, "sr"), vector_str(v, "device_key_b64"),
                            strtoll(vector_str(v, "se"), NULL, 10), &why);
        if (h == NULL)
            fail_msg("vector %zu: sas_build failed: %s", i, why);
        assert_string_equal(h, vector_str(v, "header"));
        free(h);
    }
}

static void test_vectors_parse_and_verify(void **state) {
    json_t *arr = json_object_get(vectors, "sas"), *v;
    size_t i;
    (void)state;

    assert_int_equal(json_array_size(arr), 3);
    json_array_foreach(arr, i, v) {
        const char *key = vector_str(v, "device_key_b64");
        const char *sig_b64 = vector_str(v, "sig_b64");
        const char *keys[] = {key};
        const char *wrong[] = {OTHER_KEY};
        int64_t se = strtoll(vector_str(v, "se"), NULL, 10);
        unsigned char *sig = NULL;
        size_t siglen = 0;
        struct sas_token tok;
        int matched = -1;

        parse_ok(vector_str(v, "header"), &tok);
        assert_string_equal(tok.sr, vector_str(v, "sr"));
        assert_string_equal(tok.se, vector_str(v, "se"));
        assert_string_equal(tok.skn, "registration");
        assert_int_equal(tok.expiry, se);
        assert_int_equal(b64_decode(sig_b64, strlen(sig_b64), &sig, &siglen, NULL), 0);
        assert_int_equal(tok.siglen, 32);
        assert_int_equal(siglen, 32);
        assert_memory_equal(tok.sig, sig, 32);
        b64_free(sig, siglen);

        assert_int_equal(sas_verify(&tok, SCOPE, REGID, keys, 1, se - 100, 3600, &matched), SAS_OK);
        assert_int_equal(matched, 0);
        /* The resource is compared without regard to case. */
        assert_int_equal(
            sas_verify(&tok, "0NE00abcdef", "MY-DEVICE-01", keys, 1, se - 100, 3600, NULL), SAS_OK);
        assert_int_equal(sas_verify(&tok, SCOPE, REGID, wrong, 1, se - 100, 3600, NULL),
                         SAS_BAD_SIGNATURE);
        assert_int_equal(sas_verify(&tok, SCOPE, REGID, keys, 1, se, 3600, NULL), SAS_EXPIRED);
        assert_int_equal(sas_verify(&tok, SCOPE, REGID, keys, 1, se + 1, 3600, NULL), SAS_EXPIRED);
        assert_int_equal(sas_verify(&tok, "0ne00ABCDEG", REGID, keys, 1, se - 100, 3600, NULL),
                         SAS_WRONG_RESOURCE);
        assert_int_equal(sas_verify(&tok, SCOPE, "my-device-02", keys, 1, se - 100, 3600, NULL),
                         SAS_WRONG_RESOURCE);
        assert_int_equal(sas_verify(&tok, SCOPE, "my-device-0", keys, 1, se - 100, 3600, NULL),
                         SAS_WRONG_RESOURCE);
        assert_int_equal(sas_verify(&tok, SCOPE, "my-device-011", keys, 1, se - 100, 3600, NULL),
                         SAS_WRONG_RESOURCE);

        /* One flipped bit anywhere in the signature is caught. */
        for (size_t b = 0; b < tok.siglen * 8; b++) {
            tok.sig[b / 8] ^= (unsigned char)(1u << (b % 8));
            assert_int_equal(sas_verify_sig(&tok, keys, 1, NULL), SAS_BAD_SIGNATURE);
            tok.sig[b / 8] ^= (unsigned char)(1u << (b % 8));
        }
        assert_int_equal(sas_verify_sig(&tok, keys, 1, NULL), SAS_OK);
        sas_token_free(&tok);
    }
}

/* Replaces the first occurrence of from in s with to; the caller frees the result. */
static char *replace(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(at);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

static enum sas_result verify_header(const char *header) {
    const char *keys[] = {KEY};
    struct sas_token tok;
    enum sas_result r;

    r = sas_parse(header, &tok, NULL);
    if (r != SAS_OK)
        return r;
    r = sas_verify(&tok, SCOPE, REGID, keys, 1, SE - 100, 0, NULL);
    sas_token_free(&tok);
    return r;
}

static void test_tampered_header(void **state) {
    const char *good = PFX SR1 "&" SIG1 "&" SE1 "&" SKN1;
    char *h;
    (void)state;

    assert_int_equal(verify_header(good), SAS_OK);
    /* Another valid base64 signature. */
    h = replace(good, "sig=Z4Eu", "sig=Y4Eu");
    assert_int_equal(verify_header(h), SAS_BAD_SIGNATURE);
    free(h);
    /* A later expiry under the same signature. */
    h = replace(good, "se=1795659795", "se=1795659796");
    assert_int_equal(verify_header(h), SAS_BAD_SIGNATURE);
    free(h);
    /* The same expiry with a leading zero: se is signed exactly as received. */
    h = replace(good, "se=1795659795", "se=01795659795");
    assert_int_equal(verify_header(h), SAS_BAD_SIGNATURE);
    free(h);
    /* sr spelled another way names the same resource but is not what was signed. */
    h = replace(good, "/registrations/", "%2Fregistrations%2F");
    assert_int_equal(verify_header(h), SAS_BAD_SIGNATURE);
    free(h);
    h = replace(good, "my-device-01", "MY-DEVICE-01");
    assert_int_equal(verify_header(h), SAS_BAD_SIGNATURE);
    free(h);
    /* The sig of the %2f vector on the %2F spelling. */
    assert_int_equal(
        verify_header(PFX "sr=0ne00ABCDEF%2Fregistrations%2Fmy-device-01&"
                          "sig=Sij8VLL1yAML18E5bptan22qRyP9zhoula2h%2BZ1c49c%3D&se=1795659795"),
        SAS_BAD_SIGNATURE);
    assert_int_equal(
        verify_header(PFX "sr=0ne00ABCDEF%2fregistrations%2fmy-device-01&"
                          "sig=Sij8VLL1yAML18E5bptan22qRyP9zhoula2h%2BZ1c49c%3D&se=1795659795"),
        SAS_OK);
}

static void test_fields_in_any_order(void **state) {
    static const char *const fields[4] = {SR1, SIG1, SE1, SKN1};
    int count = 0;
    (void)state;

    /* All 24 orders of the four fields. */
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++) {
                    char h[512];
                    struct sas_token tok;
                    if (a == b || a == c || a == d || b == c || b == d || c == d)
                        continue;
                    snprintf(h, sizeof(h), PFX "%s&%s&%s&%s", fields[a], fields[b], fields[c],
                             fields[d]);
                    parse_ok(h, &tok);
                    assert_string_equal(tok.sr, "0ne00ABCDEF/registrations/my-device-01");
                    assert_string_equal(tok.se, "1795659795");
                    assert_string_equal(tok.skn, "registration");
                    sas_token_free(&tok);
                    assert_int_equal(verify_header(h), SAS_OK);
                    count++;
                }
    assert_int_equal(count, 24);
}

static void test_optional_and_unknown_fields(void **state) {
    struct sas_token tok;
    (void)state;

    parse_ok(PFX SE1 "&" SIG1 "&" SR1, &tok);
    assert_null(tok.skn);
    sas_token_free(&tok);
    assert_int_equal(verify_header(PFX SE1 "&" SIG1 "&" SR1), SAS_OK);
    assert_int_equal(verify_header(PFX "x=1&" SR1 "&foo=bar&" SIG1 "&" SE1 "&" SKN1 "&zz="),
                     SAS_OK);
    /* Field names are case-sensitive: SR is an unknown field, so sr is missing. */
    expect_malformed(PFX "SR=0ne00ABCDEF/registrations/my-device-01&" SIG1 "&" SE1, "missing sr");
    /* An empty skn is kept as given. */
    parse_ok(PFX SR1 "&" SIG1 "&" SE1 "&skn=", &tok);
    assert_string_equal(tok.skn, "");
    sas_token_free(&tok);
}

static void test_missing_and_repeated(void **state) {
    (void)state;
    expect_malformed(PFX SIG1 "&" SE1 "&" SKN1, "missing sr");
    expect_malformed(PFX SR1 "&" SE1 "&" SKN1, "missing sig");
    expect_malformed(PFX SR1 "&" SIG1 "&" SKN1, "missing se");
    expect_malformed(PFX SR1 "&" SR1 "&" SIG1 "&" SE1, "repeated field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SIG1 "&" SE1, "repeated field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&" SE1, "repeated field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&" SKN1 "&" SKN1, "repeated field");
    /* A repeat with a different value is what an attacker would try. */
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&se=9999999999", "repeated field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&sr=0ne00ABCDEF/registrations/other",
                     "repeated field");
}

static void test_malformed_envelope(void **state) {
    (void)state;
    expect_malformed(NULL, "no token");
    expect_malformed("", "not a SharedAccessSignature");
    expect_malformed("SharedAccessSignature", "not a SharedAccessSignature");
    expect_malformed("sharedaccesssignature " SR1 "&" SIG1 "&" SE1, "not a SharedAccessSignature");
    /* With a second space the first name is " sr", an unknown field. */
    expect_malformed("SharedAccessSignature  " SR1 "&" SIG1 "&" SE1, "missing sr");
    expect_malformed("Bearer abc", "not a SharedAccessSignature");
    expect_malformed(" " PFX SR1 "&" SIG1 "&" SE1, "not a SharedAccessSignature");
    expect_malformed(PFX, "empty field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&", "empty field");
    expect_malformed(PFX SR1 "&&" SIG1 "&" SE1, "empty field");
    expect_malformed(PFX "&" SR1 "&" SIG1 "&" SE1, "empty field");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&skn", "field without a name=value form");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "&=x", "field without a name=value form");
    expect_malformed(PFX SR1 "&" SIG1 "&" SE1 "\n", "control character in token");
    expect_malformed(PFX SR1 "&" SIG1 "&se=17956\t59795", "control character in token");
    expect_malformed(PFX "sr=&" SIG1 "&" SE1, "empty sr");
}

static void test_bad_expiry(void **state) {
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1a",
                                      "0x10",
                                      "1e9",
                                      "1.5",
                                      "١",
                                      "9223372036854775808",
                                      "99999999999999999999999999999999"};
    char h[512];
    struct sas_token tok;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(h, sizeof(h), "%s&se=%s", PFX SR1 "&" SIG1, bad[i]);
        expect_malformed(h, "se is not an unsigned decimal number in range");
    }
    /* The largest value that fits is accepted, and is then too far in the future. */
    parse_ok(PFX SR1 "&" SIG1 "&se=9223372036854775807", &tok);
    assert_int_equal(tok.expiry, INT64_MAX);
    assert_int_equal(sas_check_expiry(&tok, SE, 3600), SAS_TOO_FAR);
    assert_int_equal(sas_check_expiry(&tok, SE, 0), SAS_OK);
    sas_token_free(&tok);
    /* se=0 parses and is long expired. */
    parse_ok(PFX SR1 "&" SIG1 "&se=0", &tok);
    assert_int_equal(tok.expiry, 0);
    assert_string_equal(tok.se, "0");
    assert_int_equal(sas_check_expiry(&tok, SE, 0), SAS_EXPIRED);
    sas_token_free(&tok);
    parse_ok(PFX SR1 "&" SIG1 "&se=0001", &tok);
    assert_int_equal(tok.expiry, 1);
    assert_string_equal(tok.se, "0001");
    sas_token_free(&tok);
}

static void test_bad_signature_field(void **state) {
    (void)state;
    expect_malformed(PFX SR1 "&sig=&" SE1, "sig is not valid base64");
    expect_malformed(PFX SR1 "&sig=abc&" SE1, "sig is not valid base64");
    expect_malformed(PFX SR1 "&sig=Z4EuSOuHpVww2iHOBIRx/YZn59DOod4l+uTTw9QlOnc&" SE1,
                     "sig is not valid base64");
    expect_malformed(PFX SR1 "&sig=Z4Eu%20SOu&" SE1, "sig is not valid base64");
    expect_malformed(PFX SR1 "&sig=Z4Eu%ZZ&" SE1, "sig has a malformed percent-escape");
    expect_malformed(PFX SR1 "&sig=Z4Eu%2&" SE1, "sig has a malformed percent-escape");
    expect_malformed(PFX SR1 "&sig=%00AAA&" SE1, "sig has a malformed percent-escape");
    /* Unencoded '/', '+' and '=' are accepted: only what url-decoding changes matters. */
    assert_int_equal(
        verify_header(PFX SR1 "&sig=Z4EuSOuHpVww2iHOBIRx/YZn59DOod4l+uTTw9QlOnc=&" SE1), SAS_OK);
    /* Lower-case escapes decode the same. */
    assert_int_equal(
        verify_header(PFX SR1 "&sig=Z4EuSOuHpVww2iHOBIRx%2fYZn59DOod4l%2buTTw9QlOnc%3d&" SE1),
        SAS_OK);
}

static void test_length_cap(void **state) {
    static char h[SAS_MAX_LEN + 2];
    const char *base = PFX SR1 "&" SIG1 "&" SE1 "&pad=";
    size_t n = strlen(base);
    struct sas_token tok;
    (void)state;

    /* Exactly SAS_MAX_LEN characters is accepted... */
    memcpy(h, base, n);
    memset(h + n, 'p', SAS_MAX_LEN - n);
    h[SAS_MAX_LEN] = '\0';
    parse_ok(h, &tok);
    sas_token_free(&tok);
    assert_int_equal(verify_header(h), SAS_OK);
    /* ...and one more is not. */
    h[SAS_MAX_LEN] = 'p';
    h[SAS_MAX_LEN + 1] = '\0';
    expect_malformed(h, "token too long");
}

static void test_check_resource(void **state) {
    struct sas_token tok;
    (void)state;

    memset(&tok, 0, sizeof(tok));
    tok.sr = "0ne00ABCDEF%2fregistrations%2FMy-Device-01";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_OK);
    assert_int_equal(sas_check_resource(&tok, SCOPE, "my-device-01/"), SAS_WRONG_RESOURCE);
    assert_int_equal(sas_check_resource(&tok, "", REGID), SAS_WRONG_RESOURCE);
    assert_int_equal(sas_check_resource(&tok, SCOPE, ""), SAS_WRONG_RESOURCE);
    assert_int_equal(sas_check_resource(&tok, NULL, REGID), SAS_WRONG_RESOURCE);
    assert_int_equal(sas_check_resource(&tok, SCOPE, NULL), SAS_WRONG_RESOURCE);
    tok.sr = "0ne00ABCDEF/registrations/my%2Ddevice%2D01";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_OK);
    tok.sr = "0ne00ABCDEF/registrations/my-device-01/";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
    tok.sr = "0ne00ABCDEF/registration/my-device-01";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
    tok.sr = "0ne00ABCDEF/registrations/my-device-01%00";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
    tok.sr = "0ne00ABCDEF/registrations/my-device-01%";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
    tok.sr = "0ne00ABCDEF%252fregistrations%252fmy-device-01";
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
    tok.sr = NULL;
    assert_int_equal(sas_check_resource(&tok, SCOPE, REGID), SAS_WRONG_RESOURCE);
}

static void test_check_expiry(void **state) {
    struct sas_token tok;
    (void)state;

    memset(&tok, 0, sizeof(tok));
    tok.expiry = 1000;
    assert_int_equal(sas_check_expiry(&tok, 999, 0), SAS_OK);
    assert_int_equal(sas_check_expiry(&tok, 1000, 0), SAS_EXPIRED);
    assert_int_equal(sas_check_expiry(&tok, 1001, 0), SAS_EXPIRED);
    /* The maximum lifetime is inclusive. */
    assert_int_equal(sas_check_expiry(&tok, 900, 100), SAS_OK);
    assert_int_equal(sas_check_expiry(&tok, 899, 100), SAS_TOO_FAR);
    assert_int_equal(sas_check_expiry(&tok, 0, 1000), SAS_OK);
    assert_int_equal(sas_check_expiry(&tok, 0, 999), SAS_TOO_FAR);
    assert_int_equal(sas_check_expiry(&tok, -5, 0), SAS_OK);
    /* A negative lifetime means no limit, like zero. */
    assert_int_equal(sas_check_expiry(&tok, 0, -1), SAS_OK);
    /* Differences beyond INT64_MAX are computed without overflow. */
    tok.expiry = INT64_MAX;
    assert_int_equal(sas_check_expiry(&tok, -10, INT64_MAX), SAS_TOO_FAR);
    assert_int_equal(sas_check_expiry(&tok, INT64_MIN, 1), SAS_TOO_FAR);
    assert_int_equal(sas_check_expiry(&tok, 0, INT64_MAX), SAS_OK);
    assert_int_equal(sas_check_expiry(&tok, INT64_MAX, INT64_MAX), SAS_EXPIRED);
}

static void test_verify_order(void **state) {
    const char *wrong[] = {OTHER_KEY};
    struct sas_token tok;
    (void)state;

    /* Resource first, then expiry, then signature: a bad token reports the earliest failure. */
    parse_ok(PFX SR1 "&" SIG1 "&" SE1, &tok);
    assert_int_equal(sas_verify(&tok, "other", REGID, wrong, 1, SE + 1, 10, NULL),
                     SAS_WRONG_RESOURCE);
    assert_int_equal(sas_verify(&tok, SCOPE, REGID, wrong, 1, SE + 1, 10, NULL), SAS_EXPIRED);
    assert_int_equal(sas_verify(&tok, SCOPE, REGID, wrong, 1, SE - 11, 10, NULL), SAS_TOO_FAR);
    assert_int_equal(sas_verify(&tok, SCOPE, REGID, wrong, 1, SE - 10, 10, NULL),
                     SAS_BAD_SIGNATURE);
    sas_token_free(&tok);
}

static void test_key_list(void **state) {
    const char *none[] = {NULL, NULL};
    const char *secondary[] = {OTHER_KEY, KEY};
    const char *holes[] = {NULL, OTHER_KEY, NULL, KEY};
    const char *bad_first[] = {"not base64!", KEY};
    const char *both[] = {KEY, KEY};
    /* A key that is not strict base64 never matches, even if lenient decoding would give it. */
    const char *lenient_only[] = {"i0eNaxR9P2qCHaK3RkHpn3erozYVBcdCwAsiEzQHCM4=\n",
                                  "i0eNaxR9P2qCHaK3RkHpn3erozYVBcdCwAsiEzQHCM4"};
    struct sas_token tok;
    int matched;
    (void)state;

    parse_ok(PFX SR1 "&" SIG1 "&" SE1, &tok);
    matched = -1;
    assert_int_equal(sas_verify_sig(&tok, secondary, 2, &matched), SAS_OK);
    assert_int_equal(matched, 1);
    matched = -1;
    assert_int_equal(sas_verify_sig(&tok, holes, 4, &matched), SAS_OK);
    assert_int_equal(matched, 3);
    matched = -1;
    assert_int_equal(sas_verify_sig(&tok, bad_first, 2, &matched), SAS_OK);
    assert_int_equal(matched, 1);
    matched = -1;
    assert_int_equal(sas_verify_sig(&tok, both, 2, &matched), SAS_OK);
    assert_int_equal(matched, 0);
    assert_int_equal(sas_verify_sig(&tok, secondary, 2, NULL), SAS_OK);
    /* nkeys bounds the search even when a matching key follows. */
    assert_int_equal(sas_verify_sig(&tok, secondary, 1, NULL), SAS_BAD_SIGNATURE);
    assert_int_equal(sas_verify_sig(&tok, holes, 3, NULL), SAS_BAD_SIGNATURE);
    assert_int_equal(sas_verify_sig(&tok, none, 2, NULL), SAS_BAD_SIGNATURE);
    assert_int_equal(sas_verify_sig(&tok, secondary, 0, NULL), SAS_BAD_SIGNATURE);
    assert_int_equal(sas_verify_sig(&tok, NULL, 0, NULL), SAS_BAD_SIGNATURE);
    assert_int_equal(sas_verify_sig(&tok, lenient_only, 2, NULL), SAS_BAD_SIGNATURE);
    matched = -1;
    assert_int_equal(sas_verify(&tok, SCOPE, REGID, holes, 4, SE - 1, 3600, &matched), SAS_OK);
    assert_int_equal(matched, 3);
    sas_token_free(&tok);
}

static void test_short_signature(void **state) {
    const char *keys[] = {KEY};
    struct sas_token tok;
    (void)state;

    /* A valid base64 signature of the wrong length: a truncated MAC must not match its prefix. */
    parse_ok(PFX SR1 "&sig=Z4EuSOuHpVww2iHOBIRx%2FYZn59DOod4l%2BuTTw9QlOg%3D%3D&" SE1, &tok);
    assert_int_equal(tok.siglen, 31);
    assert_int_equal(sas_verify_sig(&tok, keys, 1, NULL), SAS_BAD_SIGNATURE);
    sas_token_free(&tok);
}

static void test_build(void **state) {
    const char *why = NULL;
    char *h;
    (void)state;

    h = sas_build("0ne00ABCDEF/registrations/my-device-01", KEY, 0, &why);
    assert_non_null(h);
    assert_non_null(strstr(h, "&se=0&skn=registration"));
    assert_int_equal(verify_header(h), SAS_EXPIRED);
    free(h);

    h = sas_build("0ne00ABCDEF/registrations/my-device-01", KEY, INT64_MAX, &why);
    assert_non_null(strstr(h, "&se=9223372036854775807&skn=registration"));
    free(h);

    assert_null(sas_build("0ne00ABCDEF/registrations/my-device-01", "bad key!", SE, &why));
    assert_string_equal(why, "key is not valid base64");
    why = NULL;
    assert_null(sas_build("0ne00ABCDEF/registrations/my-device-01", NULL, SE, &why));
    assert_string_equal(why, "no key");
    why = NULL;
    assert_null(sas_build("0ne00ABCDEF/registrations/my-device-01", KEY, -1, &why));
    assert_string_equal(why, "negative expiry");
    why = NULL;
    assert_null(sas_build("a&b", KEY, SE, &why));
    assert_string_equal(why, "resource is empty or contains '&'");
    why = NULL;
    assert_null(sas_build("", KEY, SE, &why));
    assert_string_equal(why, "resource is empty or contains '&'");
    assert_null(sas_build(NULL, KEY, SE, NULL));
}

static void test_result_strings(void **state) {
    (void)state;
    assert_string_equal(sas_result_str(SAS_OK), "ok");
    assert_string_equal(sas_result_str(SAS_MALFORMED), "malformed token");
    assert_string_equal(sas_result_str(SAS_EXPIRED), "token expired");
    assert_string_equal(sas_result_str(SAS_TOO_FAR), "token expiry too far in the future");
    assert_string_equal(sas_result_str(SAS_WRONG_RESOURCE),
                        "token resource does not name this registration");
    assert_string_equal(sas_result_str(SAS_BAD_SIGNATURE), "signature does not match");
    assert_string_equal(sas_result_str((enum sas_result)99), "unknown result");
}

static void test_token_free(void **state) {
    struct sas_token tok;
    (void)state;

    parse_ok(PFX SR1 "&" SIG1 "&" SE1 "&" SKN1, &tok);
    sas_token_free(&tok);
    assert_null(tok.sr);
    assert_null(tok.sig);
    assert_int_equal(tok.siglen, 0);
    sas_token_free(&tok);
    sas_token_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_build),
        cmocka_unit_test(test_vectors_parse_and_verify),
        cmocka_unit_test(test_tampered_header),
        cmocka_unit_test(test_fields_in_any_order),
        cmocka_unit_test(test_optional_and_unknown_fields),
        cmocka_unit_test(test_missing_and_repeated),
        cmocka_unit_test(test_malformed_envelope),
        cmocka_unit_test(test_bad_expiry),
        cmocka_unit_test(test_bad_signature_field),
        cmocka_unit_test(test_length_cap),
        cmocka_unit_test(test_check_resource),
        cmocka_unit_test(test_check_expiry),
        cmocka_unit_test(test_verify_order),
        cmocka_unit_test(test_key_list),
        cmocka_unit_test(test_short_signature),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_result_strings),
        cmocka_unit_test(test_token_free),
    };
    return cmocka_run_group_tests(tests, vectors_load, vectors_free);
}
