/* The built-in transport: libcurl with OpenSSL, one easy handle per client so that the polls of
 * a registration reuse the connection of the PUT. A libcurl on another TLS library serves every
 * request but those with a client certificate. TLS verification is always on; there is no
 * setting that turns it off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "internal.h"

struct curl_transport {
    CURL *easy;
    /* libcurl's TLS library ("OpenSSL/3.0.11"), and whether it is OpenSSL: only with OpenSSL does
     * libcurl use a client key given in memory (CURLOPT_SSLKEY_BLOB); GnuTLS, for one, ignores
     * it, and the handshake would fail as if the network had. */
    char tls[64];
    int openssl;
};

/* What the callbacks of one transfer share. */
struct transfer {
    prov_http_response *resp;
    prov_err body_err; /* why the write callback stopped the transfer */
};

/* Finds out which TLS library libcurl uses (curl_transport's tls and openssl). */
static void tls_backend(struct curl_transport *t) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    const char *name = v != NULL && v->ssl_version != NULL ? v->ssl_version : "no TLS library";

    snprintf(t->tls, sizeof(t->tls), "%s", name);
    t->openssl = strncmp(name, "OpenSSL/", 8) == 0;
}

prov_err curl_transport_new(struct curl_transport **out) {
    struct curl_transport *t;

    *out = NULL;
    /* Reference-counted by libcurl, and thread-safe in the libcurl versions this builds with
     * (7.84 and later); balanced in curl_transport_free. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return PROV_ERR_NOMEM;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->easy = curl_easy_init()) == NULL) {
        free(t);
        curl_global_cleanup();
        return PROV_ERR_NOMEM;
    }
    tls_backend(t);
    *out = t;
    return PROV_OK;
}

void curl_transport_free(struct curl_transport *t) {
    if (t == NULL)
        return;
    curl_easy_cleanup(t->easy);
    free(t);
    curl_global_cleanup();
}

static size_t on_header(char *data, size_t size, size_t n, void *arg) {
    struct transfer *tr = arg;
    size_t len = size * n;
    const char *colon;

    /* A status line starts a response: headers of an interim 1xx answer are forgotten. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        response_clear_headers(tr->resp);
        return len;
    }
    colon = memchr(data, ':', len);
    if (colon != NULL)
        prov_http_response_add_header(tr->resp, data, (size_t)(colon - data), colon + 1,
                                      len - (size_t)(colon - data) - 1);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    struct transfer *tr = arg;
    prov_err rc = prov_http_response_append_body(tr->resp, data, size * n);

    if (rc != PROV_OK) {
        tr->body_err = rc;
        return 0; /* stops the transfer with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Sorts a libcurl failure into the library's errors: which ones a retry can cure. */
static prov_err classify(CURLcode cc) {
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        return PROV_ERR_TLS;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return PROV_ERR_INVALID_ARG;
    case CURLE_OUT_OF_MEMORY:
        return PROV_ERR_NOMEM;
    default:
        /* Connecting, resolving, sending, receiving, timeouts, handshakes cut short. */
        return PROV_ERR_NETWORK;
    }
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if ((cc = curl_easy_setopt(easy, (opt), (val))) != CURLE_OK)                               \
            goto done;                                                                             \
    } while (0)

prov_err curl_transport_perform(void *ctx, const struct prov_http_request *req,
                                prov_http_response *resp) {
    struct curl_transport *t = ctx;
    CURL *easy = t->easy;
    struct curl_slist *headers = NULL, *h;
    struct transfer tr = {resp, PROV_OK};
    char errbuf[CURL_ERROR_SIZE] = "", why[ERRMSG_MAX] = "";
    struct curl_blob key = {NULL, 0, CURL_BLOB_NOCOPY};
    unsigned char *key_der = NULL;
    size_t key_len = 0;
    prov_err key_err = PROV_OK;
    CURLcode cc = CURLE_OK;
    long status = 0;
    prov_err rc;
    size_t i;

    for (i = 0; i < req->n_headers; i++) {
        size_t len = strlen(req->headers[i].name) + strlen(req->headers[i].value) + 3;
        char *line = malloc(len);
        struct curl_slist *next;

        if (line == NULL) {
            cc = CURLE_OUT_OF_MEMORY;
            goto done;
        }
        snprintf(line, len, "%s: %s", req->headers[i].name, req->headers[i].value);
        next = curl_slist_append(headers, line);
        /* The line may hold the Authorization token. */
        OPENSSL_cleanse(line, len);
        free(line);
        if (next == NULL) {
            cc = CURLE_OUT_OF_MEMORY;
            goto done;
        }
        headers = next;
    }
    /* No "Expect: 100-continue" round trip for the small bodies sent here. */
    if ((h = curl_slist_append(headers, "Expect:")) == NULL) {
        cc = CURLE_OUT_OF_MEMORY;
        goto done;
    }
    headers = h;

    SETOPT(CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    /* A CA file replaces the system's trust store rather than adding to it: libcurl would
     * otherwise keep its built-in CA directory (CURLOPT_CAPATH) beside the file, and a server
     * any system CA vouches for would pass. */
    if (req->ca_file != NULL) {
        SETOPT(CURLOPT_CAINFO, req->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    }
#if LIBCURL_VERSION_NUM >= 0x075700
    /* libcurl 7.87 and later would keep the trust store it built for a day and use it for new
     * connections: a CA file replaced or removed meanwhile would still be trusted. */
    SETOPT(CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
    /* X.509 attestation. With OpenSSL, libcurl reads a PEM certificate file as a chain, so the
     * intermediates the device holds go out with its certificate. The key is read here and
     * handed over as DER that libcurl uses without copying: read by libcurl from the file, its
     * text would stay behind in freed stdio and PEM buffers. */
    if (req->client_cert_file != NULL && req->client_key_file != NULL) {
        if (!t->openssl) {
            key_err = PROV_ERR_TLS;
            snprintf(why, sizeof(why),
                     "libcurl uses %s, not OpenSSL: the built-in transport cannot present a "
                     "client certificate with it",
                     t->tls);
            goto done;
        }
        key_err = csr_read_key_der(req->client_key_file, &key_der, &key_len, why, sizeof(why));
        if (key_err != PROV_OK)
            goto done;
        key.data = key_der;
        key.len = key_len;
        SETOPT(CURLOPT_SSLCERT, req->client_cert_file);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(CURLOPT_SSLKEY_BLOB, &key);
        SETOPT(CURLOPT_SSLKEYTYPE, "DER");
    }
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_HTTPHEADER, headers);
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, &tr);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, &tr);
    if (strcmp(req->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, req->method);
        SETOPT(CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    cc = curl_easy_perform(easy);
    if (cc == CURLE_OK)
        cc = curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

done:
    for (h = headers; h != NULL; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    if (key_err != PROV_OK) {
        /* The transport cannot present the certificate: connecting without it would only be
         * refused. */
        rc = key_err == PROV_ERR_NOMEM ? PROV_ERR_NOMEM : PROV_ERR_TLS;
        prov_http_response_set_error(resp, why);
    } else if (tr.body_err != PROV_OK) {
        rc = tr.body_err;
        prov_http_response_set_error(resp, rc == PROV_ERR_PROTOCOL
                                               ? "answer larger than the library accepts"
                                               : "out of memory");
    } else if (cc != CURLE_OK) {
        rc = classify(cc);
        prov_http_response_set_error(resp, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    } else {
        rc = PROV_OK;
        if (prov_http_response_set_status(resp, (int)status) != PROV_OK) {
            rc = PROV_ERR_PROTOCOL;
            prov_http_response_set_error(resp, "no valid HTTP status in the answer");
        }
    }
    /* The handle must not keep pointers to this call's stack and headers. A reset handle keeps
     * its connection cache, so the next request of the client reuses the connection. */
    curl_easy_reset(easy);
    csr_key_der_free(key_der, key_len);
    return rc;
}
