/* The machine's "physics" that bound provd's rates, measured on one core: HMAC-SHA256 of 64
 * bytes (as common/hmac.c computes it); durable SQLite WAL inserts (one per transaction with
 * synchronous=FULL and NORMAL, and 1000 per transaction); the public-key operations of a TLS 1.3
 * handshake (ECDSA P-256, X25519); a P-256 public key made from its SubjectPublicKeyInfo, by
 * OpenSSL's decoders and by daemon/spki.c (a CSR's key); and, given provd's
 * certificate, whole TLS handshakes in memory (no sockets), timed separately for the server and for
 * a client that verifies the server certificate. Benchmarks print provd's figures beside these,
 * from the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "hmac.h"
#include "spki.h"
#include "timefmt.h"

static double hmac_rate(double seconds) {
    unsigned char key[64], msg[64], out[HMAC_SHA256_LEN];
    memset(key, 7, sizeof(key));
    memset(msg, 9, sizeof(msg));
    uint64_t start = time_mono_us(), n = 0;
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        for (int i = 0; i < 1000; i++) {
            hmac_sha256(key, sizeof(key), msg, sizeof(msg), out);
            msg[0] = out[0];
        }
        n += 1000;
    }
    return (double)n / ((double)(time_mono_us() - start) / 1e6);
}

/* Inserts rows of about a registration's size for `seconds`, per_txn rows per transaction. */
static double sqlite_rate(const char *dir, const char *sync, int per_txn, double seconds) {
    char path[512];
    snprintf(path, sizeof(path), "%s/physics-%s-%d.db", dir, sync, per_txn);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    char pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA synchronous=%s", sync);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE TABLE t(id TEXT PRIMARY KEY, doc TEXT)", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?, ?)", -1, &ins, NULL) != SQLITE_OK) {
        fprintf(stderr, "physics: sqlite: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    static const char doc[] =
        "{\"deviceId\":\"device-000000\",\"assignedHub\":\"hub-a.example.com\","
        "\"status\":\"assigned\",\"substatus\":\"initialAssignment\"}";
    uint64_t start = time_mono_us(), n = 0;
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < per_txn; i++, n++) {
            char id[32];
            snprintf(id, sizeof(id), "device-%llu", (unsigned long long)n);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, doc, -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fprintf(stderr, "physics: insert: %s\n", sqlite3_errmsg(db));
                exit(1);
            }
            sqlite3_reset(ins);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double rate = (double)n / ((double)(time_mono_us() - start) / 1e6);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    for (const char *suffix = ""; suffix;
         suffix = *suffix ? (suffix[1] == 'w' ? "-shm" : NULL) : "-wal") {
        char p[600];
        snprintf(p, sizeof(p), "%s%s", path, suffix);
        unlink(p);
    }
    return rate;
}

static void crypto_fail(const char *what) {
    fprintf(stderr, "physics: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* ECDSA P-256 signatures (or verifications) of a SHA-256 digest per second: the server signs
 * once per full handshake, the client verifies that signature and the certificate's. */
static double ecdsa_rate(int verify, double seconds) {
    unsigned char dgst[32], sig[128];
    size_t siglen = sizeof(sig);
    memset(dgst, 5, sizeof(dgst));
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_PKEY_CTX *ctx = key ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    if (!ctx || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_sign(ctx, sig, &siglen, dgst, sizeof(dgst)) != 1 ||
        (verify && EVP_PKEY_verify_init(ctx) != 1))
        crypto_fail("ECDSA set-up");
    uint64_t start = time_mono_us(), n = 0;
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        for (int i = 0; i < 100; i++) {
            size_t len = sizeof(sig);
            if (verify ? EVP_PKEY_verify(ctx, sig, siglen, dgst, sizeof(dgst)) != 1
                       : EVP_PKEY_sign(ctx, sig, &len, dgst, sizeof(dgst)) != 1)
                crypto_fail("ECDSA");
        }
        n += 100;
    }
    double rate = (double)n / ((double)(time_mono_us() - start) / 1e6);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rate;
}

/* P-256 public keys made from their encoded SubjectPublicKeyInfo per second: by OpenSSL's
 * d2i_PUBKEY (its provider decoders), or by daemon/spki.c as provd makes the key of a CSR. */
static double pubkey_rate(int spki, double seconds) {
    unsigned char *der = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    int len = key ? i2d_PUBKEY(key, &der) : -1;
    if (len <= 0)
        crypto_fail("public key set-up");
    uint64_t start = time_mono_us(), n = 0;
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        for (int i = 0; i < 100; i++) {
            const unsigned char *p = der;
            EVP_PKEY *got = NULL;
            if (spki) {
                SPKI_DER *s = (SPKI_DER *)ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_rptr(SPKI_DER));
                got = s ? spki_key(s) : NULL;
                ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(SPKI_DER));
            } else {
                got = d2i_PUBKEY(NULL, &p, len);
            }
            if (!got)
                crypto_fail("public key decoding");
            EVP_PKEY_free(got);
        }
        n += 100;
    }
    double rate = (double)n / ((double)(time_mono_us() - start) / 1e6);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    return rate;
}

/* X25519 key generation plus key agreement per second: what each side of a TLS 1.3 handshake
 * does for its key share. */
static double x25519_rate(double seconds) {
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (!peer)
        crypto_fail("X25519 key generation");
    uint64_t start = time_mono_us(), n = 0;
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        for (int i = 0; i < 100; i++) {
            unsigned char secret[32];
            size_t len = sizeof(secret);
            EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
            EVP_PKEY_CTX *d = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
            if (!d || EVP_PKEY_derive_init(d) != 1 || EVP_PKEY_derive_set_peer(d, peer) != 1 ||
                EVP_PKEY_derive(d, secret, &len) != 1)
                crypto_fail("X25519");
            EVP_PKEY_CTX_free(d);
            EVP_PKEY_free(k);
        }
        n += 100;
    }
    double rate = (double)n / ((double)(time_mono_us() - start) / 1e6);
    EVP_PKEY_free(peer);
    return rate;
}

/* Full TLS handshakes between a server set up as provd sets up its listener (same certificate
 * chain and key, session cache, tickets) and a client set up as provbench's (verifies the chain
 * against the CA and the address 127.0.0.1, never resumes), over an in-memory BIO pair: the
 * handshake's CPU cost without sockets, event loops or HTTP. Sets the µs each side spent. */
static void handshake_cost(const char *cert, const char *key, const char *ca, double seconds,
                           double *server_us, double *client_us) {
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char sid_ctx[] = "provd";
    if (!sctx || !cctx || SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(sctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(cctx, ca, NULL) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(cctx), "127.0.0.1") != 1)
        crypto_fail("TLS set-up");
    SSL_CTX_set_options(sctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(sctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    uint64_t s_us = 0, c_us = 0, n = 0, start = time_mono_us();
    while (time_mono_us() - start < (uint64_t)(seconds * 1e6)) {
        uint64_t t0 = time_mono_us();
        SSL *c = SSL_new(cctx);
        BIO *cb = NULL, *sb = NULL;
        if (!c || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
            crypto_fail("TLS client");
        SSL_set_bio(c, cb, cb);
        SSL_set_connect_state(c);
        uint64_t t1 = time_mono_us();
        SSL *s = SSL_new(sctx);
        if (!s)
            crypto_fail("TLS server");
        SSL_set_bio(s, sb, sb);
        SSL_set_accept_state(s);
        uint64_t t2 = time_mono_us();
        c_us += t1 - t0;
        s_us += t2 - t1;
        int c_done = 0, s_done = 0;
        for (int round = 0; round < 20 && !(c_done && s_done); round++) {
            t0 = time_mono_us();
            c_done = c_done || SSL_do_handshake(c) == 1;
            t1 = time_mono_us();
            s_done = s_done || SSL_do_handshake(s) == 1;
            t2 = time_mono_us();
            c_us += t1 - t0;
            s_us += t2 - t1;
        }
        if (!c_done || !s_done)
            crypto_fail("TLS handshake");
        t0 = time_mono_us();
        SSL_free(c);
        t1 = time_mono_us();
        SSL_free(s);
        t2 = time_mono_us();
        c_us += t1 - t0;
        s_us += t2 - t1;
        n++;
    }
    *server_us = (double)s_us / (double)n;
    *client_us = (double)c_us / (double)n;
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

int main(int argc, char **argv) {
    if ((argc != 2 && argc != 5) || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr,
                "usage: physics DIR [TLS_CERT TLS_KEY CA]\n"
                "Measures on one core: HMAC-SHA256, durable SQLite inserts (DIR is a scratch\n"
                "directory on the disk under test), ECDSA P-256, X25519 and P-256 public key\n"
                "decoding (OpenSSL's and daemon/spki.c's); with provd's server\n"
                "certificate chain, key and CA (e.g. DATA/tls/server.pem DATA/tls/server.key\n"
                "DATA/ca/root.pem), also the CPU time of a full TLS handshake, each side.\n");
        return argc == 2 ? 0 : 2;
    }
    printf("physics hmac_sha256_64B_per_s=%.0f\n", hmac_rate(1.0));
    printf("physics sqlite_insert_full_1txn_per_s=%.0f\n", sqlite_rate(argv[1], "FULL", 1, 1.0));
    printf("physics sqlite_insert_normal_1txn_per_s=%.0f\n",
           sqlite_rate(argv[1], "NORMAL", 1, 1.0));
    printf("physics sqlite_insert_full_1000txn_per_s=%.0f\n",
           sqlite_rate(argv[1], "FULL", 1000, 1.0));
    printf("physics ecdsa_p256_sign_per_s=%.0f\n", ecdsa_rate(0, 1.0));
    printf("physics ecdsa_p256_verify_per_s=%.0f\n", ecdsa_rate(1, 1.0));
    printf("physics x25519_keygen_derive_per_s=%.0f\n", x25519_rate(1.0));
    printf("physics p256_pubkey_d2i_per_s=%.0f\n", pubkey_rate(0, 1.0));
    printf("physics p256_pubkey_spki_per_s=%.0f\n", pubkey_rate(1, 1.0));
    if (argc == 5) {
        double s_us, c_us;
        handshake_cost(argv[2], argv[3], argv[4], 2.0, &s_us, &c_us);
        printf("physics tls_handshake_server_us=%.1f\n", s_us);
        printf("physics tls_handshake_client_us=%.1f\n", c_us);
    }
    return 0;
}
