/* PKCS#10 requests: decode, then check key policy, proof of possession, name and attributes. */
#include "csr.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "base64.h"
#include "nopass.h"

/* A PKCS#10 request (RFC 2986) as OpenSSL's X509_REQ describes it, but with the public key left
 * encoded: decoding an X509_REQ decodes the key through OpenSSL 3.0's decoder set-up, which cost
 * more than the rest of an issuance (spki.c). The encoding of the info is kept as received, since
 * the signature covers it. */
typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    SPKI_DER *spki;
    STACK_OF(X509_ATTRIBUTE) * attributes;
} CSR_INFO;

struct csr_der {
    CSR_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
};
typedef struct csr_der CSR_DER;

/* Their ASN.1 items, defined at the end of the file. */
static const ASN1_ITEM *CSR_INFO_it(void);
static const ASN1_ITEM *CSR_DER_it(void);

/* PKCS#9 upper bound of a challengePassword. */
#define CHALLENGE_MAX 255

/* Characters a common name may have to be quoted in a message. */
#define PRINTABLE                                                                                  \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -._:+=,/()@!#$%&*?'"

static const char *const messages[] = {
    [CSR_OK] = "ok",
    [CSR_EMPTY] = "the CSR is empty",
    [CSR_TOO_LARGE] = "the CSR is too large",
    [CSR_BAD_BASE64] = "the CSR is not valid base64",
    [CSR_BAD_PEM] = "the CSR is not a PEM certificate request",
    [CSR_BAD_DER] = "the CSR is not a DER PKCS#10 certificate request",
    [CSR_KEY_UNSUPPORTED] = "the CSR's key is malformed or not allowed",
    [CSR_CURVE_UNSUPPORTED] = "the CSR's elliptic curve is not allowed",
    [CSR_KEY_TOO_SMALL] = "the CSR's RSA key is too small",
    [CSR_KEY_TOO_LARGE] = "the CSR's RSA key is too large",
    [CSR_BAD_SIGNATURE] = "the CSR's signature does not verify",
    [CSR_NO_CN] = "the CSR's subject does not have exactly one common name",
    [CSR_BAD_CN] = "the CSR's common name is not acceptable",
    [CSR_CN_MISMATCH] = "the CSR's common name is not the expected name",
    [CSR_BAD_ATTRIBUTE] = "the CSR's challengePassword attribute is malformed",
};

const char *csr_strerror(enum csr_err e) {
    if ((size_t)e >= sizeof(messages) / sizeof(messages[0]) || !messages[e])
        return "unknown CSR error";
    return messages[e];
}

static const struct {
    enum csr_key_kind kind;
    const char *name;  /* as messages show it */
    const char *token; /* as csr_policy_parse reads it */
} kinds[] = {
    {CSR_KEY_P256, "P-256", "p256"},
    {CSR_KEY_P384, "P-384", "p384"},
    {CSR_KEY_RSA, "RSA", "rsa"},
    {CSR_KEY_ED25519, "Ed25519", "ed25519"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *csr_key_kind_name(enum csr_key_kind k) {
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "unknown";
}

void csr_policy_default(struct csr_policy *p) {
    p->allow = CSR_KEY_P256 | CSR_KEY_P384 | CSR_KEY_RSA;
    p->rsa_min_bits = 2048;
    p->rsa_max_bits = 4096;
}

int csr_policy_parse(const char *list, struct csr_policy *p, char *err, size_t errlen) {
    unsigned allow = 0;
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t i = 0, a = 0, b = n;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        for (; i < NKINDS; i++)
            if (strlen(kinds[i].token) == b - a && strncmp(s + a, kinds[i].token, b - a) == 0)
                break;
        if (i == NKINDS) {
            snprintf(err, errlen, "unknown key type \"%.*s\" (known: p256, p384, rsa, ed25519)",
                     (int)(b - a > 32 ? 32 : b - a), s + a);
            return -1;
        }
        allow |= (unsigned)kinds[i].kind;
        s += n;
        if (*s == ',')
            s++;
    }
    if (allow == 0) {
        snprintf(err, errlen, "the list of key types is empty");
        return -1;
    }
    p->allow = allow;
    return 0;
}

void csr_free(struct csr *c) {
    if (!c)
        return;
    if (c->challenge_password)
        OPENSSL_clear_free(c->challenge_password, c->challenge_password_len + 1);
    EVP_PKEY_free(c->key);
    ASN1_item_free((ASN1_VALUE *)c->der, ASN1_ITEM_rptr(CSR_DER));
    free(c);
}

void csr_set_key(struct csr *c, EVP_PKEY *key) {
    EVP_PKEY_free(c->key);
    c->key = key;
    c->spki = NULL;
}

__attribute__((format(printf, 4, 5))) static enum csr_err
refuse(enum csr_err e, char *msg, size_t msglen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return e;
}

/* Whether in (len bytes) is PEM: "-----BEGIN" after any white space. */
static int is_pem(const char *in, size_t len) {
    static const char begin[] = "-----BEGIN";
    size_t i = 0;
    while (i < len && isspace((unsigned char)in[i]))
        i++;
    return len - i >= sizeof(begin) - 1 && memcmp(in + i, begin, sizeof(begin) - 1) == 0;
}

/* PEM (in, len bytes) into DER: *der allocated, to be freed with OPENSSL_free. A block with
 * encryption headers is refused. */
static enum csr_err pem_to_der(const char *in, size_t len, unsigned char **der, size_t *derlen,
                               char *msg, size_t msglen) {
    BIO *bio = BIO_new_mem_buf(in, (int)len);
    char *name = NULL;
    long n = 0;
    int ok = bio &&
             PEM_bytes_read_bio(der, &n, &name, PEM_STRING_X509_REQ, bio, pem_no_passphrase, NULL);
    BIO_free(bio);
    OPENSSL_free(name);
    if (!ok)
        return refuse(CSR_BAD_PEM, msg, msglen,
                      "the CSR has no readable PEM CERTIFICATE REQUEST block");
    *derlen = (size_t)n;
    return CSR_OK;
}

/* Turns the input into DER. *der is then either borrowed from in (CSR_FMT_DER) or allocated;
 * *owned says which free function it needs (1: b64_free, 2: OPENSSL_free). */
static enum csr_err to_der(const char *in, size_t len, enum csr_format fmt, unsigned char **der,
                           size_t *derlen, int *owned, char *msg, size_t msglen) {
    const char *why = NULL;
    enum csr_err e;
    *der = NULL;
    *derlen = 0;
    *owned = 0;
    if (fmt == CSR_FMT_DER) {
        *der = (unsigned char *)in;
        *derlen = len;
        return CSR_OK;
    }
    /* PEM where base64 is expected: some clients send it. */
    if (is_pem(in, len)) {
        if ((e = pem_to_der(in, len, der, derlen, msg, msglen)) == CSR_OK)
            *owned = 2;
        return e;
    }
    /* Line breaks too: what base64 tools write by default, and EST clients send. */
    if (b64_decode_lenient(in, len, der, derlen, &why) != 0)
        return refuse(CSR_BAD_BASE64, msg, msglen, "the CSR is not valid base64: %s",
                      why ? why : "malformed");
    *owned = 1;
    return CSR_OK;
}

/* The key's algorithm must be rsaEncryption, id-ecPublicKey or id-Ed25519, and its parameters
 * must have the one form each has (RFC 3279, RFC 5480, RFC 8410), since they are copied into the
 * certificate as they are: for RSA NULL (or none), for EC a named curve, for Ed25519 none. OpenSSL
 * decodes an RSA key whatever they are, and an EC key with explicit parameters equal to a named
 * curve's as that curve. */
static enum csr_err check_key_params(const SPKI_DER *s, char *msg, size_t msglen) {
    const ASN1_OBJECT *oid = NULL;
    const void *param = NULL;
    int ptype = 0;
    X509_ALGOR_get0(&oid, &ptype, &param, s->alg);
    switch (OBJ_obj2nid(oid)) {
    case NID_rsaEncryption:
        if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
            return refuse(CSR_KEY_UNSUPPORTED, msg, msglen,
                          "RSA key whose algorithm parameters are not NULL");
        break;
    case NID_X9_62_id_ecPublicKey:
        if (ptype != V_ASN1_OBJECT)
            return refuse(CSR_CURVE_UNSUPPORTED, msg, msglen,
                          "EC key with explicit curve parameters; only named curves are allowed");
        break;
    case NID_ED25519:
        if (ptype != V_ASN1_UNDEF)
            return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "Ed25519 key with parameters");
        break;
    default: {
        /* Only the identifiers above: OpenSSL decodes others as keys it knows (2.5.8.1.1 as RSA),
         * and the certificate would carry the identifier as it was sent. */
        char text[64] = "";
        if (OBJ_obj2txt(text, sizeof(text), oid, 1) <= 0)
            snprintf(text, sizeof(text), "(unreadable)");
        return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "key algorithm %s is not allowed here",
                      text);
    }
    }
    return CSR_OK;
}

enum csr_err csr_key_check(const EVP_PKEY *key, const struct csr_policy *p, enum csr_key_kind *kind,
                           int *bits, char *msg, size_t msglen) {
    struct csr_policy def;
    if (!p) {
        csr_policy_default(&def);
        p = &def;
    }
    *kind = 0;
    *bits = EVP_PKEY_get_bits(key);
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[80] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen))
            return refuse(CSR_CURVE_UNSUPPORTED, msg, msglen,
                          "EC key with explicit curve parameters; only named curves are allowed");
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            *kind = CSR_KEY_P256;
        else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            *kind = CSR_KEY_P384;
        if (*kind == 0 || !(p->allow & *kind))
            return refuse(CSR_CURVE_UNSUPPORTED, msg, msglen,
                          "EC key on curve %s, which is not allowed here", group);
        return CSR_OK;
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        *kind = CSR_KEY_RSA;
        if (!(p->allow & CSR_KEY_RSA))
            return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "RSA keys are not allowed here");
        if (*bits < p->rsa_min_bits)
            return refuse(CSR_KEY_TOO_SMALL, msg, msglen,
                          "RSA key of %d bits; at least %d bits are required", *bits,
                          p->rsa_min_bits);
        if (*bits > p->rsa_max_bits)
            return refuse(CSR_KEY_TOO_LARGE, msg, msglen,
                          "RSA key of %d bits; at most %d bits are accepted", *bits,
                          p->rsa_max_bits);
        return CSR_OK;
    }
    if (EVP_PKEY_is_a(key, "ED25519") && (p->allow & CSR_KEY_ED25519)) {
        *kind = CSR_KEY_ED25519;
        return CSR_OK;
    }
    const char *type = EVP_PKEY_get0_type_name(key);
    return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "%s keys are not allowed here",
                  type ? type : "this kind of");
}

/* The checks of SP 800-89's partial public-key validation of RSA (section 5.3.3) that cost
 * nothing: an odd modulus, and an odd exponent above 2^16 and below 2^256, as FIPS 186-5 and
 * OpenSSL's FIPS provider require (its default provider takes any odd exponent above 1). A small
 * exponent is a legacy choice no device needs, and with e = 1 the "signature" of a request is its
 * padded digest, which anyone can write. */
static enum csr_err check_rsa_numbers(const EVP_PKEY *key, char *msg, size_t msglen) {
    BIGNUM *n = NULL, *e = NULL;
    int got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
              EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    int n_ok = got && BN_is_odd(n);
    int e_ok = got && BN_is_odd(e) && BN_num_bits(e) > 16 && BN_num_bits(e) <= 256;
    BN_free(n);
    BN_free(e);
    if (!n_ok)
        return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "RSA key whose modulus is even");
    if (!e_ok)
        return refuse(CSR_KEY_UNSUPPORTED, msg, msglen,
                      "RSA key whose public exponent is not odd, above 2^16 and below 2^256");
    return CSR_OK;
}

/* The Ed25519 points of order 1, 2, 4 and 8, as libsodium lists their encodings: y = 0, 1 and
 * p - 1, the two y of the points of order 8, and p and p + 1 (0 and 1 unreduced). They are
 * compared without the sign bit of x (byte 31's top bit), which gives the other point of each y.
 * With such a key, R of small order and S = 0 make a signature of many messages (of every one
 * with the identity), and OpenSSL 3.0 verifies it. */
static const unsigned char ed25519_small_order[][32] = {
    {0x00}, /* y = 0: order 4 */
    {0x01}, /* y = 1: the identity */
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

static enum csr_err check_ed25519_point(const EVP_PKEY *key, char *msg, size_t msglen) {
    unsigned char pub[32];
    size_t len = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != sizeof(pub))
        return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "Ed25519 key that cannot be read");
    pub[31] &= 0x7f;
    for (size_t i = 0; i < sizeof(ed25519_small_order) / sizeof(ed25519_small_order[0]); i++)
        if (memcmp(pub, ed25519_small_order[i], sizeof(pub)) == 0)
            return refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "Ed25519 key of small order");
    return CSR_OK;
}

/* The checks of a key's value that cost next to nothing, made before its signature is verified:
 * with these keys a signature proves nothing. An EC point was checked to be on its curve as it
 * was decoded (spki.c), which for P-256 and P-384 (cofactor 1) makes it a valid public key.
 * OpenSSL's full check of an RSA modulus (no prime, no power of one, no small factor) is left
 * out: its primality test of the modulus costs milliseconds, many times the rest of an
 * issuance, for any authenticated device to make provd spend, against keys only their own holder
 * could have chosen. */
static enum csr_err check_key_value(const struct csr *c, char *msg, size_t msglen) {
    if (c->kind == CSR_KEY_RSA)
        return check_rsa_numbers(c->key, msg, msglen);
    if (c->kind == CSR_KEY_ED25519)
        return check_ed25519_point(c->key, msg, msglen);
    return CSR_OK;
}

/* Converts an ASN.1 string to NUL-terminated UTF-8 of 1 to max bytes without NUL inside.
 * Returns the length, or -1. *out is freed with OPENSSL_clear_free(*out, len + 1). */
static int string_utf8(const ASN1_STRING *s, size_t max, unsigned char **out) {
    int n = ASN1_STRING_to_UTF8(out, s);
    if (n < 0) {
        *out = NULL;
        return -1;
    }
    if (n == 0 || (size_t)n > max || memchr(*out, '\0', (size_t)n)) {
        OPENSSL_clear_free(*out, (size_t)n + 1);
        *out = NULL;
        return -1;
    }
    return n;
}

/* Registration IDs are ASCII and compared without case; this must not depend on the locale. */
static int ascii_caseeq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static enum csr_err check_cn(struct csr *c, const char *expected, char *msg, size_t msglen) {
    const X509_NAME *name = c->subject;
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return refuse(CSR_NO_CN, msg, msglen,
                      i < 0 ? "the CSR's subject has no common name (CN)"
                            : "the CSR's subject has more than one common name (CN)");
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = string_utf8(s, CSR_CN_MAX, &utf8);
    if (n < 0)
        return refuse(CSR_BAD_CN, msg, msglen,
                      "the CSR's common name must be 1 to %d bytes of text", CSR_CN_MAX);
    memcpy(c->cn, utf8, (size_t)n + 1);
    OPENSSL_free(utf8);
    if (expected && !ascii_caseeq(c->cn, expected)) {
        /* The name is quoted back only when it is plain text, so a hostile CSR cannot put
         * control characters into logs and answers. */
        if (strspn(c->cn, PRINTABLE) == (size_t)n)
            return refuse(CSR_CN_MISMATCH, msg, msglen,
                          "the CSR's common name \"%s\" is not \"%s\"", c->cn, expected);
        return refuse(CSR_CN_MISMATCH, msg, msglen, "the CSR's common name is not \"%s\"",
                      expected);
    }
    return CSR_OK;
}

int csr_san_matches(const struct csr *c, const X509 *cert) {
    const STACK_OF(X509_ATTRIBUTE) *attrs = c->der->info->attributes;
    int i = X509at_get_attr_by_NID(attrs, NID_ext_req, -1);
    if (i < 0)
        return 1;
    X509_ATTRIBUTE *attr = X509at_get_attr(attrs, i);
    ASN1_TYPE *t = X509_ATTRIBUTE_count(attr) == 1 ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
    if (X509at_get_attr_by_NID(attrs, NID_ext_req, i) >= 0 || !t ||
        ASN1_TYPE_get(t) != V_ASN1_SEQUENCE)
        return 0;
    const unsigned char *p = t->value.sequence->data;
    STACK_OF(X509_EXTENSION) *exts = (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(
        NULL, &p, t->value.sequence->length, ASN1_ITEM_rptr(X509_EXTENSIONS));
    /* One subjectAltName at most. */
    int same = exts != NULL;
    int asked = same ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
    if (asked >= 0) {
        int has = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
        same = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, asked) < 0 && has >= 0 &&
               ASN1_STRING_cmp(X509_EXTENSION_get_data(X509v3_get_ext(exts, asked)),
                               X509_EXTENSION_get_data(X509_get_ext(cert, has))) == 0;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return same;
}

static enum csr_err get_challenge(struct csr *c, char *msg, size_t msglen) {
    const STACK_OF(X509_ATTRIBUTE) *attrs = c->der->info->attributes;
    int nid = NID_pkcs9_challengePassword;
    int i = X509at_get_attr_by_NID(attrs, nid, -1);
    if (i < 0)
        return CSR_OK;
    if (X509at_get_attr_by_NID(attrs, nid, i) >= 0)
        return refuse(CSR_BAD_ATTRIBUTE, msg, msglen,
                      "the CSR has more than one challengePassword attribute");
    X509_ATTRIBUTE *attr = X509at_get_attr(attrs, i);
    if (X509_ATTRIBUTE_count(attr) != 1)
        return refuse(CSR_BAD_ATTRIBUTE, msg, msglen,
                      "the CSR's challengePassword must have exactly one value");
    ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, 0);
    int type = t ? ASN1_TYPE_get(t) : -1;
    unsigned char *utf8 = NULL;
    int n = -1;
    /* PKCS#9 makes it a DirectoryString; these are the forms clients actually send. */
    if (type == V_ASN1_PRINTABLESTRING || type == V_ASN1_UTF8STRING || type == V_ASN1_IA5STRING ||
        type == V_ASN1_T61STRING || type == V_ASN1_BMPSTRING || type == V_ASN1_UNIVERSALSTRING)
        n = string_utf8(t->value.asn1_string, CHALLENGE_MAX, &utf8);
    if (n < 0)
        return refuse(CSR_BAD_ATTRIBUTE, msg, msglen,
                      "the CSR's challengePassword must be 1 to %d bytes of text", CHALLENGE_MAX);
    c->challenge_password = (char *)utf8;
    c->challenge_password_len = (size_t)n;
    return CSR_OK;
}

enum csr_err csr_parse(const char *in, size_t len, enum csr_format fmt, const struct csr_policy *p,
                       const char *expected_cn, struct csr **out, char *msg, size_t msglen) {
    struct csr *c = NULL;
    unsigned char *der = NULL;
    size_t derlen = 0;
    int owned = 0;
    enum csr_err e;

    *out = NULL;
    if (len == 0 || !in) {
        e = refuse(CSR_EMPTY, msg, msglen, "the CSR is empty");
        goto out;
    }
    if (len > CSR_INPUT_MAX) {
        e = refuse(CSR_TOO_LARGE, msg, msglen, "the CSR is %zu bytes; at most %d are accepted", len,
                   CSR_INPUT_MAX);
        goto out;
    }
    if ((e = to_der(in, len, fmt, &der, &derlen, &owned, msg, msglen)) != CSR_OK)
        goto out;
    if (derlen == 0) {
        e = refuse(CSR_EMPTY, msg, msglen, "the CSR is empty");
        goto out;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        e = refuse(CSR_BAD_DER, msg, msglen, "out of memory");
        goto out;
    }
    const unsigned char *q = der;
    if (derlen > (size_t)LONG_MAX ||
        !(c->der = (CSR_DER *)ASN1_item_d2i(NULL, &q, (long)derlen, ASN1_ITEM_rptr(CSR_DER)))) {
        e = refuse(CSR_BAD_DER, msg, msglen,
                   "the CSR is not a PKCS#10 certificate request (malformed or truncated DER)");
        goto out;
    }
    if (q != der + derlen) {
        e = refuse(CSR_BAD_DER, msg, msglen, "the CSR has %zu bytes after the request",
                   (size_t)(der + derlen - q));
        goto out;
    }
    const CSR_INFO *info = c->der->info;
    if (ASN1_INTEGER_get(info->version) != X509_REQ_VERSION_1) {
        e = refuse(CSR_BAD_DER, msg, msglen, "the CSR's version is not 1 (PKCS#10 v1.7)");
        goto out;
    }
    c->subject = info->subject;
    c->spki = info->spki;
    if ((e = check_key_params(c->spki, msg, msglen)) != CSR_OK)
        goto out;
    if (!(c->key = spki_key(c->spki))) {
        e = refuse(CSR_KEY_UNSUPPORTED, msg, msglen, "the CSR's public key is malformed");
        goto out;
    }
    /* The key is checked before its signature is, so that no time goes into verifying with a
     * key that would be refused anyway. */
    if ((e = csr_key_check(c->key, p, &c->kind, &c->bits, msg, msglen)) != CSR_OK ||
        (e = check_key_value(c, msg, msglen)) != CSR_OK)
        goto out;
    if (ASN1_item_verify(ASN1_ITEM_rptr(CSR_INFO), c->der->sig_alg, c->der->signature, info,
                         c->key) != 1) {
        e = refuse(CSR_BAD_SIGNATURE, msg, msglen,
                   "the CSR's signature does not verify with its public key");
        goto out;
    }
    if ((e = check_cn(c, expected_cn, msg, msglen)) != CSR_OK ||
        (e = get_challenge(c, msg, msglen)) != CSR_OK)
        goto out;
    *out = c;
    c = NULL;
    snprintf(msg, msglen, "ok");
out:
    if (owned == 1)
        b64_free(der, derlen);
    else if (owned == 2)
        OPENSSL_free(der);
    csr_free(c);
    return e;
}

/* CSR_INFO and CSR_DER as OpenSSL's ASN.1 machinery decodes them, at the end of the file since the
 * template macros read best laid out as declarations, which clang-format would not leave. */
/* clang-format off */
ASN1_SEQUENCE_enc(CSR_INFO, enc, NULL) = {
    ASN1_SIMPLE(CSR_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(CSR_INFO, subject, X509_NAME),
    ASN1_SIMPLE(CSR_INFO, spki, SPKI_DER),
    /* Not optional in RFC 2986, but some clients leave it out; OpenSSL accepts that too. */
    ASN1_IMP_SET_OF_OPT(CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CSR_INFO, CSR_INFO)

ASN1_SEQUENCE(CSR_DER) = {
    ASN1_SIMPLE(CSR_DER, info, CSR_INFO),
    ASN1_SIMPLE(CSR_DER, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(CSR_DER, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_DER)
