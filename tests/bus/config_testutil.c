/* Helpers shared by the configuration tests: see config_testutil.h. */
#include "config_testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

const char *g_configs = SHMBUS_TEST_CONFIG_DIR;
const char *g_examples = SHMBUS_EXAMPLES_CONFIG_DIR;

void config_test_args(int argc, char **argv)
{
    if (argc > 1)
        g_configs = argv[1];
    if (argc > 2)
        g_examples = argv[2];
}

char *path_in(char *buf, size_t len, const char *dir, const char *sub, const char *file)
{
    snprintf(buf, len, "%s/%s%s%s", dir, sub, *sub ? "/" : "", file);
    return buf;
}

/* The whole file in a buffer of exactly its size (no terminator: overreads trip ASan). */
char *read_exact(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

void load_ok(const char *dir, const char *sub, const char *file, bus_config *cfg)
{
    char path[512], err[BUS_ERR_MAX];
    int rc = bus_config_load(path_in(path, sizeof path, dir, sub, file), cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: rc %d: %s", path, rc, err);
}

/* Every error is one line that starts with the source name. */
void assert_one_line_from(const char *err, const char *source)
{
    if (strncmp(err, source, strlen(source)) != 0)
        fail_msg("error does not start with \"%s\": %s", source, err);
    if (strchr(err, '\n') || strchr(err, '\r'))
        fail_msg("error is not one line: %s", err);
}

const bus_topic_cfg *topic(const bus_config *cfg, const char *name)
{
    const bus_topic_cfg *t = bus_config_topic(cfg, name);
    if (!t)
        fail_msg("topic %s is missing", name);
    return t;
}

const bus_pool_cfg *pool(const bus_config *cfg, const char *name)
{
    const bus_pool_cfg *p = bus_config_pool(cfg, name);
    if (!p)
        fail_msg("pool %s is missing", name);
    return p;
}

void assert_topic(const bus_topic_cfg *t, const char *pool_name, uint32_t history,
                         uint64_t max_message_size, uint32_t max_held, int32_t full_wait_ms,
                         uint32_t queue_depth)
{
    assert_string_equal(t->pool, pool_name);
    assert_int_equal(t->history, history);
    assert_int_equal(t->max_message_size, max_message_size);
    assert_int_equal(t->max_held, max_held);
    assert_int_equal(t->full_wait_ms, full_wait_ms);
    assert_int_equal(t->queue_depth, queue_depth);
}

void assert_class(const bus_pool_cfg *p, unsigned i, uint64_t block_size, uint32_t count)
{
    assert_true(i < p->nclasses);
    assert_int_equal(p->classes[i].block_size, block_size);
    assert_int_equal(p->classes[i].count, count);
}
