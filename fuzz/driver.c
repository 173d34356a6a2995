/* A main() for the harnesses when libFuzzer is not available: runs LLVMFuzzerTestOneInput once on
 * every file named on the command line and on every file of every directory named there (not
 * recursively; names starting with '.' are skipped). CTest runs it over the seed corpora, so the
 * regular and the sanitizer builds check each harness and its properties on every test run.
 * Exits 0 when at least one input ran, 1 when an argument cannot be read or nothing ran. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads the whole file into a buffer of exactly its size, so that a harness reading one byte too
 * far trips AddressSanitizer as it would under libFuzzer. */
static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot tell its size\n", path);
        goto out;
    }
    /* malloc(0) may return NULL, so the empty file gets one byte that the harness never sees. */
    buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        goto out;
    }
    if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: short read\n", path);
        goto out;
    }
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int run_dir(const char *dir, size_t *count) {
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path)) {
            fprintf(stderr, "%s/%s: path too long\n", dir, de->d_name);
            rc = -1;
            continue;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (run_file(path) != 0)
            rc = -1;
        else
            (*count)++;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    size_t count = 0;
    int failed = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            failed |= run_dir(argv[i], &count) != 0;
        } else if (run_file(argv[i]) == 0) {
            count++;
        } else {
            failed = 1;
        }
    }
    printf("%s: %zu inputs replayed\n", argc > 0 ? argv[0] : "replay", count);
    return failed || count == 0 ? 1 : 0;
}
