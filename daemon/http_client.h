/* An HTTPS client for a worker's event loop: requests run on libcurl's multi interface, whose
 * sockets and timers are events of the worker's event_base, so that a slow server delays only
 * the requests waiting for it while the worker goes on serving everyone else. Each worker has
 * its own client; a client is used from its worker's thread only.
 *
 * The custom allocation webhook of the registration pipeline is its user. TLS is always
 * verified (the system's CAs, or a CA file), only https URLs are followed, and redirects are
 * not. */
#ifndef PROVD_HTTP_CLIENT_H
#define PROVD_HTTP_CLIENT_H

#include <stddef.h>

#include <event2/event.h>

struct http_client;

/* The outcome of a request. */
struct http_client_result {
    long status;       /* the HTTP status of the answer, 0 when none came */
    int timed_out;     /* the answer did not come within the request's timeout */
    int too_large;     /* the answer's body was larger than the request allowed */
    const char *error; /* why no answer came (libcurl's words, no URL query), or NULL */
    const char *body;  /* the answer's body, NUL-terminated ("" when empty) */
    size_t body_len;
};

/* Runs on the event loop once the request is over, whatever its outcome. r and what it points
 * to are valid during the call only. */
typedef void (*http_client_done)(const struct http_client_result *r, void *arg);

/* Creates a client on base. ca_file, when not NULL, replaces the system's CAs for verifying
 * servers. Returns NULL when libcurl cannot be set up (logged). */
struct http_client *http_client_new(struct event_base *base, const char *ca_file);

/* Frees c. Requests still running are dropped without their callbacks: call it once the event
 * loop has ended, when none should be left. NULL is ignored. */
void http_client_free(struct http_client *c);

/* Starts a POST of body (application/json) to url, with the extra header lines of headers (a
 * NULL-terminated list of "Name: value", or NULL), to be answered within timeout_ms, keeping at
 * most max_body bytes of the answer. done runs later on the event loop, never from within this
 * call. Returns 0, or -1 when the request could not be started (done will not run). */
int http_client_post(struct http_client *c, const char *url, const char *body,
                     const char *const *headers, long timeout_ms, size_t max_body,
                     http_client_done done, void *arg);

#endif
