/* libFuzzer harness: JSON configuration parsing and validation. Any input must give either a
 * valid configuration or SHMBUS_ECONFIG with a one-line message naming the source. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bus_config cfg;
    char err[BUS_ERR_MAX];
    err[0] = 0;
    int rc = bus_config_parse((const char *)data, size, "fuzz.json", &cfg, err, sizeof err);
    if (rc != 0 && (rc != SHMBUS_ECONFIG || strncmp(err, "fuzz.json", 9) != 0 ||
                    strchr(err, '\n') != NULL))
        abort();
    if (rc == 0) {
        for (unsigned i = 0; i < cfg.ntopics; i++)
            if (!bus_config_pool(&cfg, cfg.topics[i].pool))
                abort(); /* a valid config names only pools it defines */
        (void)bus_config_memory(&cfg);
    }
    return 0;
}
