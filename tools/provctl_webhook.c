/* Webhooks and the events delivered to them (docs/events.md): subscriptions, and the deliveries
 * an operator looks at when a receiver was down, with the means to send a failed one again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provctl.h"

#define MAX_EVENTS    16  /* --event values accepted; there are four types and "*" */
#define DEFAULT_LIMIT 100 /* the server's page size when no limit is sent */

static void webhook_path(char *buf, size_t len, const char *id) {
    snprintf(buf, len, "/webhooks/%s", id);
}

static void webhook_subject(char *buf, size_t len, const char *id) {
    snprintf(buf, len, "webhook %s", id);
}

/* Prints a webhook. A secret in it (only the answer that created the webhook with a generated
 * one has it) is printed with a warning that it is shown once. */
static void print_webhook(const struct ctl *ctl, const json_t *doc) {
    static const struct out_member fields[] = {
        {"id", "ID"},
        {"url", "URL"},
        {"events", "Events"},
        {"enabled", "Enabled"},
        {"secret", "Secret"},
        {"createdDateTimeUtc", "Created"},
        {"lastUpdatedDateTimeUtc", "Last updated"},
    };

    out_doc(ctl, doc, fields, sizeof fields / sizeof fields[0]);
    if (json_object_get(doc, "secret"))
        fprintf(stderr, "The signing secret is shown this once: give it to the receiver now.\n");
}

static int cmd_add(struct ctl *ctl, const struct ctl_args *a) {
    const char *id = a->pos[0], *url = args_get(a, "url"),
               *secret_file = args_get(a, "secret-file");
    const char *events[MAX_EVENTS];
    const char *hdrs[2] = {"If-None-Match: *", NULL};
    size_t nevents = args_all(a, "event", events, MAX_EVENTS);
    char path[192], subj[160], *secret = NULL;
    json_t *body = NULL, *list, *doc = NULL;
    int rc = CTL_USAGE;

    if (ctl_check_id("webhook ID", id) != 0)
        return CTL_USAGE;
    if (url == NULL) {
        ctl_err("webhook add: --url URL is required");
        return CTL_USAGE;
    }
    if (nevents > MAX_EVENTS) {
        ctl_err("webhook add: at most %d --event options", MAX_EVENTS);
        return CTL_USAGE;
    }
    if (secret_file && (secret = ctl_read_secret("secret file", secret_file)) == NULL)
        return CTL_FAIL;
    body = json_pack("{s:s, s:b}", "url", url, "enabled", !args_has(a, "disabled"));
    if (body == NULL || (secret && json_object_set_new(body, "secret", json_string(secret)) != 0))
        goto nomem;
    if (nevents > 0) {
        if ((list = json_array()) == NULL || json_object_set_new(body, "events", list) != 0)
            goto nomem;
        for (size_t i = 0; i < nevents; i++)
            if (json_array_append_new(list, json_string(events[i])) != 0)
                goto nomem;
    }
    webhook_path(path, sizeof path, id);
    webhook_subject(subj, sizeof subj, id);
    rc = http_send_object(ctl, "PUT", path, body, args_has(a, "replace") ? NULL : hdrs, subj, &doc);
    if (rc == CTL_OK)
        print_webhook(ctl, doc);
    goto out;
nomem:
    ctl_err("out of memory");
    rc = CTL_FAIL;
out:
    json_decref(doc);
    json_decref(body);
    ctl_free_secret(secret);
    return rc;
}

static int cmd_list(struct ctl *ctl, const struct ctl_args *a) {
    static const char *const hdr[] = {"ID", "URL", "EVENTS", "ENABLED"};
    static const char *const members[] = {"id", "url", "events", "enabled"};
    struct http_reply r;
    json_t *it;
    size_t i;
    int rc = CTL_FAIL;

    (void)a;
    if (http_request(ctl, "GET", "/webhooks", NULL, NULL, &r) != 0)
        return CTL_FAIL;
    if (r.status != 200) {
        http_fail(&r, "webhooks");
    } else if (!json_is_array(r.body)) {
        ctl_err("webhooks: the server's answer is not a JSON array");
    } else if (ctl->json) {
        out_json(r.body);
        rc = CTL_OK;
    } else {
        struct out_table *t = out_table_new(4, hdr);

        json_array_foreach(r.body, i, it) {
            out_table_add_members(t, it, members);
        }
        out_table_print(t, "No webhooks.");
        rc = CTL_OK;
    }
    http_reply_free(&r);
    return rc;
}

static int cmd_show(struct ctl *ctl, const struct ctl_args *a) {
    const char *id = a->pos[0];
    char path[192], subj[160];
    json_t *doc;

    if (ctl_check_id("webhook ID", id) != 0)
        return CTL_USAGE;
    webhook_path(path, sizeof path, id);
    webhook_subject(subj, sizeof subj, id);
    if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    print_webhook(ctl, doc);
    json_decref(doc);
    return CTL_OK;
}

/* enable and disable: the webhook as stored, with enabled set; the server keeps its secret. */
static int cmd_enable(struct ctl *ctl, const struct ctl_args *a) {
    const int enable = a->cmd->data != NULL;
    const char *id = a->pos[0];
    char path[192], subj[160];
    json_t *doc, *stored = NULL;
    int rc;

    if (ctl_check_id("webhook ID", id) != 0)
        return CTL_USAGE;
    webhook_path(path, sizeof path, id);
    webhook_subject(subj, sizeof subj, id);
    if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    if (json_object_set_new(doc, "enabled", json_boolean(enable)) != 0) {
        ctl_err("out of memory");
        rc = CTL_FAIL;
    } else {
        rc = http_send_object(ctl, "PUT", path, doc, NULL, subj, &stored);
    }
    if (rc == CTL_OK)
        print_webhook(ctl, stored);
    json_decref(stored);
    json_decref(doc);
    return rc;
}

static int cmd_remove(struct ctl *ctl, const struct ctl_args *a) {
    const char *id = a->pos[0];
    char path[192], subj[160];

    if (ctl_check_id("webhook ID", id) != 0)
        return CTL_USAGE;
    webhook_path(path, sizeof path, id);
    webhook_subject(subj, sizeof subj, id);
    return http_delete(ctl, path, subj);
}

static int cmd_events_list(struct ctl *ctl, const struct ctl_args *a) {
    static const char *const hdr[] = {"ID",    "CREATED",  "TYPE",        "SUBJECT",   "WEBHOOK",
                                      "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR"};
    static const char *const members[] = {"id",       "createdUtc", "type",
                                          "subject",  "webhookId",  "state",
                                          "attempts", "lastStatus", "lastError"};
    const char *state = args_has(a, "failed") ? "failed" : args_get(a, "state");
    const char *webhook = args_get(a, "webhook"), *after_s = args_get(a, "after");
    const char *limit_s = args_get(a, "limit");
    long long after = 0, limit = DEFAULT_LIMIT;
    char path[256], again[256];
    size_t len;

    if (args_has(a, "failed") && args_has(a, "state")) {
        ctl_err("events list: --failed and --state exclude each other");
        return CTL_USAGE;
    }
    if (state && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
        strcmp(state, "failed") != 0) {
        ctl_err("--state: \"%s\" is not pending, delivered or failed", state);
        return CTL_USAGE;
    }
    if ((webhook && ctl_check_id("webhook ID", webhook) != 0) ||
        (after_s && ctl_parse_int("after", after_s, 0, INT64_MAX, &after) != 0) ||
        (limit_s && ctl_parse_int("limit", limit_s, 1, 1000, &limit) != 0))
        return CTL_USAGE;
    len = (size_t)snprintf(path, sizeof path, "/events?after=%lld&limit=%lld", after, limit);
    if (state)
        len += (size_t)snprintf(path + len, sizeof path - len, "&state=%s", state);
    if (webhook)
        snprintf(path + len, sizeof path - len, "&webhook=%s", webhook);
    snprintf(again, sizeof again, "provctl events list --limit %lld%s%s%s%s", limit,
             state ? " --state " : "", state ? state : "", webhook ? " --webhook " : "",
             webhook ? webhook : "");

    const struct seq_page page = {.path = path,
                                  .subject = "events",
                                  .items = "events",
                                  .ncols = 9,
                                  .hdr = hdr,
                                  .members = members,
                                  .empty = state ? "No such events." : "No events.",
                                  .limit = limit,
                                  .again = again};
    return out_seq_page(ctl, &page);
}

/* Checks a delivery ID (a positive number) and builds its path with suffix. */
static int event_path(char *buf, size_t len, const char *id, const char *suffix) {
    size_t n = strspn(id, "0123456789");

    if (n == 0 || id[n] != '\0' || n > 18 || strspn(id, "0") == n) {
        ctl_err("invalid event delivery ID \"%s\": a number from 1 up is expected", id);
        return -1;
    }
    snprintf(buf, len, "/events/%s%s", id, suffix);
    return 0;
}

static void print_delivery(const struct ctl *ctl, const json_t *doc) {
    static const struct out_member fields[] = {
        {"id", "ID"},
        {"eventId", "Event ID"},
        {"type", "Type"},
        {"subject", "Subject"},
        {"webhookId", "Webhook"},
        {"state", "State"},
        {"attempts", "Attempts"},
        {"createdUtc", "Created"},
        {"nextAttemptUtc", "Next attempt"},
        {"lastAttemptUtc", "Last attempt"},
        {"lastStatus", "Last status"},
        {"lastError", "Last error"},
        {"deliveredUtc", "Delivered"},
        {"failedUtc", "Failed"},
        {"event", "Event"},
    };

    out_doc(ctl, doc, fields, sizeof fields / sizeof fields[0]);
}

/* show and retry: GET /events/ID, or POST /events/ID/retry; both answer the delivery. */
static int cmd_events_one(struct ctl *ctl, const struct ctl_args *a) {
    const char *suffix = a->cmd->data;
    char path[96], subj[96];
    json_t *doc;

    if (event_path(path, sizeof path, a->pos[0], suffix) != 0)
        return CTL_USAGE;
    snprintf(subj, sizeof subj, "event delivery %s", a->pos[0]);
    if (http_send_object(ctl, suffix[0] ? "POST" : "GET", path, NULL, NULL, subj, &doc) != CTL_OK)
        return CTL_FAIL;
    print_delivery(ctl, doc);
    json_decref(doc);
    return CTL_OK;
}

static const struct ctl_opt add_opts[] = {
    {"url", "URL", "where events are POSTed, an https URL; required", 0},
    {"event", "TYPE",
     "an event type to send: device.registered, device.refused, device.reprovisioned, "
     "enrollment.changed, or * for all (default: all)",
     1},
    {"secret-file", "FILE",
     "file holding the signing secret, 16-128 printable characters (default: the server "
     "generates one and prints it once)",
     0},
    {"disabled", NULL, "add it disabled: no event is queued for it until it is enabled", 0},
    {"replace", NULL, "replace the webhook if it exists (its secret stays unless --secret-file)",
     0},
    {NULL, NULL, NULL, 0},
};

static const struct ctl_opt events_opts[] = {
    {"failed", NULL, "only deliveries that failed for good (as --state failed)", 0},
    {"state", "STATE", "only deliveries in STATE: pending, delivered or failed", 0},
    {"webhook", "ID", "only deliveries to this webhook", 0},
    {"after", "ID", "only deliveries with an ID above ID (default 0)", 0},
    {"limit", "N", "at most N deliveries, 1-1000 (default 100)", 0},
    {NULL, NULL, NULL, 0},
};

const struct ctl_cmd ctl_webhook_cmds[] = {
    {"webhook add", "ID --url URL [--event TYPE]... [options]",
     "Add a webhook that events are POSTed to",
     "Every event of the chosen types is POSTed to the URL as JSON, signed with the webhook's\n"
     "secret (header X-Provd-Signature; docs/events.md says how to verify it). Without\n"
     "--secret-file the server generates the secret and this answer is the only one that\n"
     "shows it. An existing webhook of that ID is an error unless --replace.",
     1, 1, add_opts, cmd_add, NULL},
    {"webhook list", "", "List the webhooks", NULL, 0, 0, NULL, cmd_list, NULL},
    {"webhook show", "ID", "Show a webhook (never its secret)", NULL, 1, 1, NULL, cmd_show, NULL},
    {"webhook enable", "ID", "Enable a webhook: events are queued for it again", NULL, 1, 1, NULL,
     cmd_enable, "enable"},
    {"webhook disable", "ID",
     "Disable a webhook: no new events are queued for it, queued ones wait", NULL, 1, 1, NULL,
     cmd_enable, NULL},
    {"webhook remove", "ID", "Remove a webhook and the deliveries still queued for it", NULL, 1, 1,
     NULL, cmd_remove, NULL},
    {"events list", "[--failed | --state STATE] [--webhook ID] [--after ID] [--limit N]",
     "List event deliveries, oldest first",
     "One line per event and webhook it is delivered to. Deliveries that failed for good\n"
     "(--failed) are kept until retried or their webhook is removed.",
     0, 0, events_opts, cmd_events_list, NULL},
    {"events show", "ID", "Show an event delivery with the event it carries", NULL, 1, 1, NULL,
     cmd_events_one, ""},
    {"events retry", "ID", "Send a failed event delivery again, with a fresh set of attempts", NULL,
     1, 1, NULL, cmd_events_one, "/retry"},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
