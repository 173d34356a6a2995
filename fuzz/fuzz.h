/* The entry point every harness defines. libFuzzer calls it once per input; driver.c calls it
 * once per corpus file, so the same harness runs under the fuzzer and in the test suite. */
#ifndef PROV_FUZZ_H
#define PROV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

#endif
