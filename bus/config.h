/* Domain configuration (private to bus/; tests and tools reach it through the public API):
 * what the rest of bus/ includes. The configuration's types, limits, default and lookups are
 * config_model.h's, parsing text config_parse.h's, the size grammar config_size.h's; reading a
 * file is config.c's. See
 * docs/config.md. */
#ifndef BUS_CONFIG_H
#define BUS_CONFIG_H

#include <stddef.h>

#include "config_model.h"
#include "config_parse.h"
#include "config_size.h"

/* Read and parse a file. A file that cannot be read gives SHMBUS_ENOENT / SHMBUS_EACCES with
 * "<path>: <strerror>" in err. */
int bus_config_load(const char *path, bus_config *cfg, char *err, size_t errlen);

#endif
