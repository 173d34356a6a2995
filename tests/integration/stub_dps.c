/* A scripted DPS device API over TLS on 127.0.0.1, for the answers a real provd does not give on
 * demand (429 with Retry-After, 202 and polling, a run of 503s), and a stand-in certificate
 * issuer for devices that send a CSR. Each request gets the next answer of the script; the last
 * one repeats. Every request is logged with the time it arrived.
 *
 * Usage: stub_dps --cert PEM --key PEM --port-file FILE --log FILE --script ANSWERS
 *                 [--issuer PEM --issuer-key PEM --root PEM] [--trust-bundle PEM]
 *   ANSWERS  comma-separated: 200 (assigned), 202 (assigning, operation op-1, Retry-After: 1),
 *            429 (throttled, Retry-After: 1), 503 (no Retry-After), 401 (refused, with a message
 *            that holds a newline and a terminal escape followed by a line of prov-agent's own)
 *   --issuer, --issuer-key, --root: a register body with "csr" is answered, when assigned, with
 *            issuedCertificateChain [leaf signed by the issuer, issuer, root] (400 when the CSR
 *            does not verify or its CN is not the registration ID); without them, a CSR is
 *            ignored, as a server that issues nothing would.
 *   --trust-bundle: PEM put in payload.endpoint.trustBundle.
 * The assigned payload is {"from": "stub", "endpoint": {...}, "configuration": {...}}.
 * A log line is: MONO_MS METHOD URI ANSWER auth=yes|no cn=CLIENT_CERT_CN|- csr=yes|no.
 * The stub asks for a client certificate and accepts any (X.509 attestation is logged, not
 * judged). It prints its port into --port-file once listening and runs until SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_SCRIPT 64

struct stub {
    int script[MAX_SCRIPT];
    size_t n_script, next;
    FILE *log;
    SSL_CTX *tls;
    X509 *issuer, *root; /* NULL: CSRs are ignored */
    EVP_PKEY *issuer_key;
    char *trust_bundle; /* PEM text, or NULL */
};

static uint64_t mono_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg) {
    struct stub *s = arg;
    SSL *ssl = SSL_new(s->tls);

    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* The registration ID of a path /{scope}/registrations/{regid}/..., into out. */
static void regid_of(const char *uri, char *out, size_t len) {
    const char *p = strstr(uri, "/registrations/");
    size_t n;

    snprintf(out, len, "unknown");
    if (p == NULL)
        return;
    p += strlen("/registrations/");
    n = strcspn(p, "/?");
    if (n > 0 && n < len)
        snprintf(out, len, "%.*s", (int)n, p);
}

static void reply(struct evhttp_request *req, int status, const char *retry_after,
                  const char *body) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    if (retry_after != NULL)
        evhttp_add_header(h, "Retry-After", retry_after);
    if (b != NULL)
        evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Scripted", b);
    if (b != NULL)
        evbuffer_free(b);
}

/* The CN of the client certificate the connection of req presented, into out ("-" for none). */
static void client_cn(struct evhttp_request *req, char *out, size_t len) {
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *peer = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;

    snprintf(out, len, "-");
    if (peer != NULL &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out, (int)len) < 0)
        snprintf(out, len, "?");
    X509_free(peer);
}

/* The "csr" of a register body as a verified request; NULL when there is none or it is not a
 * CSR whose self-signature verifies. *sent says whether the body named one. */
static X509_REQ *csr_of(struct evhttp_request *req, int *sent) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *doc = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
    const char *b64 = json_string_value(json_object_get(doc, "csr"));
    unsigned char *der = NULL;
    const unsigned char *p;
    X509_REQ *csr = NULL;
    int n;

    *sent = b64 != NULL;
    if (b64 == NULL || (der = malloc(strlen(b64))) == NULL)
        goto out;
    n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
    p = der;
    if (n > 0)
        csr = d2i_X509_REQ(NULL, &p, n);
    if (csr != NULL && X509_REQ_verify(csr, X509_REQ_get0_pubkey(csr)) != 1) {
        X509_REQ_free(csr);
        csr = NULL;
    }
out:
    free(der);
    json_decref(doc);
    return csr;
}

/* Appends the base64 DER of cert to the JSON array a. Returns 0 or -1. */
static int add_b64(json_t *a, X509 *cert) {
    unsigned char *der = NULL;
    char *b64;
    int len = i2d_X509(cert, &der), rc = -1;

    if (len > 0 && (b64 = malloc((size_t)len / 3 * 4 + 8)) != NULL) {
        EVP_EncodeBlock((unsigned char *)b64, der, len);
        rc = json_array_append_new(a, json_string(b64));
        free(b64);
    }
    OPENSSL_free(der);
    return rc;
}

/* Issues a day-long client certificate for csr (CN = regid) with the issuer: the chain
 * [leaf, issuer, root] as a JSON array of base64 DER, or NULL when the CN is wrong. */
static json_t *issue(struct stub *s, X509_REQ *csr, const char *regid) {
    char cn[160];
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    X509 *leaf = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    json_t *chain = NULL;
    static const char *const exts[][2] = {{"basicConstraints", "critical,CA:FALSE"},
                                          {"keyUsage", "critical,digitalSignature"},
                                          {"extendedKeyUsage", "clientAuth"}};
    size_t i;

    if (leaf == NULL ||
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(csr), NID_commonName, cn, sizeof(cn)) <
            0 ||
        strcmp(cn, regid) != 0)
        goto out;
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f;
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(leaf)) == NULL ||
        X509_set_version(leaf, 2) != 1 ||
        X509_set_issuer_name(leaf, X509_get_subject_name(s->issuer)) != 1 ||
        X509_set_subject_name(leaf, X509_REQ_get_subject_name(csr)) != 1 ||
        X509_set_pubkey(leaf, X509_REQ_get0_pubkey(csr)) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(leaf), -60) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(leaf), 86400) == NULL)
        goto out;
    X509V3_set_ctx(&ctx, s->issuer, leaf, NULL, NULL, 0);
    for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (ext == NULL || X509_add_ext(leaf, ext, -1) != 1) {
            X509_EXTENSION_free(ext);
            goto out;
        }
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(leaf, s->issuer_key, EVP_sha256()) <= 0)
        goto out;
    chain = json_array();
    if (chain == NULL || add_b64(chain, leaf) != 0 || add_b64(chain, s->issuer) != 0 ||
        add_b64(chain, s->root) != 0) {
        json_decref(chain);
        chain = NULL;
    }
out:
    BN_free(bn);
    X509_free(leaf);
    return chain;
}

/* The assigned answer for regid, with chain (taken) when not NULL. */
static void reply_assigned(struct stub *s, struct evhttp_request *req, const char *regid,
                           json_t *chain) {
    json_t *ep = json_pack("{s:s, s:i, s:s}", "host", "stub-hub.example.com", "port", 8883,
                           "protocol", "mqtts");
    json_t *state, *answer;
    char topic[256], *text;

    snprintf(topic, sizeof(topic), "devices/%s/up", regid);
    if (s->trust_bundle != NULL)
        json_object_set_new(ep, "trustBundle", json_string(s->trust_bundle));
    state = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:o, s:{s:s, s:i}}}",
                      "registrationId", regid, "createdDateTimeUtc", "2026-11-26T01:02:03.1234567Z",
                      "assignedHub", "stub-hub.example.com", "deviceId", regid, "status",
                      "assigned", "substatus", "initialAssignment", "lastUpdatedDateTimeUtc",
                      "2026-11-26T01:02:03.1234567Z", "etag", "AAAAAAAAAAE=", "payload", "from",
                      "stub", "endpoint", ep, "configuration", "topic", topic, "interval", 30);
    if (state != NULL && chain != NULL)
        json_object_set_new(state, "issuedCertificateChain", chain);
    else
        json_decref(chain);
    answer = json_pack("{s:s, s:s, s:o}", "operationId", "op-1", "status", "assigned",
                       "registrationState", state);
    text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    reply(req, text != NULL ? 200 : 500, NULL, text != NULL ? text : "{}");
    free(text);
    json_decref(answer);
}

static void on_request(struct evhttp_request *req, void *arg) {
    struct stub *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_PUT   ? "PUT"
                         : evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET"
                                                                             : "OTHER";
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    char regid[160], cn[160];
    int answer = s->script[s->next < s->n_script ? s->next : s->n_script - 1], csr_sent = 0;
    X509_REQ *csr = csr_of(req, &csr_sent);
    json_t *chain = NULL;

    s->next++;
    client_cn(req, cn, sizeof(cn));
    fprintf(s->log, "%llu %s %s %d auth=%s cn=%s csr=%s\n", (unsigned long long)mono_ms(), method,
            uri, answer, auth != NULL ? "yes" : "no", cn, csr_sent ? "yes" : "no");
    fflush(s->log);
    regid_of(uri, regid, sizeof(regid));
    switch (answer) {
    case 200:
        if (csr_sent && s->issuer != NULL &&
            (csr == NULL || (chain = issue(s, csr, regid)) == NULL)) {
            reply(req, 400, NULL,
                  "{\"errorCode\":400004,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
                  "\"message\":\"bad csr\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
            break;
        }
        reply_assigned(s, req, regid, chain);
        break;
    case 202:
        reply(req, 202, "1", "{\"operationId\":\"op-1\",\"status\":\"assigning\"}");
        break;
    case 401:
        reply(req, 401, NULL,
              "{\"errorCode\":401002,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
              "\"message\":\"bad\\nprov-agent: provisioned: device evil\\u001b[2K\","
              "\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
        break;
    case 429:
        reply(req, 429, "1",
              "{\"errorCode\":429001,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
              "\"message\":\"throttled\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
        break;
    default:
        reply(req, answer, NULL,
              "{\"errorCode\":503001,\"trackingId\":\"00000000-0000-4000-8000-000000000000\","
              "\"message\":\"unavailable\",\"timestampUtc\":\"2026-11-26T01:02:03.1234567Z\"}");
        break;
    }
    X509_REQ_free(csr);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int parse_script(struct stub *s, const char *spec) {
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = 0;

    if (copy == NULL)
        return -1;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int v = atoi(tok);

        if (s->n_script == MAX_SCRIPT ||
            (v != 200 && v != 202 && v != 401 && v != 429 && v != 503)) {
            rc = -1;
            break;
        }
        s->script[s->n_script++] = v;
    }
    free(copy);
    return rc == 0 && s->n_script > 0 ? 0 : -1;
}

/* Accepts any client certificate: the stub records X.509 attestation, it does not judge it. */
static int accept_any(int ok, X509_STORE_CTX *ctx) {
    (void)ok;
    (void)ctx;
    return 1;
}

/* Reads the first certificate of a PEM file; NULL when it cannot. */
static X509 *read_cert(const char *path) {
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL)
        fclose(f);
    return x;
}

/* Reads a whole text file; NULL when it cannot. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    long len;

    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)len + 1)) != NULL &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Writes the port into path through a temporary file, so a reader never sees half of it. */
static int write_port(const char *path, int port) {
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"cert", required_argument, NULL, 'c'},         {"key", required_argument, NULL, 'k'},
        {"port-file", required_argument, NULL, 'p'},    {"log", required_argument, NULL, 'l'},
        {"script", required_argument, NULL, 's'},       {"issuer", required_argument, NULL, 'i'},
        {"issuer-key", required_argument, NULL, 'j'},   {"root", required_argument, NULL, 'r'},
        {"trust-bundle", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    const char *cert = NULL, *key = NULL, *port_file = NULL, *log_path = NULL, *script = NULL;
    const char *issuer = NULL, *issuer_key = NULL, *root = NULL, *bundle = NULL;
    struct event_base *base = NULL;
    struct event *term = NULL, *intr = NULL;
    struct evhttp *http = NULL;
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    struct stub s;
    int c, rc = 1;

    memset(&s, 0, sizeof(s));
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 's':
            script = optarg;
            break;
        case 'i':
            issuer = optarg;
            break;
        case 'j':
            issuer_key = optarg;
            break;
        case 'r':
            root = optarg;
            break;
        case 't':
            bundle = optarg;
            break;
        default:
            return 2;
        }
    }
    if (cert == NULL || key == NULL || port_file == NULL || log_path == NULL || script == NULL ||
        parse_script(&s, script) != 0) {
        fprintf(stderr, "usage: stub_dps --cert PEM --key PEM --port-file FILE --log FILE "
                        "--script 429,200\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    s.log = fopen(log_path, "a");
    s.tls = SSL_CTX_new(TLS_server_method());
    if (s.log == NULL || s.tls == NULL || SSL_CTX_use_certificate_chain_file(s.tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s.tls, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "stub_dps: cannot set up TLS or the log\n");
        ERR_print_errors_fp(stderr);
        goto out;
    }
    SSL_CTX_set_verify(s.tls, SSL_VERIFY_PEER, accept_any);
    if (issuer != NULL || issuer_key != NULL || root != NULL) {
        FILE *f = issuer_key != NULL ? fopen(issuer_key, "r") : NULL;

        s.issuer = issuer != NULL ? read_cert(issuer) : NULL;
        s.root = root != NULL ? read_cert(root) : NULL;
        s.issuer_key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (s.issuer == NULL || s.root == NULL || s.issuer_key == NULL) {
            fprintf(stderr, "stub_dps: --issuer, --issuer-key and --root must all be readable\n");
            goto out;
        }
    }
    if (bundle != NULL && (s.trust_bundle = read_text(bundle)) == NULL) {
        fprintf(stderr, "stub_dps: cannot read %s\n", bundle);
        goto out;
    }
    base = event_base_new();
    http = base != NULL ? evhttp_new(base) : NULL;
    if (http == NULL)
        goto out;
    evhttp_set_bevcb(http, tls_bev, &s);
    evhttp_set_gencb(http, on_request, &s);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST);
    sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (sock == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen) != 0) {
        fprintf(stderr, "stub_dps: cannot listen: %s\n", strerror(errno));
        goto out;
    }
    term = evsignal_new(base, SIGTERM, on_signal, base);
    intr = evsignal_new(base, SIGINT, on_signal, base);
    if (term == NULL || intr == NULL || evsignal_add(term, NULL) != 0 ||
        evsignal_add(intr, NULL) != 0 || write_port(port_file, ntohs(sin.sin_port)) != 0)
        goto out;
    event_base_dispatch(base);
    rc = 0;
out:
    if (term != NULL)
        event_free(term);
    if (intr != NULL)
        event_free(intr);
    if (http != NULL)
        evhttp_free(http);
    if (base != NULL)
        event_base_free(base);
    if (s.tls != NULL)
        SSL_CTX_free(s.tls);
    if (s.log != NULL)
        fclose(s.log);
    X509_free(s.issuer);
    X509_free(s.root);
    EVP_PKEY_free(s.issuer_key);
    free(s.trust_bundle);
    return rc;
}
