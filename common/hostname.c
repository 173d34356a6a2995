/* Host name rules (RFC 1123). */
#include "hostname.h"

#include <stddef.h>

#define LABEL_MAX 63

static int refuse(const char **why, const char *reason) {
    if (why != NULL)
        *why = reason;
    return -1;
}

int hostname_check(const char *s, const char **why) {
    size_t n, label = 0;

    if (s == NULL || s[0] == '\0')
        return refuse(why, "empty");
    /* Scan no further than one past the limit, so a hostile megabyte costs nothing. */
    for (n = 0; s[n] != '\0'; n++) {
        char c = s[n];

        if (n == HOSTNAME_MAX)
            return refuse(why, "longer than 253 characters");
        if (c == '.') {
            if (label == 0)
                return refuse(why, "empty label");
            if (s[n - 1] == '-')
                return refuse(why, "a label ends with a hyphen");
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return refuse(why, "forbidden character (letters, digits, '-' and '.' only)");
        if (c == '-' && label == 0)
            return refuse(why, "a label starts with a hyphen");
        if (++label > LABEL_MAX)
            return refuse(why, "a label is longer than 63 characters");
    }
    if (label == 0)
        return refuse(why, "empty label");
    if (s[n - 1] == '-')
        return refuse(why, "a label ends with a hyphen");
    return 0;
}
