/* provd.json (daemon/config.c): config_load reads a file, so each input is written to provd.json
 * in a data directory made once per process and removed at exit. A file it accepts must leave
 * every number in the range config_load enforces. */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct provd_config cfg;
    char err[512];
    const char *dir;

    dir = fuzz_write_file("fuzz_config", "provd-fuzz", "provd.json", data, size);
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
