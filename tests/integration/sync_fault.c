/* Loaded into provd with LD_PRELOAD: makes a sync of the store's write-ahead log fail with EIO,
 * as it does when the disk could not write what the kernel held for it, once each time the test
 * asks, so that the tests can drive provd's handling of a commit that failed at its fsync.
 *
 * PROVD_TEST_SYNC_FAIL=FILE in the environment: while FILE exists, the next fsync or fdatasync
 * of a file whose name ends in "-wal" removes FILE and fails; unset, none does. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

/* Whether this sync of fd is the one to fail. */
static int fails(int fd) {
    static const char suffix[] = "-wal";
    const char *trigger = getenv("PROVD_TEST_SYNC_FAIL");
    char link[64], path[4096];
    ssize_t n;

    if (!trigger)
        return 0;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n < (ssize_t)sizeof(suffix) - 1)
        return 0;
    path[n] = '\0';
    if (strcmp(path + n - (sizeof(suffix) - 1), suffix) != 0)
        return 0;
    return unlink(trigger) == 0;
}

static int sync_with(const char *name, int fd) {
    sync_fn real;

    if (fails(fd)) {
        errno = EIO;
        return -1;
    }
    real = (sync_fn)dlsym(RTLD_NEXT, name);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd);
}

int fsync(int fd) {
    return sync_with("fsync", fd);
}

int fdatasync(int fd) {
    return sync_with("fdatasync", fd);
}
