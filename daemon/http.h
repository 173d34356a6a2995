/* Helpers shared by the HTTP front ends (device API, admin API): answers in the DPS shapes,
 * JSON bodies, paths, headers. They wrap libevent's evhttp; nothing here parses HTTP by hand. */
#ifndef PROVD_HTTP_H
#define PROVD_HTTP_H

#include <event2/http.h>
#include <jansson.h>
#include <openssl/x509.h>

#define HTTP_MAX_SEGMENTS 8

/* A request path split into percent-decoded segments, and its query string. */
struct http_path {
    char *seg[HTTP_MAX_SEGMENTS]; /* decoded segments, without empty ones from a trailing '/' */
    int nseg;
    char *query; /* the raw query string, or NULL */
    char *buf;   /* owns the storage */
};

/* Splits the request's URI path. Returns 0; HTTP_BAD_PATH when the path is malformed or has
 * more than HTTP_MAX_SEGMENTS segments (nothing to release); HTTP_BAD_QUERY when the query string
 * is not a list of name=value pairs, empty ones aside (a parameter the caller looks for could not
 * be told apart), with the path split all the same and no query. Release with http_path_clear. */
#define HTTP_BAD_PATH  (-1)
#define HTTP_BAD_QUERY (-2)
int http_path_parse(struct evhttp_request *req, struct http_path *p);
void http_path_clear(struct http_path *p);

/* Case-insensitive compare of segment i with s; 0 when i is out of range. */
int http_seg_is(const struct http_path *p, int i, const char *s);

/* Returns the decoded value of query parameter name (caller frees), or NULL when absent. */
char *http_query_get(const struct http_path *p, const char *name);

/* Returns the value of request header name, or NULL. */
const char *http_header(struct evhttp_request *req, const char *name);

/* Writes the peer address ("127.0.0.1:5555" or "[::1]:5555") into buf. */
void http_remote(struct evhttp_request *req, char *buf, size_t len);

/* Writes sa as http_remote does, or "unknown" when sa is NULL or neither IPv4 nor IPv6. */
void http_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Answers status with body serialised compactly, Content-Type application/json; charset=utf-8.
 * Takes the reference to body (which may be NULL for an empty answer). */
void http_reply_json(struct evhttp_request *req, int status, json_t *body);

/* Sends the answer of status: the headers set, the request's output buffer and then body (NULL
 * for none) as its content. To HEAD, the headers only, with the Content-Length a GET would have
 * (RFC 9110, 9.3.2). Every answer provd makes goes through here (libevent's own error pages,
 * such as its 413 past the body limit, do not). */
void http_send(struct evhttp_request *req, int status, struct evbuffer *body);

/* http_send for a body holding a secret in chains that wipe it as they are freed
 * (evbuffer_add_reference): its chains are sent as they are, since joining them, as http_send
 * does to save a TLS record, would copy the secret into memory freed without a wipe (as
 * http_reply_ref sends its body, which joining would copy). */
void http_send_secret(struct evhttp_request *req, int status, struct evbuffer *body);

/* Answers status with no body (e.g. 204). */
void http_reply_empty(struct evhttp_request *req, int status);

/* Answers a DPS error (docs/errors.md): header x-ms-error-code and body {errorCode, trackingId,
 * message, timestampUtc}. tracking is the request's tracking ID (a UUID string), or NULL for a
 * fresh one. The message must not contain secrets. */
/* Asks the client of an answer of status to come back later: a 503 (provd stopping, a CRL not
 * yet signed, a registration that kept changing) carries Retry-After: HTTP_RETRY_AFTER_S, which
 * the DPS device SDKs and libprov honour. */
#define HTTP_RETRY_AFTER_S "2"
void http_retry_after(struct evhttp_request *req, int status);

void http_reply_error(struct evhttp_request *req, int status, int code, const char *tracking,
                      const char *message);

/* Checks that the request's Content-Type is application/json (parameters such as charset
 * allowed). Returns 0 or -1. */
int http_is_json(struct evhttp_request *req);

/* Reads the whole request body. Returns a NUL-terminated copy (caller frees) and its length, or
 * NULL when empty. Bodies over max_bytes make it return NULL with *too_big set. */
char *http_body(struct evhttp_request *req, size_t max_bytes, size_t *len, int *too_big);

/* Parses body text as JSON. Returns the value, or NULL with a message (position included) in
 * err. */
json_t *http_json_parse(const char *body, size_t len, char *err, size_t errlen);

/* The certificate the client presented in the TLS handshake of the request's connection, with
 * a reference the caller drops with X509_free, or NULL when it presented none. *chain is set to
 * the certificates the client sent above it (a stack with references the caller frees with
 * sk_X509_pop_free(*chain, X509_free)), or NULL. Nothing is verified here: which CA a device
 * certificate must chain to depends on its enrollment. */
X509 *http_peer_cert(struct evhttp_request *req, STACK_OF(X509) * *chain);

/* Answers 200 with the len bytes of data as the body, of type content_type. The body is not
 * copied: release(data, len, arg) runs once it is sent (or dropped). */
void http_reply_ref(struct evhttp_request *req, const char *content_type, const void *data,
                    size_t len, void (*release)(const void *data, size_t len, void *arg),
                    void *arg);

/* Adds a response header. */
void http_set_header(struct evhttp_request *req, const char *name, const char *value);

#endif
