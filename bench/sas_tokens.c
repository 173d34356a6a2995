/* Prints one line per simulated device of an enrollment group, "REGID TOKEN", for load tools
 * that cannot compute HMACs themselves (wrk's Lua). Each device's key is derived from the group
 * key as a DPS device's would be. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "sas.h"
#include "timefmt.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: sas_tokens ID_SCOPE GROUP_KEY_B64 PREFIX COUNT\n"
                        "Prints COUNT lines \"PREFIX-N SAS_TOKEN\" valid for one hour.\n");
        return 2;
    }
    const char *scope = argv[1], *group_key = argv[2], *prefix = argv[3];
    long count = strtol(argv[4], NULL, 10);
    int64_t expiry = time_now_unix() + 3600;
    for (long i = 0; i < count; i++) {
        char regid[160], sr[320];
        const char *why = NULL;
        snprintf(regid, sizeof(regid), "%s-%ld", prefix, i);
        snprintf(sr, sizeof(sr), "%s/registrations/%s", scope, regid);
        char *key = derive_device_key(group_key, regid, &why);
        char *tok = key ? sas_build(sr, key, expiry, &why) : NULL;
        if (!tok) {
            fprintf(stderr, "sas_tokens: %s\n", why ? why : "failed");
            free(key);
            return 1;
        }
        printf("%s %s\n", regid, tok);
        free(tok);
        free(key);
    }
    return 0;
}
