/* The group-commit thread. */
#include "committer.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "provd.h"

struct committer {
    struct store_conn *conn;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct commit_job *head, *tail;
    int stopping;
    int batch_max;
    struct store_write *writes; /* scratch array of batch_max units */
    struct commit_job **jobs;
};

/* Hands the finished jobs back to their workers; one wake-up per worker per batch. */
static void hand_back(struct commit_job **jobs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct worker *w = jobs[i]->w;
        jobs[i]->next = NULL;
        pthread_mutex_lock(&w->done_lock);
        int was_empty = w->done_head == NULL;
        if (w->done_tail)
            w->done_tail->next = jobs[i];
        else
            w->done_head = jobs[i];
        w->done_tail = jobs[i];
        pthread_mutex_unlock(&w->done_lock);
        if (was_empty)
            event_active(w->done_ev, EV_READ, 0);
    }
}

static void *committer_main(void *arg) {
    struct committer *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (!c->head) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        size_t n = 0;
        while (c->head && n < (size_t)c->batch_max) {
            struct commit_job *j = c->head;
            c->head = j->next;
            c->jobs[n++] = j;
        }
        if (!c->head)
            c->tail = NULL;
        pthread_mutex_unlock(&c->lock);

        for (size_t i = 0; i < n; i++)
            c->writes[i] = c->jobs[i]->write;
        int rc = store_commit(c->conn, c->writes, n);
        if (rc != STORE_OK)
            log_error("committer: a batch of %zu writes failed", n);
        for (size_t i = 0; i < n; i++) {
            c->jobs[i]->rc = rc;
            c->jobs[i]->write.conflict = c->writes[i].conflict;
            c->jobs[i]->write.revoked = c->writes[i].revoked;
        }
        hand_back(c->jobs, n);
    }
    return NULL;
}

struct committer *committer_start(struct store *st, int batch_max) {
    struct committer *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->batch_max = batch_max;
    c->writes = calloc((size_t)batch_max, sizeof(*c->writes));
    c->jobs = calloc((size_t)batch_max, sizeof(*c->jobs));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (!c->writes || !c->jobs || store_conn_open(st, &c->conn) != STORE_OK ||
        pthread_create(&c->thread, NULL, committer_main, c) != 0) {
        log_error("committer: could not start");
        store_conn_close(c->conn);
        free(c->writes);
        free(c->jobs);
        free(c);
        return NULL;
    }
    return c;
}

void committer_submit(struct committer *c, struct commit_job *job) {
    job->next = NULL;
    atomic_fetch_add(&job->w->inflight, 1);
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void committer_stop(struct committer *c) {
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    store_conn_close(c->conn);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c->writes);
    free(c->jobs);
    free(c);
}

void committer_run_done(struct worker *w) {
    pthread_mutex_lock(&w->done_lock);
    struct commit_job *j = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->done_lock);
    while (j) {
        struct commit_job *next = j->next;
        atomic_fetch_sub(&w->inflight, 1);
        j->done(j);
        j = next;
    }
}
