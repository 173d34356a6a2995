/* provd's own public-key infrastructure: key pairs and the certificates of its CA and of its
 * TLS listeners, built with OpenSSL's X.509 API. */
#ifndef PROVD_PKI_H
#define PROVD_PKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Generates an ECDSA P-256 key pair. Returns NULL on failure (logged). */
EVP_PKEY *pki_key_new(void);

/* Makes a self-signed root CA certificate for key, subject CN = cn, valid for days. */
X509 *pki_root_new(EVP_PKEY *key, const char *cn, int days);

/* Makes a TLS server certificate for key signed by ca/ca_key, subject CN = cn, with subject
 * alternative names localhost, 127.0.0.1, ::1 and each of the n hostnames (IP addresses become
 * IP entries, anything else DNS entries). */
X509 *pki_server_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn,
                     char *const *hostnames, size_t n, int days);

/* Writes key as PKCS#8 PEM to path, created with mode 0600 (replacing a file only when
 * replace is set). Returns 0, or -1 (logged). */
int pki_write_key(const char *path, EVP_PKEY *key, int replace);

/* Writes cert as PEM to path with mode 0644, replacing it atomically. Returns 0 or -1. */
int pki_write_cert(const char *path, X509 *cert);

/* Logs the OpenSSL error queue at error level with a prefix and clears it. */
void pki_log_errors(const char *what);

#endif
