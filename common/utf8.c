/* UTF-8 repair. See utf8.h. */
#include "utf8.h"

#include <stddef.h>

void utf8_repair(char *s) {
    unsigned char *p = (unsigned char *)s;

    while (*p != '\0') {
        size_t n = p[0] < 0x80   ? 1
                   : p[0] < 0xc2 ? 0
                   : p[0] < 0xe0 ? 2
                   : p[0] < 0xf0 ? 3
                   : p[0] < 0xf5 ? 4
                                 : 0;
        size_t i = 1;

        while (i < n && (p[i] & 0xc0) == 0x80)
            i++;
        /* Overlong forms, surrogates and code points past U+10FFFF are not characters. */
        if (n == 0 || i < n || (p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
            (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f)) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}
