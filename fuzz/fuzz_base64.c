/* Base64 (common/base64.c): the strict and the lenient decoder. The strict decoder accepts exactly
 * one spelling of each byte string, so whatever it accepts must be what b64_encode writes for the
 * decoded bytes; the lenient one must agree with the strict one once whitespace is removed. */
#include "base64.h"
#include "fuzz.h"

/* Returns the input without the whitespace b64_decode_lenient skips; *len is set to its length. */
static char *strip_space(const uint8_t *data, size_t size, size_t *len) {
    char *s = fuzz_cstr(data, size);
    size_t o = 0;

    for (size_t i = 0; i < size; i++)
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
            s[o++] = (char)data[i];
    s[o] = '\0';
    *len = o;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data, *why = NULL;
    unsigned char *out = NULL, *lout = NULL;
    size_t outlen = 0, loutlen = 0, slen;
    char *enc, *stripped;
    int strict_rc;

    strict_rc = b64_decode(in, size, &out, &outlen, &why);
    if (strict_rc == 0) {
        /* Decoded buffers are NUL-terminated for convenience. */
        if (out == NULL || out[outlen] != '\0' || outlen > size / 4 * 3)
            abort();
        enc = b64_encode(out, outlen);
        if (enc == NULL || strlen(enc) != size || memcmp(enc, data, size) != 0)
            abort();
        free(enc);
    } else if (out != NULL || why == NULL) {
        abort();
    }

    why = NULL;
    stripped = strip_space(data, size, &slen);
    if (b64_decode_lenient(in, size, &lout, &loutlen, &why) == 0) {
        if (lout == NULL || lout[loutlen] != '\0')
            abort();
        enc = b64_encode(lout, loutlen);
        if (enc == NULL || strlen(enc) != slen || memcmp(enc, stripped, slen) != 0)
            abort();
        free(enc);
        /* Whatever the strict decoder accepts, the lenient one accepts alike. */
        if (strict_rc == 0 && (loutlen != outlen || memcmp(lout, out, outlen) != 0))
            abort();
    } else if (lout != NULL || why == NULL || strict_rc == 0) {
        abort();
    }

    free(stripped);
    b64_free(out, outlen);
    b64_free(lout, loutlen);
    return 0;
}
