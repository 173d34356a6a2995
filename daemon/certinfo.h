/* Certificates that operators enroll (a device's own certificate, a CA of a group) and that
 * devices present in mutual TLS: reading them from the text of a document, and describing them
 * in the DPS shape (X509CertificateInfo). Everything here goes through OpenSSL's X.509 API. */
#ifndef PROVD_CERTINFO_H
#define PROVD_CERTINFO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "timefmt.h"

#define CERTINFO_TEXT_MAX   (16 * 1024) /* longest certificate text accepted in a document */
#define CERTINFO_THUMB_LEN  65          /* SHA-256 in hex and the NUL */
#define CERTINFO_SERIAL_MAX 42          /* "-", 20 octets in hex and the NUL */

/* Reads one certificate from text of len bytes: PEM (-----BEGIN CERTIFICATE-----), or the
 * base64 of its DER (line breaks and spaces allowed). Nothing may follow the certificate.
 * Returns a certificate the caller frees with X509_free, or NULL with the reason in err. */
X509 *certinfo_parse(const char *text, size_t len, char *err, size_t errlen);

/* The PEM of cert. Returns a string the caller frees with free(), or NULL when out of memory. */
char *certinfo_pem(X509 *cert);

/* Writes the upper-case hex SHA-256 of cert's DER into out. Returns 0, or -1. */
int certinfo_thumbprint(X509 *cert, char out[CERTINFO_THUMB_LEN]);

/* The same from the DER encoding of a certificate (len bytes at der). Returns 0, or -1. */
int certinfo_thumbprint_der(const unsigned char *der, size_t len, char out[CERTINFO_THUMB_LEN]);

/* Checks that s is a SHA-256 thumbprint (64 hex digits, any case, optionally with a colon
 * between octets, optionally after "sha256 Fingerprint=" in any case: what
 * `openssl x509 -fingerprint -sha256` prints) and writes it upper-case without colons into out.
 * Returns 0, or -1. */
int certinfo_thumbprint_parse(const char *s, char out[CERTINFO_THUMB_LEN]);

/* Writes cert's serial number as `openssl x509 -serial` prints it (every octet in upper-case
 * hex, "-" before a negative one) into out. Returns 0, or -1 for a serial over 20 octets. */
int certinfo_serial(X509 *cert, char out[CERTINFO_SERIAL_MAX]);

/* The subject CN of cert into cn (size bytes, the NUL included). Returns 0, or -1 when the
 * subject has no CN, more than one, or one that is not text shorter than size. */
int certinfo_cn(X509 *cert, char *cn, size_t size);

/* A name in RFC 2253 form ("CN=dev-1,O=Example"). Returns a string the caller frees with
 * free(), or NULL when out of memory. */
char *certinfo_name(const X509_NAME *name);

/* Unix time of t, or -1 when t is NULL or unreadable. */
int64_t certinfo_unix(const ASN1_TIME *t);

/* Writes t in the DPS time format into out. Returns 0, or -1 for an unreadable time. */
int certinfo_time(const ASN1_TIME *t, char out[TIME_DPS_LEN]);

/* The DPS X509CertificateInfo of cert: subjectName, sha1Thumbprint, sha256Thumbprint,
 * issuerName, notBeforeUtc, notAfterUtc, serialNumber (upper-case hex) and version (3 for a
 * version 3 certificate). Returns a new reference, or NULL when cert is unreadable or memory ran
 * out. */
json_t *certinfo_json(X509 *cert);

#endif
