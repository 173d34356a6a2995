/* libprov: the device side of provd.
 *
 * A device links libprov to obtain its identity from a provd server (or any server speaking the
 * DPS device protocol) with symmetric-key or X.509 attestation, and optionally a certificate
 * issued for a key generated on the device:
 *
 *     prov_client *c = NULL;
 *     prov_result *r = NULL;
 *     prov_err rc = prov_client_new(&c);
 *     if (rc == PROV_OK) rc = prov_client_set_endpoint(c, "https://prov.example.com:8443");
 *     if (rc == PROV_OK) rc = prov_client_set_id_scope(c, "0ne00ABCDEF");
 *     if (rc == PROV_OK) rc = prov_client_set_registration_id(c, "sensor-0001");
 *     if (rc == PROV_OK) rc = prov_client_set_group_key(c, group_key_b64);
 *     if (rc == PROV_OK) rc = prov_register(c, &r);
 *     if (rc == PROV_OK) use(r->device_id, r->assigned_hub, r->payload);
 *     prov_result_free(r);
 *     prov_client_free(c);
 *
 * Conventions of the whole API:
 * - Every function that can fail returns a prov_err; PROV_OK is 0. prov_strerror() describes one.
 * - Strings are NUL-terminated UTF-8. Input strings are copied: the caller may free or wipe its
 *   own copy as soon as a call returns.
 * - Memory the library hands out says who frees it and how, next to the function.
 * - The library never prints. It reports what it does through the log callback of a client
 *   (prov_client_set_log), and keys and tokens never appear in what it reports.
 * - A prov_client is not thread-safe: use one client per thread. Distinct clients are
 *   independent.
 * - The HTTP transport, the clocks, the sleep and the random source can be replaced
 *   (prov/transport.h), which is how firmware without libcurl ports the library.
 *
 * The full reference with a complete example is docs/libprov.md. */
#ifndef PROV_PROV_H
#define PROV_PROV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions of the public API; everything else in the library is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define PROV_EXPORT __attribute__((visibility("default")))
#else
#define PROV_EXPORT
#endif

/* Every error the library reports. The values are part of the ABI and never change meaning. */
typedef enum prov_err {
    PROV_OK = 0,
    /* A parameter or setting is missing or malformed (the log says which). */
    PROV_ERR_INVALID_ARG = 1,
    /* Memory ran out. */
    PROV_ERR_NOMEM = 2,
    /* A key is not usable (not base64) or the crypto library failed. */
    PROV_ERR_CRYPTO = 3,
    /* The server could not be reached: connection refused, name not resolved, connection
     * reset, one request timed out. prov_register retries these until its deadline. */
    PROV_ERR_NETWORK = 4,
    /* No trusted TLS connection: the server's certificate did not verify against the CA file
     * or the system trust store, or, when connecting, the CA file or the key file of the client
     * certificate could no longer be used. Never retried. */
    PROV_ERR_TLS = 5,
    /* The overall deadline of prov_register passed without a final answer (the server was
     * unreachable, throttled with 429 or failed with 5xx on every attempt). */
    PROV_ERR_TIMEOUT = 6,
    /* The server refused the request with an HTTP 4xx other than 429: wrong key, unknown ID
     * scope or registration ID, malformed request. Never retried. */
    PROV_ERR_REFUSED = 7,
    /* The server's answer could not be understood: not JSON, wrong Content-Type, fields
     * missing or of the wrong type, larger than the library accepts. */
    PROV_ERR_PROTOCOL = 8,
    /* The server answered, but the registration ended with status "failed" or "disabled"
     * (for example a disabled enrollment); the result carries its error code and message. */
    PROV_ERR_REGISTRATION_FAILED = 9,
    /* prov_state_load: there is no state file. */
    PROV_ERR_STATE_NOT_FOUND = 10,
    /* prov_state_load: the state file exists but is empty, truncated, not JSON, or lacks a
     * field or has one of the wrong type. It is never treated as absent. */
    PROV_ERR_STATE_CORRUPT = 11,
    /* A file or directory operation failed (permissions, disk full, a state directory that is
     * a symbolic link or another user's, ...). */
    PROV_ERR_IO = 12,
} prov_err;

/* Frees a secret the library handed out (a private key in PEM), wiping it first. NULL is
 * ignored. */
PROV_EXPORT void prov_secret_free(char *secret);

/* Returns a static, human-readable description of err (never NULL; unknown values give
 * "unknown error"). */
PROV_EXPORT const char *prov_strerror(prov_err err);

/* Returns the library's version as a static string, e.g. "0.1.0". */
PROV_EXPORT const char *prov_version(void);

/* ---- Logging ---- */

typedef enum prov_log_level {
    PROV_LOG_ERROR = 0,
    PROV_LOG_WARN = 1,
    PROV_LOG_INFO = 2,
    PROV_LOG_DEBUG = 3,
} prov_log_level;

/* Receives one log message (a single line without a trailing newline: control characters, which
 * a server's text may hold, are replaced by '?'). msg is valid only during the call. ctx is the
 * pointer given to prov_client_set_log. */
typedef void (*prov_log_fn)(void *ctx, prov_log_level level, const char *msg);

/* ---- Results ---- */

/* What the server answered about a registration. Every string member is NULL when the server
 * did not send it. Results are allocated by the library only (prov_register, prov_state_load):
 * new members are appended at the end, so do not declare a prov_result yourself. Release with
 * prov_result_free. */
typedef struct prov_result {
    int http_status;           /* status of the server's last answer; 0 when loaded from state */
    char *operation_id;        /* operationId */
    char *status;              /* "assigned", "failed", "disabled", ... */
    char *registration_id;     /* registrationState.registrationId */
    char *device_id;           /* deviceId: the identity the device was given */
    char *assigned_hub;        /* assignedHub: the endpoint the device connects to */
    char *substatus;           /* initialAssignment, deviceDataMigrated, ... */
    char *created_at;          /* createdDateTimeUtc, as sent (2026-11-26T01:02:03.1234567Z) */
    char *updated_at;          /* lastUpdatedDateTimeUtc, as sent */
    char *etag;                /* etag, opaque */
    char *enrollment_group_id; /* the group that attested it, when one did (symmetricKey or
                                * x509 enrollmentGroupId) */
    char *payload;             /* payload (the device's configuration) as compact JSON text */
    long error_code;           /* errorCode of a failed registration or an error answer, or 0 */
    char *error_message;       /* errorMessage of a failed registration, message of an error */
    char *tracking_id;         /* trackingId of an error answer */

    /* What the payload says about the endpoint and the device's configuration, when the
     * payload has provd's shape ({"endpoint": {...}, "configuration": {...}}, docs/device-api.md);
     * NULL or 0 for anything else. The payload itself stays in payload. */
    char *endpoint_host;     /* payload.endpoint.host */
    int endpoint_port;       /* payload.endpoint.port, 0 when absent */
    char *endpoint_protocol; /* payload.endpoint.protocol ("mqtts", ...) */
    char *trust_bundle;      /* payload.endpoint.trustBundle: PEM the endpoint verifies with */
    char *configuration;     /* payload.configuration as compact JSON */

    /* The certificates the server issued for the device's CSR (prov_client_generate_key,
     * prov_client_set_csr_key_file), as PEM; NULL when no CSR was sent. Not part of the JSON
     * of prov_result_to_json nor of identity.json: prov_state_save_certificates keeps them. */
    char *issued_chain_pem;    /* every certificate of issuedCertificateChain, leaf first */
    char *issued_ca_pem;       /* the same without the leaf (issuing CA, root); NULL when the
                                * server sent the leaf alone */
    size_t issued_chain_count; /* how many certificates issued_chain_pem holds */
} prov_result;

/* Frees a result and everything it points to. NULL is ignored. */
PROV_EXPORT void prov_result_free(prov_result *result);

/* Renders result as a compact JSON object with the DPS field names (registrationId, deviceId,
 * assignedHub, status, substatus, createdDateTimeUtc, lastUpdatedDateTimeUtc, etag,
 * operationId, enrollmentGroupId, payload, and for failures httpStatus, errorCode,
 * errorMessage, trackingId), plus "endpoint": {"host", "port", "protocol"} when the payload
 * named one; members that are NULL or 0 are left out. The issued certificates are not part of
 * it.
 * On PROV_OK, *json is a NUL-terminated string the caller frees with free().
 * Returns PROV_ERR_INVALID_ARG when result or json is NULL, PROV_ERR_PROTOCOL when
 * result->payload is not valid JSON, PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_result_to_json(const prov_result *result, char **json);

/* ---- The client ---- */

typedef struct prov_client prov_client;

/* Defaults of the settings below. */
#define PROV_DEFAULT_DEADLINE_MS        300000u /* five minutes for the whole registration */
#define PROV_DEFAULT_BACKOFF_BASE_MS    1000u
#define PROV_DEFAULT_BACKOFF_CAP_MS     60000u
#define PROV_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define PROV_DEFAULT_SAS_TTL_S          3600u
#define PROV_API_VERSION                "2021-06-01"

/* Creates a client with default settings. On PROV_OK, *client is the new client, which the
 * caller releases with prov_client_free. Returns PROV_ERR_INVALID_ARG when client is NULL or
 * PROV_ERR_NOMEM (then *client is NULL). */
PROV_EXPORT prov_err prov_client_new(prov_client **client);

/* Frees a client; the copies of keys it holds are wiped first. NULL is ignored. */
PROV_EXPORT void prov_client_free(prov_client *client);

/* Sets the server's base URL, "https://HOST[:PORT][/PREFIX]" (a trailing '/' is dropped). Only
 * https is accepted. Returns PROV_ERR_INVALID_ARG for anything else, or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_set_endpoint(prov_client *client, const char *url);

/* Sets the ID scope (1-64 characters, no '/'). Returns PROV_ERR_INVALID_ARG or PROV_ERR_NOMEM
 * on failure. */
PROV_EXPORT prov_err prov_client_set_id_scope(prov_client *client, const char *id_scope);

/* Sets the registration ID: 1-128 characters of a-z A-Z 0-9 - . _ : that neither start nor end
 * with one of - . _ :. Registration IDs are case-insensitive; the client keeps it lower-cased,
 * which is also the form a group key derivation uses. Returns PROV_ERR_INVALID_ARG or
 * PROV_ERR_NOMEM on failure. */
PROV_EXPORT prov_err prov_client_set_registration_id(prov_client *client, const char *regid);

/* Sets the device's own symmetric key (base64, as enrolled individually) and forgets any group
 * key and any client certificate (prov_client_set_client_cert). Returns PROV_ERR_CRYPTO when
 * key_b64 is not valid base64, PROV_ERR_INVALID_ARG when it is NULL or empty, or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_set_symmetric_key(prov_client *client, const char *key_b64);

/* Sets an enrollment group's key (base64) and forgets any device key and client certificate.
 * prov_register derives
 * the device key from it: base64(HMAC-SHA256(base64decode(group key), registration ID)).
 * Errors as for prov_client_set_symmetric_key. */
PROV_EXPORT prov_err prov_client_set_group_key(prov_client *client, const char *key_b64);

/* Sets the payload sent with the registration: any JSON text (object, array, string, number,
 * ...), or NULL for none. Returns PROV_ERR_INVALID_ARG when json is not valid JSON, or
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_set_payload(prov_client *client, const char *json);

/* ---- X.509 ----
 *
 * X.509 attestation: the device proves who it is with a client certificate in the TLS handshake
 * instead of a SAS token. A certificate from the server's CA (issued for a CSR) or from the
 * operator's own PKI is enrolled at the server.
 *
 * Certificate issuance: the device generates a key pair, sends a PKCS#10 CSR (CN = registration
 * ID) with the registration, and receives issuedCertificateChain. It works with either
 * attestation. The private key stays inside the client until the application asks for it
 * (prov_client_get_key_pem) or has it written to the state directory (prov_state_save_key). */

/* The longest registration ID of a client that sends a CSR: the ID is the CSR's CN, which
 * RFC 5280 limits to 64 characters (ub-common-name). */
#define PROV_CSR_REGID_MAX 64

/* Key types for prov_client_generate_key. */
typedef enum prov_key_type {
    PROV_KEY_EC_P256 = 0, /* ECDSA on P-256 (prime256v1), the default choice */
    PROV_KEY_EC_P384 = 1, /* ECDSA on P-384 */
    PROV_KEY_RSA_2048 = 2,
    PROV_KEY_RSA_3072 = 3,
} prov_key_type;

/* Sets the client certificate and its private key for X.509 attestation: PEM files; cert_file
 * may hold the chain after the device's certificate (leaf first). Both files are read and checked
 * now (the key must be the certificate's and unencrypted; any type the TLS library can sign with
 * will do, not only those prov_client_set_csr_key_file takes) and again by the transport at each
 * connection; the built-in transport needs libcurl built on OpenSSL for it (PROV_ERR_TLS at
 * prov_register otherwise). From then on prov_register sends no Authorization header; any
 * symmetric or group key is forgotten. NULL for both returns to no client certificate.
 * Returns PROV_ERR_INVALID_ARG when only one is NULL or a path is empty, PROV_ERR_IO when a file
 * cannot be read, PROV_ERR_CRYPTO when it holds no usable certificate or key or they do not
 * match, or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_set_client_cert(prov_client *client, const char *cert_file,
                                                 const char *key_file);

/* Checks that path holds an unencrypted PEM private key (PKCS#8, or traditional EC or RSA) of
 * any type, as prov_client_set_client_cert needs its key_file to, without keeping it: for an
 * application that wants to tell a bad key file from a bad certificate file before setting
 * both. On failure a human reason goes into errbuf (errlen bytes, NUL-terminated; errbuf may be
 * NULL). Returns PROV_OK, PROV_ERR_INVALID_ARG for a NULL or empty path, PROV_ERR_IO when the
 * file cannot be read, PROV_ERR_CRYPTO when it holds no usable private key (or an encrypted
 * one), or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_check_key_file(const char *path, char *errbuf, size_t errlen);

/* Generates a new key pair of the given type inside the client, replacing any earlier one. From
 * then on prov_register sends a CSR for it ("csr": base64 DER PKCS#10, subject CN = the
 * registration ID, which must then be at most PROV_CSR_REGID_MAX characters; signed with SHA-256)
 * and requires the
 * server to issue a certificate for it: an assigned answer without issuedCertificateChain, or whose
 * leaf does not certify this key, is PROV_ERR_PROTOCOL. The key is wiped when the client is freed.
 * Returns PROV_ERR_INVALID_ARG for an unknown type, PROV_ERR_CRYPTO when generation fails, or
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_generate_key(prov_client *client, prov_key_type type);

/* Like prov_client_generate_key, with an existing private key: an unencrypted PEM file
 * (PKCS#8, or traditional EC or RSA) of an EC P-256/P-384, RSA (2048 bits or more) or Ed25519
 * key (whose CSR is signed by Ed25519 itself, without SHA-256). NULL forgets the key and stops
 * sending CSRs.
 * Returns PROV_ERR_INVALID_ARG for an empty path, PROV_ERR_IO when the file cannot be read,
 * PROV_ERR_CRYPTO when it holds no usable private key (or an encrypted one), PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_client_set_csr_key_file(prov_client *client, const char *path);

/* Gives the application the CSR key as unencrypted PKCS#8 PEM. On PROV_OK, *pem is a
 * NUL-terminated string the caller owns and must release with prov_secret_free (which wipes
 * it). Returns PROV_ERR_INVALID_ARG when the client holds no CSR key, PROV_ERR_CRYPTO, or
 * PROV_ERR_NOMEM (then *pem is NULL). */
PROV_EXPORT prov_err prov_client_get_key_pem(const prov_client *client, char **pem);

/* Sets the PEM file of CA certificates the server's certificate must chain to, or NULL for the
 * system trust store. The file replaces the system trust store rather than adding to it. It is
 * read now, whole, as the TLS library loads it, and must hold at least one PEM certificate, so
 * that a wrong path is reported here instead of as an untrusted server at the first connection;
 * the transport reads it again at each new connection. The server's certificate and host name
 * are always verified. Returns PROV_ERR_INVALID_ARG when path is empty, PROV_ERR_IO when the file
 * cannot be read, PROV_ERR_CRYPTO when it holds no PEM certificate or a certificate or CRL block
 * that cannot be read, or PROV_ERR_NOMEM; on failure the earlier setting stays. */
PROV_EXPORT prov_err prov_client_set_ca_file(prov_client *client, const char *path);

/* Sets the overall deadline of prov_register in milliseconds: no retry, poll or request runs
 * past it. Default PROV_DEFAULT_DEADLINE_MS. Returns PROV_ERR_INVALID_ARG for 0. */
PROV_EXPORT prov_err prov_client_set_deadline(prov_client *client, uint32_t ms);

/* Sets the exponential backoff between retries: attempt n (from 0) waits a uniformly random
 * time in [0, min(cap_ms, base_ms * 2^n)] ("full jitter"), unless the server said how long to
 * wait with Retry-After. Defaults PROV_DEFAULT_BACKOFF_BASE_MS and PROV_DEFAULT_BACKOFF_CAP_MS.
 * Returns PROV_ERR_INVALID_ARG when base_ms is 0 or cap_ms < base_ms. */
PROV_EXPORT prov_err prov_client_set_backoff(prov_client *client, uint32_t base_ms,
                                             uint32_t cap_ms);

/* Sets the longest a single HTTP request may take, in milliseconds (it is further bounded by
 * what remains of the deadline). Default PROV_DEFAULT_REQUEST_TIMEOUT_MS. Returns
 * PROV_ERR_INVALID_ARG for 0. */
PROV_EXPORT prov_err prov_client_set_request_timeout(prov_client *client, uint32_t ms);

/* Sets how long each SAS token the client signs stays valid, in seconds. Default
 * PROV_DEFAULT_SAS_TTL_S. Returns PROV_ERR_INVALID_ARG for 0. */
PROV_EXPORT prov_err prov_client_set_sas_ttl(prov_client *client, uint32_t seconds);

/* Sets the log callback: fn receives the messages of level max_level and more severe, with ctx.
 * fn NULL (the default) turns logging off. Keys and tokens are never logged. */
PROV_EXPORT void prov_client_set_log(prov_client *client, prov_log_fn fn, void *ctx,
                                     prov_log_level max_level);

struct prov_transport;

/* Replaces the HTTP transport and platform hooks (prov/transport.h). *transport is copied;
 * what its ctx points to must stay valid until the client is freed or the transport replaced.
 * NULL restores the built-in ones (libcurl with OpenSSL, the system clocks). Returns
 * PROV_ERR_INVALID_ARG when client is NULL. */
PROV_EXPORT prov_err prov_client_set_transport(prov_client *client,
                                               const struct prov_transport *transport);

/* Registers the device and waits for the final answer.
 *
 * Sends PUT {endpoint}/{scope}/registrations/{regid}/register?api-version=PROV_API_VERSION with
 * a SAS token (or the client certificate, prov_client_set_client_cert) and the body
 * {"registrationId": ..., "payload": ..., "csr": ...} (csr with a CSR key); while the server
 * answers "assigning", polls GET .../operations/{operationId} after the Retry-After it gives
 * (default 2 s). Network errors, 429 and 5xx answers are retried with exponential backoff and full
 jitter,
 * or after Retry-After (delta-seconds, clamped to 1-300 s) when the server sends one. Nothing
 * runs past the deadline. Other 4xx answers are final.
 *
 * On return *result is NULL or a result the caller frees with prov_result_free:
 *   PROV_OK                      status "assigned"; *result has at least device_id,
 *                                assigned_hub and registration_id.
 *   PROV_ERR_REGISTRATION_FAILED status "failed" or "disabled"; *result has error_code and
 *                                error_message as the server gave them.
 *   PROV_ERR_REFUSED             an HTTP 4xx; *result has http_status and, when the server sent
 *                                a DPS error body, error_code, error_message and tracking_id.
 *   others                       *result is NULL: PROV_ERR_INVALID_ARG (a required setting is
 *                                missing: endpoint, ID scope, registration ID, key or
                                client certificate),
 *                                PROV_ERR_TIMEOUT, PROV_ERR_TLS, PROV_ERR_PROTOCOL,
 *                                PROV_ERR_CRYPTO, PROV_ERR_NOMEM.
 * prov_client_last_error() then describes the failure in one line. */
PROV_EXPORT prov_err prov_register(prov_client *client, prov_result **result);

/* Returns a one-line description of the last failure of a call on client ("" when the last
 * call succeeded), valid until the next call on client. Never contains keys or tokens; control
 * characters of the server's text in it are replaced by '?'. */
PROV_EXPORT const char *prov_client_last_error(const prov_client *client);

/* ---- Keys ---- */

/* Length of a derived device key in base64 (44 characters) plus its NUL. */
#define PROV_DEVICE_KEY_LEN 45

/* Derives a group-enrolled device's key: base64(HMAC-SHA256(base64decode(group_key_b64),
 * regid)), the key that device then uses against its endpoint. regid is used exactly as given
 * (pass it lower-cased, as the server does). Writes the key into out, which the caller should
 * wipe after use; the library's own copies of both keys are wiped before it returns. Returns
 * PROV_ERR_INVALID_ARG when an argument is NULL, PROV_ERR_CRYPTO when the group key is not valid
 * base64. */
PROV_EXPORT prov_err prov_derive_device_key(const char *group_key_b64, const char *regid,
                                            char out[PROV_DEVICE_KEY_LEN]);

/* ---- State kept on the device ---- */

/* Name of the state file inside a state directory. */
#define PROV_STATE_FILE "identity.json"

/* Writes an assigned result as DIR/identity.json (the JSON of prov_result_to_json plus
 * "version": 1), atomically: a temporary file in dir, fsync, rename over identity.json, fsync
 * of dir. A reader sees the old file or the new one, never a mixture. dir is created with mode
 * 0700 when missing (its parent must exist, and is synced) and tightened to 0700 when it is
 * wider; the file gets mode 0600. A dir that is a symbolic link (trailing slashes and "."
 * components or not), that ends in "..", or that belongs to another user than the process's
 * effective user, is refused with PROV_ERR_IO even when the process could write there: whoever
 * can replace the link, or owns the directory, could change what is kept in it. The other
 * functions that write or remove files in a state directory check it the same way, and then
 * act only relative to the directory they opened. On failure a human reason goes into errbuf
 * (errlen bytes, NUL-terminated; errbuf may be NULL). Returns PROV_ERR_INVALID_ARG when result
 * is not an assigned result with registration_id, device_id and assigned_hub, PROV_ERR_IO, or
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_save(const char *dir, const prov_result *result, char *errbuf,
                                     size_t errlen);

/* Reads and validates DIR/identity.json. On PROV_OK, *result is the stored result (http_status
 * 0), freed by the caller with prov_result_free; otherwise *result is NULL and errbuf holds
 * the reason. Returns PROV_ERR_STATE_NOT_FOUND when there is no such file,
 * PROV_ERR_STATE_CORRUPT when it is not a regular file (a FIFO is not waited on), empty,
 * truncated, not JSON, of an unknown version, or lacks a field or has one of the wrong type,
 * PROV_ERR_IO when it cannot be read, PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_load(const char *dir, prov_result **result, char *errbuf,
                                     size_t errlen);

/* Writes data (len bytes) as DIR/name atomically with mode 0600, the way prov_state_save
 * writes identity.json (temporary file, fsync, rename, fsync of dir; dir created or tightened to
 * 0700). name is a plain file name: no '/', not starting with '.'. errbuf as for
 * prov_state_save. Returns PROV_ERR_INVALID_ARG, PROV_ERR_IO or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_write_file(const char *dir, const char *name, const void *data,
                                           size_t len, char *errbuf, size_t errlen);

/* Removes DIR/name (a plain name, as for prov_state_write_file) when it exists, then fsyncs dir
 * so that the removal survives a crash. A missing file or directory is not an error; a dir that
 * is a symbolic link or another user's is PROV_ERR_IO (as for prov_state_save), and nothing in it
 * is removed. errbuf as for prov_state_save. Returns PROV_ERR_INVALID_ARG, PROV_ERR_IO or
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_remove_file(const char *dir, const char *name, char *errbuf,
                                            size_t errlen);

/* Makes sure the state functions can write into dir, before anything worth keeping exists:
 * creates dir with mode 0700 when missing (its parent must exist, and is synced), refuses it when
 * it is a symbolic link or another user's (as prov_state_save does), tightens it to 0700 when it
 * is wider, and creates and removes a temporary file in it (named as those of
 * identity.json are, so that prov_state_clean removes it should the process die in between). An
 * application calls it before it registers, so that a directory it could not keep the result in
 * fails before the server issues anything. errbuf as for prov_state_save. Returns PROV_OK,
 * PROV_ERR_INVALID_ARG for a NULL or empty dir, PROV_ERR_IO, or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_prepare(const char *dir, char *errbuf, size_t errlen);

/* Removes the temporary files (".NAME.tmp-XXXXXX") that a write of the functions here leaves in dir
 * when the process dies before its rename; they may hold a private key. Call it before using a
 * state directory, never while another process writes into it. A missing dir is not an error; one
 * that is a symbolic link or another user's is PROV_ERR_IO, and nothing in it is removed. errbuf
 * as for prov_state_save. Returns PROV_ERR_INVALID_ARG, PROV_ERR_IO or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_clean(const char *dir, char *errbuf, size_t errlen);

/* Names of the files the helpers below write inside a state directory. */
#define PROV_STATE_KEY_FILE   "device.key"   /* the CSR key, PKCS#8 PEM, mode 0600 */
#define PROV_STATE_CERT_FILE  "device.pem"   /* the issued chain, leaf first */
#define PROV_STATE_CHAIN_FILE "ca-chain.pem" /* the issued chain without the leaf */

/* Writes the client's CSR key as DIR/device.key (unencrypted PKCS#8 PEM, mode 0600,
 * atomically) without handing it to the application; the copy in memory is wiped. Returns
 * PROV_ERR_INVALID_ARG when the client holds no CSR key, PROV_ERR_CRYPTO, PROV_ERR_IO or
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_save_key(const char *dir, const prov_client *client, char *errbuf,
                                         size_t errlen);

/* Writes result->issued_chain_pem as DIR/device.pem and result->issued_ca_pem as
 * DIR/ca-chain.pem (removing an older ca-chain.pem, synced, when the server sent the leaf alone),
 * each atomically with mode 0600. dir is checked as for prov_state_save before anything in it is
 * removed or written. Returns PROV_ERR_INVALID_ARG when the result holds no issued certificate,
 * PROV_ERR_IO or PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_save_certificates(const char *dir, const prov_result *result,
                                                  char *errbuf, size_t errlen);

/* Checks that DIR/device.key and DIR/device.pem belong together: the key is a usable private key
 * and the first certificate of device.pem is for it. errbuf as for prov_state_save. Returns
 * PROV_OK, PROV_ERR_STATE_NOT_FOUND when either file is missing, PROV_ERR_STATE_CORRUPT when one
 * holds no usable key or certificate (empty, truncated, not PEM), PROV_ERR_CRYPTO when both are
 * usable but the certificate is for another key, PROV_ERR_IO when one cannot be read,
 * PROV_ERR_NOMEM. */
PROV_EXPORT prov_err prov_state_check_key(const char *dir, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
