/* Registration IDs (common/regid.c): regid_check on the input as a C string; a valid ID stays
 * valid and keeps its length once lower-cased, and holds no upper-case letter afterwards. */
#include "fuzz.h"
#include "regid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *id = fuzz_cstr(data, size);
    const char *why = NULL;
    size_t len = strlen(id);

    if (regid_check(id, &why) != 0) {
        if (why == NULL)
            abort();
        free(id);
        return 0;
    }
    if (len == 0 || len > REGID_MAX)
        abort();
    regid_lower(id);
    if (strlen(id) != len || regid_check(id, NULL) != 0)
        abort();
    for (size_t i = 0; i < len; i++)
        if (id[i] >= 'A' && id[i] <= 'Z')
            abort();
    free(id);
    return 0;
}
