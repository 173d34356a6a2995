/* Answers of the custom allocation webhook (custom_alloc_answer, daemon/custom_alloc.c), read
 * against four linked hosts (two of which differ only by a suffix), against one and against none,
 * with the reason buffer the pipeline gives and with shorter ones. An answer is accepted exactly
 * when it is a JSON object whose iotHubHostName names a linked host without regard to case and
 * whose initialTwin, when not null, is an object; the index returned is then that of a host the
 * name matches, the twin that object and the payload the answer's payload. A refusal returns -1
 * with a NUL-terminated UTF-8 reason that stays within its buffer. */
#include <stdio.h>
#include <strings.h>

#include <jansson.h>

#include "custom_alloc.h"
#include "fuzz.h"
#include "fuzz_err.h"

static const char *const LINKED[] = {"hub-a.example.com", "HUB-B.example.com", "hub-a", "10.0.0.7"};

/* The buffer provd's pipeline passes (pipeline.c). */
#define PIPELINE_ERRLEN 160

/* Returns the member key of obj, with JSON null taken as absent as everywhere in provd. */
static json_t *member(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Whether the answer is one the header describes, read independently of custom_alloc.c. */
static int well_formed(json_t *root, size_t nlinked) {
    json_t *hub = json_object_get(root, "iotHubHostName"), *twin = member(root, "initialTwin");

    if (!json_is_object(root) || !json_is_string(hub) || (twin != NULL && !json_is_object(twin)))
        return 0;
    for (size_t i = 0; i < nlinked; i++)
        if (strcasecmp(LINKED[i], json_string_value(hub)) == 0)
            return 1;
    return 0;
}

static void one(const uint8_t *data, size_t size, json_t *root, size_t nlinked, size_t errlen) {
    json_t *twin = NULL, *payload = NULL, *want_twin, *want_payload;
    char err[FUZZ_ERR_SIZE];
    long i;

    fuzz_err_arm(err);
    i = custom_alloc_answer((const char *)data, size, LINKED, nlinked, &twin, &payload, err,
                            errlen);
    if (i == -1) {
        fuzz_err_check("fuzz_custom_alloc", "custom_alloc_answer", err, errlen, 1);
        if (well_formed(root, nlinked)) {
            fprintf(stderr, "fuzz_custom_alloc: a well-formed answer refused: %s\n", err);
            abort();
        }
        json_decref(twin);
        json_decref(payload);
        return;
    }
    if (i < 0 || (size_t)i >= nlinked || !well_formed(root, nlinked) ||
        strcasecmp(LINKED[i], json_string_value(json_object_get(root, "iotHubHostName"))) != 0) {
        fprintf(stderr, "fuzz_custom_alloc: answer accepted as host %ld of %zu\n", i, nlinked);
        abort();
    }
    want_twin = member(root, "initialTwin");
    want_payload = member(root, "payload");
    if ((twin != NULL && !json_is_object(twin)) || (twin == NULL) != (want_twin == NULL) ||
        (twin != NULL && !json_equal(twin, want_twin)) ||
        (payload == NULL) != (want_payload == NULL) ||
        (payload != NULL && !json_equal(payload, want_payload))) {
        fprintf(stderr, "fuzz_custom_alloc: twin or payload not those of the answer\n");
        abort();
    }
    json_decref(twin);
    json_decref(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The body as custom_alloc.c parses it, NULL when it is not JSON. */
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    size_t nlinked = sizeof(LINKED) / sizeof(LINKED[0]);

    one(data, size, root, nlinked, PIPELINE_ERRLEN);
    one(data, size, root, 1, PIPELINE_ERRLEN);
    one(data, size, root, 0, PIPELINE_ERRLEN);
    /* A shorter buffer, of a length the input chooses, cuts the reason at any byte. */
    one(data, size, root, nlinked, 1 + size % 96);
    json_decref(root);
    return 0;
}
