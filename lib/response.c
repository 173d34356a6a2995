/* The answers of the DPS device API, read with jansson into prov_result, and prov_result back
 * into JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void result_clear(prov_result *res) {
    free(res->operation_id);
    free(res->status);
    free(res->registration_id);
    free(res->device_id);
    free(res->assigned_hub);
    free(res->substatus);
    free(res->created_at);
    free(res->updated_at);
    free(res->etag);
    free(res->enrollment_group_id);
    free(res->payload);
    free(res->error_message);
    free(res->tracking_id);
    free(res->endpoint_host);
    free(res->endpoint_protocol);
    free(res->trust_bundle);
    free(res->configuration);
    free(res->issued_chain_pem);
    free(res->issued_ca_pem);
    memset(res, 0, sizeof(*res));
}

void prov_result_free(prov_result *result) {
    if (result == NULL)
        return;
    result_clear(result);
    free(result);
}

/* Sets *slot to a copy of s (NULL stays NULL). Returns -1 when out of memory. */
static int dup_opt(char **slot, const char *s) {
    if (s == NULL)
        return 0;
    *slot = strdup(s);
    return *slot != NULL ? 0 : -1;
}

/* Reads an errorCode: DPS sends a number; a string of digits is taken too. Other types read as
 * 0 (no code), since an error answer stays an error whatever its code looks like. */
static long error_code_of(json_t *v) {
    const char *s;
    char *end;
    long n;

    if (json_is_integer(v))
        return (long)json_integer_value(v);
    s = json_string_value(v);
    if (s == NULL)
        return 0;
    n = strtol(s, &end, 10);
    return end != s && *end == '\0' ? n : 0;
}

/* Parses resp's body as a JSON document when its Content-Type says JSON. Returns the document
 * (caller decrefs) or NULL with a reason in why. */
static json_t *load_json(const prov_http_response *resp, char *why, size_t whylen) {
    json_error_t jerr;
    json_t *doc;

    if (!response_is_json(resp)) {
        snprintf(why, whylen, "HTTP %d answer is not JSON (Content-Type \"%s\")", resp->status,
                 resp->content_type);
        return NULL;
    }
    doc = json_loadb(resp->body != NULL ? resp->body : "", resp->body_len, 0, &jerr);
    if (doc == NULL)
        snprintf(why, whylen, "HTTP %d answer is not valid JSON: %s (line %d, column %d)",
                 resp->status, jerr.text, jerr.line, jerr.column);
    return doc;
}

int result_payload_fields(prov_result *res, json_t *payload) {
    json_t *ep = json_object_get(payload, "endpoint");
    json_t *port = json_object_get(ep, "port"), *conf = json_object_get(payload, "configuration");

    /* The payload of another DPS server may be anything: only provd's shape is read, and a
     * member of another type is taken as absent. */
    if (dup_opt(&res->endpoint_host, json_string_value(json_object_get(ep, "host"))) != 0 ||
        dup_opt(&res->endpoint_protocol, json_string_value(json_object_get(ep, "protocol"))) != 0 ||
        dup_opt(&res->trust_bundle, json_string_value(json_object_get(ep, "trustBundle"))) != 0)
        return -1;
    if (json_is_integer(port) && json_integer_value(port) > 0 && json_integer_value(port) < 65536)
        res->endpoint_port = (int)json_integer_value(port);
    if (conf != NULL && !json_is_null(conf) &&
        (res->configuration = json_dumps(conf, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return -1;
    return 0;
}

prov_err response_parse_registration(const prov_http_response *resp, prov_result *res,
                                     enum answer_kind *kind, char *why, size_t whylen) {
    const char *opid = NULL, *status = NULL, *regid = NULL, *devid = NULL, *hub = NULL;
    const char *substatus = NULL, *created = NULL, *updated = NULL, *etag = NULL;
    const char *group = NULL, *x509_group = NULL, *errmsg = NULL;
    json_t *doc, *state = NULL, *payload = NULL, *errcode = NULL, *chain = NULL;
    json_error_t jerr;
    prov_err rc = PROV_ERR_PROTOCOL;

    doc = load_json(resp, why, whylen);
    if (doc == NULL)
        return PROV_ERR_PROTOCOL;
    if (json_unpack_ex(doc, &jerr, 0, "{s?s, s:s, s?o}", "operationId", &opid, "status", &status,
                       "registrationState", &state) != 0) {
        snprintf(why, whylen, "HTTP %d answer: %s", resp->status, jerr.text);
        goto out;
    }
    if (state != NULL &&
        json_unpack_ex(state, &jerr, 0,
                       "{s?s, s?s, s?s, s?s, s?s, s?s, s?s, s?{s?s}, s?{s?s}, s?o, s?o, s?s, s?o}",
                       "registrationId", &regid, "deviceId", &devid, "assignedHub", &hub,
                       "substatus", &substatus, "createdDateTimeUtc", &created,
                       "lastUpdatedDateTimeUtc", &updated, "etag", &etag, "symmetricKey",
                       "enrollmentGroupId", &group, "x509", "enrollmentGroupId", &x509_group,
                       "payload", &payload, "errorCode", &errcode, "errorMessage", &errmsg,
                       "issuedCertificateChain", &chain) != 0) {
        snprintf(why, whylen, "HTTP %d answer: registrationState: %s", resp->status, jerr.text);
        goto out;
    }

    if (strcmp(status, "assigned") == 0) {
        if (devid == NULL || devid[0] == '\0' || hub == NULL || hub[0] == '\0') {
            snprintf(why, whylen, "assigned answer without deviceId or assignedHub");
            goto out;
        }
        *kind = ANSWER_ASSIGNED;
    } else if (strcmp(status, "assigning") == 0) {
        if (opid == NULL || opid[0] == '\0') {
            snprintf(why, whylen, "assigning answer without operationId");
            goto out;
        }
        *kind = ANSWER_ASSIGNING;
    } else if (strcmp(status, "failed") == 0 || strcmp(status, "disabled") == 0) {
        *kind = ANSWER_FAILED;
    } else {
        snprintf(why, whylen, "unexpected registration status \"%.64s\"", status);
        goto out;
    }

    rc = PROV_ERR_NOMEM;
    res->http_status = resp->status;
    res->error_code = error_code_of(errcode);
    if (dup_opt(&res->operation_id, opid) != 0 || dup_opt(&res->status, status) != 0 ||
        dup_opt(&res->registration_id, regid) != 0 || dup_opt(&res->device_id, devid) != 0 ||
        dup_opt(&res->assigned_hub, hub) != 0 || dup_opt(&res->substatus, substatus) != 0 ||
        dup_opt(&res->created_at, created) != 0 || dup_opt(&res->updated_at, updated) != 0 ||
        dup_opt(&res->etag, etag) != 0 ||
        dup_opt(&res->enrollment_group_id, group ? group : x509_group) != 0 ||
        dup_opt(&res->error_message, errmsg) != 0)
        goto out;
    if (payload != NULL &&
        ((res->payload = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL ||
         result_payload_fields(res, payload) != 0))
        goto out;
    /* A chain comes with the final answer only; a malformed one fails the registration, as the
     * device would otherwise hold a key without its certificate. */
    if (chain != NULL && *kind == ANSWER_ASSIGNED &&
        (rc = chain_parse(chain, res, why, whylen)) != PROV_OK)
        goto out;
    rc = PROV_OK;
out:
    if (rc != PROV_OK) {
        result_clear(res);
        if (rc == PROV_ERR_NOMEM)
            snprintf(why, whylen, "out of memory");
    }
    json_decref(doc);
    return rc;
}

prov_err response_parse_error(const prov_http_response *resp, prov_result *res) {
    char ignored[ERRMSG_MAX];
    json_t *doc = load_json(resp, ignored, sizeof(ignored));
    prov_err rc = PROV_OK;

    res->http_status = resp->status;
    if (!json_is_object(doc))
        goto out;
    res->error_code = error_code_of(json_object_get(doc, "errorCode"));
    if (dup_opt(&res->error_message, json_string_value(json_object_get(doc, "message"))) != 0 ||
        dup_opt(&res->tracking_id, json_string_value(json_object_get(doc, "trackingId"))) != 0)
        rc = PROV_ERR_NOMEM;
out:
    json_decref(doc);
    return rc;
}

/* Adds key: s to o when s is not NULL. Returns -1 when out of memory. */
static int put_str(json_t *o, const char *key, const char *s) {
    return s != NULL ? json_object_set_new(o, key, json_string(s)) : 0;
}

/* {"host", "port", "protocol"} of the endpoint the payload named (port and protocol when
 * known); NULL when out of memory, which json_object_set_new reports. */
static json_t *endpoint_json(const prov_result *res) {
    json_t *o = json_pack("{s:s}", "host", res->endpoint_host);

    if (o != NULL && ((res->endpoint_port > 0 &&
                       json_object_set_new(o, "port", json_integer(res->endpoint_port)) != 0) ||
                      put_str(o, "protocol", res->endpoint_protocol) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *result_to_json_object(const prov_result *res, prov_err *err) {
    json_t *o = json_object(), *payload = NULL;
    int failed;

    *err = PROV_ERR_NOMEM;
    if (o == NULL)
        return NULL;
    if (res->payload != NULL) {
        payload = json_loads(res->payload, JSON_DECODE_ANY, NULL);
        if (payload == NULL) {
            *err = PROV_ERR_PROTOCOL;
            goto fail;
        }
    }
    failed = res->status == NULL || strcmp(res->status, "assigned") != 0;
    if (put_str(o, "registrationId", res->registration_id) != 0 ||
        put_str(o, "deviceId", res->device_id) != 0 ||
        put_str(o, "assignedHub", res->assigned_hub) != 0 ||
        put_str(o, "status", res->status) != 0 || put_str(o, "substatus", res->substatus) != 0 ||
        put_str(o, "createdDateTimeUtc", res->created_at) != 0 ||
        put_str(o, "lastUpdatedDateTimeUtc", res->updated_at) != 0 ||
        put_str(o, "etag", res->etag) != 0 || put_str(o, "operationId", res->operation_id) != 0 ||
        put_str(o, "enrollmentGroupId", res->enrollment_group_id) != 0 ||
        (payload != NULL && json_object_set(o, "payload", payload) != 0) ||
        (failed && res->http_status != 0 &&
         json_object_set_new(o, "httpStatus", json_integer(res->http_status)) != 0) ||
        (res->error_code != 0 &&
         json_object_set_new(o, "errorCode", json_integer(res->error_code)) != 0) ||
        put_str(o, "errorMessage", res->error_message) != 0 ||
        put_str(o, "trackingId", res->tracking_id) != 0 ||
        (res->endpoint_host != NULL && json_object_set_new(o, "endpoint", endpoint_json(res)) != 0))
        goto fail;
    json_decref(payload);
    *err = PROV_OK;
    return o;
fail:
    json_decref(payload);
    json_decref(o);
    return NULL;
}

prov_err prov_result_to_json(const prov_result *result, char **json) {
    json_t *o;
    prov_err rc;

    if (result == NULL || json == NULL)
        return PROV_ERR_INVALID_ARG;
    *json = NULL;
    o = result_to_json_object(result, &rc);
    if (o == NULL)
        return rc;
    *json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *json != NULL ? PROV_OK : PROV_ERR_NOMEM;
}
