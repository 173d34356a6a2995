/* The answers of register and of an operation poll (lib/response.c), as libprov reads them: the
 * body of a 200 JSON answer parsed into a prov_result, issuedCertificateChain included, and the
 * same body read as a DPS error answer. A refusal names a reason and leaves the result empty; an
 * accepted answer has what its kind needs (an assigned one a device ID and a hub, an assigning
 * one an operation ID), a chain only when assigned, and renders back as JSON the way
 * prov_result_to_json does. */
#include <stdio.h>

#include "fuzz.h"
#include "internal.h"

static void check_accepted(const prov_result *res, enum answer_kind kind) {
    prov_err err = PROV_ERR_NOMEM;
    json_t *o;

    if (res->status == NULL || res->http_status != 200)
        abort();
    switch (kind) {
    case ANSWER_ASSIGNED:
        if (strcmp(res->status, "assigned") != 0 || res->device_id == NULL ||
            res->device_id[0] == '\0' || res->assigned_hub == NULL || res->assigned_hub[0] == '\0')
            abort();
        break;
    case ANSWER_ASSIGNING:
        if (strcmp(res->status, "assigning") != 0 || res->operation_id == NULL ||
            res->operation_id[0] == '\0')
            abort();
        break;
    case ANSWER_FAILED:
        if (strcmp(res->status, "failed") != 0 && strcmp(res->status, "disabled") != 0)
            abort();
        break;
    default:
        abort();
    }
    /* A chain is read from the final answer only, and its CA part is the chain without the
     * leaf. */
    if ((res->issued_chain_pem != NULL) != (res->issued_chain_count > 0) ||
        (res->issued_ca_pem != NULL) != (res->issued_chain_count > 1) ||
        (res->issued_chain_count > 0 && kind != ANSWER_ASSIGNED))
        abort();
    if (res->endpoint_port < 0 || res->endpoint_port > 65535 ||
        ((res->endpoint_host != NULL || res->configuration != NULL) && res->payload == NULL))
        abort();
    o = result_to_json_object(res, &err);
    if (o == NULL || err != PROV_OK)
        abort();
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const prov_result empty;
    prov_http_response resp;
    prov_result res;
    enum answer_kind kind = ANSWER_FAILED;
    char why[ERRMSG_MAX];
    prov_err rc;

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    snprintf(resp.content_type, sizeof(resp.content_type), "application/json; charset=utf-8");
    resp.body = fuzz_cstr(data, size);
    resp.body_len = size;
    resp.body_cap = size + 1;

    memset(&res, 0, sizeof(res));
    why[0] = '\0';
    rc = response_parse_registration(&resp, &res, &kind, why, sizeof(why));
    if (rc == PROV_OK) {
        check_accepted(&res, kind);
    } else if (rc != PROV_ERR_PROTOCOL || why[0] == '\0' ||
               memcmp(&res, &empty, sizeof(res)) != 0) {
        abort();
    }
    result_clear(&res);

    if (response_parse_error(&resp, &res) != PROV_OK || res.http_status != 200 ||
        res.status != NULL || res.device_id != NULL)
        abort();
    result_clear(&res);

    /* The Content-Type decides before the body is looked at. */
    snprintf(resp.content_type, sizeof(resp.content_type), "text/plain");
    why[0] = '\0';
    if (response_parse_registration(&resp, &res, &kind, why, sizeof(why)) != PROV_ERR_PROTOCOL ||
        why[0] == '\0' || memcmp(&res, &empty, sizeof(res)) != 0)
        abort();

    free(resp.body);
    return 0;
}
