/* The size grammar: the one parser of sizes written as text, used by configuration files
 * (bus/config_walk.c), the public API (shmbus_parse_size) and through it the tools. The
 * grammar is documented in docs/config.md ("Sizes"). */
#ifndef BUS_CONFIG_SIZE_H
#define BUS_CONFIG_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* "8MiB" -> 8388608. A non-negative integer (optionally with a fraction, e.g. "1.5MiB")
 * followed by nothing (bytes), B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB
 * (powers of 1000), optionally separated by one space; the result must be a whole number of
 * bytes that fits in 64 bits. Returns 0 or SHMBUS_EINVAL (with a reason in err, if not NULL;
 * *out is left as it is). */
int bus_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

#endif
