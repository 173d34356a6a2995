/* A scripted DPS device API over TLS on 127.0.0.1, for the answers a real provd does not give on
 * demand (429 with Retry-After, 202 and polling, a run of 503s). Each request gets the next
 * answer of the script; the last one repeats. Every request is logged with the time it arrived.
 *
 * Usage: stub_dps --cert PEM --key PEM --port-file FILE --log FILE --script ANSWERS
 *   ANSWERS  comma-separated: 200 (assigned), 202 (assigning, operation op-1, Retry-After: 1),
 *            429 (throttled, Retry-After: 1), 503 (no Retry-After)
 * It prints its port into --port-file once listening and runs until SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_SCRIPT 64

struct stub {
    int script[MAX_SCRIPT];
    size_t n_script, next;
    FILE *log;
    SSL_CTX *tls;
};

static uint64_t mono_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg) {
    struct stub *s = arg;
    SSL *ssl = SSL_new(s->tls);

    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* The registration ID of a path /{scope}/registrations/{regid}/..., into out. */
static void regid_of(const char *uri, char *out, size_t len) {
    const char *p = strstr(uri, "/registrations/");
    size_t n;

    snprintf(out, len, "unknown");
    if (p == NULL)
        return;
    p += strlen("/registrations/");
    n = strcspn(p, "/?");
    if (n > 0 && n < len)
        snprintf(out, len, "%.*s", (int)n, p);
}

static void reply(struct evhttp_request *req, int status, const char *retry_after,
                  const char *body) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    if (retry_after != NULL)
        evhttp_add_header(h, "Retry-After", retry_after);
    if (b != NULL)
        evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Scripted", b);
    if (b != NULL)
        evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg) {
    struct stub *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_PUT   ? "PUT"
                         : evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET"
                                                                             : "OTHER";
    char regid[160], body[1024];
    int answer = s->script[s->next < s->n_script ? s->next : s->n_script - 1];

    s->next++;
    fprintf(s->log, "%llu %s %s %d\n", (unsigned long long)mono_ms(), method, uri, answer);
    fflush(s->log);
    regid_of(uri, regid, sizeof(regid));
    switch (answer) {
    case 200:
        snprintf(
            body, sizeof(body),
            "{\"operationId\":\"op-1\",\"status\":\"assigned\",\"registrationState\":{"
            "\"registrationId\":\"%s\",\"createdDateTimeUtc\":\"2026-11-26T01:02:03.1234567Z\","
            "\"assignedHub\":\"stub-hub.example.com\",\"deviceId\":\"%s\",\"status\":"
            "\"assigned\",\"substatus\":\"initialAssignment\",\"lastUpdatedDateTimeUtc\":"
            "\"2026-11-26T01:02:03.1234567Z\",\"etag\":\"AAAAAAAAAAE=\",\"payload\":"
            "{\"from\":\"stub\"}}}",
            regid, regid);
        reply(req, 200, NULL, body);
        break;
    case 202:
        reply(req, 202, "1", "{\"operationId\":\"op-1\",\"status\":\"assigning\"}");
        break;
    case 429:
        reply(req, 429, "1",
              "{\"errorCode\":429001,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
              "\"message\":\"throttled\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
        break;
    default:
        reply(req, answer, NULL,
              "{\"errorCode\":503001,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
              "\"message\":\"unavailable\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
        break;
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int parse_script(struct stub *s, const char *spec) {
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = 0;

    if (copy == NULL)
        return -1;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int v = atoi(tok);

        if (s->n_script == MAX_SCRIPT || (v != 200 && v != 202 && v != 429 && v != 503)) {
            rc = -1;
            break;
        }
        s->script[s->n_script++] = v;
    }
    free(copy);
    return rc == 0 && s->n_script > 0 ? 0 : -1;
}

/* Writes the port into path through a temporary file, so a reader never sees half of it. */
static int write_port(const char *path, int port) {
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"cert", required_argument, NULL, 'c'},      {"key", required_argument, NULL, 'k'},
        {"port-file", required_argument, NULL, 'p'}, {"log", required_argument, NULL, 'l'},
        {"script", required_argument, NULL, 's'},    {NULL, 0, NULL, 0},
    };
    const char *cert = NULL, *key = NULL, *port_file = NULL, *log_path = NULL, *script = NULL;
    struct event_base *base = NULL;
    struct event *term = NULL, *intr = NULL;
    struct evhttp *http = NULL;
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    struct stub s;
    int c, rc = 1;

    memset(&s, 0, sizeof(s));
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 's':
            script = optarg;
            break;
        default:
            return 2;
        }
    }
    if (cert == NULL || key == NULL || port_file == NULL || log_path == NULL || script == NULL ||
        parse_script(&s, script) != 0) {
        fprintf(stderr, "usage: stub_dps --cert PEM --key PEM --port-file FILE --log FILE "
                        "--script 429,200\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    s.log = fopen(log_path, "a");
    s.tls = SSL_CTX_new(TLS_server_method());
    if (s.log == NULL || s.tls == NULL || SSL_CTX_use_certificate_chain_file(s.tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s.tls, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "stub_dps: cannot set up TLS or the log\n");
        ERR_print_errors_fp(stderr);
        goto out;
    }
    base = event_base_new();
    http = base != NULL ? evhttp_new(base) : NULL;
    if (http == NULL)
        goto out;
    evhttp_set_bevcb(http, tls_bev, &s);
    evhttp_set_gencb(http, on_request, &s);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST);
    sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (sock == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen) != 0) {
        fprintf(stderr, "stub_dps: cannot listen: %s\n", strerror(errno));
        goto out;
    }
    term = evsignal_new(base, SIGTERM, on_signal, base);
    intr = evsignal_new(base, SIGINT, on_signal, base);
    if (term == NULL || intr == NULL || evsignal_add(term, NULL) != 0 ||
        evsignal_add(intr, NULL) != 0 || write_port(port_file, ntohs(sin.sin_port)) != 0)
        goto out;
    event_base_dispatch(base);
    rc = 0;
out:
    if (term != NULL)
        event_free(term);
    if (intr != NULL)
        event_free(intr);
    if (http != NULL)
        evhttp_free(http);
    if (base != NULL)
        event_base_free(base);
    if (s.tls != NULL)
        SSL_CTX_free(s.tls);
    if (s.log != NULL)
        fclose(s.log);
    return rc;
}
