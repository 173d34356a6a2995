/* provd's own public-key infrastructure: key pairs, the certificates of its CAs, of its TLS
 * listeners and of devices, built with OpenSSL's X.509 API, and the PEM files that hold them.
 *
 * Every certificate is made by pki_cert_new from a profile (root CA, issuing CA, TLS server,
 * device) that fixes its extensions; the wrappers below fill in the rest. */
#ifndef PROVD_PKI_H
#define PROVD_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "spki.h"

/* Key types provd generates for its CAs (`provd init --ca-key-type`). */
enum pki_key_type { PKI_KEY_P256, PKI_KEY_P384, PKI_KEY_RSA2048, PKI_KEY_RSA3072 };

/* Parses "p256", "p384", "rsa2048" or "rsa3072". Returns 0, or -1 for anything else. */
int pki_key_type_parse(const char *name, enum pki_key_type *out);

/* The name pki_key_type_parse accepts for t. */
const char *pki_key_type_name(enum pki_key_type t);

/* Generates a key pair of type t. Returns a key the caller frees with EVP_PKEY_free, or NULL
 * (logged). */
EVP_PKEY *pki_key_new_type(enum pki_key_type t);

/* Generates an ECDSA P-256 key pair: pki_key_new_type(PKI_KEY_P256). */
EVP_PKEY *pki_key_new(void);

/* The digest a certificate or CRL signed by signer uses: SHA-384 for a P-384 key (so the hash
 * is as strong as the curve), SHA-256 for everything else. */
const EVP_MD *pki_sign_md(const EVP_PKEY *signer);

/* Whether key is an RSA key (end-entity certificates for RSA keys also allow keyEncipherment). */
int pki_key_is_rsa(const EVP_PKEY *key);

/* The certificate profiles. Each fixes basicConstraints, keyUsage and extendedKeyUsage:
 *   ROOT     CA:TRUE (critical); keyCertSign, cRLSign (critical)
 *   ISSUING  CA:TRUE, pathlen:0 (critical); keyCertSign, cRLSign (critical)
 *   SERVER   CA:FALSE (critical); digitalSignature (critical); serverAuth
 *   DEVICE   CA:FALSE (critical); digitalSignature (critical); clientAuth
 * End-entity certificates for RSA keys add keyEncipherment. Every certificate carries a subject
 * key identifier and an authority key identifier (the issuer's subject key identifier). */
enum pki_profile { PKI_PROFILE_ROOT, PKI_PROFILE_ISSUING, PKI_PROFILE_SERVER, PKI_PROFILE_DEVICE };

struct pki_cert_spec {
    enum pki_profile profile;
    EVP_PKEY *key;            /* the subject's key (only its public half is used) */
    const SPKI_DER *spki;     /* or, when not NULL, the subject's key as a CSR encodes it */
    const char *cn;           /* the subject: CN = cn only */
    X509 *issuer;             /* NULL for a self-signed certificate */
    EVP_PKEY *issuer_key;     /* signs; the subject's key when issuer is NULL */
    const GENERAL_NAMES *san; /* subjectAltName, or NULL for none; not taken over */
    int64_t not_before;       /* Unix times of the validity */
    int64_t not_after;
};

/* Makes a version 3 certificate with a random 128-bit serial number (top bit set, so every serial
 * has 16 octets) from spec. Returns a certificate the caller frees with X509_free, or NULL
 * (logged). */
X509 *pki_cert_new(const struct pki_cert_spec *spec);

/* Makes a self-signed root CA certificate for key, subject CN = cn, valid from 5 minutes ago
 * (clock skew) for days. The caller frees the result with X509_free; NULL on failure (logged). */
X509 *pki_root_new(EVP_PKEY *key, const char *cn, int days);

/* Makes an issuing CA certificate (pathlen 0: it signs only end entities) for key, signed by
 * ca/ca_key, otherwise as pki_root_new. */
X509 *pki_issuing_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn, int days);

/* Makes a TLS server certificate for key signed by ca/ca_key, subject CN = cn, with subject
 * alternative names localhost, 127.0.0.1, ::1 and each of the n hostnames (IP addresses become
 * IP entries, anything else DNS entries), otherwise as pki_root_new. */
X509 *pki_server_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn,
                     char *const *hostnames, size_t n, int days);

/* Appends a subjectAltName entry of type GEN_DNS, GEN_URI or GEN_IPADD (value in text form) to
 * gens. The value is taken as one name: nothing in it is parsed as a separator. Returns 0, or -1
 * when value is not valid for type or memory ran out. */
int pki_san_add(GENERAL_NAMES *gens, int type, const char *value);

/* Writes key as unencrypted PKCS#8 PEM to path with mode 0600. Without replace an existing file
 * is an error; with replace the file is replaced atomically (a new file renamed over it).
 * Returns 0, or -1 (logged). */
int pki_write_key(const char *path, EVP_PKEY *key, int replace);

/* Writes the n certificates as PEM, in order, to path with mode 0644, replacing it atomically.
 * Returns 0, or -1 (logged). */
int pki_write_certs(const char *path, X509 *const *certs, size_t n);

/* pki_write_certs of the one certificate cert. */
int pki_write_cert(const char *path, X509 *cert);

/* Reads every PEM certificate of path, in order. Returns 0 with *out a stack of at least one
 * certificate that the caller frees with sk_X509_pop_free(*out, X509_free), or -1 with the
 * reason in err. */
int pki_read_certs(const char *path, STACK_OF(X509) * *out, char *err, size_t errlen);

/* Reads a PEM private key from path. The file is read into memory that is wiped after parsing;
 * an encrypted key is refused (nothing prompts for a passphrase). Returns 0 with *out a key the
 * caller frees with EVP_PKEY_free, or -1 with the reason in err (never key material). */
int pki_read_key(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* Writes into err the reason of the last OpenSSL error (or "unknown error") after prefix, and
 * clears the error queue. */
void pki_errf(char *err, size_t errlen, const char *prefix);

/* Logs the OpenSSL error queue at error level with a prefix and clears it. */
void pki_log_errors(const char *what);

#endif
