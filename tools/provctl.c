/* provctl: the operator's command line for provd.
 *
 *   provctl [global options] COMMAND [SUBCOMMAND] [arguments] [options]
 *
 * This file holds main, the command table lookup, the argument parser shared by every command,
 * the global options and the help texts. Each command group lives in its own file and only
 * declares its commands (struct ctl_cmd) and their run functions. */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "base64.h"
#include "provctl.h"
#include "regid.h"

/* Options every command accepts, before or after the command name. */
static const struct ctl_opt global_opts[] = {
    {"data-dir", "DIR",
     "provd data directory: server address, CA and token are read from it (PROVD_DATA_DIR)", 0},
    {"server", "URL", "admin API address, https://HOST:PORT (PROVD_SERVER)", 0},
    {"ca-file", "FILE", "CA certificate that signed the server's certificate (PROVD_CA_FILE)", 0},
    {"token-file", "FILE", "file holding the admin bearer token (PROVD_TOKEN_FILE)", 0},
    {"json", NULL, "print JSON instead of text: the server's answers, keys only where asked for",
     0},
    {"help", NULL, "show help and exit", 0},
    {NULL, NULL, NULL, 0},
};

static const struct ctl_cmd *const tables[] = {
    ctl_group_cmds,   ctl_enrollment_cmds, ctl_registration_cmds, ctl_service_cmds,
    ctl_webhook_cmds, ctl_endpoint_cmds,   ctl_cert_cmds,         ctl_offline_cmds,
};

#define NTABLES (sizeof tables / sizeof tables[0])

void ctl_err(const char *fmt, ...) {
    va_list ap;

    fputs("provctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_check_id(const char *what, const char *id) {
    const char *why = NULL;

    if (regid_check(id, &why) == 0)
        return 0;
    ctl_err("invalid %s \"%s\": %s", what, id, why ? why : "does not follow the ID rules");
    return -1;
}

int ctl_check_key(const char *opt, const char *key, size_t min, size_t max) {
    unsigned char *raw = NULL;
    size_t len = 0;
    const char *why = NULL;

    if (b64_decode(key, strlen(key), &raw, &len, &why) != 0) {
        ctl_err("--%s: not valid base64 (%s)", opt, why ? why : "malformed");
        return -1;
    }
    b64_free(raw, len);
    if (len == 0 || len < min || (max > 0 && len > max)) {
        if (max > 0)
            ctl_err("--%s: a key must be %zu to %zu bytes, this one has %zu", opt, min, max, len);
        else
            ctl_err("--%s: the key is empty", opt);
        return -1;
    }
    return 0;
}

int ctl_parse_int(const char *opt, const char *s, long long min, long long max, long long *out) {
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    /* strtoll would also take leading blanks and a '+'; a number here is digits only. */
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))) ||
        errno != 0 || *end != '\0' || v < min || v > max) {
        ctl_err("--%s: \"%s\" is not a whole number from %lld to %lld", opt, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

void ctl_free_secret(char *s) {
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ---- Argument access ---- */

const char *args_get(const struct ctl_args *a, const char *name) {
    const char *v = NULL;

    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt[i]->name, name) == 0)
            v = a->val[i];
    return v;
}

int args_has(const struct ctl_args *a, const char *name) {
    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt[i]->name, name) == 0)
            return 1;
    return 0;
}

size_t args_all(const struct ctl_args *a, const char *name, const char **out, size_t max) {
    size_t n = 0;

    for (int i = 0; i < a->nopt; i++) {
        if (strcmp(a->opt[i]->name, name) != 0)
            continue;
        if (n < max)
            out[n] = a->val[i];
        n++;
    }
    return n;
}

/* ---- Help ---- */

#define HELP_WIDTH 100 /* help lines are wrapped to this width */

/* Prints "  left" padded to column col, then text wrapped at spaces to HELP_WIDTH with its
 * continuation lines indented to col. A left part that reaches col gets a line of its own. */
static void print_item(FILE *f, const char *left, int col, const char *text) {
    int at = fprintf(f, "  %s", left);

    if (at >= col - 1) {
        fputc('\n', f);
        at = 0;
    }
    fprintf(f, "%*s", col - at, "");
    at = col;
    while (*text) {
        size_t word = strcspn(text, " ");

        if (at > col && at + 1 + (int)word > HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', f);
            at++;
        }
        fwrite(text, 1, word, f);
        at += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

static void print_opts(FILE *f, const struct ctl_opt *opts) {
    for (const struct ctl_opt *o = opts; o && o->name; o++) {
        char left[64], text[256];

        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        snprintf(text, sizeof text, "%s%s", o->help, o->repeat ? " (repeatable)" : "");
        print_item(f, left, 26, text);
    }
}

static void print_cmd_line(FILE *f, const struct ctl_cmd *c) {
    char left[160];

    snprintf(left, sizeof left, "%s %s", c->name, c->synopsis);
    print_item(f, left, 40, c->summary);
}

static void usage_all(FILE *f) {
    fputs("Usage: provctl [global options] COMMAND [arguments] [options]\n"
          "\n"
          "Manage a provd server through its admin API, and derive device keys and SAS tokens\n"
          "offline.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct ctl_cmd *c = tables[t]; c->name; c++)
            print_cmd_line(f, c);
    fputs("\nGlobal options (accepted before or after the command):\n", f);
    print_opts(f, global_opts);
    print_item(f, "--version", 26, "print the version and exit (before the command only)");
    fputs("\n"
          "The server is found from --server, --ca-file and --token-file, else from --data-dir,\n"
          "else from the environment variables named above. TLS is always verified.\n"
          "Exit status: 0 success, 1 failure (server, network, not found), 2 bad command line.\n"
          "Run \"provctl COMMAND --help\" for the arguments and options of a command.\n",
          f);
}

static void usage_group(FILE *f, const char *group) {
    size_t len = strlen(group);

    fprintf(f, "Usage: provctl %s SUBCOMMAND [arguments] [options]\n\nSubcommands:\n", group);
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct ctl_cmd *c = tables[t]; c->name; c++)
            if (strncmp(c->name, group, len) == 0 && c->name[len] == ' ')
                print_cmd_line(f, c);
    fprintf(f, "\nRun \"provctl %s SUBCOMMAND --help\" for details.\n", group);
}

static void usage_cmd(FILE *f, const struct ctl_cmd *c) {
    fprintf(f, "Usage: provctl %s%s%s\n\n%s.\n", c->name, c->synopsis[0] ? " " : "", c->synopsis,
            c->summary);
    if (c->details)
        fprintf(f, "\n%s\n", c->details);
    if (c->opts && c->opts->name) {
        fputs("\nOptions:\n", f);
        print_opts(f, c->opts);
    }
    fputs("\nGlobal options: --data-dir, --server, --ca-file, --token-file, --json, --help\n"
          "(see provctl --help).\n",
          f);
}

/* ---- Parsing ---- */

static const struct ctl_opt *find_opt(const struct ctl_opt *opts, const char *name, size_t len) {
    for (const struct ctl_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static void set_global(struct ctl *ctl, const struct ctl_opt *o, const char *v) {
    if (strcmp(o->name, "data-dir") == 0)
        ctl->opt_data_dir = v;
    else if (strcmp(o->name, "server") == 0)
        ctl->opt_server = v;
    else if (strcmp(o->name, "ca-file") == 0)
        ctl->opt_ca_file = v;
    else if (strcmp(o->name, "token-file") == 0)
        ctl->opt_token_file = v;
    else if (strcmp(o->name, "json") == 0)
        ctl->json = 1;
}

/* Reads one option at argv[*i] for command c (NULL before the command name). Global options
 * are applied to ctl at once; the command's own options are recorded in a. Sets *help for
 * --help or -h. Returns 0, or CTL_USAGE after printing why. */
static int parse_opt(struct ctl *ctl, const struct ctl_cmd *c, int argc, char **argv, int *i,
                     struct ctl_args *a, int *help) {
    const char *arg = argv[*i];
    const char *name = arg + 2;
    const char *eq;
    const char *val = NULL;
    size_t len;
    const struct ctl_opt *o;
    int global = 0;

    if (strcmp(arg, "-h") == 0) {
        *help = 1;
        return 0;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        ctl_err("unknown option %s", arg);
        return CTL_USAGE;
    }
    eq = strchr(name, '=');
    len = eq ? (size_t)(eq - name) : strlen(name);
    o = find_opt(c ? c->opts : NULL, name, len);
    if (o == NULL) {
        o = find_opt(global_opts, name, len);
        global = 1;
    }
    if (o == NULL) {
        ctl_err("%s%sunknown option --%.*s (see provctl %s%s--help)", c ? c->name : "",
                c ? ": " : "", (int)len, name, c ? c->name : "", c ? " " : "");
        return CTL_USAGE;
    }
    if (o->arg) {
        if (eq)
            val = eq + 1;
        else if (*i + 1 < argc)
            val = argv[++*i];
        else {
            ctl_err("option --%s needs a value (%s)", o->name, o->arg);
            return CTL_USAGE;
        }
    } else if (eq) {
        ctl_err("option --%s takes no value", o->name);
        return CTL_USAGE;
    }
    if (strcmp(o->name, "help") == 0) {
        *help = 1;
        return 0;
    }
    if (global) {
        set_global(ctl, o, val);
        return 0;
    }
    if (!o->repeat && args_has(a, o->name)) {
        ctl_err("option --%s given more than once", o->name);
        return CTL_USAGE;
    }
    a->opt[a->nopt] = o;
    a->val[a->nopt] = val;
    a->nopt++;
    return 0;
}

/* Finds the command whose name is words (one or two of them). Returns NULL when none is. */
static const struct ctl_cmd *find_cmd(const char *w1, const char *w2) {
    size_t l1 = strlen(w1);

    for (size_t t = 0; t < NTABLES; t++)
        for (const struct ctl_cmd *c = tables[t]; c->name; c++) {
            if (strncmp(c->name, w1, l1) != 0)
                continue;
            if (c->name[l1] == '\0')
                return c;
            if (c->name[l1] == ' ' && w2 && strcmp(c->name + l1 + 1, w2) == 0)
                return c;
        }
    return NULL;
}

/* Non-zero when w is the first word of two-word commands ("group"). */
static int is_group(const char *w) {
    size_t len = strlen(w);

    for (size_t t = 0; t < NTABLES; t++)
        for (const struct ctl_cmd *c = tables[t]; c->name; c++)
            if (strncmp(c->name, w, len) == 0 && c->name[len] == ' ')
                return 1;
    return 0;
}

/* Writes the subcommands of group into buf as "create, show, ...". */
static void subcommand_names(const char *group, char *buf, size_t len) {
    size_t glen = strlen(group), used = 0;

    buf[0] = '\0';
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct ctl_cmd *c = tables[t]; c->name; c++)
            if (strncmp(c->name, group, glen) == 0 && c->name[glen] == ' ' && used < len) {
                int n =
                    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", c->name + glen + 1);

                if (n > 0)
                    used += (size_t)n;
            }
}

static int run(struct ctl *ctl, int argc, char **argv) {
    struct ctl_args a = {0};
    const struct ctl_cmd *c;
    int i = 1, help = 0, only_opts = 0, rc;

    /* Global options before the command name. */
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--version") == 0) {
            printf("provctl %s\n", PROV_VERSION);
            return CTL_OK;
        }
        if ((rc = parse_opt(ctl, NULL, argc, argv, &i, &a, &help)) != 0)
            return rc;
        i++;
    }
    if (help) {
        usage_all(stdout);
        return CTL_OK;
    }
    if (i >= argc) {
        ctl_err("missing command (see provctl --help)");
        return CTL_USAGE;
    }

    if (is_group(argv[i])) {
        const char *group = argv[i];
        const char *sub = i + 1 < argc ? argv[i + 1] : NULL;

        if (sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
            usage_group(stdout, group);
            return CTL_OK;
        }
        c = sub && sub[0] != '-' ? find_cmd(group, sub) : NULL;
        if (c == NULL) {
            char names[128];

            subcommand_names(group, names, sizeof names);
            if (sub == NULL || sub[0] == '-')
                ctl_err("%s: missing subcommand (%s)", group, names);
            else
                ctl_err("%s: unknown subcommand \"%s\" (%s)", group, sub, names);
            return CTL_USAGE;
        }
        i += 2;
    } else {
        c = find_cmd(argv[i], NULL);
        if (c == NULL) {
            ctl_err("unknown command \"%s\" (see provctl --help)", argv[i]);
            return CTL_USAGE;
        }
        i++;
    }

    a.cmd = c;
    a.pos = calloc((size_t)argc, sizeof *a.pos);
    a.opt = calloc((size_t)argc, sizeof *a.opt);
    a.val = calloc((size_t)argc, sizeof *a.val);
    if (!a.pos || !a.opt || !a.val) {
        ctl_err("out of memory");
        rc = CTL_FAIL;
        goto out;
    }
    for (; i < argc; i++) {
        if (!only_opts && strcmp(argv[i], "--") == 0) {
            only_opts = 1;
            continue;
        }
        if (!only_opts && argv[i][0] == '-' && argv[i][1] != '\0') {
            if ((rc = parse_opt(ctl, c, argc, argv, &i, &a, &help)) != 0)
                goto out;
            continue;
        }
        a.pos[a.npos++] = argv[i];
    }
    if (help) {
        usage_cmd(stdout, c);
        rc = CTL_OK;
        goto out;
    }
    if (a.npos < c->min_args || a.npos > c->max_args) {
        if (a.npos < c->min_args)
            ctl_err("%s: missing argument (usage: provctl %s%s%s)", c->name, c->name,
                    c->synopsis[0] ? " " : "", c->synopsis);
        else
            ctl_err("%s: unexpected argument \"%s\" (usage: provctl %s%s%s)", c->name,
                    a.pos[c->max_args], c->name, c->synopsis[0] ? " " : "", c->synopsis);
        rc = CTL_USAGE;
        goto out;
    }
    rc = c->run(ctl, &a);
out:
    free(a.pos);
    free(a.opt);
    free(a.val);
    return rc;
}

/* Answers of the admin API hold keys: every JSON value provctl frees is wiped first. */
static void *json_alloc(size_t n) {
    return malloc(n);
}

static void json_release(void *p) {
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

int main(int argc, char **argv) {
    struct ctl ctl = {0};
    int rc;

    /* A server that closes the TLS connection must not kill provctl with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(json_alloc, json_release);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ctl_err("cannot initialise libcurl");
        return CTL_FAIL;
    }
    rc = run(&ctl, argc, argv);
    http_close(&ctl);
    curl_global_cleanup();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_err("cannot write the output");
        rc = CTL_FAIL;
    }
    return rc;
}
