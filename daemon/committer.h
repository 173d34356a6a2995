/* Group commit: one thread owns a store connection and writes the registrations and audit
 * records of many requests in one durable transaction, then hands each request back to the
 * worker that owns it. This keeps "durable before the answer leaves" cheap: one fsync covers
 * every request that arrived while the previous batch was being written. */
#ifndef PROVD_COMMITTER_H
#define PROVD_COMMITTER_H

#include "store.h"

struct worker;
struct committer;

struct commit_job {
    struct commit_job *next;
    struct worker *w;                     /* whose event loop runs done() */
    struct store_write write;             /* what to make durable */
    int rc;                               /* the store's answer, set before done() runs */
    void (*done)(struct commit_job *job); /* runs on w's thread after the commit */
};

/* Starts the committer thread with its own connection to st. Returns NULL on failure. */
struct committer *committer_start(struct store *st, int batch_max);

/* Queues job (from any thread). Its done() runs later on job->w's thread. */
void committer_submit(struct committer *c, struct commit_job *job);

/* Commits what is queued, stops the thread and frees c. Call only once no worker submits. */
void committer_stop(struct committer *c);

/* Runs done() of every job the committer handed to w. The worker's done event calls it. */
void committer_run_done(struct worker *w);

#endif
