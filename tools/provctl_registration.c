/* Registration states: what the server recorded when a device registered. */
#include <stdio.h>

#include "provctl.h"

static int cmd_list(struct ctl *ctl, const struct ctl_args *a) {
    static const char *const hdr[] = {"REGISTRATION ID", "DEVICE ID", "STATUS", "HUB",
                                      "LAST UPDATED"};
    static const char *const members[] = {"registrationId", "deviceId", "status", "assignedHub",
                                          "lastUpdatedDateTimeUtc"};
    const char *group = args_get(a, "group");
    char path[192], subj[160];
    const struct query_list l = {path, subj, 5, hdr, members, "No registrations."};

    /* The admin API lists registrations per enrollment group only. */
    if (group == NULL) {
        ctl_err("registration list: --group ID is required");
        return CTL_USAGE;
    }
    if (ctl_check_id("group ID", group) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/registrations/%s/query", group);
    snprintf(subj, sizeof subj, "enrollment group %s", group);
    return out_query_list(ctl, &l);
}

static int cmd_show(struct ctl *ctl, const struct ctl_args *a) {
    static const struct out_member fields[] = {
        {"registrationId", "Registration ID"},
        {"deviceId", "Device ID"},
        {"status", "Status"},
        {"substatus", "Substatus"},
        {"assignedHub", "Assigned hub"},
        {"errorCode", "Error code"},
        {"errorMessage", "Error message"},
        {"createdDateTimeUtc", "Created"},
        {"lastUpdatedDateTimeUtc", "Last updated"},
        {"etag", "ETag"},
    };
    const char *id = a->pos[0];
    char path[192], subj[160];
    json_t *doc;

    if (ctl_check_id("registration ID", id) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/registrations/%s", id);
    snprintf(subj, sizeof subj, "registration %s", id);
    if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    if (ctl->json) {
        out_json(doc);
    } else {
        struct out_kv *kv = out_kv_new();

        out_kv_members(kv, doc, fields, sizeof fields / sizeof fields[0]);
        out_kv_print(kv);
    }
    json_decref(doc);
    return CTL_OK;
}

static int cmd_delete(struct ctl *ctl, const struct ctl_args *a) {
    const char *id = a->pos[0];
    char path[192], subj[160];

    if (ctl_check_id("registration ID", id) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/registrations/%s", id);
    snprintf(subj, sizeof subj, "registration %s", id);
    return http_delete(ctl, path, subj);
}

/* The device's next registration re-allocates it whatever its reprovisioning policy says. */
static int cmd_reprovision(struct ctl *ctl, const struct ctl_args *a) {
    const char *id = a->pos[0];
    char path[192], subj[160];
    struct http_reply r;
    int rc = CTL_OK;

    if (ctl_check_id("registration ID", id) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/registrations/%s/reprovision", id);
    snprintf(subj, sizeof subj, "registration %s", id);
    if (http_request(ctl, "POST", path, NULL, NULL, &r) != 0)
        return CTL_FAIL;
    if (r.status != 204)
        rc = http_fail(&r, subj);
    else if (!ctl->json)
        printf("Registration %s is re-allocated at the device's next registration.\n", id);
    http_reply_free(&r);
    return rc;
}

static const struct ctl_opt list_opts[] = {
    {"group", "ID", "the enrollment group whose registrations to list; required", 0},
    {NULL, NULL, NULL, 0},
};

const struct ctl_cmd ctl_registration_cmds[] = {
    {"registration list", "--group ID", "List the registrations of an enrollment group",
     "The admin API lists registrations per enrollment group, so --group is required.\n"
     "Follows the server's paging to the end.",
     0, 0, list_opts, cmd_list, NULL},
    {"registration show", "REGID", "Show a device's registration state", NULL, 1, 1, NULL, cmd_show,
     NULL},
    {"registration delete", "REGID",
     "Delete a registration state (the device registers afresh next time)", NULL, 1, 1, NULL,
     cmd_delete, NULL},
    {"registration reprovision", "REGID",
     "Re-allocate a device at its next registration, whatever its reprovisioning policy",
     "Its next registration reports substatus reprovisionedToInitialAssignment.", 1, 1, NULL,
     cmd_reprovision, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
