/* Base64 (RFC 4648, standard alphabet). The decoder is written out by hand rather than taken from
 * EVP_DecodeBlock because that function accepts whitespace, does not report padding errors and
 * cannot tell how many bytes the padding removed; a key or a signature must decode to exactly
 * one byte string or be refused. */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static const char enc_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *in, size_t len) {
    const unsigned char *p = in;
    size_t outlen, i, o = 0;
    char *out;

    if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
        return NULL;
    outlen = (len + 2) / 3 * 4;
    out = malloc(outlen + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = enc_table[v >> 18 & 63];
        out[o++] = enc_table[v >> 12 & 63];
        out[o++] = enc_table[v >> 6 & 63];
        out[o++] = enc_table[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = enc_table[v >> 18 & 63];
        out[o++] = enc_table[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = enc_table[v >> 18 & 63];
        out[o++] = enc_table[v >> 12 & 63];
        out[o++] = enc_table[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Returns the 6-bit value of c, or -1 when c is not in the standard alphabet. */
static int dec_char(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int is_b64_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int fail(unsigned char **out, const char **why, const char *reason) {
    *out = NULL;
    if (why != NULL)
        *why = reason;
    return -1;
}

/* Two passes: the first checks characters, padding and length and counts, so that the buffer has
 * its exact size; the second decodes. On any failure *out is NULL and a partly filled buffer has
 * been wiped, since what is decoded here is often a key. */
static int decode(const char *in, size_t inlen, int skip_space, unsigned char **out, size_t *outlen,
                  const char **why) {
    size_t n = 0, pad = 0, i, cap, o = 0, k = 0;
    unsigned char *buf;
    unsigned acc = 0;

    *outlen = 0;
    if (in == NULL && inlen > 0)
        return fail(out, why, "no input");

    /* First pass: validate characters and padding placement, and count. */
    for (i = 0; i < inlen; i++) {
        char c = in[i];
        if (skip_space && is_b64_space(c))
            continue;
        if (c == '=') {
            pad++;
            n++;
            continue;
        }
        if (dec_char(c) < 0)
            return fail(out, why, is_b64_space(c) ? "whitespace not allowed" : "invalid character");
        if (pad > 0)
            return fail(out, why, "data after padding");
        n++;
    }
    if (n % 4 != 0)
        return fail(out, why, "bad length");
    if (pad > 2)
        return fail(out, why, "bad padding");

    cap = n / 4 * 3 - pad;
    buf = malloc(cap + 1);
    if (buf == NULL)
        return fail(out, why, "out of memory");

    for (i = 0; i < inlen; i++) {
        int v;
        if (in[i] == '=' || (skip_space && is_b64_space(in[i])))
            continue;
        v = dec_char(in[i]);
        acc = acc << 6 | (unsigned)v;
        k++;
        if (k == 4) {
            buf[o++] = (unsigned char)(acc >> 16);
            buf[o++] = (unsigned char)(acc >> 8);
            buf[o++] = (unsigned char)acc;
            acc = 0;
            k = 0;
        }
    }
    /* A padded final quantum leaves 2 or 3 characters: 12 bits for one byte or 18 for two. The
     * bits below the last byte must be zero, or two different strings would decode alike. */
    if (k == 2) {
        if ((acc & 0xF) != 0) {
            OPENSSL_cleanse(buf, cap + 1);
            free(buf);
            return fail(out, why, "non-zero trailing bits");
        }
        buf[o++] = (unsigned char)(acc >> 4);
    } else if (k == 3) {
        if ((acc & 0x3) != 0) {
            OPENSSL_cleanse(buf, cap + 1);
            free(buf);
            return fail(out, why, "non-zero trailing bits");
        }
        buf[o++] = (unsigned char)(acc >> 10);
        buf[o++] = (unsigned char)(acc >> 2);
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen,
               const char **why) {
    return decode(in, inlen, 0, out, outlen, why);
}

int b64_decode_lenient(const char *in, size_t inlen, unsigned char **out, size_t *outlen,
                       const char **why) {
    return decode(in, inlen, 1, out, outlen, why);
}

void b64_free(unsigned char *buf, size_t len) {
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len + 1);
    free(buf);
}
