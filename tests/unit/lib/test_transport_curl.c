/* Unit tests for lib/transport_curl.c: what libcurl is told for a request. The test defines
 * curl_easy_setopt itself; the library's objects linked into it call this one instead of
 * libcurl's, which records the options of interest and passes every option on to libcurl. The
 * requests go to a closed port of 127.0.0.1, so each ends at once with a refused connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The checks of curl.h's type-checking macro would take the definition below for a call. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "internal.h"

#define CA_FILE PROV_TEST_DATA "/ca/root.pem"

/* What the transport set for the requests of a test. */
static struct {
    char cainfo[512]; /* CURLOPT_CAINFO, "" when not set */
    int capath_null;  /* times CURLOPT_CAPATH was set to NULL */
    int capath_other; /* times it was set to a directory */
    int sslkey_file;  /* times CURLOPT_SSLKEY (a key file for libcurl to read) was set */
    int sslkey_blob;  /* times CURLOPT_SSLKEY_BLOB was set */
    unsigned blob_flags;
    size_t blob_len;
    char keytype[16];
    long ca_cache_timeout; /* CURLOPT_CA_CACHE_TIMEOUT, -1 when not set */
} seen;

/* The TLS library libcurl is said to use, or NULL for the one it does use. */
static const char *fake_tls;

/* Like libcurl's, but with fake_tls as its TLS library when set. */
curl_version_info_data *curl_version_info(CURLversion age) {
    static curl_version_info_data *(*real)(CURLversion);
    static curl_version_info_data copy;
    curl_version_info_data *v;

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "curl_version_info");
    assert_non_null(real);
    v = real(age);
    if (fake_tls == NULL || v == NULL)
        return v;
    copy = *v;
    copy.ssl_version = fake_tls;
    return &copy;
}

CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...) {
    static CURLcode (*real)(CURL *, CURLoption, ...);
    va_list ap;
    CURLcode cc;

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "curl_easy_setopt");
    assert_non_null(real);
    va_start(ap, option);
    /* An option's number says the type of its value (curl.h, CURLOPTTYPE_*). */
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);

#if LIBCURL_VERSION_NUM >= 0x075700
        if (option == CURLOPT_CA_CACHE_TIMEOUT)
            seen.ca_cache_timeout = v;
#endif
        cc = real(curl, option, v);
    } else if (option < CURLOPTTYPE_FUNCTIONPOINT || option >= CURLOPTTYPE_BLOB) {
        void *v = va_arg(ap, void *);

        if (option == CURLOPT_CAINFO)
            snprintf(seen.cainfo, sizeof(seen.cainfo), "%s", v != NULL ? (char *)v : "");
        if (option == CURLOPT_CAPATH) {
            if (v == NULL)
                seen.capath_null++;
            else
                seen.capath_other++;
        }
        if (option == CURLOPT_SSLKEY)
            seen.sslkey_file++;
        if (option == CURLOPT_SSLKEYTYPE)
            snprintf(seen.keytype, sizeof(seen.keytype), "%s", (char *)v);
        if (option == CURLOPT_SSLKEY_BLOB) {
            const struct curl_blob *b = v;

            seen.sslkey_blob++;
            seen.blob_flags = b->flags;
            seen.blob_len = b->len;
        }
        cc = real(curl, option, v);
    } else if (option < CURLOPTTYPE_OFF_T) {
        cc = real(curl, option, va_arg(ap, void (*)(void)));
    } else {
        cc = real(curl, option, va_arg(ap, curl_off_t));
    }
    va_end(ap);
    return cc;
}

/* https://127.0.0.1:PORT/ where nothing listens: a port just bound and closed again. */
static void closed_url(char *url, size_t len) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(url, len, "https://127.0.0.1:%u/", (unsigned)ntohs(a.sin_port));
}

/* Sends req through the built-in transport; returns its result. */
static prov_err perform(struct prov_http_request *req, char *error, size_t errlen) {
    struct curl_transport *t = NULL;
    prov_http_response resp;
    char url[64];
    prov_err rc;

    closed_url(url, sizeof(url));
    req->method = "GET";
    req->url = url;
    req->timeout_ms = 5000;
    memset(&resp, 0, sizeof(resp));
    memset(&seen, 0, sizeof(seen));
    seen.ca_cache_timeout = -1;
    assert_int_equal(curl_transport_new(&t), PROV_OK);
    rc = curl_transport_perform(t, req, &resp);
    snprintf(error, errlen, "%s", resp.error);
    response_release(&resp);
    curl_transport_free(t);
    return rc;
}

/* A CA file is the whole trust store: libcurl must not keep its default CA directory beside it,
 * or a server certified by any CA of the system would pass. */
static void a_ca_file_replaces_the_system_store(void **state) {
    struct prov_http_request req = {0};
    char error[256];

    (void)state;
    req.ca_file = CA_FILE;
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_NETWORK);
    assert_string_equal(seen.cainfo, CA_FILE);
    assert_int_equal(seen.capath_null, 1);
    assert_int_equal(seen.capath_other, 0);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* Read again for each new connection, not kept from an older one. */
    assert_int_equal(seen.ca_cache_timeout, 0);
#endif
}

/* Without a CA file, libcurl's defaults (the system's trust store) stay as they are. */
static void no_ca_file_keeps_the_system_store(void **state) {
    struct prov_http_request req = {0};
    char error[256];

    (void)state;
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_NETWORK);
    assert_string_equal(seen.cainfo, "");
    assert_int_equal(seen.capath_null + seen.capath_other, 0);
}

/* The key of a client certificate reaches libcurl as DER read by the library, used where it is
 * (no copy of libcurl's) and wiped after the request, never as a file libcurl would read through
 * buffers it frees unwiped. A key file that cannot be read fails the request as TLS does. */
static void the_client_key_is_handed_over_in_memory(void **state) {
    char dir[] = "/tmp/test_transport_curl.XXXXXX", key_path[64], cmd[80], error[256];
    struct prov_http_request req = {0};
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *der = NULL;
    long der_len;
    FILE *f;

    (void)state;
    assert_non_null(key);
    assert_non_null(mkdtemp(dir));
    snprintf(key_path, sizeof(key_path), "%s/device.key", dir);
    f = fopen(key_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    /* The DER of the file's PKCS#8 key, which is what libcurl gets. */
    assert_int_equal(i2d_PKCS8PrivateKey_bio(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    der_len = BIO_get_mem_data(bio, &der);

    req.client_cert_file = CA_FILE; /* not read: the connection fails before the handshake */
    req.client_key_file = key_path;
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_NETWORK);
    assert_int_equal(seen.sslkey_file, 0);
    assert_int_equal(seen.sslkey_blob, 1);
    assert_int_equal(seen.blob_flags, CURL_BLOB_NOCOPY);
    assert_true(der_len > 0);
    assert_int_equal(seen.blob_len, (size_t)der_len);
    assert_string_equal(seen.keytype, "DER");

    assert_int_equal(unlink(key_path), 0);
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_TLS);
    assert_non_null(strstr(error, "cannot read key file"));
    assert_int_equal(seen.sslkey_blob, 0);

    /* A libcurl on another TLS library would not use the key it is given: the request fails as
     * TLS does, without reading the key or connecting. */
    f = fopen(key_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    fake_tls = "GnuTLS/3.7.9";
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_TLS);
    assert_string_equal(error, "libcurl uses GnuTLS/3.7.9, not OpenSSL: the built-in transport "
                               "cannot present a client certificate with it");
    assert_int_equal(seen.sslkey_blob + seen.sslkey_file, 0);
    /* Requests without a client certificate go out as before. */
    req.client_cert_file = NULL;
    req.client_key_file = NULL;
    assert_int_equal(perform(&req, error, sizeof(error)), PROV_ERR_NETWORK);
    fake_tls = NULL;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    BIO_free(bio);
    EVP_PKEY_free(key);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_ca_file_replaces_the_system_store),
        cmocka_unit_test(no_ca_file_keeps_the_system_store),
        cmocka_unit_test(the_client_key_is_handed_over_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
