/* The machine's "physics" that bound provd's rates, measured on one core: HMAC-SHA256 of 64
 * bytes, and durable SQLite WAL inserts (one per transaction with synchronous=FULL and NORMAL,
 * and 1000 per transaction). Benchmarks print provd's figures beside these, from the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hmac.h"
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
    static const char doc[] = "{\"deviceId\":\"device-000000\",\"assignedHub\":\"hub-a.example.com\","
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
    for (const char *suffix = ""; suffix; suffix = *suffix ? (suffix[1] == 'w' ? "-shm" : NULL)
                                                           : "-wal") {
        char p[600];
        snprintf(p, sizeof(p), "%s%s", path, suffix);
        unlink(p);
    }
    return rate;
}

int main(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: physics DIR\nMeasures HMAC-SHA256 and durable SQLite insert rates "
                        "on one core; DIR is a scratch directory on the disk under test.\n");
        return argc == 2 ? 0 : 2;
    }
    printf("physics hmac_sha256_64B_per_s=%.0f\n", hmac_rate(1.0));
    printf("physics sqlite_insert_full_1txn_per_s=%.0f\n", sqlite_rate(argv[1], "FULL", 1, 1.0));
    printf("physics sqlite_insert_normal_1txn_per_s=%.0f\n",
           sqlite_rate(argv[1], "NORMAL", 1, 1.0));
    printf("physics sqlite_insert_full_1000txn_per_s=%.0f\n",
           sqlite_rate(argv[1], "FULL", 1000, 1.0));
    return 0;
}
