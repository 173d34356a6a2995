/* A fresh SQLite store in a temporary directory, for the store's unit tests. */
#include "store_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int fx_open(void **state) {
    struct fx *f = calloc(1, sizeof(*f));
    char uri[160], err[256] = "";

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/provd-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/provd.db", f->dir);
    snprintf(uri, sizeof(uri), "sqlite:%s", f->path);
    assert_int_equal(store_open(uri, &f->st, err, sizeof(err)), STORE_OK);
    assert_string_equal(err, "");
    assert_int_equal(store_conn_open(f->st, &f->c), STORE_OK);
    *state = f;
    return 0;
}

int fx_close(void **state) {
    struct fx *f = *state;

    store_conn_close(f->c);
    store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}
