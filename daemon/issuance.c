/* Device certificates issued at registration. See issuance.h. */
#include "issuance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Indexed by enum csr_err: every refusal has its own code (docs/errors.md). */
static const int csr_codes[] = {
    [CSR_EMPTY] = 400020,
    [CSR_TOO_LARGE] = 400021,
    [CSR_BAD_BASE64] = 400022,
    [CSR_BAD_PEM] = 400023,
    [CSR_BAD_DER] = 400024,
    [CSR_KEY_UNSUPPORTED] = 400025,
    [CSR_CURVE_UNSUPPORTED] = 400026,
    [CSR_KEY_TOO_SMALL] = 400027,
    [CSR_KEY_TOO_LARGE] = 400028,
    [CSR_BAD_SIGNATURE] = 400029,
    [CSR_NO_CN] = 400030,
    [CSR_BAD_CN] = 400031,
    [CSR_CN_MISMATCH] = 400032,
    [CSR_BAD_ATTRIBUTE] = 400033,
};

int issuance_csr_code(enum csr_err e) {
    if (e <= CSR_OK || (size_t)e >= sizeof(csr_codes) / sizeof(csr_codes[0]) || !csr_codes[e])
        return 400001;
    return csr_codes[e];
}

int issuance_issue(const struct ca *ca, const struct csr *csr, const char *regid,
                   const char *device_id, int days, struct issuance *out, char *err,
                   size_t errlen) {
    struct ca_cert_info info;
    struct store_cert *r = &out->rec;
    unsigned char *der = NULL;
    int len;

    memset(out, 0, sizeof(*out));
    if (!(out->cert = ca_issue_pub(ca, csr->key, csr->spki, device_id, days, err, errlen)))
        return -1;
    /* Encoded once, for both the thumbprint and the chain. */
    int ok = (len = i2d_X509(out->cert, &der)) > 0 &&
             ca_cert_info_der(out->cert, der, (size_t)len, &info) == 0;
    if (ok && ca_chain_b64(ca, der, (size_t)len, &out->chain, &out->nchain) != 0) {
        ca_cert_info_free(&info);
        ok = 0;
    }
    OPENSSL_free(der);
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        issuance_clear(out);
        return -1;
    }
    /* The info's strings move into the record. */
    r->subject = info.subject;
    r->issuer = info.issuer;
    memcpy(r->not_before, info.not_before, sizeof(r->not_before));
    memcpy(r->not_after, info.not_after, sizeof(r->not_after));
    if (!(r->serial = strdup(info.serial)) || !(r->thumbprint = strdup(info.thumbprint)) ||
        !(r->registration_id = strdup(regid)) || !(r->device_id = strdup(device_id))) {
        snprintf(err, errlen, "out of memory");
        issuance_clear(out);
        return -1;
    }
    return 0;
}

int issuance_server_key(struct csr *csr, EVP_PKEY **key, char *err, size_t errlen) {
    unsigned char *pub = NULL;
    const unsigned char *p;
    EVP_PKEY *pubkey = NULL;
    int n = 0;

    /* The request keeps only the public half: a copy made from its encoding. */
    if (!(*key = EVP_EC_gen("P-256")) || (n = i2d_PUBKEY(*key, &pub)) <= 0 || !(p = pub) ||
        !(pubkey = d2i_PUBKEY(NULL, &p, n))) {
        snprintf(err, errlen, "the key pair could not be made");
        ERR_clear_error();
        EVP_PKEY_free(*key);
        *key = NULL;
        OPENSSL_free(pub);
        return -1;
    }
    OPENSSL_free(pub);
    csr_set_key(csr, pubkey);
    csr->kind = CSR_KEY_P256;
    csr->bits = 256;
    return 0;
}

void issuance_clear(struct issuance *is) {
    X509_free(is->cert);
    ca_strv_free(is->chain, is->nchain);
    store_cert_clear(&is->rec);
    memset(is, 0, sizeof(*is));
}
