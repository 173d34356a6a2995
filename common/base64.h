/* Base64 (RFC 4648, standard alphabet) encoding and strict decoding. */
#ifndef PROV_COMMON_BASE64_H
#define PROV_COMMON_BASE64_H

#include <stddef.h>

/* Encodes len bytes of in with padding and no line breaks.
 * Returns a NUL-terminated string the caller frees with free(), or NULL when out of memory. */
char *b64_encode(const void *in, size_t len);

/* Decodes the inlen characters of in strictly: standard alphabet only, padding required, no
 * whitespace, no characters after the padding, unused bits zero.
 * On success returns 0 and sets *out to a buffer of *outlen bytes (NUL-terminated for
 * convenience, not counted) that the caller frees with b64_free().
 * On failure returns -1, sets *out to NULL and, when why is not NULL, *why to a static
 * human-readable reason ("invalid character", "bad length", ...). */
int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen, const char **why);

/* Like b64_decode but skips ASCII whitespace (CR, LF, space, tab) anywhere in the input, as
 * PEM-style bodies and EST clients send it. Everything else is as strict. */
int b64_decode_lenient(const char *in, size_t inlen, unsigned char **out, size_t *outlen,
                       const char **why);

/* Wipes and frees a buffer returned by b64_decode (decoded keys are secrets). NULL is ignored. */
void b64_free(unsigned char *buf, size_t len);

#endif
