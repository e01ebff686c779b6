/* Parsing configuration text (private to bus/): the walk over the JSON tree that checks every
 * key, type and limit. See docs/config.md. */
#ifndef BUS_CONFIG_PARSE_H
#define BUS_CONFIG_PARSE_H

#include <stddef.h>

#include "config_model.h"

/* Parse and validate JSON text. `source` names it in errors (a file name, "<default>").
 * On error returns SHMBUS_ECONFIG and writes into err (if not NULL) one line:
 *   "<source>:<line>:<col>: syntax error: ..."   for malformed JSON
 *   "<source>: $.topics[2].pool: pool \"big\" is not defined"   for everything else
 * (the JSON path of the offending value, then the reason). */
int bus_config_parse(const char *text, size_t len, const char *source, bus_config *cfg,
                     char *err, size_t errlen);

#endif
