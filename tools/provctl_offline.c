/* Commands that need no server: device key derivation, SAS tokens and UUIDs. Factory staff run
 * them on machines that never see the admin API, so they read no configuration at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "provctl.h"
#include "rand.h"
#include "regid.h"
#include "sas.h"
#include "timefmt.h"
#include "urlenc.h"

#define DEFAULT_TTL 3600
#define MAX_TTL     (10LL * 366 * 24 * 3600) /* ten years: anything longer is a typo */
#define MAX_EXPIRY  253402300799LL           /* 9999-12-31T23:59:59Z */

/* Prints a result alone on a line, or with --json as {"name": value}, preceded by the member
 * id_name: id_value when id_name is not NULL. */
static int print_value(const struct ctl *ctl, const char *name, const char *value,
                       const char *id_name, const char *id_value) {
    if (ctl->json) {
        json_t *o = id_name ? json_pack("{s:s, s:s}", id_name, id_value, name, value)
                            : json_pack("{s:s}", name, value);

        if (o == NULL) {
            ctl_err("out of memory");
            return CTL_FAIL;
        }
        out_json(o);
        json_decref(o);
    } else {
        puts(value);
    }
    return CTL_OK;
}

/* ---- derive-key ---- */

static int derive_key(struct ctl *ctl, const struct ctl_args *a) {
    const char *group_key = args_get(a, "group-key");
    const char *secret = args_get(a, "raw-secret");
    const char *id = a->pos[0];
    const char *why = NULL;
    char regid[REGID_MAX + 1];
    char *key;
    int rc;

    if ((group_key == NULL) == (secret == NULL)) {
        ctl_err("derive-key: give exactly one of --group-key and --raw-secret");
        return CTL_USAGE;
    }
    if (group_key != NULL) {
        if (ctl_check_id("registration ID", id) != 0 ||
            ctl_check_key("group-key", group_key, 0, 0) != 0)
            return CTL_USAGE;
        /* Registration IDs are case-insensitive: the server derives over the lower-cased ID. */
        snprintf(regid, sizeof regid, "%s", id);
        regid_lower(regid);
        id = regid;
        key = derive_device_key(group_key, id, &why);
        if (key == NULL) {
            ctl_err("--group-key: %s", why ? why : "cannot derive the key");
            return CTL_USAGE;
        }
    } else {
        /* The seed form signs the device ID's bytes as they are, whatever they are. */
        if (secret[0] == '\0' || id[0] == '\0') {
            ctl_err("derive-key: the secret and the ID must not be empty");
            return CTL_USAGE;
        }
        key = derive_raw_secret(secret, strlen(secret), id);
        if (key == NULL) {
            ctl_err("derive-key: cannot derive the key");
            return CTL_FAIL;
        }
    }
    rc = print_value(ctl, "deviceKey", key, "id", id);
    ctl_free_secret(key);
    return rc;
}

/* ---- sas ---- */

static int sas(struct ctl *ctl, const struct ctl_args *a) {
    const char *scope = args_get(a, "id-scope");
    const char *regid = args_get(a, "registration-id");
    const char *key = args_get(a, "key");
    const char *group_key = args_get(a, "group-key");
    const char *ttl_s = args_get(a, "ttl");
    const char *exp_s = args_get(a, "expiry");
    const char *enc = args_get(a, "encode");
    const char *why = NULL;
    char lower[REGID_MAX + 1];
    char *derived = NULL, *plain = NULL, *sr = NULL, *header = NULL;
    long long ttl = DEFAULT_TTL, expiry;
    int rc = CTL_USAGE;

    if (scope == NULL || regid == NULL) {
        ctl_err("sas: --id-scope and --registration-id are required");
        return CTL_USAGE;
    }
    if ((key == NULL) == (group_key == NULL)) {
        ctl_err("sas: give exactly one of --key and --group-key");
        return CTL_USAGE;
    }
    if (ttl_s && exp_s) {
        ctl_err("sas: --ttl and --expiry exclude each other");
        return CTL_USAGE;
    }
    if (scope[0] == '\0' || strspn(scope, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789") != strlen(scope)) {
        ctl_err("--id-scope: \"%s\" is not an ID scope (letters and digits)", scope);
        return CTL_USAGE;
    }
    if (ctl_check_id("registration ID", regid) != 0 ||
        ctl_check_key(key ? "key" : "group-key", key ? key : group_key, 0, 0) != 0)
        return CTL_USAGE;
    if (enc && strcmp(enc, "none") != 0 && strcmp(enc, "lower") != 0 && strcmp(enc, "upper") != 0) {
        ctl_err("--encode: \"%s\" is none of none, lower, upper", enc);
        return CTL_USAGE;
    }
    if (exp_s) {
        if (ctl_parse_int("expiry", exp_s, 1, MAX_EXPIRY, &expiry) != 0)
            return CTL_USAGE;
    } else {
        if (ttl_s && ctl_parse_int("ttl", ttl_s, 1, MAX_TTL, &ttl) != 0)
            return CTL_USAGE;
        expiry = (long long)time_now_unix() + ttl;
    }
    /* The server knows the device by its lower-cased ID: derive over it and name it in sr. */
    snprintf(lower, sizeof lower, "%s", regid);
    regid_lower(lower);
    regid = lower;

    if (group_key) {
        if ((derived = derive_device_key(group_key, regid, &why)) == NULL) {
            ctl_err("--group-key: %s", why ? why : "cannot derive the key");
            goto out;
        }
        key = derived;
    }
    if (asprintf(&plain, "%s/registrations/%s", scope, regid) < 0) {
        plain = NULL;
        ctl_err("out of memory");
        rc = CTL_FAIL;
        goto out;
    }
    /* Clients differ in how they spell sr; the server accepts each, so offer each. */
    if (enc == NULL || strcmp(enc, "none") == 0)
        sr = strdup(plain);
    else
        sr = url_encode(plain, strcmp(enc, "upper") == 0);
    if (sr == NULL) {
        ctl_err("out of memory");
        rc = CTL_FAIL;
        goto out;
    }
    if ((header = sas_build(sr, key, (int64_t)expiry, &why)) == NULL) {
        ctl_err("--%s: %s", derived ? "group-key" : "key", why ? why : "cannot sign");
        goto out;
    }
    rc = print_value(ctl, "authorization", header, NULL, NULL);
out:
    ctl_free_secret(derived);
    free(plain);
    free(sr);
    free(header);
    return rc;
}

/* ---- gen-id ---- */

static int gen_id(struct ctl *ctl, const struct ctl_args *a) {
    char id[UUID_STR_LEN];

    (void)a;
    if (uuid_v4(id) != 0) {
        ctl_err("gen-id: no randomness available");
        return CTL_FAIL;
    }
    return print_value(ctl, "id", id, NULL, NULL);
}

static const struct ctl_opt derive_opts[] = {
    {"group-key", "KEY", "enrollment group key (base64): the DPS derivation", 0},
    {"raw-secret", "TEXT", "shared secret used as raw bytes: the seed derivation", 0},
    {NULL, NULL, NULL, 0},
};

static const struct ctl_opt sas_opts[] = {
    {"id-scope", "SCOPE", "the server's ID scope (provctl info shows it); required", 0},
    {"registration-id", "ID", "the device's registration ID; required", 0},
    {"key", "KEY", "the device's symmetric key (base64)", 0},
    {"group-key", "KEY", "the enrollment group key (base64); the device key is derived", 0},
    {"ttl", "SECONDS", "lifetime of the token from now (default 3600)", 0},
    {"expiry", "UNIX", "fixed expiry in Unix seconds instead of --ttl", 0},
    {"encode", "FORM", "spelling of sr: none (as is, default), lower (%2f), upper (%2F)", 0},
    {NULL, NULL, NULL, 0},
};

const struct ctl_cmd ctl_offline_cmds[] = {
    {"derive-key", "(--group-key KEY | --raw-secret TEXT) ID",
     "Derive a device's symmetric key (no server needed)",
     "With --group-key, prints base64(HMAC-SHA256(base64decode(KEY), ID)), the key a device of\n"
     "an enrollment group authenticates with; ID must be a valid registration ID and is\n"
     "lower-cased first, as the server does (registration IDs are case-insensitive).\n"
     "With --raw-secret, prints base64(HMAC-SHA256(TEXT, ID)) with the secret's bytes used as\n"
     "they are (the seed token construction); ID may be any non-empty text.\n"
     "The key is printed alone on the last line.",
     1, 1, derive_opts, derive_key, NULL},
    {"sas", "--id-scope SCOPE --registration-id ID (--key KEY | --group-key KEY) [options]",
     "Build a device's SAS token (no server needed)",
     "Prints the value of the Authorization header a device sends to the device API:\n"
     "SharedAccessSignature sr=SCOPE/registrations/ID&sig=...&se=EXPIRY&skn=registration,\n"
     "alone on the last line. ID is lower-cased first, as the server does.",
     0, 0, sas_opts, sas, NULL},
    {"gen-id", "", "Print a random UUID (version 4), e.g. for a device ID", NULL, 0, 0, NULL,
     gen_id, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
