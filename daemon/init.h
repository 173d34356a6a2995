/* `provd init`: a new data directory with its CA, TLS certificate, settings, store and first
 * admin token. */
#ifndef PROVD_INIT_H
#define PROVD_INIT_H

#include <stddef.h>

#include "pki.h"

struct init_opts {
    const char *data_dir;
    const char *id_scope; /* NULL: generated */
    char **hostnames;     /* extra names for the TLS certificate */
    size_t nhostnames;
    int force;                     /* re-initialise an existing data directory */
    enum pki_key_type ca_key_type; /* key type of the root and issuing CAs (default P-256) */
};

/* Returns 0, or -1 after logging why. Prints a summary on stdout. */
int provd_init(const struct init_opts *o);

/* Writes a new admin token for the store at uri to path (0600, replaced) and keeps only its
 * SHA-256 in the store under name. Returns 0 or -1 (logged). */
int provd_token_new(const char *store_uri, const char *path, const char *name);

/* Computes the lower-case hex SHA-256 of token into hex. */
void provd_token_hash(const char *token, char hex[65]);

#endif
