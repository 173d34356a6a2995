/* prov-agent: obtains the device's identity from a provd server once, at first boot, and keeps it
 * in STATE_DIR/identity.json (with the device's key and certificate and the configuration the
 * server delivered beside it); later runs find it there and do nothing (docs/prov-agent.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <prov/prov.h>

#include "prov_agent.h"

#define DEFAULT_STATE_DIR "/var/lib/prov-agent"
#define MAX_DEADLINE_S    (UINT32_MAX / 1000u)

/* The files of the delivered configuration, beside identity.json. */
#define ENDPOINT_CA_FILE "endpoint-ca.pem"
#define CONFIG_FILE      "config.json"

static const char usage_text[] =
    "Usage: prov-agent [OPTION]...\n"
    "Obtains this device's identity from a provd (DPS-compatible) server and keeps it in\n"
    "STATE_DIR/identity.json. While that file is valid, prov-agent does nothing and exits 0.\n"
    "\n"
    "Settings, also read from the environment as PROV_AGENT_ENDPOINT, PROV_AGENT_ID_SCOPE, ...\n"
    "and from a configuration file as \"endpoint = URL\" lines; flags override the environment,\n"
    "which overrides the file:\n"
    "  --endpoint URL              the server, https://HOST:PORT\n"
    "  --id-scope SCOPE            the ID scope of the server\n"
    "  --registration-id ID        this device's registration ID, or\n"
    "  --registration-id-from SRC  derive it from machine-id, hostname or mac\n"
    "  --symmetric-key KEY         the device's own key (base64), or\n"
    "  --group-key KEY             its enrollment group's key (base64), or\n"
    "  --cert FILE --key FILE      X.509 attestation: the device's certificate (PEM, chain may\n"
    "                              follow) and its private key (PEM), shown in the TLS handshake\n"
    "  --csr                       generate a P-256 key on the device (STATE_DIR/device.key) and\n"
    "                              have the server certify it (STATE_DIR/device.pem, "
    "ca-chain.pem)\n"
    "  --ca-file FILE              CA certificates (PEM) of the server, trusted in place of\n"
    "                              the system store (default: system store)\n"
    "  --state-dir DIR             where identity.json, endpoint-ca.pem and config.json are\n"
    "                              kept (default " DEFAULT_STATE_DIR ")\n"
    "  --payload JSON              JSON sent to the server with the registration\n"
    "  --deadline SECONDS          give up after this long, retries included (default 300)\n"
    "\n"
    "Options:\n"
    "  --config FILE               read settings from FILE (or from $PROV_AGENT_CONFIG)\n"
    "  --force                     provision again although identity.json exists or is corrupt\n"
    "  --json                      print the identity as JSON on standard output\n"
    "  -v, --verbose               log every request, retry and wait on standard error\n"
    "  -h, --help                  show this help and exit\n"
    "      --version               show the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  provisioned, now or by an earlier run\n"
    "  1  internal error (out of memory, no key could be generated)\n"
    "  2  usage or configuration error\n"
    "  3  refused by the server (wrong key, unknown registration or ID scope)\n"
    "  4  no trusted answer before the deadline (unreachable, TLS, throttled, server errors)\n"
    "  5  state error: identity.json corrupt or unreadable, STATE_DIR not writable, a\n"
    "     symbolic link or another user's (found before registering), or the key or\n"
    "     certificate of --csr missing beside identity.json, corrupt or not belonging\n"
    "     together\n"
    "  6  registration failed (for example, the enrollment is disabled)\n"
    "  7  the server's answer was not understood (with --csr: no certificate for the key)\n"
    "\n"
    "Keys given as flags are visible to other users for a moment: prefer the file or the\n"
    "environment. See prov-agent(1).\n";

static void usage_error(const char *msg) {
    fprintf(stderr, "prov-agent: %s\nTry 'prov-agent --help'.\n", msg);
}

/* The library's messages, on standard error. Errors are left out: the agent reports every
 * failure itself, with the same text, once. */
static void on_log(void *ctx, prov_log_level level, const char *msg) {
    static const char *const names[] = {"error", "warning", "info", "debug"};

    (void)ctx;
    if (level == PROV_LOG_ERROR)
        return;
    fprintf(stderr, "prov-agent: %s: %s\n", names[level], msg);
}

static int exit_code_of(prov_err rc) {
    switch (rc) {
    case PROV_OK:
        return AGENT_EXIT_PROVISIONED;
    case PROV_ERR_INVALID_ARG:
    case PROV_ERR_CRYPTO:
        return AGENT_EXIT_USAGE;
    case PROV_ERR_REFUSED:
        return AGENT_EXIT_REFUSED;
    case PROV_ERR_NETWORK:
    case PROV_ERR_TLS:
    case PROV_ERR_TIMEOUT:
        return AGENT_EXIT_UNREACHABLE;
    case PROV_ERR_STATE_NOT_FOUND:
    case PROV_ERR_STATE_CORRUPT:
    case PROV_ERR_IO:
        return AGENT_EXIT_STATE;
    case PROV_ERR_REGISTRATION_FAILED:
        return AGENT_EXIT_FAILED;
    case PROV_ERR_PROTOCOL:
        return AGENT_EXIT_PROTOCOL;
    case PROV_ERR_NOMEM:
        break;
    }
    return AGENT_EXIT_INTERNAL;
}

/* Parses the deadline in whole seconds. Returns 0 with *ms, or -1. */
static int parse_deadline(const char *s, uint32_t *ms) {
    unsigned long v = 0;
    size_t i;

    if (s[0] == '\0')
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > MAX_DEADLINE_S)
            return -1;
    }
    if (v == 0)
        return -1;
    *ms = (uint32_t)(v * 1000u);
    return 0;
}

/* Parses a switch's value: yes, no, true, false, 1 or 0 (case-insensitive). Returns 0 with
 * *on, or -1. */
static int parse_switch(const char *s, int *on) {
    static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
    size_t i;

    for (i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *on = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* s as it may be printed: a copy in buf (len bytes, cut when longer) with its control
 * characters (below 0x20, and 0x7f) replaced by '?'. What the server sent, or what a state file
 * holds, must not end a line of ours and start one it wrote itself. */
static const char *printable(const char *s, char *buf, size_t len) {
    size_t i;

    snprintf(buf, len, "%s", s != NULL ? s : "(none)");
    for (i = 0; buf[i] != '\0'; i++) {
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] == 0x7f)
            buf[i] = '?';
    }
    return buf;
}

/* Prints a result: as JSON with --json, else as one line after prefix. Returns 0, or -1 when
 * it could not be rendered. */
static int print_result(const prov_result *r, int json, const char *prefix) {
    char id[256], hub[256], sub[128];
    char *text = NULL;
    prov_err rc;

    if (!json) {
        printf("%s: device %s on %s (%s)\n", prefix, printable(r->device_id, id, sizeof(id)),
               printable(r->assigned_hub, hub, sizeof(hub)),
               r->substatus != NULL ? printable(r->substatus, sub, sizeof(sub)) : "no substatus");
        return 0;
    }
    if ((rc = prov_result_to_json(r, &text)) != PROV_OK) {
        fprintf(stderr, "prov-agent: cannot print the result: %s\n", prov_strerror(rc));
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* Applies the settings to the client. Returns 0, or an exit code after printing why. */
static int configure(prov_client *c, const struct agent_settings *s, const char *regid,
                     uint32_t deadline_ms) {
    const char *const *v = (const char *const *)s->value;
    enum agent_setting failed = SET_COUNT;
    char why[512] = "";
    prov_err rc;

    if ((rc = prov_client_set_endpoint(c, v[SET_ENDPOINT])) != PROV_OK)
        failed = SET_ENDPOINT;
    else if ((rc = prov_client_set_id_scope(c, v[SET_ID_SCOPE])) != PROV_OK)
        failed = SET_ID_SCOPE;
    else if ((rc = prov_client_set_registration_id(c, regid)) != PROV_OK)
        failed = v[SET_REGISTRATION_ID] != NULL ? SET_REGISTRATION_ID : SET_REGISTRATION_ID_FROM;
    else if (v[SET_GROUP_KEY] != NULL &&
             (rc = prov_client_set_group_key(c, v[SET_GROUP_KEY])) != PROV_OK)
        failed = SET_GROUP_KEY;
    else if (v[SET_SYMMETRIC_KEY] != NULL &&
             (rc = prov_client_set_symmetric_key(c, v[SET_SYMMETRIC_KEY])) != PROV_OK)
        failed = SET_SYMMETRIC_KEY;
    /* The key alone first, so that a key file that cannot be used is reported as the key's
     * fault, not the certificate's. */
    else if (v[SET_CERT] != NULL &&
             (rc = prov_check_key_file(v[SET_KEY], why, sizeof(why))) != PROV_OK)
        failed = SET_KEY;
    else if (v[SET_CERT] != NULL &&
             (rc = prov_client_set_client_cert(c, v[SET_CERT], v[SET_KEY])) != PROV_OK)
        failed = SET_CERT;
    else if (v[SET_CA_FILE] != NULL && (rc = prov_client_set_ca_file(c, v[SET_CA_FILE])) != PROV_OK)
        failed = SET_CA_FILE;
    else if (v[SET_PAYLOAD] != NULL && (rc = prov_client_set_payload(c, v[SET_PAYLOAD])) != PROV_OK)
        failed = SET_PAYLOAD;
    else if ((rc = prov_client_set_deadline(c, deadline_ms)) != PROV_OK)
        failed = SET_DEADLINE;
    if (failed == SET_COUNT)
        return 0;
    fprintf(stderr, "prov-agent: %s (from the %s): %s\n", agent_setting_name(failed),
            s->origin[failed] != NULL ? s->origin[failed] : "machine",
            failed == SET_KEY ? why : prov_client_last_error(c));
    return rc == PROV_ERR_NOMEM ? AGENT_EXIT_INTERNAL : AGENT_EXIT_USAGE;
}

/* Whether path and dir/name are the same file (as stat finds them: links followed). */
static int same_file(const char *path, const char *dir, const char *name) {
    char other[4096];
    struct stat a, b;

    return snprintf(other, sizeof(other), "%s/%s", dir, name) < (int)sizeof(other) &&
           stat(path, &a) == 0 && stat(other, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* What --csr asks of the other settings, checked before the state directory is touched. The
 * registration ID is the CN of the certificate requested. And --cert and --key must not be
 * files a --csr run replaces: the new key is written before the certificate issued for it, so a
 * run cut short in between would leave the device attesting with a key that is not its
 * certificate's, which no run could then repair. Returns 0, or the exit code after printing
 * why. */
static int check_csr_settings(const struct agent_settings *s, const char *dir, const char *regid) {
    static const char *const replaced[] = {PROV_STATE_KEY_FILE, PROV_STATE_CERT_FILE,
                                           PROV_STATE_CHAIN_FILE};
    static const enum agent_setting files[] = {SET_CERT, SET_KEY};
    enum agent_setting id =
        s->value[SET_REGISTRATION_ID] != NULL ? SET_REGISTRATION_ID : SET_REGISTRATION_ID_FROM;
    size_t i, j;

    if (strlen(regid) > PROV_CSR_REGID_MAX) {
        fprintf(stderr,
                "prov-agent: %s (from the %s): the registration ID has %zu characters; with --csr "
                "it is the CN of the device's certificate, which holds at most %d\n",
                agent_setting_name(id), s->origin[id], strlen(regid), PROV_CSR_REGID_MAX);
        return AGENT_EXIT_USAGE;
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        for (j = 0; s->value[files[i]] != NULL && j < sizeof(replaced) / sizeof(replaced[0]); j++) {
            if (!same_file(s->value[files[i]], dir, replaced[j]))
                continue;
            fprintf(stderr,
                    "prov-agent: %s (from the %s): %s is the %s of the state directory %s, which "
                    "--csr replaces; with --csr, --cert and --key must be files other than its "
                    "%s, %s and %s\n",
                    agent_setting_name(files[i]), s->origin[files[i]], s->value[files[i]],
                    replaced[j], dir, replaced[1], replaced[0], replaced[2]);
            return AGENT_EXIT_USAGE;
        }
    }
    return 0;
}

/* Warns when a private key file (that of --key, or the state's device.key) is open to other
 * users, as for a configuration file that holds a key. */
static void check_key_file_mode(const char *path) {
    struct stat st;

    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        fprintf(stderr,
                "prov-agent: warning: %s holds a private key and is readable by other users\n",
                path);
}

/* Warns when what a provisioning kept is open to other users: the state directory when it is
 * wider than 0700 (a write tightens it, but a run that finds the device provisioned writes
 * nothing), and a key of --csr kept in it that others may read. key is the --key of this run
 * (NULL when none), warned about already when it is that same file. */
static void check_state_modes(const char *dir, const char *key) {
    char path[4096];
    struct stat st, k;

    if (stat(dir, &st) == 0 && (st.st_mode & 077) != 0)
        fprintf(stderr,
                "prov-agent: warning: the state directory %s is accessible to other users (mode "
                "%04o, should be 0700)\n",
                dir, (unsigned)(st.st_mode & 07777));
    if (snprintf(path, sizeof(path), "%s/%s", dir, PROV_STATE_KEY_FILE) >= (int)sizeof(path) ||
        stat(path, &st) != 0)
        return;
    if (key != NULL && stat(key, &k) == 0 && k.st_dev == st.st_dev && k.st_ino == st.st_ino)
        return;
    check_key_file_mode(path);
}

/* With --csr, a provisioned state also has the key and the certificate issued for it. Returns
 * -1 when both are there and belong together, else the exit code after printing why. */
static int check_credentials(const char *dir) {
    char why[512];
    prov_err rc = prov_state_check_key(dir, why, sizeof(why));

    switch (rc) {
    case PROV_OK:
        return -1;
    case PROV_ERR_STATE_NOT_FOUND:
        fprintf(stderr,
                "prov-agent: %s/%s exists but %s: the device has no certificate; run with "
                "--force to provision again\n",
                dir, PROV_STATE_FILE, why);
        return AGENT_EXIT_STATE;
    case PROV_ERR_STATE_CORRUPT:
        /* An empty or truncated device.key or device.pem: corrupt, like such an identity.json. */
        fprintf(stderr,
                "prov-agent: %s\nprov-agent: the state is corrupt and is left as it is; inspect "
                "it, then run with --force to provision again\n",
                why);
        return AGENT_EXIT_STATE;
    case PROV_ERR_CRYPTO:
        /* A key beside the certificate of another would pass for provisioned and fail at the
         * endpoint: a damaged state, reported like a corrupt identity.json. */
        fprintf(stderr,
                "prov-agent: %s\nprov-agent: the key and the certificate in %s do not belong "
                "together: the state is damaged and is left as it is; inspect it, then run with "
                "--force to provision again\n",
                why, dir);
        return AGENT_EXIT_STATE;
    default:
        fprintf(stderr, "prov-agent: %s\n", why[0] != '\0' ? why : prov_strerror(rc));
        return exit_code_of(rc);
    }
}

/* Looks at the state directory. Returns -1 to go on and register, or the exit code to stop
 * with (after printing what was found). */
static int check_state(const struct agent_settings *s, const char *dir, const char *regid,
                       int csr) {
    char why[512], shown[256];
    prov_result *r = NULL;
    prov_err rc;
    int code = -1;

    rc = prov_state_load(dir, &r, why, sizeof(why));
    if (rc == PROV_ERR_STATE_NOT_FOUND)
        return -1;
    if (rc == PROV_OK && !s->force && csr && (code = check_credentials(dir)) >= 0) {
        /* check_credentials said why */
    } else if (rc == PROV_OK && !s->force) {
        check_state_modes(dir, s->value[SET_KEY]);
        if (strcasecmp(r->registration_id, regid) != 0)
            fprintf(stderr,
                    "prov-agent: warning: %s/%s belongs to registration %s, not %s; run with "
                    "--force to provision as %s\n",
                    dir, PROV_STATE_FILE, printable(r->registration_id, shown, sizeof(shown)),
                    regid, regid);
        code = print_result(r, s->json, "already provisioned") == 0 ? AGENT_EXIT_PROVISIONED
                                                                    : AGENT_EXIT_INTERNAL;
    } else if (rc == PROV_OK) {
        if (s->verbose)
            fprintf(stderr, "prov-agent: info: --force: provisioning again\n");
    } else if (rc == PROV_ERR_STATE_CORRUPT && s->force) {
        fprintf(stderr, "prov-agent: warning: %s; --force: replacing it\n", why);
    } else if (rc == PROV_ERR_STATE_CORRUPT) {
        fprintf(stderr,
                "prov-agent: %s\nprov-agent: the state is corrupt and is left as it is; inspect "
                "it, then run with --force to provision again\n",
                why);
        code = AGENT_EXIT_STATE;
    } else {
        fprintf(stderr, "prov-agent: %s\n", why[0] != '\0' ? why : prov_strerror(rc));
        code = exit_code_of(rc);
    }
    prov_result_free(r);
    return code;
}

/* Removes dir/name when it is there, the removal on disk before it returns. Returns PROV_OK, or
 * an error after printing why. */
static prov_err remove_file(const char *dir, const char *name) {
    char why[512];
    prov_err rc = prov_state_remove_file(dir, name, why, sizeof(why));

    if (rc != PROV_OK)
        fprintf(stderr, "prov-agent: cannot remove the old %s/%s: %s\n", dir, name, why);
    return rc;
}

/* Writes text as dir/name when it is not NULL (with a final newline when add_newline), and
 * removes an older dir/name when it is, so that no file of an earlier provisioning outlives it.
 * Returns PROV_OK, or an error after printing why. */
static prov_err keep_file(const char *dir, const char *name, const char *text, int add_newline) {
    char why[512];
    size_t len;
    char *data;
    prov_err rc;

    if (text == NULL)
        return remove_file(dir, name);
    len = strlen(text);
    if ((data = malloc(len + 2)) == NULL) {
        fprintf(stderr, "prov-agent: out of memory\n");
        return PROV_ERR_NOMEM;
    }
    memcpy(data, text, len);
    if (add_newline && (len == 0 || text[len - 1] != '\n'))
        data[len++] = '\n';
    if ((rc = prov_state_write_file(dir, name, data, len, why, sizeof(why))) != PROV_OK)
        fprintf(stderr, "prov-agent: %s\n", why);
    free(data);
    return rc;
}

/* Whether DIR/name is the same file as one of the paths of in_use (NULL entries ignored). */
static int is_in_use(const char *dir, const char *name, const char *const in_use[2]) {
    char path[4096];
    struct stat st, u;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        stat(path, &st) != 0)
        return 0;
    for (int i = 0; i < 2; i++)
        if (in_use[i] && stat(in_use[i], &u) == 0 && u.st_dev == st.st_dev && u.st_ino == st.st_ino)
            return 1;
    return 0;
}

/* Keeps what a registration delivered: the key and its certificates (with --csr), the
 * endpoint's CA and the configuration, and identity.json last. The identity.json of an earlier
 * provisioning (--force) is removed first, and that removal is on disk before anything new is
 * written: a crash or a failed write in between leaves no identity.json, never an old one beside
 * a new key, and the next run provisions again. in_use holds the --cert and --key of this run
 * (NULL when none). Returns PROV_OK or an error after printing why. */
static prov_err keep(prov_client *c, const prov_result *r, const char *dir, int csr,
                     const char *const in_use[2]) {
    static const char *const csr_files[] = {PROV_STATE_KEY_FILE, PROV_STATE_CERT_FILE,
                                            PROV_STATE_CHAIN_FILE};
    char why[512];
    size_t i;
    prov_err rc = PROV_OK;

    if ((rc = remove_file(dir, PROV_STATE_FILE)) != PROV_OK)
        return rc;
    if (csr && ((rc = prov_state_save_key(dir, c, why, sizeof(why))) != PROV_OK ||
                (rc = prov_state_save_certificates(dir, r, why, sizeof(why))) != PROV_OK)) {
        fprintf(stderr, "prov-agent: %s\n", why);
        return rc;
    }
    /* Without --csr, a key and certificates of an earlier --csr provisioning describe another
     * identity than the one being kept, unless they are the --cert and --key this run
     * attested with (a device that comes back with the certificate provd gave it). */
    for (i = 0; !csr && i < sizeof(csr_files) / sizeof(csr_files[0]); i++) {
        if (!is_in_use(dir, csr_files[i], in_use) &&
            (rc = remove_file(dir, csr_files[i])) != PROV_OK)
            return rc;
    }
    if ((rc = keep_file(dir, ENDPOINT_CA_FILE, r->trust_bundle, 1)) != PROV_OK ||
        (rc = keep_file(dir, CONFIG_FILE, r->configuration, 1)) != PROV_OK)
        return rc;
    if ((rc = prov_state_save(dir, r, why, sizeof(why))) != PROV_OK)
        fprintf(stderr, "prov-agent: %s\n", why);
    return rc;
}

/* Removes what a run cut short left in the state directory: temporary files of a write that
 * never reached its rename, which may hold a private key. A failure is worth a warning, not a
 * refusal: a run that only finds the device provisioned writes nothing. */
static void clean_state(const char *dir) {
    char why[512];

    if (prov_state_clean(dir, why, sizeof(why)) != PROV_OK)
        fprintf(stderr, "prov-agent: warning: %s\n", why);
}

/* Makes sure the state directory can take what a registration delivers, before the server is
 * asked for anything: a directory found unwritable only afterwards would leave the device
 * registered, and with --csr a certificate issued for a key then thrown away. Returns -1 to go
 * on, or the exit code after printing why. */
static int prepare_state(const char *dir) {
    char why[512];
    prov_err rc = prov_state_prepare(dir, why, sizeof(why));

    if (rc == PROV_OK)
        return -1;
    fprintf(stderr, "prov-agent: %s\n", why[0] != '\0' ? why : prov_strerror(rc));
    if (rc == PROV_ERR_IO)
        fprintf(stderr,
                "prov-agent: %s cannot hold the device's identity: nothing was registered\n", dir);
    return exit_code_of(rc);
}

/* Registers and keeps the result. Returns the exit code. */
static int provision(prov_client *c, const struct agent_settings *s, const char *dir, int csr) {
    prov_result *r = NULL;
    prov_err rc;
    int code;

    /* A fresh key for every provisioning: a key is never reused for a second certificate. A
     * failure here is the device's own (memory, the crypto library), not the server's. */
    if (csr && (rc = prov_client_generate_key(c, PROV_KEY_EC_P256)) != PROV_OK) {
        fprintf(stderr, "prov-agent: cannot generate the device's key: %s\n",
                prov_client_last_error(c));
        return AGENT_EXIT_INTERNAL;
    }
    rc = prov_register(c, &r);
    code = exit_code_of(rc);
    if (rc != PROV_OK) {
        fprintf(stderr, "prov-agent: %s: %s\n", prov_strerror(rc), prov_client_last_error(c));
        /* A failed registration or a refusal carries the server's reason, which scripts may
         * want as much as a success. */
        if (s->json && r != NULL)
            print_result(r, 1, NULL);
        goto out;
    }
    const char *const in_use[2] = {s->value[SET_CERT], s->value[SET_KEY]};
    if ((rc = keep(c, r, dir, csr, in_use)) != PROV_OK) {
        char id[256];

        fprintf(stderr, "prov-agent: registered as device %s, but the state was not saved\n",
                printable(r->device_id, id, sizeof(id)));
        code = exit_code_of(rc);
        goto out;
    }
    if (print_result(r, s->json, "provisioned") != 0)
        code = AGENT_EXIT_INTERNAL;
out:
    prov_result_free(r);
    return code;
}

int main(int argc, char **argv) {
    struct agent_settings s;
    char err[1024] = "";
    char *regid = NULL;
    const char *dir;
    prov_client *c = NULL;
    uint32_t deadline_ms = PROV_DEFAULT_DEADLINE_MS;
    int code = AGENT_EXIT_USAGE, csr = 0;

    /* A server closing the connection must fail the write, not kill the agent. */
    signal(SIGPIPE, SIG_IGN);

    if (agent_settings_load(&s, argc, argv, err, sizeof(err)) != 0) {
        usage_error(err);
        goto out;
    }
    if (s.help || s.version) {
        if (s.help)
            fputs(usage_text, stdout);
        else
            printf("prov-agent %s\n", prov_version());
        code = AGENT_EXIT_PROVISIONED;
        goto out;
    }
    if (s.value[SET_ENDPOINT] == NULL || s.value[SET_ID_SCOPE] == NULL) {
        usage_error(s.value[SET_ENDPOINT] == NULL ? "no endpoint: give --endpoint"
                                                  : "no ID scope: give --id-scope");
        goto out;
    }
    if (s.value[SET_REGISTRATION_ID] == NULL && s.value[SET_REGISTRATION_ID_FROM] == NULL) {
        usage_error("no registration ID: give --registration-id or --registration-id-from");
        goto out;
    }
    if (s.value[SET_SYMMETRIC_KEY] == NULL && s.value[SET_GROUP_KEY] == NULL &&
        s.value[SET_CERT] == NULL) {
        usage_error(s.value[SET_KEY] != NULL
                        ? "--key needs --cert"
                        : "no credential: give --symmetric-key, --group-key or --cert and --key");
        goto out;
    }
    if (s.value[SET_CERT] != NULL && s.value[SET_KEY] == NULL) {
        usage_error("--cert needs --key");
        goto out;
    }
    if (s.value[SET_CSR] != NULL && parse_switch(s.value[SET_CSR], &csr) != 0) {
        fprintf(stderr, "prov-agent: csr (from the %s): not yes or no\n", s.origin[SET_CSR]);
        goto out;
    }
    if (s.value[SET_DEADLINE] != NULL && parse_deadline(s.value[SET_DEADLINE], &deadline_ms) != 0) {
        fprintf(stderr,
                "prov-agent: deadline (from the %s): not a whole number of seconds "
                "between 1 and %u\n",
                s.origin[SET_DEADLINE], MAX_DEADLINE_S);
        goto out;
    }
    if (s.value[SET_REGISTRATION_ID] != NULL) {
        regid = strdup(s.value[SET_REGISTRATION_ID]);
    } else if ((regid = agent_regid_from(s.value[SET_REGISTRATION_ID_FROM], err, sizeof(err))) ==
               NULL) {
        fprintf(stderr, "prov-agent: registration-id-from: %s\n", err);
        goto out;
    }
    dir = s.value[SET_STATE_DIR] != NULL ? s.value[SET_STATE_DIR] : DEFAULT_STATE_DIR;

    code = AGENT_EXIT_INTERNAL;
    if (regid == NULL || prov_client_new(&c) != PROV_OK) {
        fprintf(stderr, "prov-agent: out of memory\n");
        goto out;
    }
    if ((code = configure(c, &s, regid, deadline_ms)) != 0 ||
        (csr && (code = check_csr_settings(&s, dir, regid)) != 0))
        goto out;
    if (s.value[SET_KEY] != NULL)
        check_key_file_mode(s.value[SET_KEY]);
    prov_client_set_log(c, on_log, NULL, s.verbose ? PROV_LOG_DEBUG : PROV_LOG_WARN);
    clean_state(dir);
    if ((code = check_state(&s, dir, regid, csr)) >= 0)
        goto out;
    if ((code = prepare_state(dir)) >= 0)
        goto out;
    code = provision(c, &s, dir, csr);
out:
    prov_client_free(c);
    free(regid);
    agent_settings_free(&s);
    return code;
}
