/* HTTP Basic credentials of EST requests (est_basic_parse, daemon/est.c). A refused header
 * allocates nothing; an accepted one gives a non-empty user without ':' that fits the buffer,
 * and a user and password free of control characters, which encoded back into a Basic header
 * parse to the same credentials. A user buffer one byte too small is refused. */
#include <stdio.h>

#include <openssl/crypto.h>

#include "base64.h"
#include "est.h"
#include "fuzz.h"

/* The registration ID is the user: the longest ID and its NUL. */
#define USER_MAX 129

static int has_control(const char *s) {
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void free_password(char *p) {
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

/* Rebuilds "Basic base64(user:password)" and checks that it parses back to the same. */
static void check_rebuilt(const char *user, const char *password) {
    size_t ulen = strlen(user), plen = strlen(password);
    char *cred = malloc(ulen + 1 + plen + 1), *b64, *header, user2[USER_MAX], *password2 = NULL;

    if (cred == NULL)
        abort();
    memcpy(cred, user, ulen);
    cred[ulen] = ':';
    memcpy(cred + ulen + 1, password, plen + 1);
    b64 = b64_encode(cred, ulen + 1 + plen);
    if (b64 == NULL || (header = malloc(strlen(b64) + sizeof("Basic "))) == NULL)
        abort();
    sprintf(header, "Basic %s", b64);
    if (est_basic_parse(header, user2, sizeof(user2), &password2) != 0 || password2 == NULL ||
        strcmp(user2, user) != 0 || strcmp(password2, password) != 0)
        abort();
    free_password(password2);
    /* The user and its NUL need ulen + 1 bytes; one fewer is refused without allocating. */
    password2 = (char *)1;
    if (est_basic_parse(header, user2, ulen, &password2) != -1 || password2 != NULL)
        abort();
    OPENSSL_cleanse(cred, ulen + 1 + plen);
    free(cred);
    free(header);
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *header = fuzz_cstr(data, size), user[USER_MAX], *password = (char *)1;

    memset(user, 0, sizeof(user));
    if (est_basic_parse(header, user, sizeof(user), &password) != 0) {
        if (password != NULL)
            abort();
    } else {
        if (password == NULL || user[0] == '\0' || strlen(user) >= sizeof(user) ||
            strchr(user, ':') != NULL || has_control(user) || has_control(password))
            abort();
        check_rebuilt(user, password);
        free_password(password);
    }
    free(header);
    return 0;
}
