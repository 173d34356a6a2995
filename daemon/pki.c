/* Key pairs and certificates of provd's CA and listeners. */
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"

void pki_log_errors(const char *what) {
    unsigned long e;
    char buf[256];
    int any = 0;
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        log_error("%s: %s", what, buf);
        any = 1;
    }
    if (!any)
        log_error("%s failed", what);
}

EVP_PKEY *pki_key_new(void) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        pki_log_errors("generating a P-256 key");
    return key;
}

/* A random positive 128-bit serial number (RFC 5280 allows up to 20 octets). */
static int set_random_serial(X509 *x) {
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value) {
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The common part of every certificate: version 3, serial, validity, subject, issuer, key. */
static X509 *cert_base(EVP_PKEY *key, X509 *issuer, const char *cn, int days) {
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!x || !name || !X509_set_version(x, X509_VERSION_3) || set_random_serial(x) != 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 24 * 3600) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(x, key)) {
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(name);
    return x;
}

X509 *pki_root_new(EVP_PKEY *key, const char *cn, int days) {
    X509 *x = cert_base(key, NULL, cn, days);
    X509V3_CTX ctx;
    if (!x)
        goto fail;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0 ||
        !X509_sign(x, key, EVP_sha256()))
        goto fail;
    return x;
fail:
    pki_log_errors("making the root CA certificate");
    X509_free(x);
    return NULL;
}

/* Appends one subjectAltName entry for name: IP when it parses as an address, DNS otherwise. */
static int san_append(char *buf, size_t len, const char *name) {
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    size_t used = strlen(buf);
    int n = snprintf(buf + used, len - used, "%s%s:%s", used ? "," : "", ip ? "IP" : "DNS", name);
    return (n < 0 || (size_t)n >= len - used) ? -1 : 0;
}

X509 *pki_server_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn,
                     char *const *hostnames, size_t n, int days) {
    char san[4096] = "";
    X509 *x = cert_base(key, ca, cn, days);
    X509V3_CTX ctx;
    if (!x)
        goto fail;
    static const char *const fixed[] = {"localhost", "127.0.0.1", "::1"};
    for (size_t i = 0; i < 3; i++)
        if (san_append(san, sizeof(san), fixed[i]) != 0)
            goto fail;
    for (size_t i = 0; i < n; i++)
        if (san_append(san, sizeof(san), hostnames[i]) != 0)
            goto fail;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") != 0 ||
        add_ext(x, &ctx, NID_subject_alt_name, san) != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0 ||
        !X509_sign(x, ca_key, EVP_sha256()))
        goto fail;
    return x;
fail:
    pki_log_errors("making the server certificate");
    X509_free(x);
    return NULL;
}

int pki_write_key(const char *path, EVP_PKEY *key, int replace) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    /* An existing file keeps its mode on O_TRUNC: make sure it is private. */
    FILE *f = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        log_error("%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    ok = (fflush(f) == 0 && fsync(fileno(f)) == 0) && ok;
    if (fclose(f) != 0 || !ok) {
        pki_log_errors(path);
        return -1;
    }
    return 0;
}

int pki_write_cert(const char *path, X509 *cert) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_error("%s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = PEM_write_X509(f, cert) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok && chmod(tmp, 0644) == 0 && rename(tmp, path) == 0;
    if (!ok) {
        log_error("%s: could not write the certificate", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}
