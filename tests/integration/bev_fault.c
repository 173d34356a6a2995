/* Loaded into provd with LD_PRELOAD: makes every Nth TLS bufferevent fail to be made, the way
 * libevent 2.1 fails when it cannot allocate one, so that the tests can drive provd's handling
 * of that failure with real clients. With BEV_OPT_CLOSE_ON_FREE, libevent then frees the SSL it
 * was given and returns NULL; so does this.
 *
 * PROVD_TEST_BEV_FAIL_EVERY=N (N >= 1) in the environment: the Nth, 2Nth, ... calls of
 * bufferevent_openssl_socket_new in the process fail; unset or 0, none does. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

typedef struct bufferevent *(*socket_new_fn)(struct event_base *, evutil_socket_t, SSL *,
                                             enum bufferevent_ssl_state, int);

struct bufferevent *bufferevent_openssl_socket_new(struct event_base *base, evutil_socket_t fd,
                                                   SSL *ssl, enum bufferevent_ssl_state state,
                                                   int options) {
    static atomic_long calls;
    const char *every = getenv("PROVD_TEST_BEV_FAIL_EVERY");
    long n = every ? strtol(every, NULL, 10) : 0, call = atomic_fetch_add(&calls, 1) + 1;

    if (n > 0 && call % n == 0) {
        if (options & BEV_OPT_CLOSE_ON_FREE)
            SSL_free(ssl);
        return NULL;
    }
    socket_new_fn real = (socket_new_fn)dlsym(RTLD_NEXT, "bufferevent_openssl_socket_new");
    return real ? real(base, fd, ssl, state, options) : NULL;
}
