/* Endpoint documents. See endpoint.h. */
#include "endpoint.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "docval.h"
#include "enrollment.h"
#include "hostname.h"
#include "log.h"
#include "protocol.h"
#include "regid.h"
#include "utf8.h"

#define CODE_ID_MISMATCH 400004
#define TRUST_BUNDLE_MAX (64 * 1024)
#define TRUST_CERTS_MAX  32

static const char *const MEMBERS[] = {
    "hostName",
    "port",
    "protocol",
    "weight",
    "enabled",
    "region",
    "trustBundle",
    "etag",
    "createdDateTimeUtc",
    "lastUpdatedDateTimeUtc",
    NULL,
};

/* Checks that pem (len bytes) holds only X.509 certificates, at least one, and nothing but
 * white space around them: the bundle goes to every device of the endpoint as given, so text
 * outside the PEM blocks (a key pasted without its BEGIN line, say) is refused rather than
 * passed on. Each PEM block is read on its own, so that a private key pasted in by mistake is
 * refused rather than skipped (and never echoed: the message names only the block's type). */
static int check_trust_bundle(const char *pem, size_t len, struct verr *e) {
    static const char begin[] = "-----BEGIN ";
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    size_t at = 0;
    int n = 0;

    for (;;) {
        const unsigned char *p;
        const char *eol;
        X509 *x = NULL;
        size_t line;
        BIO *bio;
        int got;

        while (at < len &&
               (pem[at] == ' ' || pem[at] == '\t' || pem[at] == '\r' || pem[at] == '\n'))
            at++;
        if (at == len)
            break;
        if (len - at < sizeof(begin) - 1 || memcmp(pem + at, begin, sizeof(begin) - 1) != 0)
            return verr_set(e, DOCVAL_INVALID, "%s",
                            n == 0 && strstr(pem + at, begin) == NULL
                                ? "trustBundle holds no PEM certificate"
                                : "trustBundle holds text outside its PEM blocks");
        /* PEM_read_bio would also pass over a BEGIN line that does not end in "-----" (once
         * trailing white space and control characters are dropped, as it drops them) and skip
         * the text up to the next BEGIN line. */
        eol = memchr(pem + at, '\n', len - at);
        line = eol != NULL ? (size_t)(eol - (pem + at)) : len - at;
        while (line > 0 && (unsigned char)pem[at + line - 1] <= ' ')
            line--;
        if (line < sizeof(begin) - 1 + 5 || memcmp(pem + at + line - 5, "-----", 5) != 0)
            return verr_set(e, DOCVAL_INVALID, "trustBundle holds text outside its PEM blocks");
        /* A BIO of its own for each block, starting at its BEGIN line: PEM_read_bio would skip
         * whatever precedes a BEGIN line, and what it consumed tells where the block ends. */
        if ((bio = BIO_new_mem_buf(pem + at, (int)(len - at))) == NULL)
            return verr_set(e, DOCVAL_INTERNAL, "out of memory");
        ERR_clear_error();
        got = PEM_read_bio(bio, &name, &header, &data, &dlen);
        at = len - (size_t)BIO_pending(bio);
        BIO_free(bio);
        ERR_clear_error();
        p = data;
        if (got != 1) {
            verr_set(e, DOCVAL_INVALID, "trustBundle block %d is not well-formed PEM", n + 1);
        } else if (strcmp(name, "CERTIFICATE") != 0) {
            verr_set(e, DOCVAL_INVALID,
                     "trustBundle holds a \"%.40s\" block; only CERTIFICATE blocks belong there",
                     name);
        } else if (header[0] != '\0') {
            verr_set(e, DOCVAL_INVALID, "trustBundle certificate %d has PEM header lines", n + 1);
        } else if ((x = d2i_X509(NULL, &p, dlen)) == NULL || p != data + dlen) {
            verr_set(e, DOCVAL_INVALID, "trustBundle certificate %d is not valid X.509", n + 1);
        } else if (++n > TRUST_CERTS_MAX) {
            verr_set(e, DOCVAL_INVALID, "trustBundle has more than %d certificates",
                     TRUST_CERTS_MAX);
        }
        X509_free(x);
        if (data != NULL)
            OPENSSL_cleanse(data, (size_t)dlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
        if (e->code != 0)
            return -1;
    }
    if (n == 0)
        return verr_set(e, DOCVAL_INVALID, "trustBundle holds no PEM certificate");
    return 0;
}

static int normalize(const char *path_host, json_t *in, json_t *out, struct verr *e) {
    char host[HOSTNAME_MAX + 1];
    const char *why = NULL, *protocol = "mqtts";
    json_t *v;
    json_int_t port = 0, weight = 1;
    int usual = 0;

    if (!json_is_object(in))
        return verr_set(e, DOCVAL_INVALID, "the endpoint must be a JSON object");
    if (json_check_members(in, MEMBERS, "", e) != 0)
        return -1;
    if (hostname_check(path_host, &why) != 0)
        return verr_set(e, DOCVAL_INVALID, "host name \"%.64s\" is invalid: %s", path_host, why);
    snprintf(host, sizeof(host), "%s", path_host);
    regid_lower(host);
    if ((v = json_opt(in, "hostName")) != NULL) {
        if (json_check_string("hostName", v, HOSTNAME_MAX, e) != 0)
            return -1;
        if (strcasecmp(json_string_value(v), host) != 0)
            return verr_set(e, CODE_ID_MISMATCH,
                            "hostName \"%.64s\" differs from \"%s\" in the path",
                            json_string_value(v), host);
    }
    if (json_put_new(out, "hostName", json_string(host), e) != 0)
        return -1;

    if ((v = json_opt(in, "protocol")) != NULL) {
        if (!json_is_string(v))
            return verr_set(e, DOCVAL_INVALID, "protocol must be a string");
        protocol = json_string_value(v);
    }
    if (!(protocol = protocol_find(protocol, &usual)))
        return verr_set(e, DOCVAL_INVALID, "protocol must be one of " PROTOCOL_NAMES);
    port = usual;
    if ((v = json_opt(in, "port")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
            return verr_set(e, DOCVAL_INVALID, "port must be an integer from 1 to 65535");
        port = json_integer_value(v);
    }
    if ((v = json_opt(in, "weight")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > ENDPOINT_WEIGHT_MAX)
            return verr_set(e, DOCVAL_INVALID, "weight must be an integer from 1 to %d",
                            ENDPOINT_WEIGHT_MAX);
        weight = json_integer_value(v);
    }
    if ((v = json_opt(in, "enabled")) != NULL && !json_is_boolean(v))
        return verr_set(e, DOCVAL_INVALID, "enabled must be a boolean");
    if (json_put_new(out, "port", json_integer(port), e) != 0 ||
        json_put_new(out, "protocol", json_string(protocol), e) != 0 ||
        json_put_new(out, "weight", json_integer(weight), e) != 0 ||
        json_put_new(out, "enabled", json_boolean(v == NULL || json_is_true(v)), e) != 0)
        return -1;

    if ((v = json_opt(in, "region")) != NULL) {
        if (json_check_string("region", v, ENDPOINT_REGION_MAX, e) != 0)
            return -1;
        if (regid_check(json_string_value(v), NULL) != 0)
            return verr_set(e, DOCVAL_INVALID,
                            "region may hold letters, digits, '-', '.', '_' and ':' only");
        if (json_put_new(out, "region", json_string(json_string_value(v)), e) != 0)
            return -1;
    }
    if ((v = json_opt(in, "trustBundle")) != NULL) {
        if (json_check_string("trustBundle", v, TRUST_BUNDLE_MAX, e) != 0 ||
            check_trust_bundle(json_string_value(v), json_string_length(v), e) != 0 ||
            json_put_new(out, "trustBundle", json_string(json_string_value(v)), e) != 0)
            return -1;
    }
    return 0;
}

int endpoint_normalize(const char *path_host, json_t *in, json_t **out, int *code, char *err,
                       size_t errlen) {
    struct verr e = {0, err, errlen};
    json_t *doc = json_object();

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (doc == NULL)
        verr_set(&e, DOCVAL_INTERNAL, "out of memory");
    else if (normalize(path_host, in, doc, &e) == 0)
        *out = doc;
    if (*out == NULL)
        json_decref(doc);
    if (*out == NULL && err != NULL && errlen > 0)
        utf8_repair(err);
    if (code != NULL)
        *code = *out != NULL ? 0 : e.code;
    return *out != NULL ? 0 : -1;
}

int endpoint_parse(const struct store_doc *d, struct endpoint *out) {
    const char *host = NULL, *protocol = NULL, *region = NULL, *bundle = NULL;
    json_int_t port = 0, weight = 0;
    int enabled = 0, rc = -1;
    json_error_t jerr;
    json_t *root;

    memset(out, 0, sizeof(*out));
    root = json_loads(d->doc != NULL ? d->doc : "", 0, &jerr);
    if (root == NULL ||
        json_unpack_ex(root, &jerr, 0, "{s:s, s:I, s:s, s:I, s:b, s?s, s?s}", "hostName", &host,
                       "port", &port, "protocol", &protocol, "weight", &weight, "enabled", &enabled,
                       "region", &region, "trustBundle", &bundle) != 0 ||
        port < 1 || port > 65535 || weight < 1 || weight > ENDPOINT_WEIGHT_MAX) {
        log_error("endpoint %s: stored document is not canonical: %s", d->id != NULL ? d->id : "?",
                  root == NULL ? jerr.text : "bad values");
        goto out;
    }
    out->port = (int)port;
    out->weight = (unsigned)weight;
    out->enabled = enabled != 0;
    out->host = strdup(host);
    out->protocol = strdup(protocol);
    out->region = region != NULL ? strdup(region) : NULL;
    out->trust_bundle = bundle != NULL ? strdup(bundle) : NULL;
    if (out->host == NULL || out->protocol == NULL || (region != NULL && out->region == NULL) ||
        (bundle != NULL && out->trust_bundle == NULL)) {
        log_error("endpoint %s: out of memory", host);
        endpoint_clear(out);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void endpoint_clear(struct endpoint *e) {
    if (e == NULL)
        return;
    free(e->host);
    free(e->protocol);
    free(e->region);
    free(e->trust_bundle);
    memset(e, 0, sizeof(*e));
}

json_t *endpoint_device_view(const struct endpoint *e) {
    return json_pack("{s:s, s:i, s:s, s:s*}", "host", e->host, "port", e->port, "protocol",
                     e->protocol, "trustBundle", e->trust_bundle);
}
