/* The CA: the profile of issued device certificates field by field, chains, CRLs, loading and
 * importing an issuing CA and the refusals of unusable ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "ca.h"
#include "csr.h"
#include "pki.h"
#include "timefmt.h"

#define DAY 86400

static char dir[64];
static struct ca *ca;

/* A root and an issuing CA of key type t in D/ca, as `provd init` lays them out (with a
 * provd.json so D counts as a data directory). Keys and certificates are returned when asked. */
struct made {
    EVP_PKEY *root_key, *issuing_key;
    X509 *root, *issuing;
};

static char *path_of(const char *d, const char *name) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", d, name) > 0);
    return p;
}

static void made_free(struct made *m) {
    EVP_PKEY_free(m->root_key);
    EVP_PKEY_free(m->issuing_key);
    X509_free(m->root);
    X509_free(m->issuing);
}

static void make_cas(struct made *m, enum pki_key_type t, const char *tag) {
    char cn[64];
    assert_non_null(m->root_key = pki_key_new_type(t));
    snprintf(cn, sizeof(cn), "%s root", tag);
    assert_non_null(m->root = pki_root_new(m->root_key, cn, 20 * 365));
    assert_non_null(m->issuing_key = pki_key_new_type(t));
    snprintf(cn, sizeof(cn), "%s issuing", tag);
    assert_non_null(m->issuing =
                        pki_issuing_new(m->issuing_key, m->root, m->root_key, cn, 10 * 365));
}

static void write_data_dir(const char *d, const struct made *m) {
    char *cadir = path_of(d, "ca"), *conf = path_of(d, "provd.json");
    char *cert = path_of(cadir, "issuing.pem"), *key = path_of(cadir, "issuing.key");
    char *chain = path_of(cadir, "chain.pem");
    X509 *const pair[2] = {m->issuing, m->root};
    assert_true(mkdir(d, 0700) == 0 || access(d, F_OK) == 0);
    assert_true(mkdir(cadir, 0700) == 0 || access(cadir, F_OK) == 0);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("{}\n", f);
    fclose(f);
    assert_int_equal(pki_write_cert(cert, m->issuing), 0);
    assert_int_equal(pki_write_key(key, m->issuing_key, 1), 0);
    assert_int_equal(pki_write_certs(chain, pair, 2), 0);
    free(cadir);
    free(conf);
    free(cert);
    free(key);
    free(chain);
}

static int setup(void **state) {
    (void)state;
    struct made m = {0};
    char err[512];
    snprintf(dir, sizeof(dir), "/tmp/provd-ca-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    make_cas(&m, PKI_KEY_P256, "test");
    write_data_dir(dir, &m);
    made_free(&m);
    if (ca_load(dir, NULL, &ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "ca_load: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    ca_free(ca);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const X509_EXTENSION *ext_of(X509 *x, int nid) {
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    assert_true(X509_get_ext_by_NID(x, nid, i) < 0); /* exactly once */
    return X509_get_ext(x, i);
}

static char *hex_of(const unsigned char *p, size_t n) {
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02X", p[i]);
    return s;
}

/* The URI of the one subjectAltName of x. */
static void assert_san_uri(X509 *x, const char *want) {
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    assert_int_equal(crit, 0);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    int type = -1;
    ASN1_IA5STRING *uri = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 0), &type);
    assert_int_equal(type, GEN_URI);
    assert_int_equal(ASN1_STRING_length(uri), strlen(want));
    assert_memory_equal(ASN1_STRING_get0_data(uri), want, strlen(want));
    GENERAL_NAMES_free(gens);
}

/* Verifies leaf up to the root with OpenSSL's own path validation, for TLS client use. */
static int verify_to_root(X509 *leaf, X509_CRL *crl, int *error) {
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_true(X509_STORE_add_cert(store, ca_root_cert(ca)));
    assert_true(sk_X509_push(untrusted, ca_issuing_cert(ca)) > 0);
    if (crl) {
        assert_true(X509_STORE_add_crl(store, crl));
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    assert_true(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
    assert_true(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT));
    int ok = X509_verify_cert(ctx);
    *error = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return ok;
}

static void test_device_profile_p256(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    struct ca_cert_info info;
    char err[256];
    time_t t0 = time(NULL);
    X509 *x = ca_issue(ca, key, "device-0001", 0, err, sizeof(err));
    time_t t1 = time(NULL);
    assert_non_null(x);
    assert_int_equal(ca_cert_info(x, &info), 0);
    X509 *issuing = ca_issuing_cert(ca);

    assert_int_equal(X509_get_version(x), X509_VERSION_3);

    /* Serial: 16 octets, top bit set, positive; shown as 32 upper-case hex digits. */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_true(ASN1_STRING_get0_data(serial)[0] & 0x80);
    assert_int_equal(strlen(info.serial), 32);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(i2a_ASN1_INTEGER(bio, serial) > 0);
    char *printed = NULL;
    long n = BIO_get_mem_data(bio, &printed);
    assert_int_equal(n, 32);
    assert_memory_equal(printed, info.serial, 32);
    BIO_free(bio);

    /* Subject CN = device ID, nothing else; issuer = the issuing CA. */
    X509_NAME *subj = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_entry_count(subj), 1);
    char cn[64];
    assert_int_equal(X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)), 11);
    assert_string_equal(cn, "device-0001");
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(issuing)), 0);
    assert_string_equal(info.subject, "CN=device-0001");
    assert_string_equal(info.issuer, "CN=test issuing");

    assert_san_uri(x, "urn:provd:device:device-0001");

    /* Exactly these six extensions, with these criticalities. */
    assert_int_equal(X509_get_ext_count(x), 6);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_basic_constraints)), 1);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_key_usage)), 1);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_ext_key_usage)), 0);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_subject_key_identifier)), 0);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_authority_key_identifier)), 0);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_null(bc->pathlen);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

    /* AKI = the issuing CA's SKI; SKI present. */
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    const ASN1_OCTET_STRING *iss_ski = X509_get0_subject_key_id(issuing);
    assert_non_null(aki);
    assert_non_null(iss_ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, iss_ski), 0);
    assert_non_null(X509_get0_subject_key_id(x));

    /* Validity: from 5 minutes before issuance for 365 days. */
    int64_t nb = 0, na = 0;
    struct tm tm;
    assert_true(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm));
    nb = (int64_t)timegm(&tm);
    assert_true(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm));
    na = (int64_t)timegm(&tm);
    assert_true(nb >= (int64_t)t0 - 300 && nb <= (int64_t)t1 - 300);
    assert_int_equal(na - nb, 365 * DAY + 300);

    /* DPS time format and SHA-256 thumbprint in the record. */
    char want[TIME_DPS_LEN];
    struct timespec ts = {.tv_sec = (time_t)nb};
    time_format_dps(&ts, want);
    assert_string_equal(info.not_before, want);
    ts.tv_sec = (time_t)na;
    time_format_dps(&ts, want);
    assert_string_equal(info.not_after, want);
    unsigned char md[32];
    unsigned int mdlen;
    assert_true(X509_digest(x, EVP_sha256(), md, &mdlen));
    char *hex = hex_of(md, mdlen);
    assert_string_equal(info.thumbprint, hex);
    free(hex);

    /* Signed with SHA-256 by the issuing CA; chains to the root for TLS client use. */
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(issuing)), 1);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(ca_root_cert(ca))), 0);
    int error = -1;
    assert_int_equal(verify_to_root(x, NULL, &error), 1);
    assert_int_equal(error, X509_V_OK);
    assert_int_equal(ca_verify(ca, x, err, sizeof(err)), 0);
    assert_true(EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1);

    ca_cert_info_free(&info);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_device_profile_rsa(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new_type(PKI_KEY_RSA2048);
    char err[256];
    X509 *x = ca_issue(ca, key, "rsa-device", 30, err, sizeof(err));
    assert_non_null(x);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_EXTENSION_get_critical(ext_of(x, NID_key_usage)), 1);
    int days = 0, secs = 0;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    assert_int_equal(days, 30);
    assert_int_equal(secs, 300);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* Device IDs are printable ASCII with characters that mean something in a URI or in OpenSSL's
 * configuration syntax; each must reach the certificate as one name. */
/* A DER CSR for CN = cn signed by key, in *der (OPENSSL_free). */
static int csr_der_params(EVP_PKEY *key, const char *cn, int params_absent, unsigned char **der);

static int csr_der_of(EVP_PKEY *key, const char *cn, unsigned char **der) {
    return csr_der_params(key, cn, 0, der);
}

/* As csr_der_of; when params_absent, the key's algorithm goes without parameters (RSA's NULL
 * left out, as some encoders do). */
static int csr_der_params(EVP_PKEY *key, const char *cn, int params_absent, unsigned char **der) {
    X509_REQ *req = X509_REQ_new();
    X509_ALGOR *alg = NULL;
    assert_non_null(req);
    assert_true(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                           (const unsigned char *)cn, -1, -1, 0));
    assert_true(X509_REQ_set_pubkey(req, key));
    if (params_absent) {
        assert_true(X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, X509_REQ_get_X509_PUBKEY(req)));
        assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_UNDEF, NULL));
    }
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    int n = i2d_X509_REQ(req, der);
    assert_true(n > 0);
    X509_REQ_free(req);
    return n;
}

/* The certificate the CA issues for the CSR der (n bytes, CN device-0001), as the device gets
 * it: made in memory, it holds its key only as the copied encoding, so it is encoded and decoded
 * again. *c receives the parsed CSR (freed by the caller). */
static X509 *issued_for(const unsigned char *der, int n, struct csr **c) {
    char msg[256], err[256];
    unsigned char *cert = NULL;
    assert_int_equal(csr_parse((const char *)der, (size_t)n, CSR_FMT_DER, NULL, "device-0001", c,
                               msg, sizeof(msg)),
                     CSR_OK);
    X509 *made = ca_issue_pub(ca, (*c)->key, (*c)->spki, "device-0001", 0, err, sizeof(err));
    assert_non_null(made);
    int clen = i2d_X509(made, &cert);
    const unsigned char *p = cert;
    X509 *x = d2i_X509(NULL, &p, clen);
    assert_non_null(x);
    X509_free(made);
    OPENSSL_free(cert);
    return x;
}

/* An RSA request whose key algorithm has no parameters gets a certificate with RSA's NULL
 * (RFC 3279), which verifies. */
static void test_issue_rsa_params_absent(void **state) {
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    unsigned char *der = NULL;
    struct csr *c = NULL;
    int error = 0, ptype = -1;
    const void *pval = NULL;
    const X509_ALGOR *alg = NULL;
    assert_non_null(key);
    int n = csr_der_params(key, "device-0001", 1, &der);
    X509 *x = issued_for(der, n, &c);
    assert_true(
        X509_PUBKEY_get0_param(NULL, NULL, NULL, (X509_ALGOR **)&alg, X509_get_X509_PUBKEY(x)));
    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    assert_int_equal(ptype, V_ASN1_NULL);
    assert_int_equal(verify_to_root(x, NULL, &error), 1);
    X509_free(x);
    csr_free(c);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

/* A certificate for a CSR carries the CSR's SubjectPublicKeyInfo byte for byte (the compressed
 * form of a point stays compressed), for every kind of key, and verifies up to the root. */
static void test_issue_from_csr(void **state) {
    (void)state;
    EVP_PKEY *keys[] = {EVP_EC_gen("P-256"), EVP_EC_gen("P-256"), EVP_EC_gen("P-384"),
                        EVP_RSA_gen(2048)};
    assert_int_equal(EVP_PKEY_set_utf8_string_param(
                         keys[1], OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                     1);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        unsigned char *der = NULL, *want = NULL, *got = NULL;
        struct csr *c = NULL;
        int error = 0;
        int n = csr_der_of(keys[i], "device-0001", &der);
        X509 *x = issued_for(der, n, &c);
        int wlen = ASN1_item_i2d((const ASN1_VALUE *)c->spki, &want, ASN1_ITEM_rptr(SPKI_DER));
        int glen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
        assert_true(wlen > 0);
        assert_int_equal(glen, wlen);
        assert_memory_equal(got, want, (size_t)wlen);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), keys[i]), 1);
        assert_int_equal(X509_get_key_usage(x), pki_key_is_rsa(keys[i])
                                                    ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT
                                                    : KU_DIGITAL_SIGNATURE);
        assert_int_equal(verify_to_root(x, NULL, &error), 1);
        OPENSSL_free(der);
        OPENSSL_free(want);
        OPENSSL_free(got);
        X509_free(x);
        csr_free(c);
        EVP_PKEY_free(keys[i]);
    }
}

static void test_device_id_encoding(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    struct ca_cert_info info;
    char err[256];
    X509 *x = ca_issue(ca, key, "Dev:1,URI:evil#x?y", 0, err, sizeof(err));
    assert_non_null(x);
    assert_int_equal(ca_cert_info(x, &info), 0);
    assert_san_uri(x, "urn:provd:device:Dev%3A1%2CURI%3Aevil%23x%3Fy");
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "Dev:1,URI:evil#x?y");
    assert_string_equal(info.subject, "CN=Dev:1\\,URI:evil#x?y");
    ca_cert_info_free(&info);
    X509_free(x);

    /* A 128-character ID is beyond the CN's usual 64 and still fine. */
    char long_id[130];
    memset(long_id, 'a', 128);
    long_id[128] = '\0';
    assert_non_null(x = ca_issue(ca, key, long_id, 0, err, sizeof(err)));
    X509_free(x);

    static const char *const bad[] = {"", "dev ice", "dev\nice", "d\xc3\xa9vice"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(ca_issue(ca, key, bad[i], 0, err, sizeof(err)));
        assert_string_equal(err, "the device ID must be 1 to 128 printable ASCII characters");
    }
    strcat(long_id, "a");
    assert_null(ca_issue(ca, key, long_id, 0, err, sizeof(err)));
    assert_null(ca_issue(ca, key, "d", -1, err, sizeof(err)));
    assert_string_equal(err, "the validity must be 1 to 36500 days");
    EVP_PKEY_free(key);
}

/* A certificate never outlives its issuing CA (10 years here). */
static void test_validity_capped_by_issuer(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    char err[256];
    X509 *x = ca_issue(ca, key, "long-lived", CA_DEVICE_DAYS_MAX, err, sizeof(err));
    assert_non_null(x);
    assert_int_equal(
        ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca_issuing_cert(ca))), 0);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_serials_differ(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    char err[256];
    X509 *a = ca_issue(ca, key, "d", 0, err, sizeof(err));
    X509 *b = ca_issue(ca, key, "d", 0, err, sizeof(err));
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

/* A device certificate, and a CRL's nextUpdate, end no later than any certificate above: here
 * the root, which expires in 3 days, before its issuing CA. */
static void test_validity_within_chain(void **state) {
    (void)state;
    struct made m = {0};
    struct ca *c = NULL;
    char d[128], err[512];
    snprintf(d, sizeof(d), "%s/shortroot", dir);
    assert_non_null(m.root_key = pki_key_new());
    assert_non_null(m.root = pki_root_new(m.root_key, "short root", 3));
    assert_non_null(m.issuing_key = pki_key_new());
    assert_non_null(m.issuing =
                        pki_issuing_new(m.issuing_key, m.root, m.root_key, "long issuing", 3650));
    write_data_dir(d, &m);
    assert_int_equal(ca_load(d, NULL, &c, err, sizeof(err)), 0);
    EVP_PKEY *key = pki_key_new();
    X509 *x = ca_issue(c, key, "dev", 365, err, sizeof(err));
    assert_non_null(x);
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(m.root)) <= 0);
    assert_true(ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(m.issuing)) >= 0);
    X509_free(x);
    /* A CRL's nextUpdate (asked a week ahead) is capped the same way. */
    X509_CRL *crl = ca_crl_new(c, NULL, 0, 1, 7 * 86400, err, sizeof(err));
    assert_non_null(crl);
    assert_true(ASN1_TIME_compare(X509_CRL_get0_nextUpdate(crl), X509_get0_notAfter(m.root)) <= 0);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    ca_free(c);
    made_free(&m);
}

/* A P-384 CA signs with SHA-384. */
static void test_p384_issuer(void **state) {
    (void)state;
    struct made m = {0};
    struct ca *c384 = NULL;
    char d[128], err[512];
    snprintf(d, sizeof(d), "%s/p384", dir);
    make_cas(&m, PKI_KEY_P384, "p384");
    write_data_dir(d, &m);
    assert_int_equal(X509_get_signature_nid(m.issuing), NID_ecdsa_with_SHA384);
    assert_int_equal(ca_load(d, NULL, &c384, err, sizeof(err)), 0);
    EVP_PKEY *key = pki_key_new();
    X509 *x = ca_issue(c384, key, "dev", 0, err, sizeof(err));
    assert_non_null(x);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(m.issuing)), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    ca_free(c384);
    made_free(&m);
}

/* The device-certificate validity set at load is the default of ca_issue. */
static void test_load_options(void **state) {
    (void)state;
    struct ca *c = NULL;
    struct ca_opts o = {.device_days = 90};
    char err[512];
    assert_int_equal(ca_load(dir, &o, &c, err, sizeof(err)), 0);
    EVP_PKEY *key = pki_key_new();
    X509 *x = ca_issue(c, key, "dev", 0, err, sizeof(err));
    int days = 0, secs = 0;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    assert_int_equal(days, 90);
    X509_free(x);
    EVP_PKEY_free(key);
    ca_free(c);
    o.device_days = CA_DEVICE_DAYS_MAX + 1;
    assert_int_equal(ca_load(dir, &o, &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, "the device certificate validity must be at most 36500 days");
    assert_int_equal(ca_load("/nonexistent", NULL, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/ca/issuing.pem: No such file or directory");
}

/* An issuing CA valid from nb to na (Unix times) under m's root, loaded from a data directory
 * of its own. */
static struct ca *load_dated(struct made *m, const char *name, int64_t nb, int64_t na) {
    struct pki_cert_spec s = {.profile = PKI_PROFILE_ISSUING,
                              .key = m->issuing_key,
                              .cn = name,
                              .issuer = m->root,
                              .issuer_key = m->root_key,
                              .not_before = nb,
                              .not_after = na};
    struct ca *c = NULL;
    char d[128], err[512];
    X509_free(m->issuing);
    assert_non_null(m->issuing = pki_cert_new(&s));
    snprintf(d, sizeof(d), "%s/%s", dir, name);
    write_data_dir(d, m);
    assert_int_equal(ca_load(d, NULL, &c, err, sizeof(err)), 0);
    return c;
}

/* A CA out of its time loads (provd then serves all but certificates) but issues nothing, and
 * says why; ca_validity gives the span it issues in. */
static void test_out_of_time(void **state) {
    (void)state;
    struct made m = {0};
    int64_t now = (int64_t)time(NULL), nb, na;
    char err[512], want[128];
    EVP_PKEY *key = pki_key_new();
    make_cas(&m, PKI_KEY_P256, "dated");

    struct ca *c = load_dated(&m, "expired", 1577836800 /* 2020-01-01 */, 1609459200);
    assert_int_equal(ca_usable(c, err, sizeof(err)), -1);
    assert_string_equal(err, "provd's CA chain expired at 2021-01-01T00:00:00.0000000Z");
    strcpy(err, "");
    assert_null(ca_issue(c, key, "dev", 0, err, sizeof(err)));
    assert_string_equal(err, "provd's CA chain expired at 2021-01-01T00:00:00.0000000Z");
    ca_validity(c, &nb, &na);
    assert_int_equal(nb, 1577836800);
    assert_int_equal(na, 1609459200);
    /* Its CRL still has a nextUpdate after its thisUpdate. */
    X509_CRL *crl = ca_crl_new(c, NULL, 0, 1, 3600, err, sizeof(err));
    assert_non_null(crl);
    int days = 0, secs = 0;
    assert_true(
        ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)));
    assert_int_equal(days * 86400 + secs, 3600);
    X509_CRL_free(crl);
    ca_free(c);

    c = load_dated(&m, "future", now + 2 * DAY, now + 3 * DAY);
    assert_int_equal(ca_usable(c, err, sizeof(err)), -1);
    assert_null(ca_issue(c, key, "dev", 0, err, sizeof(err)));
    struct timespec ts = {.tv_sec = (time_t)(now + 2 * DAY)};
    char when[TIME_DPS_LEN];
    time_format_dps(&ts, when);
    snprintf(want, sizeof(want), "provd's issuing CA is not valid until %s", when);
    assert_string_equal(err, want);
    ca_free(c);

    /* Valid now: it issues, until the earliest end of its chain. */
    c = load_dated(&m, "current", now - DAY, now + 2 * DAY);
    assert_int_equal(ca_usable(c, err, sizeof(err)), 0);
    ca_validity(c, &nb, &na);
    assert_int_equal(nb, now - DAY);
    assert_int_equal(na, now + 2 * DAY);
    X509 *x = ca_issue(c, key, "dev", 0, err, sizeof(err));
    assert_non_null(x);
    X509_free(x);
    ca_free(c);
    EVP_PKEY_free(key);
    made_free(&m);
}

static X509 *der_cert(const char *b64) {
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(b64_decode(b64, strlen(b64), &der, &len, NULL), 0);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p, der + len);
    b64_free(der, len);
    return x;
}

static void test_chain(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    char err[256];
    X509 *leaf = ca_issue(ca, key, "chained", 0, err, sizeof(err));
    X509 *want[3] = {leaf, ca_issuing_cert(ca), ca_root_cert(ca)};
    char **v = NULL;
    size_t n = 0;
    unsigned char *leaf_der = NULL;
    int leaf_len = i2d_X509(leaf, &leaf_der);

    assert_true(leaf_len > 0);
    assert_int_equal(ca_chain_b64(ca, leaf_der, (size_t)leaf_len, &v, &n), 0);
    OPENSSL_free(leaf_der);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        X509 *x = der_cert(v[i]);
        assert_int_equal(X509_cmp(x, want[i]), 0);
        X509_free(x);
    }
    ca_strv_free(v, n);
    assert_int_equal(ca_chain_b64(ca, NULL, 0, &v, &n), 0);
    assert_int_equal(n, 2);
    ca_strv_free(v, n);

    /* Certs-only PKCS#7: signed data, no signers, content absent, the certificates asked for. */
    for (int with_leaf = 0; with_leaf < 2; with_leaf++) {
        char *b64 = ca_pkcs7_b64(ca, with_leaf ? leaf : NULL);
        assert_non_null(b64);
        assert_null(strchr(b64, '\n'));
        unsigned char *der = NULL;
        size_t len = 0;
        assert_int_equal(b64_decode(b64, strlen(b64), &der, &len, NULL), 0);
        const unsigned char *p = der;
        PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
        assert_non_null(p7);
        assert_true(PKCS7_type_is_signed(p7));
        assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
        assert_null(p7->d.sign->contents->d.ptr);
        STACK_OF(X509) *certs = p7->d.sign->cert;
        assert_int_equal(sk_X509_num(certs), with_leaf ? 1 : 2);
        for (int i = 0; i < sk_X509_num(certs); i++)
            assert_int_equal(X509_cmp(sk_X509_value(certs, i), want[with_leaf ? 0 : i + 1]), 0);
        PKCS7_free(p7);
        b64_free(der, len);
        free(b64);
    }
    X509_free(leaf);
    EVP_PKEY_free(key);
}

/* The reasonCode of entry r, or -1 when it has none. */
static int entry_reason(const X509_REVOKED *r) {
    int crit = -1;
    ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
    if (!e)
        return -1;
    assert_int_equal(crit, 0);
    long v = ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    return (int)v;
}

static uint64_t crl_number(X509_CRL *crl) {
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t v = 0;
    assert_non_null(num);
    assert_true(ASN1_INTEGER_get_uint64(&v, num));
    ASN1_INTEGER_free(num);
    return v;
}

static void test_crl(void **state) {
    (void)state;
    EVP_PKEY *key = pki_key_new();
    struct ca_cert_info info;
    char err[256];
    X509 *leaf = ca_issue(ca, key, "revoked-device", 0, err, sizeof(err));
    int error;
    assert_non_null(leaf);
    assert_int_equal(ca_cert_info(leaf, &info), 0);
    const struct ca_revoked list[] = {
        {"0F", 1700000000, CRL_REASON_SUPERSEDED},
        {info.serial, 1700000100, CRL_REASON_KEY_COMPROMISE},
        {"0a", 1700000200, CRL_REASON_NONE},
        {"0B", 1700000300, CRL_REASON_UNSPECIFIED},
    };
    time_t t0 = time(NULL);
    X509_CRL *crl = ca_crl_new(ca, list, 4, 1, 3600, err, sizeof(err));
    assert_non_null(crl);

    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(
        X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_issuing_cert(ca))), 0);
    assert_int_equal(crl_number(crl), 1);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(ca_issuing_cert(ca))), 0);
    AUTHORITY_KEYID_free(akid);
    int days = -1, secs = -1;
    assert_true(
        ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)));
    assert_int_equal(days, 0);
    assert_int_equal(secs, 3600);
    struct tm tm;
    assert_true(ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &tm));
    assert_true(timegm(&tm) >= t0 && timegm(&tm) <= time(NULL));
    assert_int_equal(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_issuing_cert(ca))), 1);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_root_cert(ca))), 0);

    /* Entries sorted by serial, with their dates and reasons (none for NONE and unspecified). */
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 4);
    static const struct {
        long serial;
        int64_t when;
        int reason;
    } want[] = {
        {0x0A, 1700000200, -1}, {0x0B, 1700000300, -1}, {0x0F, 1700000000, CRL_REASON_SUPERSEDED}};
    for (int i = 0; i < 3; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
        assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r)), want[i].serial);
        assert_true(ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(r), &tm));
        assert_int_equal(timegm(&tm), want[i].when);
        assert_int_equal(entry_reason(r), want[i].reason);
    }
    X509_REVOKED *last = sk_X509_REVOKED_value(revs, 3);
    assert_int_equal(
        ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(last), X509_get0_serialNumber(leaf)), 0);
    assert_int_equal(entry_reason(last), CRL_REASON_KEY_COMPROMISE);

    /* The revoked certificate no longer verifies with the CRL checked. */
    assert_int_equal(verify_to_root(leaf, crl, &error), 0);
    assert_int_equal(error, X509_V_ERR_CERT_REVOKED);

    /* DER and PEM round trips. */
    size_t len = 0;
    unsigned char *der = ca_crl_der(crl, &len);
    assert_non_null(der);
    const unsigned char *p = der;
    X509_CRL *back = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(back);
    assert_int_equal(X509_CRL_cmp(back, crl), 0);
    assert_int_equal(X509_CRL_verify(back, X509_get0_pubkey(ca_issuing_cert(ca))), 1);
    X509_CRL_free(back);
    /* The PEM, made from the DER, holds the same bytes. */
    char *pem = ca_crl_pem(der, len);
    assert_non_null(strstr(pem, "-----BEGIN X509 CRL-----"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    assert_non_null(back = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
    unsigned char *again = NULL;
    assert_int_equal(i2d_X509_CRL(back, &again), (int)len);
    assert_memory_equal(again, der, len);
    assert_int_equal(crl_number(back), 1);
    OPENSSL_free(again);
    OPENSSL_free(der);
    X509_CRL_free(back);
    BIO_free(bio);
    free(pem);
    X509_CRL_free(crl);

    /* Numbers grow: 2 follows 1; 2 again, or 1, is refused. An empty CRL is fine. */
    assert_non_null(crl = ca_crl_new(ca, NULL, 0, 2, 0, err, sizeof(err)));
    assert_int_equal(crl_number(crl), 2);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* no list, or empty */
    assert_true(
        ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)));
    assert_int_equal(days, 7);
    assert_int_equal(secs, 0);
    X509_CRL_free(crl);
    assert_null(ca_crl_new(ca, NULL, 0, 2, 0, err, sizeof(err)));
    assert_string_equal(err,
                        "CRL number 2 is not above the last one signed (2): CRL numbers must grow");
    assert_null(ca_crl_new(ca, NULL, 0, 1, 0, err, sizeof(err)));

    ca_cert_info_free(&info);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

static void test_crl_refusals(void **state) {
    (void)state;
    char err[256];
    const struct ca_revoked dup[] = {{"01", 1, CRL_REASON_NONE}, {"1", 2, CRL_REASON_NONE}};
    assert_null(ca_crl_new(ca, dup, 2, 100, 0, err, sizeof(err)));
    assert_string_equal(err, "a serial number is listed twice");
    const struct ca_revoked bad[] = {{"xyz", 1, CRL_REASON_NONE}};
    assert_null(ca_crl_new(ca, bad, 1, 101, 0, err, sizeof(err)));
    assert_string_equal(err, "\"xyz\" is not a serial number (1 to 40 hex digits)");
    const struct ca_revoked reason[] = {{"01", 1, 7}};
    assert_null(ca_crl_new(ca, reason, 1, 102, 0, err, sizeof(err)));
    assert_string_equal(err, "7 is not a CRL reason code");
    assert_null(ca_crl_new(ca, NULL, 0, 103, 10, err, sizeof(err)));
    assert_string_equal(err, "the next update must be 60 seconds to 366 days ahead");

    int r = -1;
    assert_int_equal(ca_crl_reason_parse("keycompromise", &r), 0);
    assert_int_equal(r, CRL_REASON_KEY_COMPROMISE);
    assert_int_equal(ca_crl_reason_parse("aACompromise", &r), 0);
    assert_int_equal(r, CRL_REASON_AA_COMPROMISE);
    assert_int_equal(ca_crl_reason_parse("removeFromCRL", &r), -1);
    assert_string_equal(ca_crl_reason_name(CRL_REASON_SUPERSEDED), "superseded");
    assert_null(ca_crl_reason_name(7));
    assert_null(ca_crl_reason_name(CRL_REASON_NONE));
}

/* A certificate built here for the refusals the profiles cannot produce. */
static X509 *custom_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *bc,
                         const char *ku, int64_t nb, int64_t na) {
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"custom", -1, -1, 0));
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
    assert_true(X509_set_subject_name(x, name));
    assert_true(X509_set_issuer_name(x, X509_get_subject_name(issuer)));
    assert_true(X509_set_pubkey(x, key));
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    const char *vals[2] = {bc, ku};
    const int nids[2] = {NID_basic_constraints, NID_key_usage};
    for (int i = 0; i < 2; i++) {
        if (!vals[i])
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nids[i], vals[i]);
        assert_non_null(e);
        assert_true(X509_add_ext(x, e, -1));
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static void test_check_issuer_refusals(void **state) {
    (void)state;
    struct made m = {0}, other = {0};
    char err[512];
    int64_t now = (int64_t)time(NULL);
    make_cas(&m, PKI_KEY_P256, "chk");
    make_cas(&other, PKI_KEY_P256, "other");
    STACK_OF(X509) *above = sk_X509_new_null();
    STACK_OF(X509) *path = NULL;
    sk_X509_push(above, m.root);

    /* The good case, and the chain it finds. */
    assert_int_equal(ca_check_issuer(m.issuing, m.issuing_key, above, &path, err, sizeof(err)), 0);
    assert_int_equal(sk_X509_num(path), 2);
    assert_int_equal(X509_cmp(sk_X509_value(path, 0), m.issuing), 0);
    assert_int_equal(X509_cmp(sk_X509_value(path, 1), m.root), 0);
    sk_X509_pop_free(path, X509_free);

    /* Mismatched key. */
    assert_int_equal(ca_check_issuer(m.issuing, other.issuing_key, above, NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "the private key does not belong to the CA certificate");

    /* Not a CA: the TLS server certificate. */
    EVP_PKEY *srv_key = pki_key_new();
    X509 *srv = pki_server_new(srv_key, m.root, m.root_key, "srv", NULL, 0, 30);
    assert_int_equal(ca_check_issuer(srv, srv_key, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "the certificate is not a CA certificate (no basicConstraints CA:TRUE)");

    /* A CA that may not sign CRLs, and one without keyUsage at all. */
    EVP_PKEY *k = pki_key_new();
    X509 *x = custom_cert(k, m.root, m.root_key, "critical,CA:TRUE", "critical,keyCertSign",
                          now - 60, now + DAY);
    assert_int_equal(ca_check_issuer(x, k, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "the CA certificate's keyUsage must include keyCertSign (to sign "
                             "device certificates) and cRLSign (to sign CRLs)");
    X509_free(x);
    x = custom_cert(k, m.root, m.root_key, "critical,CA:TRUE", NULL, now - 60, now + DAY);
    assert_int_equal(ca_check_issuer(x, k, above, NULL, err, sizeof(err)), -1);
    X509_free(x);

    /* Expired, and not yet valid. */
    const char *ku = "critical,keyCertSign,cRLSign";
    x = custom_cert(k, m.root, m.root_key, "critical,CA:TRUE", ku, now - 2 * DAY, now - DAY);
    assert_int_equal(ca_check_issuer(x, k, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "the CA certificate is expired");
    X509_free(x);
    x = custom_cert(k, m.root, m.root_key, "critical,CA:TRUE", ku, now + DAY, now + 2 * DAY);
    assert_int_equal(ca_check_issuer(x, k, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "the CA certificate is not valid yet");
    X509_free(x);

    /* A key type provd does not sign with. */
    EVP_PKEY *k1 = EVP_EC_gen("secp256k1");
    x = custom_cert(k1, m.root, m.root_key, "critical,CA:TRUE", ku, now - 60, now + DAY);
    assert_int_equal(ca_check_issuer(x, k1, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "the CA key cannot be used: EC key on curve secp256k1, which is not "
                             "allowed here (P-256, P-384 or RSA of at least 2048 bits are)");
    X509_free(x);
    EVP_PKEY_free(k1);

    /* No root given; the wrong root; a root offered as the issuing CA. */
    STACK_OF(X509) *none = sk_X509_new_null();
    assert_int_equal(ca_check_issuer(m.issuing, m.issuing_key, none, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the chain holds no root certificate"));
    STACK_OF(X509) *wrong = sk_X509_new_null();
    sk_X509_push(wrong, other.root);
    assert_int_equal(ca_check_issuer(m.issuing, m.issuing_key, wrong, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "the CA certificate does not chain to the root: unable to get local "
                             "issuer certificate (at depth 0)");
    assert_int_equal(ca_check_issuer(m.root, m.root_key, above, NULL, err, sizeof(err)), -1);
    assert_string_equal(
        err, "the certificate is a self-signed root; provd needs an issuing CA signed by a root");

    /* ca_verify refuses a device certificate of another CA. */
    EVP_PKEY *dk = pki_key_new();
    struct pki_cert_spec s = {.profile = PKI_PROFILE_DEVICE,
                              .key = dk,
                              .cn = "foreign",
                              .issuer = other.issuing,
                              .issuer_key = other.issuing_key,
                              .not_before = now - 60,
                              .not_after = now + DAY};
    X509 *foreign = pki_cert_new(&s);
    assert_non_null(foreign);
    assert_int_equal(ca_verify(ca, foreign, err, sizeof(err)), -1);
    assert_string_equal(err, "the certificate does not verify: unable to get local issuer "
                             "certificate (at depth 0)");
    X509_free(foreign);
    EVP_PKEY_free(dk);

    sk_X509_free(none);
    sk_X509_free(wrong);
    sk_X509_free(above);
    X509_free(srv);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(k);
    made_free(&m);
    made_free(&other);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    (void)n;
    fclose(f);
    return buf;
}

static void test_import(void **state) {
    (void)state;
    struct made cur = {0}, mine = {0};
    char d[128], err[1024];
    snprintf(d, sizeof(d), "%s/import", dir);
    make_cas(&cur, PKI_KEY_P256, "current");
    write_data_dir(d, &cur);
    make_cas(&mine, PKI_KEY_P384, "operator");

    char *src = path_of(dir, "src");
    assert_int_equal(mkdir(src, 0700), 0);
    char *cert = path_of(src, "issuing.pem"), *key = path_of(src, "issuing.key");
    char *chain = path_of(src, "root.pem"), *bundle = path_of(src, "bundle.pem");
    char *wrong_key = path_of(src, "wrong.key"), *enc_key = path_of(src, "enc.key");
    X509 *const both[2] = {mine.issuing, mine.root};
    assert_int_equal(pki_write_cert(cert, mine.issuing), 0);
    assert_int_equal(pki_write_key(key, mine.issuing_key, 1), 0);
    assert_int_equal(pki_write_cert(chain, mine.root), 0);
    assert_int_equal(pki_write_certs(bundle, both, 2), 0);
    assert_int_equal(pki_write_key(wrong_key, cur.issuing_key, 1), 0);
    FILE *f = fopen(enc_key, "w");
    assert_true(PEM_write_PrivateKey(f, mine.issuing_key, EVP_aes_256_cbc(),
                                     (const unsigned char *)"secret", 6, NULL, NULL));
    fclose(f);

    char *issuing_out = path_of(d, "ca/issuing.pem");
    char *before = read_all(issuing_out);
    struct ca_import_opts o = {.data_dir = d, .cert = cert, .key = key, .chain = chain};

    /* An issuing CA is there already: refused without --force. */
    assert_int_equal(ca_import(&o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already has an issuing CA"));
    assert_non_null(strstr(err, "--force"));

    /* Refusals with --force leave the files as they were. */
    o.force = 1;
    o.key = wrong_key;
    assert_int_equal(ca_import(&o, err, sizeof(err)), -1);
    assert_string_equal(strstr(err, ": the private") + 2,
                        "the private key does not belong to the CA certificate");
    o.key = enc_key;
    assert_int_equal(ca_import(&o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the key is encrypted"));
    o.key = key;
    o.chain = NULL;
    assert_int_equal(ca_import(&o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the chain holds no root certificate"));
    o.cert = chain; /* the root itself */
    o.key = key;
    assert_int_equal(ca_import(&o, err, sizeof(err)), -1);
    char *after = read_all(issuing_out);
    assert_string_equal(before, after);
    free(after);
    struct ca_import_opts nodir = {.data_dir = src, .cert = cert, .key = key, .chain = chain};
    assert_int_equal(ca_import(&nodir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a provd data directory"));

    /* The chain may follow the certificate in one file. */
    o.cert = bundle;
    o.chain = NULL;
    assert_int_equal(ca_import(&o, err, sizeof(err)), 0);
    struct stat st;
    char *key_out = path_of(d, "ca/issuing.key");
    assert_int_equal(stat(key_out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* The imported CA loads and issues certificates that chain to the operator's root. */
    struct ca *c = NULL;
    assert_int_equal(ca_load(d, NULL, &c, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(ca_root_cert(c), mine.root), 0);
    assert_int_equal(X509_cmp(ca_issuing_cert(c), mine.issuing), 0);
    EVP_PKEY *dk = pki_key_new();
    X509 *leaf = ca_issue(c, dk, "imported", 0, err, sizeof(err));
    assert_non_null(leaf);
    assert_int_equal(X509_verify(leaf, X509_get0_pubkey(mine.issuing)), 1);
    assert_int_equal(ca_verify(c, leaf, err, sizeof(err)), 0);
    X509_free(leaf);
    EVP_PKEY_free(dk);
    ca_free(c);

    /* A certificate and key that disagree on disk are refused at load. */
    assert_int_equal(pki_write_key(key_out, cur.issuing_key, 1), 0);
    assert_int_equal(ca_load(d, NULL, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the private key does not belong to the CA certificate"));

    free(before);
    free(issuing_out);
    free(key_out);
    free(src);
    free(cert);
    free(key);
    free(chain);
    free(bundle);
    free(wrong_key);
    free(enc_key);
    made_free(&cur);
    made_free(&mine);
}

/* A loaded CA is shared by the worker threads: each issues with the same key at once. */
static void *issue_many(void *arg) {
    int *failures = arg;
    EVP_PKEY *key = pki_key_new();
    char err[256];
    for (int i = 0; i < 25; i++) {
        X509 *x = ca_issue(ca, key, "concurrent", 0, err, sizeof(err));
        if (!x || ca_verify(ca, x, err, sizeof(err)) != 0)
            (*failures)++;
        X509_free(x);
    }
    EVP_PKEY_free(key);
    return NULL;
}

static void test_concurrent_issue(void **state) {
    (void)state;
    pthread_t t[4];
    int failures[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, issue_many, &failures[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

static void test_key_types(void **state) {
    (void)state;
    enum pki_key_type t;
    assert_int_equal(pki_key_type_parse("p384", &t), 0);
    assert_int_equal(t, PKI_KEY_P384);
    assert_int_equal(pki_key_type_parse("rsa3072", &t), 0);
    assert_int_equal(t, PKI_KEY_RSA3072);
    assert_int_equal(pki_key_type_parse("ed25519", &t), -1);
    assert_int_equal(pki_key_type_parse("P256", &t), -1);
    assert_string_equal(pki_key_type_name(PKI_KEY_RSA2048), "rsa2048");
    EVP_PKEY *k = pki_key_new_type(PKI_KEY_RSA2048);
    assert_true(EVP_PKEY_is_a(k, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    assert_ptr_equal(pki_sign_md(k), EVP_sha256());
    EVP_PKEY_free(k);
    k = pki_key_new_type(PKI_KEY_P384);
    assert_int_equal(EVP_PKEY_get_bits(k), 384);
    assert_ptr_equal(pki_sign_md(k), EVP_sha384());
    EVP_PKEY_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_profile_p256),
        cmocka_unit_test(test_device_profile_rsa),
        cmocka_unit_test(test_issue_from_csr),
        cmocka_unit_test(test_issue_rsa_params_absent),
        cmocka_unit_test(test_validity_within_chain),
        cmocka_unit_test(test_device_id_encoding),
        cmocka_unit_test(test_validity_capped_by_issuer),
        cmocka_unit_test(test_serials_differ),
        cmocka_unit_test(test_p384_issuer),
        cmocka_unit_test(test_load_options),
        cmocka_unit_test(test_out_of_time),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_crl_refusals),
        cmocka_unit_test(test_check_issuer_refusals),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_concurrent_issue),
        cmocka_unit_test(test_key_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
