/* Percent-encoding as used in SAS tokens and URL paths. */
#ifndef PROV_COMMON_URLENC_H
#define PROV_COMMON_URLENC_H

#include <stddef.h>

/* Decodes %XX escapes (either case of hex) in the len bytes of s. '+' is left as is.
 * Returns a NUL-terminated string the caller frees, or NULL when an escape is malformed, the
 * result would contain a NUL byte, or memory runs out. */
char *url_decode(const char *s, size_t len);

/* Encodes every byte outside A-Z a-z 0-9 - . _ ~ as %XX. upper selects upper-case hex digits
 * (%2F) or lower-case (%2f), since real clients send both.
 * Returns a string the caller frees, or NULL when out of memory. */
char *url_encode(const char *s, int upper);

#endif
