/* The registration pipeline: every front end (the DPS-compatible API now, EST and others later)
 * turns its wire format into a reg_job and hands it here. The pipeline authenticates the device,
 * finds its enrollment, applies policy, allocates an endpoint, makes the outcome durable together
 * with its audit record, and finally calls the front end back to answer. Nothing about a wire
 * format lives here. */
#ifndef PROVD_PIPELINE_H
#define PROVD_PIPELINE_H

#include <jansson.h>
#include <openssl/x509.h>

#include "committer.h"
#include "csr.h"
#include "issuance.h"
#include "rand.h"
#include "regid.h"
#include "store.h"

enum reg_op {
    REG_OP_REGISTER,  /* register (or register again) */
    REG_OP_OPERATION, /* poll a register operation */
    REG_OP_STATUS,    /* look up the registration state */
    /* EST (docs/est.md): registrations that always carry a CSR and answer a certificate. */
    REG_OP_EST_ENROLL,   /* simpleenroll */
    REG_OP_EST_REENROLL, /* simplereenroll: only the device's current provd certificate attests */
    REG_OP_EST_KEYGEN,   /* serverkeygen: the certificate is for a key pair made by provd */
};

/* Whether op registers the device (and may issue a certificate), rather than looking it up. */
static inline int reg_op_registers(enum reg_op op) {
    return op != REG_OP_OPERATION && op != REG_OP_STATUS;
}

struct reg_job {
    struct commit_job commit; /* the committer's part; first, so the job can be found from it */
    struct worker *w;
    void (*reply)(struct reg_job *job); /* the front end's answer, run on w's thread */
    void *ctx;                          /* the front end's request */

    /* Input, filled by the front end. */
    enum reg_op op;
    char regid[REGID_MAX + 1]; /* validated and lower-cased */
    char *authorization;       /* the SAS token, or NULL */
    /* An HTTP Basic password (EST): the device's symmetric key itself, compared in constant
     * time with the enrollment's keys or the group-derived ones. Wiped when the job is freed;
     * never logged. NULL when none was sent. */
    char *password;
    /* An enrollment group ID (the EST label, lower-cased) the device must belong to: only that
     * group attests it. NULL: any individual enrollment or group may. */
    char *label;
    json_t *payload; /* the device's payload, or NULL */
    /* A CSR to issue a certificate for, or NULL: the csr_len bytes of text as received (a NUL
     * among them is refused), which the pipeline checks (csr_parse with the server's key policy,
     * the registration ID as the expected CN) once the device is authenticated, and signs at
     * the decision. */
    char *csr;
    size_t csr_len;
    enum csr_format csr_format;
    /* The certificate the client presented in the TLS handshake and the certificates it sent
     * above it (references the job holds), or NULL. Without an authorization they attest the
     * device (X.509 attestation). */
    X509 *peer;
    STACK_OF(X509) * peer_chain;
    /* A registration that cannot be completed (403001 disabled, 400008 no endpoint, ...) is
     * answered 200 with a failed state, as DPS devices expect; when set (EST), with the HTTP
     * status of its code instead. Either way the audit record has the status answered. */
    int failure_as_error;
    char *operation_id; /* for REG_OP_OPERATION */
    char remote[64];
    char tracking[UUID_STR_LEN]; /* ties the answer, the log and the audit record together */

    /* Outcome, filled by the pipeline before reply() runs. */
    int http_status; /* 200, or the status of the refusal */
    int error_code;  /* 0, or the 6-digit code (in registrationState when 200) */
    char message[192];
    /* When not empty, what the device is told in place of message, which the audit record and
     * the log keep: refusals that must not give away what they found (reg_job_answer). */
    char answer[192];
    struct store_registration reg; /* the state answered with 200 */
    /* reg.payload as the pipeline built it, when it did: the answer need not parse it again.
     * NULL when reg comes from the store. */
    json_t *reg_payload;
    int group_attested;   /* reg.group_id names the group whose key attested */
    int reruns;           /* times decided again because the device's state changed meanwhile */
    int peer_was_current; /* peer was the device's current provd certificate at the first
                           * decision (it still attests when the job is decided again) */
    struct store_audit audit;
    char *previous_hub;       /* the endpoint of a device that was assigned before, or NULL */
    struct store_event event; /* the webhook event of a register decision (docs/events.md) */
    json_t *x509;             /* registrationState.x509 of a device attested by certificate */
    struct issuance issued;   /* the certificate issued for the CSR (nchain 0: none) */
    struct csr *csr_req;      /* job->csr once checked */
    /* The serial of the certificate provd issued that attested the device (peer), or empty:
     * the registration is stored only if that certificate is not revoked by then. */
    char attested_by[CA_SERIAL_MAX];
    /* REG_OP_EST_KEYGEN: the key pair made for the device once its CSR was checked, whose
     * public half the certificate is for; wiped and freed with the job. */
    EVP_PKEY *server_key;
};

/* Allocates a job for w with a fresh tracking ID. Returns NULL when out of memory. */
struct reg_job *reg_job_new(struct worker *w, enum reg_op op);
void reg_job_free(struct reg_job *job);

/* Runs the pipeline for job; job->reply runs once the outcome is durable. */
void pipeline_run(struct reg_job *job);

/* Records a refusal decided by the front end before the pipeline (malformed request, unknown
 * scope, ...): the audit record is made durable, then job->reply runs. */
void pipeline_refuse(struct reg_job *job, int status, int code, const char *message);

/* Releases the per-worker state of the pipeline (its enrollment group cache). */
void pipeline_worker_free(struct worker *w);

/* The reason a refusal gives the device: answer when set, else message. */
static inline const char *reg_job_answer(const struct reg_job *job) {
    return job->answer[0] ? job->answer : job->message;
}

#endif
