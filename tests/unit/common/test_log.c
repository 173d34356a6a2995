/* Unit tests for common/log.c. Standard error is pointed at a temporary file around each call
 * so the exact bytes written can be checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int saved_fd = -1;
static int cap_fd = -1;

static void capture_start(void) {
    char path[] = "/tmp/test_log.XXXXXX";
    fflush(stderr);
    cap_fd = mkstemp(path);
    assert_true(cap_fd >= 0);
    unlink(path);
    saved_fd = dup(STDERR_FILENO);
    assert_true(saved_fd >= 0);
    assert_int_equal(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written, freed by the caller. */
static char *capture_end(size_t *len) {
    off_t size;
    char *buf;

    fflush(stderr);
    assert_int_equal(dup2(saved_fd, STDERR_FILENO), STDERR_FILENO);
    close(saved_fd);
    saved_fd = -1;
    size = lseek(cap_fd, 0, SEEK_END);
    assert_true(size >= 0);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(cap_fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(cap_fd);
    cap_fd = -1;
    *len = (size_t)size;
    return buf;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ " at the start of line. */
static void check_stamp(const char *line) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
            fail_msg("bad time stamp at %zu in \"%.40s\"", i, line);
    }
}

#define STAMP_LEN 25

static int reset_threshold(void **state) {
    (void)state;
    log_threshold = LOG_LVL_INFO;
    return 0;
}

/* After a failed assertion stderr may still point at the file: put it back so the failure shows. */
static int restore_stderr(void **state) {
    (void)state;
    if (saved_fd >= 0) {
        fflush(stderr);
        dup2(saved_fd, STDERR_FILENO);
        close(saved_fd);
        saved_fd = -1;
    }
    if (cap_fd >= 0) {
        close(cap_fd);
        cap_fd = -1;
    }
    return 0;
}

static void test_default_threshold(void **state) {
    (void)state;
    /* Runs first, before any test changes the threshold. */
    assert_int_equal(log_threshold, LOG_LVL_INFO);
}

static void test_line_format(void **state) {
    size_t len;
    char *out;
    (void)state;

    capture_start();
    log_info("hello %s n=%d", "world", 42);
    out = capture_end(&len);
    assert_int_equal(len, STAMP_LEN + strlen("level=info hello world n=42\n"));
    check_stamp(out);
    assert_string_equal(out + STAMP_LEN, "level=info hello world n=42\n");
    free(out);
}

static void test_levels_named(void **state) {
    size_t len;
    char *out, *p;
    (void)state;

    log_threshold = LOG_LVL_DEBUG;
    capture_start();
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    out = capture_end(&len);
    p = out;
    static const char *const want[] = {"level=error e\n", "level=warn w\n", "level=info i\n",
                                       "level=debug d\n"};
    for (size_t i = 0; i < 4; i++) {
        check_stamp(p);
        assert_memory_equal(p + STAMP_LEN, want[i], strlen(want[i]));
        p += STAMP_LEN + strlen(want[i]);
    }
    assert_int_equal((size_t)(p - out), len);
    free(out);
}

static int side_effects;

static int bump(void) {
    return ++side_effects;
}

static void test_threshold_filters_before_formatting(void **state) {
    size_t len;
    char *out;
    (void)state;

    log_threshold = LOG_LVL_WARN;
    side_effects = 0;
    capture_start();
    log_info("not shown %d", bump());
    log_debug("not shown %d", bump());
    log_warn("shown %d", bump());
    out = capture_end(&len);
    /* Arguments of filtered calls are never evaluated. */
    assert_int_equal(side_effects, 1);
    assert_string_equal(out + STAMP_LEN, "level=warn shown 1\n");
    free(out);

    log_threshold = LOG_LVL_ERROR;
    capture_start();
    log_warn("hidden");
    out = capture_end(&len);
    assert_int_equal(len, 0);
    free(out);
}

static void test_set_level_name(void **state) {
    (void)state;
    assert_int_equal(log_set_level_name("debug"), 0);
    assert_int_equal(log_threshold, LOG_LVL_DEBUG);
    assert_int_equal(log_set_level_name("error"), 0);
    assert_int_equal(log_threshold, LOG_LVL_ERROR);
    assert_int_equal(log_set_level_name("warn"), 0);
    assert_int_equal(log_threshold, LOG_LVL_WARN);
    assert_int_equal(log_set_level_name("info"), 0);
    assert_int_equal(log_threshold, LOG_LVL_INFO);
    assert_int_equal(log_set_level_name("verbose"), -1);
    assert_int_equal(log_set_level_name(""), -1);
    assert_int_equal(log_set_level_name("infox"), -1);
    assert_int_equal(log_set_level_name(NULL), -1);
    assert_int_equal(log_threshold, LOG_LVL_INFO);
}

static void test_control_characters_defanged(void **state) {
    size_t len;
    char *out;
    (void)state;

    capture_start();
    log_info("id=%s", "dev\n2026-01-01T00:00:00.000Z level=error forged\r\x1b[0m\tend");
    out = capture_end(&len);
    assert_string_equal(
        out + STAMP_LEN,
        "level=info id=dev?2026-01-01T00:00:00.000Z level=error forged??[0m\tend\n");
    free(out);
}

/* A quoted value cannot end its field: its quotes and backslashes are escaped, and a value that
 * does not fit is cut between characters, never inside an escape. */
static void test_quoted_values(void **state) {
    char out[32], small[5];
    (void)state;

    assert_string_equal(log_quoted("x\" outcome=accepted \\", out, sizeof(out)),
                        "x\\\" outcome=accepted \\\\");
    assert_string_equal(log_quoted("plain", out, sizeof(out)), "plain");
    assert_string_equal(log_quoted("", out, sizeof(out)), "");
    assert_string_equal(log_quoted("ab\"cd", small, sizeof(small)), "ab\\\"");
    assert_string_equal(log_quoted("abc\"d", small, sizeof(small)), "abc");
    assert_string_equal(log_quoted("a\"bc", small, sizeof(small)), "a\\\"b");
}

static void test_long_lines(void **state) {
    char *msg = malloc(20001), *out;
    size_t len;
    (void)state;

    assert_non_null(msg);
    memset(msg, 'x', 20000);
    msg[20000] = '\0';

    /* Longer than the stack buffer but under the cap: written whole. */
    msg[3000] = '\0';
    capture_start();
    log_info("%s", msg);
    out = capture_end(&len);
    assert_int_equal(len, STAMP_LEN + strlen("level=info ") + 3000 + 1);
    assert_int_equal(out[len - 2], 'x');
    assert_int_equal(out[len - 1], '\n');
    free(out);

    /* Over the 16 KiB cap: cut to the cap, marked, still one line. */
    msg[3000] = 'x';
    capture_start();
    log_info("%s", msg);
    out = capture_end(&len);
    assert_int_equal(len, 16384 - 1);
    assert_string_equal(out + len - 4, "...\n");
    assert_null(memchr(out, '\n', len - 1));
    free(out);
    free(msg);
}

static void test_errno_preserved(void **state) {
    size_t len;
    char *out;
    (void)state;

    capture_start();
    errno = ENOENT;
    log_info("x");
    assert_int_equal(errno, ENOENT);
    out = capture_end(&len);
    free(out);
}

#define N_THREADS 4
#define N_LINES   300
#define PAYLOAD   500

static void *writer(void *arg) {
    char payload[PAYLOAD + 1];
    int id = (int)(intptr_t)arg;

    memset(payload, 'a' + id, PAYLOAD);
    payload[PAYLOAD] = '\0';
    for (int i = 0; i < N_LINES; i++)
        log_info("t=%d i=%03d %s", id, i, payload);
    return NULL;
}

static void test_threads_do_not_interleave(void **state) {
    pthread_t th[N_THREADS];
    int seen[N_THREADS] = {0};
    size_t len, count = 0;
    char *out, *line;
    (void)state;

    capture_start();
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    out = capture_end(&len);

    /* Every line must be whole: stamp, prefix, then one thread's payload and nothing else. */
    for (line = out; line < out + len; count++) {
        char *nl = strchr(line, '\n');
        int id, i;
        assert_non_null(nl);
        check_stamp(line);
        assert_int_equal(sscanf(line + STAMP_LEN, "level=info t=%d i=%d ", &id, &i), 2);
        assert_true(id >= 0 && id < N_THREADS);
        assert_int_equal(i, seen[id]);
        seen[id]++;
        assert_int_equal(nl - line, STAMP_LEN + (long)strlen("level=info t=0 i=000 ") + PAYLOAD);
        for (char *p = nl - PAYLOAD; p < nl; p++)
            assert_int_equal(*p, 'a' + id);
        line = nl + 1;
    }
    assert_int_equal(count, N_THREADS * N_LINES);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_threshold),
        cmocka_unit_test_setup_teardown(test_line_format, reset_threshold, restore_stderr),
        cmocka_unit_test_setup_teardown(test_levels_named, reset_threshold, restore_stderr),
        cmocka_unit_test_setup_teardown(test_threshold_filters_before_formatting, reset_threshold,
                                        restore_stderr),
        cmocka_unit_test_setup_teardown(test_set_level_name, reset_threshold, restore_stderr),
        cmocka_unit_test_setup_teardown(test_control_characters_defanged, reset_threshold,
                                        restore_stderr),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test_setup_teardown(test_long_lines, reset_threshold, restore_stderr),
        cmocka_unit_test_setup_teardown(test_errno_preserved, reset_threshold, restore_stderr),
        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, reset_threshold,
                                        restore_stderr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
