/* Issuing device certificates from provd's CA: what the registration pipeline does with a CSR
 * at the decision of a registration, for every front end that carries one (the DPS "csr"
 * member, EST simpleenroll).
 *
 * The pipeline checks a CSR with csr_parse (the server's key policy, the registration ID as
 * the expected CN) once the device is authenticated; issuance_issue signs it for the assigned
 * device ID and fills what the device receives (the chain) and what the store keeps (struct
 * store_cert, written in the same group commit as the registration). */
#ifndef PROVD_ISSUANCE_H
#define PROVD_ISSUANCE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "ca.h"
#include "csr.h"
#include "store.h"

/* A certificate issued to a device. */
struct issuance {
    X509 *cert;    /* the device certificate */
    char **chain;  /* base64 DER: the certificate, the issuing CA, ..., the root */
    size_t nchain; /* 0 when nothing was issued */
    struct store_cert rec;
};

/* The error code (docs/errors.md, 400020 to 400033) of a CSR refusal e (not CSR_OK). */
int issuance_csr_code(enum csr_err e);

/* Issues a certificate for the key of csr to device_id (registered as regid), valid for days
 * (0: the CA's default), and fills out, which the caller releases with issuance_clear. Returns
 * 0, or -1 with the reason in err (nothing issued). */
int issuance_issue(const struct ca *ca, const struct csr *csr, const char *regid,
                   const char *device_id, int days, struct issuance *out, char *err, size_t errlen);

/* serverkeygen: makes a P-256 key pair for the device and puts its public half into csr in
 * place of the requester's key, so that the certificate is issued for it. Sets *key to the pair,
 * which the caller frees with EVP_PKEY_free (that wipes the private key). Returns 0, or -1 with
 * the reason in err. */
int issuance_server_key(struct csr *csr, EVP_PKEY **key, char *err, size_t errlen);

/* Releases what issuance_issue filled. */
void issuance_clear(struct issuance *is);

#endif
