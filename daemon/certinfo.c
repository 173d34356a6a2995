/* Certificates in enrollment documents and in mutual TLS. */
#include "certinfo.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "timefmt.h"
#include "nopass.h"

X509 *certinfo_parse(const char *text, size_t len, char *err, size_t errlen) {
    unsigned char *der = NULL;
    size_t derlen = 0;
    const unsigned char *p;
    const char *why = NULL;
    X509 *x = NULL;
    BIO *bio = NULL;

    if (len == 0 || len > CERTINFO_TEXT_MAX) {
        snprintf(err, errlen, "must have 1 to %d characters", CERTINFO_TEXT_MAX);
        return NULL;
    }
    /* PEM_read_bio_X509 would skip it; said rather than dropped in silence. */
    if (memmem(text, len, "PRIVATE KEY-----", 16) != NULL) {
        snprintf(err, errlen, "holds a private key: give the certificate alone");
        return NULL;
    }
    if (memmem(text, len, "-----BEGIN", 10) != NULL) {
        /* PEM_read_bio_X509 skips text before the block; what follows it is checked by hand
         * below, since a second certificate would be silently ignored. */
        if (!(bio = BIO_new_mem_buf(text, (int)len)) ||
            !(x = PEM_read_bio_X509(bio, NULL, pem_no_passphrase, NULL))) {
            snprintf(err, errlen, "is not a PEM certificate");
            goto fail;
        }
        char rest[64];
        int n;
        while ((n = BIO_read(bio, rest, sizeof(rest))) > 0) {
            for (int i = 0; i < n; i++) {
                if (!isspace((unsigned char)rest[i])) {
                    snprintf(err, errlen, "holds more than one certificate or trailing text");
                    goto fail;
                }
            }
        }
        BIO_free(bio);
        return x;
    }
    if (b64_decode_lenient(text, len, &der, &derlen, &why) != 0) {
        snprintf(err, errlen, "is neither PEM nor base64 (%s)", why ? why : "malformed");
        goto fail;
    }
    p = der;
    x = d2i_X509(NULL, &p, (long)derlen);
    if (!x || p != der + derlen) {
        snprintf(err, errlen, "is not a DER certificate%s", x ? " (trailing data)" : "");
        goto fail;
    }
    b64_free(der, derlen);
    return x;
fail:
    ERR_clear_error();
    X509_free(x);
    BIO_free(bio);
    b64_free(der, derlen);
    return NULL;
}

char *certinfo_pem(X509 *cert) {
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *s = NULL;
    long n;

    if (bio && PEM_write_bio_X509(bio, cert) && (n = BIO_get_mem_data(bio, &data)) > 0 &&
        (s = malloc((size_t)n + 1)) != NULL) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    BIO_free(bio);
    return s;
}

static void hex_upper(const unsigned char *p, size_t n, char *out) {
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The upper-case hex digest md of cert into out (2 * size + 1 bytes). */
static int digest_hex(X509 *cert, const EVP_MD *md, char *out, unsigned size) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!X509_digest(cert, md, buf, &n) || n != size)
        return -1;
    hex_upper(buf, n, out);
    return 0;
}

int certinfo_thumbprint(X509 *cert, char out[CERTINFO_THUMB_LEN]) {
    return digest_hex(cert, EVP_sha256(), out, 32);
}

int certinfo_thumbprint_der(const unsigned char *der, size_t len, char out[CERTINFO_THUMB_LEN]) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!EVP_Digest(der, len, buf, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    hex_upper(buf, n, out);
    return 0;
}

int certinfo_thumbprint_parse(const char *s, char out[CERTINFO_THUMB_LEN]) {
    static const char prefix[] = "sha256 Fingerprint=";
    size_t k = 0;

    if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0)
        s += sizeof(prefix) - 1;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == ':' && k % 2 == 0 && k > 0 && s[i + 1] != '\0')
            continue;
        if (!isxdigit((unsigned char)s[i]) || k == CERTINFO_THUMB_LEN - 1)
            return -1;
        out[k++] = (char)toupper((unsigned char)s[i]);
    }
    out[k] = '\0';
    return k == CERTINFO_THUMB_LEN - 1 ? 0 : -1;
}

char *certinfo_name(const X509_NAME *name) {
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *s = NULL;
    long n;

    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(bio, &data)) >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
        /* data is NULL when nothing was printed (an empty name). */
        if (n > 0)
            memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    BIO_free(bio);
    return s;
}

int64_t certinfo_unix(const ASN1_TIME *t) {
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

int certinfo_time(const ASN1_TIME *t, char out[TIME_DPS_LEN]) {
    struct tm tm;
    struct timespec ts = {0};

    if (!ASN1_TIME_to_tm(t, &tm))
        return -1;
    ts.tv_sec = timegm(&tm);
    time_format_dps(&ts, out);
    return 0;
}

int certinfo_cn(X509 *cert, char *cn, size_t size) {
    const X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int n;

    if (size == 0 || i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return -1;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n <= 0 || (size_t)n >= size || memchr(utf8, '\0', (size_t)n) != NULL) {
        OPENSSL_free(utf8);
        ERR_clear_error();
        return -1;
    }
    memcpy(cn, utf8, (size_t)n);
    cn[n] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

int certinfo_serial(X509 *cert, char out[CERTINFO_SERIAL_MAX]) {
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    int n = ASN1_STRING_length(sn), neg = ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER;

    if (n > 20)
        return -1;
    if (neg)
        out[0] = '-';
    if (n == 0)
        snprintf(out + neg, CERTINFO_SERIAL_MAX - (size_t)neg, "00");
    else
        hex_upper(ASN1_STRING_get0_data(sn), (size_t)n, out + neg);
    return 0;
}

json_t *certinfo_json(X509 *cert) {
    char sha1[41], sha256[CERTINFO_THUMB_LEN], nb[TIME_DPS_LEN], na[TIME_DPS_LEN];
    char serial[CERTINFO_SERIAL_MAX];
    char *subject = certinfo_name(X509_get_subject_name(cert));
    char *issuer = certinfo_name(X509_get_issuer_name(cert));
    json_t *v = NULL;

    if (subject && issuer && certinfo_serial(cert, serial) == 0 &&
        digest_hex(cert, EVP_sha1(), sha1, 20) == 0 && certinfo_thumbprint(cert, sha256) == 0 &&
        certinfo_time(X509_get0_notBefore(cert), nb) == 0 &&
        certinfo_time(X509_get0_notAfter(cert), na) == 0)
        v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "subjectName", subject,
                      "sha1Thumbprint", sha1, "sha256Thumbprint", sha256, "issuerName", issuer,
                      "notBeforeUtc", nb, "notAfterUtc", na, "serialNumber", serial, "version",
                      (json_int_t)X509_get_version(cert) + 1);
    ERR_clear_error();
    free(subject);
    free(issuer);
    return v;
}
