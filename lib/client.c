/* The client object: its settings, its log, and the platform hooks with their defaults. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#include "base64.h"
#include "hmac.h"
#include "rand.h"
#include "regid.h"

#define ENDPOINT_MAX 2048

prov_err prov_client_new(prov_client **client) {
    prov_client *c;

    if (client == NULL)
        return PROV_ERR_INVALID_ARG;
    *client = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PROV_ERR_NOMEM;
    c->deadline_ms = PROV_DEFAULT_DEADLINE_MS;
    c->backoff_base_ms = PROV_DEFAULT_BACKOFF_BASE_MS;
    c->backoff_cap_ms = PROV_DEFAULT_BACKOFF_CAP_MS;
    c->request_timeout_ms = PROV_DEFAULT_REQUEST_TIMEOUT_MS;
    c->sas_ttl_s = PROV_DEFAULT_SAS_TTL_S;
    c->log_max = PROV_LOG_WARN;
    *client = c;
    return PROV_OK;
}

void prov_client_free(prov_client *client) {
    if (client == NULL)
        return;
    free(client->endpoint);
    free(client->id_scope);
    free(client->regid);
    request_free_secret(client->key);
    free(client->cert_file);
    free(client->cert_key_file);
    EVP_PKEY_free(client->csr_key);
    json_decref(client->payload);
    free(client->ca_file);
    curl_transport_free(client->curl);
    free(client);
}

/* ---- Log and last error ---- */

static void vlog(const prov_client *c, prov_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Replaces the control characters of s (below 0x20, and 0x7f) with '?'. Messages carry what a
 * server sent (its error message, a device ID): a newline or a terminal escape in it must not
 * let the server write a line of its own into the application's log. */
static void replace_controls(char *s) {
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
    }
}

static void vlog(const prov_client *c, prov_log_level level, const char *fmt, va_list ap) {
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    replace_controls(msg);
    c->log_fn(c->log_ctx, level, msg);
}

void client_log(const prov_client *c, prov_log_level level, const char *fmt, ...) {
    va_list ap;

    /* The level is checked before anything is formatted. */
    if (c->log_fn == NULL || level > c->log_max)
        return;
    va_start(ap, fmt);
    vlog(c, level, fmt, ap);
    va_end(ap);
}

void client_fail(prov_client *c, int log, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
    replace_controls(c->last_error);
    client_log(c, log ? PROV_LOG_ERROR : PROV_LOG_DEBUG, "%s", c->last_error);
}

const char *prov_client_last_error(const prov_client *client) {
    return client != NULL ? client->last_error : "no client";
}

void prov_client_set_log(prov_client *client, prov_log_fn fn, void *ctx, prov_log_level max_level) {
    if (client == NULL)
        return;
    client->log_fn = fn;
    client->log_ctx = ctx;
    client->log_max = max_level;
}

/* ---- Settings ---- */

/* Forgets the client certificate of X.509 attestation. */
static void forget_client_cert(prov_client *c) {
    free(c->cert_file);
    free(c->cert_key_file);
    c->cert_file = c->cert_key_file = NULL;
}

/* Replaces *slot with a copy of value. */
static prov_err set_copy(char **slot, const char *value) {
    char *copy = strdup(value);

    if (copy == NULL)
        return PROV_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return PROV_OK;
}

/* Common start of every setter: a client to set something on, and a fresh last error. */
#define BEGIN(c)                                                                                   \
    do {                                                                                           \
        if ((c) == NULL)                                                                           \
            return PROV_ERR_INVALID_ARG;                                                           \
        (c)->last_error[0] = '\0';                                                                 \
    } while (0)

prov_err prov_client_set_endpoint(prov_client *client, const char *url) {
    static const char scheme[] = "https://";
    const size_t slen = sizeof(scheme) - 1;
    size_t len, i;
    prov_err rc;

    BEGIN(client);
    if (url == NULL || strncasecmp(url, scheme, slen) != 0) {
        client_fail(client, 1, "endpoint must be an https:// URL");
        return PROV_ERR_INVALID_ARG;
    }
    len = strnlen(url, ENDPOINT_MAX + 1);
    if (len > ENDPOINT_MAX) {
        client_fail(client, 1, "endpoint is longer than %d characters", ENDPOINT_MAX);
        return PROV_ERR_INVALID_ARG;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#') {
            client_fail(client, 1, "endpoint must not contain blanks, '?' or '#'");
            return PROV_ERR_INVALID_ARG;
        }
    }
    while (len > slen && url[len - 1] == '/')
        len--;
    if (len == slen || url[slen] == '/') {
        client_fail(client, 1, "endpoint has no host");
        return PROV_ERR_INVALID_ARG;
    }
    if ((rc = set_copy(&client->endpoint, url)) != PROV_OK)
        return rc;
    client->endpoint[len] = '\0';
    return PROV_OK;
}

prov_err prov_client_set_id_scope(prov_client *client, const char *id_scope) {
    const char *why = NULL;

    BEGIN(client);
    /* Scopes follow the registration ID's alphabet (as provd checks them), which also keeps
     * them free of anything a URL path or a SAS token would need to escape. */
    if (id_scope == NULL || strlen(id_scope) > 64 || regid_check(id_scope, &why) != 0) {
        client_fail(client, 1, "invalid ID scope: %s", why != NULL ? why : "missing or too long");
        return PROV_ERR_INVALID_ARG;
    }
    return set_copy(&client->id_scope, id_scope);
}

prov_err prov_client_set_registration_id(prov_client *client, const char *regid) {
    const char *why = "missing";
    prov_err rc;

    BEGIN(client);
    if (regid == NULL || regid_check(regid, &why) != 0) {
        client_fail(client, 1, "invalid registration ID: %s", why);
        return PROV_ERR_INVALID_ARG;
    }
    if ((rc = set_copy(&client->regid, regid)) != PROV_OK)
        return rc;
    regid_lower(client->regid);
    return PROV_OK;
}

static prov_err set_key(prov_client *c, const char *key_b64, int is_group) {
    const char *what = is_group ? "group key" : "symmetric key";
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    char *copy;

    BEGIN(c);
    if (key_b64 == NULL || key_b64[0] == '\0') {
        client_fail(c, 1, "%s is missing", what);
        return PROV_ERR_INVALID_ARG;
    }
    if (b64_decode(key_b64, strlen(key_b64), &raw, &rawlen, NULL) != 0) {
        client_fail(c, 1, "%s is not valid base64", what);
        return PROV_ERR_CRYPTO;
    }
    b64_free(raw, rawlen);
    copy = strdup(key_b64);
    if (copy == NULL)
        return PROV_ERR_NOMEM;
    request_free_secret(c->key);
    c->key = copy;
    c->key_is_group = is_group;
    forget_client_cert(c);
    return PROV_OK;
}

prov_err prov_client_set_symmetric_key(prov_client *client, const char *key_b64) {
    return set_key(client, key_b64, 0);
}

prov_err prov_client_set_group_key(prov_client *client, const char *key_b64) {
    return set_key(client, key_b64, 1);
}

prov_err prov_client_set_client_cert(prov_client *client, const char *cert_file,
                                     const char *key_file) {
    char why[ERRMSG_MAX];
    char *cert = NULL, *key = NULL;
    prov_err rc;

    BEGIN(client);
    if (cert_file == NULL && key_file == NULL) {
        forget_client_cert(client);
        return PROV_OK;
    }
    if (cert_file == NULL || key_file == NULL || cert_file[0] == '\0' || key_file[0] == '\0') {
        client_fail(client, 1, "a client certificate needs both a certificate and a key file");
        return PROV_ERR_INVALID_ARG;
    }
    if ((rc = csr_check_cert_pair(cert_file, key_file, NULL, why, sizeof(why))) != PROV_OK) {
        client_fail(client, 1, "%s", why);
        return rc;
    }
    if ((cert = strdup(cert_file)) == NULL || (key = strdup(key_file)) == NULL) {
        free(cert);
        return PROV_ERR_NOMEM;
    }
    forget_client_cert(client);
    client->cert_file = cert;
    client->cert_key_file = key;
    request_free_secret(client->key);
    client->key = NULL;
    client->key_is_group = 0;
    return PROV_OK;
}

prov_err prov_client_generate_key(prov_client *client, prov_key_type type) {
    EVP_PKEY *key;

    BEGIN(client);
    if (type != PROV_KEY_EC_P256 && type != PROV_KEY_EC_P384 && type != PROV_KEY_RSA_2048 &&
        type != PROV_KEY_RSA_3072) {
        client_fail(client, 1, "unknown key type %d", (int)type);
        return PROV_ERR_INVALID_ARG;
    }
    if ((key = csr_generate_key(type)) == NULL) {
        client_fail(client, 1, "cannot generate a key pair");
        return PROV_ERR_CRYPTO;
    }
    EVP_PKEY_free(client->csr_key);
    client->csr_key = key;
    return PROV_OK;
}

prov_err prov_client_set_csr_key_file(prov_client *client, const char *path) {
    char why[ERRMSG_MAX];
    EVP_PKEY *key = NULL;
    prov_err rc;

    BEGIN(client);
    if (path != NULL && path[0] == '\0') {
        client_fail(client, 1, "key file path is empty");
        return PROV_ERR_INVALID_ARG;
    }
    if (path != NULL && (rc = csr_load_key_file(path, &key, why, sizeof(why))) != PROV_OK) {
        client_fail(client, 1, "%s", why);
        return rc;
    }
    EVP_PKEY_free(client->csr_key);
    client->csr_key = key;
    return PROV_OK;
}

prov_err prov_client_get_key_pem(const prov_client *client, char **pem) {
    if (pem == NULL)
        return PROV_ERR_INVALID_ARG;
    *pem = NULL;
    if (client == NULL || client->csr_key == NULL)
        return PROV_ERR_INVALID_ARG;
    *pem = csr_key_pem(client->csr_key);
    return *pem != NULL ? PROV_OK : PROV_ERR_CRYPTO;
}

void prov_secret_free(char *secret) {
    request_free_secret(secret);
}

prov_err prov_client_set_payload(prov_client *client, const char *json) {
    json_error_t jerr;
    json_t *doc = NULL;

    BEGIN(client);
    if (json != NULL) {
        doc = json_loads(json, JSON_DECODE_ANY, &jerr);
        if (doc == NULL) {
            client_fail(client, 1, "payload is not valid JSON: %s (line %d, column %d)", jerr.text,
                        jerr.line, jerr.column);
            return PROV_ERR_INVALID_ARG;
        }
    }
    json_decref(client->payload);
    client->payload = doc;
    return PROV_OK;
}

prov_err prov_client_set_ca_file(prov_client *client, const char *path) {
    char why[ERRMSG_MAX];
    prov_err rc;

    BEGIN(client);
    if (path == NULL) {
        free(client->ca_file);
        client->ca_file = NULL;
        return PROV_OK;
    }
    if (path[0] == '\0') {
        client_fail(client, 1, "CA file path is empty");
        return PROV_ERR_INVALID_ARG;
    }
    /* Found now, a missing or wrong file is a setting to correct; found at the first
     * connection, it would pass for a server that cannot be trusted. */
    if ((rc = csr_check_ca_file(path, why, sizeof(why))) != PROV_OK) {
        client_fail(client, 1, "%s", why);
        return rc;
    }
    return set_copy(&client->ca_file, path);
}

/* Sets one of the client's durations, which must not be 0. */
static prov_err set_positive(prov_client *c, uint32_t *slot, uint32_t value, const char *what) {
    BEGIN(c);
    if (value == 0) {
        client_fail(c, 1, "%s must be positive", what);
        return PROV_ERR_INVALID_ARG;
    }
    *slot = value;
    return PROV_OK;
}

prov_err prov_client_set_deadline(prov_client *client, uint32_t ms) {
    return set_positive(client, client != NULL ? &client->deadline_ms : NULL, ms, "deadline");
}

prov_err prov_client_set_request_timeout(prov_client *client, uint32_t ms) {
    return set_positive(client, client != NULL ? &client->request_timeout_ms : NULL, ms,
                        "request timeout");
}

prov_err prov_client_set_sas_ttl(prov_client *client, uint32_t seconds) {
    return set_positive(client, client != NULL ? &client->sas_ttl_s : NULL, seconds,
                        "SAS token lifetime");
}

prov_err prov_client_set_backoff(prov_client *client, uint32_t base_ms, uint32_t cap_ms) {
    BEGIN(client);
    if (base_ms == 0 || cap_ms < base_ms) {
        client_fail(client, 1, "backoff needs 0 < base <= cap");
        return PROV_ERR_INVALID_ARG;
    }
    client->backoff_base_ms = base_ms;
    client->backoff_cap_ms = cap_ms;
    return PROV_OK;
}

prov_err prov_client_set_transport(prov_client *client, const struct prov_transport *transport) {
    BEGIN(client);
    if (transport != NULL)
        client->hooks = *transport;
    else
        memset(&client->hooks, 0, sizeof(client->hooks));
    /* A replaced transport must not keep a connection of the old one open. */
    if (client->hooks.perform != NULL) {
        curl_transport_free(client->curl);
        client->curl = NULL;
    }
    return PROV_OK;
}

/* ---- Platform hooks and their defaults ---- */

uint64_t client_now_ms(prov_client *c) {
    struct timespec ts;

    if (c->hooks.now_ms != NULL)
        return c->hooks.now_ms(c->hooks.ctx);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t client_unix_time(prov_client *c) {
    if (c->hooks.unix_time != NULL)
        return c->hooks.unix_time(c->hooks.ctx);
    return (int64_t)time(NULL);
}

uint32_t client_random(prov_client *c) {
    uint32_t v;

    if (c->hooks.random_u32 != NULL)
        return c->hooks.random_u32(c->hooks.ctx);
    /* Jitter only spreads retries out; without randomness the middle of the range does too. */
    if (rand_bytes(&v, sizeof(v)) != 0)
        return UINT32_MAX / 2;
    return v;
}

void client_sleep_ms(prov_client *c, uint32_t ms) {
    struct timespec ts;

    if (c->hooks.sleep_ms != NULL) {
        c->hooks.sleep_ms(c->hooks.ctx, ms);
        return;
    }
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

prov_err client_perform(prov_client *c, const struct prov_http_request *req,
                        prov_http_response *resp) {
    prov_err rc;

    if (c->hooks.perform != NULL)
        return c->hooks.perform(c->hooks.ctx, req, resp);
    if (c->curl == NULL && (rc = curl_transport_new(&c->curl)) != PROV_OK)
        return rc;
    return curl_transport_perform(c->curl, req, resp);
}

/* ---- Keys ---- */

prov_err prov_derive_device_key(const char *group_key_b64, const char *regid,
                                char out[PROV_DEVICE_KEY_LEN]) {
    char *key;
    size_t len;
    prov_err rc = PROV_OK;

    if (group_key_b64 == NULL || regid == NULL || out == NULL)
        return PROV_ERR_INVALID_ARG;
    key = derive_device_key(group_key_b64, regid, NULL);
    /* The HMAC context keeps the group key it was given: wipe it now. */
    hmac_sha256_forget();
    if (key == NULL)
        return PROV_ERR_CRYPTO;
    len = strlen(key);
    if (len >= PROV_DEVICE_KEY_LEN)
        rc = PROV_ERR_CRYPTO;
    else
        memcpy(out, key, len + 1);
    request_free_secret(key);
    return rc;
}
