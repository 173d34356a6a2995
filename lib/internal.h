/* What the files of libprov share and nothing outside the library sees: the client and response
 * structures, logging, and the steps of a registration. All of it has hidden visibility. */
#ifndef PROV_LIB_INTERNAL_H
#define PROV_LIB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "prov/prov.h"
#include "prov/transport.h"

#define ERRMSG_MAX 256

struct prov_http_response {
    int status;
    char content_type[128]; /* "" when absent; longer values are cut (and then never match) */
    char retry_after[32];   /* "" when absent */
    char *body;             /* NUL-terminated (not counted in body_len) */
    size_t body_len, body_cap;
    char error[ERRMSG_MAX]; /* why perform failed, "" when it did not say */
};

struct curl_transport;

struct prov_client {
    char *endpoint; /* https://host[:port][/prefix], no trailing '/' */
    char *id_scope;
    char *regid; /* lower-cased */
    char *key;   /* base64 device or group key: a secret, wiped when replaced or freed */
    int key_is_group;
    char *cert_file, *cert_key_file; /* X.509 attestation, in place of key */
    EVP_PKEY *csr_key;               /* the key a CSR is sent for, or NULL for no CSR */
    json_t *payload;                 /* NULL when none */
    char *ca_file;
    uint32_t deadline_ms, backoff_base_ms, backoff_cap_ms, request_timeout_ms, sas_ttl_s;
    prov_log_fn log_fn;
    void *log_ctx;
    prov_log_level log_max;
    struct prov_transport hooks; /* members NULL where the defaults apply */
    struct curl_transport *curl; /* the built-in transport, created on first use */
    char last_error[ERRMSG_MAX];
};

/* ---- client.c ---- */

/* Formats a message to the client's log callback when level is enabled. */
void client_log(const prov_client *c, prov_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the client's last error (and logs it at level error when log is non-zero). */
void client_fail(prov_client *c, int log, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The platform hooks with their defaults applied. */
uint64_t client_now_ms(prov_client *c);
int64_t client_unix_time(prov_client *c);
uint32_t client_random(prov_client *c);
void client_sleep_ms(prov_client *c, uint32_t ms);
prov_err client_perform(prov_client *c, const struct prov_http_request *req,
                        prov_http_response *resp);

/* ---- http.c ---- */

/* Empties resp for a new request (the body buffer is kept for reuse). */
void response_reset(prov_http_response *resp);

/* Forgets the headers recorded so far (a transport saw an interim 1xx answer). */
void response_clear_headers(prov_http_response *resp);

/* Releases the body buffer of resp. */
void response_release(prov_http_response *resp);

/* 1 when resp's Content-Type names application/json (parameters such as charset allowed). */
int response_is_json(const prov_http_response *resp);

/* ---- request.c ---- */

/* The URLs of the device API for the client's endpoint, scope and registration ID. Return a
 * string the caller frees with free(), or NULL when out of memory. */
char *request_register_url(const prov_client *c);
char *request_operation_url(const prov_client *c, const char *operation_id);

/* The register body {"registrationId": ..., "payload": ..., "csr": csr_b64} as compact JSON
 * (payload and csr only when not NULL), freed by the caller with free(); NULL when out of
 * memory. */
char *request_register_body(const prov_client *c, const char *csr_b64);

/* The Authorization value for the client's scope and registration ID, signed with the base64
 * device key and valid until expiry. Returns a string the caller wipes and frees with
 * request_free_secret, or NULL with *why set. */
char *request_sas(const prov_client *c, const char *device_key, int64_t expiry, const char **why);

/* Wipes and frees a NUL-terminated secret. NULL is ignored. */
void request_free_secret(char *s);

/* ---- response.c ---- */

enum answer_kind {
    ANSWER_ASSIGNED,  /* final: status assigned */
    ANSWER_ASSIGNING, /* poll the operation */
    ANSWER_FAILED,    /* final: status failed or disabled */
};

/* Parses a 200 or 202 answer of register or of an operation poll into res (which must be
 * zeroed or freshly released) and tells what it means. Returns PROV_OK with *kind set, or
 * PROV_ERR_PROTOCOL / PROV_ERR_NOMEM with a reason in why (whylen bytes). */
prov_err response_parse_registration(const prov_http_response *resp, prov_result *res,
                                     enum answer_kind *kind, char *why, size_t whylen);

/* Fills res from a DPS error answer ({"errorCode", "trackingId", "message"}) when the body is
 * one; anything else leaves those members NULL. Always sets res->http_status. Returns PROV_OK
 * or PROV_ERR_NOMEM. */
prov_err response_parse_error(const prov_http_response *resp, prov_result *res);

/* Frees the members of res and zeroes it (the struct itself stays). */
void result_clear(prov_result *res);

/* The JSON object of prov_result_to_json; a new reference, or NULL with *err set. */
json_t *result_to_json_object(const prov_result *res, prov_err *err);

/* Fills the members of res that come from the payload (endpoint_*, trust_bundle,
 * configuration) when payload has provd's shape; anything else leaves them NULL. Returns -1
 * when out of memory. */
int result_payload_fields(prov_result *res, json_t *payload);

/* ---- csr.c ---- */

/* A new key pair of type; NULL when generation fails or the type is unknown. */
EVP_PKEY *csr_generate_key(prov_key_type type);

/* Reads the first unencrypted private key of a PEM file (blocks of another kind are passed
 * over) as DER, without leaving the file's text in memory freed unwiped. Returns PROV_OK with
 * *der (*len bytes, a secret the caller frees with csr_key_der_free), or PROV_ERR_IO /
 * PROV_ERR_CRYPTO / PROV_ERR_NOMEM with a reason in why. */
prov_err csr_read_key_der(const char *path, unsigned char **der, size_t *len, char *why,
                          size_t whylen);

/* Wipes and frees what csr_read_key_der read. NULL is ignored. */
void csr_key_der_free(unsigned char *der, size_t len);

/* Reads an unencrypted PEM private key of any type OpenSSL knows, as csr_read_key_der does.
 * Returns PROV_OK with *out (caller frees with EVP_PKEY_free), or PROV_ERR_IO / PROV_ERR_CRYPTO
 * / PROV_ERR_NOMEM with a reason in why. */
prov_err csr_read_key_file(const char *path, EVP_PKEY **out, char *why, size_t whylen);

/* Like csr_read_key_file, for a key of a type a CSR may carry (EC P-256 or P-384, RSA of 2048
 * bits or more, Ed25519): another key is PROV_ERR_CRYPTO. */
prov_err csr_load_key_file(const char *path, EVP_PKEY **out, char *why, size_t whylen);

/* Checks that cert_file starts with a PEM certificate whose key key_file holds (a key of any
 * type: the CSR policy does not apply). Returns PROV_OK, or PROV_ERR_IO / PROV_ERR_CRYPTO /
 * PROV_ERR_NOMEM with a reason in why. PROV_ERR_CRYPTO means that a file holds no usable
 * certificate or key, or (with *mismatch set to 1 when mismatch is not NULL) that both are
 * usable but the certificate is for another key. */
prov_err csr_check_cert_pair(const char *cert_file, const char *key_file, int *mismatch, char *why,
                             size_t whylen);

/* Checks that path can be read and holds a PEM certificate (the first of a CA file is enough:
 * the TLS library reads the rest). Returns PROV_OK, or PROV_ERR_IO / PROV_ERR_CRYPTO with a
 * reason in why. */
prov_err csr_check_ca_file(const char *path, char *why, size_t whylen);

/* The base64 of a DER PKCS#10 request for key with subject CN=cn, signed by key. Returns a
 * string the caller frees, or NULL with a static reason in *why. */
char *csr_build_b64(EVP_PKEY *key, const char *cn, const char **why);

/* key as unencrypted PKCS#8 PEM: a secret the caller frees with request_free_secret; NULL
 * when it cannot be rendered. */
char *csr_key_pem(EVP_PKEY *key);

/* Reads an issuedCertificateChain (array of base64 DER certificates, leaf first) into
 * res->issued_chain_pem, issued_ca_pem and issued_chain_count. Returns PROV_OK, or
 * PROV_ERR_PROTOCOL / PROV_ERR_NOMEM with a reason in why. */
prov_err chain_parse(json_t *chain, prov_result *res, char *why, size_t whylen);

/* 1 when the leaf of res->issued_chain_pem certifies key's public key, else 0. */
int chain_certifies(const prov_result *res, EVP_PKEY *key);

/* ---- transport_curl.c ---- */

prov_err curl_transport_new(struct curl_transport **out);
void curl_transport_free(struct curl_transport *t);
prov_err curl_transport_perform(void *ctx, const struct prov_http_request *req,
                                prov_http_response *resp);

#endif
