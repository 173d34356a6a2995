/* provd's own extensions of the admin API: the audit log and the service summary. */
#include <stdint.h>
#include <stdio.h>

#include "provctl.h"

#define AUDIT_DEFAULT_LIMIT 100 /* the server's page size when no limit is sent */

static int cmd_audit_list(struct ctl *ctl, const struct ctl_args *a) {
    static const char *const hdr[] = {"SEQ",    "TIME", "EVENT",  "SUBJECT", "OUTCOME",
                                      "STATUS", "CODE", "REMOTE", "REASON"};
    static const char *const members[] = {"seq",       "timestampUtc", "event",
                                          "subject",   "outcome",      "httpStatus",
                                          "errorCode", "remote",       "reason"};
    const char *subj = args_get(a, "subject");
    const char *after_s = args_get(a, "after");
    const char *limit_s = args_get(a, "limit");
    long long after = 0, limit = AUDIT_DEFAULT_LIMIT;
    char path[256], again[256];
    size_t len;

    if (after_s && ctl_parse_int("after", after_s, 0, INT64_MAX, &after) != 0)
        return CTL_USAGE;
    if (limit_s && ctl_parse_int("limit", limit_s, 1, 1000, &limit) != 0)
        return CTL_USAGE;
    if (subj && ctl_check_id("subject", subj) != 0)
        return CTL_USAGE;
    len = (size_t)snprintf(path, sizeof path, "/audit?after=%lld", after);
    if (limit_s)
        len += (size_t)snprintf(path + len, sizeof path - len, "&limit=%lld", limit);
    if (subj)
        snprintf(path + len, sizeof path - len, "&subject=%s", subj);
    snprintf(again, sizeof again, "provctl audit list%s%s%s%s", limit_s ? " --limit " : "",
             limit_s ? limit_s : "", subj ? " --subject " : "", subj ? subj : "");

    const struct seq_page page = {.path = path,
                                  .subject = "audit log",
                                  .items = "records",
                                  .ncols = 9,
                                  .hdr = hdr,
                                  .members = members,
                                  .empty = "No audit records.",
                                  .limit = limit,
                                  .again = again};
    return out_seq_page(ctl, &page);
}

static int cmd_info(struct ctl *ctl, const struct ctl_args *a) {
    static const struct out_member top[] = {
        {"idScope", "ID scope"},
        {"version", "Version"},
    };
    static const struct out_member ca[] = {
        {"subject", "CA"},
        {"notAfter", "CA issues until"},
        {"reason", "CA cannot issue"},
    };
    static const struct out_member counts[] = {
        {"enrollments", "Enrollments"},
        {"enrollmentGroups", "Enrollment groups"},
        {"registrations", "Registrations"},
        {"auditRecords", "Audit records"},
    };
    json_t *doc;

    (void)a;
    if (http_get_object(ctl, "/info", "server info", &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    if (ctl->json) {
        out_json(doc);
    } else {
        struct out_kv *kv = out_kv_new();

        out_kv_members(kv, doc, top, sizeof top / sizeof top[0]);
        out_kv_members(kv, json_object_get(doc, "ca"), ca, sizeof ca / sizeof ca[0]);
        out_kv_members(kv, json_object_get(doc, "counts"), counts,
                       sizeof counts / sizeof counts[0]);
        out_kv_print(kv);
    }
    json_decref(doc);
    return CTL_OK;
}

static const struct ctl_opt audit_opts[] = {
    {"subject", "ID", "only records about this registration or group ID", 0},
    {"after", "SEQ", "only records with a sequence number above SEQ (default 0)", 0},
    {"limit", "N", "at most N records, 1-1000 (default 100)", 0},
    {NULL, NULL, NULL, 0},
};

const struct ctl_cmd ctl_service_cmds[] = {
    {"audit list", "[--subject ID] [--after SEQ] [--limit N]", "List audit records, oldest first",
     "Every device decision and every admin change leaves one record. To read on after a\n"
     "page, pass the last sequence number shown (the answer's \"next\") as --after.",
     0, 0, audit_opts, cmd_audit_list, NULL},
    {"info", "", "Show the server's ID scope, version, CA and counts", NULL, 0, 0, NULL, cmd_info,
     NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
