/* The pure parts of the EST front end: HTTP Basic credentials, serverkeygen's multipart body
 * and the CSR attributes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "est.h"

static void test_basic_ok(void **state) {
    (void)state;
    char user[16];
    char *pw = NULL;
    /* "dev-1:s3cr:et" */
    assert_int_equal(est_basic_parse("Basic ZGV2LTE6czNjcjpldA==", user, sizeof(user), &pw), 0);
    assert_string_equal(user, "dev-1");
    assert_string_equal(pw, "s3cr:et");
    free(pw);
    /* Scheme in any case, several spaces, an empty password. "a:" */
    assert_int_equal(est_basic_parse("bAsIc   YTo=", user, sizeof(user), &pw), 0);
    assert_string_equal(user, "a");
    assert_string_equal(pw, "");
    free(pw);
}

static void test_basic_refused(void **state) {
    (void)state;
    char user[6];
    char *pw = (char *)"untouched";
    static const char *const bad[] = {
        "Bearer ZGV2LTE6eA==",    /* another scheme */
        "Basic",                  /* nothing after it */
        "BasicZGV2LTE6eA==",      /* no space */
        "Basic ZGV2LTE6eA",       /* no padding */
        "Basic ZGV2LTE6eA== ",    /* trailing space */
        "Basic ZGV2LTE=",         /* "dev-1": no colon */
        "Basic OngK",             /* ":x\n": empty user */
        "Basic ZGV2LTE6eAp5",     /* "dev-1:x\ny": a control character */
        "Basic dG9vLWxvbmc6eA==", /* "too-long:x": user over the buffer */
        "Basic !!!!",             /* not base64 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(est_basic_parse(bad[i], user, sizeof(user), &pw), -1);
        assert_null(pw);
        pw = (char *)"untouched";
    }
    assert_int_equal(est_basic_parse(NULL, user, sizeof(user), &pw), -1);
}

static void test_multipart(void **state) {
    (void)state;
    struct evbuffer *out = evbuffer_new();
    char *key = strdup("S0VZ");
    assert_non_null(out);
    assert_int_equal(est_multipart(out, key, "UDc="), 0);
    static const char want[] = "--" EST_BOUNDARY "\r\n"
                               "Content-Type: application/pkcs8\r\n"
                               "Content-Transfer-Encoding: base64\r\n"
                               "\r\n"
                               "S0VZ\r\n"
                               "--" EST_BOUNDARY "\r\n"
                               "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n"
                               "Content-Transfer-Encoding: base64\r\n"
                               "\r\n"
                               "UDc=\r\n"
                               "--" EST_BOUNDARY "--\r\n";
    size_t n = evbuffer_get_length(out);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(evbuffer_pullup(out, -1), want, n);
    evbuffer_free(out);
}

/* Whether the CsrAttrs DER holds an OID item of nid, and an ecPublicKey attribute with the
 * curves (count ncurves). */
static void check_attrs(const unsigned char *der, size_t len, int want_rsa, int ncurves) {
    const unsigned char *q = der;
    STACK_OF(ASN1_TYPE) *sk = d2i_ASN1_SEQUENCE_ANY(NULL, &q, (long)len);
    int rsa = 0, curves = -1;
    assert_non_null(sk);
    assert_ptr_equal(q, der + len);
    for (int i = 0; i < sk_ASN1_TYPE_num(sk); i++) {
        ASN1_TYPE *t = sk_ASN1_TYPE_value(sk, i);
        if (t->type == V_ASN1_OBJECT) {
            rsa |= OBJ_obj2nid(t->value.object) == NID_rsaEncryption;
        } else {
            assert_int_equal(t->type, V_ASN1_SEQUENCE);
            const unsigned char *a = t->value.sequence->data;
            X509_ATTRIBUTE *attr = d2i_X509_ATTRIBUTE(NULL, &a, t->value.sequence->length);
            assert_non_null(attr);
            assert_int_equal(OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr)),
                             NID_X9_62_id_ecPublicKey);
            curves = X509_ATTRIBUTE_count(attr);
            X509_ATTRIBUTE_free(attr);
        }
    }
    assert_int_equal(rsa, want_rsa);
    assert_int_equal(curves, ncurves);
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
}

static void test_csrattrs(void **state) {
    (void)state;
    struct csr_policy p;
    size_t len = 0;
    csr_policy_default(&p);
    unsigned char *der = est_csrattrs_der(&p, &len);
    assert_non_null(der);
    check_attrs(der, len, 1, 2);
    OPENSSL_free(der);
    p.allow = CSR_KEY_P256;
    der = est_csrattrs_der(&p, &len);
    assert_non_null(der);
    check_attrs(der, len, 0, 1);
    OPENSSL_free(der);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_ok),
        cmocka_unit_test(test_basic_refused),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_csrattrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
