/* The CRL served by provd. See crl.h. */
#include "crl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "certinfo.h"
#include "log.h"

struct crl_cache {
    struct ca *ca;
    int64_t next_update_s;
    pthread_mutex_t lock;    /* guards current and every blob's refs */
    pthread_mutex_t refresh; /* one refresh at a time */
    struct crl_blob *current;
};

struct crl_cache *crl_cache_new(struct ca *ca, int64_t next_update_s) {
    struct crl_cache *cc = calloc(1, sizeof(*cc));

    if (!cc)
        return NULL;
    cc->ca = ca;
    cc->next_update_s = next_update_s;
    pthread_mutex_init(&cc->lock, NULL);
    pthread_mutex_init(&cc->refresh, NULL);
    return cc;
}

static void blob_free(struct crl_blob *b) {
    OPENSSL_free(b->der);
    free(b->pem);
    free(b);
}

void crl_cache_free(struct crl_cache *cc) {
    if (!cc)
        return;
    if (cc->current)
        blob_free(cc->current);
    pthread_mutex_destroy(&cc->lock);
    pthread_mutex_destroy(&cc->refresh);
    free(cc);
}

struct crl_blob *crl_current(struct crl_cache *cc) {
    struct crl_blob *b;

    pthread_mutex_lock(&cc->lock);
    b = cc->current;
    if (b)
        b->refs++;
    pthread_mutex_unlock(&cc->lock);
    return b;
}

void crl_blob_release(struct crl_blob *b) {
    int last;

    if (!b)
        return;
    pthread_mutex_lock(&b->cc->lock);
    last = --b->refs == 0;
    pthread_mutex_unlock(&b->cc->lock);
    if (last)
        blob_free(b);
}

/* The store's revoked certificates as ca_crl_new takes them; the strings point into certs. */
static struct ca_revoked *revoked_of(const struct store_revoked *certs, size_t n) {
    struct ca_revoked *v = calloc(n ? n : 1, sizeof(*v));

    for (size_t i = 0; v && i < n; i++) {
        v[i].serial = certs[i].serial;
        v[i].revoked_at = certs[i].revoked_at;
        v[i].reason = CRL_REASON_NONE;
        if (certs[i].reason && ca_crl_reason_parse(certs[i].reason, &v[i].reason) != 0)
            v[i].reason = CRL_REASON_NONE;
    }
    return v;
}

/* crl_refresh under the refresh lock. The CRL number, the count of revocations and the list are
 * read together (store_crl_take), so that CRL numbers follow the order of what the CRLs list,
 * also between processes sharing the store. */
static int refresh_locked(struct crl_cache *cc, struct store_conn *conn) {
    struct store_revoked *certs = NULL;
    struct ca_revoked *revoked = NULL;
    struct crl_blob *b = NULL, *old = NULL;
    X509_CRL *crl = NULL;
    size_t n = 0;
    uint64_t number = 0, revocations = 0;
    char err[256];
    int rc = -1;

    if (store_crl_take(conn, &number, &revocations, &certs, &n) != STORE_OK) {
        log_error("crl: the revoked certificates could not be read");
        goto out;
    }
    if (!(revoked = revoked_of(certs, n)) || !(b = calloc(1, sizeof(*b)))) {
        log_error("crl: out of memory");
        goto out;
    }
    if (!(crl = ca_crl_new(cc->ca, revoked, n, number, cc->next_update_s, err, sizeof(err)))) {
        log_error("crl: the CRL could not be signed: %s", err);
        goto out;
    }
    b->cc = cc;
    b->refs = 1;
    b->number = number;
    b->revocations = revocations;
    b->signed_at = time_now_unix();
    if ((b->next_update = certinfo_unix(X509_CRL_get0_nextUpdate(crl))) < 0) {
        log_error("crl: the CRL's nextUpdate could not be read");
        goto out;
    }
    if (!(b->der = ca_crl_der(crl, &b->der_len)) || !(b->pem = ca_crl_pem(b->der, b->der_len))) {
        log_error("crl: out of memory");
        goto out;
    }
    b->pem_len = strlen(b->pem);
    pthread_mutex_lock(&cc->lock);
    old = cc->current;
    cc->current = b;
    pthread_mutex_unlock(&cc->lock);
    b = NULL;
    crl_blob_release(old);
    log_info("crl: signed number=%llu revoked=%zu", (unsigned long long)number, n);
    rc = 0;
out:
    if (b)
        blob_free(b);
    X509_CRL_free(crl);
    free(revoked);
    store_revoked_free(certs, n);
    return rc;
}

int crl_refresh(struct crl_cache *cc, struct store_conn *conn) {
    pthread_mutex_lock(&cc->refresh);
    int rc = refresh_locked(cc, conn);
    pthread_mutex_unlock(&cc->refresh);
    return rc;
}

/* Whether b was read from the store when it had seen n revocations (a count that differs,
 * lower too after a store was restored, makes it stale). */
static int lists_all(const struct crl_blob *b, uint64_t n) {
    return b && b->revocations == n;
}

/* Whether b lists what the store holds and is in the first half of its validity (shorter than
 * next_update_s when the CA expires sooner). */
static int up_to_date(const struct crl_blob *b, uint64_t n) {
    return lists_all(b, n) && time_now_unix() - b->signed_at < (b->next_update - b->signed_at) / 2;
}

struct crl_blob *crl_fresh(struct crl_cache *cc, struct store_conn *conn) {
    struct crl_blob *b = NULL;
    uint64_t n;

    if (store_cert_revocations(conn, &n) != STORE_OK)
        return NULL; /* logged by the store */
    if (up_to_date(b = crl_current(cc), n))
        return b;
    crl_blob_release(b);
    /* Requests that find it stale together wait for one refresh. */
    pthread_mutex_lock(&cc->refresh);
    b = crl_current(cc);
    if (!up_to_date(b, n) && refresh_locked(cc, conn) == 0) {
        crl_blob_release(b);
        b = crl_current(cc);
    }
    pthread_mutex_unlock(&cc->refresh);
    /* When the refresh failed (logged), one past the first half of its validity is still
     * valid, but one lacking a revocation answered before this request is not served, nor one
     * past its nextUpdate, which relying parties take for out of date. */
    if (b && (b->revocations < n || time_now_unix() >= b->next_update)) {
        crl_blob_release(b);
        return NULL;
    }
    return b;
}
