/* The answer a transport collects: status, the headers the protocol needs, and a capped body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

void response_reset(prov_http_response *resp) {
    resp->status = 0;
    resp->content_type[0] = '\0';
    resp->retry_after[0] = '\0';
    resp->body_len = 0;
    if (resp->body != NULL)
        resp->body[0] = '\0';
    resp->error[0] = '\0';
}

void response_clear_headers(prov_http_response *resp) {
    resp->content_type[0] = '\0';
    resp->retry_after[0] = '\0';
}

void response_release(prov_http_response *resp) {
    free(resp->body);
    resp->body = NULL;
    resp->body_len = resp->body_cap = 0;
}

prov_err prov_http_response_set_status(prov_http_response *resp, int status) {
    if (resp == NULL || status < 100 || status > 599)
        return PROV_ERR_INVALID_ARG;
    resp->status = status;
    return PROV_OK;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies the len bytes of s into dst (cap bytes), truncating, NUL-terminated. */
static void copy_span(char *dst, size_t cap, const char *s, size_t len) {
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

prov_err prov_http_response_add_header(prov_http_response *resp, const char *name, size_t name_len,
                                       const char *value, size_t value_len) {
    if (resp == NULL || name == NULL || value == NULL)
        return PROV_ERR_INVALID_ARG;
    while (value_len > 0 && is_blank(*value)) {
        value++;
        value_len--;
    }
    while (value_len > 0 && is_blank(value[value_len - 1]))
        value_len--;
    if (name_len == strlen("Content-Type") && strncasecmp(name, "Content-Type", name_len) == 0)
        copy_span(resp->content_type, sizeof(resp->content_type), value, value_len);
    else if (name_len == strlen("Retry-After") && strncasecmp(name, "Retry-After", name_len) == 0)
        copy_span(resp->retry_after, sizeof(resp->retry_after), value, value_len);
    return PROV_OK;
}

prov_err prov_http_response_append_body(prov_http_response *resp, const void *data, size_t len) {
    size_t need;

    if (resp == NULL || (data == NULL && len > 0))
        return PROV_ERR_INVALID_ARG;
    if (len > PROV_MAX_RESPONSE_BODY || resp->body_len > PROV_MAX_RESPONSE_BODY - len)
        return PROV_ERR_PROTOCOL;
    need = resp->body_len + len + 1;
    if (need > resp->body_cap) {
        size_t cap = resp->body_cap > 0 ? resp->body_cap : 4096;
        char *grown;

        while (cap < need)
            cap *= 2;
        grown = realloc(resp->body, cap);
        if (grown == NULL)
            return PROV_ERR_NOMEM;
        resp->body = grown;
        resp->body_cap = cap;
    }
    if (len > 0)
        memcpy(resp->body + resp->body_len, data, len);
    resp->body_len += len;
    resp->body[resp->body_len] = '\0';
    return PROV_OK;
}

void prov_http_response_set_error(prov_http_response *resp, const char *msg) {
    if (resp == NULL || msg == NULL)
        return;
    snprintf(resp->error, sizeof(resp->error), "%s", msg);
}

int response_is_json(const prov_http_response *resp) {
    static const char json[] = "application/json";
    const size_t n = sizeof(json) - 1;
    const char *rest = resp->content_type + n;

    if (strncasecmp(resp->content_type, json, n) != 0)
        return 0;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}
