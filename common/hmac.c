/* HMAC-SHA256 through OpenSSL and the two symmetric-key derivations of DESIGN.md. */
#include "hmac.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base64.h"

/* OpenSSL's one-shot HMAC() looks the algorithm and the digest up by name and builds a context
 * on every call, which for the short messages of SAS tokens and key derivations costs twice the
 * MAC itself. The algorithm is fetched once, and each thread keeps one context with SHA-256 set
 * that every call only re-keys. Between calls the context holds the last key (OpenSSL's HMAC
 * keeps a copy of it) and its inner and outer digest state, in the same heap that holds the
 * enrollment keys themselves; OpenSSL wipes them when the context is freed: when the thread ends,
 * or at once with hmac_sha256_forget, for callers that must not leave a key behind. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_key;
static EVP_MAC *mac_alg;

static void mac_ctx_free(void *ctx) {
    EVP_MAC_CTX_free(ctx);
}

static void mac_setup(void) {
    EVP_MAC *alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);

    if (alg != NULL && pthread_key_create(&mac_key, mac_ctx_free) != 0) {
        EVP_MAC_free(alg);
        alg = NULL;
    }
    mac_alg = alg;
}

/* The calling thread's HMAC-SHA256 context, made at its first use; NULL when OpenSSL fails. */
static EVP_MAC_CTX *thread_ctx(void) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx;

    if (pthread_once(&mac_once, mac_setup) != 0 || mac_alg == NULL)
        return NULL;
    ctx = pthread_getspecific(mac_key);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_MAC_CTX_new(mac_alg);
    if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1 ||
        pthread_setspecific(mac_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                unsigned char out[HMAC_SHA256_LEN]) {
    static const unsigned char empty[1];
    EVP_MAC_CTX *ctx = thread_ctx();
    size_t len = 0;

    /* OpenSSL's HMAC takes the key length as an int: refuse rather than truncate it silently. */
    if (ctx == NULL || keylen > (size_t)INT_MAX)
        return -1;
    /* An empty key or message may come as NULL. A NULL key would tell EVP_MAC_init to keep the
     * previous call's key, so an empty one is always passed as a valid pointer. */
    if (key == NULL)
        key = empty;
    if (msg == NULL)
        msg = empty;
    if (EVP_MAC_init(ctx, key, keylen, NULL) != 1 || EVP_MAC_update(ctx, msg, msglen) != 1 ||
        EVP_MAC_final(ctx, out, &len, HMAC_SHA256_LEN) != 1 || len != HMAC_SHA256_LEN)
        return -1;
    return 0;
}

void hmac_sha256_forget(void) {
    EVP_MAC_CTX *ctx;

    /* Before the first use there is no key slot, and so nothing to forget. */
    if (pthread_once(&mac_once, mac_setup) != 0 || mac_alg == NULL)
        return;
    ctx = pthread_getspecific(mac_key);
    if (ctx == NULL)
        return;
    /* The slot is emptied first: the next call makes a new context rather than using a freed
     * one. EVP_MAC_CTX_free cleanses the key and the digest state. */
    pthread_setspecific(mac_key, NULL);
    EVP_MAC_CTX_free(ctx);
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
