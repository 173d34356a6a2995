/* Unit tests for the key files of lib/csr.c in a process whose application set up a small secure
 * heap of OpenSSL's: the keys are read all the same. The secure heap is the whole process's and
 * cannot be undone, hence a test program of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "prov/prov.h"

/* Smaller than the largest key file the library reads (64 KiB), large enough for what OpenSSL's
 * PEM reader keeps there of one key. */
#define SECURE_HEAP (16 * 1024)

static char dir[] = "/tmp/test_key_secmem.XXXXXX";

/* Writes key as PKCS#8 PEM to dir/name and returns the path (static buffer). */
static const char *key_file(const char *name, EVP_PKEY *key) {
    static char path[256];
    FILE *f;

    assert_non_null(key);
    assert_true(snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    EVP_PKEY_free(key);
    return path;
}

static void keys_are_read_with_a_small_secure_heap(void **state) {
    char why[512];
    prov_client *c = NULL;
    const char *path;

    (void)state;
    assert_int_equal(CRYPTO_secure_malloc_initialized(), 1);
    path = key_file("p256.key", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    assert_int_equal(prov_check_key_file(path, why, sizeof(why)), PROV_OK);
    assert_int_equal(prov_client_new(&c), PROV_OK);
    assert_int_equal(prov_client_set_csr_key_file(c, path), PROV_OK);
    path = key_file("rsa.key", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072));
    assert_int_equal(prov_check_key_file(path, why, sizeof(why)), PROV_OK);
    assert_int_equal(prov_client_set_csr_key_file(c, path), PROV_OK);
    prov_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_read_with_a_small_secure_heap),
    };
    char cmd[64];
    int failed;

    if (CRYPTO_secure_malloc_init(SECURE_HEAP, 16) != 1 || mkdtemp(dir) == NULL)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        failed++;
    return failed;
}
