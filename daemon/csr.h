/* PKCS#10 certificate signing requests from devices: decoding, proof of possession, the subject
 * name and the key policy. A CSR that passes csr_parse may be handed to ca_issue.
 *
 * Every refusal has its own csr_err and a message naming what was wrong; messages quote nothing
 * secret (the challengePassword never appears in them). */
#ifndef PROVD_CSR_H
#define PROVD_CSR_H

#include <stddef.h>

#include <openssl/x509.h>

#include "spki.h"

/* Largest input csr_parse accepts, in bytes of its text (or DER). An RSA-4096 CSR is ~1.7 KB of
 * base64; anything near this cap is not a CSR a device should send. */
#define CSR_INPUT_MAX (16 * 1024)

/* Longest subject CN accepted, in bytes: the longest registration ID (and device ID). */
#define CSR_CN_MAX 128

enum csr_err {
    CSR_OK = 0,
    CSR_EMPTY,             /* no input at all */
    CSR_TOO_LARGE,         /* more than CSR_INPUT_MAX bytes */
    CSR_BAD_BASE64,        /* not valid base64 (strict: no whitespace; lenient: whitespace ok) */
    CSR_BAD_PEM,           /* no CERTIFICATE REQUEST block could be read */
    CSR_BAD_DER,           /* not a DER PKCS#10 request: truncated, trailing data, bad version */
    CSR_KEY_UNSUPPORTED,   /* a key algorithm the policy does not allow (DSA, Ed25519, ...), or
                            * a malformed key, or one with which a signature proves nothing */
    CSR_CURVE_UNSUPPORTED, /* an EC key on a curve the policy does not allow */
    CSR_KEY_TOO_SMALL,     /* an RSA key shorter than the policy's minimum */
    CSR_KEY_TOO_LARGE,     /* an RSA key longer than the policy's maximum */
    CSR_BAD_SIGNATURE,     /* the self-signature does not verify: no proof of possession */
    CSR_NO_CN,             /* the subject has no common name, or more than one */
    CSR_BAD_CN,            /* the common name is empty, too long or not text */
    CSR_CN_MISMATCH,       /* the common name is not the expected name */
    CSR_BAD_ATTRIBUTE,     /* a malformed or repeated challengePassword attribute */
};

/* A short fixed description of e ("the CSR's signature does not verify", ...). */
const char *csr_strerror(enum csr_err e);

/* How the input of csr_parse is encoded. */
enum csr_format {
    /* Base64 of the DER, line breaks and spaces allowed; or, when it starts with "-----BEGIN",
     * PEM (CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST): the DPS "csr" member, EST bodies. */
    CSR_FMT_TEXT,
    CSR_FMT_DER, /* the DER itself */
};

/* Key algorithms a policy may allow (a bit mask). */
enum csr_key_kind {
    CSR_KEY_P256 = 1 << 0,
    CSR_KEY_P384 = 1 << 1,
    CSR_KEY_RSA = 1 << 2, /* between rsa_min_bits and rsa_max_bits */
    CSR_KEY_ED25519 = 1 << 3,
};

struct csr_policy {
    unsigned allow;   /* csr_key_kind bits */
    int rsa_min_bits; /* default 2048 */
    int rsa_max_bits; /* default 4096: larger keys cost the server time to verify for nothing */
};

/* The default policy: P-256, P-384 and RSA from 2048 to 4096 bits. */
void csr_policy_default(struct csr_policy *p);

/* Sets p->allow from a comma-separated list of "p256", "p384", "rsa" and "ed25519" (e.g. from
 * the settings file); the RSA bounds are left as they are. Returns 0, or -1 with the reason in
 * err (p unchanged). */
int csr_policy_parse(const char *list, struct csr_policy *p, char *err, size_t errlen);

/* A CSR that passed every check. */
struct csr {
    struct csr_der *der;      /* the request as decoded (csr.c's own) */
    const X509_NAME *subject; /* its subject, in der */
    const SPKI_DER *spki;     /* its public key as encoded, in der; NULL after csr_set_key */
    EVP_PKEY *key;            /* the requester's public key */
    enum csr_key_kind kind;   /* its algorithm */
    int bits;                 /* its size: 256, 384, the RSA modulus bits, or 256 for Ed25519 */
    char cn[CSR_CN_MAX + 1];  /* the subject's common name, as sent */
    char *challenge_password; /* the challengePassword attribute (NUL-terminated), or NULL */
    size_t challenge_password_len;
};

/* Decodes the len bytes of in as fmt, then checks in this order: a DER PKCS#10 request of
 * version 1 and nothing after it; a key p allows (NULL: the default policy), encoded as a
 * certificate may carry it, and valid: for RSA an odd modulus and an odd exponent above 2^16 and
 * below 2^256, for EC a point on the curve, for Ed25519 a point not of small order; the request's
 * signature with its own key (proof of possession); exactly one subject CN of 1 to CSR_CN_MAX
 * bytes of UTF-8 without NUL; when expected_cn is not NULL, that the CN equals it ignoring ASCII
 * case (registration IDs are case-insensitive); at most one single-valued challengePassword.
 *
 * On success returns CSR_OK and sets *out to a CSR the caller frees with csr_free. Otherwise
 * returns the first check that failed, sets *out to NULL and writes a message for the device or
 * the operator into msg. */
enum csr_err csr_parse(const char *in, size_t len, enum csr_format fmt, const struct csr_policy *p,
                       const char *expected_cn, struct csr **out, char *msg, size_t msglen);

/* Finds the algorithm and size of key and checks them against p (NULL: the default policy):
 * the key check of csr_parse, also used for the keys of imported CAs. Returns CSR_OK with *kind
 * and *bits set, or CSR_KEY_UNSUPPORTED, CSR_CURVE_UNSUPPORTED, CSR_KEY_TOO_SMALL or
 * CSR_KEY_TOO_LARGE with a message in msg. */
enum csr_err csr_key_check(const EVP_PKEY *key, const struct csr_policy *p, enum csr_key_kind *kind,
                           int *bits, char *msg, size_t msglen);

/* Whether the subjectAltName c requests (in its extensionRequest attribute) is cert's, byte
 * for byte, or c requests none: RFC 7030 section 4.2.2 wants a re-enrollment's to be identical
 * to the current certificate's. A request whose extensionRequest cannot be read, has more than
 * one value or asks for more than one subjectAltName does not match.
 * (provd sets the certificate's names itself; this only keeps a request from asking for
 * others.) */
int csr_san_matches(const struct csr *c, const X509 *cert);

/* Replaces the key of c with key (owned by c from now on: a public key, made by the caller),
 * for a certificate of a key other than the one that signed the request (EST serverkeygen). */
void csr_set_key(struct csr *c, EVP_PKEY *key);

/* Frees c, wiping its challengePassword. NULL is ignored. */
void csr_free(struct csr *c);

/* The name of a key kind: "P-256", "P-384", "RSA", "Ed25519". */
const char *csr_key_kind_name(enum csr_key_kind k);

#endif
