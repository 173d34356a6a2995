/* The library's error descriptions and version. */
#include "internal.h"

const char *prov_strerror(prov_err err) {
    switch (err) {
    case PROV_OK:
        return "success";
    case PROV_ERR_INVALID_ARG:
        return "invalid argument or missing setting";
    case PROV_ERR_NOMEM:
        return "out of memory";
    case PROV_ERR_CRYPTO:
        return "key not usable or crypto failure";
    case PROV_ERR_NETWORK:
        return "server unreachable";
    case PROV_ERR_TLS:
        return "no trusted TLS connection to the server";
    case PROV_ERR_TIMEOUT:
        return "deadline passed without a final answer";
    case PROV_ERR_REFUSED:
        return "refused by the server";
    case PROV_ERR_PROTOCOL:
        return "answer from the server not understood";
    case PROV_ERR_REGISTRATION_FAILED:
        return "registration failed";
    case PROV_ERR_STATE_NOT_FOUND:
        return "no state file";
    case PROV_ERR_STATE_CORRUPT:
        return "state file corrupt";
    case PROV_ERR_IO:
        return "file system error";
    }
    return "unknown error";
}

const char *prov_version(void) {
    return PROV_VERSION;
}
