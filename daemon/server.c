/* Listeners and workers: one event loop per worker thread, each with its own listening sockets
 * on the same ports (SO_REUSEPORT, so the kernel spreads connections), its own store connection,
 * and TLS through bufferevent_openssl. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "ca.h"
#include "committer.h"
#include "crl.h"
#include "deliverer.h"
#include "http.h"
#include "log.h"
#include "nopass.h"
#include "pipeline.h"
#include "pki.h"

/* The transport cap at which libevent itself refuses a body (with its own 413). Bodies between
 * the configured limit and this cap are read and refused by provd with a DPS error and an audit
 * record; the cap keeps memory bounded against anything larger. */
#define BODY_HARD_CAP(limit) ((ev_ssize_t)(2 * (limit) + 4096))

/* The most a client may send as its certificate chain, in bytes; and how far above its
 * certificate the handshake builds a chain (the pipeline verifies the chain itself). */
#define CLIENT_CHAIN_MAX   (32 * 1024)
#define CLIENT_CHAIN_DEPTH 8

/* The most sessions a listener keeps for resumption (TLS 1.2 session IDs; on the device
 * listener, which issues no session tickets, TLS 1.3 sessions too); past it the oldest goes. A
 * session keeps the certificates its client sent, which take several times their encoded size in
 * memory (up to CLIENT_CHAIN_MAX encoded), for as long as it may be resumed (two hours):
 * OpenSSL's default of 20480 would let clients that never resume pin gigabytes. The admin
 * listener's TLS 1.3 sessions and tickets are kept by its clients and cost nothing here. */
#define TLS_SESSION_CACHE_MAX 1024

/* Accepts whatever certificate chain a client presents: the device listener only asks for one,
 * and the registration pipeline verifies it against the CA of the device's enrollment. */
static int accept_any_chain(int preverify_ok, X509_STORE_CTX *ctx) {
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/* The TLS context of a listener. The device listener's (device != 0) asks clients for a
 * certificate without requiring one, so that devices with X.509 attestation can present theirs
 * and devices with SAS tokens need none. */
static SSL_CTX *tls_new(const struct provd_config *cfg, int device) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    /* The files are not encrypted: without a callback, OpenSSL would ask for the passphrase of
     * an encrypted block on the terminal or standard input. */
    if (ctx)
        SSL_CTX_set_default_passwd_cb(ctx, pem_no_passphrase);
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        pki_log_errors("loading the TLS certificate and key");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* One context, and so one session cache, for all the workers: a client resumes on
     * whichever worker the kernel hands its next connection to. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_MAX);
    /* One TLS 1.3 session ticket instead of OpenSSL's default two: a device provisions once and
     * rarely reconnects, and each ticket costs an encryption and a record on every handshake. */
    SSL_CTX_set_num_tickets(ctx, 1);
    static const unsigned char sid_admin[] = "provd-admin", sid_device[] = "provd-device";
    if (device)
        SSL_CTX_set_session_id_context(ctx, sid_device, sizeof(sid_device) - 1);
    else
        SSL_CTX_set_session_id_context(ctx, sid_admin, sizeof(sid_admin) - 1);
    if (device) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
        /* A session ticket holds the client's certificate but not its intermediates, so a
         * device whose chain reaches its group's CA through them was refused on any connection
         * resuming from a ticket. Sessions stay in the server's cache instead (TLS 1.3 tickets
         * then only name them), where the whole chain is kept. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        /* A device's certificate with its intermediates fits in a few KiB; OpenSSL's default of
         * 100 KiB let any client make each handshake parse, and each connection keep, a chain
         * of dozens of certificates. */
        SSL_CTX_set_max_cert_list(ctx, CLIENT_CHAIN_MAX);
        SSL_CTX_set_verify_depth(ctx, CLIENT_CHAIN_DEPTH);
    }
    return ctx;
}

/* Opens a listening socket on addr. *port is the port to bind (0: any); on return it is the
 * port bound, so the other workers' sockets can join it. */
static int listen_on(const char *addr, int *port) {
    struct config_listen la;
    char portstr[16], err[512];
    if (config_listen_parse("listen address", addr, &la, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%ld", *port > 0 ? (long)*port : la.port);
    const char *host = la.host;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        log_error("listen address \"%s\": %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        log_error("cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

void worker_maybe_exit(struct worker *w) {
    if (w->stopping && atomic_load(&w->inflight) == 0 && !w->pending)
        event_base_loopexit(w->base, NULL);
}

/* A request from its arrival until libevent has written its answer out, or its connection
 * closed: an answer is queued in its connection's buffers when the handler (or the committer's
 * callback) sends it, and is written on a later turn of the loop. A stopping worker waits for
 * these, so that it does not free connections holding answers to registrations that are
 * already durable. A client that does not read its answer is bounded by the idle timeout.
 * A connection has at most one at a time (evhttp reads the next request of a connection once
 * the answer to the last one is written), so each connection has one, in its struct conn. */
struct pending_request {
    struct worker *w;
    struct evhttp_request *req; /* NULL while the connection has no request pending */
    struct pending_request *prev, *next;
};

/* A TLS connection of a listener, from its accept until libevent frees its SSL, which holds it
 * (ex_data at conn_index) and frees it (conn_free).
 *
 * Its deadline bounds how long a client may take to send a request: libevent's own timeout
 * (evhttp_set_timeout, idle_timeout_s) bounds only the time between two reads, which a client
 * sending a byte every few seconds resets for ever, keeping a connection and its buffers. The
 * first request of a connection must arrive whole (request line, headers and body) within
 * request_timeout_s of the accept, TLS handshake included; on a kept-alive connection, the
 * next request must begin within idle_timeout_s of the last answer, and arrive whole within
 * request_timeout_s of its first byte. Its first byte is what the TLS layer decrypts: while it
 * waits for one, raw bytes that never make up a TLS record reset libevent's timeout but not
 * this one. evhttp 2.1 shows a request only once it is complete (a hook on its start,
 * evhttp_set_newreqcb, came in 2.2), so the deadline is kept here, one timer per connection,
 * armed when a request is awaited and removed when it has arrived. A deadline that passes gives
 * the connection the timeout event libevent's own timeout would have given, and evhttp closes
 * the connection the same way: without an answer, as it has no request to answer yet. */
struct conn {
    struct worker *w;
    struct bufferevent *bev;
    struct event *deadline;
    struct evbuffer_cb_entry *arrival; /* on the input: enabled while no byte has arrived */
    int kept;      /* an answer was written: the connection waits for a request after the first */
    int receiving; /* the awaited request has begun to arrive */
    int expired;   /* the deadline passed: the connection is being closed */
    int closed;    /* evhttp closed the connection */
    struct pending_request pending;
};

/* The ex_data index of a connection's struct conn in its SSL. */
static int conn_index = -1;

static void pending_drop(struct pending_request *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        p->w->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->req = NULL;
}

static struct conn *conn_of(struct evhttp_connection *evcon) {
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

static void conn_remote(struct conn *c, char *buf, size_t len) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int known = fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
    http_addr_str(known ? (const struct sockaddr *)&ss : NULL, buf, len);
}

static void deadline_arm(struct conn *c, int seconds) {
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    if (event_add(c->deadline, &tv) != 0)
        log_warn("worker %d: a connection's request deadline could not be set", c->w->index);
}

/* The first bytes of the awaited request have arrived. The first request's deadline runs from
 * the accept; a later one's from now. */
static void on_arrival(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg) {
    struct conn *c = arg;
    if (info->n_added == 0)
        return;
    evbuffer_cb_clear_flags(in, c->arrival, EVBUFFER_CB_ENABLED);
    c->receiving = 1;
    if (c->kept)
        deadline_arm(c, c->w->pd->cfg.request_timeout_s);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct conn *c = arg;
    const struct provd_config *cfg = &c->w->pd->cfg;
    bufferevent_event_cb eventcb = NULL;
    char remote[64];

    /* Once evhttp has freed the connection, its bufferevent (and c) live on until libevent
     * finalises it; it has no callbacks left then, and must be sent no event. */
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
    if (c->closed || !eventcb)
        return;
    c->expired = 1;
    conn_remote(c, remote, sizeof(remote));
    if (c->receiving)
        log_info("request not received in time: connection closed worker=%d remote=%s"
                 " request_timeout_s=%d",
                 c->w->index, remote, cfg->request_timeout_s);
    else
        log_debug("no request in time: connection closed worker=%d remote=%s timeout_s=%d",
                  c->w->index, remote, c->kept ? cfg->idle_timeout_s : cfg->request_timeout_s);
    bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/* Frees c with its connection's SSL (the free function of conn_index), when libevent finalises
 * the bufferevent: its timer and its input callback go first. */
static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct conn *c = ptr;
    if (!c)
        return;
    if (c->pending.req)
        pending_drop(&c->pending);
    event_free(c->deadline);
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->arrival);
    free(c);
}

/* The bufferevent of a connection a listener accepted: TLS with ctx, and a struct conn whose
 * deadline runs from now. NULL when out of memory: evhttp then makes a bufferevent without TLS,
 * whose requests track refuses. */
static struct bufferevent *tls_bev(struct worker *w, SSL_CTX *ctx) {
    SSL *ssl = SSL_new(ctx), *taken;
    struct conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = NULL;

    if (!ssl || !c || !(c->deadline = evtimer_new(w->base, on_deadline, c)))
        goto fail;
    /* With BEV_OPT_CLOSE_ON_FREE the bufferevent takes the SSL, and libevent 2.1 frees it also
     * when it fails to make the bufferevent: from here on it is never freed here. */
    taken = ssl;
    ssl = NULL;
    bev = bufferevent_openssl_socket_new(w->base, -1, taken, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev)
        goto fail;
    c->w = c->pending.w = w;
    c->bev = bev;
    if (!(c->arrival = evbuffer_add_cb(bufferevent_get_input(bev), on_arrival, c)) ||
        !SSL_set_ex_data(taken, conn_index, c)) {
        /* c is freed below, before libevent finalises the bufferevent (and frees the SSL). */
        if (c->arrival)
            evbuffer_remove_cb_entry(bufferevent_get_input(bev), c->arrival);
        bufferevent_free(bev);
        goto fail;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    deadline_arm(c, w->pd->cfg.request_timeout_s);
    return bev;
fail:
    log_warn("worker %d: out of memory for a new connection", w->index);
    if (c && c->deadline)
        event_free(c->deadline);
    free(c);
    SSL_free(ssl);
    return NULL;
}

static struct bufferevent *device_bev(struct event_base *base, void *arg) {
    (void)base;
    struct worker *w = arg;
    return tls_bev(w, w->pd->tls_device);
}

static struct bufferevent *admin_bev(struct event_base *base, void *arg) {
    (void)base;
    struct worker *w = arg;
    return tls_bev(w, w->pd->tls);
}

/* Ends a connection's TLS session with a close_notify alert, which is also what keeps the session
 * resumable: OpenSSL drops from its cache the session of an SSL freed before it sent one
 * (SSL_free), and libevent frees the SSL of a closed connection without sending one, so that no
 * TLS 1.2 client could resume by session ID (tickets and TLS 1.3 carry the session to the
 * client, and did). Not during a handshake, nor after a fatal alert, whose session OpenSSL has
 * already dropped. The connection closes next: whether the alert could be written makes no
 * difference to the session. */
static void tls_close(SSL *ssl) {
    if (!ssl || !SSL_is_init_finished(ssl))
        return;
    SSL_shutdown(ssl);
    ERR_clear_error();
}

/* The answer of the request has been written out. Unless evhttp closes the connection now, the
 * connection awaits its next request, which may have begun to arrive already. */
static void on_written(struct evhttp_request *req, void *arg) {
    (void)req;
    struct conn *c = arg;
    const struct provd_config *cfg = &c->w->pd->cfg;
    struct evbuffer *in = bufferevent_get_input(c->bev);

    pending_drop(&c->pending);
    c->kept = 1;
    c->receiving = evbuffer_get_length(in) > 0;
    if (c->receiving) {
        deadline_arm(c, cfg->request_timeout_s);
    } else {
        deadline_arm(c, cfg->idle_timeout_s);
        evbuffer_cb_set_flags(in, c->arrival, EVBUFFER_CB_ENABLED);
    }
    worker_maybe_exit(c->w);
}

/* A connection closes: the answer to its request, if it has one pending, will never be written;
 * its TLS session ends. */
static void on_connection_close(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    struct conn *c = arg;
    c->closed = 1;
    event_del(c->deadline);
    evbuffer_cb_clear_flags(bufferevent_get_input(c->bev), c->arrival, EVBUFFER_CB_ENABLED);
    if (c->pending.req) {
        evhttp_request_set_on_complete_cb(c->pending.req, NULL, NULL);
        pending_drop(&c->pending);
    }
    tls_close(bufferevent_openssl_get_ssl(c->bev));
    worker_maybe_exit(c->w);
}

/* The request has arrived whole: its deadline is met, and it is pending until its answer is
 * written out. Returns 0, or -1 when it is answered here and must not be served: its deadline
 * passed as it arrived (its connection is being closed), or its connection has no TLS (see
 * tls_bev). */
static int track(struct worker *w, struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct conn *c = conn_of(evcon);
    if (!c) {
        log_warn("worker %d: a request on a connection without TLS refused", w->index);
        http_set_header(req, "Connection", "close");
        http_reply_error(req, 500, 500001, NULL, "out of memory");
        return -1;
    }
    event_del(c->deadline);
    if (c->expired) {
        evhttp_send_error(req, 408, NULL);
        return -1;
    }
    struct pending_request *p = &c->pending;
    p->req = req;
    p->prev = NULL;
    p->next = w->pending;
    if (p->next)
        p->next->prev = p;
    w->pending = p;
    evhttp_request_set_on_complete_cb(req, on_written, c);
    evhttp_connection_set_closecb(evcon, on_connection_close, c);
    return 0;
}

/* Whether the request's framing is one a proxy in front could read otherwise: more than one
 * Content-Length (libevent takes the first, RFC 9112 says to refuse). Such a request is
 * answered 400 and its connection closed, since what followed it may be misread. */
static int ambiguous_length(struct evhttp_request *req) {
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    int n = 0;
    for (const struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        n += strcasecmp(kv->key, "Content-Length") == 0;
    if (n < 2)
        return 0;
    http_set_header(req, "Connection", "close");
    http_reply_error(req, 400, 400001, NULL, "more than one Content-Length");
    return 1;
}

static void on_device_request(struct evhttp_request *req, void *arg) {
    if (track(arg, req) == 0 && !ambiguous_length(req))
        device_api_handle(req, arg);
}

static void on_admin_request(struct evhttp_request *req, void *arg) {
    if (track(arg, req) == 0 && !ambiguous_length(req))
        admin_api_handle(req, arg);
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct worker *w = arg;
    committer_run_done(w);
    worker_maybe_exit(w);
}

/* Stop accepting; leave once the requests waiting for the committer are answered. */
static void on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (w->device_sock)
        evhttp_del_accept_socket(w->device_http, w->device_sock);
    if (w->admin_sock)
        evhttp_del_accept_socket(w->admin_http, w->admin_sock);
    w->device_sock = w->admin_sock = NULL;
    w->stopping = 1;
    worker_maybe_exit(w);
}

/* While the process has no file descriptor left, accept() fails at once every time a connection
 * waits, and libevent would retry (and log) in a busy loop: the worker stops accepting for
 * ACCEPT_PAUSE_MS instead, and says so at each pause. Connections it holds go on being served. */
#define ACCEPT_PAUSE_MS 500

static void set_accepting(struct worker *w, int on) {
    struct evhttp_bound_socket *socks[] = {w->device_sock, w->admin_sock};
    for (size_t i = 0; i < 2; i++) {
        struct evconnlistener *l = socks[i] ? evhttp_bound_socket_get_listener(socks[i]) : NULL;
        if (l)
            (on ? evconnlistener_enable : evconnlistener_disable)(l);
    }
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    set_accepting(arg, 1);
}

/* The provd being served: a listener's error callback gets only its evhttp, from which the
 * worker is found. */
static struct provd *serving;

static void on_accept_error(struct evconnlistener *l, void *http) {
    (void)l;
    struct worker *w = NULL;
    int err = EVUTIL_SOCKET_ERROR();
    for (int i = 0; serving && i < serving->nworkers && !w; i++)
        if (serving->workers[i].device_http == http || serving->workers[i].admin_http == http)
            w = &serving->workers[i];
    if (!w)
        return;
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        log_warn("worker %d: accept: %s", w->index, strerror(err));
        return;
    }
    if (!evtimer_pending(w->accept_ev, NULL))
        log_warn("worker %d: accept: %s; not accepting for %d ms", w->index, strerror(err),
                 ACCEPT_PAUSE_MS);
    set_accepting(w, 0);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(w->accept_ev, &tv);
}

static void listen_errors(struct worker *w) {
    struct evhttp_bound_socket *socks[] = {w->device_sock, w->admin_sock};
    for (size_t i = 0; i < 2; i++)
        evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(socks[i]), on_accept_error);
}

static struct evhttp *http_new(struct worker *w, void (*cb)(struct evhttp_request *, void *),
                               struct bufferevent *(*bevcb)(struct event_base *, void *)) {
    const struct provd_config *cfg = &w->pd->cfg;
    struct evhttp *h = evhttp_new(w->base);
    if (!h)
        return NULL;
    evhttp_set_bevcb(h, bevcb, w);
    evhttp_set_gencb(h, cb, w);
    evhttp_set_timeout(h, cfg->idle_timeout_s);
    evhttp_set_max_headers_size(h, 16 * 1024);
    evhttp_set_max_body_size(h, BODY_HARD_CAP(cfg->max_body_bytes));
    /* Read and discard the rest of a body that is too large before answering 413, so that the
     * client sees the answer rather than a reset connection. */
    evhttp_set_flags(h, EVHTTP_SERVER_LINGERING_CLOSE);
    /* Every method reaches the handlers, so that a wrong one gets a 405 in the DPS shape rather
     * than libevent's plain 501. */
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                      EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH |
                                      EVHTTP_REQ_OPTIONS);
    return h;
}

static int worker_init(struct worker *w, struct provd *pd, int index, int device_fd, int admin_fd) {
    w->pd = pd;
    w->index = index;
    pthread_mutex_init(&w->done_lock, NULL);
    if (!(w->base = event_base_new()) || store_conn_open(pd->store, &w->conn) != STORE_OK ||
        !(w->device_http = http_new(w, on_device_request, device_bev)) ||
        !(w->admin_http = http_new(w, on_admin_request, admin_bev)) ||
        !(w->done_ev = event_new(w->base, -1, 0, on_done, w)) ||
        !(w->stop_ev = event_new(w->base, -1, 0, on_stop, w)) ||
        !(w->device_sock = evhttp_accept_socket_with_handle(w->device_http, device_fd)) ||
        !(w->admin_sock = evhttp_accept_socket_with_handle(w->admin_http, admin_fd)) ||
        !(w->accept_ev = evtimer_new(w->base, on_accept_resume, w))) {
        log_error("worker %d: could not start", index);
        return -1;
    }
    listen_errors(w);
    return 0;
}

static void worker_free(struct worker *w) {
    if (w->device_http)
        evhttp_free(w->device_http);
    if (w->admin_http)
        evhttp_free(w->admin_http);
    if (w->done_ev)
        event_free(w->done_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->accept_ev)
        event_free(w->accept_ev);
    while (w->pending) /* requests of connections evhttp_free did not close */
        pending_drop(w->pending);
    pipeline_worker_free(w);
    store_conn_close(w->conn);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->done_lock);
}

/* Loads the issuing CA that signs device certificates and the CSR key policy. A data directory
 * made before provd had a CA has no issuing CA: provd refuses to start and says how to add one. */
static int ca_init(struct provd *pd) {
    const struct provd_config *cfg = &pd->cfg;
    const struct ca_opts o = {.device_days = cfg->cert_validity_days};
    char err[512];

    csr_policy_default(&pd->csr_policy);
    if (csr_policy_parse(cfg->csr_key_policy, &pd->csr_policy, err, sizeof(err)) != 0) {
        log_error("csr_key_policy: %s", err);
        return -1;
    }
    if (ca_load(cfg->data_dir, &o, &pd->ca, err, sizeof(err)) != 0) {
        log_error("the issuing CA of device certificates could not be loaded: %s. A data"
                  " directory without one gets a new CA with `provd init --data-dir %s --force`"
                  " (enrollments and registrations are kept) or your own with `provd ca import`",
                  err, cfg->data_dir);
        return -1;
    }
    return 0;
}

/* Signs the first CRL with the first worker's store connection: a CA that cannot sign one stops
 * provd at start. Requests for the CRL keep it fresh (crl_fresh). */
static int crl_init(struct provd *pd) {
    if (!(pd->crl = crl_cache_new(pd->ca, pd->cfg.crl_next_update_s)) ||
        crl_refresh(pd->crl, pd->workers[0].conn) != 0)
        return -1;
    return 0;
}

/* Runs w's loop until it has stopped and nothing it took on is left. The loop must not end by
 * itself when nothing is pending (EVLOOP_NO_EXIT_ON_EMPTY): once the listeners are closed at
 * shutdown, a worker whose requests all wait for the committer has no pending event, and the
 * committer's hand-back only activates one; the worker leaves by worker_maybe_exit alone. That
 * ends the loop only after the callbacks already active, which may have taken on a request:
 * then it runs again. */
static void *worker_main(void *arg) {
    struct worker *w = arg;
    while (event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY) == 0 &&
           (atomic_load(&w->inflight) > 0 || w->pending))
        ;
    return NULL;
}

static int write_port_file(const char *path, int device_port, int admin_port) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_error("%s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"device\": %d, \"admin\": %d}\n", device_port, admin_port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Every connection takes a descriptor: the soft limit is raised to the hard one. */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("cannot raise the open files limit: %s", strerror(errno));
    }
}

int server_run(struct provd *pd) {
    struct provd_config *cfg = &pd->cfg;
    serving = pd;
    raise_nofile();
    char err[512];
    int rc = -1, started = 0, device_port = 0, admin_port = 0;
    int *fds = NULL;
    sigset_t sigs;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* Only the main thread takes the shutdown signals: block them before any thread starts. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (evthread_use_pthreads() != 0) {
        log_error("libevent has no thread support");
        return -1;
    }
    /* libcurl's global set-up is not thread-safe: it happens before any thread starts. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("libcurl could not be initialised");
        return -1;
    }
    if (conn_index < 0 && (conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free)) < 0) {
        pki_log_errors("reserving the connections' SSL ex_data");
        goto out;
    }
    if (!(pd->tls = tls_new(cfg, 0)) || !(pd->tls_device = tls_new(cfg, 1)) || ca_init(pd) != 0)
        goto out;
    if (store_open(cfg->store, &pd->store, err, sizeof(err)) != STORE_OK) {
        log_error("store: %s", err);
        goto out;
    }
    if (!(pd->committer = committer_start(pd->store, cfg->commit_batch_max)))
        goto out;
    if (!(pd->deliverer = deliverer_start(pd->store, cfg, &pd->events_subscribed)))
        goto out;
    pd->nworkers = cfg->workers;
    pd->workers = calloc((size_t)pd->nworkers, sizeof(*pd->workers));
    fds = calloc(2 * (size_t)pd->nworkers, sizeof(int));
    if (!pd->workers || !fds)
        goto out;
    for (int i = 0; i < pd->nworkers; i++) {
        if ((fds[2 * i] = listen_on(cfg->device_listen, &device_port)) < 0 ||
            (fds[2 * i + 1] = listen_on(cfg->admin_listen, &admin_port)) < 0)
            goto out;
        if (worker_init(&pd->workers[i], pd, i, fds[2 * i], fds[2 * i + 1]) != 0)
            goto out;
    }
    if (crl_init(pd) != 0)
        goto out;
    for (; started < pd->nworkers; started++)
        if (pthread_create(&pd->workers[started].thread, NULL, worker_main,
                           &pd->workers[started]) != 0)
            goto out;
    log_info("provd %s serving id_scope=%s device=%s(port %d) admin=%s(port %d) workers=%d",
             PROV_VERSION, cfg->id_scope, cfg->device_listen, device_port, cfg->admin_listen,
             admin_port, pd->nworkers);
    if (cfg->port_file && write_port_file(cfg->port_file, device_port, admin_port) != 0)
        goto out;

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("received %s: finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    atomic_store(&pd->stopping, 1);
    for (int i = 0; i < started; i++)
        event_active(pd->workers[i].stop_ev, EV_READ, 0);
    for (int i = 0; i < started; i++)
        pthread_join(pd->workers[i].thread, NULL);
    committer_stop(pd->committer);
    pd->committer = NULL;
    /* Workers wake the delivery thread, so it is stopped only once they are gone. */
    deliverer_stop(pd->deliverer);
    pd->deliverer = NULL;
    for (int i = 0; pd->workers && i < pd->nworkers; i++)
        worker_free(&pd->workers[i]);
    free(pd->workers);
    pd->workers = NULL;
    free(fds);
    store_close(pd->store);
    pd->store = NULL;
    SSL_CTX_free(pd->tls);
    SSL_CTX_free(pd->tls_device);
    pd->tls = pd->tls_device = NULL;
    crl_cache_free(pd->crl);
    pd->crl = NULL;
    ca_free(pd->ca);
    pd->ca = NULL;
    curl_global_cleanup();
    if (cfg->port_file)
        unlink(cfg->port_file);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
