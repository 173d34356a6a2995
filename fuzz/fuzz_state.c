/* identity.json (lib/state.c): prov_state_load reads a directory, so each input is written to
 * identity.json in a state directory made once per process and removed at exit. A refused file
 * is reported as corrupt with a reason and gives no result; an accepted one is an assigned
 * identity with every required field, and renders back as JSON the way prov_result_to_json
 * does. */
#include "fuzz.h"
#include "internal.h"

static int nonempty(const char *s) {
    return s != NULL && s[0] != '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    prov_result *r = (prov_result *)1; /* must be overwritten whatever happens */
    prov_err rc, err = PROV_ERR_NOMEM;
    char errbuf[512];
    json_t *o;
    const char *dir;

    dir = fuzz_write_file("fuzz_state", "prov-state-fuzz", PROV_STATE_FILE, data, size);
    errbuf[0] = 'x';
    errbuf[1] = '\0';
    rc = prov_state_load(dir, &r, errbuf, sizeof(errbuf));
    if (rc != PROV_OK) {
        if (rc != PROV_ERR_STATE_CORRUPT || r != NULL || errbuf[0] == '\0')
            abort();
        return 0;
    }
    if (r == NULL || errbuf[0] != '\0' || r->http_status != 0 || r->status == NULL ||
        strcmp(r->status, "assigned") != 0 || !nonempty(r->registration_id) ||
        !nonempty(r->device_id) || !nonempty(r->assigned_hub) || r->issued_chain_pem != NULL ||
        r->endpoint_port < 0 || r->endpoint_port > 65535 ||
        ((r->endpoint_host != NULL || r->configuration != NULL) && r->payload == NULL))
        abort();
    o = result_to_json_object(r, &err);
    if (o == NULL || err != PROV_OK)
        abort();
    json_decref(o);
    prov_result_free(r);
    return 0;
}
