/* The certificate revocation list provd serves on the device listener (GET /crl, /crl.pem).
 *
 * The current CRL is kept signed and encoded in memory, so that serving it costs a reference
 * count: readers take a reference to the current one under a lock, and a refresh swaps in a new
 * one under that lock. A refresh lists the revoked certificates of the store, takes the next CRL
 * number from the store and signs with the issuing CA. provd refreshes at start, and when the
 * CRL is asked for after a revocation or once half of its validity has passed (so that a client
 * holding one fetches it again before its nextUpdate): however many revocations come in between,
 * one CRL is signed, a revocation costs no signature, and a refresh that failed is tried again
 * at the next request. The store counts revocations, so a revocation made through another
 * process sharing the store makes the CRL stale too. */
#ifndef PROVD_CRL_H
#define PROVD_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "store.h"

/* One signed CRL, in the two encodings served. Read-only once published. */
struct crl_blob {
    unsigned char *der;
    size_t der_len;
    char *pem;
    size_t pem_len;
    uint64_t number;      /* its cRLNumber */
    uint64_t revocations; /* the store's count of revocations when it was read */
    int64_t signed_at;    /* Unix time: its thisUpdate */
    int64_t next_update;  /* Unix time: its nextUpdate */
    int refs;             /* guarded by the cache's lock */
    struct crl_cache *cc; /* the cache it belongs to */
};

struct crl_cache;

/* Makes an empty cache for CRLs of ca (not taken over) whose nextUpdate lies next_update_s
 * seconds after their thisUpdate. Returns NULL when out of memory. */
struct crl_cache *crl_cache_new(struct ca *ca, int64_t next_update_s);

/* Frees the cache. No reference may be held any more. NULL is ignored. */
void crl_cache_free(struct crl_cache *cc);

/* Signs a new CRL from the revoked certificates in the store (read through conn) and makes it
 * the current one. Refreshes from several threads are serialised, so the CRL served is always
 * the one with the highest number. Returns 0, or -1 (logged; the previous CRL stays). */
int crl_refresh(struct crl_cache *cc, struct store_conn *conn);

/* The current CRL, with a reference the caller drops with crl_blob_release; NULL before the
 * first refresh. */
struct crl_blob *crl_current(struct crl_cache *cc);

/* The current CRL as crl_current, refreshed first (through conn) when the store has seen a
 * revocation since it was read, whichever process made it, or when half its validity has
 * passed. When that refresh fails (logged), the CRL before it, unless it lacks a revocation or
 * its nextUpdate has passed: then, or when the store cannot be read, NULL. */
struct crl_blob *crl_fresh(struct crl_cache *cc, struct store_conn *conn);

/* Drops a reference taken by crl_current. NULL is ignored. */
void crl_blob_release(struct crl_blob *b);

#endif
