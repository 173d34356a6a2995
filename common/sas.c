/* SAS tokens of the DPS device protocol: parsing, verification and, for tests and tools,
 * building. */
#include "sas.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base64.h"
#include "hmac.h"
#include "urlenc.h"

static const char prefix[] = "SharedAccessSignature ";

const char *sas_result_str(enum sas_result r) {
    switch (r) {
    case SAS_OK:
        return "ok";
    case SAS_MALFORMED:
        return "malformed token";
    case SAS_EXPIRED:
        return "token expired";
    case SAS_TOO_FAR:
        return "token expiry too far in the future";
    case SAS_WRONG_RESOURCE:
        return "token resource does not name this registration";
    case SAS_BAD_SIGNATURE:
        return "signature does not match";
    }
    return "unknown result";
}

static char *dup_span(const char *s, size_t len) {
    char *d = malloc(len + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Parses a decimal integer with no sign, no spaces and no overflow. */
static int parse_expiry(const char *s, size_t len, int64_t *out) {
    int64_t v = 0;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        int d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int span_is(const char *s, size_t len, const char *name) {
    return strlen(name) == len && memcmp(s, name, len) == 0;
}

void sas_token_free(struct sas_token *tok) {
    if (tok == NULL)
        return;
    free(tok->sr);
    free(tok->se);
    free(tok->skn);
    b64_free(tok->sig, tok->siglen);
    memset(tok, 0, sizeof(*tok));
}

enum sas_result sas_parse(const char *header, struct sas_token *tok, const char **why) {
    const char *reason = NULL, *p, *end, *sig_raw = NULL;
    size_t len, sig_rawlen = 0;
    char *sig_dec = NULL;

    memset(tok, 0, sizeof(*tok));
    if (header == NULL) {
        reason = "no token";
        goto fail;
    }
    len = strnlen(header, SAS_MAX_LEN + 1);
    if (len > SAS_MAX_LEN) {
        reason = "token too long";
        goto fail;
    }
    if (len < sizeof(prefix) - 1 || memcmp(header, prefix, sizeof(prefix) - 1) != 0) {
        reason = "not a SharedAccessSignature";
        goto fail;
    }
    for (p = header; p < header + len; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            reason = "control character in token";
            goto fail;
        }
    }

    /* Fields are name=value pairs separated by '&', in any order; unknown names are skipped so
     * that a client adding one does not lock itself out. */
    p = header + sizeof(prefix) - 1;
    end = header + len;
    for (;;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(fend - p));
        const char *val;
        size_t namelen, vallen;
        char **slot = NULL;

        if (fend == p) {
            reason = "empty field";
            goto fail;
        }
        if (eq == NULL || eq == p) {
            reason = "field without a name=value form";
            goto fail;
        }
        namelen = (size_t)(eq - p);
        val = eq + 1;
        vallen = (size_t)(fend - val);
        if (span_is(p, namelen, "sr")) {
            slot = &tok->sr;
        } else if (span_is(p, namelen, "se")) {
            slot = &tok->se;
        } else if (span_is(p, namelen, "skn")) {
            slot = &tok->skn;
        } else if (span_is(p, namelen, "sig")) {
            if (sig_raw != NULL) {
                reason = "repeated field";
                goto fail;
            }
            sig_raw = val;
            sig_rawlen = vallen;
        }
        if (slot != NULL) {
            if (*slot != NULL) {
                reason = "repeated field";
                goto fail;
            }
            *slot = dup_span(val, vallen);
            if (*slot == NULL) {
                reason = "out of memory";
                goto fail;
            }
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }

    if (tok->sr == NULL || tok->se == NULL || sig_raw == NULL) {
        reason = tok->sr == NULL ? "missing sr" : tok->se == NULL ? "missing se" : "missing sig";
        goto fail;
    }
    if (tok->sr[0] == '\0') {
        reason = "empty sr";
        goto fail;
    }
    if (parse_expiry(tok->se, strlen(tok->se), &tok->expiry) != 0) {
        reason = "se is not an unsigned decimal number in range";
        goto fail;
    }
    sig_dec = url_decode(sig_raw, sig_rawlen);
    if (sig_dec == NULL) {
        reason = "sig has a malformed percent-escape";
        goto fail;
    }
    if (sig_dec[0] == '\0' ||
        b64_decode(sig_dec, strlen(sig_dec), &tok->sig, &tok->siglen, NULL) != 0) {
        reason = "sig is not valid base64";
        goto fail;
    }
    free(sig_dec);
    return SAS_OK;

fail:
    free(sig_dec);
    sas_token_free(tok);
    if (why != NULL)
        *why = reason;
    return SAS_MALFORMED;
}

static int ascii_lower(int c) {
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Compares s with a + b + c, ignoring ASCII case, without building the concatenation. */
static int eq_nocase3(const char *s, const char *a, const char *b, const char *c) {
    const char *parts[3] = {a, b, c};
    size_t i;

    for (i = 0; i < 3; i++) {
        const char *q;
        for (q = parts[i]; *q != '\0'; q++, s++) {
            if (*s == '\0' || ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*q))
                return 0;
        }
    }
    return *s == '\0';
}

enum sas_result sas_check_resource(const struct sas_token *tok, const char *scope,
                                   const char *regid) {
    enum sas_result r = SAS_WRONG_RESOURCE;
    char *sr;

    if (tok == NULL || tok->sr == NULL || scope == NULL || regid == NULL || scope[0] == '\0' ||
        regid[0] == '\0')
        return SAS_WRONG_RESOURCE;
    sr = url_decode(tok->sr, strlen(tok->sr));
    if (sr == NULL)
        return SAS_WRONG_RESOURCE;
    if (eq_nocase3(sr, scope, "/registrations/", regid))
        r = SAS_OK;
    free(sr);
    return r;
}

enum sas_result sas_check_expiry(const struct sas_token *tok, int64_t now, int64_t max_lifetime) {
    if (tok == NULL)
        return SAS_MALFORMED;
    if (tok->expiry <= now)
        return SAS_EXPIRED;
    /* expiry > now here, so the unsigned difference is exact and cannot overflow. */
    if (max_lifetime > 0 && (uint64_t)tok->expiry - (uint64_t)now > (uint64_t)max_lifetime)
        return SAS_TOO_FAR;
    return SAS_OK;
}

/* Builds the signed message sr + "\n" + se. The caller frees it. */
static char *sign_input(const char *sr, const char *se, size_t *len) {
    size_t srlen = strlen(sr), selen = strlen(se);
    char *m = malloc(srlen + selen + 2);

    if (m == NULL)
        return NULL;
    memcpy(m, sr, srlen);
    m[srlen] = '\n';
    memcpy(m + srlen + 1, se, selen + 1);
    *len = srlen + 1 + selen;
    return m;
}

/* HMAC of msg under the base64 key; -1 when the key is not strict base64 or HMAC fails. */
static int sign_with(const char *key_b64, const char *msg, size_t msglen,
                     unsigned char mac[HMAC_SHA256_LEN]) {
    unsigned char *key = NULL;
    size_t keylen = 0;
    int rc;

    if (b64_decode(key_b64, strlen(key_b64), &key, &keylen, NULL) != 0)
        return -1;
    rc = hmac_sha256(key, keylen, msg, msglen, mac);
    b64_free(key, keylen);
    return rc;
}

enum sas_result sas_verify_sig(const struct sas_token *tok, const char *const *keys_b64,
                               size_t nkeys, int *matched) {
    enum sas_result r = SAS_BAD_SIGNATURE;
    unsigned char mac[HMAC_SHA256_LEN];
    size_t msglen, i;
    char *msg;

    if (tok == NULL || tok->sr == NULL || tok->se == NULL || tok->sig == NULL ||
        tok->siglen != HMAC_SHA256_LEN || keys_b64 == NULL)
        return SAS_BAD_SIGNATURE;
    msg = sign_input(tok->sr, tok->se, &msglen);
    if (msg == NULL)
        return SAS_BAD_SIGNATURE;
    for (i = 0; i < nkeys; i++) {
        if (keys_b64[i] == NULL || sign_with(keys_b64[i], msg, msglen, mac) != 0)
            continue;
        if (CRYPTO_memcmp(mac, tok->sig, HMAC_SHA256_LEN) == 0) {
            if (matched != NULL)
                *matched = (int)i;
            r = SAS_OK;
            break;
        }
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    free(msg);
    return r;
}

enum sas_result sas_verify(const struct sas_token *tok, const char *scope, const char *regid,
                           const char *const *keys_b64, size_t nkeys, int64_t now,
                           int64_t max_lifetime, int *matched) {
    enum sas_result r;

    if ((r = sas_check_resource(tok, scope, regid)) != SAS_OK)
        return r;
    if ((r = sas_check_expiry(tok, now, max_lifetime)) != SAS_OK)
        return r;
    return sas_verify_sig(tok, keys_b64, nkeys, matched);
}

char *sas_build(const char *sr, const char *key_b64, int64_t expiry, const char **why) {
    unsigned char mac[HMAC_SHA256_LEN];
    char se[24], *msg = NULL, *sig_b64 = NULL, *sig_enc = NULL, *out = NULL;
    const char *reason = NULL;
    size_t msglen = 0, outlen;

    if (sr == NULL || sr[0] == '\0' || strchr(sr, '&') != NULL) {
        reason = "resource is empty or contains '&'";
        goto done;
    }
    if (key_b64 == NULL) {
        reason = "no key";
        goto done;
    }
    if (expiry < 0) {
        reason = "negative expiry";
        goto done;
    }
    snprintf(se, sizeof(se), "%" PRId64, expiry);
    msg = sign_input(sr, se, &msglen);
    if (msg == NULL) {
        reason = "out of memory";
        goto done;
    }
    if (sign_with(key_b64, msg, msglen, mac) != 0) {
        reason = "key is not valid base64";
        goto done;
    }
    /* Upper-case escapes, as the Node.js SDK's encodeURIComponent writes them. */
    sig_b64 = b64_encode(mac, sizeof(mac));
    sig_enc = sig_b64 != NULL ? url_encode(sig_b64, 1) : NULL;
    if (sig_enc == NULL) {
        reason = "out of memory";
        goto done;
    }
    outlen = sizeof(prefix) - 1 + strlen(sr) + strlen(sig_enc) + strlen(se) + 40;
    out = malloc(outlen);
    if (out == NULL) {
        reason = "out of memory";
        goto done;
    }
    snprintf(out, outlen, "%ssr=%s&sig=%s&se=%s&skn=registration", prefix, sr, sig_enc, se);
done:
    OPENSSL_cleanse(mac, sizeof(mac));
    free(msg);
    /* The signature is the token's secret part until it expires. */
    if (sig_b64)
        OPENSSL_cleanse(sig_b64, strlen(sig_b64));
    if (sig_enc)
        OPENSSL_cleanse(sig_enc, strlen(sig_enc));
    free(sig_b64);
    free(sig_enc);
    if (out == NULL && why != NULL)
        *why = reason;
    return out;
}
