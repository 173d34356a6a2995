/* SAS tokens of the DPS device protocol (PROTOCOL-DPS.md):
 *   SharedAccessSignature sr=<resource>&sig=<url-encoded base64>&se=<unix expiry>&skn=registration
 * The signature is HMAC-SHA256(base64decode(device key), sr + "\n" + se) with sr and se exactly as
 * they were received; fields may come in any order. */
#ifndef PROV_COMMON_SAS_H
#define PROV_COMMON_SAS_H

#include <stddef.h>
#include <stdint.h>

#define SAS_MAX_LEN 4096 /* longest Authorization value accepted */

struct sas_token {
    char *sr;           /* resource exactly as received (may be percent-encoded) */
    char *se;           /* expiry exactly as received */
    char *skn;          /* key name, NULL when absent */
    unsigned char *sig; /* URL-decoded, base64-decoded signature */
    size_t siglen;
    int64_t expiry; /* se as a number */
};

enum sas_result {
    SAS_OK = 0,
    SAS_MALFORMED,      /* not a SharedAccessSignature, missing or repeated field, bad number */
    SAS_EXPIRED,        /* se is in the past */
    SAS_TOO_FAR,        /* se is further in the future than the allowed lifetime */
    SAS_WRONG_RESOURCE, /* sr does not name this scope and registration ID */
    SAS_BAD_SIGNATURE,  /* no key produced the signature */
};

/* Returns a static description of r ("signature does not match", ...). */
const char *sas_result_str(enum sas_result r);

/* Parses an Authorization header value. On success returns SAS_OK and fills tok (release with
 * sas_token_free). On failure returns SAS_MALFORMED, leaves tok empty and sets *why (when not
 * NULL) to a static reason. */
enum sas_result sas_parse(const char *header, struct sas_token *tok, const char **why);

/* Releases what sas_parse stored in tok (the signature is wiped) and zeroes tok. */
void sas_token_free(struct sas_token *tok);

/* Checks that tok's sr, percent-decoded, is "<scope>/registrations/<regid>" (compared
 * case-insensitively). Returns SAS_OK or SAS_WRONG_RESOURCE. */
enum sas_result sas_check_resource(const struct sas_token *tok, const char *scope,
                                   const char *regid);

/* Checks expiry against now: SAS_EXPIRED when expiry <= now, SAS_TOO_FAR when
 * max_lifetime > 0 and expiry > now + max_lifetime, else SAS_OK. */
enum sas_result sas_check_expiry(const struct sas_token *tok, int64_t now, int64_t max_lifetime);

/* Verifies the signature against each of the nkeys base64 device keys in order (NULL entries are
 * skipped), in constant time per key. Returns SAS_OK and sets *matched (when not NULL) to the
 * index of the key that matched, or SAS_BAD_SIGNATURE. A key that is not valid base64 never
 * matches. */
enum sas_result sas_verify_sig(const struct sas_token *tok, const char *const *keys_b64,
                               size_t nkeys, int *matched);

/* The whole check of PROTOCOL-DPS.md in the order that leaks least: resource, expiry, signature.
 * Returns the first failure or SAS_OK. */
enum sas_result sas_verify(const struct sas_token *tok, const char *scope, const char *regid,
                           const char *const *keys_b64, size_t nkeys, int64_t now,
                           int64_t max_lifetime, int *matched);

/* Builds an Authorization header value for resource sr (used as given: pass it encoded or not,
 * as the client being imitated does) signed with the base64 device key, expiring at expiry, with
 * skn "registration". Returns a string the caller frees, or NULL with *why set. */
char *sas_build(const char *sr, const char *key_b64, int64_t expiry, const char **why);

#endif
