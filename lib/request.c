/* The requests of the DPS device API: URLs, the register body and the SAS token. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

#include "hmac.h"
#include "sas.h"
#include "urlenc.h"

/* Formats into a new string the caller frees; NULL when out of memory. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format(const char *fmt, ...) {
    va_list ap;
    char *out;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || (out = malloc((size_t)len + 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* {endpoint}/{scope}/registrations/{regid}/{tail}[/{tail_seg}]?api-version=..., every segment
 * that comes from outside percent-encoded. */
static char *device_url(const prov_client *c, const char *tail, const char *tail_seg) {
    char *scope = url_encode(c->id_scope, 0), *regid = url_encode(c->regid, 0);
    char *seg = tail_seg != NULL ? url_encode(tail_seg, 0) : NULL;
    char *url = NULL;

    if (scope != NULL && regid != NULL && (tail_seg == NULL || seg != NULL))
        url = format("%s/%s/registrations/%s/%s%s%s?api-version=%s", c->endpoint, scope, regid,
                     tail, seg != NULL ? "/" : "", seg != NULL ? seg : "", PROV_API_VERSION);
    free(scope);
    free(regid);
    free(seg);
    return url;
}

char *request_register_url(const prov_client *c) {
    return device_url(c, "register", NULL);
}

char *request_operation_url(const prov_client *c, const char *operation_id) {
    return device_url(c, "operations", operation_id);
}

char *request_register_body(const prov_client *c, const char *csr_b64) {
    json_t *body;
    char *text;

    body = json_pack("{s:s, s:O*, s:s*}", "registrationId", c->regid, "payload", c->payload, "csr",
                     csr_b64);
    if (body == NULL)
        return NULL;
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

char *request_sas(const prov_client *c, const char *device_key, int64_t expiry, const char **why) {
    char *sr = format("%s/registrations/%s", c->id_scope, c->regid), *token;

    if (sr == NULL) {
        *why = "out of memory";
        return NULL;
    }
    /* The resource goes out unencoded, as the Node.js device SDK sends it; the server accepts
     * every spelling because it signs sr exactly as received. */
    token = sas_build(sr, device_key, expiry, why);
    /* The HMAC context keeps the device key it was given: wipe it now rather than leave it in
     * the heap until the thread ends. */
    hmac_sha256_forget();
    free(sr);
    return token;
}

void request_free_secret(char *s) {
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}
