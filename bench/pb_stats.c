/* provbench's measurements: the latency histogram and CPU time of itself, of provd and of the
 * whole machine. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "provbench.h"

#define SUB (1u << HIST_SUB_BITS)

static unsigned hist_index(uint64_t v) {
    if (v < 2 * SUB)
        return (unsigned)v;
    if (v >= (uint64_t)1 << HIST_MAX_BITS)
        v = ((uint64_t)1 << HIST_MAX_BITS) - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS; /* >= 1 */
    return 2 * SUB + (shift - 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i) {
    if (i < 2 * SUB)
        return i;
    unsigned shift = (i - 2 * SUB) / SUB + 1;
    uint64_t top = SUB + (i - 2 * SUB) % SUB;
    return (top << shift) + ((uint64_t)1 << (shift - 1));
}

void hist_add(struct hist *h, uint64_t v) {
    h->bucket[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_percentile(const struct hist *h, double p) {
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

const char *pb_err_name(enum pb_err e) {
    switch (e) {
    case PB_ERR_CONNECT:
        return "connect";
    case PB_ERR_TLS:
        return "tls";
    case PB_ERR_TIMEOUT:
        return "timeout";
    case PB_ERR_CLOSED:
        return "closed";
    case PB_ERR_HTTP_PROTOCOL:
        return "http_protocol";
    case PB_ERR_BAD_BODY:
        return "bad_body";
    case PB_ERR_NOT_ASSIGNED:
        return "not_assigned";
    case PB_ERR_NO_CERT:
        return "no_certificate";
    case PB_ERR_KINDS:
        break;
    }
    return "?";
}

int pb_proc_cpu_us(pid_t pid, uint64_t *us) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields are counted from the
     * last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return -1;
    *us = (uint64_t)(utime + stime) * 1000000u / (uint64_t)hz;
    return 0;
}

/* Busy and total jiffies of all CPUs from the first line of /proc/stat. */
static void machine_jiffies(uint64_t *busy, uint64_t *total) {
    *busy = *total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* idle and iowait are not busy */
    }
    fclose(f);
}

void pb_cpu_sample(struct pb_cpu *c, pid_t server_pid) {
    struct rusage ru;
    memset(c, 0, sizeof(*c));
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c->self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
                     (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    if (server_pid > 0)
        c->server_ok = pb_proc_cpu_us(server_pid, &c->server_us) == 0;
    machine_jiffies(&c->machine_busy, &c->machine_total);
}
