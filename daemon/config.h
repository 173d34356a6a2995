/* provd's settings: built-in defaults, then DATA_DIR/provd.json, then command-line flags. */
#ifndef PROVD_CONFIG_H
#define PROVD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct provd_config {
    char *data_dir;
    char *id_scope;             /* e.g. 0ne00ABCDEF */
    char *device_listen;        /* HOST:PORT, default 0.0.0.0:8443 */
    char *admin_listen;         /* HOST:PORT, default 127.0.0.1:8444 */
    char *store;                /* store URI, default sqlite:DATA_DIR/provd.db */
    char *tls_cert;             /* PEM chain of the listeners, default DATA_DIR/tls/server.pem */
    char *tls_key;              /* its key, default DATA_DIR/tls/server.key */
    char *log_level;            /* error | warn | info | debug */
    char *port_file;            /* when set, the bound ports are written there as JSON */
    int workers;                /* event loops (threads); default: number of CPUs */
    size_t max_body_bytes;      /* default 65536 */
    int idle_timeout_s;         /* default 60 */
    int request_timeout_s;      /* to receive a whole request, default 30 */
    int64_t sas_max_lifetime_s; /* default 31536000 (one year); 0 = unlimited */
    int commit_batch_max;       /* most registrations in one group commit, default 1024 */
    /* Webhook deliveries (docs/events.md). */
    char *event_ca_file;     /* CA bundle webhook servers are verified against; NULL: system's */
    int event_timeout_ms;    /* longest attempt, default 10000 */
    int event_retry_base_ms; /* delay before the first retry, doubled for each next, 1000 */
    int event_retry_max_ms;  /* longest delay between attempts, default 600000 */
    int event_max_attempts;  /* attempts before a delivery fails, default 200 */
    int event_max_age_s;     /* age of an event after which a failed attempt is the last, 86400 */
    int event_retention_h;   /* hours delivered events are kept, default 168; 0: for ever */
    /* Allocation (docs/provd.md). */
    char *region;              /* this listener's region for geoLatency allocation, or NULL */
    char *allocation_ca_file;  /* CA bundle custom allocation webhooks are verified against */
    char *allocation_secret;   /* sent as X-Provd-Allocation-Secret to them, or NULL */
    int allocation_timeout_ms; /* a webhook's answer time unless its enrollment says, 5000 */
    /* Device certificates (docs/provd.md). */
    int cert_validity_days;    /* unless the enrollment says, default 365 */
    char *csr_key_policy;      /* key types a CSR may carry, default "p256,p384,rsa" */
    int64_t crl_next_update_s; /* the CRL's nextUpdate after its thisUpdate, default 86400 */
};

/* Fills cfg with defaults for data_dir (copied). */
void config_defaults(struct provd_config *cfg, const char *data_dir);

/* Reads DATA_DIR/provd.json over cfg. Unknown keys, wrong types and numbers out of range are
 * errors; whether the values can be used together is config_check's, once flags are applied.
 * Returns 0, or -1 with the reason in err. */
int config_load(struct provd_config *cfg, char *err, size_t errlen);

/* A listen address: HOST:PORT (the last colon separating the port) or [V6]:PORT, the host not
 * empty and at most CONFIG_LISTEN_HOST_MAX characters, the port decimal from 0 to 65535. */
#define CONFIG_LISTEN_HOST_MAX 255
struct config_listen {
    char host[CONFIG_LISTEN_HOST_MAX + 1];
    long port;
};

/* Parses s, the value of setting key, into *out. Returns 0, or -1 with the reason, naming key
 * and s, in err. */
int config_listen_parse(const char *key, const char *s, struct config_listen *out, char *err,
                        size_t errlen);

/* Checks that cfg's values can be used together, as they stand after the settings file and the
 * flags of provd serve: listen addresses (HOST:PORT or [V6]:PORT, port 0-65535, the two
 * listeners not on one socket), id_scope, log_level, the CA files (readable regular files),
 * region and allocation_secret. Returns 0, or -1 with the reason, naming the setting and its
 * value, in err. */
int config_check(const struct provd_config *cfg, char *err, size_t errlen);

/* Writes cfg's persistent settings to DATA_DIR/provd.json atomically (0600). */
int config_save(const struct provd_config *cfg, char *err, size_t errlen);

/* Replaces *field with a copy of value. */
void config_set(char **field, const char *value);

void config_free(struct provd_config *cfg);

#endif
