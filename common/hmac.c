/* HMAC-SHA256 through OpenSSL and the two symmetric-key derivations of DESIGN.md. */
#include "hmac.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"

int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                unsigned char out[HMAC_SHA256_LEN]) {
    static const unsigned char empty[1];
    unsigned int len = 0;

    /* OpenSSL takes the key length as an int: refuse rather than truncate it silently. */
    if (keylen > (size_t)INT_MAX)
        return -1;
    /* An empty key or message may come as NULL; OpenSSL wants a valid pointer in both cases. */
    if (key == NULL)
        key = empty;
    if (msg == NULL)
        msg = empty;
    if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) == NULL ||
        len != HMAC_SHA256_LEN)
        return -1;
    return 0;
}

char *derive_device_key(const char *group_key_b64, const char *id, const char **why) {
    unsigned char *key = NULL, mac[HMAC_SHA256_LEN];
    size_t keylen = 0;
    char *out = NULL;

    if (group_key_b64 == NULL || id == NULL) {
        if (why != NULL)
            *why = "missing group key or registration ID";
        return NULL;
    }
    if (b64_decode(group_key_b64, strlen(group_key_b64), &key, &keylen, why) != 0)
        return NULL;
    if (hmac_sha256(key, keylen, id, strlen(id), mac) != 0) {
        if (why != NULL)
            *why = "HMAC computation failed";
        goto out;
    }
    out = b64_encode(mac, sizeof(mac));
    if (out == NULL && why != NULL)
        *why = "out of memory";
out:
    b64_free(key, keylen);
    OPENSSL_cleanse(mac, sizeof(mac));
    return out;
}

char *derive_raw_secret(const char *secret, size_t secretlen, const char *id) {
    unsigned char mac[HMAC_SHA256_LEN];
    char *out;

    if (id == NULL || hmac_sha256(secret, secretlen, id, strlen(id), mac) != 0)
        return NULL;
    out = b64_encode(mac, sizeof(mac));
    OPENSSL_cleanse(mac, sizeof(mac));
    return out;
}
