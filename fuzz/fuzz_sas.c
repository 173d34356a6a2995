/* SAS tokens (common/sas.c): sas_parse on an Authorization header value, then every check on a
 * token it accepts. Beyond memory safety the harness checks what the header promises: a refused
 * token leaves nothing behind, a resource "<scope>/registrations/<id>" matches its own parts, and
 * a token rebuilt by sas_build from what was parsed parses back to the same sr and expiry and
 * verifies under the key that signed it. */
#include <stdio.h>

#include "fuzz.h"
#include "sas.h"
#include "urlenc.h"

#define SCOPE "0ne00000001"
#define REGID "dev-1"

/* Bytes 0..31; the seed corpus holds tokens signed with it, so the matching path runs too. */
static const char KEY[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void check_expiry(const struct sas_token *tok) {
    /* now values >= 0 keep expiry - now in range, so the expected result can be computed here. */
    const int64_t nows[] = {0, 1700000000, tok->expiry, tok->expiry > 0 ? tok->expiry - 1 : 0,
                            INT64_MAX};
    const int64_t lifetimes[] = {0, 1, 3600, INT64_MAX};

    for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
        for (size_t j = 0; j < sizeof(lifetimes) / sizeof(lifetimes[0]); j++) {
            int64_t now = nows[i], max = lifetimes[j];
            enum sas_result want = tok->expiry <= now                   ? SAS_EXPIRED
                                   : max > 0 && tok->expiry - now > max ? SAS_TOO_FAR
                                                                        : SAS_OK;
            if (sas_check_expiry(tok, now, max) != want)
                abort();
        }
    }
}

/* Splits the decoded resource at its first "/registrations/" and checks that the two parts match
 * it, whatever their case. */
static void check_own_resource(const struct sas_token *tok) {
    static const char mid[] = "/registrations/";
    char *sr = url_decode(tok->sr, strlen(tok->sr)), *at;

    if (sr == NULL)
        return;
    at = strstr(sr, mid);
    if (at != NULL && at != sr && at[sizeof(mid) - 1] != '\0') {
        *at = '\0';
        if (sas_check_resource(tok, sr, at + sizeof(mid) - 1) != SAS_OK)
            abort();
        for (char *p = sr; *p != '\0'; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        if (sas_check_resource(tok, sr, at + sizeof(mid) - 1) != SAS_OK)
            abort();
    }
    free(sr);
}

static void check_rebuilt(const struct sas_token *tok, const char *const *keys, size_t nkeys) {
    struct sas_token again;
    const char *why = NULL;
    int matched = -1;
    char *built;

    /* sr holds no '&' (the parser split on it) and the expiry is not negative: sas_build has no
     * reason to refuse. */
    built = sas_build(tok->sr, KEY, tok->expiry, &why);
    if (built == NULL)
        abort();
    /* The signature makes the rebuilt token longer; past the limit the parser rightly refuses. */
    if (strlen(built) <= SAS_MAX_LEN) {
        if (sas_parse(built, &again, &why) != SAS_OK)
            abort();
        if (strcmp(again.sr, tok->sr) != 0 || again.expiry != tok->expiry || again.skn == NULL ||
            strcmp(again.skn, "registration") != 0)
            abort();
        if (sas_verify_sig(&again, keys, nkeys, &matched) != SAS_OK || matched != 2)
            abort();
        if (sas_check_resource(&again, SCOPE, REGID) != sas_check_resource(tok, SCOPE, REGID))
            abort();
        sas_token_free(&again);
    }
    free(built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A NULL entry and a key that is not base64 come first: both must be skipped. */
    const char *const keys[] = {NULL, "not base64!", KEY};
    struct sas_token tok;
    const char *why = NULL;
    char *s = fuzz_cstr(data, size);
    int matched = -1;

    if (sas_parse(s, &tok, &why) != SAS_OK) {
        if (why == NULL || tok.sr != NULL || tok.se != NULL || tok.skn != NULL || tok.sig != NULL ||
            tok.siglen != 0)
            abort();
        sas_token_free(&tok);
        free(s);
        return 0;
    }
    if (tok.sr == NULL || tok.sr[0] == '\0' || tok.se == NULL || tok.sig == NULL ||
        tok.siglen == 0 || tok.expiry < 0)
        abort();

    sas_check_resource(&tok, SCOPE, REGID);
    check_own_resource(&tok);
    check_expiry(&tok);
    if (sas_verify_sig(&tok, keys, sizeof(keys) / sizeof(keys[0]), &matched) == SAS_OK &&
        matched != 2)
        abort();
    sas_verify(&tok, SCOPE, REGID, keys, sizeof(keys) / sizeof(keys[0]), 1700000000, 3600,
               &matched);
    check_rebuilt(&tok, keys, sizeof(keys) / sizeof(keys[0]));

    sas_token_free(&tok);
    free(s);
    return 0;
}
