/* Files replaced durably: written beside, flushed, renamed over, and the rename flushed. */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Flushes the directory that holds path, so that a rename in it is on disk. Returns 0, or -1
 * with errno set. */
static int sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (n >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (n == 0)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd), saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int durable_replace(const char *path, const void *data, size_t len, mode_t mode, char *err,
                    size_t errlen) {
    char tmp[4096];
    const char *what = tmp;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path), fd = -1;

    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
        return -1;
    }
    unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0 ||
        fchmod(fd, mode) != 0)
        goto fail;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    int closed = close(fd);
    fd = -1;
    if (closed != 0)
        goto fail;
    what = path;
    if (rename(tmp, path) != 0)
        goto fail;
    if (sync_parent(path) != 0) {
        snprintf(err, errlen, "%s: replaced, but its directory could not be flushed: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
fail:;
    int saved = errno;
    snprintf(err, errlen, "%s: %s", what, strerror(saved));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}
