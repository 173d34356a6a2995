/* Device certificates in the SQLite store: recorded in the group commit of their registration
 * (only while the certificate that attested the device is valid), the current one of a
 * registration, listed by registration and device, revoked with their audit record, listed for
 * the CRL; and the CRL number that grows across restarts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_fixture.h"
#include "timefmt.h"

/* A certificate record pointing at static strings (not to be cleared). */
static struct store_cert cert_rec(char *serial, char *regid, char *device) {
    struct store_cert x;

    memset(&x, 0, sizeof(x));
    x.serial = serial;
    x.registration_id = regid;
    x.device_id = device;
    x.subject = "CN=dev";
    x.issuer = "CN=provd issuing CA";
    x.thumbprint = "AB01";
    snprintf(x.not_before, sizeof(x.not_before), "2026-01-01T00:00:00.0000000Z");
    snprintf(x.not_after, sizeof(x.not_after), "2027-01-01T00:00:00.0000000Z");
    return x;
}

static struct store_registration reg_rec(char *regid, char *device) {
    struct store_registration r;

    memset(&r, 0, sizeof(r));
    r.registration_id = regid;
    r.device_id = device;
    r.status = "assigned";
    r.assigned_hub = "hub";
    return r;
}

/* Commits a registration and its certificate in one unit. */
static int commit_one(struct fx *f, char *serial, char *regid, char *device) {
    struct store_registration r = reg_rec(regid, device);
    struct store_cert x = cert_rec(serial, regid, device);
    struct store_write w = {.reg = &r, .cert = &x};

    return store_commit(f->c, &w, 1);
}

static int64_t audit_count(struct fx *f) {
    struct store_counts n;

    assert_int_equal(store_counts(f->c, &n), STORE_OK);
    return n.audit;
}

static void test_commit_and_get(void **state) {
    struct fx *f = *state;
    struct store_cert got;

    assert_int_equal(commit_one(f, "0A11", "dev-1", "device-1"), STORE_OK);
    assert_int_equal(store_cert_get(f->c, "0A11", &got), STORE_OK);
    assert_string_equal(got.serial, "0A11");
    assert_string_equal(got.registration_id, "dev-1");
    assert_string_equal(got.device_id, "device-1");
    assert_string_equal(got.subject, "CN=dev");
    assert_string_equal(got.issuer, "CN=provd issuing CA");
    assert_string_equal(got.thumbprint, "AB01");
    assert_string_equal(got.not_after, "2027-01-01T00:00:00.0000000Z");
    assert_int_equal(got.revoked, 0);
    assert_int_equal(got.revoked_at, 0);
    assert_null(got.reason);
    assert_int_equal(strlen(got.created), TIME_DPS_LEN - 1);
    store_cert_clear(&got);
    assert_int_equal(store_cert_get(f->c, "0A12", &got), STORE_NOT_FOUND);
}

/* A certificate whose serial is taken fails its whole batch: the registration is not written
 * either. */
static void test_commit_all_or_nothing(void **state) {
    struct fx *f = *state;
    struct store_registration r1 = reg_rec("dev-2", "dev-2"), r2 = reg_rec("dev-3", "dev-3");
    struct store_cert x1 = cert_rec("0B01", "dev-2", "dev-2"),
                      x2 = cert_rec("0B01", "dev-3", "dev-3");
    struct store_write w[2] = {{.reg = &r1, .cert = &x1}, {.reg = &r2, .cert = &x2}};
    struct store_registration got;
    struct store_cert *v;
    size_t n;

    assert_int_equal(store_commit(f->c, w, 2), STORE_ERROR);
    assert_int_equal(store_reg_get(f->c, "dev-2", &got), STORE_NOT_FOUND);
    assert_int_equal(store_cert_list(f->c, NULL, NULL, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_certs_free(v, n);
}

/* The current certificate of a registration is the one issued last, whatever the order of the
 * serials, and stays so when revoked. */
static void test_current(void **state) {
    struct fx *f = *state;
    struct store_cert got;

    assert_int_equal(store_cert_current(f->c, "dev-1", &got), STORE_NOT_FOUND);
    assert_int_equal(commit_one(f, "F0", "dev-1", "device-1"), STORE_OK);
    assert_int_equal(commit_one(f, "0B", "dev-2", "device-2"), STORE_OK);
    assert_int_equal(commit_one(f, "1A", "dev-1", "device-1"), STORE_OK);
    assert_int_equal(store_cert_current(f->c, "dev-1", &got), STORE_OK);
    assert_string_equal(got.serial, "1A");
    assert_string_equal(got.device_id, "device-1");
    store_cert_clear(&got);
    assert_int_equal(store_cert_current(f->c, "dev-2", &got), STORE_OK);
    assert_string_equal(got.serial, "0B");
    store_cert_clear(&got);

    const struct store_cert_filter last = {"1A", NULL, NULL};
    int64_t count;
    assert_int_equal(store_cert_revoke(f->c, &last, 1700000000, NULL, NULL, &count), STORE_OK);
    assert_int_equal(store_cert_current(f->c, "dev-1", &got), STORE_OK);
    assert_string_equal(got.serial, "1A");
    assert_int_equal(got.revoked, 1);
    store_cert_clear(&got);
    assert_int_equal(store_cert_current(f->c, "device-1", &got), STORE_NOT_FOUND);
}

static void test_list_filters_and_paging(void **state) {
    struct fx *f = *state;
    static char serials[6][8];
    struct store_cert *v;
    size_t n;

    for (int i = 0; i < 6; i++) {
        snprintf(serials[i], sizeof(serials[i]), "%02X", 0x10 + i);
        assert_int_equal(commit_one(f, serials[i], i % 2 ? "odd" : "even", i < 3 ? "low" : "high"),
                         STORE_OK);
    }
    const struct store_cert_filter odd = {NULL, "odd", NULL}, high = {NULL, NULL, "high"},
                                   both = {NULL, "odd", "high"};
    assert_int_equal(store_cert_list(f->c, &odd, NULL, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].serial, "11");
    assert_string_equal(v[2].serial, "15");
    store_certs_free(v, n);
    assert_int_equal(store_cert_list(f->c, &high, NULL, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].serial, "13");
    store_certs_free(v, n);
    assert_int_equal(store_cert_list(f->c, &both, NULL, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].serial, "13");
    assert_string_equal(v[1].serial, "15");
    store_certs_free(v, n);
    /* Pages of 4 over everything, in serial order. */
    assert_int_equal(store_cert_list(f->c, NULL, NULL, 4, &v, &n), STORE_OK);
    assert_int_equal(n, 4);
    assert_string_equal(v[3].serial, "13");
    store_certs_free(v, n);
    assert_int_equal(store_cert_list(f->c, NULL, "13", 4, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].serial, "14");
    store_certs_free(v, n);
}

/* A unit attested by a provd certificate is written only while that certificate is valid:
 * once it is revoked, nothing of the unit is (a conflict, said to be for that), and the other
 * units of the batch are. */
static void test_commit_attested_by(void **state) {
    struct fx *f = *state;
    struct store_registration r1 = reg_rec("dev-a", "dev-a"), r2 = reg_rec("dev-b", "dev-b"),
                              r3 = reg_rec("dev-a", "dev-a"), r4 = reg_rec("dev-b", "dev-b");
    struct store_cert x1 = cert_rec("A2", "dev-a", "dev-a"), x2 = cert_rec("B2", "dev-b", "dev-b"),
                      x3 = cert_rec("A3", "dev-a", "dev-a"), x4 = cert_rec("B3", "dev-b", "dev-b");
    struct store_audit a1, a2;
    struct store_registration got;
    struct store_cert c;
    int64_t count;

    assert_int_equal(commit_one(f, "A1", "dev-a", "dev-a"), STORE_OK);
    assert_int_equal(commit_one(f, "B1", "dev-b", "dev-b"), STORE_OK);
    memset(&a1, 0, sizeof(a1));
    a1.event = "device.register";
    a1.subject = "dev-a";
    a1.outcome = "accepted";
    a2 = a1;
    a2.subject = "dev-b";
    const struct store_cert_filter one = {"A1", NULL, NULL};
    assert_int_equal(store_cert_revoke(f->c, &one, 1700000000, NULL, NULL, &count), STORE_OK);
    int64_t audits = audit_count(f);

    struct store_write w[2] = {{.reg = &r1, .cert = &x1, .audit = &a1, .attested_by = "A1"},
                               {.reg = &r2, .cert = &x2, .audit = &a2, .attested_by = "B1"}};
    assert_int_equal(store_commit(f->c, w, 2), STORE_OK);
    assert_int_equal(w[0].conflict, 1);
    assert_int_equal(w[0].revoked, 1);
    assert_int_equal(w[1].conflict, 0);
    assert_int_equal(w[1].revoked, 0);
    assert_int_equal(store_cert_get(f->c, "A2", &c), STORE_NOT_FOUND);
    assert_int_equal(store_cert_get(f->c, "B2", &c), STORE_OK);
    store_cert_clear(&c);
    assert_int_equal(audit_count(f), audits + 1);
    assert_int_equal(store_reg_get(f->c, "dev-a", &got), STORE_OK);
    assert_int_equal(got.version, 1); /* the first registration's */
    store_registration_clear(&got);

    /* A serial the store does not hold attests nothing either. */
    struct store_write unknown = {.reg = &r3, .cert = &x3, .attested_by = "EE"};
    assert_int_equal(store_commit(f->c, &unknown, 1), STORE_OK);
    assert_int_equal(unknown.conflict, 1);
    assert_int_equal(unknown.revoked, 1);
    assert_int_equal(store_cert_get(f->c, "A3", &c), STORE_NOT_FOUND);

    /* A registration stored since, with the certificate still valid, is a conflict of another
     * kind. */
    struct store_write stale = {.reg = &r4,
                                .cert = &x4,
                                .reg_conditional = 1,
                                .reg_if_version = 1,
                                .attested_by = "B2",
                                .revoked = 1};
    assert_int_equal(store_commit(f->c, &stale, 1), STORE_OK);
    assert_int_equal(stale.conflict, 1);
    assert_int_equal(stale.revoked, 0);
    assert_int_equal(store_cert_get(f->c, "B3", &c), STORE_NOT_FOUND);
}

static void test_revoke(void **state) {
    struct fx *f = *state;
    struct store_audit a;
    struct store_cert got;
    struct store_revoked *v;
    size_t n;
    int64_t count, audits;

    assert_int_equal(commit_one(f, "C1", "dev-c", "dev-c"), STORE_OK);
    assert_int_equal(commit_one(f, "C2", "dev-c", "dev-c"), STORE_OK);
    assert_int_equal(commit_one(f, "C3", "dev-c", "dev-c"), STORE_OK);
    assert_int_equal(commit_one(f, "D1", "dev-d", "dev-d"), STORE_OK);
    audits = audit_count(f);

    const struct store_cert_filter one = {"C2", NULL, NULL};
    uint64_t revocations = 1;
    assert_int_equal(store_cert_revocations(f->c, &revocations), STORE_OK);
    assert_int_equal(revocations, 0);
    memset(&a, 0, sizeof(a));
    a.event = "certificate.revoke";
    a.subject = "dev-c";
    a.outcome = "accepted";
    assert_int_equal(store_cert_revoke(f->c, &one, 1700000000, "keyCompromise", &a, &count),
                     STORE_OK);
    assert_int_equal(count, 1);
    assert_true(a.seq > 0);
    assert_int_equal(audit_count(f), audits + 1);
    assert_int_equal(store_cert_revocations(f->c, &revocations), STORE_OK);
    assert_int_equal(revocations, 1);
    assert_int_equal(store_cert_get(f->c, "C2", &got), STORE_OK);
    assert_int_equal(got.revoked, 1);
    assert_int_equal(got.revoked_at, 1700000000);
    assert_string_equal(got.reason, "keyCompromise");
    store_cert_clear(&got);

    /* Again: nothing left to revoke, nothing written. Unknown: not found. */
    memset(&a, 0, sizeof(a));
    a.event = "certificate.revoke";
    a.outcome = "accepted";
    assert_int_equal(store_cert_revoke(f->c, &one, 1700000001, NULL, &a, &count), STORE_CONFLICT);
    assert_int_equal(count, 0);
    const struct store_cert_filter none = {"EE", NULL, NULL};
    assert_int_equal(store_cert_revoke(f->c, &none, 1, NULL, &a, &count), STORE_NOT_FOUND);
    assert_int_equal(audit_count(f), audits + 1);
    assert_int_equal(store_cert_revocations(f->c, &revocations), STORE_OK);
    assert_int_equal(revocations, 1); /* nothing was revoked */

    /* Every valid certificate of a device: C1 and C3; C2 keeps its first revocation. */
    const struct store_cert_filter dev = {NULL, NULL, "dev-c"};
    assert_int_equal(store_cert_revoke(f->c, &dev, 1700000002, NULL, &a, &count), STORE_OK);
    assert_int_equal(count, 2);
    assert_int_equal(store_cert_revocations(f->c, &revocations), STORE_OK);
    assert_int_equal(revocations, 2); /* one revocation, of two certificates */
    assert_int_equal(store_cert_get(f->c, "C2", &got), STORE_OK);
    assert_int_equal(got.revoked_at, 1700000000);
    store_cert_clear(&got);

    uint64_t number = 0, counted = 0;
    assert_int_equal(store_crl_take(f->c, &number, &counted, &v, &n), STORE_OK);
    assert_int_equal(number, 1);
    assert_int_equal(counted, 2);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].serial, "C1");
    assert_int_equal(v[0].revoked_at, 1700000002);
    assert_null(v[0].reason);
    assert_string_equal(v[1].serial, "C2");
    assert_int_equal(v[1].revoked_at, 1700000000);
    assert_string_equal(v[1].reason, "keyCompromise");
    assert_string_equal(v[2].serial, "C3");
    store_revoked_free(v, n);
    assert_int_equal(store_cert_get(f->c, "D1", &got), STORE_OK);
    assert_int_equal(got.revoked, 0);
    store_cert_clear(&got);

    /* A device ID two registrations share: one audit record about each. */
    assert_int_equal(commit_one(f, "E1", "reg-e1", "shared"), STORE_OK);
    assert_int_equal(commit_one(f, "E2", "reg-e2", "shared"), STORE_OK);
    int64_t seq = a.seq;
    const struct store_cert_filter shared = {NULL, NULL, "shared"};
    a.subject = "ignored";
    assert_int_equal(store_cert_revoke(f->c, &shared, 1700000003, NULL, &a, &count), STORE_OK);
    assert_int_equal(count, 2);
    struct store_audit *recs;
    assert_int_equal(store_audit_list(f->c, NULL, seq, 10, &recs, &n), STORE_OK);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(recs[i].event, "certificate.revoke") != 0)
            continue;
        assert_string_equal(recs[i].subject, found == 0 ? "reg-e1" : "reg-e2");
        found++;
    }
    assert_int_equal(found, 2);
    store_audits_free(recs, n);

    const struct store_cert_filter empty = {NULL, NULL, NULL};
    assert_int_equal(store_cert_revoke(f->c, &empty, 1, NULL, NULL, &count), STORE_ERROR);
}

/* take: the next CRL number (growing across restarts) with the revoked certificates. */
static void take(struct fx *f, uint64_t want_number, size_t want_revoked) {
    uint64_t number = 0, revocations = 0;
    struct store_revoked *v = NULL;
    size_t n = 0;

    assert_int_equal(store_crl_take(f->c, &number, &revocations, &v, &n), STORE_OK);
    assert_int_equal(number, want_number);
    assert_int_equal(n, want_revoked);
    store_revoked_free(v, n);
}

static void test_crl_number(void **state) {
    struct fx *f = *state;
    char err[256];
    int64_t count;

    take(f, 1, 0);
    assert_int_equal(commit_one(f, "N1", "dev-n", "dev-n"), STORE_OK);
    const struct store_cert_filter one = {"N1", NULL, NULL};
    assert_int_equal(store_cert_revoke(f->c, &one, 1700000000, NULL, NULL, &count), STORE_OK);
    take(f, 2, 1);
    store_conn_close(f->c);
    store_close(f->st);
    assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_open(f->st, &f->c), STORE_OK);
    take(f, 3, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_get, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_all_or_nothing, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_current, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_commit_attested_by, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_list_filters_and_paging, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_revoke, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_crl_number, fx_open, fx_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
