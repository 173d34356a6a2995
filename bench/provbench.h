/* provbench: a load generator for provd's device API. Many simulated devices of one enrollment
 * group register over TLS, either reusing a few persistent connections (a gateway) or opening
 * one connection per device (a fleet's first boot). Shared declarations of its three files:
 * provbench.c (options and report), pb_load.c (the client) and pb_stats.c (latency histogram
 * and CPU accounting). */
#ifndef PROV_BENCH_PROVBENCH_H
#define PROV_BENCH_PROVBENCH_H

#include <stdint.h>
#include <sys/types.h>

enum pb_mode {
    PB_KEEPALIVE, /* C persistent connections, one request at a time on each */
    PB_NEWCONN,   /* one new connection (full handshake, no resumption) per device */
    PB_HANDSHAKE, /* bare TLS handshakes, no request: the rate the other modes compare with */
};

struct pb_options {
    const char *endpoint; /* https://HOST:PORT as given */
    char host[256];       /* HOST: SNI, Host header and the certificate's name or address */
    char addr[64];        /* HOST resolved once, numerically: what is connected to */
    int port;
    const char *id_scope;
    const char *group_key; /* base64 group key every device derives its own key from */
    const char *ca_file;
    const char *prefix; /* registration IDs are PREFIX-0 ... PREFIX-(N-1) */
    long devices;
    int concurrency;
    enum pb_mode mode;
    double duration; /* seconds; 0 means every device registers once */
    double timeout;  /* seconds for one request, connection set-up included */
    pid_t server_pid;
    int json;
    int quiet; /* no error samples on stderr */
    int csr;   /* each register body carries a PKCS#10 request; 200 must carry the chain */
};

/* With --csr, key pairs and requests are made before the run, for at most this many devices: a
 * run with more devices cycles through the registration IDs of the first PB_CSR_MAX (a request's
 * CN must be its device's registration ID, so a request cannot be lent to another device). */
#define PB_CSR_MAX 20000L

/* Latency histogram, log-linear: values below 2^(HIST_SUB_BITS+1) µs are exact, larger ones
 * fall into buckets 1/2^HIST_SUB_BITS wide relative to their value (under 1% error). */
#define HIST_SUB_BITS 7
#define HIST_MAX_BITS 40 /* about 12 days in µs; larger values are clamped */
#define HIST_BUCKETS  ((HIST_MAX_BITS - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
    uint64_t count, sum, max;
    uint64_t bucket[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
/* The value at percentile p (0 < p <= 100): the representative value of the bucket holding that
 * rank, never above the maximum recorded. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* What can go wrong with one registration, besides an HTTP status other than 200. */
enum pb_err {
    PB_ERR_CONNECT,       /* TCP connection refused, or closed before the server's ServerHello */
    PB_ERR_TLS,           /* handshake failed: certificate not trusted, alert, EOF during it */
    PB_ERR_TIMEOUT,       /* no answer within --timeout */
    PB_ERR_CLOSED,        /* the server closed the connection before answering */
    PB_ERR_HTTP_PROTOCOL, /* an answer libevent could not parse as HTTP */
    PB_ERR_BAD_BODY,      /* 200 whose body is not the JSON of a registration result */
    PB_ERR_NOT_ASSIGNED,  /* 200 whose status is not "assigned" or names another device */
    PB_ERR_NO_CERT,       /* --csr: 200 without an issuedCertificateChain of 3 certificates */
    PB_ERR_KINDS
};

const char *pb_err_name(enum pb_err e);

#define PB_HTTP_CODES 600

struct pb_result {
    uint64_t done;   /* operations finished, successfully or not */
    uint64_t ok;     /* registrations answered 200 "assigned" (handshakes completed) */
    uint64_t errors; /* done - ok */
    uint64_t err[PB_ERR_KINDS];
    uint64_t http[PB_HTTP_CODES]; /* non-200 statuses (other values land in http[0]) */
    uint64_t connections;         /* TLS connections opened */
    uint64_t elapsed_us;          /* first operation started to last one finished */
    struct hist lat;              /* latency of successful operations, µs */
};

/* The client: set-up (TLS context, event loop) is kept out of the measured run. */
struct pb_load;

/* Returns a client ready to run, or NULL after printing why on stderr. */
struct pb_load *pb_load_new(const struct pb_options *o);
/* Runs the load to its end (every device once, or the duration) and fills r.
 * Returns 0, or -1 when the run could not take place (printed on stderr). */
int pb_load_run(struct pb_load *ld, struct pb_result *r);
void pb_load_free(struct pb_load *ld);

/* CPU accounting over a run. */
struct pb_cpu {
    uint64_t self_us;   /* this process, user + system (getrusage) */
    uint64_t server_us; /* --server-pid, user + system (/proc/PID/stat); 0 when not read */
    int server_ok;
    uint64_t machine_busy, machine_total; /* /proc/stat jiffies, all CPUs */
};

/* Samples the counters; server_pid 0 skips the server. */
void pb_cpu_sample(struct pb_cpu *c, pid_t server_pid);

/* Reads utime + stime of pid from /proc/PID/stat, in µs. Returns 0 or -1. */
int pb_proc_cpu_us(pid_t pid, uint64_t *us);

#endif
