/* libprov's transport interface: how the library sends HTTP requests, waits, tells time and
 * draws random numbers. The built-in implementation uses libcurl with OpenSSL and the system
 * clocks; firmware without them, and tests that want to script the server and the clock,
 * supply their own through prov_client_set_transport().
 *
 * The protocol logic (SAS tokens, DPS answers, retries, polling, the deadline) stays in the
 * library: a transport only moves one request and its answer. */
#ifndef PROV_TRANSPORT_H
#define PROV_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "prov.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One request header. */
struct prov_http_header {
    const char *name;
    const char *value;
};

/* One HTTP request. Every pointer is valid only during the perform call. */
struct prov_http_request {
    const char *method; /* "PUT" or "GET" */
    const char *url;    /* absolute https:// URL, path and query already encoded */
    const struct prov_http_header *headers;
    size_t n_headers;
    const char *body; /* NULL when there is none */
    size_t body_len;
    /* PEM file of the CA certificates the server's certificate must chain to, or NULL for the
     * platform's trust store. A CA file is the whole trust store: the transport must not trust
     * the platform's CAs beside it. The transport must verify the certificate and the host
     * name. */
    const char *ca_file;
    uint32_t timeout_ms; /* the whole exchange, connecting included, must end within this */

    /* Members appended after the first release; the library always sets them (NULL when
     * unused), so a transport written before them keeps working for symmetric keys. */

    /* X.509 attestation (prov_client_set_client_cert): PEM files of the client certificate
     * (leaf first, the chain may follow) and of its unencrypted private key, which the transport
     * must present in the TLS handshake; both NULL otherwise. A transport that cannot present a
     * client certificate must fail with PROV_ERR_TLS when they are set, rather than connect
     * without one. The request then carries no Authorization header. */
    const char *client_cert_file;
    const char *client_key_file;
};

/* The answer being collected; opaque, filled with the prov_http_response_* functions. */
typedef struct prov_http_response prov_http_response;

/* Largest answer body the library accepts. */
#define PROV_MAX_RESPONSE_BODY (4u * 1024u * 1024u)

/* Records the HTTP status code (100-599). Returns PROV_ERR_INVALID_ARG for anything else. */
PROV_EXPORT prov_err prov_http_response_set_status(prov_http_response *resp, int status);

/* Records one response header. The transport may pass every header it receives; the library
 * keeps the ones it needs (Content-Type, Retry-After), matching names case-insensitively.
 * Leading and trailing blanks of value are ignored. When the transport follows several
 * responses on one request (100 Continue), it passes only the headers of the final one.
 * Returns PROV_ERR_INVALID_ARG when a pointer is NULL. */
PROV_EXPORT prov_err prov_http_response_add_header(prov_http_response *resp, const char *name,
                                                   size_t name_len, const char *value,
                                                   size_t value_len);

/* Appends len bytes to the body. Returns PROV_ERR_PROTOCOL when the body would exceed
 * PROV_MAX_RESPONSE_BODY (the transport should then stop and return that error),
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_http_response_append_body(prov_http_response *resp, const void *data,
                                                    size_t len);

/* Records why perform failed ("connection refused", "certificate has expired", ...), for the
 * log and prov_client_last_error. The text is copied (truncated to 255 bytes); it must not
 * contain secrets. */
PROV_EXPORT void prov_http_response_set_error(prov_http_response *resp, const char *msg);

/* The hooks. Every member may be NULL, which selects the built-in default for that member
 * alone (a port may replace the HTTP transport and keep the system clocks, or the reverse). */
struct prov_transport {
    /* Passed to every hook. */
    void *ctx;

    /* Performs one request and fills resp. Returns:
     *   PROV_OK           an HTTP answer arrived (whatever its status; status is set)
     *   PROV_ERR_NETWORK  no answer, for a reason worth retrying: connection refused or reset,
     *                     name not resolved, timeout (prov_register retries it)
     *   PROV_ERR_TLS      the server's certificate or host name did not verify, or the CA
     *                     file could not be used (final)
     *   PROV_ERR_PROTOCOL the answer was malformed or too large (final)
     *   PROV_ERR_NOMEM, PROV_ERR_INVALID_ARG (final)
     * Default: libcurl with OpenSSL, TLS verification always on, one connection reused across
     * the requests of a client. */
    prov_err (*perform)(void *ctx, const struct prov_http_request *req, prov_http_response *resp);

    /* Waits ms milliseconds before a retry or a poll. Default: nanosleep. A test can advance a
     * fake clock here instead of waiting. */
    void (*sleep_ms)(void *ctx, uint32_t ms);

    /* A monotonic clock in milliseconds, for the deadline. Default: CLOCK_MONOTONIC. */
    uint64_t (*now_ms)(void *ctx);

    /* The current Unix time in seconds, for the expiry of SAS tokens. Default: time(). */
    int64_t (*unix_time)(void *ctx);

    /* A uniformly distributed 32-bit random number, for the backoff jitter. Default: the
     * OpenSSL random generator. */
    uint32_t (*random_u32)(void *ctx);
};

#ifdef __cplusplus
}
#endif

#endif
