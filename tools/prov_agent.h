/* prov-agent, the device's first-boot program: what its files share. It is built on libprov's
 * public API alone (and libc), which keeps that API honest. */
#ifndef PROV_AGENT_H
#define PROV_AGENT_H

#include <stddef.h>

/* Exit codes (documented in --help and docs/man/prov-agent.1). */
enum agent_exit {
    AGENT_EXIT_PROVISIONED = 0, /* provisioned now, or already */
    AGENT_EXIT_INTERNAL = 1,    /* out of memory, no key generated, or another local failure */
    AGENT_EXIT_USAGE = 2,       /* bad command line, configuration file or setting */
    AGENT_EXIT_REFUSED = 3,     /* the server refused the device (HTTP 4xx other than 429) */
    AGENT_EXIT_UNREACHABLE = 4, /* no trusted answer before the deadline: network, TLS, 429, 5xx */
    AGENT_EXIT_STATE = 5,       /* identity.json corrupt or unreadable, the state directory
                                 * not writable, a symbolic link or another user's; with --csr,
                                 * key or certificate missing, corrupt or not belonging
                                 * together */
    AGENT_EXIT_FAILED = 6,      /* the registration ended "failed" or "disabled" */
    AGENT_EXIT_PROTOCOL = 7,    /* the server's answer was not understood */
};

/* The settings that come from flags, the environment or the configuration file. */
enum agent_setting {
    SET_ENDPOINT,
    SET_ID_SCOPE,
    SET_REGISTRATION_ID,
    SET_REGISTRATION_ID_FROM,
    SET_SYMMETRIC_KEY,
    SET_GROUP_KEY,
    SET_CERT,
    SET_KEY,
    SET_CSR,
    SET_CA_FILE,
    SET_STATE_DIR,
    SET_PAYLOAD,
    SET_DEADLINE,
    SET_COUNT
};

struct agent_settings {
    char *value[SET_COUNT];        /* NULL when not set anywhere; keys are wiped when freed */
    const char *origin[SET_COUNT]; /* where the value came from, for messages */
    char *config_path;
    int force, json, verbose, help, version;
};

/* Reads the settings: flags override environment variables (PROV_AGENT_*), which override the
 * configuration file (--config or PROV_AGENT_CONFIG). Key values given as flags are wiped from
 * argv once copied. Returns 0, or -1 with a reason in err (a usage error). */
int agent_settings_load(struct agent_settings *s, int argc, char **argv, char *err, size_t errlen);

/* Wipes the keys and frees everything s holds. */
void agent_settings_free(struct agent_settings *s);

/* The name of a setting (its configuration key and long flag) and its environment variable. */
const char *agent_setting_name(enum agent_setting id);
const char *agent_setting_env(enum agent_setting id);

/* Derives a registration ID from source: "machine-id" (/etc/machine-id), "hostname" or "mac"
 * (the first non-loopback interface in /sys/class/net by name, 12 lower-case hex digits without
 * separators). Returns a string the caller frees with free(), or NULL with a reason in err. */
char *agent_regid_from(const char *source, char *err, size_t errlen);

#endif
