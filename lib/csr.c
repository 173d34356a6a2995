/* The device's keys and certificates: generating a key pair, reading key files, building the
 * PKCS#10 CSR sent with a registration, reading the issuedCertificateChain of the answer, and
 * checking the client certificate of X.509 attestation and the CA file. Private keys live in
 * EVP_PKEY objects, and their PEM text only in OpenSSL's secure memory or in buffers that are
 * wiped when freed: key files are read with read(2) and decoded by OpenSSL's PEM reader in its
 * secure-memory mode, since stdio and its usual buffers free what they read without wiping it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "internal.h"

#include "base64.h"
#include "nopass.h"

/* A CN is at most 64 characters (RFC 5280, ub-common-name). */
#define CN_MAX PROV_CSR_REGID_MAX
/* More certificates than this in one chain is not an answer worth reading. */
#define CHAIN_MAX    16
#define RSA_MIN_BITS 2048
/* Larger than any key file: the PEM of a 16384-bit RSA key is under 13 KB. */
#define KEY_FILE_MAX (64 * 1024)

EVP_PKEY *csr_generate_key(prov_key_type type) {
    switch (type) {
    case PROV_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case PROV_KEY_EC_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case PROV_KEY_RSA_2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case PROV_KEY_RSA_3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    }
    return NULL;
}

/* Keys a provd CSR policy can accept: EC on P-256 or P-384, RSA of 2048 bits or more, Ed25519.
 * Returns NULL, or why the key is not one of them. */
static const char *key_unsupported(EVP_PKEY *key) {
    char curve[64];
    size_t len = 0;

    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                           &len) != 1)
            return "an EC key without a named curve";
        if (strcmp(curve, "prime256v1") != 0 && strcmp(curve, "secp384r1") != 0)
            return "an EC key on a curve other than P-256 and P-384";
        return NULL;
    case EVP_PKEY_RSA:
        return EVP_PKEY_get_bits(key) >= RSA_MIN_BITS ? NULL : "an RSA key under 2048 bits";
    case EVP_PKEY_ED25519:
        return NULL;
    default:
        return "a key of an unsupported type";
    }
}

/* Opens path (a WHAT: "key file", "CA file"...) for reading when it is a regular file, without
 * blocking, so that a FIFO in its place is refused rather than waited on for a writer. Returns
 * the descriptor with *st filled, or -1 with why set. */
static int open_regular(const char *path, const char *what, struct stat *st, char *why,
                        size_t whylen) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 || fstat(fd, st) != 0) {
        snprintf(why, whylen, "cannot read %s %s: %s", what, path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        snprintf(why, whylen, "cannot read %s %s: not a regular file", what, path);
    } else {
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Opens path, a file that holds no secret (certificates), for reading as a BIO. Returns NULL
 * with why and *rc set. */
static BIO *open_file(const char *path, const char *what, prov_err *rc, char *why, size_t whylen) {
    struct stat st;
    int fd = open_regular(path, what, &st, why, whylen);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    BIO *bio;

    if (f == NULL) {
        if (fd >= 0) {
            snprintf(why, whylen, "cannot read %s %s: %s", what, path, strerror(errno));
            close(fd);
        }
        *rc = PROV_ERR_IO;
        return NULL;
    }
    bio = BIO_new_fp(f, BIO_CLOSE);
    if (bio == NULL) {
        fclose(f);
        snprintf(why, whylen, "out of memory");
        *rc = PROV_ERR_NOMEM;
    }
    return bio;
}

/* Memory for the text of a key file: OpenSSL's secure heap when the application set one up and
 * it has room, else the ordinary heap (what OPENSSL_secure_malloc gives without a secure heap).
 * Either is wiped and freed by OPENSSL_secure_clear_free, which tells them apart. */
static char *key_text_alloc(size_t size) {
    char *buf = OPENSSL_secure_malloc(size);

    return buf != NULL ? buf : OPENSSL_malloc(size);
}

/* Reads the key file at path whole with read(2): stdio would keep the text in a buffer of its
 * own, and free it unwiped. Only a regular file is read (open_regular). Returns PROV_OK with *text
 * (*len bytes, freed by the caller with OPENSSL_secure_clear_free(*text, *size)), or an error with
 * why. */
static prov_err read_key_text(const char *path, char **text, size_t *len, size_t *size, char *why,
                              size_t whylen) {
    char *buf = NULL;
    size_t got = 0, cap = 0;
    struct stat st;
    prov_err rc = PROV_ERR_IO;
    int fd;

    if ((fd = open_regular(path, "key file", &st, why, whylen)) < 0)
        return PROV_ERR_IO;
    rc = PROV_ERR_CRYPTO;
    if (st.st_size >= KEY_FILE_MAX) {
        snprintf(why, whylen, "%s is larger than a key file can be", path);
        goto out;
    }
    /* One byte more than the file holds, to notice a file that grows as it is read. */
    cap = (size_t)st.st_size + 1;
    if ((buf = key_text_alloc(cap)) == NULL) {
        snprintf(why, whylen, "out of memory");
        rc = PROV_ERR_NOMEM;
        goto out;
    }
    rc = PROV_ERR_IO;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got == cap) {
        snprintf(why, whylen, "%s changed while it was read", path);
        goto out;
    }
    *text = buf;
    *len = got;
    *size = cap;
    buf = NULL;
    rc = PROV_OK;
    goto out;
fail:
    snprintf(why, whylen, "cannot read key file %s: %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_secure_clear_free(buf, cap);
    return rc;
}

/* Decodes a DER private key of any type (PKCS#8 PrivateKeyInfo, or a traditional EC or RSA
 * key); NULL when der holds none. */
static EVP_PKEY *der_key(const unsigned char *der, size_t len) {
    EVP_PKEY *key = NULL;
    size_t left = len;
    OSSL_DECODER_CTX *dctx;

    /* The decoder's errors say only that der held no key, which the caller reports itself; the
     * application's own errors on the queue stay. */
    ERR_set_mark();
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx != NULL && OSSL_DECODER_from_data(dctx, &der, &left) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    ERR_pop_to_mark();
    return key;
}

prov_err csr_read_key_der(const char *path, unsigned char **der, size_t *len, char *why,
                          size_t whylen) {
    char *text = NULL;
    size_t textlen = 0, textsize = 0;
    unsigned char *data = NULL;
    long datalen = 0;
    prov_err rc;

    *der = NULL;
    *len = 0;
    if ((rc = read_key_text(path, &text, &textlen, &textsize, why, whylen)) != PROV_OK)
        return rc;
    /* What the PEM reader pushes on OpenSSL's error queue is said in why; the application's own
     * errors there stay. */
    ERR_set_mark();
    /* OpenSSL's PEM reader, with its buffers and the DER in secure memory (its usual buffers are
     * freed unwiped). It passes over blocks of other kinds, and refuses encrypted PEM headers
     * (no passphrase); an encrypted PKCS#8 key is refused as it is decoded. */
    BIO *bio = BIO_new_mem_buf(text, (int)textlen);
    if (bio == NULL ||
        PEM_bytes_read_bio_secmem(&data, &datalen, NULL, PEM_STRING_EVP_PKEY, bio,
                                  pem_no_passphrase, NULL) != 1 ||
        datalen <= 0) {
        snprintf(why, whylen, "%s holds no unencrypted PEM private key", path);
        rc = PROV_ERR_CRYPTO;
        OPENSSL_secure_clear_free(data, datalen > 0 ? (size_t)datalen : 0);
    } else {
        *der = data;
        *len = (size_t)datalen;
    }
    BIO_free(bio);
    ERR_pop_to_mark();
    OPENSSL_secure_clear_free(text, textsize);
    return rc;
}

void csr_key_der_free(unsigned char *der, size_t len) {
    OPENSSL_secure_clear_free(der, len);
}

prov_err csr_read_key_file(const char *path, EVP_PKEY **out, char *why, size_t whylen) {
    unsigned char *der = NULL;
    size_t len = 0;
    prov_err rc;

    *out = NULL;
    if ((rc = csr_read_key_der(path, &der, &len, why, whylen)) != PROV_OK)
        return rc;
    *out = der_key(der, len);
    csr_key_der_free(der, len);
    if (*out == NULL) {
        snprintf(why, whylen, "%s holds no unencrypted PEM private key", path);
        return PROV_ERR_CRYPTO;
    }
    return PROV_OK;
}

prov_err csr_load_key_file(const char *path, EVP_PKEY **out, char *why, size_t whylen) {
    const char *bad;
    prov_err rc;

    if ((rc = csr_read_key_file(path, out, why, whylen)) != PROV_OK)
        return rc;
    if ((bad = key_unsupported(*out)) != NULL) {
        snprintf(why, whylen, "%s holds %s", path, bad);
        EVP_PKEY_free(*out);
        *out = NULL;
        return PROV_ERR_CRYPTO;
    }
    return PROV_OK;
}

prov_err prov_check_key_file(const char *path, char *errbuf, size_t errlen) {
    char why[ERRMSG_MAX] = "";
    EVP_PKEY *key = NULL;
    prov_err rc = PROV_ERR_INVALID_ARG;

    if (path == NULL || path[0] == '\0')
        snprintf(why, sizeof(why), "no key file");
    else
        rc = csr_read_key_file(path, &key, why, sizeof(why));
    EVP_PKEY_free(key);
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", rc == PROV_OK ? "" : why);
    return rc;
}

prov_err csr_check_cert_pair(const char *cert_file, const char *key_file, int *mismatch, char *why,
                             size_t whylen) {
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    prov_err rc = PROV_OK;
    BIO *bio;

    if (mismatch != NULL)
        *mismatch = 0;
    if ((bio = open_file(cert_file, "certificate file", &rc, why, whylen)) == NULL)
        return rc;
    leaf = PEM_read_bio_X509(bio, NULL, pem_no_passphrase, NULL);
    BIO_free(bio);
    if (leaf == NULL) {
        snprintf(why, whylen, "%s holds no PEM certificate", cert_file);
        return PROV_ERR_CRYPTO;
    }
    /* The key of a client certificate is the TLS library's business, not a CSR's: any key the
     * handshake can sign with will do. */
    if ((rc = csr_read_key_file(key_file, &key, why, whylen)) != PROV_OK)
        goto out;
    if (X509_check_private_key(leaf, key) != 1) {
        snprintf(why, whylen, "the key of %s is not the key of the certificate in %s", key_file,
                 cert_file);
        if (mismatch != NULL)
            *mismatch = 1;
        rc = PROV_ERR_CRYPTO;
    }
out:
    EVP_PKEY_free(key);
    X509_free(leaf);
    return rc;
}

prov_err csr_check_ca_file(const char *path, char *why, size_t whylen) {
    STACK_OF(X509_INFO) * infos;
    prov_err rc = PROV_OK;
    int certs = 0;
    BIO *bio;

    if ((bio = open_file(path, "CA file", &rc, why, whylen)) == NULL)
        return rc;
    /* Read as OpenSSL reads a CA file for libcurl (X509_load_cert_crl_file reads it so): every
     * block, certificates ("TRUSTED CERTIFICATE" too) and CRLs, and one it cannot read fails the
     * whole file, as each connection would. */
    ERR_set_mark();
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, "");
    for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
        certs += sk_X509_INFO_value(infos, i)->x509 != NULL;
    if (infos == NULL || certs == 0) {
        snprintf(why, whylen,
                 infos == NULL ? "%s holds a PEM block that is not a valid certificate or CRL"
                               : "%s holds no PEM certificate",
                 path);
        rc = PROV_ERR_CRYPTO;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_pop_to_mark();
    BIO_free(bio);
    return rc;
}

char *csr_build_b64(EVP_PKEY *key, const char *cn, const char **why) {
    X509_REQ *req = X509_REQ_new();
    unsigned char *der = NULL;
    char *b64 = NULL;
    const EVP_MD *md;
    int len;

    *why = "out of memory";
    if (req == NULL)
        goto out;
    if (strlen(cn) > CN_MAX) {
        *why = "the registration ID is longer than a certificate's CN may be (64 characters)";
        goto out;
    }
    /* Ed25519 signs the message itself, without a separate digest. */
    md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    *why = "cannot build the CSR";
    if (X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, md) <= 0)
        goto out;
    len = i2d_X509_REQ(req, &der);
    if (len <= 0)
        goto out;
    *why = "out of memory";
    b64 = b64_encode(der, (size_t)len);
out:
    OPENSSL_free(der);
    X509_REQ_free(req);
    return b64;
}

char *csr_key_pem(EVP_PKEY *key) {
    /* Secure memory BIO: its buffers are wiped when they grow and when it is freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL, *pem = NULL;
    long len;

    if (bio == NULL)
        return NULL;
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        (len = BIO_get_mem_data(bio, &data)) > 0 && (pem = malloc((size_t)len + 1)) != NULL) {
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    return pem;
}

/* Moves the contents of a memory BIO into a new NUL-terminated string; NULL when out of
 * memory. */
static char *bio_text(BIO *bio) {
    char *data = NULL, *text;
    long len = BIO_get_mem_data(bio, &data);

    if (len < 0 || (text = malloc((size_t)len + 1)) == NULL)
        return NULL;
    if (len > 0)
        memcpy(text, data, (size_t)len);
    text[len] = '\0';
    return text;
}

prov_err chain_parse(json_t *chain, prov_result *res, char *why, size_t whylen) {
    BIO *all = BIO_new(BIO_s_mem()), *ca = BIO_new(BIO_s_mem());
    prov_err rc = PROV_ERR_NOMEM;
    size_t i, n = json_array_size(chain);

    if (all == NULL || ca == NULL)
        goto out;
    rc = PROV_ERR_PROTOCOL;
    if (!json_is_array(chain) || n == 0 || n > CHAIN_MAX) {
        snprintf(why, whylen, "issuedCertificateChain is not an array of 1 to %d certificates",
                 CHAIN_MAX);
        goto out;
    }
    for (i = 0; i < n; i++) {
        const char *b64 = json_string_value(json_array_get(chain, i));
        unsigned char *der = NULL;
        const unsigned char *p;
        size_t derlen = 0;
        X509 *cert = NULL;
        int ok;

        if (b64 == NULL || b64_decode_lenient(b64, strlen(b64), &der, &derlen, NULL) != 0) {
            snprintf(why, whylen, "issuedCertificateChain[%zu] is not base64", i);
            goto out;
        }
        p = der;
        cert = d2i_X509(NULL, &p, (long)derlen);
        ok = cert != NULL && p == der + derlen;
        b64_free(der, derlen);
        if (!ok) {
            X509_free(cert);
            snprintf(why, whylen, "issuedCertificateChain[%zu] is not a DER certificate", i);
            goto out;
        }
        ok = PEM_write_bio_X509(all, cert) == 1 && (i == 0 || PEM_write_bio_X509(ca, cert) == 1);
        X509_free(cert);
        if (!ok) {
            rc = PROV_ERR_NOMEM;
            goto out;
        }
    }
    rc = PROV_ERR_NOMEM;
    if ((res->issued_chain_pem = bio_text(all)) == NULL ||
        (n > 1 && (res->issued_ca_pem = bio_text(ca)) == NULL))
        goto out;
    res->issued_chain_count = n;
    rc = PROV_OK;
out:
    if (rc == PROV_ERR_NOMEM)
        snprintf(why, whylen, "out of memory");
    BIO_free(all);
    BIO_free(ca);
    return rc;
}

int chain_certifies(const prov_result *res, EVP_PKEY *key) {
    BIO *bio;
    X509 *leaf = NULL;
    int ok = 0;

    if (res->issued_chain_pem == NULL)
        return 0;
    bio = BIO_new_mem_buf(res->issued_chain_pem, -1);
    if (bio != NULL)
        leaf = PEM_read_bio_X509(bio, NULL, pem_no_passphrase, NULL);
    if (leaf != NULL)
        ok = EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1;
    X509_free(leaf);
    BIO_free(bio);
    return ok;
}
