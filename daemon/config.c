/* Settings: defaults, then the data directory's provd.json, then flags (applied by main). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "durable.h"
#include "endpoint.h"
#include "log.h"
#include "regid.h"

void config_set(char **field, const char *value) {
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy) {
        log_error("out of memory");
        abort();
    }
    free(*field);
    *field = copy;
}

static char *path_in(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        log_error("out of memory");
        abort();
    }
    return p;
}

void config_defaults(struct provd_config *cfg, const char *data_dir) {
    memset(cfg, 0, sizeof(*cfg));
    config_set(&cfg->data_dir, data_dir);
    config_set(&cfg->device_listen, "0.0.0.0:8443");
    config_set(&cfg->admin_listen, "127.0.0.1:8444");
    char *db = path_in(data_dir, "provd.db");
    if (asprintf(&cfg->store, "sqlite:%s", db) < 0)
        abort();
    free(db);
    cfg->tls_cert = path_in(data_dir, "tls/server.pem");
    cfg->tls_key = path_in(data_dir, "tls/server.key");
    config_set(&cfg->log_level, "info");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = n > 0 ? (int)n : 1;
    cfg->max_body_bytes = 64 * 1024;
    cfg->idle_timeout_s = 60;
    cfg->request_timeout_s = 30;
    cfg->sas_max_lifetime_s = 365LL * 24 * 3600;
    cfg->commit_batch_max = 1024;
    cfg->event_timeout_ms = 10 * 1000;
    cfg->event_retry_base_ms = 1000;
    cfg->event_retry_max_ms = 10 * 60 * 1000;
    cfg->event_max_attempts = 200;
    cfg->event_max_age_s = 24 * 3600;
    cfg->event_retention_h = 7 * 24;
    cfg->allocation_timeout_ms = 5000;
    cfg->cert_validity_days = 365;
    config_set(&cfg->csr_key_policy, "p256,p384,rsa");
    cfg->crl_next_update_s = 86400;
}

/* The settings provd.json may hold: name, type, where it goes. A setting whose default is the
 * machine's (machine) is saved only when it differs, so that the file does not pin it to the
 * machine that wrote it. */
enum ctype { C_STR, C_INT, C_SIZE, C_I64 };
struct centry {
    const char *key;
    enum ctype type;
    size_t off;
    long long min, max;
    int machine;
};
#define STR(k, f)                                                                                  \
    { k, C_STR, offsetof(struct provd_config, f), 0, 0, 0 }
#define NUM(k, t, f, lo, hi)                                                                       \
    { k, t, offsetof(struct provd_config, f), lo, hi, 0 }
#define MACHINE_INT(k, f, lo, hi)                                                                  \
    { k, C_INT, offsetof(struct provd_config, f), lo, hi, 1 }
static const struct centry entries[] = {
    STR("id_scope", id_scope),
    STR("device_listen", device_listen),
    STR("admin_listen", admin_listen),
    STR("store", store),
    STR("tls_cert", tls_cert),
    STR("tls_key", tls_key),
    STR("log_level", log_level),
    MACHINE_INT("workers", workers, 1, 256),
    NUM("max_body_bytes", C_SIZE, max_body_bytes, 1024, 64LL * 1024 * 1024),
    NUM("idle_timeout_s", C_INT, idle_timeout_s, 1, 86400),
    NUM("request_timeout_s", C_INT, request_timeout_s, 1, 86400),
    NUM("sas_max_lifetime_s", C_I64, sas_max_lifetime_s, 0, 100LL * 365 * 24 * 3600),
    NUM("commit_batch_max", C_INT, commit_batch_max, 1, 65536),
    STR("event_ca_file", event_ca_file),
    NUM("event_timeout_ms", C_INT, event_timeout_ms, 100, 300 * 1000),
    NUM("event_retry_base_ms", C_INT, event_retry_base_ms, 10, 3600 * 1000),
    NUM("event_retry_max_ms", C_INT, event_retry_max_ms, 10, 24 * 3600 * 1000),
    NUM("event_max_attempts", C_INT, event_max_attempts, 1, 10000),
    NUM("event_max_age_s", C_INT, event_max_age_s, 1, 365 * 24 * 3600),
    NUM("event_retention_h", C_INT, event_retention_h, 0, 10 * 365 * 24),
    STR("region", region),
    STR("allocation_ca_file", allocation_ca_file),
    STR("allocation_secret", allocation_secret),
    NUM("allocation_timeout_ms", C_INT, allocation_timeout_ms, 100, 60 * 1000),
    NUM("cert_validity_days", C_INT, cert_validity_days, 1, 100 * 365),
    STR("csr_key_policy", csr_key_policy),
    NUM("crl_next_update_s", C_I64, crl_next_update_s, 60, 366LL * 86400),
};
#undef STR
#undef NUM
#undef MACHINE_INT

static const struct centry *find_entry(const char *key) {
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (strcmp(entries[i].key, key) == 0)
            return &entries[i];
    return NULL;
}

int config_load(struct provd_config *cfg, char *err, size_t errlen) {
    char *path = path_in(cfg->data_dir, "provd.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!root) {
        snprintf(err, errlen, "%s: %s (line %d, column %d)", path, jerr.text, jerr.line,
                 jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const struct centry *e = find_entry(key);
        if (!e) {
            snprintf(err, errlen, "%s: unknown setting \"%s\"", path, key);
            goto out;
        }
        char *field = (char *)cfg + e->off;
        if (e->type == C_STR) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "%s: \"%s\" must be a string", path, key);
                goto out;
            }
            config_set((char **)(void *)field, json_string_value(v));
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) < e->min ||
            json_integer_value(v) > e->max) {
            snprintf(err, errlen, "%s: \"%s\" must be an integer from %lld to %lld", path, key,
                     e->min, e->max);
            goto out;
        }
        json_int_t n = json_integer_value(v);
        if (e->type == C_INT)
            *(int *)(void *)field = (int)n;
        else if (e->type == C_SIZE)
            *(size_t *)(void *)field = (size_t)n;
        else
            *(int64_t *)(void *)field = (int64_t)n;
    }
    rc = 0;
out:
    json_decref(root);
    free(path);
    return rc;
}

int config_listen_parse(const char *key, const char *s, struct config_listen *out, char *err,
                        size_t errlen) {
    const char *host, *colon;
    size_t hostlen;
    if (!s) {
        snprintf(err, errlen, "%s is not set", key);
        return -1;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') {
            snprintf(err, errlen, "%s \"%s\": expected HOST:PORT or [IPV6]:PORT", key, s);
            return -1;
        }
        host = s + 1;
        hostlen = (size_t)(end - host);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "%s \"%s\": expected HOST:PORT or [IPV6]:PORT", key, s);
            return -1;
        }
        host = s;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0) {
        snprintf(err, errlen,
                 "%s \"%s\": the host is missing (0.0.0.0 or [::] listens on every address)", key,
                 s);
        return -1;
    }
    if (hostlen > CONFIG_LISTEN_HOST_MAX) {
        snprintf(err, errlen, "%s \"%.64s...\": the host is longer than %d characters", key, s,
                 CONFIG_LISTEN_HOST_MAX);
        return -1;
    }
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    long n = digits > 0 && digits <= 5 && port[digits] == '\0' ? strtol(port, NULL, 10) : -1;
    if (n < 0 || n > 65535) {
        snprintf(err, errlen, "%s \"%s\": the port must be from 0 to 65535", key, s);
        return -1;
    }
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    out->port = n;
    return 0;
}

/* A numeric host as 16 bytes (IPv4 in the first 4), with its family; 0 for a name. */
static int numeric_host(const char *host, unsigned char addr[16]) {
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, host, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, host, addr) == 1)
        return AF_INET6;
    return 0;
}

static int is_zero(const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Whether two listeners on one port would share connections: both bind with SO_REUSEPORT, so
 * the kernel lets them, and spreads the connections between them. They overlap on the same
 * host, or when either is a wildcard address (0.0.0.0, ::) that takes in the other. */
static int listen_overlap(const struct config_listen *a, const struct config_listen *b) {
    unsigned char aa[16], ba[16];
    if (a->port == 0 || a->port != b->port)
        return 0;
    int af = numeric_host(a->host, aa), bf = numeric_host(b->host, ba);
    int awild = af && is_zero(aa, 16), bwild = bf && is_zero(ba, 16);
    if (awild || bwild) {
        /* 0.0.0.0 takes in the IPv4 addresses (and names); :: takes in everything. */
        if ((awild && af == AF_INET6) || (bwild && bf == AF_INET6))
            return 1;
        return (awild ? bf : af) != AF_INET6;
    }
    if (af && af == bf)
        return memcmp(aa, ba, 16) == 0;
    return strcasecmp(a->host, b->host) == 0;
}

/* A CA bundle must be a regular file provd can read. */
static int check_file(const char *key, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s \"%s\": %s", key, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s \"%s\": not a regular file", key, path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s \"%s\": %s", key, path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

int config_check(const struct provd_config *cfg, char *err, size_t errlen) {
    struct config_listen dev, adm;
    const char *why = NULL;

    if (cfg->id_scope && regid_check(cfg->id_scope, &why) != 0) {
        snprintf(err, errlen,
                 "id_scope \"%s\": %s (1 to 128 letters, digits, '-', '.', '_' and ':', not "
                 "starting or ending with one of the last four)",
                 cfg->id_scope, why);
        return -1;
    }
    if (config_listen_parse("device_listen", cfg->device_listen, &dev, err, errlen) != 0 ||
        config_listen_parse("admin_listen", cfg->admin_listen, &adm, err, errlen) != 0)
        return -1;
    if (listen_overlap(&dev, &adm)) {
        snprintf(err, errlen,
                 "device_listen \"%s\" and admin_listen \"%s\" would share port %ld: give the "
                 "listeners different ports or addresses",
                 cfg->device_listen, cfg->admin_listen, dev.port);
        return -1;
    }
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    int level_ok = 0;
    for (size_t i = 0; cfg->log_level && i < sizeof(levels) / sizeof(levels[0]); i++)
        level_ok |= strcmp(cfg->log_level, levels[i]) == 0;
    if (!level_ok) {
        snprintf(err, errlen, "log_level \"%s\": must be error, warn, info or debug",
                 cfg->log_level ? cfg->log_level : "");
        return -1;
    }
    if ((cfg->event_ca_file && check_file("event_ca_file", cfg->event_ca_file, err, errlen)) ||
        (cfg->allocation_ca_file &&
         check_file("allocation_ca_file", cfg->allocation_ca_file, err, errlen)))
        return -1;
    if (cfg->region &&
        (strlen(cfg->region) > ENDPOINT_REGION_MAX || regid_check(cfg->region, NULL) != 0)) {
        snprintf(err, errlen,
                 "region \"%s\": must be 1 to %d letters, digits, '-', '.', '_' and ':', as the "
                 "regions of endpoints",
                 cfg->region, ENDPOINT_REGION_MAX);
        return -1;
    }
    if (cfg->allocation_secret) {
        const char *sec = cfg->allocation_secret;
        size_t n = strlen(sec);
        int ctl = 0;
        for (size_t i = 0; i < n; i++)
            ctl |= (unsigned char)sec[i] < 0x20 || sec[i] == 0x7f;
        /* Never quoted: the secret is not logged. */
        if (n == 0 || ctl || sec[0] == ' ' || sec[n - 1] == ' ') {
            snprintf(err, errlen,
                     "allocation_secret: must be non-empty, without control characters and "
                     "without spaces at either end (it is sent as an HTTP header value)");
            return -1;
        }
    }
    return 0;
}

/* Paths that default to places inside the data directory are saved only when they differ from
 * the default, so that a data directory can be moved or named by a relative path. */
int config_save(const struct provd_config *cfg, char *err, size_t errlen) {
    struct provd_config def;
    config_defaults(&def, cfg->data_dir);
    json_t *root = json_object();
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        const struct centry *e = &entries[i];
        const char *field = (const char *)cfg + e->off;
        json_t *v;
        if (e->type == C_STR) {
            const char *s = *(char *const *)(const void *)field;
            const char *d = *(char *const *)(const void *)((const char *)&def + e->off);
            if (!s || (strchr(s, '/') && d && strcmp(s, d) == 0))
                continue;
            v = json_string(s);
        } else if (e->type == C_INT) {
            int n = *(const int *)(const void *)field;
            if (e->machine && n == *(const int *)(const void *)((const char *)&def + e->off))
                continue;
            v = json_integer(n);
        } else if (e->type == C_SIZE) {
            v = json_integer((json_int_t) * (const size_t *)(const void *)field);
        } else {
            v = json_integer(*(const int64_t *)(const void *)field);
        }
        json_object_set_new(root, e->key, v);
    }
    char *path = path_in(cfg->data_dir, "provd.json");
    int rc = -1;
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 2) : NULL;
    if (!line) {
        snprintf(err, errlen, "out of memory");
        free(text);
    } else {
        line[len] = '\n';
        line[len + 1] = '\0';
        rc = durable_replace(path, line, len + 1, 0600, err, errlen);
        free(line);
    }
    free(path);
    json_decref(root);
    config_free(&def);
    return rc;
}

void config_free(struct provd_config *cfg) {
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (entries[i].type == C_STR)
            free(*(char **)(void *)((char *)cfg + entries[i].off));
    free(cfg->data_dir);
    free(cfg->port_file);
    memset(cfg, 0, sizeof(*cfg));
}
