/* The entry point every harness defines. libFuzzer calls it once per input; driver.c calls it
 * once per corpus file, so the same harness runs under the fuzzer and in the test suite. */
#ifndef PROV_FUZZ_H
#define PROV_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs the parser under test on the size bytes at data. Returns 0 (libFuzzer reserves other
 * values); a broken property ends the process with abort(). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns a NUL-terminated copy of the input for parsers that take C strings, exactly size + 1
 * bytes long so that AddressSanitizer sees a read past the terminator. Aborts when out of memory:
 * a harness has no other way to report it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A file in a directory of its own, for parsers that read files rather than buffers. */
struct fuzz_file {
    char dir[64];
    char path[96];
};

/* The one fuzz_file of the process. */
static inline struct fuzz_file *fuzz_file_state(void) {
    static struct fuzz_file f;
    return &f;
}

/* Removes the file and its directory; registered with atexit. */
static inline void fuzz_file_cleanup(void) {
    struct fuzz_file *f = fuzz_file_state();

    unlink(f->path);
    rmdir(f->dir);
}

/* Writes the input to the file name in a directory made at the first call, under $TMPDIR (else
 * /tmp) with a name starting with prefix, and removed at exit. Returns the directory, which the
 * process keeps. Aborts, naming harness in the message, when the directory or the file cannot be
 * written: a harness has no other way to report it. */
static inline const char *fuzz_write_file(const char *harness, const char *prefix, const char *name,
                                          const uint8_t *data, size_t size) {
    struct fuzz_file *f = fuzz_file_state();
    const char *tmp = getenv("TMPDIR");
    FILE *out;

    if (f->dir[0] == '\0') {
        if (tmp == NULL || tmp[0] == '\0' ||
            (size_t)snprintf(f->dir, sizeof(f->dir), "%s/%s-XXXXXX", tmp, prefix) >= sizeof(f->dir))
            snprintf(f->dir, sizeof(f->dir), "/tmp/%s-XXXXXX", prefix);
        if (mkdtemp(f->dir) == NULL) {
            fprintf(stderr, "%s: mkdtemp: %s\n", harness, strerror(errno));
            abort();
        }
        if ((size_t)snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name) >= sizeof(f->path)) {
            fprintf(stderr, "%s: %s/%s: path too long\n", harness, f->dir, name);
            abort();
        }
        atexit(fuzz_file_cleanup);
    }
    out = fopen(f->path, "wb");
    if (out == NULL || (size > 0 && fwrite(data, 1, size, out) != size) || fclose(out) != 0) {
        fprintf(stderr, "%s: %s: %s\n", harness, f->path, strerror(errno));
        abort();
    }
    return f->dir;
}

#endif
