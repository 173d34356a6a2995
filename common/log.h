/* The small log API of the programs (not of libprov, which logs through a callback).
 * Lines go to stderr as: 2026-11-26T01:02:03.123Z level=info msg text key=value ...
 * The level is checked before any formatting happens. Never pass keys or tokens. */
#ifndef PROV_COMMON_LOG_H
#define PROV_COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_threshold;

/* Sets the threshold from a name (error, warn, info, debug). Returns 0, or -1 for an unknown
 * name (the threshold is then unchanged). */
int log_set_level_name(const char *name);

void log_write(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text of a value logged between double quotes (key="%s"): s with a backslash before each
 * '"' and '\\', so that a value quoting what a device sent cannot end its field and forge others.
 * Written into out (cap bytes, at least 1), cut short rather than overflowing. Returns out. */
const char *log_quoted(const char *s, char *out, size_t cap);

#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) <= log_threshold)                                                                \
            log_write((lvl), __VA_ARGS__);                                                         \
    } while (0)
#define log_error(...) log_at(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
