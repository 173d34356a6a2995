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
    json_t *items, *it;
    size_t i;

    /* The admin API lists registrations per enrollment group only. */
    if (group == NULL) {
        ctl_err("registration list: --group ID is required");
        return CTL_USAGE;
    }
    if (ctl_check_id("group ID", group) != 0)
        return CTL_USAGE;
    snprintf(path, sizeof path, "/registrations/%s/query", group);
    snprintf(subj, sizeof subj, "enrollment group %s", group);
    if (http_query_all(ctl, path, subj, &items) != CTL_OK)
        return CTL_FAIL;
    if (ctl->json) {
        out_json(items);
    } else {
        struct out_table *t = out_table_new(5, hdr);

        json_array_foreach(items, i, it) {
            out_table_add_members(t, it, members);
        }
        out_table_print(t, "No registrations.");
    }
    json_decref(items);
    return CTL_OK;
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
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
