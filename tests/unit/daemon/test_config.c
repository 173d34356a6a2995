/* Settings: defaults, provd.json round trip, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/provd-config-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/provd.json", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_conf(const char *text) {
    char path[128];
    snprintf(path, sizeof(path), "%s/provd.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state) {
    (void)state;
    struct provd_config c;
    config_defaults(&c, "/var/lib/provd");
    assert_string_equal(c.device_listen, "0.0.0.0:8443");
    assert_string_equal(c.admin_listen, "127.0.0.1:8444");
    assert_string_equal(c.store, "sqlite:/var/lib/provd/provd.db");
    assert_string_equal(c.tls_cert, "/var/lib/provd/tls/server.pem");
    assert_string_equal(c.tls_key, "/var/lib/provd/tls/server.key");
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(c.idle_timeout_s, 60);
    assert_int_equal(c.sas_max_lifetime_s, 31536000);
    assert_true(c.workers >= 1);
    assert_null(c.id_scope);
    config_free(&c);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    struct provd_config c, d;
    char err[256];
    config_defaults(&c, dir);
    config_set(&c.id_scope, "0ne00ABCDEF");
    config_set(&c.device_listen, "[::1]:9443");
    c.workers = 3;
    c.max_body_bytes = 4096;
    assert_int_equal(config_save(&c, err, sizeof(err)), 0);

    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/provd.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    config_defaults(&d, dir);
    assert_int_equal(config_load(&d, err, sizeof(err)), 0);
    assert_string_equal(d.id_scope, "0ne00ABCDEF");
    assert_string_equal(d.device_listen, "[::1]:9443");
    assert_string_equal(d.store, c.store);
    assert_int_equal(d.workers, 3);
    assert_int_equal(d.max_body_bytes, 4096);
    config_free(&c);
    config_free(&d);
}

/* Paths inside the data directory are not written, so the directory can move. */
static void test_default_paths_not_saved(void **state) {
    (void)state;
    struct provd_config c;
    char err[256], path[128], text[4096] = "";
    config_defaults(&c, dir);
    assert_int_equal(config_save(&c, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/provd.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_null(strstr(text, "\"store\""));
    assert_null(strstr(text, "\"tls_cert\""));
    assert_non_null(strstr(text, "\"device_listen\""));
    config_free(&c);
}

static void expect_refused(const char *text, const char *fragment) {
    struct provd_config c;
    char err[256] = "";
    write_conf(text);
    config_defaults(&c, dir);
    assert_int_equal(config_load(&c, err, sizeof(err)), -1);
    if (!strstr(err, fragment))
        fail_msg("error \"%s\" does not mention \"%s\"", err, fragment);
    config_free(&c);
}

static void test_refusals(void **state) {
    (void)state;
    expect_refused("{\"workers\": 2, \"colour\": \"blue\"}", "unknown setting \"colour\"");
    expect_refused("{\"workers\": \"two\"}", "\"workers\" must be an integer");
    expect_refused("{\"workers\": 0}", "\"workers\" must be an integer from 1 to 256");
    expect_refused("{\"max_body_bytes\": 10}", "\"max_body_bytes\"");
    expect_refused("{\"id_scope\": 5}", "\"id_scope\" must be a string");
    expect_refused("[1, 2]", "not a JSON object");
    expect_refused("{\"workers\": 2,", "line 1");
    expect_refused("{\"workers\": 2, \"workers\": 3}", "duplicate");
}

static void test_missing_file(void **state) {
    (void)state;
    struct provd_config c;
    char err[256] = "";
    config_defaults(&c, "/nonexistent/provd-data");
    assert_int_equal(config_load(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/provd-data/provd.json"));
    config_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_paths_not_saved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
