/* A fresh SQLite store in a temporary directory, for the store's unit tests. */
#ifndef PROV_TEST_STORE_FIXTURE_H
#define PROV_TEST_STORE_FIXTURE_H

#include "store.h"

struct fx {
    char dir[64];
    char path[128];
    struct store *st;
    struct store_conn *c;
};

/* cmocka setup and teardown: *state becomes a struct fx with an open store and connection;
 * teardown closes them and removes the directory. */
int fx_open(void **state);
int fx_close(void **state);

#endif
