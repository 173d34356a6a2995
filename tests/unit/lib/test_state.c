/* Unit tests for lib/state.c: identity.json written atomically with private permissions and
 * read back field by field; every damaged file of tests/data/state/corrupt is reported as
 * corrupt, never as absent, and left as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prov/prov.h"

#define CORRUPT_DIR PROV_TEST_DATA "/state/corrupt"
/* The length of a directory path that leaves no room for ".identity.json.tmp-XXXXXX" in it. */
#define DEEP_LEN (4096 - 20)

static char base[] = "/tmp/test_state.XXXXXX";

static int make_base(void **state) {
    (void)state;
    return mkdtemp(base) != NULL ? 0 : -1;
}

static int remove_base(void **state) {
    char cmd[64];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* out = a + "/" + b; the test fails rather than truncate. */
static void join(char *out, size_t len, const char *a, const char *b) {
    assert_true(snprintf(out, len, "%s/%s", a, b) < (int)len);
}

/* A fresh path under the temporary directory (not created). */
static const char *path_for(const char *name) {
    static char path[512];

    join(path, sizeof(path), base, name);
    return path;
}

/* dir + "/" + name, in a buffer of its own that the next call reuses. */
static const char *path_in_target(const char *dir, const char *name) {
    static char path[600];

    join(path, sizeof(path), dir, name);
    return path;
}

static void assigned(prov_result *r) {
    memset(r, 0, sizeof(*r));
    r->http_status = 200;
    r->operation_id = "op-1";
    r->status = "assigned";
    r->registration_id = "sensor-0001";
    r->device_id = "dev-0001";
    r->assigned_hub = "hub-a.example.com";
    r->substatus = "initialAssignment";
    r->created_at = "2026-11-26T01:02:03.1234567Z";
    r->updated_at = "2026-11-26T01:02:04.1234567Z";
    r->etag = "AAAAAAAAAAE=";
    r->enrollment_group_id = "fleet";
    r->payload = "{\"interval\":30,\"topics\":[\"t/1\"]}";
}

static mode_t mode_of(const char *path) {
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static size_t count_entries(const char *dir) {
    struct dirent *e;
    size_t n = 0;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Writes len bytes of data as DIR/identity.json. */
static void write_state(const char *dir, const void *data, size_t len) {
    char path[512];
    FILE *f;

    mkdir(dir, 0700);
    join(path, sizeof(path), dir, "identity.json");
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void round_trip_keeps_every_field(void **state) {
    const char *dir = path_for("rt");
    char err[512], path[512];
    prov_result in, *out = NULL;

    (void)state;
    assigned(&in);
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_OK);
    assert_string_equal(err, "");
    assert_int_equal(prov_state_load(dir, &out, err, sizeof(err)), PROV_OK);
    assert_non_null(out);
    assert_int_equal(out->http_status, 0);
    assert_string_equal(out->operation_id, in.operation_id);
    assert_string_equal(out->status, in.status);
    assert_string_equal(out->registration_id, in.registration_id);
    assert_string_equal(out->device_id, in.device_id);
    assert_string_equal(out->assigned_hub, in.assigned_hub);
    assert_string_equal(out->substatus, in.substatus);
    assert_string_equal(out->created_at, in.created_at);
    assert_string_equal(out->updated_at, in.updated_at);
    assert_string_equal(out->etag, in.etag);
    assert_string_equal(out->enrollment_group_id, in.enrollment_group_id);
    assert_string_equal(out->payload, in.payload);
    assert_int_equal(out->error_code, 0);
    prov_result_free(out);

    /* Private: the directory 0700, the file 0600, and no temporary file left behind. */
    join(path, sizeof(path), dir, "identity.json");
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(count_entries(dir), 1);
}

static void optional_fields_may_be_absent(void **state) {
    const char *dir = path_for("minimal");
    char err[512];
    prov_result in, *out = NULL;

    (void)state;
    memset(&in, 0, sizeof(in));
    in.status = "assigned";
    in.registration_id = "r";
    in.device_id = "d";
    in.assigned_hub = "h";
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_OK);
    assert_int_equal(prov_state_load(dir, &out, err, sizeof(err)), PROV_OK);
    assert_string_equal(out->device_id, "d");
    assert_null(out->substatus);
    assert_null(out->payload);
    assert_null(out->enrollment_group_id);
    prov_result_free(out);
}

static void saving_again_replaces_the_state(void **state) {
    const char *dir = path_for("replace");
    char err[512];
    prov_result in, *out = NULL;

    (void)state;
    assigned(&in);
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_OK);
    in.device_id = "dev-0002";
    in.payload = NULL;
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_OK);
    assert_int_equal(prov_state_load(dir, &out, err, sizeof(err)), PROV_OK);
    assert_string_equal(out->device_id, "dev-0002");
    assert_null(out->payload);
    prov_result_free(out);
    assert_int_equal(count_entries(dir), 1);
}

static void a_wide_directory_is_made_private(void **state) {
    const char *dir = path_for("wide");
    char err[512];
    prov_result in;

    (void)state;
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assigned(&in);
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_OK);
    assert_int_equal(mode_of(dir), 0700);
}

static void the_fixture_is_valid(void **state) {
    char err[512];
    prov_result *out = NULL;

    (void)state;
    /* tests/data/state/valid.json, loaded as a state file. */
    {
        FILE *f = fopen(PROV_TEST_DATA "/state/valid.json", "rb");
        char buf[4096];
        size_t n;

        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        write_state(path_for("fixture"), buf, n);
    }
    assert_int_equal(prov_state_load(path_for("fixture"), &out, err, sizeof(err)), PROV_OK);
    assert_string_equal(out->device_id, "sensor-0001");
    assert_string_equal(out->assigned_hub, "hub-b.example.com");
    assert_string_equal(out->payload, "{\"interval\":30,\"topics\":[\"telemetry/sensor-0001\"]}");
    prov_result_free(out);
}

static void absent_state_is_not_found(void **state) {
    static prov_result sentinel;
    char err[512];
    prov_result *out = &sentinel;

    (void)state;
    assert_int_equal(prov_state_load(path_for("never-made"), &out, err, sizeof(err)),
                     PROV_ERR_STATE_NOT_FOUND);
    assert_null(out);
    assert_int_equal(mkdir(path_for("empty-dir"), 0700), 0);
    assert_int_equal(prov_state_load(path_for("empty-dir"), &out, err, sizeof(err)),
                     PROV_ERR_STATE_NOT_FOUND);
    assert_non_null(strstr(err, "identity.json"));
}

static void every_corrupt_fixture_is_corrupt(void **state) {
    struct dirent *e;
    size_t n = 0;
    DIR *d = opendir(CORRUPT_DIR);

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char src[512], sub[300], err[512], before[4096], after[4096];
        prov_result *out = NULL;
        size_t len, len2;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        join(src, sizeof(src), CORRUPT_DIR, e->d_name);
        f = fopen(src, "rb");
        assert_non_null(f);
        len = fread(before, 1, sizeof(before), f);
        fclose(f);
        snprintf(sub, sizeof(sub), "corrupt-%s", e->d_name);
        write_state(path_for(sub), before, len);

        err[0] = '\0';
        if (prov_state_load(path_for(sub), &out, err, sizeof(err)) != PROV_ERR_STATE_CORRUPT)
            fail_msg("%s: not reported as corrupt (%s)", e->d_name, err);
        assert_null(out);
        assert_non_null(strstr(err, "identity.json"));
        print_message("%-28s %s\n", e->d_name, strstr(err, "identity.json"));

        /* Reading never changes the file. */
        join(src, sizeof(src), path_for(sub), "identity.json");
        f = fopen(src, "rb");
        assert_non_null(f);
        len2 = fread(after, 1, sizeof(after), f);
        fclose(f);
        assert_int_equal(len2, len);
        assert_memory_equal(before, after, len);
        n++;
    }
    closedir(d);
    assert_true(n >= 15);
}

static void not_a_regular_file_is_corrupt(void **state) {
    char err[512], path[512];
    prov_result *out = NULL;

    (void)state;
    assert_int_equal(mkdir(path_for("dir-state"), 0700), 0);
    join(path, sizeof(path), path_for("dir-state"), "identity.json");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(prov_state_load(path_for("dir-state"), &out, err, sizeof(err)),
                     PROV_ERR_STATE_CORRUPT);
    assert_non_null(strstr(err, "not a regular file"));
}

/* A FIFO where identity.json should be is not a state file: said so at once, rather than
 * waiting for a writer that may never come. */
static void a_fifo_is_corrupt_at_once(void **state) {
    char err[512], path[512];
    prov_result *out = NULL;

    (void)state;
    assert_int_equal(mkdir(path_for("fifo-state"), 0700), 0);
    join(path, sizeof(path), path_for("fifo-state"), "identity.json");
    assert_int_equal(mkfifo(path, 0600), 0);
    /* A read that waits for a writer ends the test here. */
    alarm(10);
    assert_int_equal(prov_state_load(path_for("fifo-state"), &out, err, sizeof(err)),
                     PROV_ERR_STATE_CORRUPT);
    alarm(0);
    assert_null(out);
    assert_non_null(strstr(err, "not a regular file"));
}

/* A state directory reached through a symbolic link is refused by every function that writes
 * or removes there, trailing slash or not, and nothing is written where the link points. */
static void a_symbolic_link_is_not_a_state_directory(void **state) {
    char err[512], link[512], slash[520], want[600], target[512], tmp[600];
    prov_result in;
    FILE *f;

    (void)state;
    assigned(&in);
    snprintf(target, sizeof(target), "%s", path_for("link-target"));
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(chmod(target, 0755), 0);
    join(link, sizeof(link), base, "link");
    assert_int_equal(symlink("link-target", link), 0);
    snprintf(slash, sizeof(slash), "%s/", link);
    snprintf(want, sizeof(want),
             "%s is a symbolic link: a state directory must be a directory itself", link);
    assert_int_equal(prov_state_prepare(link, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    assert_int_equal(prov_state_save(link, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_int_equal(prov_state_write_file(link, "config.json", "{}", 2, err, sizeof(err)),
                     PROV_ERR_IO);
    assert_int_equal(prov_state_save(slash, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_non_null(strstr(err, "is a symbolic link"));
    assert_int_equal(prov_state_prepare(slash, err, sizeof(err)), PROV_ERR_IO);
    /* "link/." and "link/./" name the link's target just as well. */
    snprintf(slash, sizeof(slash), "%s/.", link);
    assert_int_equal(prov_state_prepare(slash, err, sizeof(err)), PROV_ERR_IO);
    assert_non_null(strstr(err, "is a symbolic link"));
    assert_int_equal(prov_state_save(slash, &in, err, sizeof(err)), PROV_ERR_IO);
    snprintf(slash, sizeof(slash), "%s/./", link);
    assert_int_equal(prov_state_write_file(slash, "config.json", "{}", 2, err, sizeof(err)),
                     PROV_ERR_IO);
    assert_non_null(strstr(err, "is a symbolic link"));
    /* "link/sub/.." is the link's target too, whatever sub is. */
    snprintf(slash, sizeof(slash), "%s/sub/..", link);
    assert_int_equal(prov_state_clean(slash, err, sizeof(err)), PROV_ERR_IO);
    snprintf(want, sizeof(want), "%s ends in \"..\": a state directory must be named itself",
             slash);
    assert_string_equal(err, want);
    assert_int_equal(count_entries(target), 0);
    assert_int_equal(mode_of(target), 0755);
    snprintf(want, sizeof(want),
             "%s is a symbolic link: a state directory must be a directory itself", link);

    /* prov_state_clean removes nothing there either: not even what looks like a temporary file
     * of its own. */
    join(tmp, sizeof(tmp), target, ".identity.json.tmp-Ab12Cd");
    f = fopen(tmp, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(prov_state_clean(link, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    assert_int_equal(count_entries(target), 1);
    /* Nor does removing a file, or saving certificates without a chain file. */
    assert_int_equal(rename(tmp, path_in_target(target, "ca-chain.pem")), 0);
    assert_int_equal(prov_state_remove_file(link, "ca-chain.pem", err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    in.issued_chain_pem = "-----BEGIN CERTIFICATE-----\n";
    assert_int_equal(prov_state_save_certificates(link, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    assert_int_equal(count_entries(target), 1);
    assert_int_equal(access(path_in_target(target, "ca-chain.pem"), F_OK), 0);
    assert_int_equal(rename(path_in_target(target, "ca-chain.pem"), tmp), 0);
    /* The directory itself, named by its own path, is fine. */
    assert_int_equal(prov_state_clean(target, err, sizeof(err)), PROV_OK);
    assert_int_equal(count_entries(target), 0);
}

/* A directory of another user's is not made private and written into, even by root, who could:
 * its owner could change the files written there afterwards. Without root, no other user's
 * directory can be made, and /tmp (root's) stands in for one. */
static void another_users_directory_is_refused(void **state) {
    char err[512], want[1024];
    const char *dir = geteuid() == 0 ? path_for("others") : "/tmp";
    struct stat before, after;
    prov_result in;

    (void)state;
    assigned(&in);
    if (geteuid() == 0) {
        assert_int_equal(mkdir(dir, 0777), 0);
        assert_int_equal(chmod(dir, 0777), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
    }
    assert_int_equal(stat(dir, &before), 0);
    assert_true(before.st_uid != geteuid());
    snprintf(want, sizeof(want),
             "%s belongs to another user (uid %lu, not %lu): a state directory must be its "
             "user's own",
             dir, (unsigned long)before.st_uid, (unsigned long)geteuid());
    assert_int_equal(prov_state_prepare(dir, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    assert_int_equal(prov_state_clean(dir, err, sizeof(err)), PROV_ERR_IO);
    /* Nothing is removed there: a file of the owner's stands for what would be. */
    if (geteuid() == 0) {
        write_state(dir, "{}", 2);
        assert_int_equal(chown(path_in_target(dir, "identity.json"), 65534, 65534), 0);
    }
    assert_int_equal(prov_state_remove_file(dir, "identity.json", err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    in.issued_chain_pem = "-----BEGIN CERTIFICATE-----\n";
    assert_int_equal(prov_state_save_certificates(dir, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_string_equal(err, want);
    if (geteuid() == 0) {
        assert_int_equal(access(path_in_target(dir, "identity.json"), F_OK), 0);
        assert_int_equal(unlink(path_in_target(dir, "identity.json")), 0);
    }
    assert_int_equal(stat(dir, &after), 0);
    assert_int_equal(after.st_mode, before.st_mode);
    if (geteuid() == 0)
        assert_int_equal(count_entries(dir), 0);
}

static void only_assigned_results_are_saved(void **state) {
    const char *dir = path_for("refused");
    char err[512];
    prov_result in;

    (void)state;
    assigned(&in);
    in.status = "failed";
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_ERR_INVALID_ARG);
    assigned(&in);
    in.device_id = NULL;
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_ERR_INVALID_ARG);
    assigned(&in);
    in.assigned_hub = "";
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_ERR_INVALID_ARG);
    assigned(&in);
    in.payload = "{not json";
    assert_int_equal(prov_state_save(dir, &in, err, sizeof(err)), PROV_ERR_PROTOCOL);
    assert_int_equal(prov_state_save(dir, NULL, err, sizeof(err)), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_save(NULL, &in, NULL, 0), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_load(dir, NULL, NULL, 0), PROV_ERR_INVALID_ARG);
    /* Nothing was created. */
    assert_int_equal(access(dir, F_OK), -1);
}

static void unwritable_places_are_io_errors(void **state) {
    char err[512], path[512];
    prov_result in;

    (void)state;
    assigned(&in);
    join(path, sizeof(path), base, "no/such/parent");
    assert_int_equal(prov_state_save(path, &in, err, sizeof(err)), PROV_ERR_IO);
    assert_non_null(strstr(err, "cannot create"));
    /* A file where the directory should be. */
    write_state(path_for("file-parent"), "x", 1);
    join(path, sizeof(path), path_for("file-parent"), "identity.json");
    assert_int_equal(prov_state_save(path, &in, err, sizeof(err)), PROV_ERR_IO);
}

/* prov_state_prepare does what a write needs of the directory, and leaves nothing behind. */
static void prepare_makes_the_directory_writable_and_private(void **state) {
    char dir[512], err[512], deep[4096], *end;

    (void)state;
    snprintf(dir, sizeof(dir), "%s", path_for("prepared"));
    assert_int_equal(prov_state_prepare(dir, err, sizeof(err)), PROV_OK);
    assert_string_equal(err, "");
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(count_entries(dir), 0);
    /* An existing, wider directory is tightened; what it holds is left alone. */
    assert_int_equal(chmod(dir, 0755), 0);
    write_state(dir, "{}", 2);
    assert_int_equal(prov_state_prepare(dir, err, sizeof(err)), PROV_OK);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(count_entries(dir), 1);
    /* Without the right to make files there (root has it anyway). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0500), 0);
        assert_int_equal(prov_state_prepare(dir, err, sizeof(err)), PROV_ERR_IO);
        assert_non_null(strstr(err, "cannot create a file in"));
        assert_int_equal(chmod(dir, 0700), 0);
    }

    assert_int_equal(prov_state_prepare(path_for("no/such/parent"), err, sizeof(err)), PROV_ERR_IO);
    assert_non_null(strstr(err, "cannot create"));
    /* A file where the directory should be. */
    write_state(path_for("file-here"), "x", 1);
    join(deep, sizeof(deep), path_for("file-here"), "identity.json");
    assert_int_equal(prov_state_prepare(deep, err, sizeof(err)), PROV_ERR_IO);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(prov_state_prepare(NULL, err, sizeof(err)), PROV_ERR_INVALID_ARG);
    assert_int_equal(prov_state_prepare("", NULL, 0), PROV_ERR_INVALID_ARG);

    /* Files are made relative to the directory once it is open and checked, never through its
     * path again: a directory whose path leaves no room under PATH_MAX (4096) for the name of a
     * file in it is as good as any. */
    snprintf(deep, sizeof(deep), "%s", path_for("deep"));
    assert_int_equal(mkdir(deep, 0700), 0);
    end = deep + strlen(deep);
    while ((size_t)(end - deep) + 2 <= DEEP_LEN) {
        size_t n = DEEP_LEN - (size_t)(end - deep) - 1;

        if (n > 200)
            n = 200;
        *end++ = '/';
        memset(end, 'd', n);
        end += n;
        *end = '\0';
        assert_int_equal(mkdir(deep, 0700), 0);
    }
    assert_int_equal(prov_state_prepare(deep, err, sizeof(err)), PROV_OK);
    assert_int_equal(count_entries(deep), 0);
    assert_int_equal(prov_state_write_file(deep, "config.json", "{}", 2, err, sizeof(err)),
                     PROV_OK);
    assert_int_equal(count_entries(deep), 1);
    assert_int_equal(prov_state_remove_file(deep, "config.json", err, sizeof(err)), PROV_OK);
    assert_int_equal(count_entries(deep), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_every_field),
        cmocka_unit_test(optional_fields_may_be_absent),
        cmocka_unit_test(saving_again_replaces_the_state),
        cmocka_unit_test(a_wide_directory_is_made_private),
        cmocka_unit_test(the_fixture_is_valid),
        cmocka_unit_test(absent_state_is_not_found),
        cmocka_unit_test(every_corrupt_fixture_is_corrupt),
        cmocka_unit_test(not_a_regular_file_is_corrupt),
        cmocka_unit_test(a_fifo_is_corrupt_at_once),
        cmocka_unit_test(a_symbolic_link_is_not_a_state_directory),
        cmocka_unit_test(another_users_directory_is_refused),
        cmocka_unit_test(only_assigned_results_are_saved),
        cmocka_unit_test(unwritable_places_are_io_errors),
        cmocka_unit_test(prepare_makes_the_directory_writable_and_private),
    };
    return cmocka_run_group_tests(tests, make_base, remove_base);
}
