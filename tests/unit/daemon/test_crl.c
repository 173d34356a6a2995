/* The CRL kept in memory (crl.c) when it cannot be signed anew: the one before is served past
 * the first half of its validity, but not once it lacks a revocation the store holds, nor once
 * its nextUpdate has passed. The clock crl.c and ca.c read is the test's (time_now_unix and time
 * are wrapped at link time), so that hours pass at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "ca.h"
#include "crl.h"
#include "pki.h"
#include "store.h"
#include "store_fixture.h"

#define NEXT_UPDATE_S 3600

/* What the test adds to the real clock. */
static int64_t skew;

int64_t __real_time_now_unix(void);
int64_t __wrap_time_now_unix(void);
time_t __real_time(time_t *t);
time_t __wrap_time(time_t *t);

int64_t __wrap_time_now_unix(void) {
    return __real_time_now_unix() + skew;
}

time_t __wrap_time(time_t *t) {
    time_t now = __real_time(NULL) + (time_t)skew;

    if (t)
        *t = now;
    return now;
}

struct crl_fx {
    struct fx *store;
    struct ca *ca;
    struct crl_cache *cc;
};

static char *path_of(const char *d, const char *name) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", d, name) > 0);
    return p;
}

/* A root and an issuing CA in D/ca, as `provd init` lays them out. */
static void write_cas(const char *d) {
    EVP_PKEY *root_key = pki_key_new(), *issuing_key = pki_key_new();
    X509 *root, *issuing;
    char *cadir = path_of(d, "ca"), *cert = path_of(cadir, "issuing.pem");
    char *key = path_of(cadir, "issuing.key"), *chain = path_of(cadir, "chain.pem");

    assert_non_null(root_key);
    assert_non_null(issuing_key);
    assert_non_null(root = pki_root_new(root_key, "crl test root", 365));
    assert_non_null(issuing =
                        pki_issuing_new(issuing_key, root, root_key, "crl test issuing", 365));
    X509 *const pair[2] = {issuing, root};
    assert_int_equal(mkdir(cadir, 0700), 0);
    assert_int_equal(pki_write_cert(cert, issuing), 0);
    assert_int_equal(pki_write_key(key, issuing_key, 1), 0);
    assert_int_equal(pki_write_certs(chain, pair, 2), 0);
    X509_free(root);
    X509_free(issuing);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(issuing_key);
    free(cadir);
    free(cert);
    free(key);
    free(chain);
}

static int setup(void **state) {
    struct crl_fx *f = calloc(1, sizeof(*f));
    void *st = NULL;
    char err[512];

    assert_non_null(f);
    skew = 0;
    fx_open(&st);
    f->store = st;
    write_cas(f->store->dir);
    if (ca_load(f->store->dir, NULL, &f->ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "ca_load: %s\n", err);
        return -1;
    }
    assert_non_null(f->cc = crl_cache_new(f->ca, NEXT_UPDATE_S));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct crl_fx *f = *state;
    void *st = f->store;

    crl_cache_free(f->cc);
    ca_free(f->ca);
    free(f);
    return fx_close(&st);
}

/* Runs sql on the store's database through a connection of its own. */
static void db_exec(struct crl_fx *f, const char *sql) {
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(f->store->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* From now on no new CRL can be signed: the store has no CRL number left to take. */
static void break_signing(struct crl_fx *f) {
    db_exec(f, "DELETE FROM meta WHERE key = 'crl_number'");
}

static uint64_t fresh_number(struct crl_fx *f) {
    struct crl_blob *b = crl_fresh(f->cc, f->store->c);
    uint64_t n;

    assert_non_null(b);
    n = b->number;
    crl_blob_release(b);
    return n;
}

static void test_served_until_next_update(void **state) {
    struct crl_fx *f = *state;

    assert_int_equal(crl_refresh(f->cc, f->store->c), 0);
    assert_int_equal(fresh_number(f), 1);
    skew = NEXT_UPDATE_S / 2 + 1; /* stale: a new one is signed */
    assert_int_equal(fresh_number(f), 2);
    break_signing(f);
    skew += NEXT_UPDATE_S / 2 + 1; /* stale, and cannot be signed: the one before is valid */
    assert_int_equal(fresh_number(f), 2);
    skew += NEXT_UPDATE_S / 2; /* past its nextUpdate */
    assert_null(crl_fresh(f->cc, f->store->c));
}

/* A CA that expires before next_update_s ends its CRLs' validity sooner: a new one is signed
 * from half that shorter validity on. */
static void test_refreshed_before_ca_expiry(void **state) {
    struct crl_fx *f = *state;

    skew = 365 * 86400 - 600;
    assert_int_equal(crl_refresh(f->cc, f->store->c), 0);
    struct crl_blob *b = crl_current(f->cc);
    assert_non_null(b);
    assert_true(b->next_update - b->signed_at <= 600);
    crl_blob_release(b);
    skew += 301;
    assert_int_equal(fresh_number(f), 2);
}

static void test_not_served_lacking_a_revocation(void **state) {
    struct crl_fx *f = *state;

    assert_int_equal(crl_refresh(f->cc, f->store->c), 0);
    break_signing(f);
    db_exec(f, "UPDATE meta SET value = value + 1 WHERE key = 'revocations'");
    assert_null(crl_fresh(f->cc, f->store->c));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_served_until_next_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refreshed_before_ca_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_served_lacking_a_revocation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
