/* provd's certificate authority: the issuing CA that signs device certificates and CRLs.
 *
 * A data directory holds the CA in DIR/ca:
 *   issuing.pem  the issuing CA certificate        issuing.key  its key (0600)
 *   chain.pem    issuing CA, any intermediates, then the root: what clients of device
 *                certificates trust and what is sent with every issued certificate
 *   root.pem     provd's own root (from `provd init`), which also signs the TLS certificate
 * `provd init` makes all of them; `provd ca import` replaces the issuing CA and chain.pem with an
 * operator's own CA (root.pem then stays the TLS trust anchor).
 *
 * A struct ca is loaded once at start. Afterwards it is only read, so every function below may be
 * called from several threads on the same struct ca at once (ca_crl_new included). Its key never
 * leaves it and is never logged; ca_free frees it (OpenSSL wipes private key material). */
#ifndef PROVD_CA_H
#define PROVD_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "spki.h"
#include "timefmt.h"

#define CA_DEVICE_DAYS_DEFAULT     365
#define CA_DEVICE_DAYS_MAX         (100 * 365)
#define CA_CRL_NEXT_UPDATE_DEFAULT (7 * 86400)

/* Device certificates name their device in a URI subjectAltName: this prefix, then the device ID
 * with every byte other than A-Z a-z 0-9 - . _ ~ percent-encoded (so "dev:1" is
 * urn:provd:device:dev%3A1). */
#define CA_DEVICE_URN_PREFIX "urn:provd:device:"

#define CA_SERIAL_MAX     42 /* "-", 20 octets in hex and the NUL */
#define CA_THUMBPRINT_LEN 65 /* SHA-256 in hex and the NUL */

struct ca;

struct ca_opts {
    int device_days; /* validity of device certificates; 0: CA_DEVICE_DAYS_DEFAULT */
};

/* Loads DATA_DIR/ca/issuing.pem, issuing.key and chain.pem (see ca_load_files). o may be NULL
 * for the defaults. Returns 0 with *out a CA the caller frees with ca_free, or -1 with the reason
 * in err. */
int ca_load(const char *data_dir, const struct ca_opts *o, struct ca **out, char *err,
            size_t errlen);

/* Loads the issuing CA from cert_path (its first certificate), its key from key_path (read once
 * into wiped memory) and the certificates above it from chain_path (it may start with the issuing
 * CA itself and must hold a self-signed root), then checks them as ca_check_issuer does but for
 * the validity periods: a CA expired or not valid yet is loaded, logged as an error, and
 * ca_usable says so. */
int ca_load_files(const char *cert_path, const char *key_path, const char *chain_path,
                  const struct ca_opts *o, struct ca **out, char *err, size_t errlen);

/* Frees ca and its key. NULL is ignored. */
void ca_free(struct ca *ca);

/* Whether ca can issue now: 0 while the current time is within the issuing CA's validity and
 * before the earliest expiry of its chain; otherwise -1 with why in err ("provd's CA chain
 * expired at ..."). A CA out of its time still loads (provd serves all but certificates);
 * provd ca import refuses one. */
int ca_usable(const struct ca *ca, char *err, size_t errlen);

/* The span in which ca can issue, as Unix times: from the issuing CA's notBefore to the earliest
 * notAfter of its chain. */
void ca_validity(const struct ca *ca, int64_t *not_before, int64_t *not_after);

/* The issuing CA certificate and the root it chains to; owned by ca. */
X509 *ca_issuing_cert(const struct ca *ca);
X509 *ca_root_cert(const struct ca *ca);

/* Checks that cert with key can be provd's issuing CA: key is cert's key and of a type provd
 * signs with (P-256, P-384, RSA of 2048 to 16384 bits); cert is valid now, is a CA
 * (basicConstraints CA:TRUE) and has a keyUsage with keyCertSign and cRLSign; cert verifies up to
 * a self-signed root among above, which holds the certificates above cert (in any order; cert
 * itself may be among them). Returns 0, setting *path (when not NULL) to the verified chain
 * issuing CA first and root last, which the caller frees with sk_X509_pop_free(*path,
 * X509_free); or -1 with the reason in err. */
int ca_check_issuer(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * above, STACK_OF(X509) * *path,
                    char *err, size_t errlen);

/* What the store keeps about a certificate. */
struct ca_cert_info {
    char serial[CA_SERIAL_MAX];         /* upper-case hex, as `openssl x509 -serial` prints it */
    char thumbprint[CA_THUMBPRINT_LEN]; /* upper-case hex SHA-256 of the DER certificate */
    char not_before[TIME_DPS_LEN];      /* DPS time format */
    char not_after[TIME_DPS_LEN];
    char *subject; /* RFC 2253, e.g. "CN=sensor-0001" */
    char *issuer;
};

/* Fills info from cert (any certificate, e.g. a client's in mutual TLS). Returns 0, or -1 when
 * cert is malformed (a serial longer than 20 octets, an unreadable time) or memory ran out. On
 * success the caller frees info with ca_cert_info_free. */
int ca_cert_info(X509 *cert, struct ca_cert_info *info);

/* As ca_cert_info, for a certificate whose DER encoding (len bytes at der) the caller holds: the
 * thumbprint is the digest of those bytes. OpenSSL encodes a certificate it made (rather than
 * decoded) again every time it is asked for its encoding. */
int ca_cert_info_der(X509 *cert, const unsigned char *der, size_t len, struct ca_cert_info *info);

/* Frees the strings of info (not info itself). */
void ca_cert_info_free(struct ca_cert_info *info);

/* Issues a device certificate for key (the public key of a CSR that passed csr_parse):
 * a random 128-bit serial; subject CN = device_id (1 to 128 printable ASCII characters); a URI
 * subjectAltName CA_DEVICE_URN_PREFIX + device_id; basicConstraints CA:FALSE and keyUsage
 * digitalSignature (plus keyEncipherment for RSA keys), both critical; extendedKeyUsage
 * clientAuth; subject and authority key identifiers; valid from 5 minutes ago (clock skew) for
 * days (0: the CA's default), but never beyond the issuing CA's own expiry; signed with SHA-256
 * (SHA-384 by a P-384 issuing CA).
 * Returns the certificate, which the caller frees with X509_free (ca_cert_info_der describes
 * it), or NULL with the reason in err (ca_usable's when the CA cannot issue now). */
X509 *ca_issue(const struct ca *ca, EVP_PKEY *key, const char *device_id, int days, char *err,
               size_t errlen);

/* As ca_issue, with the subject public key copied as spki encodes it (a CSR's) rather than
 * encoded again from key; key still decides the profile (keyEncipherment for RSA). The
 * certificate returned holds that key only encoded (X509_get0_pubkey gives NULL): it is made to
 * be encoded and sent, and whatever needs its key decodes the encoding. */
X509 *ca_issue_pub(const struct ca *ca, EVP_PKEY *key, const SPKI_DER *spki, const char *device_id,
                   int days, char *err, size_t errlen);

/* Verifies that cert was issued by this CA and chains to its root, for the purpose of TLS client
 * authentication (a device presenting its provd certificate). Returns 0, or -1 with the reason in
 * err. */
int ca_verify(const struct ca *ca, X509 *cert, char *err, size_t errlen);

/* The chain to give a device: the leaf certificate (leaf_len bytes of DER at leaf, when leaf is
 * not NULL), the issuing CA, any intermediates, the root, each as base64 DER (the DPS
 * issuedCertificateChain). Returns 0 with *out an array of *n strings the caller frees with
 * ca_strv_free, or -1 when out of memory. */
int ca_chain_b64(const struct ca *ca, const unsigned char *leaf, size_t leaf_len, char ***out,
                 size_t *n);

/* Frees the n strings of v and v. */
void ca_strv_free(char **v, size_t n);

/* A certs-only PKCS#7 (RFC 7030 section 4.1.3: SignedData without signers or content) as base64
 * DER without line breaks: holding only leaf when leaf is not NULL (EST simpleenroll), else the
 * CA chain (EST cacerts). Returns a string the caller frees with free(), or NULL when out of
 * memory. */
char *ca_pkcs7_b64(const struct ca *ca, X509 *leaf);

/* A revoked certificate, as listed in a CRL. Reasons are OpenSSL's CRL_REASON_* (RFC 5280
 * CRLReason); CRL_REASON_NONE and CRL_REASON_UNSPECIFIED put no reasonCode extension in the CRL,
 * as RFC 5280 asks. */
struct ca_revoked {
    const char *serial; /* hex as in ca_cert_info.serial (either case), 1 to 20 octets */
    int64_t revoked_at; /* Unix time */
    int reason;
};

/* Parses an RFC 5280 reason name ("keyCompromise", "superseded", ..., any case). Returns 0 with
 * *reason set, or -1 for an unknown name. */
int ca_crl_reason_parse(const char *name, int *reason);

/* The RFC 5280 name of reason, or NULL for none. */
const char *ca_crl_reason_name(int reason);

/* Makes a version 2 CRL of the issuing CA listing the n revoked certificates (sorted by serial;
 * a serial listed twice is an error): thisUpdate now, nextUpdate next_update_s seconds later
 * (0: CA_CRL_NEXT_UPDATE_DEFAULT), an authority key identifier and cRLNumber number, signed like
 * the certificates. number must grow from one CRL to the next; the store keeps it across
 * restarts, and ca refuses a number not above the last it signed in this process.
 * Returns a CRL the caller frees with X509_CRL_free, or NULL with the reason in err. */
X509_CRL *ca_crl_new(struct ca *ca, const struct ca_revoked *revoked, size_t n, uint64_t number,
                     int64_t next_update_s, char *err, size_t errlen);

/* The DER of crl. Returns a buffer of *len bytes the caller frees with OPENSSL_free, or NULL. */
unsigned char *ca_crl_der(const X509_CRL *crl, size_t *len);

/* The PEM of a CRL from its DER (which a CRL of many entries takes long to encode again).
 * Returns a string the caller frees with free(), or NULL. */
char *ca_crl_pem(const unsigned char *der, size_t len);

struct ca_import_opts {
    const char *data_dir;
    const char *cert;  /* PEM: the issuing CA first, optionally followed by its chain */
    const char *key;   /* PEM: its private key, unencrypted */
    const char *chain; /* PEM: the certificates above it up to the root, or NULL */
    int force;         /* replace an issuing CA already there */
};

/* `provd ca import`: checks the operator's issuing CA as ca_check_issuer does, the chain being
 * the certificates after the first in o->cert and those of o->chain, then writes issuing.pem,
 * issuing.key (0600) and chain.pem (the verified chain) into DATA_DIR/ca. An issuing CA already
 * there is replaced only with o->force. Returns 0, or -1 with the reason in err (nothing written
 * when a check fails). */
int ca_import(const struct ca_import_opts *o, char *err, size_t errlen);

#endif
