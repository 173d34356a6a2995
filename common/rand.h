/* Random bytes from the OS CSPRNG (through OpenSSL) and UUIDv4. */
#ifndef PROV_COMMON_RAND_H
#define PROV_COMMON_RAND_H

#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Fills buf with n random bytes. Returns 0, or -1 when no randomness could be had. */
int rand_bytes(void *buf, size_t n);

/* Writes a random (version 4, variant 10) UUID in lower-case canonical form.
 * Returns 0, or -1 when no randomness could be had. */
int uuid_v4(char out[UUID_STR_LEN]);

/* Returns base64 of n fresh random bytes (a generated symmetric key), freed by the caller with
 * free(); NULL on failure. */
char *rand_key_b64(size_t n);

#endif
