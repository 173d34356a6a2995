/* The known-answer vectors of tests/data/crypto-vectors.json, for the unit tests that reproduce
 * them. */
#ifndef PROV_TEST_VECTORS_H
#define PROV_TEST_VECTORS_H

#include <jansson.h>

/* The whole vectors file, loaded by vectors_load and released by vectors_free. */
extern json_t *vectors;

/* cmocka group setup and teardown that load and release the file. */
int vectors_load(void **state);
int vectors_free(void **state);

/* The string field name of one vector; fails the running test when it is missing. */
const char *vector_str(json_t *obj, const char *name);

#endif
