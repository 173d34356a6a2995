/* One line per call on stderr, each written with a single stdio call so that lines from
 * concurrent threads never interleave: stdio locks the stream for the whole call and stderr is
 * unbuffered, so the line reaches the file descriptor at once. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

enum log_level log_threshold = LOG_LVL_INFO;

/* A line longer than this is cut (and marked) rather than costing unbounded memory. */
#define LOG_LINE_MAX 16384

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_set_level_name(const char *name) {
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            log_threshold = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Writes "2026-11-26T01:02:03.123Z" (24 characters and the NUL) into out: the DPS timestamp cut
 * to milliseconds. */
static void stamp(char out[25]) {
    char full[TIME_DPS_LEN];

    time_now_dps(full);
    memcpy(out, full, 23);
    out[23] = 'Z';
    out[24] = '\0';
}

/* Replaces control characters in the message with '?': messages may quote what a device sent,
 * and a line break there must not be able to end the entry early and forge another. */
static void defang(char *s, size_t len) {
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            s[i] = '?';
    }
}

const char *log_quoted(const char *s, char *out, size_t cap) {
    size_t o = 0;

    for (; *s; s++) {
        int escape = *s == '"' || *s == '\\';
        if (o + (size_t)escape + 1 >= cap)
            break;
        if (escape)
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = '\0';
    return out;
}

void log_write(enum log_level lvl, const char *fmt, ...) {
    static const char cut[] = "...";
    int saved_errno = errno;
    char small[1024], *line = small;
    const char *name = "info";
    size_t cap = sizeof(small), prefix, msglen;
    char ts[25];
    va_list ap;
    int n;

    if ((unsigned)lvl < sizeof(level_names) / sizeof(level_names[0]))
        name = level_names[lvl];
    stamp(ts);

    n = snprintf(line, cap, "%s level=%s ", ts, name);
    if (n < 0 || (size_t)n >= cap)
        goto out;
    prefix = (size_t)n;
    va_start(ap, fmt);
    n = vsnprintf(line + prefix, cap - prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto out;
    msglen = (size_t)n;

    /* Most lines fit on the stack; a longer one is formatted again into the heap, up to the cap,
     * and one longer still is cut and marked. Room is kept for the newline and the NUL. */
    if (prefix + msglen + 2 > cap) {
        size_t want = prefix + msglen + 2 < LOG_LINE_MAX ? prefix + msglen + 2 : LOG_LINE_MAX;
        char *big = malloc(want);
        if (big != NULL) {
            memcpy(big, line, prefix);
            line = big;
            cap = want;
            va_start(ap, fmt);
            n = vsnprintf(line + prefix, cap - prefix, fmt, ap);
            va_end(ap);
            if (n < 0)
                goto out;
        }
        if (prefix + msglen + 2 > cap) {
            msglen = cap - 2 - prefix;
            memcpy(line + prefix + msglen - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
        }
    }
    defang(line + prefix, msglen);
    line[prefix + msglen] = '\n';
    line[prefix + msglen + 1] = '\0';
    fputs(line, stderr);
out:
    if (line != small)
        free(line);
    errno = saved_errno;
}
