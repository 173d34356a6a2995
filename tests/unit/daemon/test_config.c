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
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/subdir", dir);
    rmdir(path);
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

/* Paths inside the data directory are not written, so the directory can move; nor is the
 * number of workers when it is the machine's number of CPUs. */
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
    assert_null(strstr(text, "\"workers\""));
    assert_non_null(strstr(text, "\"device_listen\""));
    config_free(&c);
}

/* Loads text as provd.json and checks the result, as provd serve does. */
static int load_checked(const char *text, char *err, size_t errlen) {
    struct provd_config c;
    write_conf(text);
    config_defaults(&c, dir);
    int rc = config_load(&c, err, errlen);
    if (rc == 0)
        rc = config_check(&c, err, errlen);
    config_free(&c);
    return rc;
}

static void expect_refused(const char *text, const char *fragment) {
    char err[256] = "";
    assert_int_equal(load_checked(text, err, sizeof(err)), -1);
    if (!strstr(err, fragment))
        fail_msg("error \"%s\" does not mention \"%s\"", err, fragment);
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

static void expect_loaded(const char *text) {
    char err[256] = "";
    if (load_checked(text, err, sizeof(err)) != 0)
        fail_msg("%s refused: %s", text, err);
}

/* The provd.json before + max letters + after loads; with one letter more it is refused with
 * fragment. */
static void expect_length_limit(const char *before, const char *after, size_t max,
                                const char *fragment) {
    char value[300], text[400];
    assert_true(max + 1 < sizeof(value));
    memset(value, 'a', max + 1);
    value[max + 1] = '\0';
    snprintf(text, sizeof(text), "%s%s%s", before, value, after);
    expect_refused(text, fragment);
    value[max] = '\0';
    snprintf(text, sizeof(text), "%s%s%s", before, value, after);
    expect_loaded(text);
}

/* The same settings as device_listen and as admin_listen. */
static void expect_listen_refused(const char *addr, const char *fragment) {
    char text[512];
    snprintf(text, sizeof(text), "{\"device_listen\": \"%s\"}", addr);
    expect_refused(text, fragment);
    snprintf(text, sizeof(text), "{\"admin_listen\": \"%s\", \"device_listen\": \"h:1\"}", addr);
    expect_refused(text, fragment);
}

static void test_listen_refusals(void **state) {
    (void)state;
    const char *port = "the port must be from 0 to 65535";
    expect_refused("{\"device_listen\": \"127.0.0.1:99999\"}",
                   "device_listen \"127.0.0.1:99999\": the port must be from 0 to 65535");
    expect_refused("{\"admin_listen\": \"127.0.0.1:65536\"}",
                   "admin_listen \"127.0.0.1:65536\": the port must be from 0 to 65535");
    expect_listen_refused("127.0.0.1:65536", port);
    expect_listen_refused("127.0.0.1:", port);
    expect_listen_refused("127.0.0.1:-1", port);
    expect_listen_refused("127.0.0.1:+80", port);
    expect_listen_refused("127.0.0.1:84a3", port);
    expect_listen_refused("127.0.0.1:008443", port);
    expect_listen_refused("127.0.0.1:18446744073709551617", port);
    expect_listen_refused("[::1]:99999", port);
    expect_listen_refused(":8443", "the host is missing");
    expect_listen_refused("[]:8443", "the host is missing");
    expect_listen_refused("127.0.0.1", "expected HOST:PORT or [IPV6]:PORT");
    expect_listen_refused("", "expected HOST:PORT or [IPV6]:PORT");
    expect_listen_refused("[::1]", "expected HOST:PORT or [IPV6]:PORT");
    expect_listen_refused("[::1]8443", "expected HOST:PORT or [IPV6]:PORT");
    expect_listen_refused("[::1:8443", "expected HOST:PORT or [IPV6]:PORT");

    expect_length_limit("{\"device_listen\": \"", ":8443\"}", 255,
                        "the host is longer than 255 characters");
}

static void test_listen_edges(void **state) {
    (void)state;
    expect_loaded("{\"device_listen\": \"127.0.0.1:0\", \"admin_listen\": \"127.0.0.1:0\"}");
    expect_loaded("{\"device_listen\": \"0.0.0.0:65535\", \"admin_listen\": \"[::1]:0\"}");
    expect_loaded("{\"device_listen\": \"[::1]:65535\", \"admin_listen\": \"[::]:1\"}");
    expect_loaded("{\"device_listen\": \"[::]:0\", \"admin_listen\": \"localhost:00001\"}");
    expect_loaded("{\"device_listen\": \"::1:9000\", \"admin_listen\": \"[fe80::1%lo]:9001\"}");

    /* Different addresses may share a port; one address (or a wildcard over it) may not. */
    expect_loaded("{\"device_listen\": \"127.0.0.1:9000\", \"admin_listen\": \"127.0.0.2:9000\"}");
    expect_loaded("{\"device_listen\": \"0.0.0.0:9000\", \"admin_listen\": \"[::1]:9000\"}");
    const char *shared = "would share port 9000";
    expect_refused("{\"device_listen\": \"127.0.0.1:9000\", \"admin_listen\": \"127.0.0.1:9000\"}",
                   "device_listen \"127.0.0.1:9000\" and admin_listen \"127.0.0.1:9000\" would "
                   "share port 9000");
    expect_refused("{\"device_listen\": \"0.0.0.0:9000\", \"admin_listen\": \"127.0.0.1:9000\"}",
                   shared);
    expect_refused("{\"device_listen\": \"[::1]:9000\", \"admin_listen\": \"[::]:9000\"}", shared);
    expect_refused("{\"device_listen\": \"[::]:9000\", \"admin_listen\": \"127.0.0.1:9000\"}",
                   shared);
    expect_refused("{\"device_listen\": \"[::1]:9000\", \"admin_listen\": \"0:0::1:9000\"}",
                   shared);
    expect_refused("{\"device_listen\": \"LocalHost:9000\", \"admin_listen\": \"localhost:9000\"}",
                   shared);
    expect_refused("{\"device_listen\": \"0.0.0.0:9000\", \"admin_listen\": \"localhost:9000\"}",
                   shared);
    /* The defaults: 0.0.0.0:8443 and 127.0.0.1:8444. */
    expect_refused("{\"admin_listen\": \"127.0.0.1:8443\"}", "would share port 8443");
}

/* The flags of provd serve land in the structure after the file: config_check sees them, and
 * only then are the values checked. */
static void test_check_after_flags(void **state) {
    (void)state;
    struct provd_config c;
    char err[256] = "";
    write_conf("{\"id_scope\": \"0ne00ABCDEF\"}");
    config_defaults(&c, dir);
    assert_int_equal(config_load(&c, err, sizeof(err)), 0);
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_set(&c.device_listen, "127.0.0.1:99999");
    assert_int_equal(config_check(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "device_listen \"127.0.0.1:99999\": the port must be from 0 to 65535");
    config_set(&c.device_listen, "127.0.0.1:0");
    config_set(&c.admin_listen, "[::1]:0");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_set(&c.log_level, "loud");
    assert_int_equal(config_check(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "log_level \"loud\""));
    config_free(&c);

    /* A file whose listeners would share a port loads; the flags that move them pass. */
    write_conf("{\"device_listen\": \"0.0.0.0:8555\", \"admin_listen\": \"127.0.0.1:8555\"}");
    config_defaults(&c, dir);
    assert_int_equal(config_load(&c, err, sizeof(err)), 0);
    assert_int_equal(config_check(&c, err, sizeof(err)), -1);
    config_set(&c.device_listen, "127.0.0.1:0");
    config_set(&c.admin_listen, "127.0.0.1:0");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_free(&c);
}

static void test_id_scope(void **state) {
    (void)state;
    expect_refused("{\"id_scope\": \"\"}", "id_scope \"\": empty");
    expect_refused("{\"id_scope\": \"a/b?c\"}", "id_scope \"a/b?c\": forbidden character");
    expect_refused("{\"id_scope\": \"-0ne00ABCDEF\"}", "id_scope \"-0ne00ABCDEF\"");
    expect_length_limit("{\"id_scope\": \"", "\"}", 128, "longer than 128 characters");
    expect_loaded("{\"id_scope\": \"0ne00ABCDEF\"}");
}

static void test_ca_files(void **state) {
    (void)state;
    static const char *const keys[] = {"event_ca_file", "allocation_ca_file"};
    char text[512], ca[128], sub[128], want[256];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(sub, sizeof(sub), "%s/subdir", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    FILE *f = fopen(ca, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\n", f);
    fclose(f);
    for (size_t i = 0; i < 2; i++) {
        const char *k = keys[i];
        snprintf(text, sizeof(text), "{\"%s\": \"%s/missing.pem\"}", k, dir);
        snprintf(want, sizeof(want), "%s \"%s/missing.pem\": No such file or directory", k, dir);
        expect_refused(text, want);
        snprintf(text, sizeof(text), "{\"%s\": \"%s\"}", k, sub);
        snprintf(want, sizeof(want), "%s \"%s\": not a regular file", k, sub);
        expect_refused(text, want);
        snprintf(text, sizeof(text), "{\"%s\": \"\"}", k);
        snprintf(want, sizeof(want), "%s \"\": No such file or directory", k);
        expect_refused(text, want);
        snprintf(text, sizeof(text), "{\"%s\": \"%s\"}", k, ca);
        expect_loaded(text);
        /* Permissions do not stop root. */
        if (geteuid() != 0) {
            assert_int_equal(chmod(ca, 0), 0);
            snprintf(want, sizeof(want), "%s \"%s\": Permission denied", k, ca);
            expect_refused(text, want);
            assert_int_equal(chmod(ca, 0600), 0);
        }
    }
}

static void test_other_settings(void **state) {
    (void)state;
    expect_refused("{\"log_level\": \"verbose\"}",
                   "log_level \"verbose\": must be error, warn, info or debug");
    expect_refused("{\"log_level\": \"INFO\"}", "log_level \"INFO\"");
    expect_loaded("{\"log_level\": \"debug\"}");

    expect_refused("{\"region\": \"eu west\"}", "region \"eu west\": must be 1 to 64");
    expect_refused("{\"region\": \"\"}", "region \"\"");
    expect_refused("{\"region\": \"-eu\"}", "region \"-eu\"");
    expect_length_limit("{\"region\": \"", "\"}", 64, "region \"aaa");
    expect_loaded("{\"region\": \"eu-west.1\"}");

    const char *secret = "allocation_secret: must be non-empty";
    expect_refused("{\"allocation_secret\": \"\"}", secret);
    expect_refused("{\"allocation_secret\": \"abc\\r\\nX-Other: 1\"}", secret);
    expect_refused("{\"allocation_secret\": \"abc\\t\"}", secret);
    expect_refused("{\"allocation_secret\": \" abc\"}", secret);
    expect_refused("{\"allocation_secret\": \"abc \"}", secret);
    expect_loaded("{\"allocation_secret\": \"s3cret with spaces!\"}");
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
        cmocka_unit_test_setup_teardown(test_listen_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_after_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_settings, setup, teardown),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
