/* durable_replace: a file replaced whole, of the mode asked for, flushed and its directory too
 * (fsync is wrapped at link time to see what is flushed), and nothing left beside it when it
 * fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"

/* What fsync was called on, in order. */
static char synced[4][512];
static int nsynced;

int __real_fsync(int fd);
int __wrap_fsync(int fd);

int __wrap_fsync(int fd) {
    char link[64];
    if (nsynced < 4) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, synced[nsynced], sizeof(synced[0]) - 1);
        synced[nsynced][n > 0 ? n : 0] = '\0';
    }
    nsynced++;
    return __real_fsync(fd);
}

struct dir {
    char path[64];
};

static int setup(void **state) {
    struct dir *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    snprintf(d->path, sizeof(d->path), "/tmp/test_durable.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    *state = d;
    return 0;
}

static int teardown(void **state) {
    struct dir *d = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
    free(d);
    return 0;
}

static char *join(const struct dir *d, const char *name) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", d->path, name) > 0);
    return p;
}

/* The whole content of path, NUL-terminated. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    static char buf[256];
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_replaces(void **state) {
    struct dir *d = *state;
    char *path = join(d, "f.pem"), *tmp = join(d, "f.pem.tmp"), err[256];
    struct stat st;

    nsynced = 0;
    assert_int_equal(durable_replace(path, "first\n", 6, 0600, err, sizeof(err)), 0);
    assert_string_equal(slurp(path), "first\n");
    /* The new file before its rename, then the directory that holds it. */
    assert_int_equal(nsynced, 2);
    assert_string_equal(synced[0], tmp);
    assert_string_equal(synced[1], d->path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* A temporary file left by a crash is no obstacle; the mode is the one asked for, whatever
     * the umask. */
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fclose(f);
    mode_t old = umask(077);
    assert_int_equal(durable_replace(path, "second", 6, 0644, err, sizeof(err)), 0);
    umask(old);
    assert_string_equal(slurp(path), "second");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* Empty content. */
    assert_int_equal(durable_replace(path, "", 0, 0600, err, sizeof(err)), 0);
    assert_string_equal(slurp(path), "");
    free(path);
    free(tmp);
}

static void test_failures(void **state) {
    struct dir *d = *state;
    char *missing = join(d, "no/such/f"), *sub = join(d, "sub"), *subtmp = join(d, "sub.tmp");
    char err[256] = "";

    /* The directory does not exist: the temporary file is named. */
    assert_int_equal(durable_replace(missing, "x", 1, 0600, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no/such/f.tmp: No such file or directory"));
    /* A directory cannot be replaced by a file: the path is named and no temporary file is
     * left. */
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(durable_replace(sub, "x", 1, 0600, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/sub: "));
    assert_int_not_equal(access(subtmp, F_OK), 0);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(missing);
    free(sub);
    free(subtmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
