/* `provd init`: everything a data directory holds, made once. */
#include "init.h"

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
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "log.h"
#include "pki.h"
#include "rand.h"
#include "regid.h"
#include "store.h"

#define ROOT_DAYS    (20 * 365)
#define ISSUING_DAYS (10 * 365)
#define SERVER_DAYS  (2 * 365)

static int make_dir(const char *path) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, 0700) != 0) {
        log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void provd_token_hash(const char *token, char hex[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int provd_token_new(const char *store_uri, const char *path, const char *name) {
    unsigned char raw[32];
    char token[65], hash[65], err[256];
    struct store *st = NULL;
    struct store_conn *c = NULL;
    int rc = -1, fd = -1;
    if (rand_bytes(raw, sizeof(raw)) != 0)
        goto out;
    for (unsigned i = 0; i < sizeof(raw); i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    provd_token_hash(token, hash);
    if (store_open(store_uri, &st, err, sizeof(err)) != STORE_OK) {
        log_error("store: %s", err);
        goto out;
    }
    if (store_conn_open(st, &c) != STORE_OK || store_token_add(c, hash, name) != STORE_OK)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, token, 64) != 64 || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0) {
        log_error("%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(token, sizeof(token));
    store_conn_close(c);
    store_close(st);
    return rc;
}

/* DPS ID scopes look like 0ne00ABCDEF: "0ne" and eight upper-case hex digits. */
static int scope_new(char out[12]) {
    unsigned char r[4];
    if (rand_bytes(r, sizeof(r)) != 0)
        return -1;
    snprintf(out, 12, "0ne%02X%02X%02X%02X", r[0], r[1], r[2], r[3]);
    return 0;
}

/* A DNS name (letters, digits, '-' and '.', at most 253 characters) or an IP address. */
static int hostname_ok(const char *h) {
    unsigned char addr[16];
    if (inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)
        return 1;
    size_t n = strlen(h);
    if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-')
        return 0;
    return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

static char *join(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        abort();
    return p;
}

/* The CA keys and certificates of a new data directory: a root, and below it an issuing CA that
 * signs device certificates and CRLs. The root also signs the TLS certificate. The CNs carry
 * the ID scope so that the CAs of several installations are told apart in a trust store. */
struct ca_set {
    EVP_PKEY *root_key, *issuing_key;
    X509 *root, *issuing;
};

/* A CA's CN, "WHAT SCOPE" within the 64 characters of a CN (RFC 5280's ub-common-name). A
 * scope too long for it is cut and ends with 8 hex digits of its SHA-256, so that scopes alike
 * in their first characters still give different names. */
#define CA_CN_MAX 64
static void ca_cn(char out[CA_CN_MAX + 1], const char *what, const char *scope) {
    size_t room = CA_CN_MAX - strlen(what) - 1, len = strlen(scope);
    unsigned char h[EVP_MAX_MD_SIZE];

    if (len <= room || !EVP_Digest(scope, len, h, NULL, EVP_sha256(), NULL)) {
        snprintf(out, CA_CN_MAX + 1, "%s %s", what, scope);
        return;
    }
    snprintf(out, CA_CN_MAX + 1, "%s %.*s-%02x%02x%02x%02x", what, (int)(room - 9), scope, h[0],
             h[1], h[2], h[3]);
}

static int ca_set_new(struct ca_set *s, enum pki_key_type type, const char *scope) {
    char root_cn[CA_CN_MAX + 1], issuing_cn[CA_CN_MAX + 1];
    ca_cn(root_cn, "provd root CA", scope);
    ca_cn(issuing_cn, "provd issuing CA", scope);
    if (!(s->root_key = pki_key_new_type(type)) ||
        !(s->root = pki_root_new(s->root_key, root_cn, ROOT_DAYS)) ||
        !(s->issuing_key = pki_key_new_type(type)) ||
        !(s->issuing =
              pki_issuing_new(s->issuing_key, s->root, s->root_key, issuing_cn, ISSUING_DAYS)))
        return -1;
    return 0;
}

static int ca_set_write(const struct ca_set *s, const char *cadir, int replace) {
    char *root_pem = join(cadir, "root.pem"), *root_key = join(cadir, "root.key");
    char *iss_pem = join(cadir, "issuing.pem"), *iss_key = join(cadir, "issuing.key");
    char *chain = join(cadir, "chain.pem");
    X509 *const pair[2] = {s->issuing, s->root};
    int rc = -1;
    if (pki_write_key(root_key, s->root_key, replace) == 0 &&
        pki_write_cert(root_pem, s->root) == 0 &&
        pki_write_key(iss_key, s->issuing_key, replace) == 0 &&
        pki_write_cert(iss_pem, s->issuing) == 0 && pki_write_certs(chain, pair, 2) == 0)
        rc = 0;
    free(root_pem);
    free(root_key);
    free(iss_pem);
    free(iss_key);
    free(chain);
    return rc;
}

/* A data directory without provd.json may hold keys an init that did not finish left: they are
 * replaced only with --force, and init stops before writing anything. tls_key is the listener
 * key init would write, NULL for none. Returns 0 when there is none, else -1 (logged). */
static int left_keys(const char *cadir, const char *tls_key) {
    char *keys[3] = {join(cadir, "root.key"), join(cadir, "issuing.key"), NULL};
    int rc = 0;
    if (tls_key)
        keys[2] = strdup(tls_key);
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (keys[i] && access(keys[i], F_OK) == 0) {
            log_error("%s exists (left by an init that did not finish?): use --force to replace "
                      "it",
                      keys[i]);
            rc = -1;
        }
    }
    for (int i = 0; i < 3; i++)
        free(keys[i]);
    return rc;
}

static void ca_set_free(struct ca_set *s) {
    EVP_PKEY_free(s->root_key);
    EVP_PKEY_free(s->issuing_key);
    X509_free(s->root);
    X509_free(s->issuing);
}

/* init --force: cfg takes the settings of the data directory's provd.json, which is written
 * again with them. When it cannot be read, the defaults are used, with the ID scope kept when the
 * file still names one. Says on stderr what is replaced and what is kept. */
static void keep_settings(struct provd_config *cfg, const struct init_opts *o, const char *conf) {
    char err[512];

    log_warn("re-initialising %s: replacing its root and issuing CAs and its TLS key and "
             "certificate (unless provd.json names its own); its settings, enrollments and "
             "registrations are kept; admin.token receives a new admin token and earlier tokens "
             "stay valid",
             o->data_dir);
    if (config_load(cfg, err, sizeof(err)) != 0) {
        json_error_t jerr;
        json_t *old = json_load_file(conf, 0, &jerr);
        const char *scope = json_string_value(json_object_get(old, "id_scope"));
        log_warn("its settings cannot be read (%s): provd.json is written anew with the "
                 "defaults%s",
                 err, scope ? " and its ID scope" : "");
        config_free(cfg);
        config_defaults(cfg, o->data_dir);
        if (scope)
            config_set(&cfg->id_scope, scope);
        json_decref(old);
    }
    if (!cfg->id_scope && !o->id_scope)
        log_warn("%s names no ID scope, so a new one is generated: devices that use the old "
                 "one will be refused (404001)",
                 conf);
    else if (cfg->id_scope && o->id_scope && strcasecmp(cfg->id_scope, o->id_scope) != 0)
        log_warn("--id-scope %s replaces the ID scope %s: devices that use %s will be refused "
                 "(404001)",
                 o->id_scope, cfg->id_scope, cfg->id_scope);
}

int provd_init(const struct init_opts *o) {
    struct provd_config cfg, def;
    config_defaults(&cfg, o->data_dir);
    config_defaults(&def, o->data_dir);
    struct ca_set cas = {0};
    EVP_PKEY *srv_key = NULL;
    X509 *srv = NULL;
    char *conf = join(o->data_dir, "provd.json"), *cadir = join(o->data_dir, "ca");
    char *tlsdir = join(o->data_dir, "tls"), *ca_pem = join(cadir, "root.pem");
    char *chain_pem = join(cadir, "chain.pem"), *token = join(o->data_dir, "admin.token");
    char scope[12], err[256];
    int rc = -1;

    const char *why = NULL;
    if (o->id_scope && regid_check(o->id_scope, &why) != 0) {
        log_error("invalid --id-scope: %s", why);
        goto out;
    }
    for (size_t i = 0; i < o->nhostnames; i++) {
        if (!hostname_ok(o->hostnames[i])) {
            log_error("invalid --hostname \"%s\": expected a DNS name or an IP address",
                      o->hostnames[i]);
            goto out;
        }
    }
    if (access(conf, F_OK) == 0 && !o->force) {
        log_error("%s is already initialised (%s exists); use --force to re-initialise it",
                  o->data_dir, conf);
        goto out;
    }
    if (access(conf, F_OK) == 0)
        keep_settings(&cfg, o, conf);
    /* A listener certificate or key of the operator's own, which provd.json names in place of
     * the defaults, is left alone with its partner (a certificate made for the default key
     * still needs that key): provd makes neither. */
    int own_tls = strcmp(cfg.tls_cert, def.tls_cert) != 0 || strcmp(cfg.tls_key, def.tls_key) != 0;
    if ((!o->force && left_keys(cadir, own_tls ? NULL : cfg.tls_key) != 0) ||
        make_dir(o->data_dir) != 0 || make_dir(cadir) != 0 || make_dir(tlsdir) != 0)
        goto out;

    if (o->id_scope)
        config_set(&cfg.id_scope, o->id_scope);
    else if (!cfg.id_scope) {
        if (scope_new(scope) != 0)
            goto out;
        config_set(&cfg.id_scope, scope);
    }

    if (ca_set_new(&cas, o->ca_key_type, cfg.id_scope) != 0 ||
        ca_set_write(&cas, cadir, o->force) != 0)
        goto out;
    if (own_tls)
        log_warn("provd.json names its own TLS certificate %s and key %s: both are kept and "
                 "served, and no new ones are made",
                 cfg.tls_cert, cfg.tls_key);
    else if (!(srv_key = pki_key_new()) ||
             !(srv = pki_server_new(srv_key, cas.root, cas.root_key, "provd", o->hostnames,
                                    o->nhostnames, SERVER_DAYS)) ||
             pki_write_key(cfg.tls_key, srv_key, o->force) != 0 ||
             pki_write_cert(cfg.tls_cert, srv) != 0)
        goto out;
    if (config_save(&cfg, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (provd_token_new(cfg.store, token, "init") != 0)
        goto out;

    printf("initialised %s\n"
           "  id scope      %s\n"
           "  device API    https://%s\n"
           "  admin API     https://%s\n"
           "  trust anchor  %s\n"
           "  device CA     %s (%s)\n"
           "  admin token   %s (keep it secret)\n",
           o->data_dir, cfg.id_scope, cfg.device_listen, cfg.admin_listen, ca_pem, chain_pem,
           pki_key_type_name(o->ca_key_type), token);
    rc = 0;
out:
    ca_set_free(&cas);
    EVP_PKEY_free(srv_key);
    X509_free(srv);
    free(conf);
    free(cadir);
    free(tlsdir);
    free(ca_pem);
    free(chain_pem);
    free(token);
    config_free(&cfg);
    config_free(&def);
    return rc;
}
