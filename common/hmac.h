/* HMAC-SHA256 and the device-key derivations built on it. */
#ifndef PROV_COMMON_HMAC_H
#define PROV_COMMON_HMAC_H

#include <stddef.h>

#define HMAC_SHA256_LEN 32

/* out = HMAC-SHA256(key, msg); key and msg may be NULL when their length is 0. Safe to call from
 * any thread. Returns 0, or -1 when the crypto library fails. */
int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                unsigned char out[HMAC_SHA256_LEN]);

/* Frees the calling thread's HMAC context, which keeps the last key between calls, wiping that
 * key; the next hmac_sha256 makes a new one. Callers that hold a secret only briefly (a device
 * signing one token) call it after their last use; a server signing many keeps the context.
 * Safe to call at any time, any number of times. */
void hmac_sha256_forget(void);

/* The DPS group derivation: base64(HMAC-SHA256(base64decode(group_key_b64), id)).
 * Returns a string the caller frees with free(), or NULL with *why set (bad base64, ...). */
char *derive_device_key(const char *group_key_b64, const char *id, const char **why);

/* The seed document's form: base64(HMAC-SHA256(raw secret bytes, id)).
 * Returns a string the caller frees with free(), or NULL when out of memory. */
char *derive_raw_secret(const char *secret, size_t secretlen, const char *id);

#endif
