/* Percent-encoding (common/urlenc.c): url_decode on raw bytes, the length of what it accepts, and
 * the round trip through url_encode in both hex cases, which must give back exactly the decoded
 * text. */
#include "fuzz.h"
#include "urlenc.h"

static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int hexdigit(unsigned char c, int upper) {
    return (c >= '0' && c <= '9') || (upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f'));
}

/* Checks that enc is in the form url_encode promises: unreserved bytes and %XX escapes only. */
static void check_encoded(const char *enc, int upper) {
    for (const unsigned char *p = (const unsigned char *)enc; *p != '\0'; p++) {
        if (unreserved(*p))
            continue;
        if (p[0] != '%' || !hexdigit(p[1], upper) || !hexdigit(p[2], upper))
            abort();
        p += 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *dec = url_decode((const char *)data, size);
    size_t declen, escapes = 0;

    if (dec == NULL)
        return 0;
    declen = strlen(dec);
    /* Each escape turns three bytes into one; a NUL, literal or escaped, would show here as a
     * shorter string, since it must always be refused. */
    for (size_t i = 0; i < size; i++)
        escapes += data[i] == '%';
    if (memchr(data, '\0', size) != NULL || declen != size - 2 * escapes)
        abort();
    if (escapes == 0 && memcmp(dec, data, size) != 0)
        abort();
    for (int upper = 0; upper <= 1; upper++) {
        char *enc = url_encode(dec, upper), *back;

        if (enc == NULL)
            abort();
        check_encoded(enc, upper);
        back = url_decode(enc, strlen(enc));
        if (back == NULL || strcmp(back, dec) != 0)
            abort();
        free(back);
        free(enc);
    }
    free(dec);
    return 0;
}
