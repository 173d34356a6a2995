/* Unit tests for libprov's retry policy (lib/register.c with lib/backoff.c), through the public
 * transport interface with a scripted server, a fake clock and injected random numbers: what is
 * retried, how long each wait is to the millisecond, Retry-After, and the deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "fake_transport.h"

#define ERR_JSON(code) "{\"errorCode\":" #code ",\"trackingId\":\"t\",\"message\":\"m\"}"
#define ANSWER(st, ra)                                                                             \
    { PROV_OK, st, FAKE_JSON, ra, ERR_JSON(st##000), 0 }
#define NETWORK                                                                                    \
    { PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 0 }
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct outcome {
    prov_err rc;
    size_t requests;
    uint32_t sleeps[FAKE_MAX];
    size_t n_sleeps;
    uint64_t elapsed_ms; /* on the fake clock */
};

/* Registers against script with client c's settings applied by setup (may be NULL). */
static struct outcome run(const struct fake_answer *script, size_t n, const uint32_t *randoms,
                          size_t n_randoms, void (*setup)(prov_client *)) {
    struct outcome o;
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    uint64_t start;

    memset(&o, 0, sizeof(o));
    fake_init(&f, script, n);
    f.randoms = randoms;
    f.n_randoms = n_randoms;
    c = fake_client(&f);
    if (setup != NULL)
        setup(c);
    start = f.now_ms;
    o.rc = prov_register(c, &r);
    o.requests = f.n_reqs;
    o.n_sleeps = f.n_sleeps;
    memcpy(o.sleeps, f.sleeps, sizeof(o.sleeps));
    o.elapsed_ms = f.now_ms - start;
    assert_false(f.overrun);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
    return o;
}

static void expect_sleeps(const struct outcome *o, const uint32_t *want, size_t n) {
    size_t i;

    assert_int_equal(o->n_sleeps, n);
    for (i = 0; i < n; i++) {
        if (o->sleeps[i] != want[i])
            fail_msg("sleep %zu: %u ms, wanted %u ms", i, o->sleeps[i], want[i]);
    }
}

static void server_errors_and_429_back_off_exponentially(void **state) {
    static const struct fake_answer script[] = {
        ANSWER(500, NULL), ANSWER(503, NULL), ANSWER(429, NULL), ANSWER(502, NULL), FAKE_ASSIGNED};
    static const uint32_t want[] = {1000, 2000, 4000, 8000};
    struct outcome o;

    (void)state;
    /* The default random source of the fake is UINT32_MAX: every wait is its ceiling. */
    o = run(script, N(script), NULL, 0, NULL);
    assert_int_equal(o.rc, PROV_OK);
    assert_int_equal(o.requests, 5);
    expect_sleeps(&o, want, N(want));
}

static void network_errors_are_retried(void **state) {
    static const struct fake_answer script[] = {NETWORK, NETWORK, FAKE_ASSIGNED};
    static const uint32_t want[] = {1000, 2000};
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, NULL);
    assert_int_equal(o.rc, PROV_OK);
    assert_int_equal(o.requests, 3);
    expect_sleeps(&o, want, N(want));
}

static void jitter_uses_the_random_source(void **state) {
    static const struct fake_answer script[] = {NETWORK, ANSWER(503, NULL), ANSWER(500, NULL),
                                                NETWORK, FAKE_ASSIGNED};
    /* 0, one half, one quarter, three quarters of each ceiling (1, 2, 4, 8 s). */
    static const uint32_t randoms[] = {0, 0x80000000u, 0x40000000u, 0xC0000000u};
    static const uint32_t want[] = {0, 1000, 1000, 6000};
    struct outcome o;

    (void)state;
    o = run(script, N(script), randoms, N(randoms), NULL);
    assert_int_equal(o.rc, PROV_OK);
    expect_sleeps(&o, want, N(want));
}

static void set_backoff_small(prov_client *c) {
    assert_int_equal(prov_client_set_backoff(c, 100, 350), PROV_OK);
}

static void backoff_stops_growing_at_the_cap(void **state) {
    static const struct fake_answer script[] = {ANSWER(503, NULL), ANSWER(503, NULL),
                                                ANSWER(503, NULL), ANSWER(503, NULL),
                                                ANSWER(503, NULL), FAKE_ASSIGNED};
    static const uint32_t want[] = {100, 200, 350, 350, 350};
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, set_backoff_small);
    assert_int_equal(o.rc, PROV_OK);
    expect_sleeps(&o, want, N(want));
}

static void retry_after_is_honoured(void **state) {
    static const struct fake_answer script[] = {ANSWER(429, "7"), ANSWER(503, "0"),
                                                ANSWER(429, "Wed, 21 Oct 2026 07:28:00 GMT"),
                                                ANSWER(503, "2"), FAKE_ASSIGNED};
    /* Retry-After wins over the backoff, is raised to 1 s, and an HTTP date falls back to the
     * backoff (third failure: ceiling 4 s, here a quarter of it). */
    static const uint32_t randoms[] = {0x40000000u};
    static const uint32_t want[] = {7000, 1000, 1000, 2000};
    struct outcome o;

    (void)state;
    o = run(script, N(script), randoms, N(randoms), NULL);
    assert_int_equal(o.rc, PROV_OK);
    assert_int_equal(o.requests, 5);
    expect_sleeps(&o, want, N(want));
}

static void long_deadline(prov_client *c) {
    assert_int_equal(prov_client_set_deadline(c, 3600000), PROV_OK);
}

static void retry_after_is_capped(void **state) {
    static const struct fake_answer script[] = {ANSWER(429, "86400"), FAKE_ASSIGNED};
    static const uint32_t want[] = {300000};
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, long_deadline);
    assert_int_equal(o.rc, PROV_OK);
    expect_sleeps(&o, want, N(want));
}

static void other_4xx_are_never_retried(void **state) {
    static const int statuses[] = {400, 401, 403, 404, 405, 409, 412, 413, 415, 451, 499};
    size_t i;

    (void)state;
    for (i = 0; i < N(statuses); i++) {
        const struct fake_answer script[] = {
            {PROV_OK, statuses[i], FAKE_JSON, "1", "{\"errorCode\":400001}", 0}, FAKE_ASSIGNED};
        struct outcome o = run(script, 1, NULL, 0, NULL);

        assert_int_equal(o.rc, PROV_ERR_REFUSED);
        assert_int_equal(o.requests, 1);
        assert_int_equal(o.n_sleeps, 0);
    }
}

static void tls_failures_are_never_retried(void **state) {
    static const struct fake_answer script[] = {{PROV_ERR_TLS, 0, NULL, NULL, NULL, 0}};
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, NULL);
    assert_int_equal(o.rc, PROV_ERR_TLS);
    assert_int_equal(o.requests, 1);
    assert_int_equal(o.n_sleeps, 0);
}

static void deadline_5s(prov_client *c) {
    assert_int_equal(prov_client_set_deadline(c, 5000), PROV_OK);
}

static void deadline_ends_the_retries(void **state) {
    static const struct fake_answer script[] = {ANSWER(503, NULL), ANSWER(503, NULL),
                                                ANSWER(503, NULL)};
    static const uint32_t want[] = {1000, 2000};
    struct outcome o;

    (void)state;
    /* Tries at 0 s, 1 s and 3 s; the next wait (4 s) would end past 5 s, so it stops at 3 s
     * instead of sleeping for nothing. */
    o = run(script, N(script), NULL, 0, deadline_5s);
    assert_int_equal(o.rc, PROV_ERR_TIMEOUT);
    assert_int_equal(o.requests, 3);
    expect_sleeps(&o, want, N(want));
    assert_int_equal(o.elapsed_ms, 3000);
}

static void requests_get_what_is_left_of_the_deadline(void **state) {
    /* Each failed request takes 1.5 s of the fake clock and the waits are 0 ms. */
    static const struct fake_answer script[] = {
        {PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 1500},
        {PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 1500},
        {PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 1500},
        {PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 1500},
    };
    static const uint32_t randoms[] = {0};
    static const uint32_t want_timeouts[] = {4000, 3500, 2000, 500};
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    size_t i;

    (void)state;
    fake_init(&f, script, N(script));
    f.randoms = randoms;
    f.n_randoms = 1;
    c = fake_client(&f);
    deadline_5s(c);
    assert_int_equal(prov_client_set_request_timeout(c, 4000), PROV_OK);
    assert_int_equal(prov_register(c, &r), PROV_ERR_TIMEOUT);
    assert_null(r);
    /* Sent at 0, 1.5, 3 and 4.5 s: the request timeout, then what remains of the 5 s. */
    assert_int_equal(f.n_reqs, N(want_timeouts));
    for (i = 0; i < N(want_timeouts); i++)
        assert_int_equal(f.reqs[i].timeout_ms, want_timeouts[i]);
    assert_false(f.overrun);
    assert_non_null(strstr(prov_client_last_error(c), "no final answer within 5000 ms"));
    assert_non_null(strstr(prov_client_last_error(c), "scripted failure"));
    prov_client_free(c);
    fake_free(&f);
}

static void a_slow_server_cannot_outlast_the_deadline(void **state) {
    /* Every request times out after the whole time it was given. */
    static const struct fake_answer script[] = {
        {PROV_ERR_NETWORK, 0, NULL, NULL, NULL, 5000},
    };
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, deadline_5s);
    assert_int_equal(o.rc, PROV_ERR_TIMEOUT);
    assert_int_equal(o.requests, 1);
    assert_int_equal(o.n_sleeps, 0);
}

static void polls_are_retried_not_the_put(void **state) {
    static const struct fake_answer script[] = {
        {PROV_OK, 202, FAKE_JSON, "1", "{\"operationId\":\"op-9\",\"status\":\"assigning\"}", 0},
        ANSWER(503, NULL),
        NETWORK,
        FAKE_ASSIGNED};
    static const uint32_t want[] = {1000, 1000, 2000};
    struct fake f;
    prov_client *c;
    prov_result *r = NULL;
    size_t i;

    (void)state;
    fake_init(&f, script, N(script));
    c = fake_client(&f);
    assert_int_equal(prov_register(c, &r), PROV_OK);
    assert_int_equal(f.n_reqs, 4);
    assert_string_equal(f.reqs[0].method, "PUT");
    for (i = 1; i < 4; i++) {
        assert_string_equal(f.reqs[i].method, "GET");
        assert_non_null(strstr(f.reqs[i].url, "/operations/op-9?"));
    }
    assert_int_equal(f.n_sleeps, N(want));
    for (i = 0; i < N(want); i++)
        assert_int_equal(f.sleeps[i], want[i]);
    prov_result_free(r);
    prov_client_free(c);
    fake_free(&f);
}

static void progress_resets_the_backoff(void **state) {
    static const struct fake_answer script[] = {
        ANSWER(503, NULL),
        ANSWER(503, NULL),
        {PROV_OK, 202, FAKE_JSON, "1", "{\"operationId\":\"op-9\",\"status\":\"assigning\"}", 0},
        ANSWER(503, NULL),
        FAKE_ASSIGNED};
    static const uint32_t want[] = {1000, 2000, 1000, 1000};
    struct outcome o;

    (void)state;
    o = run(script, N(script), NULL, 0, NULL);
    assert_int_equal(o.rc, PROV_OK);
    expect_sleeps(&o, want, N(want));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_errors_and_429_back_off_exponentially),
        cmocka_unit_test(network_errors_are_retried),
        cmocka_unit_test(jitter_uses_the_random_source),
        cmocka_unit_test(backoff_stops_growing_at_the_cap),
        cmocka_unit_test(retry_after_is_honoured),
        cmocka_unit_test(retry_after_is_capped),
        cmocka_unit_test(other_4xx_are_never_retried),
        cmocka_unit_test(tls_failures_are_never_retried),
        cmocka_unit_test(deadline_ends_the_retries),
        cmocka_unit_test(requests_get_what_is_left_of_the_deadline),
        cmocka_unit_test(a_slow_server_cannot_outlast_the_deadline),
        cmocka_unit_test(polls_are_retried_not_the_put),
        cmocka_unit_test(progress_resets_the_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
