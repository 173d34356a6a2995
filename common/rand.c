/* Randomness comes from OpenSSL's DRBG, which is seeded from the OS CSPRNG and reseeds itself
 * across fork(), so a forking daemon never hands two devices the same key. */
#include "rand.h"

#include <limits.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base64.h"

int rand_bytes(void *buf, size_t n) {
    unsigned char *p = buf;

    /* RAND_bytes takes an int count, so large requests are served in slices. */
    while (n > 0) {
        size_t chunk = n > (size_t)INT_MAX ? (size_t)INT_MAX : n;
        if (RAND_bytes(p, (int)chunk) != 1)
            return -1;
        p += chunk;
        n -= chunk;
    }
    return 0;
}

int uuid_v4(char out[UUID_STR_LEN]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t i, o = 0;

    if (rand_bytes(b, sizeof(b)) != 0)
        return -1;
    /* RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the top bits of byte 8. */
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    for (i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0F];
    }
    out[o] = '\0';
    return 0;
}

char *rand_key_b64(size_t n) {
    unsigned char *key;
    char *out = NULL;

    /* A key of no bytes is a caller's mistake, not something to hand out. */
    if (n == 0)
        return NULL;
    key = malloc(n);
    if (key == NULL)
        return NULL;
    if (rand_bytes(key, n) == 0)
        out = b64_encode(key, n);
    OPENSSL_cleanse(key, n);
    free(key);
    return out;
}
