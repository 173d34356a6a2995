/* provd.json (daemon/config.c): config_load reads a file, so each input is written to provd.json
 * in a data directory made once per process and removed at exit. A file it accepts must leave
 * every number in the range config_load enforces. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char dir[64];
static char path[96];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

static void setup(void) {
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || tmp[0] == '\0' ||
        (size_t)snprintf(dir, sizeof(dir), "%s/provd-fuzz-XXXXXX", tmp) >= sizeof(dir))
        snprintf(dir, sizeof(dir), "/tmp/provd-fuzz-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz_config: mkdtemp: %s\n", strerror(errno));
        abort();
    }
    snprintf(path, sizeof(path), "%s/provd.json", dir);
    atexit(cleanup);
}

static void write_input(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");

    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_config: %s: %s\n", path, strerror(errno));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct provd_config cfg;
    char err[512];

    if (dir[0] == '\0')
        setup();
    write_input(data, size);
    config_defaults(&cfg, dir);
    err[0] = '\0';
    if (config_load(&cfg, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
    } else if (cfg.workers < 1 || cfg.workers > 256 || cfg.max_body_bytes < 1024 ||
               cfg.max_body_bytes > 64 * 1024 * 1024 || cfg.idle_timeout_s < 1 ||
               cfg.idle_timeout_s > 86400 || cfg.sas_max_lifetime_s < 0 ||
               cfg.commit_batch_max < 1 || cfg.commit_batch_max > 65536 || cfg.data_dir == NULL ||
               strcmp(cfg.data_dir, dir) != 0) {
        abort();
    }
    config_free(&cfg);
    return 0;
}
