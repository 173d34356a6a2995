/* `provd serve`: listeners, worker threads, signals and orderly shutdown. */
#ifndef PROVD_SERVER_H
#define PROVD_SERVER_H

#include "provd.h"

/* Serves with the settings in pd->cfg until SIGINT or SIGTERM, then lets in-flight requests
 * finish, stops the committer and closes the store. Returns 0, or -1 when it could not start
 * (logged). */
int server_run(struct provd *pd);

#endif
