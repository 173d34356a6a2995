/* Registration ID rules of DESIGN.md. */
#include "regid.h"

#include <stddef.h>

static int is_special(char c) {
    return c == '-' || c == '.' || c == '_' || c == ':';
}

static int is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int refuse(const char **why, const char *reason) {
    if (why != NULL)
        *why = reason;
    return -1;
}

int regid_check(const char *id, const char **why) {
    size_t n;

    if (id == NULL || id[0] == '\0')
        return refuse(why, "empty");
    /* Scan no further than one past the limit, so a hostile megabyte costs nothing. */
    for (n = 0; id[n] != '\0'; n++) {
        if (n == REGID_MAX)
            return refuse(why, "longer than 128 characters");
        if (!is_alnum(id[n]) && !is_special(id[n]))
            return refuse(why, "forbidden character");
    }
    if (is_special(id[0]) || is_special(id[n - 1]))
        return refuse(why, "starts or ends with a special character");
    return 0;
}

void regid_lower(char *id) {
    if (id == NULL)
        return;
    for (; *id != '\0'; id++) {
        if (*id >= 'A' && *id <= 'Z')
            *id = (char)(*id - 'A' + 'a');
    }
}
