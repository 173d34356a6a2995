/* Preloaded into prov-agent: reports every heap block that is freed while it still holds text of
 * the private key in $KEY_SCAN_FILE, an EC P-256 key in PKCS#8 PEM (what openssl genpkey and
 * openssl req -newkey write, and prov-agent --csr keeps). What it looks for is the private
 * scalar alone: the base64 characters 48 to 91 of the body, which encode bytes 36 to 68 of the
 * DER, the rest being the algorithm's identifier and the public key, which certificates hold too.
 * Each block found is a line "key_scan: ..." on standard error. Blocks that realloc moves are
 * not seen, nor what the process never frees. */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's own free, which the one below stands in front of. */
extern void __libc_free(void *p);

#define NEEDLE_LEN 16

static char needles[3][NEEDLE_LEN];
static int loaded, n_needles;

/* Reads the key file with read(2), which allocates nothing, and keeps three windows of the
 * private scalar's base64: the end of the body's first line (characters 48 to 63) and the
 * start of its second (64 to 79, and 76 to 91). */
static void load(void) {
    const char *path = getenv("KEY_SCAN_FILE");
    char buf[4096], *line, *next;
    ssize_t n;
    int fd, body_line = 0;

    loaded = 1;
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    for (line = buf; line != NULL && body_line < 2; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] == '-' || strlen(line) < 64)
            continue;
        if (body_line++ == 0) {
            memcpy(needles[n_needles++], line + 48, NEEDLE_LEN);
        } else {
            memcpy(needles[n_needles++], line, NEEDLE_LEN);
            memcpy(needles[n_needles++], line + 12, NEEDLE_LEN);
        }
    }
}

/* 1 when the block at p holds one of the needles. */
static int holds_key(const void *p) {
    size_t size = malloc_usable_size((void *)p);
    int i;

    for (i = 0; i < n_needles; i++) {
        if (memmem(p, size, needles[i], NEEDLE_LEN) != NULL)
            return 1;
    }
    return 0;
}

void free(void *p) {
    if (!loaded)
        load();
    if (p != NULL && holds_key(p)) {
        char msg[160];
        int len = snprintf(msg, sizeof(msg),
                           "key_scan: a block of %zu bytes freed with text of the private key\n",
                           malloc_usable_size(p));
        /* When standard error is gone there is no one to tell. */
        ssize_t written = write(STDERR_FILENO, msg, (size_t)len);

        (void)written;
    }
    __libc_free(p);
}
