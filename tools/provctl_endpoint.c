/* Endpoints: the servers devices are assigned to, which enrollments and groups name in their
 * iotHubs and iotHubHostName (docs/admin-api.md, "Endpoints"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostname.h"
#include "protocol.h"
#include "provctl.h"

#define TRUST_BUNDLE_MAX (64 * 1024)

static int check_host(const char *host) {
    const char *why = NULL;

    if (hostname_check(host, &why) == 0)
        return 0;
    ctl_err("invalid host name \"%s\": %s", host, why);
    return -1;
}

static void endpoint_path(char *buf, size_t len, const char *host) {
    snprintf(buf, len, "/endpoints/%s", host);
}

static void endpoint_subject(char *buf, size_t len, const char *host) {
    snprintf(buf, len, "endpoint %s", host);
}

static void print_endpoint(const struct ctl *ctl, const json_t *doc) {
    static const struct out_member fields[] = {
        {"hostName", "Host name"},
        {"protocol", "Protocol"},
        {"port", "Port"},
        {"weight", "Weight"},
        {"enabled", "Enabled"},
        {"region", "Region"},
        {"createdDateTimeUtc", "Created"},
        {"lastUpdatedDateTimeUtc", "Last updated"},
        {"etag", "ETag"},
    };
    const char *bundle = json_string_value(json_object_get(doc, "trustBundle"));
    struct out_kv *kv;
    char count[64];
    int n = 0;

    if (ctl->json) {
        out_json(doc);
        return;
    }
    kv = out_kv_new();
    out_kv_members(kv, doc, fields, sizeof fields / sizeof fields[0]);
    for (const char *p = bundle; p != NULL && (p = strstr(p, "-----BEGIN CERTIFICATE-----")); p++)
        n++;
    snprintf(count, sizeof count, "%d certificate%s (--json shows them)", n, n == 1 ? "" : "s");
    out_kv_add(kv, "Trust bundle", bundle != NULL ? count : NULL);
    out_kv_print(kv);
}

/* Reads the trust bundle file path (PEM); the server checks what it holds. */
static json_t *read_bundle(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = malloc(TRUST_BUNDLE_MAX + 1);
    json_t *v = NULL;
    size_t n;

    if (f == NULL || buf == NULL) {
        ctl_err("--trust-bundle: cannot read %s", path);
        goto out;
    }
    n = fread(buf, 1, TRUST_BUNDLE_MAX + 1, f);
    if (n > TRUST_BUNDLE_MAX)
        ctl_err("--trust-bundle: %s is larger than %d bytes", path, TRUST_BUNDLE_MAX);
    else if ((v = json_stringn(buf, n)) == NULL)
        ctl_err("--trust-bundle: %s is not text", path);
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    return v;
}

/* Sets in doc the members the command line gives. Returns 0, or -1 after printing why. */
static int apply_options(json_t *doc, const struct ctl_args *a) {
    static const struct {
        const char *opt, *member;
        long long min, max;
    } nums[] = {{"port", "port", 1, 65535}, {"weight", "weight", 1, 10000}};
    const char *v;
    long long n;
    json_t *bundle;
    int bad = 0;

    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if ((v = args_get(a, nums[i].opt)) == NULL)
            continue;
        if (ctl_parse_int(nums[i].opt, v, nums[i].min, nums[i].max, &n) != 0)
            return -1;
        bad |= json_object_set_new(doc, nums[i].member, json_integer(n));
    }
    if ((v = args_get(a, "protocol")) != NULL) {
        /* The server stores the port it filled in for the old protocol like any other: when the
         * protocol changes and that port was the old protocol's usual one, drop it so that the
         * new protocol's usual port applies. A port set by hand stays, as does one --port gives. */
        const json_t *old_port = json_object_get(doc, "port");
        const char *old = json_string_value(json_object_get(doc, "protocol"));

        if (old == NULL)
            old = "mqtts"; /* the server's default */
        int usual = 0;
        if (args_get(a, "port") == NULL && strcasecmp(old, v) != 0 && json_is_integer(old_port) &&
            protocol_find(old, &usual) && json_integer_value(old_port) == usual)
            json_object_del(doc, "port");
        bad |= json_object_set_new(doc, "protocol", json_string(v));
    }
    if ((v = args_get(a, "region")) != NULL)
        bad |= json_object_set_new(doc, "region", json_string(v));
    if (args_has(a, "no-region"))
        json_object_del(doc, "region");
    if ((v = args_get(a, "trust-bundle")) != NULL) {
        if ((bundle = read_bundle(v)) == NULL)
            return -1;
        bad |= json_object_set_new(doc, "trustBundle", bundle);
    }
    if (args_has(a, "no-trust-bundle"))
        json_object_del(doc, "trustBundle");
    if (args_has(a, "disabled") || args_has(a, "enabled"))
        bad |= json_object_set_new(doc, "enabled", json_boolean(args_has(a, "enabled")));
    if (bad) {
        ctl_err("out of memory");
        return -1;
    }
    return 0;
}

/* add and update: update starts from the stored endpoint and writes it back only if nobody
 * changed it meanwhile (If-Match); add refuses an endpoint that exists. */
static int cmd_put(struct ctl *ctl, const struct ctl_args *a) {
    const int update = a->cmd->data != NULL;
    const char *host = a->pos[0];
    char path[300], subj[300], *if_match = NULL;
    const char *hdrs[2] = {NULL, NULL};
    json_t *doc = NULL, *stored = NULL;
    int rc = CTL_FAIL;

    if (check_host(host) != 0)
        return CTL_USAGE;
    if (args_has(a, "enabled") && args_has(a, "disabled")) {
        ctl_err("--enabled and --disabled exclude each other");
        return CTL_USAGE;
    }
    endpoint_path(path, sizeof path, host);
    endpoint_subject(subj, sizeof subj, host);
    if (update) {
        if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK ||
            http_prepare_rewrite(doc, &if_match) != 0)
            goto out;
        hdrs[0] = if_match;
    } else if ((doc = json_object()) == NULL) {
        ctl_err("out of memory");
        goto out;
    } else {
        hdrs[0] = "If-None-Match: *"; /* the server refuses an endpoint that exists (409001) */
    }
    if (apply_options(doc, a) != 0) {
        rc = CTL_USAGE;
        goto out;
    }
    if ((rc = http_send_object(ctl, "PUT", path, doc, hdrs, subj, &stored)) == CTL_OK)
        print_endpoint(ctl, stored);
out:
    free(if_match);
    json_decref(doc);
    json_decref(stored);
    return rc;
}

static int cmd_show(struct ctl *ctl, const struct ctl_args *a) {
    char path[300], subj[300];
    json_t *doc;

    if (check_host(a->pos[0]) != 0)
        return CTL_USAGE;
    endpoint_path(path, sizeof path, a->pos[0]);
    endpoint_subject(subj, sizeof subj, a->pos[0]);
    if (http_get_object(ctl, path, subj, &doc, NULL) != CTL_OK)
        return CTL_FAIL;
    print_endpoint(ctl, doc);
    json_decref(doc);
    return CTL_OK;
}

static int cmd_list(struct ctl *ctl, const struct ctl_args *a) {
    static const char *const hdr[] = {"HOST", "PROTOCOL", "PORT", "WEIGHT", "ENABLED", "REGION"};
    static const char *const members[] = {"hostName", "protocol", "port",
                                          "weight",   "enabled",  "region"};
    static const struct query_list l = {"/endpoints/query", "endpoints", 6, hdr, members,
                                        "No endpoints."};

    (void)a;
    return out_query_list(ctl, &l);
}

static int cmd_remove(struct ctl *ctl, const struct ctl_args *a) {
    char path[300], subj[300];

    if (check_host(a->pos[0]) != 0)
        return CTL_USAGE;
    endpoint_path(path, sizeof path, a->pos[0]);
    endpoint_subject(subj, sizeof subj, a->pos[0]);
    return http_delete(ctl, path, subj);
}

/* The options of add; update takes them too (its table adds its own first). */
static const struct ctl_opt update_opts[] = {
    {"enabled", NULL, "enable the endpoint: devices may be assigned to it", 0},
    {"no-region", NULL, "remove the region tag", 0},
    {"no-trust-bundle", NULL, "remove the trust bundle", 0},
    {"protocol", "NAME",
     "mqtts, mqtt, https, http, amqps, amqp, coaps, coap, wss or ws (default mqtts)", 0},
    {"port", "N", "port devices connect to (default: the protocol's usual one)", 0},
    {"weight", "N", "share under evenlyWeighted allocation, 1-10000 (default 1)", 0},
    {"region", "TAG", "region tag that geoLatency allocation matches", 0},
    {"trust-bundle", "FILE", "PEM certificates devices need to reach it", 0},
    {"disabled", NULL, "never assign devices to it (devices assigned before may stay)", 0},
    {NULL, NULL, NULL, 0},
};
#define ADD_OPTS (update_opts + 3)

const struct ctl_cmd ctl_endpoint_cmds[] = {
    {"endpoint add", "HOST [options]", "Add an endpoint devices can be assigned to",
     "Refuses a host name that already has an endpoint. Enrollments and groups name endpoints\n"
     "in --hub and --hub-hostname; each must exist first.",
     1, 1, ADD_OPTS, cmd_put, NULL},
    {"endpoint list", "", "List the endpoints", "Follows the server's paging to the end.", 0, 0,
     NULL, cmd_list, NULL},
    {"endpoint show", "HOST", "Show an endpoint", NULL, 1, 1, NULL, cmd_show, NULL},
    {"endpoint update", "HOST [options]", "Change an endpoint",
     "Changes only what the options say; fails if someone changed the endpoint meanwhile.\n"
     "--protocol without --port moves an endpoint on the old protocol's usual port to the new\n"
     "protocol's usual port; a port set otherwise is kept.",
     1, 1, update_opts, cmd_put, "update"},
    {"endpoint remove", "HOST", "Remove an endpoint",
     "The server refuses while an enrollment or group still names it, and says which.", 1, 1, NULL,
     cmd_remove, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
