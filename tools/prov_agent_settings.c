/* prov-agent's settings from three layers: the configuration file, the environment and the
 * command line, later layers overriding earlier ones.
 *
 * The configuration file is lines of "key = value" whose keys are the long option names
 * (endpoint, id-scope, ...); blank lines and lines starting with '#' are ignored; a value runs
 * to the end of its line with surrounding blanks removed, without quoting. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prov_agent.h"

#define LINE_MAX_LEN 8192

enum layer { LAYER_FILE, LAYER_ENV, LAYER_FLAG, LAYER_COUNT };

/* Settings of one group exclude each other within a layer; a higher layer's member replaces
 * a lower layer's member of the same group (a --registration-id flag beats a
 * registration-id-from line in the file). */
enum group { GROUP_NONE, GROUP_REGID, GROUP_KEY };

/* A switch is a setting whose flag takes no value (it means "yes"); in the environment and the
 * file it is written out as yes or no. */
static const struct {
    const char *name;
    const char *env;
    enum group group;
    int secret;
    int is_switch;
} defs[SET_COUNT] = {
    [SET_ENDPOINT] = {"endpoint", "PROV_AGENT_ENDPOINT", GROUP_NONE, 0, 0},
    [SET_ID_SCOPE] = {"id-scope", "PROV_AGENT_ID_SCOPE", GROUP_NONE, 0, 0},
    [SET_REGISTRATION_ID] = {"registration-id", "PROV_AGENT_REGISTRATION_ID", GROUP_REGID, 0, 0},
    [SET_REGISTRATION_ID_FROM] = {"registration-id-from", "PROV_AGENT_REGISTRATION_ID_FROM",
                                  GROUP_REGID, 0, 0},
    [SET_SYMMETRIC_KEY] = {"symmetric-key", "PROV_AGENT_SYMMETRIC_KEY", GROUP_KEY, 1, 0},
    [SET_GROUP_KEY] = {"group-key", "PROV_AGENT_GROUP_KEY", GROUP_KEY, 1, 0},
    [SET_CERT] = {"cert", "PROV_AGENT_CERT", GROUP_KEY, 0, 0},
    [SET_KEY] = {"key", "PROV_AGENT_KEY", GROUP_NONE, 0, 0},
    [SET_CSR] = {"csr", "PROV_AGENT_CSR", GROUP_NONE, 0, 1},
    [SET_CA_FILE] = {"ca-file", "PROV_AGENT_CA_FILE", GROUP_NONE, 0, 0},
    [SET_STATE_DIR] = {"state-dir", "PROV_AGENT_STATE_DIR", GROUP_NONE, 0, 0},
    [SET_PAYLOAD] = {"payload", "PROV_AGENT_PAYLOAD", GROUP_NONE, 0, 0},
    [SET_DEADLINE] = {"deadline", "PROV_AGENT_DEADLINE", GROUP_NONE, 0, 0},
};

static const char *layer_names[LAYER_COUNT] = {"configuration file", "environment", "command line"};

const char *agent_setting_name(enum agent_setting id) {
    return defs[id].name;
}

const char *agent_setting_env(enum agent_setting id) {
    return defs[id].env;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Wipes (for keys) and frees a value. */
static void free_value(enum agent_setting id, char *v) {
    if (v == NULL)
        return;
    if (defs[id].secret)
        explicit_bzero(v, strlen(v));
    free(v);
}

static int lookup(const char *name) {
    int i;

    for (i = 0; i < SET_COUNT; i++) {
        if (strcmp(defs[i].name, name) == 0)
            return i;
    }
    return -1;
}

/* Stores a copy of value for setting id in one layer; a setting given twice in one layer is an
 * error. Returns 0 or -1 with err set. */
static int put(char **layer, int id, const char *value, const char *where, char *err,
               size_t errlen) {
    if (layer[id] != NULL) {
        set_err(err, errlen, "%s: %s given twice", where, defs[id].name);
        return -1;
    }
    if (value[0] == '\0') {
        set_err(err, errlen, "%s: %s has an empty value", where, defs[id].name);
        return -1;
    }
    layer[id] = strdup(value);
    if (layer[id] == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static char *trim(char *s) {
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return s;
}

/* Reads the configuration file into layer. Returns 0 or -1 with err set. */
static int read_file(const char *path, char **layer, char *err, size_t errlen) {
    char line[LINE_MAX_LEN], where[64 + LINE_MAX_LEN / 8], iobuf[BUFSIZ];
    struct stat st;
    int lineno = 0, rc = -1, has_key = 0;
    FILE *f;

    f = fopen(path, "re");
    if (f == NULL) {
        set_err(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
        return -1;
    }
    /* The file may hold a key: stdio reads it into this buffer, which is wiped below, rather
     * than into one of its own that would be freed with the key still in it. */
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *value, *eq;
        int id;

        lineno++;
        snprintf(where, sizeof(where), "%.*s:%d", LINE_MAX_LEN / 8, path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            set_err(err, errlen, "%s: line longer than %d characters", where, LINE_MAX_LEN - 2);
            goto out;
        }
        key = trim(line);
        if (key[0] == '\0' || key[0] == '#')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            set_err(err, errlen, "%s: expected \"key = value\"", where);
            goto out;
        }
        *eq = '\0';
        value = trim(eq + 1);
        key = trim(key);
        id = lookup(key);
        if (id < 0) {
            set_err(err, errlen, "%s: unknown setting \"%.64s\"", where, key);
            goto out;
        }
        if (put(layer, id, value, where, err, errlen) != 0)
            goto out;
        has_key |= defs[id].secret;
    }
    if (ferror(f)) {
        set_err(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
        goto out;
    }
    /* A key readable by every user of the device is worth a word, not a refusal: the operator
     * may have reasons, and refusing would only leave the device unprovisioned. */
    if (has_key && fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        fprintf(stderr, "prov-agent: warning: %s holds a key and is readable by other users\n",
                path);
    rc = 0;
out:
    explicit_bzero(line, sizeof(line));
    fclose(f);
    explicit_bzero(iobuf, sizeof(iobuf));
    return rc;
}

static int read_env(char **layer, char *err, size_t errlen) {
    int i;

    for (i = 0; i < SET_COUNT; i++) {
        const char *v = getenv(defs[i].env);

        if (v != NULL && put(layer, i, v, defs[i].env, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* getopt_long values: the settings at OPT_SETTING + their index, the rest above 255 so that
 * neither collides with a short option or with getopt's 0 for an unknown long option. */
enum { OPT_CONFIG = 256, OPT_FORCE, OPT_JSON, OPT_VERBOSE, OPT_HELP, OPT_VERSION };
#define OPT_SETTING 1000

/* The option of opts (ended by a NULL name) whose getopt_long value is val, or NULL. */
static const struct option *find_option(const struct option *opts, int val) {
    for (; opts->name != NULL; opts++) {
        if (opts->val == val)
            return opts;
    }
    return NULL;
}

/* Reads the flags into layer and s. Returns 0 or -1 with err set. */
static int read_flags(struct agent_settings *s, char **layer, int argc, char **argv, char *err,
                      size_t errlen) {
    struct option opts[SET_COUNT + 7];
    const struct option *o;
    int i, c;

    for (i = 0; i < SET_COUNT; i++)
        opts[i] = (struct option){defs[i].name, defs[i].is_switch ? no_argument : required_argument,
                                  NULL, OPT_SETTING + i};
    opts[i++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[i++] = (struct option){"force", no_argument, NULL, OPT_FORCE};
    opts[i++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    opts[i++] = (struct option){"verbose", no_argument, NULL, OPT_VERBOSE};
    opts[i++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[i++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    opts[i] = (struct option){NULL, 0, NULL, 0};

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
        if (c >= OPT_SETTING && c < OPT_SETTING + SET_COUNT) {
            int id = c - OPT_SETTING;

            if (put(layer, id, defs[id].is_switch ? "yes" : optarg, "command line", err, errlen) !=
                0)
                return -1;
            /* Keep keys out of ps and /proc/PID/cmdline from here on (a short window remains:
             * prefer the configuration file or the environment for keys). */
            if (defs[id].secret && optarg != NULL)
                explicit_bzero(optarg, strlen(optarg));
            continue;
        }
        switch (c) {
        case OPT_CONFIG:
            free(s->config_path);
            if ((s->config_path = strdup(optarg)) == NULL) {
                set_err(err, errlen, "out of memory");
                return -1;
            }
            break;
        case OPT_FORCE:
            s->force = 1;
            break;
        case OPT_JSON:
            s->json = 1;
            break;
        case 'v':
        case OPT_VERBOSE:
            s->verbose = 1;
            break;
        case 'h':
        case OPT_HELP:
            s->help = 1;
            break;
        case OPT_VERSION:
            s->version = 1;
            break;
        default:
            /* getopt_long answers '?' with the option in optopt both for a value missing and
             * for one given to an option that takes none ("--csr=yes"); the option tells
             * which. */
            o = optopt >= 256 ? find_option(opts, optopt) : NULL;
            if (optopt > 0 && optopt < 256)
                set_err(err, errlen, "unknown option -%c", optopt);
            else if (o != NULL && o->has_arg == no_argument)
                set_err(err, errlen, "--%s takes no value", o->name);
            else if (o != NULL)
                set_err(err, errlen, "--%s needs a value", o->name);
            else
                set_err(err, errlen, "unknown option %s", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        set_err(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    return 0;
}

/* Picks each setting's value from the highest layer that has it (for a group: the highest
 * layer that has any member). Moves the values out of the layers. Returns 0 or -1. */
static int merge(struct agent_settings *s, char *layers[LAYER_COUNT][SET_COUNT], char *err,
                 size_t errlen) {
    int i, j, l;

    for (i = 0; i < SET_COUNT; i++) {
        for (l = LAYER_COUNT - 1; l >= 0; l--) {
            int found = 0;

            if (defs[i].group == GROUP_NONE) {
                found = layers[l][i] != NULL;
            } else {
                for (j = 0; j < SET_COUNT; j++) {
                    if (defs[j].group != defs[i].group || layers[l][j] == NULL)
                        continue;
                    if (j != i && layers[l][i] != NULL) {
                        set_err(err, errlen, "%s: %s and %s exclude each other", layer_names[l],
                                defs[i].name, defs[j].name);
                        return -1;
                    }
                    found = 1;
                }
            }
            if (found) {
                s->value[i] = layers[l][i];
                s->origin[i] = layer_names[l];
                layers[l][i] = NULL;
                break;
            }
        }
    }
    return 0;
}

int agent_settings_load(struct agent_settings *s, int argc, char **argv, char *err, size_t errlen) {
    char *layers[LAYER_COUNT][SET_COUNT];
    const char *config;
    int rc = -1, l, i;

    memset(s, 0, sizeof(*s));
    memset(layers, 0, sizeof(layers));
    if (read_flags(s, layers[LAYER_FLAG], argc, argv, err, errlen) != 0)
        goto out;
    if (s->help || s->version) {
        rc = 0;
        goto out;
    }
    config = s->config_path != NULL ? s->config_path : getenv("PROV_AGENT_CONFIG");
    if (config != NULL && config[0] != '\0' &&
        read_file(config, layers[LAYER_FILE], err, errlen) != 0)
        goto out;
    if (read_env(layers[LAYER_ENV], err, errlen) != 0 || merge(s, layers, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    for (l = 0; l < LAYER_COUNT; l++) {
        for (i = 0; i < SET_COUNT; i++)
            free_value(i, layers[l][i]);
    }
    return rc;
}

void agent_settings_free(struct agent_settings *s) {
    int i;

    for (i = 0; i < SET_COUNT; i++)
        free_value(i, s->value[i]);
    free(s->config_path);
    memset(s, 0, sizeof(*s));
}
