/* webhook_sink: an HTTPS server that stands in for the receivers provd calls (event webhooks,
 * and any other outgoing request a test wants to see). It records every request it gets as one
 * JSON line, {"method","uri","headers":{lower-cased name: value},"body","status"}, and answers
 * with a status and delay the test chooses, up front or while it runs:
 *
 *   webhook_sink --cert PEM --key PEM --out FILE --port-file FILE [--listen HOST:PORT]
 *                [--status N] [--fail-first N] [--fail-status N] [--delay-ms N]
 *                [--control FILE] [--reply-file FILE]
 *
 * The first --fail-first requests get --fail-status (default 503), later ones --status (default
 * 200), each after --delay-ms. While FILE of --control exists, its first line "STATUS [DELAY_MS]"
 * decides instead, so a test can take a receiver down and bring it back without a restart.
 * --reply-file gives the body of every answer (sent as application/json). The port bound (listen
 * on port 0 picks one) is written to --port-file as {"port": N} once listening. SIGTERM or
 * SIGINT stops it. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define BODY_MAX (1024 * 1024)

struct sink {
    struct event_base *base;
    SSL_CTX *tls;
    FILE *out;
    const char *control;
    char *reply;
    size_t reply_len;
    long status, fail_status, delay_ms, fail_first, served;
    struct pending *waiting; /* answers held back by a delay */
};

/* An answer waiting for its delay. */
struct pending {
    struct pending *next, **prev;
    struct sink *s;
    struct evhttp_request *req;
    struct event *timer;
    int status;
};

static void die(const char *what) {
    fprintf(stderr, "webhook_sink: %s: %s\n", what, errno ? strerror(errno) : "failed");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg) {
    SSL *ssl = SSL_new(arg);

    return ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE)
               : NULL;
}

static const char *method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

/* Reads the reply of the control file, when there is one. Returns 1 when it decided. */
static int read_control(const struct sink *s, int *status, long *delay_ms) {
    FILE *f = s->control ? fopen(s->control, "r") : NULL;
    long st = 0, d = 0;
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%ld %ld", &st, &d);
    fclose(f);
    if (n < 1 || st < 100 || st > 599)
        return 0;
    *status = (int)st;
    *delay_ms = n == 2 && d > 0 ? d : 0;
    return 1;
}

/* Appends one JSON line describing req, answered with status, to the output. */
static void record(struct sink *s, struct evhttp_request *req, int status) {
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_t *h = json_object(), *line;
    char *text;

    for (struct evkeyval *kv = hdrs->tqh_first; kv; kv = kv->next.tqe_next) {
        char name[128];
        size_t i;

        for (i = 0; kv->key[i] && i < sizeof(name) - 1; i++)
            name[i] = (char)(kv->key[i] >= 'A' && kv->key[i] <= 'Z' ? kv->key[i] + 32 : kv->key[i]);
        name[i] = '\0';
        json_object_set_new(h, name, json_string(kv->value));
    }
    line = json_pack("{s:s, s:s, s:o, s:o, s:i}", "method",
                     method_name(evhttp_request_get_command(req)), "uri",
                     evhttp_request_get_uri(req), "headers", h, "body",
                     len ? json_stringn(body, len) : json_string(""), "status", status);
    text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (!text || fprintf(s->out, "%s\n", text) < 0 || fflush(s->out) != 0)
        die("writing the output");
    free(text);
    json_decref(line);
}

static void answer(struct sink *s, struct evhttp_request *req, int status) {
    struct evbuffer *b = evbuffer_new();

    if (s->reply) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(b, s->reply, s->reply_len);
    }
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Not Now", b);
    evbuffer_free(b);
}

static void pending_free(struct pending *p) {
    *p->prev = p->next;
    if (p->next)
        p->next->prev = p->prev;
    event_free(p->timer);
    free(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    struct pending *p = arg;

    (void)fd;
    (void)what;
    answer(p->s, p->req, p->status);
    pending_free(p);
}

static void on_request(struct evhttp_request *req, void *arg) {
    struct sink *s = arg;
    int status = s->served < s->fail_first ? (int)s->fail_status : (int)s->status;
    long delay = s->delay_ms;
    struct pending *p;

    read_control(s, &status, &delay);
    s->served++;
    record(s, req, status);
    if (delay <= 0) {
        answer(s, req, status);
        return;
    }
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    if (!(p = calloc(1, sizeof(*p))) || !(p->timer = evtimer_new(s->base, on_timer, p)))
        die("out of memory");
    p->s = s;
    p->req = req;
    p->status = status;
    p->next = s->waiting;
    p->prev = &s->waiting;
    if (s->waiting)
        s->waiting->prev = &p->next;
    s->waiting = p;
    evtimer_add(p->timer, &tv);
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = malloc(BODY_MAX);

    if (!f || !buf)
        die(path);
    *len = fread(buf, 1, BODY_MAX, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"cert", required_argument, NULL, 'c'},       {"key", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},        {"port-file", required_argument, NULL, 'p'},
        {"listen", required_argument, NULL, 'l'},     {"status", required_argument, NULL, 's'},
        {"fail-first", required_argument, NULL, 'f'}, {"fail-status", required_argument, NULL, 'F'},
        {"delay-ms", required_argument, NULL, 'd'},   {"control", required_argument, NULL, 'C'},
        {"reply-file", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
    struct sink s = {.status = 200, .fail_status = 503};
    const char *cert = NULL, *key = NULL, *out = NULL, *port_file = NULL, *listen = "127.0.0.1:0";
    char host[64], tmp[4096];
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct event *sigterm, *sigint;
    const char *colon;
    FILE *pf;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 's':
            s.status = strtol(optarg, NULL, 10);
            break;
        case 'f':
            s.fail_first = strtol(optarg, NULL, 10);
            break;
        case 'F':
            s.fail_status = strtol(optarg, NULL, 10);
            break;
        case 'd':
            s.delay_ms = strtol(optarg, NULL, 10);
            break;
        case 'C':
            s.control = optarg;
            break;
        case 'r':
            s.reply = read_file(optarg, &s.reply_len);
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of webhook_sink.c\n");
            return 2;
        }
    }
    colon = strrchr(listen, ':');
    if (!cert || !key || !out || !port_file || !colon || (size_t)(colon - listen) >= sizeof(host)) {
        fprintf(stderr, "webhook_sink: --cert, --key, --out and --port-file are required\n");
        return 2;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    signal(SIGPIPE, SIG_IGN);
    if (!(s.out = fopen(out, "a")))
        die(out);
    if (!(s.tls = SSL_CTX_new(TLS_server_method())) ||
        SSL_CTX_use_certificate_chain_file(s.tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s.tls, key, SSL_FILETYPE_PEM) != 1)
        die("loading the certificate and key");
    if (!(s.base = event_base_new()) || !(http = evhttp_new(s.base)))
        die("libevent");
    evhttp_set_bevcb(http, tls_bev, s.tls);
    evhttp_set_gencb(http, on_request, &s);
    evhttp_set_max_body_size(http, BODY_MAX);
    if (!(bound = evhttp_bind_socket_with_handle(http, host,
                                                 (ev_uint16_t)strtol(colon + 1, NULL, 10))) ||
        getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0)
        die(listen);
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    if (!(pf = fopen(tmp, "w")) ||
        fprintf(pf, "{\"port\": %d}\n",
                ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port)) < 0 ||
        fclose(pf) != 0 || rename(tmp, port_file) != 0)
        die(port_file);
    sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
    sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint, NULL) != 0)
        die("signals");
    event_base_dispatch(s.base);
    /* Answers still held back are dropped with their connections. */
    while (s.waiting)
        pending_free(s.waiting);
    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    event_base_free(s.base);
    SSL_CTX_free(s.tls);
    fclose(s.out);
    free(s.reply);
    return 0;
}
