/* provd: the provisioning server. `provd init` prepares a data directory; `provd serve` runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "config.h"
#include "init.h"
#include "pki.h"
#include "log.h"
#include "provd.h"
#include "server.h"

static const char usage_main[] =
    "usage: provd COMMAND [OPTIONS]\n"
    "\n"
    "The provd IoT device provisioning server.\n"
    "\n"
    "commands:\n"
    "  init    create a data directory: CA, TLS certificate, settings, store, admin token\n"
    "  serve   serve the device API and the admin API from a data directory\n"
    "  ca      manage the certificate authority that signs device certificates\n"
    "\n"
    "`provd COMMAND --help` describes each command; `provd --version` prints the version.\n";

static const char usage_init[] =
    "usage: provd init --data-dir DIR [--id-scope SCOPE] [--hostname NAME]...\n"
    "                  [--ca-key-type TYPE] [--force]\n"
    "\n"
    "Creates DIR (mode 0700) with a root CA (DIR/ca/root.pem is what clients trust), an issuing\n"
    "CA below it that signs device certificates (DIR/ca/chain.pem: issuing CA and root), a TLS\n"
    "server certificate for localhost, 127.0.0.1, ::1 and every --hostname, the settings file\n"
    "DIR/provd.json, the SQLite store DIR/provd.db and an admin token in DIR/admin.token (0600;\n"
    "the store keeps only its hash).\n"
    "\n"
    "  --data-dir DIR       the data directory to create\n"
    "  --id-scope SCOPE     the ID scope devices use (default: a new 0neXXXXXXXX)\n"
    "  --hostname NAME      a DNS name or IP address the server is reached by (repeatable)\n"
    "  --ca-key-type TYPE   key of the root and issuing CAs: p256 (default), p384, rsa2048 or\n"
    "                       rsa3072\n"
    "  --force              re-initialise an existing data directory: new CAs, TLS key and\n"
    "                       certificate and a new admin token (earlier ones stay valid); the\n"
    "                       settings, the ID scope and the store (enrollments, registrations)\n"
    "                       are kept\n"
    "  --help               this text\n";

static const char usage_ca[] =
    "usage: provd ca import --data-dir DIR --cert ISSUING.pem --key ISSUING.key\n"
    "                       [--chain CHAIN.pem] [--force]\n"
    "\n"
    "Manages the issuing CA that signs device certificates and CRLs.\n"
    "\n"
    "import: makes an existing CA of yours provd's issuing CA, in place of the one `provd init`\n"
    "made. The certificate must be a CA (basicConstraints CA:TRUE) with a subject and a\n"
    "subjectKeyIdentifier, whose keyUsage includes keyCertSign and cRLSign, valid now, with a\n"
    "P-256, P-384 or RSA (2048 bits or more) key; the key must be its key, unencrypted; the\n"
    "certificate must not be a self-signed root and must chain to one given in --chain or after\n"
    "the first certificate of --cert (other certificates there are ignored); neither it nor one\n"
    "above it may have an extendedKeyUsage without clientAuth; and a device certificate it signs\n"
    "(with a throwaway key) must verify up to the root. The files are checked before anything\n"
    "is written; then DIR/ca/issuing.pem, issuing.key (0600) and chain.pem (issuing CA up to\n"
    "the root) are replaced. DIR/ca/root.pem, which signs the TLS certificate, is kept.\n"
    "Restart provd serve to use the new CA.\n"
    "\n"
    "  --data-dir DIR     the data directory made by `provd init`\n"
    "  --cert FILE        the CA certificate (PEM), optionally followed by its chain\n"
    "  --key FILE         its private key (PEM, unencrypted)\n"
    "  --chain FILE       the certificates above it up to and including the root (PEM)\n"
    "  --force            replace the issuing CA already in DIR (always there after init);\n"
    "                     certificates it issued stay valid until they expire but can no\n"
    "                     longer be revoked by provd\n"
    "  --help             this text\n";

static const char usage_serve[] =
    "usage: provd serve --data-dir DIR [OPTIONS]\n"
    "\n"
    "Serves the device API (DPS-compatible) and the admin API over TLS until SIGINT or\n"
    "SIGTERM; in-flight requests finish before it exits. Flags override DIR/provd.json.\n"
    "\n"
    "  --data-dir DIR            the data directory made by `provd init`\n"
    "  --device-listen HOST:PORT device listener (default 0.0.0.0:8443; port 0 picks one)\n"
    "  --admin-listen HOST:PORT  admin listener (default 127.0.0.1:8444; port 0 picks one)\n"
    "  --workers N               worker threads (default: number of CPUs)\n"
    "  --store URI               store (default sqlite:DIR/provd.db)\n"
    "  --max-body BYTES          largest request body accepted (default 65536)\n"
    "  --idle-timeout SECONDS    idle connection timeout (default 60)\n"
    "  --request-timeout SECONDS time a client has to send a whole request (default 30)\n"
    "  --log-level LEVEL         error, warn, info or debug (default info)\n"
    "  --port-file FILE          write the bound ports there as JSON once listening\n"
    "  --help                    this text\n";

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int cmd_init(int argc, char **argv) {
    static const struct option opts[] = {{"data-dir", required_argument, NULL, 'd'},
                                         {"id-scope", required_argument, NULL, 's'},
                                         {"hostname", required_argument, NULL, 'H'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"ca-key-type", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct init_opts o = {0};
    o.hostnames = calloc((size_t)argc, sizeof(char *));
    int c, rc = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data_dir = optarg;
            break;
        case 's':
            o.id_scope = optarg;
            break;
        case 'H':
            o.hostnames[o.nhostnames++] = optarg;
            break;
        case 'f':
            o.force = 1;
            break;
        case 'k':
            if (pki_key_type_parse(optarg, &o.ca_key_type) != 0) {
                fprintf(stderr,
                        "provd init: --ca-key-type must be p256, p384, rsa2048 or rsa3072, not "
                        "\"%s\"\n",
                        optarg);
                goto out;
            }
            break;
        case 'h':
            fputs(usage_init, stdout);
            rc = 0;
            goto out;
        default:
            fputs(usage_init, stderr);
            goto out;
        }
    }
    if (optind < argc || !o.data_dir) {
        fprintf(stderr, "provd init: %s\n\n%s",
                optind < argc ? "unexpected argument" : "--data-dir is required", usage_init);
        goto out;
    }
    rc = provd_init(&o) == 0 ? 0 : 1;
out:
    free(o.hostnames);
    return rc;
}

static int cmd_ca_import(int argc, char **argv) {
    static const struct option opts[] = {{"data-dir", required_argument, NULL, 'd'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"chain", required_argument, NULL, 'C'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct ca_import_opts o = {0};
    char err[1024];
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data_dir = optarg;
            break;
        case 'c':
            o.cert = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'C':
            o.chain = optarg;
            break;
        case 'f':
            o.force = 1;
            break;
        case 'h':
            fputs(usage_ca, stdout);
            return 0;
        default:
            fputs(usage_ca, stderr);
            return 2;
        }
    }
    const char *missing = !o.data_dir ? "--data-dir" : !o.cert ? "--cert" : !o.key ? "--key" : NULL;
    if (optind < argc || missing) {
        fprintf(stderr, "provd ca import: %s%s\n\n%s",
                optind < argc ? "unexpected argument" : missing,
                optind < argc ? "" : " is required", usage_ca);
        return 2;
    }
    if (ca_import(&o, err, sizeof(err)) != 0) {
        fprintf(stderr, "provd ca import: %s\n", err);
        return 1;
    }
    printf("imported the issuing CA into %s/ca (issuing.pem, issuing.key, chain.pem); restart "
           "provd serve to use it\n",
           o.data_dir);
    return 0;
}

static int cmd_ca(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_ca, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_ca, stdout);
        return 0;
    }
    if (strcmp(sub, "import") == 0)
        return cmd_ca_import(argc - 1, argv + 1);
    fprintf(stderr, "provd ca: unknown command \"%s\"\n\n%s", sub, usage_ca);
    return 2;
}

static int cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {{"data-dir", required_argument, NULL, 'd'},
                                         {"device-listen", required_argument, NULL, 'D'},
                                         {"admin-listen", required_argument, NULL, 'A'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"store", required_argument, NULL, 'S'},
                                         {"max-body", required_argument, NULL, 'b'},
                                         {"idle-timeout", required_argument, NULL, 't'},
                                         {"request-timeout", required_argument, NULL, 'r'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"port-file", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    /* Flags are applied after the settings file, so they are collected first. */
    const char *val[128] = {0};
    const char *data_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_serve, stdout);
            return 0;
        }
        if (c == '?' || c == ':') {
            fputs(usage_serve, stderr);
            return 2;
        }
        if (c == 'd')
            data_dir = optarg;
        else
            val[c] = optarg;
    }
    if (optind < argc || !data_dir) {
        fprintf(stderr, "provd serve: %s\n\n%s",
                optind < argc ? "unexpected argument" : "--data-dir is required", usage_serve);
        return 2;
    }
    struct provd pd;
    memset(&pd, 0, sizeof(pd));
    struct provd_config *cfg = &pd.cfg;
    char err[512];
    int rc = 1;
    long long n;
    config_defaults(cfg, data_dir);
    if (config_load(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "provd serve: %s\n(is %s a data directory made by `provd init`?)\n", err,
                data_dir);
        goto out;
    }
    if (val['D'])
        config_set(&cfg->device_listen, val['D']);
    if (val['A'])
        config_set(&cfg->admin_listen, val['A']);
    if (val['S'])
        config_set(&cfg->store, val['S']);
    if (val['l'])
        config_set(&cfg->log_level, val['l']);
    if (val['p'])
        config_set(&cfg->port_file, val['p']);
    if (val['w']) {
        if (parse_int(val['w'], 1, 256, &n) != 0) {
            fprintf(stderr, "provd serve: --workers must be from 1 to 256\n");
            goto out;
        }
        cfg->workers = (int)n;
    }
    if (val['b']) {
        if (parse_int(val['b'], 1024, 64LL * 1024 * 1024, &n) != 0) {
            fprintf(stderr, "provd serve: --max-body must be from 1024 to 67108864\n");
            goto out;
        }
        cfg->max_body_bytes = (size_t)n;
    }
    if (val['t']) {
        if (parse_int(val['t'], 1, 86400, &n) != 0) {
            fprintf(stderr, "provd serve: --idle-timeout must be from 1 to 86400\n");
            goto out;
        }
        cfg->idle_timeout_s = (int)n;
    }
    if (val['r']) {
        if (parse_int(val['r'], 1, 86400, &n) != 0) {
            fprintf(stderr, "provd serve: --request-timeout must be from 1 to 86400\n");
            goto out;
        }
        cfg->request_timeout_s = (int)n;
    }
    if (config_check(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "provd serve: %s\n", err);
        goto out;
    }
    if (log_set_level_name(cfg->log_level) != 0) {
        fprintf(stderr, "provd serve: unknown log level \"%s\"\n", cfg->log_level);
        goto out;
    }
    if (!cfg->id_scope) {
        fprintf(stderr, "provd serve: %s/provd.json has no id_scope\n", data_dir);
        goto out;
    }
    rc = server_run(&pd) == 0 ? 0 : 1;
out:
    config_free(cfg);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("provd %s\n", PROV_VERSION);
        return 0;
    }
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0)
        return cmd_ca(argc - 1, argv + 1);
    fprintf(stderr, "provd: unknown command \"%s\"\n\n%s", cmd, usage_main);
    return 2;
}
