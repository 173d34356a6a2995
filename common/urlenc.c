/* Percent-encoding (RFC 3986) for SAS tokens and URL path segments. */
#include "urlenc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *url_decode(const char *s, size_t len) {
    char *out;
    size_t i, o = 0;

    if (s == NULL || len == SIZE_MAX)
        return NULL;
    /* Decoding never lengthens the text, so len + 1 bytes always suffice. */
    out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '\0')
            goto bad;
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (len - i < 3)
            goto bad;
        hi = hexval(s[i + 1]);
        lo = hexval(s[i + 2]);
        /* A decoded NUL would cut the string short for every later check: refuse it. */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            goto bad;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *url_encode(const char *s, int upper) {
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t len, i, o = 0;
    char *out;

    if (s == NULL)
        return NULL;
    len = strlen(s);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0F];
        }
    }
    out[o] = '\0';
    return out;
}
