/* Device certificates issued by provd's CA: listing them, showing one, and revoking them (the
 * CRL the server serves lists a revocation from then on). Serial numbers are taken as `openssl x509
 * -serial` prints them, with or without "serial=", in any case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certserial.h"
#include "provctl.h"
#include "urlenc.h"

#define PAGE 1000 /* certificates asked for per request */

/* Reads the SERIAL argument into out, or prints why it is not one and returns -1. */
static int serial_arg(const char *s, char out[CERT_SERIAL_MAX]) {
    if (cert_serial_parse(s, out) == 0)
        return 0;
    ctl_err("invalid serial number \"%s\": hex digits as `openssl x509 -serial` prints them"
            " expected",
            s);
    return -1;
}

/* The "--device ID" or "--registration ID" of a command as a query parameter or body member:
 * sets *member ("deviceId", "registrationId") and *value; both NULL when neither was given.
 * Returns 0, or -1 (usage) when both were given or the registration ID is invalid. */
static int which_device(const struct ctl_args *a, const char **member, const char **value) {
    const char *dev = args_get(a, "device"), *reg = args_get(a, "registration");

    *member = *value = NULL;
    if (dev && reg) {
        ctl_err("give --device or --registration, not both");
        return -1;
    }
    if (reg && ctl_check_id("registration ID", reg) != 0)
        return -1;
    if (dev || reg) {
        *member = dev ? "deviceId" : "registrationId";
        *value = dev ? dev : reg;
    }
    return 0;
}

static int cmd_list(struct ctl *ctl, const struct ctl_args *a) {
    /* When each was issued tells a device's current certificate from those it replaced. */
    static const char *const hdr[] = {"SERIAL", "REGISTRATION ID", "DEVICE ID",
                                      "STATUS", "ISSUED",          "NOT AFTER"};
    static const char *const members[] = {"serialNumber", "registrationId",     "deviceId",
                                          "status",       "createdDateTimeUtc", "notAfterUtc"};
    const char *member, *value;
    char *enc = NULL, path[512], next[CERT_SERIAL_MAX] = "";
    json_t *all = json_array(), *doc = NULL, *items, *it;
    int rc = CTL_FAIL;
    size_t i;

    if (which_device(a, &member, &value) != 0) {
        json_decref(all);
        return CTL_USAGE;
    }
    if (value && !(enc = url_encode(value, 1))) {
        ctl_err("out of memory");
        goto out;
    }
    for (;;) {
        snprintf(path, sizeof path, "/certificates?limit=%d%s%s%s%s%s", PAGE, enc ? "&" : "",
                 enc ? member : "", enc ? "=" : "", enc ? enc : "", next[0] ? "&after=" : "");
        if (next[0])
            snprintf(path + strlen(path), sizeof path - strlen(path), "%s", next);
        if (http_get_object(ctl, path, "certificates", &doc, NULL) != CTL_OK)
            goto out;
        items = json_object_get(doc, "certificates");
        json_array_foreach(items, i, it) {
            json_array_append(all, it);
        }
        const char *n = json_string_value(json_object_get(doc, "next"));
        if (!n || cert_serial_parse(n, next) != 0)
            break;
        json_decref(doc);
        doc = NULL;
    }
    if (ctl->json) {
        out_json(all);
    } else {
        struct out_table *t = out_table_new(sizeof(hdr) / sizeof(hdr[0]), hdr);

        json_array_foreach(all, i, it) {
            out_table_add_members(t, it, members);
        }
        out_table_print(t, "No certificates.");
    }
    rc = CTL_OK;
out:
    json_decref(doc);
    json_decref(all);
    free(enc);
    return rc;
}

static void print_cert(const struct ctl *ctl, const json_t *doc) {
    static const struct out_member fields[] = {
        {"serialNumber", "Serial"},     {"registrationId", "Registration ID"},
        {"deviceId", "Device ID"},      {"subjectName", "Subject"},
        {"issuerName", "Issuer"},       {"sha256Thumbprint", "SHA-256"},
        {"notBeforeUtc", "Not before"}, {"notAfterUtc", "Not after"},
        {"status", "Status"},           {"revokedDateTimeUtc", "Revoked"},
        {"revocationReason", "Reason"}, {"createdDateTimeUtc", "Issued"},
    };
    struct out_kv *kv;

    if (ctl->json) {
        out_json(doc);
        return;
    }
    kv = out_kv_new();
    out_kv_members(kv, doc, fields, sizeof fields / sizeof fields[0]);
    out_kv_print(kv);
}

static int cmd_show(struct ctl *ctl, const struct ctl_args *a) {
    char serial[CERT_SERIAL_MAX], path[96], subj[80];
    json_t *doc;

    if (serial_arg(a->pos[0], serial) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/certificates/%s", serial);
    snprintf(subj, sizeof subj, "certificate %s", serial);
    if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    print_cert(ctl, doc);
    json_decref(doc);
    return CTL_OK;
}

static int cmd_revoke(struct ctl *ctl, const struct ctl_args *a) {
    const char *reason = args_get(a, "reason"), *member, *value;
    char serial[CERT_SERIAL_MAX], path[96], subj[160];
    json_t *body = NULL, *doc = NULL;
    int rc = CTL_FAIL;

    if (which_device(a, &member, &value) != 0)
        return CTL_USAGE;
    if ((a->npos == 1) == (value != NULL)) {
        ctl_err("cert revoke: give a SERIAL, or --device ID or --registration ID");
        return CTL_USAGE;
    }
    if (a->npos == 1 && serial_arg(a->pos[0], serial) != 0)
        return CTL_USAGE;
    if (!(body = json_object()) ||
        (reason && json_object_set_new(body, "reason", json_string(reason)) != 0) ||
        (value && json_object_set_new(body, member, json_string(value)) != 0)) {
        ctl_err("out of memory");
        goto out;
    }
    if (a->npos == 1) {
        snprintf(path, sizeof path, "/certificates/%s/revoke", serial);
        snprintf(subj, sizeof subj, "certificate %s", serial);
    } else {
        snprintf(path, sizeof path, "/certificates/revoke");
        snprintf(subj, sizeof subj, "certificates of %s", value);
    }
    if (http_send_object(ctl, "POST", path, body, NULL, subj, &doc) != CTL_OK)
        goto out;
    if (ctl->json)
        out_json(doc);
    else if (a->npos == 1)
        printf("Revoked certificate %s.\n", serial);
    else
        printf("Revoked %lld certificate(s) of %s.\n",
               (long long)json_integer_value(json_object_get(doc, "revoked")), value);
    rc = CTL_OK;
out:
    json_decref(body);
    json_decref(doc);
    return rc;
}

static const struct ctl_opt list_opts[] = {
    {"device", "ID", "only the certificates issued to this device ID", 0},
    {"registration", "ID", "only the certificates issued to this registration ID", 0},
    {NULL, NULL, NULL, 0},
};

static const struct ctl_opt revoke_opts[] = {
    {"device", "ID", "revoke every valid certificate issued to this device ID", 0},
    {"registration", "ID", "revoke every valid certificate issued to this registration ID", 0},
    {"reason", "R", "the RFC 5280 reason: keyCompromise, superseded, ... (default unspecified)", 0},
    {NULL, NULL, NULL, 0},
};

const struct ctl_cmd ctl_cert_cmds[] = {
    {"cert list", "[--device ID | --registration ID]", "List the device certificates provd issued",
     "In serial number order; follows the server's paging to the end.", 0, 0, list_opts, cmd_list,
     NULL},
    {"cert show", "SERIAL", "Show a certificate provd issued",
     "SERIAL is hex as `openssl x509 -serial` prints it, with or without \"serial=\".", 1, 1, NULL,
     cmd_show, NULL},
    {"cert revoke", "SERIAL | --device ID | --registration ID [--reason R]",
     "Revoke a certificate, or every valid certificate of a device",
     "The CRL the server serves (GET /crl on the device listener) lists the revocation from\n"
     "then on. Reasons: unspecified (default), keyCompromise, cACompromise, affiliationChanged,\n"
     "superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise.",
     0, 1, revoke_opts, cmd_revoke, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
