/* provbench's client: one libevent loop on one thread, evhttp's client side over
 * bufferevent_openssl. Each of the C slots carries one operation at a time; when it finishes,
 * the slot's "kick" event starts the next one from the loop rather than from inside libevent's
 * callbacks, where freeing a connection is not allowed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hmac.h"
#include "provbench.h"
#include "regid.h"
#include "sas.h"
#include "timefmt.h"

#define ERROR_SAMPLES 5 /* failures described on stderr, so that a failing run says why */
#define API_VERSION   "2021-06-01"
#define CSR_B64_MAX   1024 /* a P-256 request is about 250 bytes of DER, 340 of base64 */

struct slot {
    struct pb_load *ld;
    struct evhttp_connection *evcon; /* registration modes */
    struct bufferevent *bev;         /* handshake mode */
    struct event *kick;
    evutil_socket_t nodelay_fd; /* the socket TCP_NODELAY was last set on */
    int reconnect;              /* the connection cannot carry another request */
    int tls_started, tls_done;  /* the server's ServerHello came; the handshake completed */
    int req_error;              /* enum evhttp_request_error of a failed request, or -1 */
    uint64_t t0;
    char regid[REGID_MAX + 1];
};

struct pb_load {
    const struct pb_options *o;
    SSL_CTX *ctx;
    struct event_base *base;
    struct event *sig_int, *sig_term;
    struct sockaddr_storage sa;
    socklen_t salen;
    struct slot *slots;
    int nslots;
    int inflight;
    int stopping;
    long next_device;
    long ndevices;        /* registration IDs used: PREFIX-0 .. PREFIX-(ndevices-1) */
    char **csr;           /* --csr: base64 DER request of each of those devices */
    uint64_t deadline_us; /* with --duration: no operation starts after it */
    int64_t expiry;       /* of the SAS tokens */
    int host_is_ip;
    char host_header[300];
    struct pb_result *r;
    uint64_t t_start, t_last;
    int samples_left;
};

static void slot_next(struct slot *s);

/* Prints one failure on stderr while samples are left. */
__attribute__((format(printf, 2, 3))) static void sample(struct pb_load *ld, const char *fmt, ...) {
    if (ld->o->quiet || ld->samples_left <= 0)
        return;
    ld->samples_left--;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "provbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", ld->samples_left == 0 ? " (further errors are only counted)" : "");
    va_end(ap);
}

static void finish(struct slot *s, int ok, enum pb_err kind, int http_code) {
    struct pb_load *ld = s->ld;
    struct pb_result *r = ld->r;
    uint64_t now = time_mono_us();
    r->done++;
    if (ok) {
        r->ok++;
        hist_add(&r->lat, now - s->t0);
    } else {
        r->errors++;
        if (http_code > 0)
            r->http[http_code < PB_HTTP_CODES ? http_code : 0]++;
        else
            r->err[kind]++;
    }
    ld->t_last = now;
    ld->inflight--;
    event_active(s->kick, EV_TIMEOUT, 1);
}

/* ---- TLS ---- */

/* Tells where a connection failed. OpenSSL's own state cannot: it returns to its initial state
 * after a failed handshake, and starts the handshake (writes its ClientHello) even on a socket
 * whose connection was refused. A ServerHello received is what shows the server was reached. */
static void on_tls_info(const SSL *ssl, int where, int ret) {
    (void)ret;
    struct slot *s = SSL_get_app_data(ssl);
    if ((where & SSL_CB_LOOP) && SSL_get_state(ssl) == TLS_ST_CR_SRVR_HELLO)
        s->tls_started = 1;
    if (where & SSL_CB_HANDSHAKE_DONE)
        s->tls_done = 1;
}

static SSL *new_ssl(struct slot *s) {
    struct pb_load *ld = s->ld;
    SSL *ssl = SSL_new(ld->ctx);
    if (!ssl)
        return NULL;
    SSL_set_app_data(ssl, s);
    SSL_set_info_callback(ssl, on_tls_info);
    s->tls_started = s->tls_done = 0;
    /* Devices name the server as they were told; SNI only carries DNS names. */
    if (!ld->host_is_ip && SSL_set_tlsext_host_name(ssl, ld->o->host) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* Why a connection failed, for the error sample. */
static void describe_tls(struct pb_load *ld, struct bufferevent *bev, SSL *ssl, const char *what) {
    char buf[256] = "";
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    if (vr != X509_V_OK)
        snprintf(buf, sizeof(buf), "certificate verification: %s",
                 X509_verify_cert_error_string(vr));
    else if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "%s", errno ? strerror(errno) : "connection closed");
    sample(ld, "%s: %s", what, buf);
}

/* ---- registrations over evhttp ---- */

static void on_request_error(enum evhttp_request_error err, void *arg) {
    struct slot *s = arg;
    s->req_error = (int)err;
}

/* A request that got no HTTP answer: where it failed. */
static enum pb_err transport_failure(struct slot *s) {
    struct pb_load *ld = s->ld;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    /* evhttp reports a timeout while connecting like any other failure to connect. */
    if (s->req_error == EVREQ_HTTP_TIMEOUT ||
        (double)(time_mono_us() - s->t0) >= ld->o->timeout * 0.99e6) {
        sample(ld, "%s: no answer within %.1f s", s->regid, ld->o->timeout);
        return PB_ERR_TIMEOUT;
    }
    if (!s->tls_started) {
        sample(ld, "%s: cannot connect to %s: %s", s->regid, ld->o->endpoint,
               errno ? strerror(errno) : "connection failed");
        return PB_ERR_CONNECT;
    }
    if (!s->tls_done) {
        describe_tls(ld, bev, ssl, "TLS handshake");
        return PB_ERR_TLS;
    }
    if (s->req_error == EVREQ_HTTP_INVALID_HEADER || s->req_error == EVREQ_HTTP_DATA_TOO_LONG) {
        sample(ld, "%s: the answer is not valid HTTP", s->regid);
        return PB_ERR_HTTP_PROTOCOL;
    }
    sample(ld, "%s: the server closed the connection without answering", s->regid);
    return PB_ERR_CLOSED;
}

/* Checks a 200 answer: a JSON registration result, assigned, for this device. */
static enum pb_err check_result(struct slot *s, struct evhttp_request *req) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    size_t len = evbuffer_get_length(in);
    const char *data = (const char *)evbuffer_pullup(in, -1);
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || !data) {
        sample(s->ld, "%s: 200 with Content-Type \"%s\"", s->regid, ct ? ct : "(none)");
        return PB_ERR_BAD_BODY;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    const char *status = NULL, *rstatus = NULL, *rid = NULL, *did = NULL;
    enum pb_err e = PB_ERR_KINDS;
    if (!root ||
        json_unpack(root, "{s:s, s:{s:s, s:s, s:s}}", "status", &status, "registrationState",
                    "registrationId", &rid, "status", &rstatus, "deviceId", &did) != 0) {
        sample(s->ld, "%s: 200 whose body is not a registration result: %.*s", s->regid,
               (int)(len < 200 ? len : 200), data);
        e = PB_ERR_BAD_BODY;
    } else if (strcmp(status, "assigned") != 0 || strcmp(rstatus, "assigned") != 0 ||
               strcasecmp(rid, s->regid) != 0 || !did[0]) {
        sample(s->ld, "%s: 200 but status \"%s\" for registration \"%s\"", s->regid, status, rid);
        e = PB_ERR_NOT_ASSIGNED;
    } else if (s->ld->csr) {
        /* The leaf, the issuing CA and the root: what a device installs. */
        json_t *chain =
            json_object_get(json_object_get(root, "registrationState"), "issuedCertificateChain");
        size_t n = json_is_array(chain) ? json_array_size(chain) : 0;
        for (size_t i = 0; i < n; i++)
            if (!json_is_string(json_array_get(chain, i)) ||
                !json_string_length(json_array_get(chain, i)))
                n = 0;
        if (n != 3) {
            sample(s->ld, "%s: 200 without an issuedCertificateChain of 3 certificates", s->regid);
            e = PB_ERR_NO_CERT;
        }
    }
    json_decref(root);
    return e;
}

static void on_response(struct evhttp_request *req, void *arg) {
    struct slot *s = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        s->reconnect = 1;
        finish(s, 0, transport_failure(s), 0);
        return;
    }
    const char *conn = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
    if (conn && strcasecmp(conn, "close") == 0)
        s->reconnect = 1;
    if (code != 200) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *body = (const char *)evbuffer_pullup(in, -1);
        sample(s->ld, "%s: HTTP %d %.*s", s->regid, code, body ? (int)(len < 200 ? len : 200) : 0,
               body ? body : "");
        finish(s, 0, PB_ERR_KINDS, code);
        return;
    }
    enum pb_err e = check_result(s, req);
    finish(s, e == PB_ERR_KINDS, e, 0);
}

static struct evhttp_connection *new_evcon(struct slot *s) {
    struct pb_load *ld = s->ld;
    SSL *ssl = new_ssl(s);
    if (!ssl)
        return NULL;
    /* Deferred callbacks run from the loop, not from inside libevent's own read and write
     * paths, so that evhttp's reaction to an event never re-enters them. */
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(ld->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *evcon = evhttp_connection_base_bufferevent_new(
        ld->base, NULL, bev, ld->o->addr, (ev_uint16_t)ld->o->port);
    if (!evcon) {
        bufferevent_free(bev);
        return NULL;
    }
    struct timeval tv = {(time_t)ld->o->timeout,
                         (suseconds_t)((ld->o->timeout - (double)(time_t)ld->o->timeout) * 1e6)};
    evhttp_connection_set_timeout_tv(evcon, &tv);
    /* Retrying would hide failures the run must count. */
    evhttp_connection_set_retries(evcon, 0);
    ld->r->connections++;
    return evcon;
}

/* Runs after evhttp_make_request. evhttp puts the headers and the body in separate chains of
 * the output buffer and bufferevent_openssl makes one TLS record, one write() and, at the
 * server, two read()s of each chain; a request that goes out at once (on a connection already
 * open) is made one chain here, so that it leaves as one record, as curl sends a small request.
 * The first request of a connection goes out later, as two records: hence TCP_NODELAY, without
 * which the second record waits for the server's delayed ACK (DESIGN.md). The socket exists
 * once evhttp has started connecting; only a new one is set. */
static void after_make_request(struct slot *s) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    if (!bev)
        return;
    evbuffer_pullup(bufferevent_get_output(bev), -1);
    evutil_socket_t fd = bufferevent_getfd(bev);
    int one = 1;
    if (fd >= 0 && fd != s->nodelay_fd &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
        s->nodelay_fd = fd;
}

/* Returns 0, or -1 when the request could not even be built (out of memory). */
static int start_register(struct slot *s, long device) {
    struct pb_load *ld = s->ld;
    const struct pb_options *o = ld->o;
    char sr[512], uri[512], body[REGID_MAX + CSR_B64_MAX + 64], len[16];
    const char *why = NULL;

    snprintf(s->regid, sizeof(s->regid), "%s-%ld", o->prefix, device);
    /* What the device does: derive its key from the group key, sign a SAS token with it. */
    snprintf(sr, sizeof(sr), "%s/registrations/%s", o->id_scope, s->regid);
    char *key = derive_device_key(o->group_key, s->regid, &why);
    char *tok = key ? sas_build(sr, key, ld->expiry, &why) : NULL;
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    if (!tok) {
        fprintf(stderr, "provbench: SAS token for %s: %s\n", s->regid, why ? why : "failed");
        return -1;
    }
    if (!s->evcon) {
        s->evcon = new_evcon(s);
        s->nodelay_fd = -1;
        s->reconnect = 0;
    }
    struct evhttp_request *req = s->evcon ? evhttp_request_new(on_response, s) : NULL;
    if (!req) {
        free(tok);
        return -1;
    }
    evhttp_request_set_error_cb(req, on_request_error);
    int blen = ld->csr ? snprintf(body, sizeof(body), "{\"registrationId\":\"%s\",\"csr\":\"%s\"}",
                                  s->regid, ld->csr[device])
                       : snprintf(body, sizeof(body), "{\"registrationId\":\"%s\"}", s->regid);
    snprintf(len, sizeof(len), "%d", blen);
    snprintf(uri, sizeof(uri), "/%s/registrations/%s/register?api-version=" API_VERSION,
             o->id_scope, s->regid);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int bad = evhttp_add_header(h, "Host", ld->host_header) |
              evhttp_add_header(h, "User-Agent", "provbench/" PROV_VERSION) |
              evhttp_add_header(h, "Accept", "application/json") |
              evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8") |
              evhttp_add_header(h, "Content-Length", len) |
              evhttp_add_header(h, "Authorization", tok) |
              evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)blen);
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
    if (bad) {
        evhttp_request_free(req);
        return -1;
    }
    s->req_error = -1;
    errno = 0;
    if (evhttp_make_request(s->evcon, req, EVHTTP_REQ_PUT, uri) != 0) {
        /* evhttp only fails here before the request is queued or after it took it back. */
        sample(ld, "%s: cannot start the request: %s", s->regid, strerror(errno));
        s->reconnect = 1;
        finish(s, 0, PB_ERR_CONNECT, 0);
        return 0;
    }
    after_make_request(s);
    return 0;
}

/* ---- bare handshakes ---- */

static void on_handshake(struct bufferevent *bev, short what, void *arg) {
    struct slot *s = arg;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    if (what & BEV_EVENT_CONNECTED) {
        finish(s, 1, PB_ERR_KINDS, 0);
    } else if (what & BEV_EVENT_TIMEOUT) {
        sample(s->ld, "handshake: no progress within %.1f s", s->ld->o->timeout);
        finish(s, 0, PB_ERR_TIMEOUT, 0);
    } else {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        int before = !s->tls_started;
        if (before)
            sample(s->ld, "cannot connect to %s: %s", s->ld->o->endpoint,
                   errno ? strerror(errno) : "connection failed");
        else
            describe_tls(s->ld, bev, ssl, "TLS handshake");
        finish(s, 0, before ? PB_ERR_CONNECT : PB_ERR_TLS, 0);
    }
}

static int start_handshake(struct slot *s) {
    struct pb_load *ld = s->ld;
    SSL *ssl = new_ssl(s);
    if (!ssl)
        return -1;
    s->bev = bufferevent_openssl_socket_new(ld->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev) {
        SSL_free(ssl);
        return -1;
    }
    struct timeval tv = {(time_t)ld->o->timeout,
                         (suseconds_t)((ld->o->timeout - (double)(time_t)ld->o->timeout) * 1e6)};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    bufferevent_setcb(s->bev, NULL, NULL, on_handshake, s);
    ld->r->connections++;
    errno = 0;
    /* A failure reported here has already gone to on_handshake (deferred). */
    (void)bufferevent_socket_connect(s->bev, (struct sockaddr *)&ld->sa, (int)ld->salen);
    return 0;
}

/* ---- the slots ---- */

static int more_work(struct pb_load *ld) {
    if (ld->stopping)
        return 0;
    if (ld->o->duration > 0)
        return time_mono_us() < ld->deadline_us;
    return ld->next_device < ld->o->devices;
}

static void slot_next(struct slot *s) {
    struct pb_load *ld = s->ld;
    if (!more_work(ld)) {
        if (ld->inflight == 0)
            event_base_loopbreak(ld->base);
        return;
    }
    long device = ld->next_device++ % ld->ndevices;
    ld->inflight++;
    s->t0 = time_mono_us();
    int rc = ld->o->mode == PB_HANDSHAKE ? start_handshake(s) : start_register(s, device);
    if (rc != 0) {
        /* Not the server's fault: stop the run rather than count it against provd. */
        fprintf(stderr, "provbench: out of memory or TLS set-up failed; stopping\n");
        ld->stopping = 1;
        ld->r->err[PB_ERR_CONNECT]++;
        ld->r->errors++;
        ld->r->done++;
        ld->inflight--;
        if (ld->inflight == 0)
            event_base_loopbreak(ld->base);
    }
}

/* Frees what the last operation leaves behind (evhttp and bufferevent objects may not be
 * freed from their own callbacks) and starts the next one. */
static void on_kick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct slot *s = arg;
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    /* A connection that failed keeps its used SSL object inside evhttp, which would reconnect
     * with it: start over with a fresh connection instead. */
    if (s->evcon && (s->reconnect || s->ld->o->mode == PB_NEWCONN)) {
        evhttp_connection_free(s->evcon);
        s->evcon = NULL;
    }
    slot_next(s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    struct pb_load *ld = arg;
    if (ld->stopping)
        event_base_loopbreak(ld->base);
    ld->stopping = 1;
    if (!ld->o->quiet)
        fprintf(stderr, "provbench: interrupted; waiting for the operations in flight "
                        "(again to stop now)\n");
}

/* A device's own key pair and its PKCS#10 request, CN = its registration ID, as base64 DER
 * without line breaks (what the register body carries). NULL on failure. */
static char *make_csr(const char *regid) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    char *b64 = NULL;
    int dlen = -1;
    if (key && req && name && X509_REQ_set_version(req, 0) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)regid, -1, -1,
                                   0) == 1 &&
        X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
        X509_REQ_sign(req, key, EVP_sha256()) > 0)
        dlen = i2d_X509_REQ(req, &der);
    /* EVP_EncodeBlock writes 4 characters per 3 bytes and a NUL, no newlines. */
    if (dlen > 0 && (dlen + 2) / 3 * 4 < CSR_B64_MAX) {
        b64 = malloc(CSR_B64_MAX);
        if (b64)
            EVP_EncodeBlock((unsigned char *)b64, der, dlen);
    }
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return b64;
}

/* Key pairs and requests for every device the run uses, made before it starts: generating them
 * is the device's work, not the server's, and would otherwise slow the client down mid-run. */
static int make_csrs(struct pb_load *ld) {
    ld->csr = calloc((size_t)ld->ndevices, sizeof(*ld->csr));
    if (!ld->csr)
        return -1;
    for (long i = 0; i < ld->ndevices; i++) {
        char regid[REGID_MAX + 1];
        snprintf(regid, sizeof(regid), "%s-%ld", ld->o->prefix, i);
        ld->csr[i] = make_csr(regid);
        if (!ld->csr[i]) {
            fprintf(stderr, "provbench: cannot make a certificate request for %s\n", regid);
            return -1;
        }
    }
    return 0;
}

struct pb_load *pb_load_new(const struct pb_options *o) {
    struct pb_load *ld = calloc(1, sizeof(*ld));
    if (!ld)
        return NULL;
    ld->o = o;
    ld->samples_left = ERROR_SAMPLES;

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", o->port);
    if (getaddrinfo(o->addr, port, &hints, &ai) != 0 || ai->ai_addrlen > sizeof(ld->sa)) {
        fprintf(stderr, "provbench: bad address %s\n", o->addr);
        goto fail;
    }
    memcpy(&ld->sa, ai->ai_addr, ai->ai_addrlen);
    ld->salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(ld->host_header, sizeof(ld->host_header), strchr(o->host, ':') ? "[%s]:%d" : "%s:%d",
             o->host, o->port);

    /* A device's TLS client: the server certificate must chain to the CA and name the host. */
    ld->ctx = SSL_CTX_new(TLS_client_method());
    if (!ld->ctx || SSL_CTX_set_min_proto_version(ld->ctx, TLS1_2_VERSION) != 1) {
        fprintf(stderr, "provbench: cannot create a TLS context\n");
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ld->ctx, o->ca_file, NULL) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        fprintf(stderr, "provbench: cannot load --ca-file %s: %s\n", o->ca_file, buf);
        goto fail;
    }
    SSL_CTX_set_verify(ld->ctx, SSL_VERIFY_PEER, NULL);
    /* A first boot has no session to resume: every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(ld->ctx, SSL_SESS_CACHE_OFF);
    /* No SSL_CTX_set_read_ahead, although OpenSSL then reads each record in two read() calls:
     * bufferevent_openssl (libevent 2.1) only looks at SSL_pending(), which does not count
     * records read ahead, and stalls with a whole answer in OpenSSL's buffer. */
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ld->ctx);
    struct in6_addr a6;
    ld->host_is_ip =
        inet_pton(AF_INET, o->host, &a6) == 1 || inet_pton(AF_INET6, o->host, &a6) == 1;
    if (ld->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, o->host) != 1
                       : X509_VERIFY_PARAM_set1_host(param, o->host, 0) != 1) {
        fprintf(stderr, "provbench: cannot set the name to verify\n");
        goto fail;
    }

    /* Checked once here, so that a bad key is a clear error rather than N failures. */
    if (o->mode != PB_HANDSHAKE) {
        const char *why = NULL;
        char *key = derive_device_key(o->group_key, "probe", &why);
        if (!key) {
            fprintf(stderr, "provbench: --group-key: %s\n", why ? why : "invalid");
            goto fail;
        }
        free(key);
    }
    ld->ndevices = o->csr && o->devices > PB_CSR_MAX ? PB_CSR_MAX : o->devices;
    if (o->csr && o->mode != PB_HANDSHAKE && make_csrs(ld) != 0)
        goto fail;

    struct event_config *cfg = event_config_new();
    /* One thread: no locks. The changelist folds the add/delete pairs bufferevent_openssl makes
     * around every record into one epoll_ctl per loop iteration at most (no descriptor here is
     * ever dup()ed, which is what the changelist cannot cope with). */
    if (cfg)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    ld->base = cfg ? event_base_new_with_config(cfg) : NULL;
    event_config_free(cfg);
    if (!ld->base)
        goto fail;
    ld->sig_int = evsignal_new(ld->base, SIGINT, on_signal, ld);
    ld->sig_term = evsignal_new(ld->base, SIGTERM, on_signal, ld);
    if (!ld->sig_int || !ld->sig_term || event_add(ld->sig_int, NULL) != 0 ||
        event_add(ld->sig_term, NULL) != 0)
        goto fail;

    ld->nslots = o->concurrency < o->devices ? o->concurrency : (int)o->devices;
    ld->slots = calloc((size_t)ld->nslots, sizeof(*ld->slots));
    if (!ld->slots)
        goto fail;
    for (int i = 0; i < ld->nslots; i++) {
        ld->slots[i].ld = ld;
        ld->slots[i].nodelay_fd = -1;
        ld->slots[i].kick = event_new(ld->base, -1, 0, on_kick, &ld->slots[i]);
        if (!ld->slots[i].kick)
            goto fail;
    }
    return ld;
fail:
    pb_load_free(ld);
    return NULL;
}

int pb_load_run(struct pb_load *ld, struct pb_result *r) {
    memset(r, 0, sizeof(*r));
    ld->r = r;
    ld->next_device = 0;
    ld->stopping = 0;
    ld->t_start = ld->t_last = time_mono_us();
    ld->deadline_us = ld->t_start + (uint64_t)(ld->o->duration * 1e6);
    /* Valid for the whole run, as a device's token for its one registration would be. */
    ld->expiry = time_now_unix() + 3600 + (int64_t)ld->o->duration;
    for (int i = 0; i < ld->nslots && !ld->stopping; i++)
        slot_next(&ld->slots[i]);
    if (ld->inflight > 0 && event_base_dispatch(ld->base) < 0) {
        fprintf(stderr, "provbench: the event loop failed\n");
        return -1;
    }
    r->elapsed_us = ld->t_last - ld->t_start;
    return 0;
}

void pb_load_free(struct pb_load *ld) {
    if (!ld)
        return;
    for (int i = 0; ld->slots && i < ld->nslots; i++) {
        struct slot *s = &ld->slots[i];
        if (s->evcon)
            evhttp_connection_free(s->evcon);
        if (s->bev)
            bufferevent_free(s->bev);
        if (s->kick)
            event_free(s->kick);
    }
    free(ld->slots);
    for (long i = 0; ld->csr && i < ld->ndevices; i++)
        free(ld->csr[i]);
    free(ld->csr);
    if (ld->sig_int)
        event_free(ld->sig_int);
    if (ld->sig_term)
        event_free(ld->sig_term);
    if (ld->base)
        event_base_free(ld->base);
    SSL_CTX_free(ld->ctx);
    free(ld);
}
