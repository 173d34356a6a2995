/* The admin API client: finds the server, its CA and the admin token (command line, data
 * directory or environment), sends one request over libcurl with TLS verification always on,
 * and hands back the status, the parsed JSON body and the response headers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "provctl.h"

#define MAX_BODY      (64u * 1024 * 1024) /* the largest answer accepted (a page of 1000 items) */
#define MAX_HEADERS   128
#define MAX_TOKEN     4096
#define PAGE_SIZE     "1000"
#define DEFAULT_ADMIN "127.0.0.1:8444" /* provd's default admin_listen */

struct ctl_http {
    CURL *curl;
    char *base; /* https://HOST:PORT, no trailing slash */
    char *ca_file;
    char *token; /* a secret: wiped when freed, never printed */
};

struct buf {
    char *data;
    size_t len, cap;
    int too_big;
};

/* ---- Connection settings ---- */

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Builds the URL to reach a server listening on listen ("HOST:PORT", "[V6]:PORT"), with port
 * replacing the listen port when it is not 0. A wildcard host becomes the loopback address of
 * its family, since the admin listener is reached from this machine. Returns the URL (caller
 * frees) or NULL after printing why. */
static char *listen_url(const char *listen, long port, const char *origin) {
    char host[256];
    const char *colon;
    char *end, *url;
    size_t hlen;
    long p;
    int v6;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');

        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - listen - 1);
        colon = close + 1;
        if (hlen >= sizeof host)
            goto bad;
        memcpy(host, listen + 1, hlen);
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - listen);
        if (hlen >= sizeof host || memchr(listen, ':', hlen) != NULL)
            goto bad;
        memcpy(host, listen, hlen);
    }
    host[hlen] = '\0';
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
        goto bad;
    if (port != 0)
        p = port;
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        strcpy(host, "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        strcpy(host, "::1");
    v6 = strchr(host, ':') != NULL;
    hlen = strlen(host) + 32;
    url = malloc(hlen);
    if (url == NULL)
        return NULL;
    snprintf(url, hlen, "https://%s%s%s:%ld", v6 ? "[" : "", host, v6 ? "]" : "", p);
    return url;
bad:
    ctl_err("%s: admin_listen \"%s\" is not HOST:PORT", origin, listen);
    return NULL;
}

/* Reads the admin port from DIR/provd.ports, which a running provd writes. Returns 0 with
 * *port (0 when there is no such file), or -1 after printing why. */
static int read_ports(const char *dir, long *port) {
    char *path = join_path(dir, "provd.ports");
    json_error_t jerr;
    json_t *doc = NULL, *admin;
    int rc = -1;

    *port = 0;
    if (path == NULL)
        return -1;
    if (access(path, F_OK) != 0) {
        rc = 0;
        goto out;
    }
    doc = json_load_file(path, 0, &jerr);
    if (doc == NULL) {
        ctl_err("%s: %s", path, jerr.text);
        goto out;
    }
    admin = json_object_get(doc, "admin");
    if (!json_is_integer(admin) || json_integer_value(admin) < 1 ||
        json_integer_value(admin) > 65535) {
        ctl_err("%s: \"admin\" is not a port number", path);
        goto out;
    }
    *port = (long)json_integer_value(admin);
    rc = 0;
out:
    json_decref(doc);
    free(path);
    return rc;
}

/* The admin API URL of the provd whose data directory is dir. Returns it (caller frees) or
 * NULL after printing why. */
static char *data_dir_server(const char *dir) {
    char *path = join_path(dir, "provd.json");
    json_error_t jerr;
    json_t *cfg = NULL, *listen;
    char *url = NULL;
    long port;

    if (path == NULL)
        return NULL;
    cfg = json_load_file(path, 0, &jerr);
    if (cfg == NULL) {
        if (access(path, F_OK) != 0)
            ctl_err("%s: no provd.json there; is it a provd data directory?", dir);
        else
            ctl_err("%s: %s", path, jerr.text);
        goto out;
    }
    listen = json_object_get(cfg, "admin_listen");
    if (listen != NULL && !json_is_string(listen)) {
        ctl_err("%s: admin_listen is not a string", path);
        goto out;
    }
    if (read_ports(dir, &port) != 0)
        goto out;
    url = listen_url(listen ? json_string_value(listen) : DEFAULT_ADMIN, port, path);
out:
    json_decref(cfg);
    free(path);
    return url;
}

char *ctl_read_secret(const char *what, const char *path) {
    char *tok = NULL;
    size_t n;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        ctl_err("cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    tok = calloc(1, MAX_TOKEN + 2);
    if (tok == NULL)
        goto fail;
    n = fread(tok, 1, MAX_TOKEN + 1, f);
    if (ferror(f)) {
        ctl_err("cannot read %s %s: %s", what, path, strerror(errno));
        goto fail;
    }
    if (n > MAX_TOKEN) {
        ctl_err("%s %s is larger than %d bytes", what, path, MAX_TOKEN);
        goto fail;
    }
    while (n > 0 && isspace((unsigned char)tok[n - 1]))
        tok[--n] = '\0';
    if (n == 0) {
        ctl_err("%s %s is empty", what, path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (iscntrl((unsigned char)tok[i])) {
            ctl_err("%s %s holds more than one line", what, path);
            goto fail;
        }
    fclose(f);
    return tok;
fail:
    fclose(f);
    if (tok) {
        OPENSSL_cleanse(tok, MAX_TOKEN + 2);
        free(tok);
    }
    return NULL;
}

/* Picks each setting from, in order: its own option, --data-dir, its environment variable,
 * PROVD_DATA_DIR. The command line thus always beats the environment. */
static int resolve(struct ctl *ctl, struct ctl_http *h) {
    const char *server = ctl->opt_server, *ca = ctl->opt_ca_file, *tokf = ctl->opt_token_file;
    const char *dirs[2] = {ctl->opt_data_dir, getenv("PROVD_DATA_DIR")};
    const char *envs[3] = {getenv("PROVD_SERVER"), getenv("PROVD_CA_FILE"),
                           getenv("PROVD_TOKEN_FILE")};
    char *ca_path = NULL, *tok_path = NULL;
    int rc = -1;

    for (int step = 0; step < 2; step++) {
        const char *dir = dirs[step];

        if (dir != NULL && dir[0] != '\0') {
            if (server == NULL && h->base == NULL && (h->base = data_dir_server(dir)) == NULL)
                goto out;
            if (ca == NULL && ca_path == NULL && (ca_path = join_path(dir, "ca/root.pem")))
                ca = ca_path;
            if (tokf == NULL && tok_path == NULL && (tok_path = join_path(dir, "admin.token")))
                tokf = tok_path;
        }
        if (step == 0) {
            if (server == NULL && h->base == NULL && envs[0] && envs[0][0])
                server = envs[0];
            if (ca == NULL && envs[1] && envs[1][0])
                ca = envs[1];
            if (tokf == NULL && envs[2] && envs[2][0])
                tokf = envs[2];
        }
    }
    if ((server == NULL && h->base == NULL) || ca == NULL || tokf == NULL) {
        ctl_err("no server given: use --data-dir DIR (or PROVD_DATA_DIR), or --server URL, "
                "--ca-file FILE and --token-file FILE");
        goto out;
    }
    if (server != NULL) {
        size_t len = strlen(server);

        if (strncasecmp(server, "https://", 8) != 0 || len == 8) {
            ctl_err("server \"%s\" is not an https:// URL", server);
            goto out;
        }
        while (len > 8 && server[len - 1] == '/')
            len--;
        if ((h->base = strndup(server, len)) == NULL)
            goto out;
    }
    if (access(ca, R_OK) != 0) {
        ctl_err("cannot read CA file %s: %s", ca, strerror(errno));
        goto out;
    }
    if ((h->ca_file = strdup(ca)) == NULL ||
        (h->token = ctl_read_secret("token file", tokf)) == NULL)
        goto out;
    rc = 0;
out:
    free(ca_path);
    free(tok_path);
    return rc;
}

static struct ctl_http *connect_once(struct ctl *ctl) {
    struct ctl_http *h;

    if (ctl->http != NULL)
        return ctl->http;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    ctl->http = h;
    if (resolve(ctl, h) != 0)
        return NULL;
    if ((h->curl = curl_easy_init()) == NULL) {
        ctl_err("cannot initialise libcurl");
        return NULL;
    }
    return h;
}

void http_close(struct ctl *ctl) {
    struct ctl_http *h = ctl->http;

    if (h == NULL)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->base);
    free(h->ca_file);
    ctl_free_secret(h->token);
    free(h);
    ctl->http = NULL;
}

/* ---- One request ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct buf *b = userdata;
    size_t n = size * nmemb;

    if (n > MAX_BODY - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        /* The old buffer may hold keys: move by hand so it can be wiped. */
        if ((p = malloc(cap)) == NULL)
            return 0;
        if (b->data) {
            memcpy(p, b->data, b->len);
            OPENSSL_cleanse(b->data, b->cap);
            free(b->data);
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void free_headers(struct http_reply *r) {
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct http_reply *r = userdata;
    size_t n = size * nmemb, nlen, vstart, vend;
    const char *colon;
    struct http_header *hs;

    /* A status line starts a new answer (after a 100 Continue, for one): keep only the last. */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        free_headers(r);
        return n;
    }
    colon = memchr(ptr, ':', n);
    if (colon == NULL || r->nheaders >= MAX_HEADERS)
        return n;
    nlen = (size_t)(colon - ptr);
    vstart = nlen + 1;
    vend = n;
    while (vstart < vend && (ptr[vstart] == ' ' || ptr[vstart] == '\t'))
        vstart++;
    while (vend > vstart && isspace((unsigned char)ptr[vend - 1]))
        vend--;
    hs = realloc(r->headers, (r->nheaders + 1) * sizeof *hs);
    if (hs == NULL)
        return 0;
    r->headers = hs;
    hs[r->nheaders].name = strndup(ptr, nlen);
    hs[r->nheaders].value = strndup(ptr + vstart, vend - vstart);
    if (hs[r->nheaders].name == NULL || hs[r->nheaders].value == NULL) {
        free(hs[r->nheaders].name);
        free(hs[r->nheaders].value);
        return 0;
    }
    r->nheaders++;
    return n;
}

const char *http_reply_header(const struct http_reply *r, const char *name) {
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void http_reply_free(struct http_reply *r) {
    json_decref(r->body);
    free_headers(r);
    memset(r, 0, sizeof *r);
}

static int add_header(struct curl_slist **list, const char *line) {
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return -1;
    *list = l;
    return 0;
}

int http_request(struct ctl *ctl, const char *method, const char *path, const json_t *body,
                 const char *const *headers, struct http_reply *r) {
    struct ctl_http *h = connect_once(ctl);
    struct curl_slist *hl = NULL;
    struct buf resp = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = NULL, *payload = NULL;
    CURL *c;
    CURLcode cc;
    json_error_t jerr;
    int rc = -1;

    memset(r, 0, sizeof *r);
    if (h == NULL || h->curl == NULL)
        return -1;
    c = h->curl;
    if ((url = join_path(h->base, path[0] == '/' ? path + 1 : path)) == NULL)
        goto nomem;
    /* Reset per request but keep the handle, so that its connection is reused. */
    curl_easy_reset(c);
    /* An empty Expect stops libcurl from waiting for 100 Continue before sending a body. */
    if (add_header(&hl, "Accept: application/json") != 0 || add_header(&hl, "Expect:") != 0 ||
        (body && add_header(&hl, "Content-Type: application/json; charset=utf-8") != 0))
        goto nomem;
    for (size_t i = 0; headers && headers[i]; i++)
        if (add_header(&hl, headers[i]) != 0)
            goto nomem;
    if (body) {
        if ((payload = json_dumps(body, JSON_COMPACT)) == NULL)
            goto nomem;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    if (strcmp(method, "GET") != 0 && !(body && strcmp(method, "POST") == 0))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "provctl/" PROV_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->token);
    /* Trust exactly the given CA: no system store, and verification is never switched off. */
    curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (resp.too_big)
            ctl_err("%s: the answer is larger than %u bytes", h->base, MAX_BODY);
        else
            ctl_err("cannot reach %s: %s", h->base, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (resp.len > 0) {
        r->body = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, &jerr);
        /* An error answer that is not JSON (a proxy's page, say) is reported by its status. */
        if (r->body == NULL && r->status >= 200 && r->status < 300) {
            ctl_err("%s %s: the answer is not JSON: %s", method, path, jerr.text);
            goto out;
        }
    }
    rc = 0;
    goto out;
nomem:
    ctl_err("out of memory");
out:
    if (rc != 0)
        http_reply_free(r);
    if (resp.data) {
        OPENSSL_cleanse(resp.data, resp.cap);
        free(resp.data);
    }
    curl_slist_free_all(hl);
    if (payload) {
        OPENSSL_cleanse(payload, strlen(payload));
        free(payload);
    }
    free(url);
    return rc;
}

/* ---- Errors and paging ---- */

int http_fail(const struct http_reply *r, const char *subject) {
    json_t *jc = json_object_get(r->body, "errorCode");
    json_t *jm = json_object_get(r->body, "message");
    const char *hc = http_reply_header(r, "x-ms-error-code");
    long long code = json_is_integer(jc) ? (long long)json_integer_value(jc) : 0;
    const char *msg = json_is_string(jm) ? json_string_value(jm) : NULL;
    char codebuf[32] = "";

    if (code == 0 && hc != NULL)
        code = strtoll(hc, NULL, 10);
    if (code != 0)
        snprintf(codebuf, sizeof codebuf, " (%lld)", code);
    else
        snprintf(codebuf, sizeof codebuf, " (HTTP %ld)", r->status);

    if (r->status == 401)
        ctl_err("the server refused the admin token%s", codebuf);
    else if (r->status == 404 && code != 404005)
        ctl_err("%s not found%s", subject, codebuf);
    else if (r->status == 412)
        ctl_err("%s was changed by someone else meanwhile; try again%s", subject, codebuf);
    else if (msg != NULL) {
        char *safe = term_safe(msg); /* the message may repeat what a device sent */
        ctl_err("%s: %s%s", subject, safe ? safe : "(unprintable message)", codebuf);
        free(safe);
    } else
        ctl_err("%s: the server answered HTTP %ld%s", subject, r->status, code != 0 ? codebuf : "");
    return CTL_FAIL;
}

/* Sends a request that answers a JSON object with 200; see http_get_object for absent. */
static int request_object(struct ctl *ctl, const char *method, const char *path, const json_t *body,
                          const char *const *headers, const char *subject, json_t **doc,
                          int *absent) {
    struct http_reply r;
    int rc = CTL_FAIL;

    *doc = NULL;
    if (absent)
        *absent = 0;
    if (http_request(ctl, method, path, body, headers, &r) != 0)
        return CTL_FAIL;
    if (r.status == 200 && json_is_object(r.body)) {
        *doc = json_incref(r.body);
        rc = CTL_OK;
    } else if (r.status == 200) {
        ctl_err("%s: the server's answer is not a JSON object", subject);
    } else if (r.status == 404 && absent) {
        *absent = 1;
        rc = CTL_OK;
    } else {
        http_fail(&r, subject);
    }
    http_reply_free(&r);
    return rc;
}

int http_get_object(struct ctl *ctl, const char *path, const char *subject, json_t **doc,
                    int *absent) {
    return request_object(ctl, "GET", path, NULL, NULL, subject, doc, absent);
}

int http_send_object(struct ctl *ctl, const char *method, const char *path, const json_t *body,
                     const char *const *headers, const char *subject, json_t **doc) {
    return request_object(ctl, method, path, body, headers, subject, doc, NULL);
}

int http_prepare_rewrite(json_t *doc, char **if_match) {
    const char *etag = json_string_value(json_object_get(doc, "etag"));

    *if_match = NULL;
    if (etag != NULL && asprintf(if_match, "If-Match: \"%s\"", etag) < 0) {
        *if_match = NULL;
        ctl_err("out of memory");
        return -1;
    }
    json_object_del(doc, "etag");
    json_object_del(doc, "createdDateTimeUtc");
    json_object_del(doc, "lastUpdatedDateTimeUtc");
    return 0;
}

int http_delete(struct ctl *ctl, const char *path, const char *subject) {
    struct http_reply r;
    int rc = CTL_OK;

    if (http_request(ctl, "DELETE", path, NULL, NULL, &r) != 0)
        return CTL_FAIL;
    if (r.status == 204 || r.status == 200) {
        if (!ctl->json)
            printf("Deleted %s.\n", subject);
    } else {
        rc = http_fail(&r, subject);
    }
    http_reply_free(&r);
    return rc;
}

int http_query_all(struct ctl *ctl, const char *path, const char *subject, json_t **out) {
    json_t *all = json_array(), *query = json_pack("{s:s}", "query", "*");
    char *cont = NULL, *conthdr = NULL;
    int rc = CTL_FAIL;

    *out = NULL;
    if (all == NULL || query == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    for (;;) {
        const char *hdrs[3] = {"x-ms-max-item-count: " PAGE_SIZE, conthdr, NULL};
        struct http_reply r;
        const char *next;

        if (http_request(ctl, "POST", path, query, hdrs, &r) != 0)
            goto out;
        if (r.status != 200) {
            http_fail(&r, subject);
            http_reply_free(&r);
            goto out;
        }
        if (!json_is_array(r.body)) {
            ctl_err("%s: the server's answer is not a JSON array", subject);
            http_reply_free(&r);
            goto out;
        }
        json_array_extend(all, r.body);
        next = http_reply_header(&r, "x-ms-continuation");
        if (next == NULL || next[0] == '\0') {
            http_reply_free(&r);
            break;
        }
        /* A token that comes back unchanged would make this loop forever. */
        if (cont != NULL && strcmp(cont, next) == 0) {
            ctl_err("%s: the server repeated its continuation token", subject);
            http_reply_free(&r);
            goto out;
        }
        free(cont);
        free(conthdr);
        cont = strdup(next);
        http_reply_free(&r);
        if (cont == NULL || asprintf(&conthdr, "x-ms-continuation: %s", cont) < 0) {
            conthdr = NULL;
            ctl_err("out of memory");
            goto out;
        }
    }
    *out = all;
    all = NULL;
    rc = CTL_OK;
out:
    json_decref(all);
    json_decref(query);
    free(cont);
    free(conthdr);
    return rc;
}
