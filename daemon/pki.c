/* Key pairs, certificates and PEM files of provd's CAs, listeners and devices. */
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "durable.h"
#include "log.h"
#include "nopass.h"

/* Key files larger than this are not keys provd made or accepts (an RSA-8192 key is ~6.5 KB). */
#define KEY_FILE_MAX (64 * 1024)

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

void pki_errf(char *err, size_t errlen, const char *prefix) {
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    char buf[256] = "unknown error";
    if (reason)
        snprintf(buf, sizeof(buf), "%s", reason);
    else if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", prefix, buf);
}

static const struct {
    const char *name;
    const char *curve; /* NULL for RSA */
    unsigned bits;
} key_types[] = {
    [PKI_KEY_P256] = {"p256", "P-256", 256},
    [PKI_KEY_P384] = {"p384", "P-384", 384},
    [PKI_KEY_RSA2048] = {"rsa2048", NULL, 2048},
    [PKI_KEY_RSA3072] = {"rsa3072", NULL, 3072},
};

int pki_key_type_parse(const char *name, enum pki_key_type *out) {
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
        if (strcmp(name, key_types[i].name) == 0) {
            *out = (enum pki_key_type)i;
            return 0;
        }
    }
    return -1;
}

const char *pki_key_type_name(enum pki_key_type t) {
    return key_types[t].name;
}

EVP_PKEY *pki_key_new_type(enum pki_key_type t) {
    EVP_PKEY *key =
        key_types[t].curve ? EVP_EC_gen(key_types[t].curve) : EVP_RSA_gen(key_types[t].bits);
    if (!key) {
        char what[64];
        snprintf(what, sizeof(what), "generating a %s key", key_types[t].name);
        pki_log_errors(what);
    }
    return key;
}

EVP_PKEY *pki_key_new(void) {
    return pki_key_new_type(PKI_KEY_P256);
}

int pki_key_is_rsa(const EVP_PKEY *key) {
    return EVP_PKEY_is_a(key, "RSA");
}

const EVP_MD *pki_sign_md(const EVP_PKEY *signer) {
    char group[64];
    size_t len = 0;
    if (EVP_PKEY_is_a(signer, "EC") &&
        EVP_PKEY_get_utf8_string_param(signer, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) &&
        (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0))
        return EVP_sha384();
    return EVP_sha256();
}

/* A random 128-bit serial number (RFC 5280 allows up to 20 octets and wants them unpredictable).
 * The top bit is set so every serial has exactly 16 octets: 127 random bits. */
static int set_random_serial(X509 *x) {
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
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

static const struct profile {
    const char *bc;
    const char *ku;
    const char *ku_rsa; /* keyUsage when the subject key is RSA */
    const char *eku;    /* NULL: none */
} profiles[] = {
    [PKI_PROFILE_ROOT] = {"critical,CA:TRUE", "critical,keyCertSign,cRLSign",
                          "critical,keyCertSign,cRLSign", NULL},
    [PKI_PROFILE_ISSUING] = {"critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign",
                             "critical,keyCertSign,cRLSign", NULL},
    [PKI_PROFILE_SERVER] = {"critical,CA:FALSE", "critical,digitalSignature",
                            "critical,digitalSignature,keyEncipherment", "serverAuth"},
    [PKI_PROFILE_DEVICE] = {"critical,CA:FALSE", "critical,digitalSignature",
                            "critical,digitalSignature,keyEncipherment", "clientAuth"},
};

/* Sets a validity bound from a Unix time. */
static int set_time(ASN1_TIME *t, int64_t when) {
    return ASN1_TIME_set(t, (time_t)when) != NULL;
}

/* Sets the subject name of x to CN = cn, in place (X509_set_subject_name would copy a name
 * through an encoding and a decoding). The CN is set as a UTF8String directly rather than
 * through the string table, whose 64-character upper bound would refuse the 128-character
 * registration IDs DPS allows. */
static int set_subject_cn(X509 *x, const char *cn) {
    return X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, V_ASN1_UTF8STRING,
                                      (const unsigned char *)cn, (int)strlen(cn), -1, 0);
}

/* Copies a subject public key as it was encoded (a CSR's) into x. X509_set_pubkey would encode
 * the decoded key again and decode the result, which OpenSSL 3.0 does through its provider
 * encoders and decoders: that round trip cost more than the signature of the certificate. */
static int copy_pubkey(X509 *x, const SPKI_DER *from) {
    const ASN1_OBJECT *alg = NULL;
    const unsigned char *bits = ASN1_STRING_get0_data(from->key);
    int len = ASN1_STRING_length(from->key), ptype = 0;
    const void *pval = NULL;
    if (len <= 0)
        return -1;
    X509_ALGOR_get0(&alg, &ptype, &pval, from->alg);
    /* The forms of parameters keys have (csr.c checks which goes with which key): a curve's
     * name, NULL, none, or explicit curve parameters; RSA's absent NULL is written (RFC 3279).
     * Any other would be copied as nothing, which signing would then trip on. */
    if (ptype == V_ASN1_UNDEF && OBJ_obj2nid(alg) == NID_rsaEncryption)
        ptype = V_ASN1_NULL;
    if (ptype != V_ASN1_OBJECT && ptype != V_ASN1_SEQUENCE && ptype != V_ASN1_NULL &&
        ptype != V_ASN1_UNDEF)
        return -1;
    ASN1_OBJECT *alg_copy = OBJ_dup(alg);
    void *pval_copy = NULL;
    unsigned char *bits_copy = OPENSSL_memdup(bits, (size_t)len);
    if (ptype == V_ASN1_OBJECT)
        pval_copy = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        pval_copy = ASN1_STRING_dup(pval);
    if (!alg_copy || !bits_copy ||
        ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && !pval_copy) ||
        !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg_copy, ptype, pval_copy, bits_copy,
                                len)) {
        ASN1_OBJECT_free(alg_copy);
        if (ptype == V_ASN1_OBJECT)
            ASN1_OBJECT_free(pval_copy);
        else
            ASN1_STRING_free(pval_copy);
        OPENSSL_free(bits_copy);
        return -1;
    }
    return 0;
}

X509 *pki_cert_new(const struct pki_cert_spec *s) {
    const struct profile *p = &profiles[s->profile];
    X509 *x = X509_new();
    X509V3_CTX ctx;
    if (!x || !X509_set_version(x, X509_VERSION_3) || set_random_serial(x) != 0 ||
        !set_time(X509_getm_notBefore(x), s->not_before) ||
        !set_time(X509_getm_notAfter(x), s->not_after) || !set_subject_cn(x, s->cn) ||
        !X509_set_issuer_name(x, X509_get_subject_name(s->issuer ? s->issuer : x)) ||
        (s->spki ? copy_pubkey(x, s->spki) != 0 : !X509_set_pubkey(x, s->key)))
        goto fail;
    /* A self-signed certificate is its own issuer, so its authority key identifier is its own
     * subject key identifier (added first). */
    X509V3_set_ctx(&ctx, s->issuer ? s->issuer : x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, p->bc) != 0 ||
        add_ext(x, &ctx, NID_key_usage, pki_key_is_rsa(s->key) ? p->ku_rsa : p->ku) != 0 ||
        (p->eku && add_ext(x, &ctx, NID_ext_key_usage, p->eku) != 0) ||
        (s->san &&
         !X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)s->san, 0, X509V3_ADD_DEFAULT)) ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0 ||
        !X509_sign(x, s->issuer_key, pki_sign_md(s->issuer_key)))
        goto fail;
    return x;
fail:
    pki_log_errors("making a certificate");
    X509_free(x);
    return NULL;
}

/* The validity of the CA and listener certificates: from five minutes ago, so a peer whose clock
 * is a little behind accepts a certificate made just now, for days. */
static void validity(struct pki_cert_spec *s, int days) {
    int64_t now = (int64_t)time(NULL);
    s->not_before = now - 300;
    s->not_after = now + (int64_t)days * 86400;
}

X509 *pki_root_new(EVP_PKEY *key, const char *cn, int days) {
    struct pki_cert_spec s = {.profile = PKI_PROFILE_ROOT, .key = key, .cn = cn, .issuer_key = key};
    validity(&s, days);
    return pki_cert_new(&s);
}

X509 *pki_issuing_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn, int days) {
    struct pki_cert_spec s = {
        .profile = PKI_PROFILE_ISSUING, .key = key, .cn = cn, .issuer = ca, .issuer_key = ca_key};
    validity(&s, days);
    return pki_cert_new(&s);
}

int pki_san_add(GENERAL_NAMES *gens, int type, const char *value) {
    GENERAL_NAME *gen = NULL;
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (!ip)
            return -1;
        gen = GENERAL_NAME_new();
        if (!gen) {
            ASN1_OCTET_STRING_free(ip);
            return -1;
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s || !ASN1_STRING_set(s, value, (int)strlen(value)) || !(gen = GENERAL_NAME_new())) {
            ASN1_IA5STRING_free(s);
            return -1;
        }
        GENERAL_NAME_set0_value(gen, type, s);
    }
    if (!sk_GENERAL_NAME_push(gens, gen)) {
        GENERAL_NAME_free(gen);
        return -1;
    }
    return 0;
}

/* One subjectAltName entry for a host: IP when it parses as an address, DNS otherwise. */
static int san_add_host(GENERAL_NAMES *gens, const char *name) {
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    return pki_san_add(gens, ip ? GEN_IPADD : GEN_DNS, name);
}

X509 *pki_server_new(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *cn,
                     char *const *hostnames, size_t n, int days) {
    static const char *const fixed[] = {"localhost", "127.0.0.1", "::1"};
    struct pki_cert_spec s = {
        .profile = PKI_PROFILE_SERVER, .key = key, .cn = cn, .issuer = ca, .issuer_key = ca_key};
    GENERAL_NAMES *san = GENERAL_NAMES_new();
    X509 *x = NULL;
    if (!san)
        goto out;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (san_add_host(san, fixed[i]) != 0)
            goto out;
    for (size_t i = 0; i < n; i++) {
        if (san_add_host(san, hostnames[i]) != 0) {
            log_error("\"%s\" cannot be a subject alternative name", hostnames[i]);
            goto out;
        }
    }
    s.san = san;
    validity(&s, days);
    x = pki_cert_new(&s);
out:
    GENERAL_NAMES_free(san);
    return x;
}

/* Replaces path with the PEM held in bio, of mode mode (durable_replace). Returns 0 or -1
 * (logged). */
static int write_atomic(const char *path, mode_t mode, BIO *bio) {
    char *data = NULL, err[4200];
    long len = BIO_get_mem_data(bio, &data);
    if (durable_replace(path, data, (size_t)len, mode, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

int pki_write_key(const char *path, EVP_PKEY *key, int replace) {
    if (!replace && access(path, F_OK) == 0) {
        log_error("%s: %s", path, strerror(EEXIST));
        return -1;
    }
    /* A secure memory BIO wipes the key text when it grows and when it is freed; stdio's buffer
     * would not. */
    BIO *bio = BIO_new(BIO_s_secmem());
    int rc = -1;
    if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        pki_log_errors(path);
    else
        rc = write_atomic(path, 0600, bio);
    BIO_free(bio);
    return rc;
}

int pki_write_certs(const char *path, X509 *const *certs, size_t n) {
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio != NULL, rc = -1;
    for (size_t i = 0; i < n && ok; i++)
        ok = PEM_write_bio_X509(bio, certs[i]);
    if (!ok)
        pki_log_errors(path);
    else
        rc = write_atomic(path, 0644, bio);
    BIO_free(bio);
    return rc;
}

int pki_write_cert(const char *path, X509 *cert) {
    return pki_write_certs(path, &cert, 1);
}

int pki_read_certs(const char *path, STACK_OF(X509) * *out, char *err, size_t errlen) {
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = BIO_new_file(path, "r");
    X509 *x = NULL;
    *out = NULL;
    if (!sk) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!bio) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, pem_no_passphrase, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    /* The loop ends at the end of the file (PEM_R_NO_START_LINE) or at a broken block. */
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        char what[4200];
        snprintf(what, sizeof(what), "%s: certificate %d is malformed", path, sk_X509_num(sk) + 1);
        pki_errf(err, errlen, what);
        goto fail;
    }
    ERR_clear_error();
    if (sk_X509_num(sk) == 0) {
        snprintf(err, errlen, "%s: no PEM certificate in the file", path);
        goto fail;
    }
    BIO_free(bio);
    *out = sk;
    return 0;
fail:
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return -1;
}

int pki_read_key(const char *path, EVP_PKEY **out, char *err, size_t errlen) {
    /* Read with read(2) into our own buffer rather than through stdio or a file BIO, so that no
     * copy of the key text is left behind in a buffer that is freed without being wiped. */
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
    struct stat st;
    BIO *bio = NULL;
    *out = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: not a key file (a regular file of at most %d bytes)", path,
                 KEY_FILE_MAX);
        goto out;
    }
    cap = (size_t)st.st_size + 1;
    if (!(buf = OPENSSL_malloc(cap))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (strstr((char *)buf, "ENCRYPTED")) {
        snprintf(err, errlen,
                 "%s: the key is encrypted; provd needs it unencrypted (openssl pkey -in KEY "
                 "-out PLAIN.key), kept readable by provd only",
                 path);
        goto out;
    }
    if (!(bio = BIO_new_mem_buf(buf, (int)len))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!(*out = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL))) {
        char what[4200];
        snprintf(what, sizeof(what), "%s: no PEM private key could be read", path);
        pki_errf(err, errlen, what);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    OPENSSL_clear_free(buf, cap);
    if (fd >= 0)
        close(fd);
    return rc;
}
