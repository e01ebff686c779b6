/* Helpers shared by the configuration tests (test_config_*.c): where the sample files are,
 * reading them, and assertions on a parsed configuration. They fail the running cmocka test.
 *
 * The sample files are the specification: every file under configs/broken/ must fail with a
 * given message (test_config_errors.c), every file under configs/valid/ and every example
 * under examples/config/ must give given values (test_config_values.c). Each program takes
 * the usage: test_config_* [CONFIGS_DIR [EXAMPLES_DIR]] (defaults are compiled in). */
#ifndef CONFIG_TESTUTIL_H
#define CONFIG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

extern const char *g_configs;  /* tests/bus/configs, or argv[1] */
extern const char *g_examples; /* examples/config, or argv[2] */
void config_test_args(int argc, char **argv);

/* "<dir>/<sub>/<file>" (no <sub>/ when sub is ""), into buf. */
char *path_in(char *buf, size_t len, const char *dir, const char *sub, const char *file);
/* The whole file in a buffer of exactly its size (no terminator: overreads trip ASan). */
char *read_exact(const char *path, size_t *len);
/* Load <dir>/<sub>/<file>; fails the test with the error if it does not parse. */
void load_ok(const char *dir, const char *sub, const char *file, bus_config *cfg);
/* Every error is one line that starts with the source name. */
void assert_one_line_from(const char *err, const char *source);
/* Lookups that fail the test when the name is missing. */
const bus_topic_cfg *topic(const bus_config *cfg, const char *name);
const bus_pool_cfg *pool(const bus_config *cfg, const char *name);
void assert_topic(const bus_topic_cfg *t, const char *pool_name, uint32_t history,
                  uint64_t max_message_size, uint32_t max_held, int32_t full_wait_ms,
                  uint32_t queue_depth);
void assert_class(const bus_pool_cfg *p, unsigned i, uint64_t block_size, uint32_t count);

#endif
