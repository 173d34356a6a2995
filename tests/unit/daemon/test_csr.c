/* CSR parsing and validation: each encoding, each refusal with its own error, the key policy,
 * the common name and the challengePassword. Hostile inputs are files in tests/data/csr. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "prompts.h"

/* Reads tests/data/csr/NAME; *len is its size. The caller frees the result. */
static char *fixture(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof(path), "%s/csr/%s", PROV_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(64 * 1024);
    assert_non_null(buf);
    *len = fread(buf, 1, 64 * 1024 - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static char msg[512];

/* Parses fixture name as fmt with policy p and expected CN; returns the error, and the CSR in
 * *out when out is not NULL (else it is freed). */
static enum csr_err parse_file(const char *name, enum csr_format fmt, const struct csr_policy *p,
                               const char *cn, struct csr **out) {
    size_t len;
    char *in = fixture(name, &len);
    struct csr *c = NULL;
    enum csr_err e = csr_parse(in, len, fmt, p, cn, &c, msg, sizeof(msg));
    free(in);
    if (e != CSR_OK)
        assert_null(c);
    else
        assert_non_null(c);
    if (out)
        *out = c;
    else
        csr_free(c);
    return e;
}

static void test_good_p256(void **state) {
    (void)state;
    struct csr *c = NULL;
    assert_int_equal(parse_file("good-p256.b64", CSR_FMT_TEXT, NULL, "device-0001", &c), CSR_OK);
    assert_int_equal(c->kind, CSR_KEY_P256);
    assert_int_equal(c->bits, 256);
    assert_string_equal(c->cn, "device-0001");
    assert_null(c->challenge_password);
    assert_true(EVP_PKEY_is_a(c->key, "EC"));
    csr_free(c);
}

/* Registration IDs are case-insensitive, so the CN is compared without case; the CN keeps the
 * case it was sent with. */
static void test_cn_case_insensitive(void **state) {
    (void)state;
    struct csr *c = NULL;
    assert_int_equal(parse_file("good-p256.b64", CSR_FMT_TEXT, NULL, "DEVICE-0001", &c), CSR_OK);
    assert_string_equal(c->cn, "device-0001");
    csr_free(c);
}

static void test_other_encodings(void **state) {
    (void)state;
    assert_int_equal(parse_file("good-p256.der", CSR_FMT_DER, NULL, "device-0001", NULL), CSR_OK);
    /* PEM where base64 is expected. */
    assert_int_equal(parse_file("good-p256.pem", CSR_FMT_TEXT, NULL, "device-0001", NULL), CSR_OK);

    /* Base64 wrapped at 64 columns with CRLF, as EST clients and base64 tools write it. */
    size_t len, o = 0;
    char *b64 = fixture("good-p256.b64", &len);
    char *wrapped = malloc(len * 2 + 8);
    assert_non_null(wrapped);
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && i % 64 == 0) {
            wrapped[o++] = '\r';
            wrapped[o++] = '\n';
        }
        wrapped[o++] = b64[i];
    }
    wrapped[o++] = '\n';
    struct csr *c = NULL;
    assert_int_equal(csr_parse(wrapped, o, CSR_FMT_TEXT, NULL, "device-0001", &c, msg, sizeof(msg)),
                     CSR_OK);
    csr_free(c);
    free(wrapped);
    free(b64);
}

static void test_good_p384_and_rsa(void **state) {
    (void)state;
    struct csr *c = NULL;
    assert_int_equal(parse_file("good-p384.b64", CSR_FMT_TEXT, NULL, "device-0001", &c), CSR_OK);
    assert_int_equal(c->kind, CSR_KEY_P384);
    assert_int_equal(c->bits, 384);
    csr_free(c);
    assert_int_equal(parse_file("good-rsa2048.b64", CSR_FMT_TEXT, NULL, "device-0001", &c), CSR_OK);
    assert_int_equal(c->kind, CSR_KEY_RSA);
    assert_int_equal(c->bits, 2048);
    csr_free(c);
}

static void test_bad_signature(void **state) {
    (void)state;
    assert_int_equal(parse_file("bad-signature.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_BAD_SIGNATURE);
    assert_string_equal(msg, "the CSR's signature does not verify with its public key");
}

static void test_wrong_cn(void **state) {
    (void)state;
    assert_int_equal(parse_file("wrong-cn.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_CN_MISMATCH);
    assert_string_equal(msg, "the CSR's common name \"other-device\" is not \"device-0001\"");
    /* Without an expected name any CN is accepted and reported. */
    struct csr *c = NULL;
    assert_int_equal(parse_file("wrong-cn.b64", CSR_FMT_TEXT, NULL, NULL, &c), CSR_OK);
    assert_string_equal(c->cn, "other-device");
    csr_free(c);
}

static void test_cn_count(void **state) {
    (void)state;
    assert_int_equal(parse_file("no-cn.b64", CSR_FMT_TEXT, NULL, NULL, NULL), CSR_NO_CN);
    assert_string_equal(msg, "the CSR's subject has no common name (CN)");
    assert_int_equal(parse_file("two-cn.b64", CSR_FMT_TEXT, NULL, NULL, NULL), CSR_NO_CN);
    assert_string_equal(msg, "the CSR's subject has more than one common name (CN)");
}

static void test_weak_and_huge_rsa(void **state) {
    (void)state;
    assert_int_equal(parse_file("rsa1024.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_KEY_TOO_SMALL);
    assert_string_equal(msg, "RSA key of 1024 bits; at least 2048 bits are required");
    assert_int_equal(parse_file("rsa8192.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_KEY_TOO_LARGE);
    assert_string_equal(msg, "RSA key of 8192 bits; at most 4096 bits are accepted");
    struct csr_policy p;
    csr_policy_default(&p);
    p.rsa_max_bits = 8192;
    assert_int_equal(parse_file("rsa8192.b64", CSR_FMT_TEXT, &p, "device-0001", NULL), CSR_OK);
}

static void test_unsupported_keys(void **state) {
    (void)state;
    assert_int_equal(parse_file("secp256k1.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_CURVE_UNSUPPORTED);
    assert_string_equal(msg, "EC key on curve secp256k1, which is not allowed here");
    assert_int_equal(parse_file("ed25519.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_KEY_UNSUPPORTED);
    assert_string_equal(msg, "ED25519 keys are not allowed here");

    /* A policy can allow Ed25519, or leave out RSA or P-384. */
    struct csr_policy p;
    char err[128];
    struct csr *c = NULL;
    csr_policy_default(&p);
    assert_int_equal(csr_policy_parse("p256, ed25519", &p, err, sizeof(err)), 0);
    assert_int_equal(p.allow, CSR_KEY_P256 | CSR_KEY_ED25519);
    assert_int_equal(parse_file("ed25519.b64", CSR_FMT_TEXT, &p, "device-0001", &c), CSR_OK);
    assert_int_equal(c->kind, CSR_KEY_ED25519);
    csr_free(c);
    assert_int_equal(parse_file("good-rsa2048.b64", CSR_FMT_TEXT, &p, "device-0001", NULL),
                     CSR_KEY_UNSUPPORTED);
    assert_string_equal(msg, "RSA keys are not allowed here");
    assert_int_equal(parse_file("good-p384.b64", CSR_FMT_TEXT, &p, "device-0001", NULL),
                     CSR_CURVE_UNSUPPORTED);
    assert_string_equal(msg, "EC key on curve secp384r1, which is not allowed here");
}

/* OpenSSL 3.0 decodes this request and verifies its signature; the key is the point at infinity,
 * so the signature proves nothing (tests/data/README.md). */
static void test_point_at_infinity(void **state) {
    (void)state;
    assert_int_equal(parse_file("p256-infinity.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_KEY_UNSUPPORTED);
    assert_string_equal(msg, "the CSR's public key is malformed");
}

static void test_policy_parse(void **state) {
    (void)state;
    struct csr_policy p;
    char err[128];
    csr_policy_default(&p);
    assert_int_equal(p.allow, CSR_KEY_P256 | CSR_KEY_P384 | CSR_KEY_RSA);
    assert_int_equal(p.rsa_min_bits, 2048);
    assert_int_equal(p.rsa_max_bits, 4096);
    assert_int_equal(csr_policy_parse("p256,bogus", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown key type \"bogus\" (known: p256, p384, rsa, ed25519)");
    assert_int_equal(p.allow, CSR_KEY_P256 | CSR_KEY_P384 | CSR_KEY_RSA);
    assert_int_equal(csr_policy_parse("", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "the list of key types is empty");
    assert_int_equal(csr_policy_parse("rsa", &p, err, sizeof(err)), 0);
    assert_int_equal(p.allow, CSR_KEY_RSA);
    assert_string_equal(csr_key_kind_name(CSR_KEY_P384), "P-384");
}

static void test_malformed(void **state) {
    (void)state;
    assert_int_equal(parse_file("truncated.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_BAD_DER);
    assert_string_equal(
        msg, "the CSR is not a PKCS#10 certificate request (malformed or truncated DER)");
    assert_int_equal(parse_file("trailing-data.b64", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_BAD_DER);
    assert_string_equal(msg, "the CSR has 2 bytes after the request");
    assert_int_equal(parse_file("garbage.txt", CSR_FMT_TEXT, NULL, "device-0001", NULL),
                     CSR_BAD_BASE64);
    assert_string_equal(msg, "the CSR is not valid base64: bad length");
    assert_int_equal(parse_file("garbage.txt", CSR_FMT_DER, NULL, "device-0001", NULL),
                     CSR_BAD_DER);
    /* Text that starts as PEM but holds no certificate request block. */
    static const char cert_pem[] =
        "\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    struct csr *c = NULL;
    assert_int_equal(csr_parse(cert_pem, sizeof(cert_pem) - 1, CSR_FMT_TEXT, NULL, "device-0001",
                               &c, msg, sizeof(msg)),
                     CSR_BAD_PEM);
    assert_null(c);
    assert_string_equal(msg, "the CSR has no readable PEM CERTIFICATE REQUEST block");
}

/* A PEM block with encryption headers is refused without asking anyone for a passphrase: OpenSSL
 * asks on the terminal or standard input unless told otherwise. */
static void test_pem_encrypted(void **state) {
    (void)state;
    static const char pem[] = "-----BEGIN CERTIFICATE REQUEST-----\n"
                              "Proc-Type: 4,ENCRYPTED\n"
                              "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n"
                              "\n"
                              "AAAAAAAAAAAAAAAAAAAAAA==\n"
                              "-----END CERTIFICATE REQUEST-----\n";
    struct csr *c = NULL;
    prompts_watch();
    enum csr_err e =
        csr_parse(pem, sizeof(pem) - 1, CSR_FMT_TEXT, NULL, NULL, &c, msg, sizeof(msg));
    int prompts = prompts_unwatch();
    assert_int_equal(e, CSR_BAD_PEM);
    assert_null(c);
    assert_int_equal(prompts, 0);
    assert_string_equal(msg, "the CSR has no readable PEM CERTIFICATE REQUEST block");
}

static void test_empty_and_oversized(void **state) {
    (void)state;
    struct csr *c = (struct csr *)&c;
    static const enum csr_format fmts[] = {CSR_FMT_TEXT, CSR_FMT_DER};
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        assert_int_equal(csr_parse("", 0, fmts[i], NULL, NULL, &c, msg, sizeof(msg)), CSR_EMPTY);
        assert_null(c);
    }
    /* Whitespace only decodes to nothing. */
    assert_int_equal(csr_parse("\r\n \n", 4, CSR_FMT_TEXT, NULL, NULL, &c, msg, sizeof(msg)),
                     CSR_EMPTY);
    size_t n = CSR_INPUT_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'A', n);
    assert_int_equal(csr_parse(big, n, CSR_FMT_TEXT, NULL, NULL, &c, msg, sizeof(msg)),
                     CSR_TOO_LARGE);
    assert_string_equal(msg, "the CSR is 16385 bytes; at most 16384 are accepted");
    free(big);
}

static void test_challenge_password(void **state) {
    (void)state;
    struct csr *c = NULL;
    assert_int_equal(parse_file("challenge.b64", CSR_FMT_TEXT, NULL, "device-0001", &c), CSR_OK);
    assert_non_null(c->challenge_password);
    assert_string_equal(c->challenge_password, "tls-unique-binding-value");
    assert_int_equal(c->challenge_password_len, 24);
    csr_free(c);
}

/* A request for CN cn (cnlen bytes) and key's public key, unsigned. */
static X509_REQ *make_req(const char *cn, size_t cnlen, EVP_PKEY *key) {
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    assert_true(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                           (const unsigned char *)cn, (int)cnlen, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, name));
    assert_true(X509_REQ_set_pubkey(req, key));
    X509_NAME_free(name);
    return req;
}

/* Signs req with key and returns its DER (freed with OPENSSL_free); frees req and key. */
static unsigned char *sign_req(X509_REQ *req, EVP_PKEY *key, int *len) {
    unsigned char *der = NULL;
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    *len = i2d_X509_REQ(req, &der);
    assert_true(*len > 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

/* A DER CSR made here for what the openssl command line cannot make (over-long names, control
 * characters, odd attributes): when nchallenge > 0, with a challengePassword attribute holding
 * nchallenge values challenge of ASN.1 type type. The caller frees it with OPENSSL_free. */
static unsigned char *make_csr_attrs(const char *cn, size_t cnlen, int nchallenge, int type,
                                     const char *challenge, int *len) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509_REQ *req = make_req(cn, cnlen, key);
    if (nchallenge > 0) {
        X509_ATTRIBUTE *attr = X509_ATTRIBUTE_new();
        assert_true(X509_ATTRIBUTE_set1_object(attr, OBJ_nid2obj(NID_pkcs9_challengePassword)));
        for (int i = 0; i < nchallenge; i++)
            assert_true(X509_ATTRIBUTE_set1_data(attr, type, challenge, (int)strlen(challenge)));
        assert_true(X509_REQ_add1_attr(req, attr));
        X509_ATTRIBUTE_free(attr);
    }
    return sign_req(req, key, len);
}

/* The DER of an Extensions list with a subjectAltName extension for each san (text as openssl's
 * config takes it) up to a NULL. Freed with OPENSSL_free. */
static unsigned char *ext_list(const char *const *sans, int *len) {
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    for (; *sans; sans++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, *sans);
        assert_non_null(ext);
        assert_true(sk_X509_EXTENSION_push(exts, ext));
    }
    unsigned char *der = NULL;
    *len = ASN1_item_i2d((ASN1_VALUE *)exts, &der, ASN1_ITEM_rptr(X509_EXTENSIONS));
    assert_true(*len > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return der;
}

/* A signed request for device-0001 with an extensionRequest attribute of n values, the DER
 * Extensions lists values (freed here), or none when n is 0, parsed. */
static struct csr *req_with_ext_values(unsigned char **values, const int *lens, int n) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509_REQ *req = make_req("device-0001", 11, key);
    if (n > 0) {
        X509_ATTRIBUTE *attr = X509_ATTRIBUTE_new();
        assert_true(X509_ATTRIBUTE_set1_object(attr, OBJ_nid2obj(NID_ext_req)));
        for (int i = 0; i < n; i++) {
            assert_true(X509_ATTRIBUTE_set1_data(attr, V_ASN1_SEQUENCE, values[i], lens[i]));
            OPENSSL_free(values[i]);
        }
        assert_true(X509_REQ_add1_attr(req, attr));
        X509_ATTRIBUTE_free(attr);
    }
    int len;
    unsigned char *der = sign_req(req, key, &len);
    struct csr *c = NULL;
    assert_int_equal(
        csr_parse((const char *)der, (size_t)len, CSR_FMT_DER, NULL, "device-0001", &c, NULL, 0),
        CSR_OK);
    OPENSSL_free(der);
    return c;
}

/* A signed request for device-0001 asking for the subjectAltName san, or for none when san is
 * NULL, parsed. */
static struct csr *req_with_san(const char *san) {
    const char *sans[] = {san, NULL};
    int len = 0;
    unsigned char *der = san ? ext_list(sans, &len) : NULL;
    return req_with_ext_values(&der, &len, san ? 1 : 0);
}

/* A re-enrollment's request asks for the current certificate's subjectAltName, or none. */
static void test_san_matches(void **state) {
    (void)state;
    X509 *cert = X509_new();
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "URI:urn:provd:device:device-0001");
    assert_non_null(ext);
    assert_true(X509_add_ext(cert, ext, -1));
    X509_EXTENSION_free(ext);
    static const struct {
        const char *san;
        int matches;
    } cases[] = {
        {NULL, 1},
        {"URI:urn:provd:device:device-0001", 1},
        {"URI:urn:provd:device:someone-else", 0},
        {"URI:urn:provd:device:device-0001,DNS:other.example.com", 0},
        {"DNS:device-0001", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct csr *c = req_with_san(cases[i].san);
        if (csr_san_matches(c, cert) != cases[i].matches)
            fail_msg("%s: expected %d", cases[i].san ? cases[i].san : "(none)", cases[i].matches);
        csr_free(c);
    }
    /* The current name asked for, and another one beside it: in the same list, in a second
     * list of the attribute. The other name is the longer, so that the list of the current one
     * comes first in the set (DER sorts its values), where a check of the first value alone takes
     * it. */
    const char *own = "URI:urn:provd:device:device-0001",
               *other = "URI:urn:provd:device:another-device-0001";
    const char *twice[] = {own, other, NULL}, *once[] = {own, NULL}, *elsewhere[] = {other, NULL};
    unsigned char *values[2];
    int lens[2];
    values[0] = ext_list(twice, &lens[0]);
    struct csr *c = req_with_ext_values(values, lens, 1);
    assert_int_equal(csr_san_matches(c, cert), 0);
    csr_free(c);
    values[0] = ext_list(once, &lens[0]);
    values[1] = ext_list(elsewhere, &lens[1]);
    c = req_with_ext_values(values, lens, 2);
    assert_int_equal(csr_san_matches(c, cert), 0);
    csr_free(c);
    values[0] = ext_list(once, &lens[0]);
    c = req_with_ext_values(values, lens, 1);
    assert_int_equal(csr_san_matches(c, cert), 1);
    csr_free(c);

    /* A certificate without one matches only a request that asks for none. */
    X509 *bare = X509_new();
    c = req_with_san(own);
    assert_int_equal(csr_san_matches(c, bare), 0);
    csr_free(c);
    c = req_with_san(NULL);
    assert_int_equal(csr_san_matches(c, bare), 1);
    csr_free(c);
    X509_free(bare);
    X509_free(cert);
}

/* Key algorithm parameters of another form than the key's (copied into the certificate as they
 * are, they once crashed the signing of it): refused. RSA's absent NULL is taken. */
static void test_key_params(void **state) {
    (void)state;
    struct csr *c = NULL;
    unsigned char *der;
    int len;

    /* RSA with an INTEGER for parameters, and with none. */
    for (int absent = 0; absent < 2; absent++) {
        EVP_PKEY *key = EVP_RSA_gen(2048);
        assert_non_null(key);
        X509_REQ *req = make_req("device-0001", 11, key);
        X509_ALGOR *alg = NULL;
        assert_true(X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, X509_REQ_get_X509_PUBKEY(req)));
        ASN1_INTEGER *five = ASN1_INTEGER_new();
        assert_true(ASN1_INTEGER_set(five, 5));
        if (absent) {
            ASN1_INTEGER_free(five);
            assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_UNDEF, NULL));
        } else {
            assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_INTEGER, five));
        }
        der = sign_req(req, key, &len);
        enum csr_err e = csr_parse((const char *)der, (size_t)len, CSR_FMT_DER, NULL, "device-0001",
                                   &c, msg, sizeof(msg));
        OPENSSL_free(der);
        if (absent) {
            assert_int_equal(e, CSR_OK);
            csr_free(c);
        } else {
            assert_int_equal(e, CSR_KEY_UNSUPPORTED);
            assert_string_equal(msg, "RSA key whose algorithm parameters are not NULL");
        }
    }

    /* P-256 written with explicit curve parameters. */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    assert_true(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
                                               OSSL_PKEY_EC_ENCODING_EXPLICIT));
    der = sign_req(make_req("device-0001", 11, key), key, &len);
    assert_int_equal(csr_parse((const char *)der, (size_t)len, CSR_FMT_DER, NULL, "device-0001", &c,
                               msg, sizeof(msg)),
                     CSR_CURVE_UNSUPPORTED);
    assert_string_equal(msg,
                        "EC key with explicit curve parameters; only named curves are allowed");
    OPENSSL_free(der);
}

/* Requests whose key makes their signature prove nothing, or is encoded otherwise than a
 * certificate may carry it, each signed so that OpenSSL 3.0 verifies its signature where it can
 * (tests/data/csr/bad-keys.py): refused as malformed. */
static void test_invalid_keys(void **state) {
    (void)state;
    static const char exponent[] =
        "RSA key whose public exponent is not odd, above 2^16 and below 2^256";
    static const struct {
        const char *file;
        const char *msg;
    } cases[] = {
        {"rsa-e1.b64", exponent},
        {"rsa-e3.b64", exponent},
        {"rsa-even-modulus.b64", "RSA key whose modulus is even"},
        {"rsa-key-trailing.b64", "the CSR's public key is malformed"},
        {"rsa-x500-oid.b64", "key algorithm 2.5.8.1.1 is not allowed here"},
        {"p256-hybrid.b64", "the CSR's public key is malformed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_file(cases[i].file, CSR_FMT_TEXT, NULL, "device-0001", NULL),
                         CSR_KEY_UNSUPPORTED);
        assert_string_equal(msg, cases[i].msg);
    }
    struct csr_policy p;
    char err[128];
    csr_policy_default(&p);
    assert_int_equal(csr_policy_parse("p256,ed25519", &p, err, sizeof(err)), 0);
    assert_int_equal(parse_file("ed25519-identity.b64", CSR_FMT_TEXT, &p, "device-0001", NULL),
                     CSR_KEY_UNSUPPORTED);
    assert_string_equal(msg, "Ed25519 key of small order");
}

/* Parses a request for key signed by another key (so that its signature does not verify) with
 * policy p; returns the error. */
static enum csr_err parse_foreign(EVP_PKEY *key, const struct csr_policy *p) {
    EVP_PKEY *signer = EVP_EC_gen("P-256");
    assert_non_null(signer);
    X509_REQ *req = make_req("device-0001", 11, key);
    int len;
    unsigned char *der = sign_req(req, signer, &len);
    struct csr *c = NULL;
    enum csr_err e = csr_parse((const char *)der, (size_t)len, CSR_FMT_DER, p, "device-0001", &c,
                               msg, sizeof(msg));
    assert_null(c);
    OPENSSL_free(der);
    return e;
}

/* The RSA exponents taken are odd, above 2^16 and below 2^256; an exponent taken gets as far as
 * the signature. */
static void test_rsa_exponents(void **state) {
    (void)state;
    static const struct {
        const char *e; /* in hex */
        enum csr_err want;
    } cases[] = {
        {"3", CSR_KEY_UNSUPPORTED},
        {"FFFF", CSR_KEY_UNSUPPORTED},
        {"10000", CSR_KEY_UNSUPPORTED},
        {"10001", CSR_BAD_SIGNATURE},
        {"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", CSR_BAD_SIGNATURE},
        {"10000000000000000000000000000000000000000000000000000000000000001", CSR_KEY_UNSUPPORTED},
    };
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    BIGNUM *n = NULL;
    assert_non_null(rsa);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        BIGNUM *e = NULL;
        assert_true(BN_hex2bn(&e, cases[i].e) > 0);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        EVP_PKEY *key = NULL;
        assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
        assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
        assert_int_equal(parse_foreign(key, NULL), cases[i].want);
        EVP_PKEY_free(key);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(e);
    }
    BN_free(n);
    EVP_PKEY_free(rsa);
}

/* Ed25519 keys of small order are refused in any spelling (with the sign bit of x, with y
 * unreduced); another key gets as far as the signature. */
static void test_ed25519_small_order(void **state) {
    (void)state;
    /* y = 0 (order 4), y = 1 (the identity) with the sign bit, y = p + 1, y of order 8. */
    static const char *const small[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    };
    struct csr_policy p;
    char err[128];
    csr_policy_default(&p);
    assert_int_equal(csr_policy_parse("ed25519", &p, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
        unsigned char pub[32];
        long len = 0;
        unsigned char *bytes = OPENSSL_hexstr2buf(small[i], &len);
        assert_non_null(bytes);
        assert_int_equal(len, 32);
        memcpy(pub, bytes, sizeof(pub));
        OPENSSL_free(bytes);
        EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
        assert_non_null(key);
        assert_int_equal(parse_foreign(key, &p), CSR_KEY_UNSUPPORTED);
        assert_string_equal(msg, "Ed25519 key of small order");
        EVP_PKEY_free(key);
    }
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(key);
    assert_int_equal(parse_foreign(key, &p), CSR_BAD_SIGNATURE);
    EVP_PKEY_free(key);
}

static unsigned char *make_csr(const char *cn, size_t cnlen, int *len) {
    return make_csr_attrs(cn, cnlen, 0, 0, NULL, len);
}

static void test_challenge_malformed(void **state) {
    (void)state;
    struct csr *c = NULL;
    int len;
    unsigned char *der = make_csr_attrs("d", 1, 2, V_ASN1_UTF8STRING, "twice", &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, "d", &c, msg, sizeof(msg)),
        CSR_BAD_ATTRIBUTE);
    assert_string_equal(msg, "the CSR's challengePassword must have exactly one value");
    OPENSSL_free(der);
    der = make_csr_attrs("d", 1, 1, V_ASN1_OCTET_STRING, "binary", &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, "d", &c, msg, sizeof(msg)),
        CSR_BAD_ATTRIBUTE);
    assert_string_equal(msg, "the CSR's challengePassword must be 1 to 255 bytes of text");
    OPENSSL_free(der);
    der = make_csr_attrs("d", 1, 1, V_ASN1_PRINTABLESTRING, "once", &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, "d", &c, msg, sizeof(msg)), CSR_OK);
    assert_string_equal(c->challenge_password, "once");
    csr_free(c);
    OPENSSL_free(der);
}

static void test_cn_content(void **state) {
    (void)state;
    char cn[CSR_CN_MAX + 2];
    struct csr *c = NULL;
    int len;
    memset(cn, 'a', sizeof(cn));

    unsigned char *der = make_csr(cn, CSR_CN_MAX, &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, NULL, &c, msg, sizeof(msg)), CSR_OK);
    assert_int_equal(strlen(c->cn), CSR_CN_MAX);
    csr_free(c);
    OPENSSL_free(der);

    der = make_csr(cn, CSR_CN_MAX + 1, &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, NULL, &c, msg, sizeof(msg)),
        CSR_BAD_CN);
    assert_string_equal(msg, "the CSR's common name must be 1 to 128 bytes of text");
    OPENSSL_free(der);

    der = make_csr("dev\0ice", 7, &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, NULL, &c, msg, sizeof(msg)),
        CSR_BAD_CN);
    OPENSSL_free(der);

    /* A name with a control character is refused without being quoted back. */
    der = make_csr("dev\nice", 7, &len);
    assert_int_equal(
        csr_parse((char *)der, (size_t)len, CSR_FMT_DER, NULL, "device", &c, msg, sizeof(msg)),
        CSR_CN_MISMATCH);
    assert_string_equal(msg, "the CSR's common name is not \"device\"");
    OPENSSL_free(der);
}

static void test_strerror(void **state) {
    (void)state;
    /* Every error has its own description. */
    for (int a = CSR_OK; a <= CSR_BAD_ATTRIBUTE; a++) {
        assert_string_not_equal(csr_strerror((enum csr_err)a), "unknown CSR error");
        for (int b = a + 1; b <= CSR_BAD_ATTRIBUTE; b++)
            assert_string_not_equal(csr_strerror((enum csr_err)a), csr_strerror((enum csr_err)b));
    }
    assert_string_equal(csr_strerror((enum csr_err)99), "unknown CSR error");
    assert_string_equal(csr_strerror(CSR_BAD_SIGNATURE), "the CSR's signature does not verify");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_p256),
        cmocka_unit_test(test_cn_case_insensitive),
        cmocka_unit_test(test_other_encodings),
        cmocka_unit_test(test_good_p384_and_rsa),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_wrong_cn),
        cmocka_unit_test(test_cn_count),
        cmocka_unit_test(test_weak_and_huge_rsa),
        cmocka_unit_test(test_unsupported_keys),
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_pem_encrypted),
        cmocka_unit_test(test_empty_and_oversized),
        cmocka_unit_test(test_challenge_password),
        cmocka_unit_test(test_challenge_malformed),
        cmocka_unit_test(test_cn_content),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_point_at_infinity),
        cmocka_unit_test(test_key_params),
        cmocka_unit_test(test_invalid_keys),
        cmocka_unit_test(test_rsa_exponents),
        cmocka_unit_test(test_ed25519_small_order),
        cmocka_unit_test(test_san_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
