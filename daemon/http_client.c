/* The event-loop HTTPS client. See http_client.h.
 *
 * libcurl's multi "socket" interface tells, through two callbacks, which sockets it wants
 * watched and when it next wants to be called; both become libevent events on the worker's
 * base. When an event fires, curl_multi_socket_action does the work that is ready, and the
 * requests it finished are handed to their callbacks. Nothing here blocks: name resolution runs
 * in libcurl's resolver thread, connections and TLS proceed as their sockets become ready. */
#include "http_client.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "log.h"

struct http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *ca_file;
    struct request *running; /* a list, so that http_client_free can release them */
};

struct request {
    struct request *next, *prev;
    struct http_client *c;
    CURL *easy;
    struct curl_slist *headers; /* may hold a shared secret: wiped when freed */
    char *answer;
    size_t len, max;
    int too_large;
    char errbuf[CURL_ERROR_SIZE];
    http_client_done done;
    void *arg;
};

static void slist_free_wiped(struct curl_slist *l) {
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static void request_free(struct request *r) {
    struct http_client *c = r->c;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (c->running == r)
        c->running = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    if (r->easy != NULL) {
        curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    slist_free_wiped(r->headers);
    free(r->answer);
    free(r);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct request *r = userdata;
    size_t n = size * nmemb;
    char *p;

    if (n > r->max - r->len) {
        r->too_large = 1;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if ((p = realloc(r->answer, r->len + n + 1)) == NULL)
        return 0;
    memcpy(p + r->len, ptr, n);
    r->answer = p;
    r->len += n;
    p[r->len] = '\0';
    return n;
}

/* Hands every request libcurl has finished to its callback. */
static void reap(struct http_client *c) {
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct http_client_result res = {0};
        struct request *r = NULL;
        CURLcode rc = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (rc == CURLE_OK)
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        res.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        res.too_large = r->too_large;
        if (rc != CURLE_OK)
            res.error = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
        res.body = r->answer != NULL ? r->answer : "";
        res.body_len = r->len;
        r->done(&res, r->arg);
        request_free(r);
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg) {
    struct http_client *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;

    curl_multi_socket_action(c->multi, fd, flags, &running);
    reap(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    struct http_client *c = arg;
    int running = 0;

    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap(c);
}

/* libcurl's socket callback: watch s for what it asks, with one event per socket kept as the
 * socket's libcurl-assigned pointer. */
static int watch_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    struct http_client *c = userp;
    struct event *ev = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_free(ev);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (ev != NULL) {
        event_del(ev);
        event_assign(ev, c->base, s, kind, on_socket, c);
    } else if ((ev = event_new(c->base, s, kind, on_socket, c)) == NULL ||
               curl_multi_assign(c->multi, s, ev) != CURLM_OK) {
        log_error("http client: cannot watch a socket");
        if (ev != NULL)
            event_free(ev);
        return -1;
    }
    return event_add(ev, NULL) == 0 ? 0 : -1;
}

/* libcurl's timer callback: call it back after timeout_ms (-1: no timer needed). */
static int set_timer(CURLM *multi, long timeout_ms, void *userp) {
    struct http_client *c = userp;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    (void)multi;
    if (timeout_ms < 0)
        return evtimer_del(c->timer);
    return evtimer_add(c->timer, &tv);
}

struct http_client *http_client_new(struct event_base *base, const char *ca_file) {
    struct http_client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        goto fail;
    c->base = base;
    if ((ca_file != NULL && (c->ca_file = strdup(ca_file)) == NULL) ||
        (c->multi = curl_multi_init()) == NULL ||
        (c->timer = evtimer_new(base, on_timer, c)) == NULL ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, watch_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, set_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
        goto fail;
    return c;
fail:
    log_error("http client: libcurl could not be set up");
    http_client_free(c);
    return NULL;
}

void http_client_free(struct http_client *c) {
    if (c == NULL)
        return;
    while (c->running != NULL)
        request_free(c->running);
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    if (c->timer != NULL)
        event_free(c->timer);
    free(c->ca_file);
    free(c);
}

int http_client_post(struct http_client *c, const char *url, const char *body,
                     const char *const *headers, long timeout_ms, size_t max_body,
                     http_client_done done, void *arg) {
    struct request *r = calloc(1, sizeof(*r));
    struct curl_slist *h;
    int ok;

    if (r == NULL)
        return -1;
    r->c = c;
    r->max = max_body;
    r->done = done;
    r->arg = arg;
    r->next = c->running;
    if (c->running != NULL)
        c->running->prev = r;
    c->running = r;
    if ((r->easy = curl_easy_init()) == NULL)
        goto fail;
    r->headers = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    for (size_t i = 0; r->headers != NULL && headers != NULL && headers[i] != NULL; i++) {
        if ((h = curl_slist_append(r->headers, headers[i])) == NULL) {
            slist_free_wiped(r->headers);
            r->headers = NULL;
        } else {
            r->headers = h;
        }
    }
    ok =
        r->headers != NULL && curl_easy_setopt(r->easy, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
        /* libcurl's built-in CA directory would still be trusted beside a CA file: cleared, so
         * that the file replaces the system's CAs. */
        (c->ca_file == NULL || (curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->ca_file) == CURLE_OK &&
                                curl_easy_setopt(r->easy, CURLOPT_CAPATH, NULL) == CURLE_OK)) &&
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "provd/" PROV_VERSION) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK &&
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) == CURLE_OK;
    if (!ok)
        goto fail;
    /* From here on the request belongs to the multi handle, which first calls set_timer: the
     * work, and done, happen on the event loop. */
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        goto fail;
    return 0;
fail:
    log_error("http client: a request could not be started");
    request_free(r);
    return -1;
}
