/* Individual enrollments and enrollment groups. The admin API gives both the same shape and the
 * same calls, differing only in their path, their ID member and the device ID an individual
 * enrollment may carry; so one set of commands serves both, driven by a struct kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provctl.h"

#define KEY_MIN  16 /* bytes of a symmetric key, as the server requires */
#define KEY_MAX  64
#define MAX_HUBS 64

struct kind {
    const char *noun;       /* "enrollment" */
    const char *noun_cap;   /* "Enrollment", to start a sentence */
    const char *plural;     /* "enrollments" */
    const char *collection; /* API path of the collection */
    const char *id_member;  /* the document's ID member */
    const char *id_what;    /* the ID's name in error messages */
    const char *id_label;   /* its label in listings */
    int has_device_id;
};

static const struct kind enrollment_kind = {
    .noun = "enrollment",
    .noun_cap = "Enrollment",
    .plural = "enrollments",
    .collection = "/enrollments",
    .id_member = "registrationId",
    .id_what = "registration ID",
    .id_label = "Registration ID",
    .has_device_id = 1,
};

static const struct kind group_kind = {
    .noun = "enrollment group",
    .noun_cap = "Enrollment group",
    .plural = "enrollment groups",
    .collection = "/enrollmentGroups",
    .id_member = "enrollmentGroupId",
    .id_what = "group ID",
    .id_label = "Group ID",
    .has_device_id = 0,
};

/* ---- Shared pieces ---- */

static void subject(char *buf, size_t len, const struct kind *k, const char *id) {
    snprintf(buf, len, "%s %s", k->noun, id);
}

/* Builds "<collection>/<id>" into buf. IDs were checked against the ID rules, whose characters
 * all stand in a URL path as they are. */
static void record_path(char *buf, size_t len, const struct kind *k, const char *id) {
    snprintf(buf, len, "%s/%s", k->collection, id);
}

/* GETs the record; see http_get_object for absent. */
static int fetch(struct ctl *ctl, const struct kind *k, const char *id, json_t **doc, int *absent) {
    char path[256], subj[192];

    record_path(path, sizeof path, k, id);
    subject(subj, sizeof subj, k, id);
    return http_get_object(ctl, path, subj, doc, absent);
}

/* PUTs doc, with the header line if_match when it is not NULL (see http_prepare_rewrite).
 * Returns CTL_OK with *stored (the server's answer), or reports the error and returns
 * CTL_FAIL. */
static int store(struct ctl *ctl, const struct kind *k, const char *id, const json_t *doc,
                 const char *if_match, json_t **stored) {
    char path[256], subj[192];
    const char *hdrs[2] = {if_match, NULL};
    struct http_reply r;
    int rc = CTL_FAIL;

    *stored = NULL;
    record_path(path, sizeof path, k, id);
    subject(subj, sizeof subj, k, id);
    if (http_request(ctl, "PUT", path, doc, hdrs, &r) != 0)
        return CTL_FAIL;
    if ((r.status == 200 || r.status == 201) && json_is_object(r.body)) {
        *stored = json_incref(r.body);
        rc = CTL_OK;
    } else if (r.status == 200 || r.status == 201) {
        ctl_err("%s: the server's answer is not a JSON object", subj);
    } else {
        http_fail(&r, subj);
    }
    http_reply_free(&r);
    return rc;
}

static json_t *sym_key_obj(const json_t *doc) {
    return json_object_get(json_object_get(doc, "attestation"), "symmetricKey");
}

static void strip_keys(json_t *doc) {
    json_t *sk = sym_key_obj(doc);

    json_object_del(sk, "primaryKey");
    json_object_del(sk, "secondaryKey");
}

/* Prints one record: as JSON, or as a listing. Keys are left out unless with_keys. */
/* The certificates of an X.509 attestation (its clientCertificates or signingCertificates): the
 * subject and SHA-256 thumbprint of each, or the thumbprint alone when only it was enrolled. */
static void add_certificates(struct out_kv *kv, const json_t *x509) {
    static const char *const slots[][2] = {{"primary", "Primary certificate"},
                                           {"secondary", "Secondary certificate"}};
    const char *set_name;
    json_t *set;

    json_object_foreach((json_t *)x509, set_name, set) {
        for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
            json_t *info = json_object_get(json_object_get(set, slots[i][0]), "info");
            const char *subject = json_string_value(json_object_get(info, "subjectName"));
            const char *tp = json_string_value(json_object_get(info, "sha256Thumbprint"));
            char *line = NULL;
            if (!tp)
                continue;
            if (asprintf(&line, "%s%sSHA-256 %s", subject ? subject : "", subject ? ", " : "", tp) <
                0)
                line = NULL;
            out_kv_add(kv, slots[i][1], line ? line : tp);
            free(line);
        }
    }
}

static void print_record(const struct ctl *ctl, const struct kind *k, json_t *doc, int with_keys) {
    static const struct out_member fields[] = {
        {"iotHubHostName", "IoT hub host name"},
        {"iotHubs", "IoT hubs"},
        {"allocationPolicy", "Allocation policy"},
        {"customAllocationDefinition", "Custom allocation"},
        {"reprovisionPolicy", "Reprovision policy"},
        {"initialTwin", "Initial twin"},
        {"capabilities", "Capabilities"},
        {"createdDateTimeUtc", "Created"},
        {"lastUpdatedDateTimeUtc", "Last updated"},
        {"etag", "ETag"},
    };
    const struct out_member head[] = {
        {k->id_member, k->id_label},
        {"provisioningStatus", "Status"},
    };
    json_t *sk = sym_key_obj(doc);
    struct out_kv *kv;
    char *v;

    if (!with_keys)
        strip_keys(doc);
    if (ctl->json) {
        out_json(doc);
        return;
    }
    kv = out_kv_new();
    out_kv_members(kv, doc, head, 1);
    if (k->has_device_id) {
        v = out_field(doc, "deviceId");
        out_kv_add(kv, "Device ID", v ? v : "(the registration ID)");
        free(v);
    }
    out_kv_members(kv, doc, head + 1, 1);
    v = out_field(json_object_get(doc, "attestation"), "type");
    out_kv_add(kv, "Attestation", v);
    free(v);
    if (with_keys && sk) {
        v = out_field(sk, "primaryKey");
        out_kv_add(kv, "Primary key", v ? v : "(not returned by the server)");
        ctl_free_secret(v);
        v = out_field(sk, "secondaryKey");
        out_kv_add(kv, "Secondary key", v);
        ctl_free_secret(v);
    }
    add_certificates(kv, json_object_get(json_object_get(doc, "attestation"), "x509"));
    out_kv_members(kv, doc, fields, sizeof fields / sizeof fields[0]);
    out_kv_print(kv);
}

/* Parses --initial-twin: JSON text, or @FILE for a file holding it. */
static json_t *parse_twin(const char *arg) {
    json_error_t jerr;
    json_t *twin;

    if (arg[0] == '@')
        twin = json_load_file(arg + 1, 0, &jerr);
    else
        twin = json_loads(arg, 0, &jerr);
    if (twin == NULL && jerr.line < 1) {
        ctl_err("--initial-twin: %s", jerr.text);
        return NULL;
    }
    if (twin == NULL) {
        ctl_err("--initial-twin: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(twin)) {
        ctl_err("--initial-twin: must be a JSON object");
        json_decref(twin);
        return NULL;
    }
    return twin;
}

/* Builds the document that create sends, from the command line. Returns it, or NULL after
 * printing why. */
static json_t *build_doc(const struct kind *k, const struct ctl_args *a, const char *id) {
    const char *pk = args_get(a, "primary-key"), *sk = args_get(a, "secondary-key");
    const char *hub_host = args_get(a, "hub-hostname");
    const char *device_id = k->has_device_id ? args_get(a, "device-id") : NULL;
    const char *twin_arg = args_get(a, "initial-twin");
    const char *hubs[MAX_HUBS];
    size_t nhubs = args_all(a, "hub", hubs, MAX_HUBS);
    json_t *doc = NULL, *att, *twin;

    if (sk && !pk) {
        ctl_err("--secondary-key needs --primary-key");
        return NULL;
    }
    /* Checked as the server would, to fail before any request. */
    if ((pk && ctl_check_key("primary-key", pk, KEY_MIN, KEY_MAX) != 0) ||
        (sk && ctl_check_key("secondary-key", sk, KEY_MIN, KEY_MAX) != 0))
        return NULL;
    if (nhubs > MAX_HUBS) {
        ctl_err("--hub: at most %d hubs", MAX_HUBS);
        return NULL;
    }
    if (device_id && device_id[0] == '\0') {
        ctl_err("--device-id must not be empty");
        return NULL;
    }
    doc = json_pack("{s:s, s:s}", k->id_member, id, "provisioningStatus",
                    args_has(a, "disabled") ? "disabled" : "enabled");
    att = json_pack("{s:s}", "type", "symmetricKey");
    if (doc == NULL || att == NULL || json_object_set_new(doc, "attestation", att) != 0)
        goto nomem;
    /* Without keys the server generates both (64 random bytes each). */
    if (pk && json_object_set_new(att, "symmetricKey",
                                  sk ? json_pack("{s:s, s:s}", "primaryKey", pk, "secondaryKey", sk)
                                     : json_pack("{s:s}", "primaryKey", pk)) != 0)
        goto nomem;
    if (device_id && json_object_set_new(doc, "deviceId", json_string(device_id)) != 0)
        goto nomem;
    if (hub_host && json_object_set_new(doc, "iotHubHostName", json_string(hub_host)) != 0)
        goto nomem;
    if (nhubs > 0) {
        json_t *arr = json_array();

        if (arr == NULL || json_object_set_new(doc, "iotHubs", arr) != 0)
            goto nomem;
        for (size_t i = 0; i < nhubs; i++)
            if (json_array_append_new(arr, json_string(hubs[i])) != 0)
                goto nomem;
    }
    if (twin_arg) {
        if ((twin = parse_twin(twin_arg)) == NULL) {
            json_decref(doc);
            return NULL;
        }
        if (json_object_set_new(doc, "initialTwin", twin) != 0)
            goto nomem;
    }
    return doc;
nomem:
    ctl_err("out of memory");
    json_decref(doc);
    return NULL;
}

/* ---- Commands ---- */

static int cmd_create(struct ctl *ctl, const struct ctl_args *a) {
    const struct kind *k = a->cmd->data;
    const char *id = a->pos[0];
    json_t *doc, *stored = NULL;
    int rc;

    if (ctl_check_id(k->id_what, id) != 0)
        return CTL_USAGE;
    if ((doc = build_doc(k, a, id)) == NULL)
        return CTL_USAGE;
    /* A PUT replaces whatever is there (status, hubs, twin, keys when some are given), which
     * must not happen by mistake: create asks the server to refuse an existing ID (409001). */
    if ((rc = store(ctl, k, id, doc, "If-None-Match: *", &stored)) != CTL_OK)
        goto out;
    /* The operator sees generated keys this once, so they are printed. */
    print_record(ctl, k, stored, 1);
out:
    json_decref(doc);
    json_decref(stored);
    return rc;
}

static int cmd_show(struct ctl *ctl, const struct ctl_args *a) {
    const struct kind *k = a->cmd->data;
    json_t *doc;

    if (ctl_check_id(k->id_what, a->pos[0]) != 0)
        return CTL_USAGE;
    if (fetch(ctl, k, a->pos[0], &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    print_record(ctl, k, doc, args_has(a, "show-keys"));
    json_decref(doc);
    return CTL_OK;
}

static char *hubs_text(const json_t *doc) {
    char *s = out_field(doc, "iotHubs");

    return s ? s : out_field(doc, "iotHubHostName");
}

static int cmd_list(struct ctl *ctl, const struct ctl_args *a) {
    const struct kind *k = a->cmd->data;
    char path[64];
    json_t *items, *it;
    size_t i;

    snprintf(path, sizeof path, "%s/query", k->collection);
    if (http_query_all(ctl, path, k->plural, &items) != CTL_OK)
        return CTL_FAIL;
    json_array_foreach(items, i, it) {
        strip_keys(it);
    }
    if (ctl->json) {
        out_json(items);
    } else {
        const char *enr_hdr[] = {"REGISTRATION ID", "DEVICE ID", "STATUS", "HUBS", "LAST UPDATED"};
        const char *grp_hdr[] = {"GROUP ID", "STATUS", "HUBS", "LAST UPDATED"};
        size_t ncols = k->has_device_id ? 5 : 4;
        struct out_table *t = out_table_new(ncols, k->has_device_id ? enr_hdr : grp_hdr);
        char empty[64];

        json_array_foreach(items, i, it) {
            char *cells[5] = {out_field(it, k->id_member), NULL, NULL, NULL, NULL};
            size_t c = 1;

            if (k->has_device_id)
                cells[c++] = out_field(it, "deviceId");
            cells[c++] = out_field(it, "provisioningStatus");
            cells[c++] = hubs_text(it);
            cells[c++] = out_field(it, "lastUpdatedDateTimeUtc");
            out_table_add(t, (const char *const *)cells);
            for (c = 0; c < 5; c++)
                free(cells[c]);
        }
        snprintf(empty, sizeof empty, "No %s.", k->plural);
        out_table_print(t, empty);
    }
    json_decref(items);
    return CTL_OK;
}

/* enable and disable: read, change provisioningStatus, write back if nothing changed meanwhile
 * (If-Match with the etag read). */
static int set_status(struct ctl *ctl, const struct ctl_args *a, const char *status) {
    const struct kind *k = a->cmd->data;
    const char *id = a->pos[0];
    json_t *doc = NULL, *stored = NULL, *att;
    const char *cur;
    char *if_match = NULL;
    int rc;

    if (ctl_check_id(k->id_what, id) != 0)
        return CTL_USAGE;
    if ((rc = fetch(ctl, k, id, &doc, NULL)) != CTL_OK)
        return rc;
    cur = json_string_value(json_object_get(doc, "provisioningStatus"));
    if (cur && strcmp(cur, status) == 0) {
        stored = json_incref(doc);
        if (!ctl->json)
            printf("%s %s was already %s.\n", k->noun_cap, id, status);
        goto done;
    }
    /* Written back without its keys, the record would get fresh ones: refuse instead. */
    att = json_object_get(doc, "attestation");
    if (json_is_string(json_object_get(att, "type")) &&
        strcmp(json_string_value(json_object_get(att, "type")), "symmetricKey") == 0 &&
        !json_is_string(json_object_get(sym_key_obj(doc), "primaryKey"))) {
        ctl_err("%s %s: the server did not return its keys, so it cannot be rewritten without "
                "replacing them",
                k->noun, id);
        rc = CTL_FAIL;
        goto out;
    }
    if (http_prepare_rewrite(doc, &if_match) != 0) {
        rc = CTL_FAIL;
        goto out;
    }
    if (json_object_set_new(doc, "provisioningStatus", json_string(status)) != 0) {
        ctl_err("out of memory");
        rc = CTL_FAIL;
        goto out;
    }
    if ((rc = store(ctl, k, id, doc, if_match, &stored)) != CTL_OK)
        goto out;
    if (!ctl->json)
        printf("%s %s is now %s.\n", k->noun_cap, id, status);
done:
    if (ctl->json)
        print_record(ctl, k, stored, 0);
out:
    free(if_match);
    json_decref(doc);
    json_decref(stored);
    return rc;
}

static int cmd_enable(struct ctl *ctl, const struct ctl_args *a) {
    return set_status(ctl, a, "enabled");
}

static int cmd_disable(struct ctl *ctl, const struct ctl_args *a) {
    return set_status(ctl, a, "disabled");
}

static int cmd_delete(struct ctl *ctl, const struct ctl_args *a) {
    const struct kind *k = a->cmd->data;
    char path[256], subj[192];

    if (ctl_check_id(k->id_what, a->pos[0]) != 0)
        return CTL_USAGE;
    record_path(path, sizeof path, k, a->pos[0]);
    subject(subj, sizeof subj, k, a->pos[0]);
    return http_delete(ctl, path, subj);
}

/* ---- Command tables ---- */

/* The options of enrollment create. group create takes the same but --device-id, which
 * therefore comes first: its table starts one entry later. */
static const struct ctl_opt create_opts[] = {
    {"device-id", "ID",
     "device ID to assign, or auto for a random UUID (default: the registration ID)", 0},
    {"primary-key", "KEY", "primary symmetric key, base64 of 16-64 bytes (default: generated)", 0},
    {"secondary-key", "KEY", "secondary symmetric key (needs --primary-key)", 0},
    {"hub", "HOST", "endpoint host name devices may be assigned to (iotHubs)", 1},
    {"hub-hostname", "HOST", "the endpoint host name (iotHubHostName)", 0},
    {"disabled", NULL, "create it disabled: its devices are refused until it is enabled", 0},
    {"initial-twin", "JSON", "initial twin (JSON object), or @FILE to read it from a file", 0},
    {NULL, NULL, NULL, 0},
};

static const struct ctl_opt show_opts[] = {
    {"show-keys", NULL, "include the symmetric keys", 0},
    {NULL, NULL, NULL, 0},
};

#define CREATE_DETAILS                                                                             \
    "Refuses an ID that already exists. Prints the stored record with its keys: when they were\n"  \
    "generated, this is the one time to note them (show --show-keys prints them again)."

const struct ctl_cmd ctl_enrollment_cmds[] = {
    {"enrollment create", "REGID [options]", "Create an individual symmetric-key enrollment",
     CREATE_DETAILS, 1, 1, create_opts, cmd_create, &enrollment_kind},
    {"enrollment show", "REGID [--show-keys]", "Show an individual enrollment", NULL, 1, 1,
     show_opts, cmd_show, &enrollment_kind},
    {"enrollment list", "", "List the individual enrollments",
     "Follows the server's paging to the end. Keys are never listed.", 0, 0, NULL, cmd_list,
     &enrollment_kind},
    {"enrollment enable", "REGID", "Enable an individual enrollment", NULL, 1, 1, NULL, cmd_enable,
     &enrollment_kind},
    {"enrollment disable", "REGID", "Disable an individual enrollment (its device is refused)",
     NULL, 1, 1, NULL, cmd_disable, &enrollment_kind},
    {"enrollment delete", "REGID", "Delete an individual enrollment", NULL, 1, 1, NULL, cmd_delete,
     &enrollment_kind},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};

const struct ctl_cmd ctl_group_cmds[] = {
    {"group create", "ID [options]", "Create a symmetric-key enrollment group", CREATE_DETAILS, 1,
     1, create_opts + 1, cmd_create, &group_kind},
    {"group show", "ID [--show-keys]", "Show an enrollment group", NULL, 1, 1, show_opts, cmd_show,
     &group_kind},
    {"group list", "", "List the enrollment groups",
     "Follows the server's paging to the end. Keys are never listed.", 0, 0, NULL, cmd_list,
     &group_kind},
    {"group enable", "ID", "Enable an enrollment group", NULL, 1, 1, NULL, cmd_enable, &group_kind},
    {"group disable", "ID", "Disable an enrollment group (its devices are refused)", NULL, 1, 1,
     NULL, cmd_disable, &group_kind},
    {"group delete", "ID", "Delete an enrollment group", NULL, 1, 1, NULL, cmd_delete, &group_kind},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
