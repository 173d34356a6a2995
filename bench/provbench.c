/* provbench: registers many simulated devices of one enrollment group against a running provd
 * and reports registrations/s, latency percentiles, errors by kind, and the CPU time provd and
 * provbench itself spent per registration. Options and the report; the client is pb_load.c. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "provbench.h"
#include "regid.h"

#define MAX_CONCURRENCY 10000
#define MAX_DEVICES     100000000L
#define MAX_DURATION    86400.0

static const char usage[] =
    "usage: provbench --endpoint https://HOST:PORT --ca-file FILE --id-scope SCOPE\n"
    "                 --group-key KEY [OPTIONS]\n"
    "\n"
    "Registers simulated devices of one symmetric-key enrollment group with a running provd\n"
    "(PUT /{scope}/registrations/{id}/register). Each device derives its own key from the group\n"
    "key and signs its own SAS token, as a DPS device does. Exits 0 when every registration was\n"
    "answered 200 \"assigned\", 1 when any failed, 2 on bad options.\n"
    "\n"
    "  --endpoint URL       provd's device API, https://HOST:PORT\n"
    "  --ca-file FILE       CA certificate(s) the server certificate must chain to\n"
    "  --id-scope SCOPE     the ID scope of the server\n"
    "  --group-key KEY      the enrollment group's primary key (base64)\n"
    "  --devices N          simulated devices PREFIX-0 .. PREFIX-(N-1) (default 1000)\n"
    "  --concurrency C      registrations in flight at once (default 16)\n"
    "  --mode MODE          keepalive: C persistent TLS connections, one request after another\n"
    "                         on each (a gateway); default\n"
    "                       newconn: a new TLS connection with a full handshake per device (a\n"
    "                         fleet's first boot)\n"
    "                       handshake: TLS handshakes only, no request (the rate newconn is\n"
    "                         compared with; --id-scope and --group-key are not needed)\n"
    "  --duration SECONDS   run that long, cycling through the devices; without it every\n"
    "                       device registers exactly once\n"
    "  --prefix PREFIX      registration ID prefix (default dev)\n"
    "  --csr                every device sends a certificate signing request (its own P-256\n"
    "                       key, CN = its registration ID) and a 200 counts only with an\n"
    "                       issuedCertificateChain of 3 certificates; the rate is then of\n"
    "                       certificate issuances. Keys and requests are made before the run,\n"
    "                       for at most 20000 devices: beyond that the run cycles through\n"
    "                       PREFIX-0 .. PREFIX-19999\n"
    "  --timeout SECONDS    for one registration, connection included (default 30)\n"
    "  --server-pid PID     provd's process ID: report its CPU time per registration\n"
    "                       (from /proc/PID/stat)\n"
    "  --json               print the result as one JSON object\n"
    "  --quiet              do not describe the first errors on stderr\n"
    "  --help               this text\n";

__attribute__((format(printf, 1, 2))) static int bad_option(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "provbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'provbench --help'.\n");
    va_end(ap);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* https://HOST:PORT[/] with HOST a name, an IPv4 address or [IPv6]; fills host, port and the
 * numeric address (resolved once, so that no lookup happens during the run). */
static int parse_endpoint(struct pb_options *o) {
    const char *s = o->endpoint;
    if (strncasecmp(s, "https://", 8) != 0)
        return -1;
    s += 8;
    const char *host_end, *colon;
    if (*s == '[') {
        host_end = strchr(s, ']');
        if (!host_end || host_end[1] != ':')
            return -1;
        snprintf(o->host, sizeof(o->host), "%.*s", (int)(host_end - s - 1), s + 1);
        colon = host_end + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || colon == s || (size_t)(colon - s) >= sizeof(o->host))
            return -1;
        snprintf(o->host, sizeof(o->host), "%.*s", (int)(colon - s), s);
    }
    char port[8];
    size_t plen = strspn(colon + 1, "0123456789");
    if (plen == 0 || plen >= sizeof(port) || (colon[1 + plen] && strcmp(colon + 1 + plen, "/")))
        return -1;
    snprintf(port, sizeof(port), "%.*s", (int)plen, colon + 1);
    long p;
    if (parse_long(port, 1, 65535, &p) != 0)
        return -1;
    o->port = (int)p;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(o->host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "provbench: cannot resolve %s: %s\n", o->host, gai_strerror(rc));
        return -1;
    }
    rc =
        getnameinfo(ai->ai_addr, ai->ai_addrlen, o->addr, sizeof(o->addr), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    return rc == 0 ? 0 : -1;
}

/* Every connection needs a descriptor: raise the soft limit as far as allowed. */
static int enough_files(int concurrency) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rlim_t want = (rlim_t)concurrency + 64;
    if (rl.rlim_cur >= want)
        return 1;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want;
}

static int parse_options(int argc, char **argv, struct pb_options *o) {
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"id-scope", required_argument, NULL, 's'},
                                         {"group-key", required_argument, NULL, 'k'},
                                         {"ca-file", required_argument, NULL, 'a'},
                                         {"devices", required_argument, NULL, 'n'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"prefix", required_argument, NULL, 'p'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"server-pid", required_argument, NULL, 'P'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"csr", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long v;
    int c;
    memset(o, 0, sizeof(*o));
    o->devices = 1000;
    o->concurrency = 16;
    o->mode = PB_KEEPALIVE;
    o->prefix = "dev";
    o->timeout = 30;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            o->endpoint = optarg;
            break;
        case 's':
            o->id_scope = optarg;
            break;
        case 'k':
            o->group_key = optarg;
            break;
        case 'a':
            o->ca_file = optarg;
            break;
        case 'n':
            if (parse_long(optarg, 1, MAX_DEVICES, &o->devices) != 0)
                return bad_option("--devices must be a whole number from 1 to 100000000, not "
                                  "\"%s\"",
                                  optarg);
            break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONCURRENCY, &v) != 0)
                return bad_option("--concurrency must be from 1 to 10000, not \"%s\"", optarg);
            o->concurrency = (int)v;
            break;
        case 'm':
            if (strcmp(optarg, "keepalive") == 0)
                o->mode = PB_KEEPALIVE;
            else if (strcmp(optarg, "newconn") == 0)
                o->mode = PB_NEWCONN;
            else if (strcmp(optarg, "handshake") == 0)
                o->mode = PB_HANDSHAKE;
            else
                return bad_option("--mode must be keepalive, newconn or handshake, not \"%s\"",
                                  optarg);
            break;
        case 'd':
            if (parse_seconds(optarg, 0.001, MAX_DURATION, &o->duration) != 0)
                return bad_option("--duration must be seconds from 0.001 to 86400, not \"%s\"",
                                  optarg);
            break;
        case 'p':
            o->prefix = optarg;
            break;
        case 't':
            if (parse_seconds(optarg, 0.01, 3600, &o->timeout) != 0)
                return bad_option("--timeout must be seconds from 0.01 to 3600, not \"%s\"",
                                  optarg);
            break;
        case 'P':
            if (parse_long(optarg, 1, INT_MAX, &v) != 0)
                return bad_option("--server-pid must be a process ID, not \"%s\"", optarg);
            o->server_pid = (pid_t)v;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'C':
            o->csr = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            return bad_option("%s: unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_option("unexpected argument \"%s\"", argv[optind]);
    if (!o->endpoint)
        return bad_option("%s is required", "--endpoint");
    if (!o->ca_file)
        return bad_option("%s is required (the server certificate is always verified)",
                          "--ca-file");
    if (o->mode != PB_HANDSHAKE && !o->id_scope)
        return bad_option("%s is required", "--id-scope");
    if (o->mode != PB_HANDSHAKE && !o->group_key)
        return bad_option("%s is required", "--group-key");
    if (o->mode == PB_HANDSHAKE && o->csr)
        return bad_option("--csr needs a registration mode, not --mode handshake");
    if (o->id_scope &&
        (!o->id_scope[0] || strlen(o->id_scope) > 64 || strpbrk(o->id_scope, "/?#&% ")))
        return bad_option("--id-scope \"%s\" is not an ID scope", o->id_scope);
    if (parse_endpoint(o) != 0)
        return bad_option("--endpoint must be https://HOST:PORT, not \"%s\"", o->endpoint);
    /* The longest registration ID this run uses must be a valid one. */
    char longest[REGID_MAX + 32];
    const char *why = NULL;
    snprintf(longest, sizeof(longest), "%s-%ld", o->prefix, o->devices - 1);
    if (strlen(longest) > REGID_MAX || regid_check(longest, &why) != 0)
        return bad_option("--prefix \"%s\" does not make valid registration IDs", o->prefix);
    if (o->server_pid) {
        uint64_t us;
        if (pb_proc_cpu_us(o->server_pid, &us) != 0) {
            fprintf(stderr, "provbench: cannot read /proc/%ld/stat (--server-pid)\n",
                    (long)o->server_pid);
            return 2;
        }
    }
    if (!enough_files(o->concurrency)) {
        fprintf(stderr,
                "provbench: --concurrency %d needs more file descriptors than allowed "
                "(ulimit -n)\n",
                o->concurrency);
        return 2;
    }
    return 0;
}

static const char *mode_name(enum pb_mode m) {
    return m == PB_KEEPALIVE ? "keepalive" : m == PB_NEWCONN ? "newconn" : "handshake";
}

/* What one good operation is: with --csr, every good registration issued a certificate. */
static const char *unit_name(const struct pb_options *o) {
    return o->mode == PB_HANDSHAKE ? "handshake" : o->csr ? "issuance" : "registration";
}

struct figures {
    double elapsed_s, rate;
    double server_us, server_cores; /* negative: not measured */
    double self_us, self_cores;
    double busy_pct;
    double busy_cores, other_cores; /* the whole machine; what neither provd nor we used */
};

static struct figures compute(const struct pb_result *r, const struct pb_cpu *a,
                              const struct pb_cpu *b) {
    struct figures f;
    double n = r->done ? (double)r->done : 1;
    f.elapsed_s = (double)r->elapsed_us / 1e6;
    double wall = f.elapsed_s > 0 ? f.elapsed_s : 1e-9;
    f.rate = (double)r->ok / wall;
    f.server_us = f.server_cores = -1;
    if (a->server_ok && b->server_ok) {
        f.server_us = (double)(b->server_us - a->server_us) / n;
        f.server_cores = (double)(b->server_us - a->server_us) / 1e6 / wall;
    }
    f.self_us = (double)(b->self_us - a->self_us) / n;
    f.self_cores = (double)(b->self_us - a->self_us) / 1e6 / wall;
    uint64_t total = b->machine_total - a->machine_total;
    f.busy_pct = total ? 100.0 * (double)(b->machine_busy - a->machine_busy) / (double)total : -1;
    /* Other programs on a shared machine skew every figure: this says how much they ran. */
    long hz = sysconf(_SC_CLK_TCK);
    f.busy_cores = f.other_cores = -1;
    if (total && hz > 0) {
        f.busy_cores = (double)(b->machine_busy - a->machine_busy) / (double)hz / wall;
        f.other_cores = f.busy_cores - f.self_cores - (f.server_cores > 0 ? f.server_cores : 0);
        if (f.other_cores < 0)
            f.other_cores = 0;
    }
    return f;
}

/* v rounded to 1/scale, or null when it was not measured (negative). */
static json_t *rounded(double v, double scale) {
    return v < 0 ? json_null() : json_real(round(v * scale) / scale);
}

static void report_json(const struct pb_options *o, const struct pb_result *r,
                        const struct figures *f) {
    json_t *http = json_object(), *kinds = json_object();
    for (int i = 0; i < PB_HTTP_CODES; i++)
        if (r->http[i]) {
            char k[8];
            snprintf(k, sizeof(k), "%d", i);
            json_object_set_new(http, i ? k : "other", json_integer((json_int_t)r->http[i]));
        }
    for (int k = 0; k < PB_ERR_KINDS; k++)
        json_object_set_new(kinds, pb_err_name((enum pb_err)k),
                            json_integer((json_int_t)r->err[k]));
    json_object_set_new(kinds, "http", http);
    json_t *lat =
        json_pack("{s:I, s:I, s:I, s:I, s:I}", "p50", (json_int_t)hist_percentile(&r->lat, 50),
                  "p90", (json_int_t)hist_percentile(&r->lat, 90), "p99",
                  (json_int_t)hist_percentile(&r->lat, 99), "max", (json_int_t)r->lat.max, "mean",
                  (json_int_t)(r->lat.count ? r->lat.sum / r->lat.count : 0));
    json_t *cpu = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "provd_us_per_op", rounded(f->server_us, 10),
        "provd_cores", rounded(f->server_cores, 100), "provbench_us_per_op",
        rounded(f->self_us, 10), "provbench_cores", rounded(f->self_cores, 100), "machine_busy_pct",
        rounded(f->busy_pct, 10), "machine_busy_cores", rounded(f->busy_cores, 100), "other_cores",
        rounded(f->other_cores, 100));
    json_t *root = json_pack(
        "{s:s, s:s, s:b, s:I, s:I, s:i, s:s, s:f, s:f, s:I, s:I, s:I, s:f, s:I, s:o, s:o, s:o}",
        "mode", mode_name(o->mode), "unit", unit_name(o), "csr", o->csr, "devices",
        (json_int_t)o->devices, "distinct_devices",
        (json_int_t)(o->csr && o->devices > PB_CSR_MAX ? PB_CSR_MAX : o->devices), "concurrency",
        o->concurrency, "prefix", o->prefix, "duration_s", o->duration, "elapsed_s",
        round(f->elapsed_s * 1000) / 1000, "done", (json_int_t)r->done, "ok", (json_int_t)r->ok,
        "errors", (json_int_t)r->errors, "rate_per_s", round(f->rate * 10) / 10, "connections",
        (json_int_t)r->connections, "latency_us", lat, "error_kinds", kinds, "cpu", cpu);
    if (!root) {
        fprintf(stderr, "provbench: cannot build the JSON report\n");
        return;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(root);
}

static void print_ms(const char *label, uint64_t us) {
    printf("%s %.2f ms", label, (double)us / 1000.0);
}

static void report_text(const struct pb_options *o, const struct pb_result *r,
                        const struct figures *f) {
    const char *unit = unit_name(o);
    printf("provbench %s%s: concurrency %d, %ld devices (%s-N), ", mode_name(o->mode),
           o->csr ? " with CSRs" : "", o->concurrency, o->devices, o->prefix);
    if (o->csr && o->devices > PB_CSR_MAX)
        printf("cycling through the first %ld, ", PB_CSR_MAX);
    if (o->duration > 0)
        printf("%.1f s\n", o->duration);
    else
        printf("each device once\n");
    printf("  %s%ss %llu ok, %llu errors in %.3f s: %.1f/s over %llu TLS connections\n",
           o->csr ? "certificate " : "", unit, (unsigned long long)r->ok,
           (unsigned long long)r->errors, f->elapsed_s, f->rate,
           (unsigned long long)r->connections);
    printf("  latency");
    print_ms(" p50", hist_percentile(&r->lat, 50));
    print_ms(", p90", hist_percentile(&r->lat, 90));
    print_ms(", p99", hist_percentile(&r->lat, 99));
    print_ms(", max", r->lat.max);
    printf("\n  cpu per %s:", unit);
    if (f->server_us >= 0)
        printf(" provd %.1f us (%.2f cores),", f->server_us, f->server_cores);
    printf(" provbench %.1f us (%.2f cores)", f->self_us, f->self_cores);
    if (f->busy_cores >= 0)
        printf("; machine %.2f cores busy, %.2f of them by other programs", f->busy_cores,
               f->other_cores);
    printf("\n");
    if (r->errors) {
        printf("  errors:");
        const char *sep = " ";
        for (int k = 0; k < PB_ERR_KINDS; k++)
            if (r->err[k]) {
                printf("%s%s %llu", sep, pb_err_name((enum pb_err)k),
                       (unsigned long long)r->err[k]);
                sep = ", ";
            }
        for (int i = 0; i < PB_HTTP_CODES; i++)
            if (r->http[i]) {
                if (i)
                    printf("%shttp %d %llu", sep, i, (unsigned long long)r->http[i]);
                else
                    printf("%shttp other %llu", sep, (unsigned long long)r->http[i]);
                sep = ", ";
            }
        printf("\n");
    }
}

int main(int argc, char **argv) {
    struct pb_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc;
    /* Writes to a connection the server has closed must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    struct pb_load *ld = pb_load_new(&o);
    if (!ld)
        return 2;
    struct pb_result *r = calloc(1, sizeof(*r));
    struct pb_cpu before, after;
    if (!r) {
        pb_load_free(ld);
        return 2;
    }
    pb_cpu_sample(&before, o.server_pid);
    rc = pb_load_run(ld, r);
    pb_cpu_sample(&after, o.server_pid);
    pb_load_free(ld);
    if (rc == 0) {
        struct figures f = compute(r, &before, &after);
        if (o.json)
            report_json(&o, r, &f);
        else
            report_text(&o, r, &f);
        rc = r->errors || r->ok == 0 ? 1 : 0;
    } else {
        rc = 2;
    }
    free(r);
    return rc;
}
