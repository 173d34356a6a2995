/* Unit tests of daemon/allocation.c: the share each endpoint gets under hashed and evenlyWeighted
 * allocation over 10,000 registration IDs, how few devices move when one endpoint is added or
 * removed, and static, geoLatency, disabled endpoints and no endpoint at all.
 *
 * Tolerances: a share is within 10% of its expected value (relative), e.g. 2000 +- 200 of
 * 10,000 devices over 5 endpoints; a binomial share of 2000 has a standard deviation of 40, so
 * 10% is 5 sigma and the test cannot fail by chance while still catching a skewed hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "allocation.h"

#define DEVICES 10000
#define MAX_EPS 8

struct fleet {
    struct endpoint eps[MAX_EPS];
    char hosts[MAX_EPS][32];
    size_t n;
};

static void fleet_add(struct fleet *f, unsigned weight, const char *region) {
    struct endpoint *e = &f->eps[f->n];

    snprintf(f->hosts[f->n], sizeof(f->hosts[f->n]), "hub-%zu.example.com", f->n);
    memset(e, 0, sizeof(*e));
    e->host = f->hosts[f->n];
    e->port = 8883;
    e->protocol = "mqtts";
    e->weight = weight;
    e->enabled = 1;
    e->region = (char *)region;
    f->n++;
}

static const char *regid(int i) {
    static char buf[32];

    snprintf(buf, sizeof(buf), "sensor-%05d", i);
    return buf;
}

/* Allocates every device; choice[i] is the host name chosen for device i (NULL for none), and
 * count[j] how many went to endpoint j. */
static void allocate_all(enum alloc_policy p, const struct fleet *f, const char *region,
                         const char **choice, int *count) {
    memset(count, 0, MAX_EPS * sizeof(*count));
    for (int i = 0; i < DEVICES; i++) {
        long j = alloc_choose(p, regid(i), f->eps, f->n, region);

        choice[i] = j >= 0 ? f->eps[j].host : NULL;
        if (j >= 0)
            count[j]++;
    }
}

static void assert_share(int got, double expected, const char *what, size_t j) {
    print_message("%s: endpoint %zu got %d of %d (expected %.0f, %+.1f%%)\n", what, j, got, DEVICES,
                  expected, 100.0 * (got - expected) / expected);
    assert_true(got >= expected * 0.9 && got <= expected * 1.1);
}

static void test_hashed_distribution(void **state) {
    struct fleet f = {0};
    const char **choice = calloc(DEVICES, sizeof(*choice));
    int count[MAX_EPS];
    (void)state;

    for (int j = 0; j < 5; j++)
        fleet_add(&f, (unsigned)(j + 1), NULL); /* hashed ignores the weights */
    allocate_all(ALLOC_HASHED, &f, NULL, choice, count);
    for (size_t j = 0; j < f.n; j++)
        assert_share(count[j], DEVICES / 5.0, "hashed", j);
    free(choice);
}

static void test_weighted_distribution(void **state) {
    struct fleet f = {0};
    const char **choice = calloc(DEVICES, sizeof(*choice));
    int count[MAX_EPS];
    (void)state;

    for (unsigned w = 1; w <= 4; w++)
        fleet_add(&f, w, NULL);
    allocate_all(ALLOC_EVENLY_WEIGHTED, &f, NULL, choice, count);
    for (size_t j = 0; j < f.n; j++)
        assert_share(count[j], DEVICES * (double)(j + 1) / 10.0, "evenlyWeighted 1:2:3:4", j);
    free(choice);
}

/* Counts the devices whose choice differs between a and b; every one that moved must have left
 * gone (when not NULL) or joined joined (when not NULL). */
static int moved(const char **a, const char **b, const char *gone, const char *joined) {
    int n = 0;

    for (int i = 0; i < DEVICES; i++) {
        if (strcmp(a[i], b[i]) == 0)
            continue;
        n++;
        if (gone != NULL)
            assert_string_equal(a[i], gone);
        if (joined != NULL)
            assert_string_equal(b[i], joined);
    }
    return n;
}

static void check_movement(enum alloc_policy p, const char *what) {
    struct fleet f = {0};
    const char **before = calloc(DEVICES, sizeof(*before));
    const char **after = calloc(DEVICES, sizeof(*after));
    int count[MAX_EPS], n;

    for (int j = 0; j < 5; j++)
        fleet_add(&f, p == ALLOC_EVENLY_WEIGHTED ? (unsigned)(j % 2 + 1) : 1, NULL);
    allocate_all(p, &f, NULL, before, count);
    int on_removed = count[2];

    /* Removing endpoint 2 (here: disabling it) moves its devices, and only them. */
    f.eps[2].enabled = 0;
    allocate_all(p, &f, NULL, after, count);
    n = moved(before, after, f.eps[2].host, NULL);
    print_message("%s: removing 1 of 5 endpoints moved %d devices (%d were on it)\n", what, n,
                  on_removed);
    assert_int_equal(n, on_removed);
    assert_int_equal(count[2], 0);

    /* Adding a sixth moves devices only to it, about its share of them. */
    f.eps[2].enabled = 1;
    fleet_add(&f, 1, NULL);
    allocate_all(p, &f, NULL, after, count);
    n = moved(before, after, NULL, f.eps[5].host);
    double share = p == ALLOC_EVENLY_WEIGHTED ? 1.0 / 8.0 : 1.0 / 6.0; /* weights 1+2+1+2+1+1 */
    print_message("%s: adding a 6th endpoint moved %d devices (expected %.0f, %+.1f%%)\n", what, n,
                  DEVICES * share, 100.0 * (n - DEVICES * share) / (DEVICES * share));
    assert_int_equal(n, count[5]);
    assert_true(n >= DEVICES * share * 0.9 && n <= DEVICES * share * 1.1);
    free(before);
    free(after);
}

static void test_hashed_movement(void **state) {
    (void)state;
    check_movement(ALLOC_HASHED, "hashed");
}

static void test_weighted_movement(void **state) {
    (void)state;
    check_movement(ALLOC_EVENLY_WEIGHTED, "evenlyWeighted");
}

/* The choice depends only on the endpoints present, not on their order in the list. */
static void test_order_does_not_matter(void **state) {
    struct fleet f = {0}, g = {0};
    (void)state;

    for (int j = 0; j < 4; j++)
        fleet_add(&f, (unsigned)j + 1, NULL);
    for (int j = 3; j >= 0; j--) {
        g.eps[3 - j] = f.eps[j];
        g.n++;
    }
    for (int i = 0; i < 1000; i++) {
        for (int p = ALLOC_HASHED; p <= ALLOC_EVENLY_WEIGHTED; p++) {
            long a = alloc_choose((enum alloc_policy)p, regid(i), f.eps, f.n, NULL);
            long b = alloc_choose((enum alloc_policy)p, regid(i), g.eps, g.n, NULL);

            assert_string_equal(f.eps[a].host, g.eps[b].host);
        }
    }
}

static void test_static(void **state) {
    struct fleet f = {0};
    (void)state;

    fleet_add(&f, 1, NULL);
    fleet_add(&f, 1, NULL);
    for (int i = 0; i < 100; i++)
        assert_int_equal(alloc_choose(ALLOC_STATIC, regid(i), f.eps, f.n, NULL), 0);
    f.eps[0].enabled = 0;
    assert_int_equal(alloc_choose(ALLOC_STATIC, regid(0), f.eps, f.n, NULL), -1);
}

static void test_geo_latency(void **state) {
    struct fleet f = {0};
    const char **choice = calloc(DEVICES, sizeof(*choice));
    int count[MAX_EPS];
    (void)state;

    fleet_add(&f, 1, "eu-west");
    fleet_add(&f, 1, "us-east");
    fleet_add(&f, 1, "eu-west");
    fleet_add(&f, 1, NULL);
    /* A region with endpoints: only those, spread between them. */
    allocate_all(ALLOC_GEO_LATENCY, &f, "EU-West", choice, count);
    assert_int_equal(count[1] + count[3], 0);
    assert_share(count[0], DEVICES / 2.0, "geoLatency eu-west", 0);
    allocate_all(ALLOC_GEO_LATENCY, &f, "us-east", choice, count);
    assert_int_equal(count[1], DEVICES);
    /* No region, or one without endpoints (or only disabled ones): hashed over all of them. */
    f.eps[1].enabled = 0;
    for (int i = 0; i < 1000; i++) {
        long hashed = alloc_choose(ALLOC_HASHED, regid(i), f.eps, f.n, NULL);

        assert_int_equal(alloc_choose(ALLOC_GEO_LATENCY, regid(i), f.eps, f.n, NULL), hashed);
        assert_int_equal(alloc_choose(ALLOC_GEO_LATENCY, regid(i), f.eps, f.n, "ap-south"), hashed);
        assert_int_equal(alloc_choose(ALLOC_GEO_LATENCY, regid(i), f.eps, f.n, "us-east"), hashed);
        assert_int_equal(alloc_choose(ALLOC_GEO_LATENCY, regid(i), f.eps, f.n, ""), hashed);
    }
    free(choice);
}

static void test_disabled_never_chosen(void **state) {
    static const enum alloc_policy policies[] = {ALLOC_HASHED, ALLOC_EVENLY_WEIGHTED,
                                                 ALLOC_GEO_LATENCY};
    struct fleet f = {0};
    const char **choice = calloc(DEVICES, sizeof(*choice));
    int count[MAX_EPS];
    (void)state;

    for (int j = 0; j < 5; j++)
        fleet_add(&f, 100, "eu");
    f.eps[1].enabled = 0;
    f.eps[3].enabled = 0;
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        allocate_all(policies[p], &f, "eu", choice, count);
        assert_int_equal(count[1], 0);
        assert_int_equal(count[3], 0);
        assert_int_equal(count[0] + count[2] + count[4], DEVICES);
    }
    free(choice);
}

static void test_none_available(void **state) {
    struct fleet f = {0};
    (void)state;

    for (int p = ALLOC_HASHED; p <= ALLOC_CUSTOM; p++)
        assert_int_equal(alloc_choose((enum alloc_policy)p, "dev-1", f.eps, 0, "eu"), -1);
    fleet_add(&f, 1, "eu");
    fleet_add(&f, 1, NULL);
    f.eps[0].enabled = f.eps[1].enabled = 0;
    for (int p = ALLOC_HASHED; p <= ALLOC_CUSTOM; p++)
        assert_int_equal(alloc_choose((enum alloc_policy)p, "dev-1", f.eps, f.n, "eu"), -1);
    /* The webhook decides for custom, never this function. */
    f.eps[0].enabled = 1;
    assert_int_equal(alloc_choose(ALLOC_CUSTOM, "dev-1", f.eps, f.n, NULL), -1);
}

static void test_policy_parse(void **state) {
    enum alloc_policy p;
    (void)state;

    assert_int_equal(alloc_policy_parse("hashed", &p), 0);
    assert_int_equal(p, ALLOC_HASHED);
    assert_int_equal(alloc_policy_parse("evenlyWeighted", &p), 0);
    assert_int_equal(p, ALLOC_EVENLY_WEIGHTED);
    assert_int_equal(alloc_policy_parse("static", &p), 0);
    assert_int_equal(p, ALLOC_STATIC);
    assert_int_equal(alloc_policy_parse("geoLatency", &p), 0);
    assert_int_equal(p, ALLOC_GEO_LATENCY);
    assert_int_equal(alloc_policy_parse("custom", &p), 0);
    assert_int_equal(p, ALLOC_CUSTOM);
    assert_int_equal(alloc_policy_parse("random", &p), -1);
    assert_int_equal(alloc_policy_parse(NULL, &p), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashed_distribution),   cmocka_unit_test(test_weighted_distribution),
        cmocka_unit_test(test_hashed_movement),       cmocka_unit_test(test_weighted_movement),
        cmocka_unit_test(test_order_does_not_matter), cmocka_unit_test(test_static),
        cmocka_unit_test(test_geo_latency),           cmocka_unit_test(test_disabled_never_chosen),
        cmocka_unit_test(test_none_available),        cmocka_unit_test(test_policy_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
