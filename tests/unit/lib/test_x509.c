/* Unit tests for the X.509 side of libprov (lib/csr.c and its use by prov_register): the CSR sent
 * with a registration, read back with OpenSSL; issuedCertificateChain, good and damaged; the key
 * and certificate files of the state directory; the client certificate the transport is asked to
 * present; and the endpoint and configuration read from provd's payload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fake_transport.h"
#include "internal.h"

#include "base64.h"

static char base[] = "/tmp/test_x509.XXXXXX";

static int make_base(void **state) {
    (void)state;
    return mkdtemp(base) != NULL ? 0 : -1;
}

static int remove_base(void **state) {
    char cmd[64];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* base/name, in one of two rotating buffers (so that two paths can be used in one call). */
static const char *path_for(const char *name) {
    static char paths[2][512];
    static int next;
    char *p = paths[next++ % 2];

    assert_true(snprintf(p, 512, "%s/%s", base, name) < 512);
    return p;
}

/* ---- Certificates made in the test ---- */

static EVP_PKEY *new_key(void) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    assert_non_null(k);
    return k;
}

/* A certificate for key's public key with CN=cn, signed by signer (self-signed when issuer is
 * NULL). */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *signer) {
    X509 *x = X509_new();

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)),
                     1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    return x;
}

static char *cert_b64(X509 *x) {
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    char *b64;

    assert_true(len > 0);
    b64 = b64_encode(der, (size_t)len);
    OPENSSL_free(der);
    assert_non_null(b64);
    return b64;
}

static char *cert_pem(X509 *x) {
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    assert_non_null(pem);
    return pem;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void write_key(const char *path, EVP_PKEY *key, const EVP_CIPHER *enc) {
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, enc, (unsigned char *)(enc ? "pw" : NULL),
                                          enc ? 2 : 0, NULL, NULL),
                     1);
    assert_int_equal(fclose(f), 0);
}

static void write_cert(const char *path, X509 *x) {
    char *pem = cert_pem(x);

    write_text(path, pem);
    free(pem);
}

/* The CSR key of a client, read back from the PEM the API gives out. */
static EVP_PKEY *client_key(prov_client *c) {
    char *pem = NULL;
    BIO *bio;
    EVP_PKEY *k;

    assert_int_equal(prov_client_get_key_pem(c, &pem), PROV_OK);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    bio = BIO_new_mem_buf(pem, -1);
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    prov_secret_free(pem);
    assert_non_null(k);
    return k;
}

/* An assigned answer whose registrationState carries chain_json (a JSON value as text). */
static char *assigned_with_chain(const char *chain_json) {
    char *body = NULL;

    assert_true(asprintf(&body,
                         "{\"operationId\":\"op-1\",\"status\":\"assigned\",\"registrationState\":{"
                         "\"registrationId\":\"" VEC_REGID "\",\"deviceId\":\"dev-id-1\","
                         "\"assignedHub\":\"hub-a.example.com\",\"status\":\"assigned\","
                         "\"issuedCertificateChain\":%s}}",
                         chain_json) > 0);
    return body;
}

/* A CA and a chain [leaf for key, CA] as the JSON text of an issuedCertificateChain. */
struct chain {
    EVP_PKEY *ca_key;
    X509 *ca, *leaf;
    char *json;
};

static void chain_for(struct chain *ch, EVP_PKEY *key) {
    char *leaf_b64, *ca_b64;

    ch->ca_key = new_key();
    ch->ca = new_cert(ch->ca_key, "test root", NULL, ch->ca_key);
    ch->leaf = new_cert(key, VEC_REGID, ch->ca, ch->ca_key);
    leaf_b64 = cert_b64(ch->leaf);
    ca_b64 = cert_b64(ch->ca);
    assert_true(asprintf(&ch->json, "[\"%s\",\"%s\"]", leaf_b64, ca_b64) > 0);
    free(leaf_b64);
    free(ca_b64);
}

static void chain_free(struct chain *ch) {
    EVP_PKEY_free(ch->ca_key);
    X509_free(ch->ca);
    X509_free(ch->leaf);
    free(ch->json);
}

/* ---- The CSR ---- */

/* The CSR in a request body, parsed back. */
static X509_REQ *csr_in_body(const char *body) {
    json_t *doc = json_loads(body, 0, NULL);
    const char *b64 = json_string_value(json_object_get(doc, "csr"));
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509_REQ *req;

    assert_non_null(b64);
    assert_string_equal(json_string_value(json_object_get(doc, "registrationId")), VEC_REGID);
    assert_int_equal(b64_decode(b64, strlen(b64), &der, &len, NULL), 0);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_ptr_equal(p, der + len);
    b64_free(der, len);
    json_decref(doc);
    return req;
}

static void assert_csr(X509_REQ *req, EVP_PKEY *key, int base_id, const char *curve) {
    char cn[160], group[64];
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    size_t glen = 0;

    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn)),
        (int)strlen(VEC_REGID));
    assert_string_equal(cn, VEC_REGID);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 1);
    assert_int_equal(EVP_PKEY_get_base_id(pub), base_id);
    if (curve != NULL) {
        assert_int_equal(EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof(group), &glen),
                         1);
        assert_string_equal(group, curve);
    }
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    assert_int_equal(EVP_PKEY_eq(pub, key), 1);
}

static void csr_is_sent_and_chain_returned(void **state) {
    struct fake_answer script[] = {{PROV_OK, 200, FAKE_JSON, NULL, NULL, 0}};
    struct chain ch;
    struct fake f;
    prov_result *r = NULL;
    prov_client *c;
    EVP_PKEY *key;
    X509_REQ *req;
    char *leaf_pem, *ca_pem, *both;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_generate_key(c, PROV_KEY_EC_P256), PROV_OK);
    key = client_key(c);
    chain_for(&ch, key);
    script[0].body = assigned_with_chain(ch.json);

    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_int_equal(f.n_reqs, 1);
    req = csr_in_body(f.reqs[0].body);
    assert_csr(req, key, EVP_PKEY_EC, "prime256v1");
    /* The CSR is sent alongside symmetric-key attestation, which still signs the request. */
    assert_non_null(fake_header(&f.reqs[0], "Authorization"));

    leaf_pem = cert_pem(ch.leaf);
    ca_pem = cert_pem(ch.ca);
    assert_true(asprintf(&both, "%s%s", leaf_pem, ca_pem) > 0);
    assert_int_equal(r->issued_chain_count, 2);
    assert_string_equal(r->issued_chain_pem, both);
    assert_string_equal(r->issued_ca_pem, ca_pem);

    free(leaf_pem);
    free(ca_pem);
    free(both);
    X509_REQ_free(req);
    prov_result_free(r);
    EVP_PKEY_free(key);
    chain_free(&ch);
    free((char *)script[0].body);
    prov_client_free(c);
    fake_free(&f);
}

static void every_key_type_makes_a_valid_csr(void **state) {
    static const struct {
        prov_key_type type;
        int base_id;
        const char *curve;
        int bits;
    } cases[] = {
        {PROV_KEY_EC_P256, EVP_PKEY_EC, "prime256v1", 256},
        {PROV_KEY_EC_P384, EVP_PKEY_EC, "secp384r1", 384},
        {PROV_KEY_RSA_2048, EVP_PKEY_RSA, NULL, 2048},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *key = csr_generate_key(cases[i].type);
        const char *why = NULL;
        char *b64, *body;
        X509_REQ *req;

        assert_non_null(key);
        assert_int_equal(EVP_PKEY_get_bits(key), cases[i].bits);
        b64 = csr_build_b64(key, VEC_REGID, &why);
        assert_non_null(b64);
        assert_true(asprintf(&body, "{\"registrationId\":\"%s\",\"csr\":\"%s\"}", VEC_REGID, b64) >
                    0);
        req = csr_in_body(body);
        assert_csr(req, key, cases[i].base_id, cases[i].curve);
        X509_REQ_free(req);
        free(body);
        free(b64);
        EVP_PKEY_free(key);
    }
    assert_null(csr_generate_key((prov_key_type)99));
}

/* A CN of 64 characters, the most RFC 5280 allows, is sent whole; one more is refused. */
static void a_cn_longer_than_64_is_refused(void **state) {
    EVP_PKEY *key = new_key();
    const char *why = NULL;
    char cn[PROV_CSR_REGID_MAX + 2], got[PROV_CSR_REGID_MAX + 2], *b64;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509_REQ *req;

    (void)state;
    assert_int_equal(PROV_CSR_REGID_MAX, 64);
    memset(cn, 'a', 65);
    cn[65] = '\0';
    assert_null(csr_build_b64(key, cn, &why));
    assert_string_equal(why, "the registration ID is longer than a certificate's CN may be (64 "
                             "characters)");
    cn[64] = '\0';
    why = NULL;
    b64 = csr_build_b64(key, cn, &why);
    assert_non_null(b64);
    assert_int_equal(b64_decode(b64, strlen(b64), &der, &len, NULL), 0);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_ptr_equal(p, der + len);
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, got, sizeof(got)),
        64);
    assert_string_equal(got, cn);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
    X509_REQ_free(req);
    b64_free(der, len);
    free(b64);
    EVP_PKEY_free(key);
}

static void an_existing_key_file_is_used(void **state) {
    struct fake_answer script[] = {{PROV_OK, 200, FAKE_JSON, NULL, NULL, 0}};
    EVP_PKEY *key = new_key(), *got;
    struct chain ch;
    struct fake f;
    prov_result *r = NULL;
    prov_client *c;
    X509_REQ *req;

    (void)state;
    write_key(path_for("mine.key"), key, NULL);
    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("mine.key")), PROV_OK);
    got = client_key(c);
    assert_int_equal(EVP_PKEY_eq(got, key), 1);
    chain_for(&ch, key);
    script[0].body = assigned_with_chain(ch.json);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    req = csr_in_body(f.reqs[0].body);
    assert_csr(req, key, EVP_PKEY_EC, "prime256v1");

    X509_REQ_free(req);
    prov_result_free(r);
    EVP_PKEY_free(got);
    EVP_PKEY_free(key);
    chain_free(&ch);
    free((char *)script[0].body);
    prov_client_free(c);
    fake_free(&f);
}

static void unusable_key_files_are_refused(void **state) {
    EVP_PKEY *key = new_key(), *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    prov_client *c = NULL;
    char *pem = NULL;

    (void)state;
    assert_non_null(small);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    write_key(path_for("enc.key"), key, EVP_aes_128_cbc());
    write_key(path_for("small.key"), small, NULL);
    write_text(path_for("junk.key"), "not a key\n");
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("enc.key")), PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("small.key")), PROV_ERR_CRYPTO);
    assert_non_null(strstr(prov_client_last_error(c), "2048"));
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("junk.key")), PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("none.key")), PROV_ERR_IO);
    assert_int_equal(prov_client_set_csr_key_file(c, ""), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_generate_key(c, (prov_key_type)99), PROV_ERR_INVALID_ARG);
    /* None of them left a key behind. */
    assert_int_equal(prov_client_get_key_pem(c, &pem), PROV_ERR_INVALID_ARG);
    assert_null(pem);
    assert_int_equal(prov_client_generate_key(c, PROV_KEY_EC_P256), PROV_OK);
    assert_int_equal(prov_client_set_csr_key_file(c, NULL), PROV_OK);
    assert_int_equal(prov_client_get_key_pem(c, &pem), PROV_ERR_INVALID_ARG);
    prov_client_free(c);
    EVP_PKEY_free(key);
    EVP_PKEY_free(small);
}

/* key as traditional PEM ("EC PRIVATE KEY"), encrypted with a passphrase when enc is set. */
static char *traditional_pem(EVP_PKEY *key, const EVP_CIPHER *enc) {
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, key, enc,
                                                          (unsigned char *)(enc ? "pw" : NULL),
                                                          enc ? 2 : 0, NULL, NULL),
                     1);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    assert_non_null(pem);
    return pem;
}

/* text with every "\n" made "\r\n"; freed by the caller. */
static char *crlf(const char *text) {
    char *out = malloc(strlen(text) * 2 + 1), *o = out;

    assert_non_null(out);
    for (; *text != '\0'; text++) {
        if (*text == '\n')
            *o++ = '\r';
        *o++ = *text;
    }
    *o = '\0';
    return out;
}

/* The key files are read by the library itself (into memory it wipes) rather than by OpenSSL's
 * PEM reader: every form that reader takes is taken, the first private key of a file counts,
 * and an encrypted key is refused in either of its forms. */
static void key_files_of_every_pem_form(void **state) {
    EVP_PKEY *key = new_key(), *got;
    X509 *cert = new_cert(key, VEC_REGID, NULL, key);
    char *trad = traditional_pem(key, NULL), *enc = traditional_pem(key, EVP_aes_128_cbc());
    char *cert_text = cert_pem(cert), *pkcs8, *text, why[256], text_why[600];
    prov_client *c = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    long len;

    (void)state;
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &text);
    pkcs8 = strndup(text, (size_t)len);
    BIO_free(bio);
    assert_non_null(strstr(trad, "-----BEGIN EC PRIVATE KEY-----"));
    assert_non_null(strstr(enc, "Proc-Type: 4,ENCRYPTED"));
    assert_int_equal(prov_client_new(&c), PROV_OK);

    /* Traditional EC, and PKCS#8 with CRLF line ends. */
    write_text(path_for("trad.key"), trad);
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("trad.key")), PROV_OK);
    got = client_key(c);
    assert_int_equal(EVP_PKEY_eq(got, key), 1);
    EVP_PKEY_free(got);
    text = crlf(pkcs8);
    write_text(path_for("crlf.key"), text);
    free(text);
    assert_int_equal(prov_check_key_file(path_for("crlf.key"), why, sizeof(why)), PROV_OK);
    /* The certificate and its key in one file, either way round, with text before them. */
    assert_true(asprintf(&text, "Bag Attributes: none\n%s%s", cert_text, trad) > 0);
    write_text(path_for("both.pem"), text);
    free(text);
    assert_int_equal(prov_client_set_client_cert(c, path_for("both.pem"), path_for("both.pem")),
                     PROV_OK);
    assert_true(asprintf(&text, "%s%s", pkcs8, cert_text) > 0);
    write_text(path_for("both2.pem"), text);
    free(text);
    assert_int_equal(prov_client_set_client_cert(c, path_for("both2.pem"), path_for("both2.pem")),
                     PROV_OK);

    /* Encrypted, traditionally (a Proc-Type header) and as PKCS#8. */
    write_text(path_for("enc-trad.key"), enc);
    assert_int_equal(prov_check_key_file(path_for("enc-trad.key"), why, sizeof(why)),
                     PROV_ERR_CRYPTO);
    assert_non_null(strstr(why, "holds no unencrypted PEM private key"));
    write_key(path_for("enc8.key"), key, EVP_aes_128_cbc());
    assert_int_equal(prov_check_key_file(path_for("enc8.key"), why, sizeof(why)), PROV_ERR_CRYPTO);
    /* A key block that is not base64, one without its end, and a certificate alone. */
    assert_true(asprintf(&text, "-----BEGIN PRIVATE KEY-----\nnot base64!\n"
                                "-----END PRIVATE KEY-----\n") > 0);
    write_text(path_for("bad64.key"), text);
    free(text);
    assert_int_equal(prov_check_key_file(path_for("bad64.key"), why, sizeof(why)), PROV_ERR_CRYPTO);
    write_text(path_for("cut.key"), "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n");
    assert_int_equal(prov_check_key_file(path_for("cut.key"), why, sizeof(why)), PROV_ERR_CRYPTO);
    write_text(path_for("cert-only.pem"), cert_text);
    assert_int_equal(prov_check_key_file(path_for("cert-only.pem"), why, sizeof(why)),
                     PROV_ERR_CRYPTO);
    /* A directory is a file that cannot be read; so is a FIFO, at once, without a writer. */
    assert_int_equal(prov_check_key_file(base, why, sizeof(why)), PROV_ERR_IO);
    assert_non_null(strstr(why, "cannot read key file"));
    assert_int_equal(mkfifo(path_for("fifo.key"), 0600), 0);
    assert_int_equal(prov_check_key_file(path_for("fifo.key"), why, sizeof(why)), PROV_ERR_IO);
    snprintf(text_why, sizeof(text_why), "cannot read key file %s: not a regular file",
             path_for("fifo.key"));
    assert_string_equal(why, text_why);

    prov_client_free(c);
    free(pkcs8);
    free(trad);
    free(enc);
    free(cert_text);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- The CA file ---- */

/* An empty CRL of ca's, signed with ca_key, as PEM text (freed by the caller). */
static char *crl_pem(X509 *ca, EVP_PKEY *ca_key) {
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *text;
    long len;

    assert_non_null(crl);
    assert_non_null(now);
    assert_non_null(bio);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
    assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509_CRL(bio, crl), 1);
    len = BIO_get_mem_data(bio, &data);
    text = strndup(data, (size_t)len);
    assert_non_null(text);
    BIO_free(bio);
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    return text;
}

/* A CA file is read when it is set: one that cannot be read or holds no certificate is the
 * setting's fault, said at once, not a server that cannot be trusted at the first connection. */
static void a_ca_file_is_checked_when_set(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED};
    EVP_PKEY *key = new_key();
    X509 *ca = new_cert(key, "test root", NULL, key);
    char want[600], *text, *crl_text, *ca_text = cert_pem(ca);
    prov_result *r = NULL;
    struct fake f;
    prov_client *c;

    (void)state;
    fake_init(&f, script, 1);
    c = fake_client(&f);
    write_cert(path_for("ca.pem"), ca);
    write_key(path_for("ca.key"), key, NULL);
    assert_int_equal(prov_client_set_ca_file(c, path_for("ca.pem")), PROV_OK);
    assert_string_equal(prov_client_last_error(c), "");

    assert_int_equal(prov_client_set_ca_file(c, path_for("none.pem")), PROV_ERR_IO);
    snprintf(want, sizeof(want), "cannot read CA file %s: No such file or directory",
             path_for("none.pem"));
    assert_string_equal(prov_client_last_error(c), want);
    /* A FIFO is refused at once rather than waited on for a writer. */
    assert_int_equal(mkfifo(path_for("ca.fifo"), 0600), 0);
    assert_int_equal(prov_client_set_ca_file(c, path_for("ca.fifo")), PROV_ERR_IO);
    snprintf(want, sizeof(want), "cannot read CA file %s: not a regular file", path_for("ca.fifo"));
    assert_string_equal(prov_client_last_error(c), want);
    assert_int_equal(prov_client_set_ca_file(c, path_for("ca.key")), PROV_ERR_CRYPTO);
    snprintf(want, sizeof(want), "%s holds no PEM certificate", path_for("ca.key"));
    assert_string_equal(prov_client_last_error(c), want);
    /* A certificate request is not a certificate. */
    assert_int_equal(prov_client_set_ca_file(c, PROV_TEST_DATA "/csr/good-p256.pem"),
                     PROV_ERR_CRYPTO);
    write_text(path_for("empty.pem"), "");
    assert_int_equal(prov_client_set_ca_file(c, path_for("empty.pem")), PROV_ERR_CRYPTO);
    /* A refused file leaves the one set before. */
    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_string_equal(f.reqs[0].ca_file, path_for("ca.pem"));
    prov_result_free(r);

    /* A CRL beside the certificate is loaded with it, as the TLS library loads the file... */
    crl_text = crl_pem(ca, key);
    assert_true(asprintf(&text, "%s%s", crl_text, ca_text) > 0);
    write_text(path_for("with-crl.pem"), text);
    free(text);
    assert_int_equal(prov_client_set_ca_file(c, path_for("with-crl.pem")), PROV_OK);
    write_text(path_for("crl-only.pem"), crl_text);
    assert_int_equal(prov_client_set_ca_file(c, path_for("crl-only.pem")), PROV_ERR_CRYPTO);
    snprintf(want, sizeof(want), "%s holds no PEM certificate", path_for("crl-only.pem"));
    assert_string_equal(prov_client_last_error(c), want);
    /* ...but a block it cannot read fails the whole file at every connection, wherever the
     * block is: the file is refused at once. */
    assert_true(asprintf(&text, "%s%s", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                         ca_text) > 0);
    write_text(path_for("bad-crl.pem"), text);
    free(text);
    assert_int_equal(prov_client_set_ca_file(c, path_for("bad-crl.pem")), PROV_ERR_CRYPTO);
    snprintf(want, sizeof(want), "%s holds a PEM block that is not a valid certificate or CRL",
             path_for("bad-crl.pem"));
    assert_string_equal(prov_client_last_error(c), want);
    assert_true(asprintf(&text, "%s%s", ca_text,
                         "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") > 0);
    write_text(path_for("bad-tail.pem"), text);
    free(text);
    assert_int_equal(prov_client_set_ca_file(c, path_for("bad-tail.pem")), PROV_ERR_CRYPTO);
    free(crl_text);
    prov_client_free(c);
    fake_free(&f);
    free(ca_text);
    X509_free(ca);
    EVP_PKEY_free(key);
}

/* Checking a key file or a CA file leaves OpenSSL's error queue as the application left it: its
 * own errors stay, and none of the library's reading is added. */
static void the_error_queue_is_the_applications(void **state) {
    prov_client *c = NULL;
    char why[256];

    (void)state;
    write_text(path_for("queue-junk.pem"),
               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    write_text(path_for("queue-bad-ca.pem"),
               "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_int_equal(prov_client_new(&c), PROV_OK);
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_USER, 42, "the application's");
    assert_int_equal(prov_check_key_file(path_for("queue-junk.pem"), why, sizeof(why)),
                     PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_ca_file(c, path_for("queue-bad-ca.pem")), PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_ca_file(c, PROV_TEST_DATA "/csr/good-p256.pem"),
                     PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_csr_key_file(c, PROV_TEST_DATA "/csr/good-p256.pem"),
                     PROV_ERR_CRYPTO);
    assert_int_equal(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_USER);
    assert_int_equal(ERR_GET_REASON(ERR_get_error()), 42);
    assert_int_equal(ERR_get_error(), 0);
    prov_client_free(c);
}

/* ---- The chain in the answer ---- */

/* Registers with a fresh CSR key against one answer with body; returns prov_register's code. */
static prov_err register_with_csr(const char *body) {
    struct fake_answer script[] = {{PROV_OK, 200, FAKE_JSON, NULL, body, 0}};
    struct fake f;
    prov_result *r = NULL;
    prov_client *c;
    prov_err rc;

    fake_init(&f, script, 1);
    c = fake_client(&f);
    assert_int_equal(prov_client_generate_key(c, PROV_KEY_EC_P256), PROV_OK);
    rc = prov_register(c, &r);
    if (rc != PROV_OK)
        assert_null(r);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
    return rc;
}

static void a_missing_chain_fails_a_csr_registration(void **state) {
    (void)state;
    assert_int_equal(register_with_csr(FAKE_ASSIGNED_BODY), PROV_ERR_PROTOCOL);
}

static void a_chain_for_another_key_fails(void **state) {
    EVP_PKEY *other = new_key();
    struct chain ch;
    char *body;

    (void)state;
    chain_for(&ch, other);
    body = assigned_with_chain(ch.json);
    assert_int_equal(register_with_csr(body), PROV_ERR_PROTOCOL);
    free(body);
    chain_free(&ch);
    EVP_PKEY_free(other);
}

/* Parses body as a 200 answer into res. */
static prov_err parse(const char *body, prov_result *res, char *why, size_t whylen) {
    prov_http_response resp;
    enum answer_kind kind;
    prov_err rc;

    memset(&resp, 0, sizeof(resp));
    assert_int_equal(prov_http_response_set_status(&resp, 200), PROV_OK);
    assert_int_equal(
        prov_http_response_add_header(&resp, "Content-Type", 12, FAKE_JSON, strlen(FAKE_JSON)),
        PROV_OK);
    assert_int_equal(prov_http_response_append_body(&resp, body, strlen(body)), PROV_OK);
    memset(res, 0, sizeof(*res));
    rc = response_parse_registration(&resp, res, &kind, why, whylen);
    response_release(&resp);
    return rc;
}

static void malformed_chains_are_protocol_errors(void **state) {
    EVP_PKEY *key = new_key();
    struct chain ch;
    char *leaf_b64, *bad[8], why[ERRMSG_MAX];
    prov_result res;
    size_t i, n = 0;

    (void)state;
    chain_for(&ch, key);
    leaf_b64 = cert_b64(ch.leaf);
    bad[n++] = strdup("[]");
    bad[n++] = strdup("\"not an array\"");
    bad[n++] = strdup("[42]");
    bad[n++] = strdup("[\"not base64!\"]");
    bad[n++] = strdup("[\"aGVsbG8gd29ybGQ=\"]"); /* base64, not DER */
    /* A certificate with a byte of garbage after it. */
    {
        unsigned char *der = NULL;
        size_t len = 0;
        char *b64;

        assert_int_equal(b64_decode(leaf_b64, strlen(leaf_b64), &der, &len, NULL), 0);
        der = realloc(der, len + 1);
        der[len] = 0;
        b64 = b64_encode(der, len + 1);
        assert_true(asprintf(&bad[n++], "[\"%s\"]", b64) > 0);
        free(b64);
        free(der);
    }
    assert_true(asprintf(&bad[n++], "[\"%s\", null]", leaf_b64) > 0);
    for (i = 0; i < n; i++) {
        char *body = assigned_with_chain(bad[i]);

        assert_int_equal(parse(body, &res, why, sizeof(why)), PROV_ERR_PROTOCOL);
        assert_non_null(strstr(why, "issuedCertificateChain"));
        assert_null(res.issued_chain_pem);
        assert_null(res.device_id);
        free(body);
        free(bad[i]);
    }
    free(leaf_b64);
    chain_free(&ch);
    EVP_PKEY_free(key);
}

static void a_good_chain_parses_without_a_csr(void **state) {
    EVP_PKEY *key = new_key();
    struct chain ch;
    char *body, *b64, *one, *pem, why[ERRMSG_MAX];
    prov_result res;

    (void)state;
    chain_for(&ch, key);
    body = assigned_with_chain(ch.json);
    assert_int_equal(parse(body, &res, why, sizeof(why)), PROV_OK);
    assert_int_equal(res.issued_chain_count, 2);
    assert_int_equal(chain_certifies(&res, key), 1);
    assert_int_equal(chain_certifies(&res, ch.ca_key), 0);
    result_clear(&res);
    free(body);
    /* The leaf alone: no CA part. */
    b64 = cert_b64(ch.leaf);
    assert_true(asprintf(&one, "[\"%s\"]", b64) > 0);
    body = assigned_with_chain(one);
    assert_int_equal(parse(body, &res, why, sizeof(why)), PROV_OK);
    pem = cert_pem(ch.leaf);
    assert_string_equal(res.issued_chain_pem, pem);
    assert_null(res.issued_ca_pem);
    assert_int_equal(res.issued_chain_count, 1);
    result_clear(&res);
    free(pem);
    free(body);
    free(one);
    free(b64);
    chain_free(&ch);
    EVP_PKEY_free(key);
}

/* ---- X.509 attestation ---- */

static void the_client_certificate_goes_to_the_transport(void **state) {
    static const struct fake_answer script[] = {FAKE_ASSIGNED, FAKE_ASSIGNED};
    EVP_PKEY *key = new_key();
    X509 *cert = new_cert(key, VEC_REGID, NULL, key);
    const struct fake_request *req;
    struct fake f;
    prov_result *r = NULL;
    prov_client *c;

    (void)state;
    write_cert(path_for("dev.pem"), cert);
    write_key(path_for("dev.key"), key, NULL);
    fake_init(&f, script, 2);
    c = fake_client(&f);
    assert_int_equal(prov_client_set_client_cert(c, path_for("dev.pem"), path_for("dev.key")),
                     PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    req = &f.reqs[0];
    assert_string_equal(req->client_cert_file, path_for("dev.pem"));
    assert_string_equal(req->client_key_file, path_for("dev.key"));
    assert_null(fake_header(req, "Authorization"));
    assert_int_equal(req->n_headers, 3);
    /* No key was set: the request body is the plain one. */
    assert_string_equal(req->body, "{\"registrationId\":\"" VEC_REGID "\"}");

    /* A symmetric key replaces the certificate: SAS again, no client certificate. */
    assert_int_equal(prov_client_set_symmetric_key(c, VEC_KEY), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    prov_result_free(r);
    req = &f.reqs[1];
    assert_null(req->client_cert_file);
    assert_null(req->client_key_file);
    assert_non_null(fake_header(req, "Authorization"));
    prov_client_free(c);
    fake_free(&f);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void client_certificate_errors(void **state) {
    EVP_PKEY *key = new_key(), *other = new_key();
    X509 *cert = new_cert(key, VEC_REGID, NULL, key);
    prov_client *c = NULL;
    prov_result *r = NULL;

    (void)state;
    write_cert(path_for("c.pem"), cert);
    write_key(path_for("c.key"), key, NULL);
    write_key(path_for("other.key"), other, NULL);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_client_cert(c, path_for("c.pem"), NULL), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_set_client_cert(c, path_for("c.pem"), path_for("other.key")),
                     PROV_ERR_CRYPTO);
    assert_non_null(strstr(prov_client_last_error(c), "is not the key of the certificate"));
    assert_int_equal(prov_client_set_client_cert(c, path_for("c.key"), path_for("c.key")),
                     PROV_ERR_CRYPTO);
    assert_int_equal(prov_client_set_client_cert(c, path_for("none.pem"), path_for("c.key")),
                     PROV_ERR_IO);
    /* Nothing was set: a registration lacks its credential. */
    assert_int_equal(prov_client_set_endpoint(c, "https://prov.example.com"), PROV_OK);
    assert_int_equal(prov_client_set_id_scope(c, VEC_SCOPE), PROV_OK);
    assert_int_equal(prov_client_set_registration_id(c, VEC_REGID), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_ERR_INVALID_ARG);
    assert_string_equal(prov_client_last_error(c),
                        "cannot register: no key or client certificate set");
    assert_int_equal(prov_client_set_client_cert(c, NULL, NULL), PROV_OK);
    prov_client_free(c);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

/* A client certificate's key is what the TLS handshake signs with: a key a CSR may not carry
 * (EC P-521 here) is good enough, while the CSR key keeps its policy. */
static void client_certificate_keys_of_any_type(void **state) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    X509 *cert;
    prov_client *c = NULL;
    char why[256];

    (void)state;
    assert_non_null(key);
    cert = new_cert(key, VEC_REGID, NULL, key);
    write_cert(path_for("p521.pem"), cert);
    write_key(path_for("p521.key"), key, NULL);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_client_cert(c, path_for("p521.pem"), path_for("p521.key")),
                     PROV_OK);
    assert_int_equal(prov_client_set_csr_key_file(c, path_for("p521.key")), PROV_ERR_CRYPTO);
    assert_non_null(strstr(prov_client_last_error(c), "curve other than P-256 and P-384"));

    /* prov_check_key_file: the key alone, of any type, with the reason for a bad one. */
    write_text(path_for("junk.key"), "not a key\n");
    assert_int_equal(prov_check_key_file(path_for("p521.key"), why, sizeof(why)), PROV_OK);
    assert_string_equal(why, "");
    assert_int_equal(prov_check_key_file(path_for("p521.pem"), why, sizeof(why)), PROV_ERR_CRYPTO);
    assert_non_null(strstr(why, "holds no unencrypted PEM private key"));
    assert_int_equal(prov_check_key_file(path_for("junk.key"), why, sizeof(why)), PROV_ERR_CRYPTO);
    assert_int_equal(prov_check_key_file(path_for("none.key"), why, sizeof(why)), PROV_ERR_IO);
    assert_non_null(strstr(why, "cannot read key file"));
    assert_int_equal(prov_check_key_file(path_for("none.key"), NULL, 0), PROV_ERR_IO);
    assert_int_equal(prov_check_key_file("", why, sizeof(why)), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_check_key_file(NULL, why, sizeof(why)), PROV_ERR_INVALID_ARG);
    prov_client_free(c);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- State files ---- */

static void assert_private_file(const char *path) {
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(S_ISREG(st.st_mode));
}

/* The whole of a small file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    size_t n;

    assert_non_null(f);
    assert_non_null(buf);
    n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* No temporary file is left in dir. */
static void assert_no_temporaries(const char *dir) {
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -q '^\\.'", dir);
    assert_int_not_equal(system(cmd), 0);
}

static void key_and_certificates_are_kept_privately(void **state) {
    const char *dir = path_for("keys");
    char dirbuf[512], why[256], p[600];
    EVP_PKEY *key, *back;
    prov_client *c = NULL;
    prov_result res;
    char *text;
    BIO *bio;

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_state_save_key(dirbuf, c, why, sizeof(why)), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_client_generate_key(c, PROV_KEY_EC_P256), PROV_OK);
    assert_int_equal(prov_state_save_key(dirbuf, c, why, sizeof(why)), PROV_OK);
    snprintf(p, sizeof(p), "%s/%s", dirbuf, PROV_STATE_KEY_FILE);
    assert_private_file(p);
    text = slurp(p);
    bio = BIO_new_mem_buf(text, -1);
    back = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    key = client_key(c);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(back, key), 1);
    free(text);
    EVP_PKEY_free(back);

    memset(&res, 0, sizeof(res));
    assert_int_equal(prov_state_save_certificates(dirbuf, &res, why, sizeof(why)),
                     PROV_ERR_INVALID_ARG);
    res.issued_chain_pem = "LEAF\nCA\n";
    res.issued_ca_pem = "CA\n";
    assert_int_equal(prov_state_save_certificates(dirbuf, &res, why, sizeof(why)), PROV_OK);
    snprintf(p, sizeof(p), "%s/%s", dirbuf, PROV_STATE_CERT_FILE);
    assert_private_file(p);
    text = slurp(p);
    assert_string_equal(text, "LEAF\nCA\n");
    free(text);
    snprintf(p, sizeof(p), "%s/%s", dirbuf, PROV_STATE_CHAIN_FILE);
    assert_private_file(p);
    text = slurp(p);
    assert_string_equal(text, "CA\n");
    free(text);
    /* A leaf alone leaves no chain file of an earlier issue behind. */
    res.issued_chain_pem = "LEAF2\n";
    res.issued_ca_pem = NULL;
    assert_int_equal(prov_state_save_certificates(dirbuf, &res, why, sizeof(why)), PROV_OK);
    assert_int_equal(access(p, F_OK), -1);
    assert_no_temporaries(dirbuf);
    EVP_PKEY_free(key);
    prov_client_free(c);
}

static void files_are_replaced_atomically(void **state) {
    const char *dir = path_for("files");
    char dirbuf[512], why[256], p[600], old[600], *text;
    struct stat st;

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    assert_int_equal(prov_state_write_file(dirbuf, "config.json", "{}\n", 3, why, sizeof(why)),
                     PROV_OK);
    assert_int_equal(stat(dirbuf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof(p), "%s/config.json", dirbuf);
    snprintf(old, sizeof(old), "%s/old-link", dirbuf);
    assert_private_file(p);
    /* A second name for the first file: replacing the file by rename leaves it untouched, where
     * rewriting in place would change what it reads. */
    assert_int_equal(link(p, old), 0);
    assert_int_equal(
        prov_state_write_file(dirbuf, "config.json", "{\"a\":1}\n", 8, why, sizeof(why)), PROV_OK);
    text = slurp(p);
    assert_string_equal(text, "{\"a\":1}\n");
    free(text);
    text = slurp(old);
    assert_string_equal(text, "{}\n");
    free(text);
    assert_no_temporaries(dirbuf);

    assert_int_equal(prov_state_write_file(dirbuf, "a/b", "x", 1, why, sizeof(why)),
                     PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_write_file(dirbuf, ".hidden", "x", 1, why, sizeof(why)),
                     PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_write_file(dirbuf, "", "x", 1, why, sizeof(why)),
                     PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_write_file("/proc/no/such/dir", "x", "x", 1, why, sizeof(why)),
                     PROV_ERR_IO);
    assert_non_null(strstr(why, "/proc/no/such/dir"));
}

static void key_and_certificate_must_belong_together(void **state) {
    const char *dir = path_for("pair");
    char dirbuf[512], why[512], key_path[600], cert_path[600];
    EVP_PKEY *key = new_key(), *other = new_key();
    X509 *cert = new_cert(key, "pair", NULL, key);

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    snprintf(key_path, sizeof(key_path), "%s/%s", dirbuf, PROV_STATE_KEY_FILE);
    snprintf(cert_path, sizeof(cert_path), "%s/%s", dirbuf, PROV_STATE_CERT_FILE);
    /* Nothing there: not found, and the reason names the file. */
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_NOT_FOUND);
    assert_int_equal(mkdir(dirbuf, 0700), 0);
    write_key(key_path, key, NULL);
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_NOT_FOUND);
    assert_non_null(strstr(why, PROV_STATE_CERT_FILE));
    write_cert(cert_path, cert);
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_OK);
    assert_string_equal(why, "");
    /* A key of another provisioning beside the certificate: two usable files that do not
     * match. */
    write_key(key_path, other, NULL);
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_CRYPTO);
    assert_non_null(strstr(why, "is not the key of the certificate"));
    /* A file that holds no key or no certificate (empty, truncated, not PEM) is corrupt, told
     * apart from a pair that does not match. */
    write_text(key_path, "not a key\n");
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_CORRUPT);
    assert_non_null(strstr(why, "holds no unencrypted PEM private key"));
    write_text(key_path, "");
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_CORRUPT);
    assert_non_null(strstr(why, "holds no unencrypted PEM private key"));
    write_text(key_path, "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH\n");
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_CORRUPT);
    assert_non_null(strstr(why, "holds no unencrypted PEM private key"));
    write_key(key_path, key, NULL);
    write_text(cert_path, "");
    assert_int_equal(prov_state_check_key(dirbuf, why, sizeof(why)), PROV_ERR_STATE_CORRUPT);
    assert_non_null(strstr(why, "holds no PEM certificate"));
    assert_int_equal(prov_state_check_key(NULL, why, sizeof(why)), PROV_ERR_INVALID_ARG);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void files_are_removed(void **state) {
    const char *dir = path_for("removed");
    char dirbuf[512], why[256], p[600];

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    /* Neither the directory nor the file: nothing to do. */
    assert_int_equal(prov_state_remove_file(dirbuf, "config.json", why, sizeof(why)), PROV_OK);
    assert_int_equal(prov_state_write_file(dirbuf, "config.json", "{}\n", 3, why, sizeof(why)),
                     PROV_OK);
    snprintf(p, sizeof(p), "%s/config.json", dirbuf);
    assert_int_equal(prov_state_remove_file(dirbuf, "config.json", why, sizeof(why)), PROV_OK);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(prov_state_remove_file(dirbuf, "config.json", why, sizeof(why)), PROV_OK);
    assert_int_equal(prov_state_remove_file(dirbuf, "../x", why, sizeof(why)),
                     PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_remove_file(dirbuf, ".x", why, sizeof(why)), PROV_ERR_INVALID_ARG);
    /* A directory in the way is not removed. */
    snprintf(p, sizeof(p), "%s/sub", dirbuf);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(prov_state_remove_file(dirbuf, "sub", why, sizeof(why)), PROV_ERR_IO);
    assert_non_null(strstr(why, "cannot remove"));
}

static void temporary_files_are_cleaned(void **state) {
    static const char *const temporaries[] = {".device.key.tmp-a1B2c3",
                                              ".identity.json.tmp-XXXXXX"};
    static const char *const kept[] = {"identity.json",   ".profile",
                                       ".device.key.abc", ".device.key.tmp-abcde!",
                                       "..x.tmp-abcdef",  ".device.key.backup"};
    const char *dir = path_for("clean");
    char dirbuf[512], why[256], p[600];
    size_t i;

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    assert_int_equal(prov_state_clean(dirbuf, why, sizeof(why)), PROV_OK);
    assert_int_equal(mkdir(dirbuf, 0700), 0);
    for (i = 0; i < sizeof(temporaries) / sizeof(temporaries[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dirbuf, temporaries[i]);
        write_text(p, "-----BEGIN PRIVATE KEY-----\n");
    }
    for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dirbuf, kept[i]);
        write_text(p, "x\n");
    }
    /* A directory with a temporary file's name is not the library's. */
    snprintf(p, sizeof(p), "%s/.config.json.tmp-QWERTY", dirbuf);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(prov_state_clean(dirbuf, why, sizeof(why)), PROV_OK);
    for (i = 0; i < sizeof(temporaries) / sizeof(temporaries[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dirbuf, temporaries[i]);
        assert_int_equal(access(p, F_OK), -1);
    }
    for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dirbuf, kept[i]);
        assert_int_equal(access(p, F_OK), 0);
    }
    snprintf(p, sizeof(p), "%s/.config.json.tmp-QWERTY", dirbuf);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(prov_state_clean(NULL, why, sizeof(why)), PROV_ERR_INVALID_ARG);
}

/* ---- The payload of provd ---- */

#define PROVD_PAYLOAD_ANSWER                                                                       \
    "{\"operationId\":\"op-1\",\"status\":\"assigned\",\"registrationState\":{"                    \
    "\"registrationId\":\"" VEC_REGID "\",\"deviceId\":\"dev-id-1\",\"assignedHub\":"              \
    "\"hub-a.example.com\",\"status\":\"assigned\",\"substatus\":\"initialAssignment\","           \
    "\"payload\":{\"endpoint\":{\"host\":\"hub-a.example.com\",\"port\":8883,\"protocol\":"        \
    "\"mqtts\",\"trustBundle\":\"-----BEGIN CERTIFICATE-----\\nAA==\\n-----END CERTIFICATE-----"   \
    "\\n\"},\"configuration\":{\"topic\":\"devices/dev-id-1/up\"}}}}"

static void the_payload_names_endpoint_and_configuration(void **state) {
    const char *dir = path_for("payload");
    char dirbuf[512], why[ERRMSG_MAX], *json = NULL;
    prov_result res, *loaded = NULL;
    json_t *doc;

    (void)state;
    snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
    assert_int_equal(parse(PROVD_PAYLOAD_ANSWER, &res, why, sizeof(why)), PROV_OK);
    assert_string_equal(res.endpoint_host, "hub-a.example.com");
    assert_int_equal(res.endpoint_port, 8883);
    assert_string_equal(res.endpoint_protocol, "mqtts");
    assert_string_equal(res.trust_bundle,
                        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
    assert_string_equal(res.configuration, "{\"topic\":\"devices/dev-id-1/up\"}");
    assert_int_equal(prov_result_to_json(&res, &json), PROV_OK);
    doc = json_loads(json, 0, NULL);
    free(json);
    json = json_dumps(json_object_get(doc, "endpoint"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(json,
                        "{\"host\":\"hub-a.example.com\",\"port\":8883,\"protocol\":\"mqtts\"}");
    json_decref(doc);
    free(json);

    /* identity.json keeps them: a later run reads the same. */
    assert_int_equal(prov_state_save(dirbuf, &res, why, sizeof(why)), PROV_OK);
    assert_int_equal(prov_state_load(dirbuf, &loaded, why, sizeof(why)), PROV_OK);
    assert_string_equal(loaded->endpoint_host, "hub-a.example.com");
    assert_int_equal(loaded->endpoint_port, 8883);
    assert_string_equal(loaded->endpoint_protocol, "mqtts");
    assert_string_equal(loaded->trust_bundle, res.trust_bundle);
    assert_string_equal(loaded->configuration, res.configuration);
    prov_result_free(loaded);
    result_clear(&res);
}

static void other_payloads_name_nothing(void **state) {
    static const char *const payloads[] = {
        "{\"interval\":30}",
        "\"text\"",
        "{\"endpoint\":\"hub\"}",
        "{\"endpoint\":{\"host\":7,\"port\":\"8883\",\"trustBundle\":[]},\"configuration\":null}",
        "{\"endpoint\":{\"port\":70000}}",
    };
    char *body, why[ERRMSG_MAX];
    prov_result res;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        assert_true(asprintf(&body,
                             "{\"status\":\"assigned\",\"registrationState\":{\"deviceId\":\"d\","
                             "\"assignedHub\":\"h\",\"payload\":%s}}",
                             payloads[i]) > 0);
        assert_int_equal(parse(body, &res, why, sizeof(why)), PROV_OK);
        assert_non_null(res.payload);
        assert_null(res.endpoint_host);
        assert_int_equal(res.endpoint_port, 0);
        assert_null(res.endpoint_protocol);
        assert_null(res.trust_bundle);
        assert_null(res.configuration);
        result_clear(&res);
        free(body);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csr_is_sent_and_chain_returned),
        cmocka_unit_test(every_key_type_makes_a_valid_csr),
        cmocka_unit_test(a_cn_longer_than_64_is_refused),
        cmocka_unit_test(an_existing_key_file_is_used),
        cmocka_unit_test(unusable_key_files_are_refused),
        cmocka_unit_test(key_files_of_every_pem_form),
        cmocka_unit_test(a_ca_file_is_checked_when_set),
        cmocka_unit_test(the_error_queue_is_the_applications),
        cmocka_unit_test(a_missing_chain_fails_a_csr_registration),
        cmocka_unit_test(a_chain_for_another_key_fails),
        cmocka_unit_test(malformed_chains_are_protocol_errors),
        cmocka_unit_test(a_good_chain_parses_without_a_csr),
        cmocka_unit_test(the_client_certificate_goes_to_the_transport),
        cmocka_unit_test(client_certificate_errors),
        cmocka_unit_test(client_certificate_keys_of_any_type),
        cmocka_unit_test(key_and_certificates_are_kept_privately),
        cmocka_unit_test(files_are_replaced_atomically),
        cmocka_unit_test(key_and_certificate_must_belong_together),
        cmocka_unit_test(files_are_removed),
        cmocka_unit_test(temporary_files_are_cleaned),
        cmocka_unit_test(the_payload_names_endpoint_and_configuration),
        cmocka_unit_test(other_payloads_name_nothing),
    };

    return cmocka_run_group_tests(tests, make_base, remove_base);
}
