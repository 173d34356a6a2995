/* HTTP plumbing shared by the front ends, on top of libevent's evhttp. */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "log.h"
#include "rand.h"
#include "timefmt.h"
#include "urlenc.h"
#include "utf8.h"

/* The whole path is percent-decoded before it is split, since some device SDKs encode the
 * slashes of the path itself (0ne00AB%2fregistrations%2fdev-1). */
/* The name=value pairs of a query string, joined by '&' without the empty ones that clients
 * joining strings leave ("a=1&&b=2", a trailing '&'), which evhttp refuses. NULL when a pair
 * has no '=' (or out of memory). The caller frees. */
static char *query_pairs(const char *q) {
    char *out = malloc(strlen(q) + 1), *o = out;
    if (!out)
        return NULL;
    while (*q) {
        size_t n = strcspn(q, "&");
        if (n > 0) {
            if (!memchr(q, '=', n)) {
                free(out);
                return NULL;
            }
            if (o != out)
                *o++ = '&';
            memcpy(o, q, n);
            o += n;
        }
        q += n + (q[n] == '&');
    }
    *o = '\0';
    return out;
}

int http_path_parse(struct evhttp_request *req, struct http_path *p) {
    memset(p, 0, sizeof(*p));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || path[0] != '/')
        return -1;
    p->buf = url_decode(path, strlen(path));
    if (!p->buf)
        return -1;
    char *save = NULL;
    for (char *s = strtok_r(p->buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (p->nseg == HTTP_MAX_SEGMENTS)
            goto fail;
        p->seg[p->nseg++] = s;
    }
    const char *q = evhttp_uri_get_query(uri);
    if (q && (p->query = query_pairs(q)) == NULL)
        return HTTP_BAD_QUERY; /* the path split all the same */
    return 0;
fail:
    http_path_clear(p);
    return HTTP_BAD_PATH;
}

void http_path_clear(struct http_path *p) {
    free(p->buf);
    free(p->query);
    memset(p, 0, sizeof(*p));
}

int http_seg_is(const struct http_path *p, int i, const char *s) {
    return i >= 0 && i < p->nseg && strcasecmp(p->seg[i], s) == 0;
}

char *http_query_get(const struct http_path *p, const char *name) {
    if (!p->query)
        return NULL;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    char *value = NULL;
    if (evhttp_parse_query_str(p->query, &params) == 0) {
        const char *v = evhttp_find_header(&params, name);
        if (v)
            value = strdup(v);
    }
    evhttp_clear_headers(&params);
    return value;
}

const char *http_header(struct evhttp_request *req, const char *name) {
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

void http_set_header(struct evhttp_request *req, const char *name, const char *value) {
    evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

void http_addr_str(const struct sockaddr *sa, char *buf, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "unknown");
    }
}

void http_remote(struct evhttp_request *req, char *buf, size_t len) {
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    http_addr_str(conn ? evhttp_connection_get_addr(conn) : NULL, buf, len);
}

/* Room first reserved for a serialised answer: registration answers fit, with the certificate
 * chain of an issuance; a larger answer is serialised again into the room it asks for. */
#define JSON_REPLY_ROOM 4096

/* Appends body, serialised, to out in one piece. Serialising through a callback would append
 * every token separately, each append taking the buffer's lock. Returns 0, or -1 when out of
 * memory or body cannot be serialised. */
static int dump_json(json_t *body, struct evbuffer *out) {
    size_t room = JSON_REPLY_ROOM;

    for (int tries = 0; tries < 2; tries++) {
        struct evbuffer_iovec v;

        if (room > (size_t)EV_SSIZE_MAX ||
            evbuffer_reserve_space(out, (ev_ssize_t)room, &v, 1) != 1)
            return -1;
        size_t n = json_dumpb(body, v.iov_base, v.iov_len, JSON_COMPACT);
        if (n == 0)
            return -1;
        if (n <= v.iov_len) {
            v.iov_len = n;
            return evbuffer_commit_space(out, &v, 1);
        }
        room = n;
    }
    return -1;
}

/* http_send, joining the chains of the connection's output buffer when join is set. */
static void send_reply(struct evhttp_request *req, int status, struct evbuffer *body, int join) {
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    /* libevent 2.1 sends the body of an answer to HEAD, without a Content-Length: the next
     * answer on the connection would be read as part of it. */
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evbuffer *out = evhttp_request_get_output_buffer(req);
        char len[32];
        snprintf(len, sizeof(len), "%zu",
                 evbuffer_get_length(out) + (body ? evbuffer_get_length(body) : 0));
        http_set_header(req, "Content-Length", len);
        evbuffer_drain(out, evbuffer_get_length(out));
        body = NULL;
    }
    evhttp_send_reply(req, status, NULL, body);
    /* evhttp queues the headers and the body as two chains of the connection's output buffer,
     * and bufferevent_openssl writes each chain as a record of its own; joining them before the
     * write (which happens later, in the event loop) saves a record, a write(2) and the client a
     * read. */
    if (bev && join)
        evbuffer_pullup(bufferevent_get_output(bev), -1);
}

void http_send(struct evhttp_request *req, int status, struct evbuffer *body) {
    send_reply(req, status, body, 1);
}

void http_send_secret(struct evhttp_request *req, int status, struct evbuffer *body) {
    send_reply(req, status, body, 0);
}

void http_reply_json(struct evhttp_request *req, int status, json_t *body) {
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (body) {
        http_set_header(req, "Content-Type", "application/json; charset=utf-8");
        if (dump_json(body, out) != 0) {
            log_error("http: could not serialise an answer");
            evbuffer_drain(out, evbuffer_get_length(out));
            status = 500;
        }
        json_decref(body);
    }
    http_send(req, status, NULL);
}

void http_reply_empty(struct evhttp_request *req, int status) {
    http_send(req, status, NULL);
}

void http_retry_after(struct evhttp_request *req, int status) {
    if (status == 503)
        http_set_header(req, "Retry-After", HTTP_RETRY_AFTER_S);
}

void http_reply_error(struct evhttp_request *req, int status, int code, const char *tracking,
                      const char *message) {
    http_retry_after(req, status);
    char fresh[UUID_STR_LEN] = "";
    if (!tracking) {
        if (uuid_v4(fresh) != 0)
            snprintf(fresh, sizeof(fresh), "00000000-0000-0000-0000-000000000000");
        tracking = fresh;
    }
    char ts[TIME_DPS_LEN];
    time_now_dps(ts);
    char codestr[16];
    snprintf(codestr, sizeof(codestr), "%d", code);
    http_set_header(req, "x-ms-error-code", codestr);
    /* A message may quote what the client sent (a path segment, a member name), cut at a length
     * that can fall inside a character: JSON holds only UTF-8. */
    char *text = strdup(message);
    if (text)
        utf8_repair(text);
    json_t *body = json_pack("{s:i, s:s, s:s, s:s}", "errorCode", code, "trackingId", tracking,
                             "message", text ? text : "internal error", "timestampUtc", ts);
    free(text);
    http_reply_json(req, status, body);
}

int http_is_json(struct evhttp_request *req) {
    const char *ct = http_header(req, "Content-Type");
    static const char want[] = "application/json";
    if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return -1;
    char next = ct[sizeof(want) - 1];
    return (next == '\0' || next == ';' || next == ' ' || next == '\t') ? 0 : -1;
}

char *http_body(struct evhttp_request *req, size_t max_bytes, size_t *len, int *too_big) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    *len = 0;
    *too_big = n > max_bytes;
    if (n == 0 || *too_big)
        return NULL;
    char *body = malloc(n + 1);
    if (!body)
        return NULL;
    if (evbuffer_remove(in, body, n) != (int)n) {
        free(body);
        return NULL;
    }
    body[n] = '\0';
    *len = n;
    return body;
}

json_t *http_json_parse(const char *body, size_t len, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
    return v;
}

X509 *http_peer_cert(struct evhttp_request *req, STACK_OF(X509) * *chain) {
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *x = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    STACK_OF(X509) *sent = x ? SSL_get_peer_cert_chain(ssl) : NULL;

    /* On the server side the chain OpenSSL keeps does not hold the leaf. */
    *chain = sent ? X509_chain_up_ref(sent) : NULL;
    return x;
}

void http_reply_ref(struct evhttp_request *req, const char *content_type, const void *data,
                    size_t len, void (*release)(const void *data, size_t len, void *arg),
                    void *arg) {
    struct evbuffer *buf = evbuffer_new();

    if (!buf || evbuffer_add_reference(buf, data, len, release, arg) != 0) {
        release(data, len, arg);
        evbuffer_free(buf);
        http_reply_error(req, 500, 500001, NULL, "out of memory");
        return;
    }
    http_set_header(req, "Content-Type", content_type);
    /* Not joined: that would copy the body (a CRL of megabytes) into a chain of its own. */
    send_reply(req, 200, buf, 0);
    evbuffer_free(buf);
}
