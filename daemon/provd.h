/* The running server: its settings, its store, and the worker threads that serve requests.
 * Each worker owns an event loop, its listening sockets (SO_REUSEPORT) and its own store
 * connection; a request is served start to finish on one worker. */
#ifndef PROVD_PROVD_H
#define PROVD_PROVD_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "config.h"
#include "csr.h"
#include "store.h"

struct ca;
struct committer;
struct crl_cache;
struct deliverer;
struct worker;

struct provd {
    struct provd_config cfg;
    struct store *store;
    struct committer *committer;
    struct deliverer *deliverer; /* sends events to the webhooks */
    /* The event types some enabled webhook subscribes to (event_type_bit), so that decisions
     * nobody listens for cost no event. Kept by the admin API and the delivery thread. */
    atomic_uint events_subscribed;
    SSL_CTX *tls;        /* the admin listener's */
    SSL_CTX *tls_device; /* the device listener's: also asks for a client certificate */
    struct ca *ca;       /* the issuing CA of device certificates */
    struct crl_cache *crl;
    struct csr_policy csr_policy; /* the key types a device's CSR may carry */
    struct worker *workers;
    int nworkers;
    atomic_int stopping;                /* set once shutdown begins */
    atomic_uint_fast64_t groups_gen;    /* bumped by every change to an enrollment group */
    atomic_uint_fast64_t endpoints_gen; /* bumped by every change to an endpoint */
};

struct worker {
    struct provd *pd;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct store_conn *conn;
    struct evhttp *device_http;
    struct evhttp *admin_http;
    struct evhttp_bound_socket *device_sock;
    struct evhttp_bound_socket *admin_sock;
    int stopping;            /* this worker stopped accepting and exits once idle */
    struct event *done_ev;   /* activated by the committer when replies are ready */
    struct event *stop_ev;   /* activated by the main thread at shutdown */
    struct event *accept_ev; /* resumes accepting after the process ran out of descriptors */
    pthread_mutex_t done_lock;
    struct commit_job *done_head, *done_tail; /* committed jobs waiting for their reply */
    atomic_int inflight; /* requests waiting for the committer or an allocation webhook */
    /* server.c's: every request from its arrival until its answer is written out or its
     * connection closes. */
    struct pending_request *pending;
    void *pipeline; /* the registration pipeline's own: its caches, its HTTP client */
};

/* Ends w's event loop when it is stopping, nothing it handed over (to the committer, to an
 * allocation webhook) waits for an answer and every answer is written out. Whoever ends such a
 * wait calls it (server.c). */
void worker_maybe_exit(struct worker *w);

/* Front ends: each answers every request of its listener. */
void device_api_handle(struct evhttp_request *req, void *worker);
void admin_api_handle(struct evhttp_request *req, void *worker);

#endif
