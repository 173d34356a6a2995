/* A TLS client that sends an HTTP request as slowly as told, for the request deadline of provd's
 * listeners. It connects to 127.0.0.1:PORT and verifies the server against --ca; with --first it
 * gets one answer at full speed on the connection and waits --pause seconds (reading, so that a
 * close meanwhile ends the wait); then it sends GET /healthz (Connection: close, padded to --size
 * bytes, 100 by default) one byte every --interval seconds, each byte a TLS record of its own,
 * reads until the answer is complete or the server closes the connection, and then waits for the
 * close the request asked for.
 *
 * Usage: slow_client --port PORT --ca PEM --interval SECONDS [--size BYTES] [--first]
 *                    [--pause SECONDS] [--raw]
 *   --raw  the request is encrypted at once, as one TLS record, and that record's bytes are
 *          sent one every --interval seconds: the server can decrypt nothing before the last.
 * It prints one line:
 *   status=CODE|none sent=N/TOTAL since_connect_ms=MS since_answer_ms=MS|- since_start_ms=MS
 *   close=notify|eof|none
 * the times to the end of the answer or to the close: since the connection was made, since the
 * end of the --first answer, and since the first byte of the slow request was sent; and how the
 * server ended the connection: with a TLS close_notify alert, without one (a TCP close or reset),
 * or not within 15 s of the answer. Exit status 0, or 1 when it could not connect or the --first
 * answer did not come. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define ANSWER_MAX     65536
#define READ_WAIT_MS   15000
#define REQUEST_PREFIX "GET /healthz HTTP/1.1\r\nHost: provd\r\nConnection: close\r\nX-Pad: "

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The milliseconds left until the time until (in now_ms's terms), for poll: never negative. */
static int ms_left(double until) {
    double left = until - now_ms();
    return left > 0 ? (int)left + 1 : 0;
}

/* How the server ended the connection. */
enum closed { OPEN, CLOSED_EOF, CLOSED_NOTIFY };

/* An answer as it arrives: complete once its headers and Content-Length bytes are in. */
struct answer {
    char buf[ANSWER_MAX + 1];
    size_t len;
    enum closed closed;
};

static int answer_complete(const struct answer *a) {
    const char *end = strstr(a->buf, "\r\n\r\n");
    if (!end)
        return 0;
    size_t body = 0;
    for (const char *h = strstr(a->buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            body = (size_t)strtoul(h + 17, NULL, 10);
    return a->len >= (size_t)(end + 4 - a->buf) + body;
}

static int answer_status(const struct answer *a) {
    int status = 0;
    return sscanf(a->buf, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

/* Reads what the server sent, waiting up to wait_ms for something to arrive. Returns 1 when the
 * answer is complete or the connection closed, else 0. */
static int pump(SSL *ssl, int fd, struct answer *a, int wait_ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (SSL_pending(ssl) == 0 && poll(&pfd, 1, wait_ms) <= 0)
        return 0;
    for (;;) {
        char tmp[4096];
        int n = SSL_read(ssl, tmp, sizeof(tmp));
        if (n > 0) {
            size_t room = ANSWER_MAX - a->len, take = (size_t)n < room ? (size_t)n : room;
            memcpy(a->buf + a->len, tmp, take);
            a->len += take;
            a->buf[a->len] = '\0';
            continue;
        }
        int err = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return answer_complete(a);
        a->closed = err == SSL_ERROR_ZERO_RETURN ? CLOSED_NOTIFY : CLOSED_EOF;
        return 1;
    }
}

/* Sends len bytes: through TLS, or raw to the socket. Returns 0, or -1 when the connection is
 * gone. */
static int send_bytes(SSL *ssl, int fd, const char *p, size_t len, int raw) {
    while (len > 0) {
        int n = raw ? (int)send(fd, p, len, 0) : SSL_write(ssl, p, (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int again = raw ? (errno == EAGAIN || errno == EWOULDBLOCK)
                        : SSL_get_error(ssl, n) == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (!again || poll(&pfd, 1, READ_WAIT_MS) <= 0)
            return -1;
    }
    return 0;
}

/* The TLS record bytes of the request, encrypted at once (the caller frees), in *len. */
static char *encrypt_whole(SSL *ssl, const char *req, size_t reqlen, size_t *len) {
    BIO *sock = SSL_get_wbio(ssl), *mem = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (!mem || !BIO_up_ref(sock)) {
        BIO_free(mem);
        return NULL;
    }
    SSL_set0_wbio(ssl, mem);
    if (SSL_write(ssl, req, (int)reqlen) == (int)reqlen) {
        char *data;
        long n = BIO_get_mem_data(mem, &data);
        if (n > 0 && (out = malloc((size_t)n)) != NULL) {
            memcpy(out, data, (size_t)n);
            *len = (size_t)n;
        }
    }
    SSL_set0_wbio(ssl, sock);
    return out;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"ca", required_argument, NULL, 'c'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"size", required_argument, NULL, 's'},
                                         {"first", no_argument, NULL, 'f'},
                                         {"pause", required_argument, NULL, 'w'},
                                         {"raw", no_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int port = 0, first = 0, raw = 0, c;
    size_t size = 100;
    double interval = -1, pause = 0;
    const char *ca = NULL;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'c':
            ca = optarg;
            break;
        case 'i':
            interval = atof(optarg);
            break;
        case 's':
            size = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            first = 1;
            break;
        case 'w':
            pause = atof(optarg);
            break;
        case 'r':
            raw = 1;
            break;
        default:
            return 2;
        }
    }
    if (port <= 0 || !ca || interval < 0 || size < sizeof(REQUEST_PREFIX) + 4) {
        fprintf(stderr, "usage: slow_client --port PORT --ca PEM --interval SECONDS"
                        " [--size BYTES] [--first] [--pause SECONDS] [--raw]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* The request: the prefix, then X-Pad's value up to size bytes in all. */
    char *req = malloc(size + 1);
    size_t pad = size - (sizeof(REQUEST_PREFIX) - 1) - 4;
    if (!req)
        return 1;
    snprintf(req, size + 1, "%s%*s\r\n\r\n", REQUEST_PREFIX, (int)pad, "");
    memset(req + sizeof(REQUEST_PREFIX) - 1, 'a', pad);

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        fprintf(stderr, "slow_client: cannot load %s\n", ca);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        fprintf(stderr, "slow_client: connect: %s\n", strerror(errno));
        return 1;
    }
    double t_connect = now_ms(), t_answer = -1;
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        fprintf(stderr, "slow_client: TLS handshake failed\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    static struct answer a;
    if (first) {
        static const char quick[] = "GET /healthz HTTP/1.1\r\nHost: provd\r\n\r\n";
        double until = now_ms() + READ_WAIT_MS;
        if (send_bytes(ssl, fd, quick, sizeof(quick) - 1, 0) != 0)
            return 1;
        while (!pump(ssl, fd, &a, 100) && now_ms() < until)
            ;
        if (a.closed || answer_status(&a) != 200) {
            fprintf(stderr, "slow_client: the first answer did not come: %s\n", a.buf);
            return 1;
        }
        t_answer = now_ms();
        memset(&a, 0, sizeof(a));
        until = t_answer + pause * 1000.0;
        while (!a.closed && now_ms() < until)
            pump(ssl, fd, &a, ms_left(until));
    }

    const char *bytes = req;
    size_t total = size, sent = 0;
    char *record = NULL;
    if (raw && !(bytes = record = encrypt_whole(ssl, req, size, &total))) {
        fprintf(stderr, "slow_client: could not encrypt the request\n");
        return 1;
    }
    double t_start = now_ms(), t_end;
    int done = 0;
    while (sent < total && !done && !a.closed) {
        if (send_bytes(ssl, fd, bytes + sent, 1, raw) != 0) {
            a.closed = CLOSED_EOF;
            break;
        }
        sent++;
        /* Waits the interval, noticing at once an answer or a close. */
        double until = now_ms() + interval * 1000.0;
        while (!done && now_ms() < until)
            done = pump(ssl, fd, &a, ms_left(until));
    }
    double until = now_ms() + READ_WAIT_MS;
    while (!a.closed && !answer_complete(&a) && now_ms() < until)
        pump(ssl, fd, &a, 100);
    t_end = now_ms();
    until = t_end + READ_WAIT_MS;
    while (!a.closed && now_ms() < until)
        pump(ssl, fd, &a, 100);

    int status = answer_status(&a);
    char st[16] = "none", since_answer[32] = "-";
    static const char *const closes[] = {"none", "eof", "notify"};
    if (status)
        snprintf(st, sizeof(st), "%d", status);
    if (t_answer >= 0)
        snprintf(since_answer, sizeof(since_answer), "%.0f", t_end - t_answer);
    printf("status=%s sent=%zu/%zu since_connect_ms=%.0f since_answer_ms=%s since_start_ms=%.0f"
           " close=%s\n",
           st, sent, total, t_end - t_connect, since_answer, t_end - t_start, closes[a.closed]);
    free(record);
    free(req);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return 0;
}
