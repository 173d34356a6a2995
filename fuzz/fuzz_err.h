/* Reasons that end up in a JSON answer, for the harnesses of functions that write one into a
 * caller's buffer: the buffer is armed with a canary beyond the length the function is given,
 * and the reason must be NUL-terminated within that length, leave the canary alone and be text
 * that jansson takes as a JSON string (well-formed UTF-8). */
#ifndef PROV_FUZZ_ERR_H
#define PROV_FUZZ_ERR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The size of the buffer a harness arms; the length it hands over is at most this. */
#define FUZZ_ERR_SIZE   1024
#define FUZZ_ERR_CANARY 0xa5

/* Fills the FUZZ_ERR_SIZE bytes at err with the canary. */
static inline void fuzz_err_arm(char *err) {
    memset(err, FUZZ_ERR_CANARY, FUZZ_ERR_SIZE);
}

/* Aborts, naming harness and call, unless the errlen bytes at err (errlen from 1 to
 * FUZZ_ERR_SIZE) hold a NUL-terminated reason and the rest of the buffer still holds the canary.
 * When refused, the reason must also be valid UTF-8, and not empty when errlen leaves room for
 * one character. */
static inline void fuzz_err_check(const char *harness, const char *call, const char *err,
                                  size_t errlen, int refused) {
    json_t *s;

    if (errlen == 0 || errlen > FUZZ_ERR_SIZE)
        abort();
    for (size_t i = errlen; i < FUZZ_ERR_SIZE; i++) {
        if ((unsigned char)err[i] != FUZZ_ERR_CANARY) {
            fprintf(stderr, "%s: %s wrote byte %zu of its %zu-byte error buffer\n", harness, call,
                    i, errlen);
            abort();
        }
    }
    if (memchr(err, '\0', errlen) == NULL) {
        fprintf(stderr, "%s: %s left its error buffer without a NUL\n", harness, call);
        abort();
    }
    if (!refused)
        return;
    if (errlen > 1 && err[0] == '\0') {
        fprintf(stderr, "%s: %s refused without a reason\n", harness, call);
        abort();
    }
    if ((s = json_string(err)) == NULL) {
        fprintf(stderr, "%s: %s gave a reason that is not UTF-8: %s\n", harness, call, err);
        abort();
    }
    json_decref(s);
}

#endif
