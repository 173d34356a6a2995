/* provctl's internal interfaces: the command table, argument access, the admin API client and
 * the output helpers shared by the command groups. */
#ifndef PROVCTL_H
#define PROVCTL_H

#include <stddef.h>

#include <jansson.h>

#ifndef PROV_VERSION
#define PROV_VERSION "unknown"
#endif

/* Exit statuses: success, a failure reported by the server or the network, a bad command line. */
#define CTL_OK    0
#define CTL_FAIL  1
#define CTL_USAGE 2

/* ---- Commands and their arguments (provctl.c) ---- */

/* One option of a command. Options are long only ("--name VALUE" or "--name=VALUE"). */
struct ctl_opt {
    const char *name; /* without the leading dashes */
    const char *arg;  /* metavariable shown in the help ("KEY"), NULL for a flag */
    const char *help; /* one line */
    int repeat;       /* non-zero when the option may be given several times */
};

struct ctl;
struct ctl_args;

struct ctl_cmd {
    const char *name;           /* "group create"; NULL ends a table */
    const char *synopsis;       /* what follows the name in the usage line */
    const char *summary;        /* one line for the command list */
    const char *details;        /* a paragraph for --help, or NULL */
    int min_args, max_args;     /* bounds on the positional arguments */
    const struct ctl_opt *opts; /* terminated by an entry with a NULL name; may be NULL */
    int (*run)(struct ctl *ctl, const struct ctl_args *a);
    const void *data; /* passed through to run (ctl_args.cmd->data) */
};

/* Parsed arguments of one invocation. The strings point into argv. */
struct ctl_args {
    const struct ctl_cmd *cmd;
    const char **pos; /* positional arguments */
    int npos;
    const struct ctl_opt **opt; /* options in the order given, with their values */
    const char **val;           /* NULL for flags */
    int nopt;
};

/* The last value given for option name, or NULL when absent (or when it is a flag). */
const char *args_get(const struct ctl_args *a, const char *name);

/* Non-zero when option name was given. */
int args_has(const struct ctl_args *a, const char *name);

/* The values of a repeatable option: fills out with up to max values and returns how many were
 * given (which may exceed max). */
size_t args_all(const struct ctl_args *a, const char *name, const char **out, size_t max);

/* The command tables of each group, each ended by an entry with a NULL name. */
extern const struct ctl_cmd ctl_enrollment_cmds[];
extern const struct ctl_cmd ctl_group_cmds[];
extern const struct ctl_cmd ctl_registration_cmds[];
extern const struct ctl_cmd ctl_service_cmds[];
extern const struct ctl_cmd ctl_offline_cmds[];
extern const struct ctl_cmd ctl_webhook_cmds[];
extern const struct ctl_cmd ctl_endpoint_cmds[];
extern const struct ctl_cmd ctl_cert_cmds[];

/* ---- Invocation state and errors ---- */

struct ctl_http; /* the admin API connection, created on first use (provctl_http.c) */

struct ctl {
    int json; /* --json: machine-readable output */

    /* Connection settings as given on the command line (NULL when not given). */
    const char *opt_data_dir;
    const char *opt_server;
    const char *opt_ca_file;
    const char *opt_token_file;

    struct ctl_http *http;
};

/* Prints "provctl: <message>" and a newline on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checks a registration or group ID with the project's rules; on failure prints why, naming
 * the ID with what ("registration ID", "group ID"), and returns -1. */
int ctl_check_id(const char *what, const char *id);

/* Checks that key, the value of option --opt, is base64 of min to max bytes (at least one byte
 * when max is 0). Returns 0, or -1 after printing why. */
int ctl_check_key(const char *opt, const char *key, size_t min, size_t max);

/* Parses s, the value of option --opt, as a decimal integer in [min, max]. Returns 0 with *out,
 * or -1 after printing why. */
int ctl_parse_int(const char *opt, const char *s, long long min, long long max, long long *out);

/* Wipes and frees a string that holds a secret. NULL is ignored. */
void ctl_free_secret(char *s);

/* Reads a secret (a token, a signing secret) from the file path: one line of at most 4096
 * bytes, the trailing newline and blanks trimmed. what names the file in messages ("token
 * file"). Returns the secret (free with ctl_free_secret) or NULL after printing why. */
char *ctl_read_secret(const char *what, const char *path);

/* ---- The admin API client (provctl_http.c) ---- */

struct http_header {
    char *name;
    char *value;
};

/* One answer of the admin API. */
struct http_reply {
    long status;                 /* HTTP status */
    json_t *body;                /* parsed body, NULL when the body was empty */
    struct http_header *headers; /* response headers of the final answer */
    size_t nheaders;
};

/* Sends method path (relative to the server URL, starting with '/') with body serialised as JSON
 * when body is not NULL, plus the extra header lines in headers (a NULL-terminated list of
 * "Name: value", or NULL). Resolves the connection settings on the first call.
 * Returns 0 with *r filled for any HTTP answer (release with http_reply_free), or -1 after
 * printing why no answer came (settings, network, TLS, a body that is not JSON). */
int http_request(struct ctl *ctl, const char *method, const char *path, const json_t *body,
                 const char *const *headers, struct http_reply *r);

/* The value of response header name (case-insensitive), or NULL. */
const char *http_reply_header(const struct http_reply *r, const char *name);

void http_reply_free(struct http_reply *r);

/* Releases the connection (curl handle, token). */
void http_close(struct ctl *ctl);

/* Reports an error answer: "<subject> not found (404002)" for 404, otherwise the server's
 * message and error code, prefixed by subject. Always returns CTL_FAIL. */
int http_fail(const struct http_reply *r, const char *subject);

/* GETs path, which must answer a JSON object. Returns CTL_OK with *doc (a new reference), or
 * reports the error (naming subject) and returns CTL_FAIL. When absent is not NULL, a 404 is
 * not an error: it sets *absent and returns CTL_OK with *doc NULL. */
int http_get_object(struct ctl *ctl, const char *path, const char *subject, json_t **doc,
                    int *absent);

/* Sends method path with body (NULL for none) and the extra header lines in headers (see
 * http_request); the answer must be 200 with a JSON object. Returns CTL_OK with *doc (a new
 * reference), or reports the error (naming subject) and returns CTL_FAIL. */
int http_send_object(struct ctl *ctl, const char *method, const char *path, const json_t *body,
                     const char *const *headers, const char *subject, json_t **doc);

/* Readies doc, a document read from the admin API, to be written back only if nobody changed it
 * meanwhile: sets *if_match to the header line "If-Match: \"ETAG\"" with doc's etag (NULL when
 * doc has none; the caller frees it) and removes the members the server sets itself (the etag and
 * the timestamps). Returns 0, or -1 after printing why. */
int http_prepare_rewrite(json_t *doc, char **if_match);

/* DELETEs path and, unless --json, prints "Deleted <subject>." Returns CTL_OK, or reports the
 * error and returns CTL_FAIL. */
int http_delete(struct ctl *ctl, const char *path, const char *subject);

/* Runs a paged query (POST path, body {"query":"*"}) and follows x-ms-continuation to the end.
 * Returns 0 and *out, a new array with every item, or CTL_FAIL after reporting the error. */
int http_query_all(struct ctl *ctl, const char *path, const char *subject, json_t **out);

/* ---- Output (provctl_output.c) ---- */

/* Prints v as indented JSON and a newline on stdout. */
void out_json(const json_t *v);

/* A copy of s fit to print on a terminal: control characters, which a terminal would act on
 * (C0, DEL, and C1 written as U+0080 to U+009F), become escapes: \n, \r, \t, \xHH for the
 * other C0 characters and DEL, \u00HH for C1; bytes that are not valid UTF-8 become \xHH; a
 * backslash becomes \\ so that no text can pass for an escape. Other text, UTF-8 included, is
 * copied as it is. (The JSON parser refuses NUL inside strings, so none reaches here.) Returns
 * NULL when out of memory; the caller frees. */
char *term_safe(const char *s);

/* A table: columns aligned, two spaces apart, the last one not padded. */
struct out_table;

struct out_table *out_table_new(size_t ncols, const char *const *headers);

/* Adds a row of ncols cells (copied; NULL prints as "-"). Control characters and bytes that are
 * not UTF-8 are copied as escapes (\n, \t, \x1b, \u0085; a backslash as \\), so that text from
 * the server cannot act on the terminal or break the table's lines. */
void out_table_add(struct out_table *t, const char *const *cells);

/* Prints the table on stdout, or empty_msg instead when it has no rows, then frees it. */
void out_table_print(struct out_table *t, const char *empty_msg);

/* A listing of "Label: value" lines with the values aligned. */
struct out_kv;

struct out_kv *out_kv_new(void);

/* Adds a line (value copied, escaped as out_table_add does; NULL values are skipped, so absent
 * fields leave no line). */
void out_kv_add(struct out_kv *kv, const char *label, const char *value);

/* Prints the listing on stdout and frees it (values are wiped: they may be keys). */
void out_kv_print(struct out_kv *kv);

/* A member of a JSON object and the label it gets in listings. */
struct out_member {
    const char *member;
    const char *label;
};

/* Adds a line per member of o that is present, in the order of m. */
void out_kv_members(struct out_kv *kv, const json_t *o, const struct out_member *m, size_t n);

/* Prints doc as indented JSON with --json, else as a listing of its members in fields. */
void out_doc(const struct ctl *ctl, const json_t *doc, const struct out_member *fields, size_t n);

/* Adds a row to a table of ncols columns whose cells are the members of o named in members. */
void out_table_add_members(struct out_table *t, const json_t *o, const char *const *members);

/* One page of a listing the admin API pages by sequence number (the audit log, the event
 * deliveries): an object with an array of items and "next", the number to pass as after. */
struct seq_page {
    const char *path;    /* the GET, with its query */
    const char *subject; /* names the listing in errors */
    const char *items;   /* the member of the answer holding the items: "records" */
    size_t ncols;
    const char *const *hdr;     /* column headers */
    const char *const *members; /* the item member shown in each column */
    const char *empty;          /* printed instead of an empty table */
    long long limit;            /* the page size asked for */
    const char *again;          /* the command to read on with, "--after NEXT" appended */
};

/* Gets the page and prints it: the answer with --json, else a table; a full page adds a line on
 * stderr (so that stdout stays a table) telling how to read on. Returns CTL_OK, or CTL_FAIL
 * after reporting the error. */
int out_seq_page(struct ctl *ctl, const struct seq_page *p);

/* A listing of every item of a paged query (http_query_all): POST path, items in ID order. */
struct query_list {
    const char *path;    /* the query's path: "/endpoints/query" */
    const char *subject; /* names the listing in errors */
    size_t ncols;
    const char *const *hdr;     /* column headers */
    const char *const *members; /* the item member shown in each column */
    const char *empty;          /* printed instead of an empty table */
};

/* Runs the query to its end and prints the items: as a JSON array with --json, else a table.
 * Returns CTL_OK, or CTL_FAIL after reporting the error. */
int out_query_list(struct ctl *ctl, const struct query_list *l);

/* Readable text of member key of object o: strings as they are, numbers and booleans written
 * out, arrays of strings joined with ", ", other values as compact JSON. Returns NULL when the
 * member is absent or null; otherwise a string the caller frees. */
char *out_field(const json_t *o, const char *key);

#endif
