/* Files replaced so that a crash leaves the old content or the new, and a success is on disk. */
#ifndef PROV_COMMON_DURABLE_H
#define PROV_COMMON_DURABLE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with the len bytes at data, of mode mode: written to "PATH.tmp", flushed to
 * disk, renamed over path, and the directory flushed so that the rename is on disk too. Nothing
 * is copied (data may be a secret). Returns 0, or -1 with the reason in err (errlen bytes); the
 * temporary file is removed then. */
int durable_replace(const char *path, const void *data, size_t len, mode_t mode, char *err,
                    size_t errlen);

#endif
