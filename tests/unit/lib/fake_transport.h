/* A scripted server and clock for libprov's unit tests, plugged in through the public transport
 * interface (prov/transport.h): each request gets the next scripted answer and is recorded;
 * sleeping advances a fake clock, so retries and deadlines are checked instantly and exactly. */
#ifndef PROV_TEST_FAKE_TRANSPORT_H
#define PROV_TEST_FAKE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "prov/prov.h"
#include "prov/transport.h"

#define FAKE_MAX 64

/* One scripted answer: an HTTP answer (err PROV_OK) or a transport failure (err set). */
struct fake_answer {
    prov_err err;
    int status;
    const char *content_type; /* NULL: none */
    const char *retry_after;  /* NULL: none */
    const char *body;         /* NULL: empty */
    uint32_t takes_ms;        /* how far the request moves the fake clock */
};

struct fake_request {
    char *method, *url, *body, *ca_file, *client_cert_file, *client_key_file;
    char *header_names[8], *header_values[8];
    size_t n_headers;
    uint32_t timeout_ms;
    uint64_t at_ms; /* fake clock when it was sent */
};

struct fake {
    const struct fake_answer *script;
    size_t n_script, next;
    struct fake_request reqs[FAKE_MAX];
    size_t n_reqs;
    uint32_t sleeps[FAKE_MAX];
    size_t n_sleeps;
    uint64_t now_ms;
    int64_t unix_now;
    const uint32_t *randoms; /* drawn in turn; the last one repeats; NULL: UINT32_MAX */
    size_t n_randoms, next_random;
    int overrun; /* a request came after the script ended */
};

/* Prepares f to answer with the n answers of script (kept by reference). */
void fake_init(struct fake *f, const struct fake_answer *script, size_t n);

/* Installs f as c's transport and clocks. */
void fake_install(struct fake *f, prov_client *c);

/* Frees what f recorded. */
void fake_free(struct fake *f);

/* The value of request header name (case-sensitive), or NULL. */
const char *fake_header(const struct fake_request *r, const char *name);

/* The answer of a successful registration, for scripts. */
#define FAKE_JSON "application/json; charset=utf-8"
#define FAKE_ASSIGNED_BODY                                                                         \
    "{\"operationId\":\"op-1\",\"status\":\"assigned\",\"registrationState\":{"                    \
    "\"registrationId\":\"my-device-01\",\"deviceId\":\"dev-id-1\",\"assignedHub\":"               \
    "\"hub-a.example.com\",\"status\":\"assigned\",\"substatus\":\"initialAssignment\","           \
    "\"createdDateTimeUtc\":\"2026-11-26T01:02:03.1234567Z\",\"lastUpdatedDateTimeUtc\":"          \
    "\"2026-11-26T01:02:04.1234567Z\",\"etag\":\"AAAAAAAAAAE=\",\"symmetricKey\":"                 \
    "{\"enrollmentGroupId\":\"fleet\"},\"payload\":{\"interval\": 30, \"topics\": [\"a\"]}}}"
#define FAKE_ASSIGNED                                                                              \
    { PROV_OK, 200, FAKE_JSON, NULL, FAKE_ASSIGNED_BODY, 0 }

/* The settings of the sas vectors of tests/data/crypto-vectors.json. */
#define VEC_SCOPE "0ne00ABCDEF"
#define VEC_REGID "my-device-01"
#define VEC_KEY   "i0eNaxR9P2qCHaK3RkHpn3erozYVBcdCwAsiEzQHCM4="
#define VEC_GROUP_KEY                                                                              \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
#define VEC_SE 1795659795

/* A client with an endpoint, the vectors' scope, registration ID and key, and f installed. */
prov_client *fake_client(struct fake *f);

#endif
