/* The issuing CA: loading and checking it, device certificates, chains, CRLs, import. */
#include "ca.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "certinfo.h"
#include "csr.h"
#include "log.h"
#include "pki.h"
#include "urlenc.h"

#define DEVICE_ID_MAX 128

struct ca {
    X509 *cert;                 /* the issuing CA */
    EVP_PKEY *key;              /* its key */
    STACK_OF(X509) * chain;     /* issuing CA first, root last */
    X509_STORE *trust;          /* the root, for ca_verify */
    STACK_OF(X509) * untrusted; /* the chain without its root */
    int64_t not_before;         /* the issuing CA's start, Unix time */
    int64_t not_after;          /* the earliest expiry of the chain, Unix time */
    int device_days;
    char **chain_b64; /* base64 DER of each certificate of chain */
    _Atomic uint64_t last_crl_number;
};

/* Reads all of a memory BIO into a new NUL-terminated string (freed with free()), or NULL. */
static char *bio_string(BIO *bio) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static char *cert_b64(X509 *x) {
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    char *s = n > 0 ? b64_encode(der, (size_t)n) : NULL;
    OPENSSL_free(der);
    return s;
}

/* A store trusting the self-signed certificates of certs; the others go to *untrusted. */
static X509_STORE *split_trust(STACK_OF(X509) * certs, STACK_OF(X509) * *untrusted) {
    X509_STORE *store = X509_STORE_new();
    int roots = 0;
    *untrusted = sk_X509_new_null();
    if (!store || !*untrusted)
        goto fail;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (X509_self_signed(x, 0) == 1) {
            if (!X509_STORE_add_cert(store, x))
                goto fail;
            roots++;
        } else if (!X509_add_cert(*untrusted, x, X509_ADD_FLAG_UP_REF)) {
            goto fail;
        }
    }
    if (roots == 0)
        goto fail;
    return store;
fail:
    X509_STORE_free(store);
    sk_X509_pop_free(*untrusted, X509_free);
    *untrusted = NULL;
    return NULL;
}

/* Verifies cert against store/untrusted for purpose (0: none), at the current time unless
 * check_time is 0; on success *path (when not NULL) is the chain found. */
static int verify(X509 *cert, X509_STORE *store, STACK_OF(X509) * untrusted, int purpose,
                  int check_time, STACK_OF(X509) * *path, char *err, size_t errlen,
                  const char *what) {
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    if (!ctx || !X509_STORE_CTX_init(ctx, store, cert, untrusted) ||
        (purpose && !X509_STORE_CTX_set_purpose(ctx, purpose))) {
        pki_errf(err, errlen, what);
        goto out;
    }
    if (!check_time)
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        snprintf(err, errlen, "%s: %s (at depth %d)", what, X509_verify_cert_error_string(e),
                 X509_STORE_CTX_get_error_depth(ctx));
        ERR_clear_error();
        goto out;
    }
    if (path && !(*path = X509_STORE_CTX_get1_chain(ctx))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    return rc;
}

/* Whether a CA of chain (the issuing CA first, up to the root) limits the CAs below it to fewer
 * than chain holds (its basicConstraints pathLenConstraint, which does not count self-issued
 * certificates), with the reason in err. Verifying the issuing CA alone cannot tell: only below
 * it, in every device certificate's path, is the limit exceeded. */
static int path_too_long(STACK_OF(X509) * chain, char *err, size_t errlen) {
    long below = 0;
    for (int i = 1; i < sk_X509_num(chain); i++) {
        X509 *under = sk_X509_value(chain, i - 1), *x = sk_X509_value(chain, i);
        if (!(X509_get_extension_flags(under) & EXFLAG_SI))
            below++;
        long max = X509_get_pathlen(x);
        if (max >= 0 && max < below) {
            char *name = certinfo_name(X509_get_subject_name(x));
            snprintf(err, errlen,
                     "the path length constraint of %s (pathlen:%ld) allows fewer CA "
                     "certificates below it than the %ld of the chain: no device certificate "
                     "would verify",
                     name ? name : "a CA certificate of the chain", max, below);
            free(name);
            return -1;
        }
    }
    return 0;
}

/* Whether each certificate of chain (the issuing CA first, up to the root) allows TLS clients
 * in its extendedKeyUsage, as ca_verify checks device certificates: a CA whose extendedKeyUsage
 * leaves clientAuth out, or one above it that does, would issue certificates nothing accepts. */
static int chain_allows_clients(STACK_OF(X509) * chain, char *err, size_t errlen) {
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (X509_check_purpose(sk_X509_value(chain, i), X509_PURPOSE_SSL_CLIENT, 1) != 1) {
            snprintf(err, errlen,
                     "%s extendedKeyUsage does not allow TLS clients (clientAuth), which "
                     "device certificates are for",
                     i == 0 ? "the CA certificate's" : "the chain above has a certificate whose");
            return -1;
        }
    }
    return 0;
}

/* Whether a certificate of the device profile that cert (with key) signs verifies as a TLS
 * client's up to a root of store: the checks above name the usual reasons it would not, this
 * catches the others (a name constraint a device's names break, a policy constraint). */
static int issues_verifiable(X509 *cert, EVP_PKEY *key, X509_STORE *store,
                             STACK_OF(X509) * untrusted, int check_time, char *err, size_t errlen) {
    EVP_PKEY *leaf_key = EVP_EC_gen("P-256");
    GENERAL_NAMES *san = GENERAL_NAMES_new();
    STACK_OF(X509) *up = sk_X509_dup(untrusted);
    X509 *leaf = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = -1;
    if (!leaf_key || !san || !up || !sk_X509_push(up, cert) ||
        pki_san_add(san, GEN_URI, CA_DEVICE_URN_PREFIX "device-1") != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct pki_cert_spec s = {.profile = PKI_PROFILE_DEVICE,
                              .key = leaf_key,
                              .cn = "device-1",
                              .issuer = cert,
                              .issuer_key = key,
                              .san = san,
                              .not_before = now - 300,
                              .not_after = now + 3600};
    if (!(leaf = pki_cert_new(&s))) {
        pki_errf(err, errlen, "making a device certificate with the CA");
        goto out;
    }
    rc = verify(leaf, store, up, X509_PURPOSE_SSL_CLIENT, check_time, NULL, err, errlen,
                "a device certificate the CA issues would not verify");
out:
    X509_free(leaf);
    sk_X509_free(up);
    GENERAL_NAMES_free(san);
    EVP_PKEY_free(leaf_key);
    return rc;
}

/* ca_check_issuer, with the validity periods left out unless check_time. */
static int check_issuer(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * above, int check_time,
                        STACK_OF(X509) * *path, char *err, size_t errlen) {
    /* An issuing CA signs for years: the same key types as provd makes, and RSA up to sizes
     * operators do use for CAs. */
    struct csr_policy ca_keys = {CSR_KEY_P256 | CSR_KEY_P384 | CSR_KEY_RSA, 2048, 16384};
    enum csr_key_kind kind;
    STACK_OF(X509) *untrusted = NULL, *chain = NULL;
    X509_STORE *store = NULL;
    char msg[200];
    int bits, rc = -1;
    if (path)
        *path = NULL;

    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (!pub || EVP_PKEY_eq(pub, key) != 1) {
        snprintf(err, errlen, "the private key does not belong to the CA certificate");
        goto out;
    }
    if (csr_key_check(key, &ca_keys, &kind, &bits, msg, sizeof(msg)) != CSR_OK) {
        snprintf(err, errlen,
                 "the CA key cannot be used: %s (P-256, P-384 or RSA of at least 2048 bits are)",
                 msg);
        goto out;
    }
    if (X509_NAME_entry_count(X509_get_subject_name(cert)) == 0) {
        snprintf(err, errlen,
                 "the CA certificate's subject is empty: device certificates and CRLs name their "
                 "issuer by it (RFC 5280, 4.1.2.4)");
        goto out;
    }
    uint32_t flags = X509_get_extension_flags(cert);
    if (!(flags & EXFLAG_CA)) {
        snprintf(err, errlen,
                 "the certificate is not a CA certificate (no basicConstraints CA:TRUE)");
        goto out;
    }
    const uint32_t need = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    if (!(flags & EXFLAG_KUSAGE) || (X509_get_key_usage(cert) & need) != need) {
        snprintf(err, errlen,
                 "the CA certificate's keyUsage must include keyCertSign (to sign device "
                 "certificates) and cRLSign (to sign CRLs)");
        goto out;
    }
    if (check_time && (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0 ||
                       X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)) {
        snprintf(err, errlen, "the CA certificate is %s",
                 X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ? "expired"
                                                                      : "not valid yet");
        goto out;
    }
    if (!X509_get0_subject_key_id(cert)) {
        snprintf(err, errlen,
                 "the CA certificate has no subjectKeyIdentifier, which the authority key "
                 "identifier of every device certificate and CRL names");
        goto out;
    }
    if (X509_self_signed(cert, 0) == 1) {
        snprintf(err, errlen,
                 "the certificate is a self-signed root; provd needs an issuing CA signed by a "
                 "root");
        goto out;
    }
    if (!(store = split_trust(above, &untrusted))) {
        snprintf(err, errlen,
                 "the chain holds no root certificate (a self-signed CA): give the certificates "
                 "above the issuing CA up to and including the root");
        goto out;
    }
    rc = verify(cert, store, untrusted, 0, check_time, &chain, err, errlen,
                "the CA certificate does not chain to the root");
    /* Only the certificates of the path count: a bundle may hold others. */
    if (rc == 0 &&
        (chain_allows_clients(chain, err, errlen) != 0 || path_too_long(chain, err, errlen) != 0 ||
         issues_verifiable(cert, key, store, untrusted, check_time, err, errlen) != 0))
        rc = -1;
    if (rc == 0 && path) {
        *path = chain;
        chain = NULL;
    }
out:
    ERR_clear_error();
    X509_STORE_free(store);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

int ca_check_issuer(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * above, STACK_OF(X509) * *path,
                    char *err, size_t errlen) {
    return check_issuer(cert, key, above, 1, path, err, errlen);
}

void ca_free(struct ca *ca) {
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    X509_STORE_free(ca->trust);
    sk_X509_pop_free(ca->untrusted, X509_free);
    if (ca->chain_b64)
        ca_strv_free(ca->chain_b64, (size_t)sk_X509_num(ca->chain));
    sk_X509_pop_free(ca->chain, X509_free);
    free(ca);
}

/* Everything derived from cert, key and the verified chain once, at load. */
static int ca_prepare(struct ca *ca, const struct ca_opts *o, char *err, size_t errlen) {
    int n = sk_X509_num(ca->chain);
    ca->device_days = o && o->device_days > 0 ? o->device_days : CA_DEVICE_DAYS_DEFAULT;
    if (ca->device_days > CA_DEVICE_DAYS_MAX) {
        snprintf(err, errlen, "the device certificate validity must be at most %d days",
                 CA_DEVICE_DAYS_MAX);
        return -1;
    }
    /* A device certificate stops verifying when any certificate above it expires, the root
     * included: its validity ends no later than the earliest of them. */
    ca->not_before = certinfo_unix(X509_get0_notBefore(ca->cert));
    ca->not_after = certinfo_unix(X509_get0_notAfter(ca->cert));
    for (int i = 1; i < n; i++) {
        int64_t t = certinfo_unix(X509_get0_notAfter(sk_X509_value(ca->chain, i)));
        if (t < ca->not_after)
            ca->not_after = t;
    }
    char why[160];
    int64_t left = ca->not_after - (int64_t)time(NULL);
    if (ca_usable(ca, why, sizeof(why)) != 0)
        log_error("%s: certificate requests are refused (503004) until a CA valid now is "
                  "installed (provd ca import --force, then a restart); everything else is "
                  "served",
                  why);
    else if (left < (int64_t)ca->device_days * 86400)
        log_warn("the CA chain expires in %" PRId64 " days, before the %d days device "
                 "certificates are valid for: they will be cut short (provd ca import installs "
                 "a new issuing CA)",
                 left / 86400, ca->device_days);
    if (!(ca->trust = split_trust(ca->chain, &ca->untrusted)) ||
        !(ca->chain_b64 = calloc((size_t)n, sizeof(char *)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!(ca->chain_b64[i] = cert_b64(sk_X509_value(ca->chain, i)))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

int ca_load_files(const char *cert_path, const char *key_path, const char *chain_path,
                  const struct ca_opts *o, struct ca **out, char *err, size_t errlen) {
    STACK_OF(X509) *certs = NULL, *above = NULL;
    struct ca *ca = calloc(1, sizeof(*ca));
    char why[512];
    int rc = -1;
    *out = NULL;
    if (!ca) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (pki_read_certs(cert_path, &certs, err, errlen) != 0 ||
        pki_read_certs(chain_path, &above, err, errlen) != 0 ||
        pki_read_key(key_path, &ca->key, err, errlen) != 0)
        goto out;
    ca->cert = sk_X509_shift(certs);
    /* A CA whose time is over (or not come) is loaded all the same: provd then serves
     * everything but certificates (ca_usable), rather than not starting at all. */
    if (check_issuer(ca->cert, ca->key, above, 0, &ca->chain, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "the CA of %s: %s", cert_path, why);
        goto out;
    }
    if (ca_prepare(ca, o, err, errlen) != 0)
        goto out;
    *out = ca;
    ca = NULL;
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(above, X509_free);
    ca_free(ca);
    return rc;
}

/* DIR/NAME, freed by the caller; aborts when out of memory like the rest of start-up. */
static char *path_in(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        log_error("out of memory");
        abort();
    }
    return p;
}

/* DATA_DIR/ca/NAME, freed by the caller. */
static char *ca_path(const char *data_dir, const char *name) {
    char *cadir = path_in(data_dir, "ca"), *p = path_in(cadir, name);
    free(cadir);
    return p;
}

int ca_load(const char *data_dir, const struct ca_opts *o, struct ca **out, char *err,
            size_t errlen) {
    char *cert = ca_path(data_dir, "issuing.pem"), *key = ca_path(data_dir, "issuing.key");
    char *chain = ca_path(data_dir, "chain.pem");
    int rc = ca_load_files(cert, key, chain, o, out, err, errlen);
    free(cert);
    free(key);
    free(chain);
    return rc;
}

X509 *ca_issuing_cert(const struct ca *ca) {
    return ca->cert;
}

X509 *ca_root_cert(const struct ca *ca) {
    return sk_X509_value(ca->chain, sk_X509_num(ca->chain) - 1);
}

/* ca_cert_info, with the thumbprint taken from der when it is not NULL. */
static int cert_info(X509 *cert, const unsigned char *der, size_t len, struct ca_cert_info *info) {
    memset(info, 0, sizeof(*info));
    if (certinfo_serial(cert, info->serial) != 0 ||
        (der ? certinfo_thumbprint_der(der, len, info->thumbprint)
             : certinfo_thumbprint(cert, info->thumbprint)) != 0 ||
        certinfo_time(X509_get0_notBefore(cert), info->not_before) != 0 ||
        certinfo_time(X509_get0_notAfter(cert), info->not_after) != 0 ||
        !(info->subject = certinfo_name(X509_get_subject_name(cert))) ||
        !(info->issuer = certinfo_name(X509_get_issuer_name(cert)))) {
        ERR_clear_error();
        ca_cert_info_free(info);
        return -1;
    }
    return 0;
}

int ca_cert_info(X509 *cert, struct ca_cert_info *info) {
    return cert_info(cert, NULL, 0, info);
}

int ca_cert_info_der(X509 *cert, const unsigned char *der, size_t len, struct ca_cert_info *info) {
    return cert_info(cert, der, len, info);
}

void ca_cert_info_free(struct ca_cert_info *info) {
    free(info->subject);
    free(info->issuer);
    info->subject = info->issuer = NULL;
}

/* Device IDs reach the certificate as its CN and inside a URI; printable ASCII is all any of
 * provd's device ID rules allow. */
static int device_id_ok(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > DEVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e)
            return 0;
    return 1;
}

void ca_validity(const struct ca *ca, int64_t *not_before, int64_t *not_after) {
    *not_before = ca->not_before;
    *not_after = ca->not_after;
}

int ca_usable(const struct ca *ca, char *err, size_t errlen) {
    int64_t now = (int64_t)time(NULL);
    char when[TIME_DPS_LEN];
    if (now >= ca->not_before && now < ca->not_after)
        return 0;
    time_format_dps_ms((now < ca->not_before ? ca->not_before : ca->not_after) * 1000, when);
    if (now < ca->not_before)
        snprintf(err, errlen, "provd's issuing CA is not valid until %s", when);
    else
        snprintf(err, errlen, "provd's CA chain expired at %s", when);
    return -1;
}

X509 *ca_issue(const struct ca *ca, EVP_PKEY *key, const char *device_id, int days, char *err,
               size_t errlen) {
    return ca_issue_pub(ca, key, NULL, device_id, days, err, errlen);
}

X509 *ca_issue_pub(const struct ca *ca, EVP_PKEY *key, const SPKI_DER *spki, const char *device_id,
                   int days, char *err, size_t errlen) {
    GENERAL_NAMES *san = NULL;
    char *enc = NULL, *uri = NULL;
    X509 *x = NULL;
    int64_t now = (int64_t)time(NULL);
    if (!device_id_ok(device_id)) {
        snprintf(err, errlen, "the device ID must be 1 to %d printable ASCII characters",
                 DEVICE_ID_MAX);
        goto out;
    }
    if (days < 0 || days > CA_DEVICE_DAYS_MAX) {
        snprintf(err, errlen, "the validity must be 1 to %d days", CA_DEVICE_DAYS_MAX);
        goto out;
    }
    if (ca_usable(ca, err, errlen) != 0)
        goto out;
    if (!(enc = url_encode(device_id, 1)) ||
        asprintf(&uri, "%s%s", CA_DEVICE_URN_PREFIX, enc) < 0) {
        uri = NULL;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!(san = GENERAL_NAMES_new()) || pki_san_add(san, GEN_URI, uri) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct pki_cert_spec s = {
        .profile = PKI_PROFILE_DEVICE,
        .key = key,
        .spki = spki,
        .cn = device_id,
        .issuer = ca->cert,
        .issuer_key = ca->key,
        .san = san,
        /* A few minutes back for devices whose clock is behind, but not before the CA. */
        .not_before = now - 300 > ca->not_before ? now - 300 : ca->not_before,
        .not_after = now + (int64_t)(days ? days : ca->device_days) * 86400,
    };
    /* A certificate outliving its issuer would stop verifying at the issuer's expiry anyway;
     * saying so in the certificate keeps what the store records true. */
    if (s.not_after > ca->not_after)
        s.not_after = ca->not_after;
    if (!(x = pki_cert_new(&s)))
        snprintf(err, errlen, "the certificate could not be made (see the log)");
out:
    GENERAL_NAMES_free(san);
    free(enc);
    free(uri);
    return x;
}

int ca_verify(const struct ca *ca, X509 *cert, char *err, size_t errlen) {
    return verify(cert, ca->trust, ca->untrusted, X509_PURPOSE_SSL_CLIENT, 1, NULL, err, errlen,
                  "the certificate does not verify");
}

int ca_chain_b64(const struct ca *ca, const unsigned char *leaf, size_t leaf_len, char ***out,
                 size_t *n) {
    size_t nca = (size_t)sk_X509_num(ca->chain), k = 0;
    char **v = calloc(nca + 1, sizeof(char *));
    *out = NULL;
    *n = 0;
    if (!v)
        return -1;
    if (leaf && !(v[k++] = b64_encode(leaf, leaf_len)))
        goto fail;
    for (size_t i = 0; i < nca; i++)
        if (!(v[k++] = strdup(ca->chain_b64[i])))
            goto fail;
    *out = v;
    *n = k;
    return 0;
fail:
    ca_strv_free(v, nca + 1);
    return -1;
}

void ca_strv_free(char **v, size_t n) {
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

char *ca_pkcs7_b64(const struct ca *ca, X509 *leaf) {
    PKCS7 *p7 = PKCS7_new();
    unsigned char *der = NULL;
    char *s = NULL;
    /* Signed data whose content is data but absent (detached), with no signers: the
     * "certs-only" form EST and `openssl crl2pkcs7 -nocrl` use. */
    int ok = p7 && PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data) &&
             PKCS7_set_detached(p7, 1) == 1;
    if (ok && leaf)
        ok = PKCS7_add_certificate(p7, leaf);
    for (int i = 0; ok && !leaf && i < sk_X509_num(ca->chain); i++)
        ok = PKCS7_add_certificate(p7, sk_X509_value(ca->chain, i));
    int n = ok ? i2d_PKCS7(p7, &der) : -1;
    if (n > 0)
        s = b64_encode(der, (size_t)n);
    OPENSSL_free(der);
    PKCS7_free(p7);
    ERR_clear_error();
    return s;
}

static const char *const reasons[] = {
    [CRL_REASON_UNSPECIFIED] = "unspecified",
    [CRL_REASON_KEY_COMPROMISE] = "keyCompromise",
    [CRL_REASON_CA_COMPROMISE] = "cACompromise",
    [CRL_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
    [CRL_REASON_SUPERSEDED] = "superseded",
    [CRL_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
    [CRL_REASON_CERTIFICATE_HOLD] = "certificateHold",
    [CRL_REASON_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
    [CRL_REASON_AA_COMPROMISE] = "aACompromise",
};
#define NREASONS ((int)(sizeof(reasons) / sizeof(reasons[0])))

int ca_crl_reason_parse(const char *name, int *reason) {
    for (int i = 0; i < NREASONS; i++) {
        if (reasons[i] && strcasecmp(name, reasons[i]) == 0) {
            *reason = i;
            return 0;
        }
    }
    return -1;
}

const char *ca_crl_reason_name(int reason) {
    return reason >= 0 && reason < NREASONS ? reasons[reason] : NULL;
}

/* A serial number from 1 to 40 hex digits (an optional leading "-" is not accepted: provd
 * never issues negative serials). */
static ASN1_INTEGER *serial_parse(const char *hex) {
    size_t n = strlen(hex);
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    if (n == 0 || n > 40 || strspn(hex, "0123456789abcdefABCDEF") != n)
        return NULL;
    if (BN_hex2bn(&bn, hex) == (int)n)
        ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return ai;
}

/* Adds one entry for r to crl. */
static int crl_add(X509_CRL *crl, const struct ca_revoked *r, char *err, size_t errlen) {
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_INTEGER *serial = serial_parse(r->serial);
    ASN1_TIME *when = ASN1_TIME_new();
    ASN1_ENUMERATED *reason = NULL;
    int rc = -1;
    if (!serial) {
        snprintf(err, errlen, "\"%.48s\" is not a serial number (1 to 40 hex digits)", r->serial);
        goto out;
    }
    if (r->reason != CRL_REASON_NONE && !ca_crl_reason_name(r->reason)) {
        snprintf(err, errlen, "%d is not a CRL reason code", r->reason);
        goto out;
    }
    if (!rev || !when || !ASN1_TIME_set(when, (time_t)r->revoked_at) ||
        !X509_REVOKED_set_serialNumber(rev, serial) || !X509_REVOKED_set_revocationDate(rev, when))
        goto oom;
    if (r->reason > CRL_REASON_UNSPECIFIED) {
        if (!(reason = ASN1_ENUMERATED_new()) || !ASN1_ENUMERATED_set(reason, r->reason) ||
            !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
            goto oom;
    }
    if (!X509_CRL_add0_revoked(crl, rev))
        goto oom;
    rev = NULL;
    rc = 0;
    goto out;
oom:
    pki_errf(err, errlen, "adding a CRL entry");
out:
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    return rc;
}

/* Reserves number as the next CRL number: it must exceed every number reserved before. */
static int crl_number_take(struct ca *ca, uint64_t number) {
    uint64_t last = atomic_load(&ca->last_crl_number);
    do {
        if (number <= last)
            return -1;
    } while (!atomic_compare_exchange_weak(&ca->last_crl_number, &last, number));
    return 0;
}

X509_CRL *ca_crl_new(struct ca *ca, const struct ca_revoked *revoked, size_t n, uint64_t number,
                     int64_t next_update_s, char *err, size_t errlen) {
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509_EXTENSION *aki = NULL;
    X509V3_CTX ctx;
    int64_t now = (int64_t)time(NULL);
    int ok = 0;
    if (next_update_s == 0)
        next_update_s = CA_CRL_NEXT_UPDATE_DEFAULT;
    if (next_update_s < 60 || next_update_s > 366LL * 86400) {
        snprintf(err, errlen, "the next update must be 60 seconds to 366 days ahead");
        goto out;
    }
    if (!crl || !t || !num) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (crl_add(crl, &revoked[i], err, errlen) != 0)
            goto out;
    if (!X509_CRL_sort(crl)) {
        pki_errf(err, errlen, "sorting the CRL");
        goto out;
    }
    STACK_OF(X509_REVOKED) *list = X509_CRL_get_REVOKED(crl);
    for (int i = 1; i < sk_X509_REVOKED_num(list); i++) {
        if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i - 1)),
                             X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i))) == 0) {
            snprintf(err, errlen, "a serial number is listed twice");
            goto out;
        }
    }
    if (crl_number_take(ca, number) != 0) {
        snprintf(err, errlen,
                 "CRL number %llu is not above the last one signed (%llu): CRL numbers must grow",
                 (unsigned long long)number, (unsigned long long)atomic_load(&ca->last_crl_number));
        goto out;
    }
    /* No later than the CA can vouch for it, while it can: once its chain has expired, that
     * bound would put nextUpdate before thisUpdate, which RFC 5280 does not allow. */
    int64_t next_update = now + next_update_s;
    if (ca->not_after > now && ca->not_after < next_update)
        next_update = ca->not_after;
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
        !ASN1_TIME_set(t, (time_t)now) || !X509_CRL_set1_lastUpdate(crl, t) ||
        !ASN1_TIME_set(t, (time_t)next_update) || !X509_CRL_set1_nextUpdate(crl, t) ||
        !ASN1_INTEGER_set_uint64(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
        !(aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ||
        !X509_CRL_add_ext(crl, aki, -1) || !X509_CRL_sign(crl, ca->key, pki_sign_md(ca->key))) {
        pki_errf(err, errlen, "signing the CRL");
        goto out;
    }
    ok = 1;
out:
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    X509_EXTENSION_free(aki);
    if (!ok) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

unsigned char *ca_crl_der(const X509_CRL *crl, size_t *len) {
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);
    *len = n > 0 ? (size_t)n : 0;
    return n > 0 ? der : NULL;
}

char *ca_crl_pem(const unsigned char *der, size_t len) {
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (bio && len <= LONG_MAX && PEM_write_bio(bio, PEM_STRING_X509_CRL, "", der, (long)len))
        s = bio_string(bio);
    BIO_free(bio);
    return s;
}

int ca_import(const struct ca_import_opts *o, char *err, size_t errlen) {
    STACK_OF(X509) *certs = NULL, *extra = NULL, *path = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *settings = path_in(o->data_dir, "provd.json"), *cadir = path_in(o->data_dir, "ca");
    char *cert_out = ca_path(o->data_dir, "issuing.pem");
    char *key_out = ca_path(o->data_dir, "issuing.key"),
         *chain_out = ca_path(o->data_dir, "chain.pem");
    char why[512];
    int rc = -1;

    struct stat st;
    if (access(settings, F_OK) != 0 || stat(cadir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a provd data directory (run `provd init` first)",
                 o->data_dir);
        goto out;
    }
    if (!o->force && (access(cert_out, F_OK) == 0 || access(key_out, F_OK) == 0)) {
        snprintf(err, errlen,
                 "%s already has an issuing CA (%s); use --force to replace it (certificates it "
                 "issued stay valid until they expire, and can no longer be revoked by provd)",
                 o->data_dir, cert_out);
        goto out;
    }
    if (pki_read_certs(o->cert, &certs, err, errlen) != 0 ||
        pki_read_key(o->key, &key, err, errlen) != 0)
        goto out;
    cert = sk_X509_shift(certs);
    if (o->chain) {
        if (pki_read_certs(o->chain, &extra, err, errlen) != 0)
            goto out;
        for (int i = 0; i < sk_X509_num(extra); i++) {
            if (!X509_add_cert(certs, sk_X509_value(extra, i), X509_ADD_FLAG_UP_REF)) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    if (ca_check_issuer(cert, key, certs, &path, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", o->cert, why);
        goto out;
    }
    X509 **v = calloc((size_t)sk_X509_num(path), sizeof(X509 *));
    if (!v) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(path); i++)
        v[i] = sk_X509_value(path, i);
    /* Each file is replaced atomically, the key last. Should the import stop between two of
     * them, the directory holds a certificate and a key that do not match, which ca_load refuses
     * by name rather than signing with the wrong key. */
    int wrote = pki_write_cert(cert_out, cert) == 0 &&
                pki_write_certs(chain_out, v, (size_t)sk_X509_num(path)) == 0 &&
                pki_write_key(key_out, key, 1) == 0;
    free(v);
    if (!wrote) {
        snprintf(err, errlen, "writing the CA into %s failed (see the log)", cadir);
        goto out;
    }
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(extra, X509_free);
    sk_X509_pop_free(path, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
    free(settings);
    free(cadir);
    free(cert_out);
    free(key_out);
    free(chain_out);
    return rc;
}
