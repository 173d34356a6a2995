/* PKCS#10 requests (daemon/csr.c): csr_parse in every input format, with the default policy,
 * without and with an expected CN. A refusal names a reason and returns nothing; an accepted CSR
 * has a CN the checks allow. Since the formats only differ in how the DER is wrapped, a request
 * accepted as DER must be accepted the same way as base64 (both decoders) and as PEM, and the
 * lenient decoder must accept whatever the strict one does. csr.c decodes requests with its own
 * ASN.1 description and its own way to the key (spki.c); OpenSSL's X509_REQ decoder must agree
 * with it on every DER input. */
#include <stdio.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "base64.h"
#include "csr.h"
#include "fuzz.h"

#define EXPECTED_CN "dev-1"

/* What a parse gave: the result code and, when accepted, the fields the encodings must agree
 * on. The CSR itself is freed right away. */
struct outcome {
    enum csr_err rc;
    enum csr_key_kind kind;
    int bits;
    char cn[CSR_CN_MAX + 1];
    int has_password;
    size_t password_len;
};

static struct outcome parse(const char *in, size_t len, enum csr_format fmt, const char *cn) {
    struct outcome o;
    struct csr *c = (struct csr *)1; /* must be overwritten whatever happens */
    char msg[256];

    memset(&o, 0, sizeof(o));
    msg[0] = '\0';
    o.rc = csr_parse(in, len, fmt, NULL, cn, &c, msg, sizeof(msg));
    if (o.rc != CSR_OK) {
        if (c != NULL || msg[0] == '\0' || csr_strerror(o.rc) == NULL)
            abort();
        return o;
    }
    if (c == NULL || c->der == NULL || c->spki == NULL || c->subject == NULL || c->key == NULL ||
        c->bits <= 0 || c->cn[0] == '\0' || strlen(c->cn) > CSR_CN_MAX ||
        csr_key_kind_name(c->kind) == NULL)
        abort();
    if (cn != NULL && strcasecmp(c->cn, cn) != 0)
        abort();
    if (c->challenge_password != NULL && (c->challenge_password_len == 0 ||
                                          c->challenge_password[c->challenge_password_len] != '\0'))
        abort();
    o.kind = c->kind;
    o.bits = c->bits;
    memcpy(o.cn, c->cn, sizeof(o.cn));
    o.has_password = c->challenge_password != NULL;
    o.password_len = c->challenge_password_len;
    csr_free(c);
    return o;
}

static int same(const struct outcome *a, const struct outcome *b) {
    return a->rc == b->rc &&
           (a->rc != CSR_OK ||
            (a->kind == b->kind && a->bits == b->bits && strcmp(a->cn, b->cn) == 0 &&
             a->has_password == b->has_password && a->password_len == b->password_len));
}

/* Parses the input as fmt without and with EXPECTED_CN. The expected CN only adds a check: with
 * it, a CSR is accepted exactly when it is accepted without it and its CN is EXPECTED_CN in some
 * case. Returns the outcome without it. */
static struct outcome parse_both(const char *in, size_t len, enum csr_format fmt) {
    struct outcome any = parse(in, len, fmt, NULL), dev1 = parse(in, len, fmt, EXPECTED_CN);
    int match = any.rc == CSR_OK && strcasecmp(any.cn, EXPECTED_CN) == 0;

    if (dev1.rc == CSR_OK ? !match || !same(&any, &dev1)
                          : match || (any.rc == CSR_OK && dev1.rc != CSR_CN_MISMATCH))
        abort();
    return any;
}

/* The default policy leaves out Ed25519. With every key kind allowed, a CSR of another kind is
 * parsed as with the default policy, and one the default policy refuses for its Ed25519 key is
 * accepted or refused for its own reasons (a small-order point among them). */
static void check_all_kinds(const char *in, size_t len, const struct outcome *def) {
    struct csr_policy all;
    struct csr *c = NULL;
    char msg[256] = "";
    enum csr_err rc;

    csr_policy_default(&all);
    all.allow |= CSR_KEY_ED25519;
    rc = csr_parse(in, len, CSR_FMT_DER, &all, NULL, &c, msg, sizeof(msg));
    if (rc != CSR_OK ? c != NULL || msg[0] == '\0' : c == NULL)
        abort();
    if (rc == CSR_OK && c->kind == CSR_KEY_ED25519 && def->rc != CSR_KEY_UNSUPPORTED)
        abort();
    if (rc == CSR_OK && c->kind != CSR_KEY_ED25519 &&
        (def->rc != CSR_OK || c->kind != def->kind || c->bits != def->bits))
        abort();
    if (def->rc != CSR_KEY_UNSUPPORTED && rc != def->rc)
        abort();
    csr_free(c);
}

/* The DER re-wrapped as base64 and PEM must parse as the DER did, when it still fits. */
static void check_rewrapped(const uint8_t *der, size_t size, const struct outcome *want) {
    static const char head[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
    static const char tail[] = "-----END CERTIFICATE REQUEST-----\n";
    char *b64 = b64_encode(der, size), *pem;
    size_t blen, plen = 0;
    struct outcome got;

    if (b64 == NULL)
        abort();
    blen = strlen(b64);
    if (blen <= CSR_INPUT_MAX) {
        got = parse(b64, blen, CSR_FMT_TEXT, NULL);
        if (!same(&got, want))
            abort();
    }
    /* PEM bodies are folded at 64 columns. */
    pem = malloc(sizeof(head) + blen + blen / 64 + 1 + sizeof(tail));
    if (pem == NULL)
        abort();
    memcpy(pem, head, sizeof(head) - 1);
    plen = sizeof(head) - 1;
    for (size_t i = 0; i < blen; i += 64) {
        size_t n = blen - i < 64 ? blen - i : 64;

        memcpy(pem + plen, b64 + i, n);
        plen += n;
        pem[plen++] = '\n';
    }
    memcpy(pem + plen, tail, sizeof(tail) - 1);
    plen += sizeof(tail) - 1;
    if (plen <= CSR_INPUT_MAX) {
        got = parse(pem, plen, CSR_FMT_TEXT, NULL);
        if (!same(&got, want))
            abort();
    }
    free(pem);
    free(b64);
}

/* Whether the request carries key as OpenSSL writes it, and key is one csr_parse takes among the
 * valid keys the policy allows: an EC point not in the hybrid form, on a named curve rather than
 * one given by explicit parameters (RFC 5480), an RSA exponent odd, above 2^16 and below 2^256
 * (FIPS 186-5). OpenSSL decodes other encodings (bytes after an RSA key, another algorithm
 * identifier for RSA, explicit parameters equal to a named curve's), which csr_parse refuses,
 * since the key is copied into the certificate as it was sent. */
static int as_certificates_carry(X509_REQ *req, const EVP_PKEY *key) {
    unsigned char *sent = NULL, *own = NULL;
    int sent_len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &sent);
    int own_len = i2d_PUBKEY(key, &own);
    int ok = sent_len > 0 && sent_len == own_len && memcmp(sent, own, (size_t)own_len) == 0;
    char form[16] = "", encoding[16] = "";
    BIGNUM *e = NULL;

    if (ok && EVP_PKEY_is_a(key, "EC"))
        ok = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form,
                                            sizeof(form), NULL) == 1 &&
             strcmp(form, "hybrid") != 0 &&
             EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                            sizeof(encoding), NULL) == 1 &&
             strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
    if (ok && EVP_PKEY_is_a(key, "RSA"))
        ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(e) &&
             BN_num_bits(e) > 16 && BN_num_bits(e) <= 256;
    BN_free(e);
    OPENSSL_free(sent);
    OPENSSL_free(own);
    return ok;
}

/* What csr_parse accepts as DER, OpenSSL decodes as a whole X509_REQ to the same key, with a
 * verifying signature. What OpenSSL decodes as a whole, with a verifying signature by a valid key
 * the policy allows, carried as a certificate may carry it, csr_parse does not refuse as
 * malformed, of an unknown key or badly signed. (OpenSSL 3.0 also decodes keys that are not
 * valid, like the point at infinity, with which a signature is easy to forge; csr_parse refuses
 * those.) */
static void check_openssl(const uint8_t *der, size_t size) {
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)size);
    EVP_PKEY *key = req && p == der + size ? X509_REQ_get0_pubkey(req) : NULL;
    enum csr_key_kind kind;
    int bits;
    char msg[256];
    int theirs = key != NULL && X509_REQ_get_version(req) == X509_REQ_VERSION_1 &&
                 csr_key_check(key, NULL, &kind, &bits, msg, sizeof(msg)) == CSR_OK &&
                 X509_REQ_verify(req, key) == 1;
    EVP_PKEY_CTX *check = theirs ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    int valid = check && EVP_PKEY_public_check(check) == 1 && as_certificates_carry(req, key);
    struct csr *c = NULL;
    enum csr_err rc =
        csr_parse((const char *)der, size, CSR_FMT_DER, NULL, NULL, &c, msg, sizeof(msg));

    if (rc == CSR_OK && (!theirs || EVP_PKEY_eq(key, c->key) != 1))
        abort();
    if (valid && (rc == CSR_BAD_DER || rc == CSR_KEY_UNSUPPORTED || rc == CSR_CURVE_UNSUPPORTED ||
                  rc == CSR_BAD_SIGNATURE))
        abort();
    EVP_PKEY_CTX_free(check);
    csr_free(c);
    X509_REQ_free(req);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A copy of exactly size bytes: csr_parse is given a length and must not read past it. */
    char *in = calloc(1, size > 0 ? size : 1);
    struct outcome o;

    if (in == NULL)
        abort();
    if (size > 0)
        memcpy(in, data, size);

    parse_both(in, size, CSR_FMT_TEXT);
    o = parse_both(in, size, CSR_FMT_DER);
    check_all_kinds(in, size, &o);
    if (size > 0)
        check_openssl(data, size);
    if (o.rc == CSR_OK)
        check_rewrapped(data, size, &o);
    free(in);
    return 0;
}
