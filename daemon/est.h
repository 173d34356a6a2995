/* The EST front end (RFC 7030, updated by RFC 8951; docs/est.md) on the device listener:
 * /.well-known/est/[{label}/]{cacerts,csrattrs,simpleenroll,simplereenroll,serverkeygen}.
 * Enrollments become registration jobs for the pipeline, like the DPS-compatible API's; what
 * is EST here is only the wire format: PKCS#10 in, certs-only PKCS#7 (and PKCS#8) out. */
#ifndef PROVD_EST_H
#define PROVD_EST_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "csr.h"
#include "http.h"

struct worker;

/* The path prefix of EST requests, as segments: /.well-known/est. */
#define EST_SEG0 ".well-known"
#define EST_SEG1 "est"

/* The boundary of serverkeygen's multipart answer. Base64 never holds a '-', so the boundary
 * cannot occur in the parts. */
#define EST_BOUNDARY "provd-est-boundary"

/* Handles a device-listener request whose path p starts with /.well-known/est; bad_query when
 * its query string did not parse (EST takes no parameters, but a malformed one is refused). */
void est_handle(struct worker *w, struct evhttp_request *req, const struct http_path *p,
                int bad_query);

/* Parses an Authorization header of the HTTP Basic scheme (RFC 7617): "Basic" (any case),
 * spaces, then base64 (strict) of "user:password" with a non-empty user and no control
 * characters. Returns 0 with the user in user (size bytes, NUL included) and *password a copy
 * the caller wipes and frees (OPENSSL_cleanse, free); or -1 when the header is not such a
 * header (nothing allocated). */
int est_basic_parse(const char *header, char *user, size_t size, char **password);

/* Appends serverkeygen's multipart/mixed body (RFC 7030 section 4.4.2), boundary EST_BOUNDARY,
 * to out: the part application/pkcs8 holding key_b64 (the base64 DER private key) and the part
 * application/pkcs7-mime; smime-type=certs-only holding p7_b64. out takes key_b64 by reference
 * and wipes and frees it once it drops it (sent or freed); key_b64 is wiped and freed here when
 * this fails. Returns 0, or -1 when out of memory. */
int est_multipart(struct evbuffer *out, char *key_b64, const char *p7_b64);

/* The DER of the CSR attributes provd asks for (RFC 7030 section 4.5.2), from the key policy p:
 * an ecPublicKey attribute listing the allowed curves when EC keys are allowed, and the
 * rsaEncryption and Ed25519 OIDs when those are. Returns a buffer of *len bytes the caller
 * frees with OPENSSL_free, or NULL when out of memory. */
unsigned char *est_csrattrs_der(const struct csr_policy *p, size_t *len);

#endif
