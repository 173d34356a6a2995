/* Loads the known-answer vectors for the unit tests. */
#include "vectors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

json_t *vectors;

int vectors_load(void **state) {
    json_error_t err;
    (void)state;
    vectors = json_load_file(PROV_TEST_DATA "/crypto-vectors.json", 0, &err);
    if (vectors == NULL) {
        print_error("cannot load %s: %s (line %d)\n", PROV_TEST_DATA "/crypto-vectors.json",
                    err.text, err.line);
        return -1;
    }
    return 0;
}

int vectors_free(void **state) {
    (void)state;
    json_decref(vectors);
    vectors = NULL;
    return 0;
}

const char *vector_str(json_t *obj, const char *name) {
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL)
        fail_msg("vector field \"%s\" missing or not a string", name);
    return s;
}
