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
#include "store.h"

struct committer;
struct worker;

struct provd {
    struct provd_config cfg;
    struct store *store;
    struct committer *committer;
    SSL_CTX *tls;
    struct worker *workers;
    int nworkers;
    atomic_int stopping;             /* set once shutdown begins */
    atomic_uint_fast64_t groups_gen; /* bumped by every change to an enrollment group */
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
    int stopping;          /* this worker stopped accepting and exits once idle */
    struct event *done_ev; /* activated by the committer when replies are ready */
    struct event *stop_ev; /* activated by the main thread at shutdown */
    pthread_mutex_t done_lock;
    struct commit_job *done_head, *done_tail; /* committed jobs waiting for their reply */
    atomic_int inflight;                      /* requests waiting for the committer */
    void *group_cache;                        /* owned by the registration pipeline */
};

/* Front ends: each answers every request of its listener. */
void device_api_handle(struct evhttp_request *req, void *worker);
void admin_api_handle(struct evhttp_request *req, void *worker);

#endif
