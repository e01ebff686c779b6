/* Configuration: the JSON schema, its error messages, sizes with units and the default.
 *
 * The sample files are the specification of the error messages: every file under
 * configs/broken/ has a row in broken_table naming a piece of the message it must produce
 * (with the JSON path or the line and column); every file under configs/valid/ and every
 * example under examples/config/ is parsed and its values checked.
 *
 * Usage: test_config [CONFIGS_DIR [EXAMPLES_DIR]] (defaults are compiled in).
 */
#include <dirent.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "shmpool.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

static const char *g_configs = SHMBUS_TEST_CONFIG_DIR;
static const char *g_examples = SHMBUS_EXAMPLES_CONFIG_DIR;

/* ---- helpers ----------------------------------------------------------------------------- */

static char *path_in(char *buf, size_t len, const char *dir, const char *sub, const char *file)
{
    snprintf(buf, len, "%s/%s%s%s", dir, sub, *sub ? "/" : "", file);
    return buf;
}

/* The whole file in a buffer of exactly its size (no terminator: overreads trip ASan). */
static char *read_exact(const char *path, size_t *len)
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

static void load_ok(const char *dir, const char *sub, const char *file, bus_config *cfg)
{
    char path[512], err[BUS_ERR_MAX];
    int rc = bus_config_load(path_in(path, sizeof path, dir, sub, file), cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: rc %d: %s", path, rc, err);
}

/* Every error is one line that starts with the source name. */
static void assert_one_line_from(const char *err, const char *source)
{
    if (strncmp(err, source, strlen(source)) != 0)
        fail_msg("error does not start with \"%s\": %s", source, err);
    if (strchr(err, '\n') || strchr(err, '\r'))
        fail_msg("error is not one line: %s", err);
}

static const bus_topic_cfg *topic(const bus_config *cfg, const char *name)
{
    const bus_topic_cfg *t = bus_config_topic(cfg, name);
    if (!t)
        fail_msg("topic %s is missing", name);
    return t;
}

static const bus_pool_cfg *pool(const bus_config *cfg, const char *name)
{
    const bus_pool_cfg *p = bus_config_pool(cfg, name);
    if (!p)
        fail_msg("pool %s is missing", name);
    return p;
}

static void assert_topic(const bus_topic_cfg *t, const char *pool_name, uint32_t history,
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

static void assert_class(const bus_pool_cfg *p, unsigned i, uint64_t block_size, uint32_t count)
{
    assert_true(i < p->nclasses);
    assert_int_equal(p->classes[i].block_size, block_size);
    assert_int_equal(p->classes[i].count, count);
}

/* ---- broken files: each must fail with SHMBUS_ECONFIG and this piece of message ------------ */

typedef struct broken_case {
    const char *file;   /* under configs/broken/ */
    const char *expect; /* pieces of the error, in order, separated by " ... " */
} broken_case;

/* Does err contain the pieces of expect in order? */
static bool matches(const char *err, const char *expect)
{
    char piece[BUS_ERR_MAX];
    const char *at = err;
    while (*expect) {
        const char *gap = strstr(expect, " ... ");
        size_t n = gap ? (size_t)(gap - expect) : strlen(expect);
        snprintf(piece, sizeof piece, "%.*s", (int)n, expect);
        if (!(at = strstr(at, piece)))
            return false;
        at += n;
        expect += gap ? n + 5 : n;
    }
    return true;
}

static const broken_case broken_table[] = {
    {"empty.json", "$: empty file"},
    {"history_holds_every_block.json",
     "$.topics[0].history: 4 would keep all 4 blocks of 8 MiB of pool \"frames\" held"},
    {"whitespace_only.json", "$: empty file"},
    {"top_level_array.json", "$: expected an object, got an array"},
    {"top_level_string.json", "$: expected an object, got a string"},
    {"syntax_missing_comma.json",
     ":3:3: syntax error: unexpected '\"' (missing ',' or ':' before it?)"},
    {"syntax_trailing_comma.json", ":3:1: syntax error: unexpected '}' (trailing comma before it)"},
    {"syntax_missing_colon.json", ":2:12: syntax error"},
    {"syntax_single_quotes.json", ":2:3: syntax error: unexpected single quote"},
    {"syntax_unclosed_string.json", ":2:13: syntax error: string is not closed on its line"},
    {"syntax_truncated.json",
     ":3:57: syntax error: unexpected end of the text (the '[' at line 2, "
     "column 12 is not closed)"},
    {"syntax_mismatched_bracket.json",
     ":2:58: syntax error: '}' does not close the '[' at line 2, column 12"},
    {"syntax_comment.json", ":2:3: syntax error: comments are not allowed in JSON"},
    {"syntax_bare_word.json", ":2:13: syntax error: unexpected 'c' (strings need double quotes"},
    {"syntax_leading_zero_mode.json", ":2:27: syntax error: number with a leading zero"},
    {"trailing_garbage.json", ":4:1: syntax error: unexpected text after the JSON value"},
    {"two_documents.json", ":2:1: syntax error: unexpected text after the JSON value"},
    {"nul_byte.json", ":2:18: syntax error: NUL byte in the text"},
    {"unknown_top_key.json",
     "$.topic: unknown key (expected one of: domain, permissions, runtime_dir, pools, "
     "topics, default_topic)"},
    {"unknown_key_not_identifier.json", "$[\"pool size\"]: unknown key"},
    {"duplicate_key.json", "$.domain: duplicate key"},
    {"domain_bad_chars.json", "$.domain: invalid domain name \"my domain\""},
    {"domain_with_dot.json",
     "$.domain: invalid domain name \"cam.front\": character '.' at offset 3 is not allowed "
     "(allowed: 1..31 of A-Z a-z 0-9 _ -)"},
    {"domain_too_long.json", "$.domain: invalid domain name \"dddddddd"},
    {"domain_not_string.json", "$.domain: expected a string, got a number"},
    {"permissions_not_object.json", "$.permissions: expected an object, got a string"},
    {"permissions_unknown_key.json",
     "$.permissions.owner: unknown key (expected one of: mode, group)"},
    {"mode_not_octal.json", "$.permissions.mode: bad mode \"0860\""},
    {"mode_too_large.json", "$.permissions.mode: bad mode \"1777\""},
    {"mode_decimal_integer.json",
     "$.permissions.mode: bad mode 660: an integer mode is read as decimal"},
    {"mode_owner_cannot_write.json",
     "$.permissions.mode: mode 0440 does not let the owner read and write"},
    {"mode_wrong_type.json",
     "$.permissions.mode: expected an octal string such as \"0660\", got a boolean"},
    {"group_unknown.json", "$.permissions.group: unknown group \"no-such-group-shmbus\""},
    {"group_negative.json", "$.permissions.group: bad gid -1"},
    {"group_wrong_type.json",
     "$.permissions.group: expected a group name or a numeric gid, got an array"},
    {"runtime_dir_relative.json",
     "$.runtime_dir: bad runtime_dir \"run/shmbus\" (an absolute path"},
    {"runtime_dir_too_long.json", "$.runtime_dir: bad runtime_dir"},
    {"pools_not_array.json", "$.pools: expected an array, got an object"},
    {"pools_empty.json", "$.pools: no pools"},
    {"pools_too_many.json", "$.pools: too many pools: 17 (at most 16)"},
    {"pool_not_object.json", "$.pools[0]: expected an object, got a string"},
    {"pool_unknown_key.json",
     "$.pools[0].block_sizee: unknown key (expected one of: name, block_size, count, classes)"},
    {"pool_missing_name.json", "$.pools[0]: missing key \"name\""},
    {"pool_bad_name.json",
     "$.pools[0].name: invalid pool name \"frames!\": character '!' at offset 6 is not "
     "allowed (allowed: 1..31 of A-Z a-z 0-9 . _ -, not starting with '.')"},
    {"pool_duplicate_name.json",
     "$.pools[1].name: pool \"frames\" is already defined at $.pools[0]"},
    {"pool_both_forms.json",
     "$.pools[0].classes: give either \"block_size\" and \"count\" or \"classes\", not both"},
    {"pool_no_blocks.json", "$.pools[0]: missing \"block_size\" and \"count\" (or \"classes\")"},
    {"pool_missing_count.json", "$.pools[0]: missing key \"count\""},
    {"pool_count_zero.json", "$.pools[0].count: must be between 1 and 1048576 (got 0)"},
    {"pool_count_too_large.json", "$.pools[0].count: must be between 1 and 1048576 (got 1048577)"},
    {"pool_count_fraction.json", "$.pools[0].count: expected an integer, got 2.5"},
    {"pool_count_string.json", "$.pools[0].count: expected an integer, got a string"},
    {"block_size_zero.json", "$.pools[0].block_size: size 0 B is out of range (1 B .. 1 TiB)"},
    {"block_size_over_1tib.json",
     "$.pools[0].block_size: size 2 TiB is out of range (1 B .. 1 TiB)"},
    {"block_size_bad_unit.json",
     "$.pools[0].block_size: bad size \"8 mb\": unknown unit \"mb\" (use B, KiB, MiB, "
     "GiB, TiB, kB, MB, GB or TB)"},
    {"block_size_negative.json",
     "$.pools[0].block_size: a size must be a whole, non-negative number of bytes"},
    {"block_size_fraction_of_byte.json",
     "$.pools[0].block_size: bad size \"1.3KiB\": not a whole number of bytes"},
    {"block_size_wrong_type.json",
     "$.pools[0].block_size: expected a size (a string such as \"8MiB\" or a number of "
     "bytes), got null"},
    {"classes_empty.json", "$.pools[0].classes: a pool needs 1 to 8 classes (got 0)"},
    {"classes_too_many.json", "$.pools[0].classes: a pool needs 1 to 8 classes (got 9)"},
    {"classes_duplicate_size.json",
     "$.pools[0].classes[2].block_size: duplicate block size 4 KiB (also in classes[0])"},
    {"classes_unknown_key.json",
     "$.pools[0].classes[0].name: unknown key (expected one of: block_size, count)"},
    {"classes_missing_block_size.json", "$.pools[0].classes[1]: missing key \"block_size\""},
    {"pool_memory_over_1tib.json",
     "$.pools[0]: pool \"huge\" needs ... of shared memory, ... over the limit of 1 TiB"},
    {"pools_total_over_1tib.json",
     "$.pools: the pools need ... of shared memory in total, ... over the limit of 1 TiB"},
    {"topics_not_array.json", "$.topics: expected an array, got an object"},
    {"topics_too_many.json", "$.topics: too many topics: 65 (at most 64"},
    {"topic_not_object.json", "$.topics[0]: expected an object, got a string"},
    {"topic_pool_not_defined.json", "$.topics[1].pool: pool \"big\" is not defined"},
    {"topic_pool_default_not_defined.json", "$.topics[0].pool: pool \"default\" is not defined"},
    {"topic_missing_pool.json", "$.topics[0]: missing key \"pool\""},
    {"topic_missing_name.json", "$.topics[0]: missing key \"name\""},
    {"topic_unknown_key.json",
     "$.topics[0].depth: unknown key (expected one of: name, pool, history, "
     "max_message_size, max_held, on_full, wait_ms, queue_depth)"},
    {"topic_name_leading_slash.json", "$.topics[0].name: invalid topic name \"/camera/front\""},
    {"topic_name_bad_chars.json", "$.topics[0].name: invalid topic name \"camera front\""},
    {"topic_name_too_long.json", "$.topics[0].name: invalid topic name \"tttt"},
    {"topic_duplicate_name.json",
     "$.topics[2].name: topic \"imu\" is already defined at $.topics[0]"},
    {"topic_pool_wrong_type.json", "$.topics[0].pool: expected a string, got a number"},
    {"history_zero.json", "$.topics[0].history: must be between 1 and 64 (got 0)"},
    {"history_too_large.json", "$.topics[0].history: must be between 1 and 64 (got 65)"},
    {"history_string.json", "$.topics[0].history: expected an integer, got a string"},
    {"max_message_size_over_block.json",
     "$.topics[0].max_message_size: 16 MiB is larger than the largest block of pool "
     "\"frames\" (8 MiB)"},
    {"max_message_size_zero.json",
     "$.topics[0].max_message_size: size 0 B is below the minimum of 1 B"},
    {"max_message_size_overflow.json",
     "$.topics[0].max_message_size: bad size \"99999999999TiB\": too large"},
    {"max_held_zero.json", "$.topics[0].max_held: must be between 1 and 1024 (got 0)"},
    {"on_full_unknown.json", "$.topics[0].on_full: expected \"fail\" or \"wait\", got \"block\""},
    {"on_full_wrong_type.json", "$.topics[0].on_full: expected a string, got a boolean"},
    {"wait_ms_with_fail.json", "$.topics[0].wait_ms: only allowed with \"on_full\": \"wait\""},
    {"wait_ms_zero.json", "$.topics[0].wait_ms: must be between 1 and 60000 (got 0)"},
    {"wait_ms_too_large.json", "$.topics[0].wait_ms: must be between 1 and 60000 (got 60001)"},
    {"queue_depth_too_large.json",
     "$.topics[0].queue_depth: must be between 1 and 1024 (got 1025)"},
    {"queue_depth_huge_number.json", "$.topics[0].queue_depth: must be between 1 and 1024"},
    {"default_topic_not_object.json", "$.default_topic: expected an object, got a string"},
    {"default_topic_with_name.json",
     "$.default_topic.name: unknown key (expected one of: pool, history, "
     "max_message_size, max_held, on_full, wait_ms, queue_depth)"},
    {"default_topic_missing_pool.json", "$.default_topic: missing key \"pool\""},
    {"default_topic_pool_not_defined.json",
     "$.default_topic.pool: pool \"default\" is not defined"},
    {"default_topic_message_too_big.json",
     "$.default_topic.max_message_size: 25 MiB is larger than the largest block of "
     "pool \"default\" (24 MiB)"},
};
#define NBROKEN (sizeof broken_table / sizeof broken_table[0])

static void test_broken_config_fails_with_file_path_and_reason(void **state)
{
    const broken_case *bc = *state;
    char path[512], err[BUS_ERR_MAX];
    bus_config cfg, before;
    memset(&cfg, 0x5a, sizeof cfg);
    before = cfg;
    int rc = bus_config_load(path_in(path, sizeof path, g_configs, "broken", bc->file), &cfg,
                             err, sizeof err);
    if (rc != SHMBUS_ECONFIG)
        fail_msg("%s: rc %d, expected SHMBUS_ECONFIG (err: %s)", bc->file, rc, err);
    assert_one_line_from(err, path);
    if (!strstr(err, bc->file))
        fail_msg("the file name is missing: %s", err);
    if (!matches(err, bc->expect))
        fail_msg("%s:\n  got:      %s\n  expected: ...%s...", bc->file, err, bc->expect);
    assert_memory_equal(&cfg, &before, sizeof cfg); /* untouched on error */

    /* From memory, in a buffer with no terminator: the same message. */
    size_t len;
    char *text = read_exact(path, &len);
    char err2[BUS_ERR_MAX];
    assert_int_equal(bus_config_parse(text, len, path, &cfg, err2, sizeof err2), SHMBUS_ECONFIG);
    assert_string_equal(err2, err);
    free(text);
}

static void test_every_broken_file_has_a_table_row(void **state)
{
    (void)state;
    char dir[512];
    DIR *d = opendir(path_in(dir, sizeof dir, g_configs, "", "broken"));
    assert_non_null(d);
    unsigned files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        bool found = false;
        for (size_t i = 0; i < NBROKEN && !found; i++)
            found = strcmp(broken_table[i].file, e->d_name) == 0;
        if (!found)
            fail_msg("configs/broken/%s has no row in broken_table", e->d_name);
    }
    closedir(d);
    assert_int_equal(files, NBROKEN);
    assert_true(NBROKEN >= 30);
}

/* ---- valid files --------------------------------------------------------------------------- */

static void test_empty_object_gives_default_pool_and_template(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "empty_object.json", &cfg);
    bus_config_default(&def);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

/* The default as docs/config.md writes it out is the default. */
static void test_default_written_out_is_the_default(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "default_written_out.json", &cfg);
    bus_config_default(&def);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

static void test_full_config_sets_every_field(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_string_equal(cfg.domain, "lab-2_cams");
    assert_int_equal(cfg.mode, 0640);
    assert_int_equal(cfg.gid, 4242);
    assert_string_equal(cfg.group, "4242");
    assert_string_equal(cfg.runtime_dir, "/run/shmbus/lab");

    assert_int_equal(cfg.npools, 2);
    assert_string_equal(cfg.pools[0].name, "frames");
    assert_int_equal(cfg.pools[0].nclasses, 1);
    assert_class(&cfg.pools[0], 0, 8 * MiB, 8);
    const bus_pool_cfg *mixed = pool(&cfg, "mixed");
    assert_int_equal(mixed->nclasses, 3); /* sorted by block size */
    assert_class(mixed, 0, 256, 1048576);
    assert_class(mixed, 1, 4 * KiB, 64);
    assert_class(mixed, 2, 1 * MiB, 65);

    assert_int_equal(cfg.ntopics, 4);
    assert_string_equal(cfg.topics[0].name, "camera/front"); /* file order */
    assert_topic(topic(&cfg, "camera/front"), "frames", 4, 6 * MiB, 4, 50, 16);
    assert_topic(topic(&cfg, "camera/rear"), "frames", 4, 8 * MiB, 8, 100, 16);
    assert_topic(topic(&cfg, "lidar/points"), "mixed", 64, 1 * MiB, 1024, 0, 1024);
    assert_topic(topic(&cfg, "status.v1_a-b"), "mixed", 4, 1500, 8, 60000, 16);

    assert_true(cfg.has_default_topic);
    assert_string_equal(cfg.default_topic.name, "");
    assert_topic(&cfg.default_topic, "mixed", 2, 64 * KiB, 3, 100, 32);
}

static void test_topics_without_pools_use_default_pool_and_no_template(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "topics_only.json", &cfg);
    bus_config_default(&def);
    assert_int_equal(cfg.npools, 1);
    assert_memory_equal(&cfg.pools[0], &def.pools[0], sizeof def.pools[0]);
    assert_int_equal(cfg.ntopics, 1);
    assert_topic(topic(&cfg, "imu"), "default", 4, 4 * KiB, 8, 100, 16);
    assert_false(cfg.has_default_topic); /* topics are listed: no template unless given */
}

static void test_pools_without_topics_get_template_on_first_pool(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "pools_only.json", &cfg);
    assert_int_equal(cfg.npools, 2);
    assert_class(pool(&cfg, "small"), 0, 2 * KiB, 32);
    assert_class(pool(&cfg, "small"), 1, 64 * KiB, 4);
    assert_class(pool(&cfg, "big"), 0, 16 * MiB, 2);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    /* history 4 would hold all 4 blocks of the 64 KiB class: the template keeps one free */
    assert_topic(&cfg.default_topic, "small", 3, 64 * KiB, 8, 100, 16);
}

static void test_sizes_are_accepted_in_every_form(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "sizes.json", &cfg);
    const bus_pool_cfg *p = pool(&cfg, "sizes.v2");
    assert_int_equal(p->nclasses, 8);
    static const uint64_t want[] = {1, 100, 1536, 2000, 512 * KiB, 1250000, 3 * MiB, 1000000000};
    for (unsigned i = 0; i < 8; i++)
        assert_class(p, i, want[i], i == 7 ? 2 : 1);
    assert_int_equal(cfg.default_topic.max_message_size, 1000000000);
}

static void test_on_full_fail_means_no_wait(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "on_full_fail.json", &cfg);
    assert_int_equal(topic(&cfg, "drop-when-full")->full_wait_ms, 0);
    assert_int_equal(topic(&cfg, "wait-default")->full_wait_ms, 100);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "default", 4, 1 * MiB, 8, 0, 16);
}

static void test_group_by_name_and_by_number(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "group_by_name.json", &cfg);
    assert_int_equal(cfg.mode, 0600); /* 384 decimal */
    assert_int_equal(cfg.gid, 0);
    assert_string_equal(cfg.group, "root");
    load_ok(g_configs, "valid", "group_numeric_string.json", &cfg);
    assert_int_equal(cfg.mode, 0777);
    assert_int_equal(cfg.gid, 54321);
    assert_string_equal(cfg.group, "54321");
}

static void test_byte_order_mark_and_crlf_are_accepted(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "bom_crlf.json", &cfg);
    assert_string_equal(cfg.domain, "crlf");
    assert_int_equal(cfg.ntopics, 0); /* "topics": [] lists none: the template applies */
    assert_true(cfg.has_default_topic);
}

static void test_camera_example(void **state)
{
    (void)state;
    bus_config cfg;
    char path[512], err[BUS_ERR_MAX];
    int rc = bus_config_load(path_in(path, sizeof path, g_examples, "", "camera.json"), &cfg,
                             err, sizeof err);
    struct group *gr = getgrnam("video");
    if (!gr) { /* a host without the group: the example cannot apply here, and says so */
        assert_int_equal(rc, SHMBUS_ECONFIG);
        assert_non_null(strstr(err, "$.permissions.group: unknown group \"video\""));
        skip();
    }
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.domain, "camera");
    assert_int_equal(cfg.mode, 0660);
    assert_int_equal(cfg.gid, (long)gr->gr_gid);
    assert_string_equal(cfg.group, "video");
    assert_string_equal(cfg.runtime_dir, "");
    assert_int_equal(cfg.npools, 2);
    assert_class(pool(&cfg, "frames"), 0, 8 * MiB, 12);
    assert_class(pool(&cfg, "small"), 0, 4 * KiB, 256);
    assert_class(pool(&cfg, "small"), 1, 64 * KiB, 64);
    assert_int_equal(cfg.ntopics, 4);
    assert_topic(topic(&cfg, "camera/front/image"), "frames", 2, 6 * MiB, 4, 50, 8);
    assert_topic(topic(&cfg, "camera/rear/image"), "frames", 2, 6 * MiB, 4, 0, 16);
    assert_topic(topic(&cfg, "camera/front/info"), "small", 4, 4 * KiB, 8, 100, 16);
    assert_topic(topic(&cfg, "imu"), "small", 16, 256, 8, 100, 256);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "small", 4, 64 * KiB, 8, 100, 16);
}

static void test_minimal_example(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_examples, "", "minimal.json", &cfg);
    assert_string_equal(cfg.domain, "demo");
    assert_int_equal(cfg.mode, 0600);
    assert_int_equal(cfg.gid, -1);
    assert_string_equal(cfg.group, "");
    assert_int_equal(cfg.npools, 1);
    assert_class(pool(&cfg, "msgs"), 0, 64 * KiB, 32);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "msgs", 4, 64 * KiB, 8, 100, 16);
}

/* ---- robustness -------------------------------------------------------------------------- */

/* Parse text of exactly len bytes; it must succeed or fail cleanly with one line. */
static void parse_must_not_crash(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    bus_config cfg;
    char err[BUS_ERR_MAX];
    int rc = bus_config_parse(copy, len, "fuzz.json", &cfg, err, sizeof err);
    free(copy);
    if (rc == 0)
        return;
    if (rc != SHMBUS_ECONFIG)
        fail_msg("rc %d for %.*s", rc, (int)len, text);
    assert_one_line_from(err, "fuzz.json");
}

static void test_truncated_and_mutated_files_fail_cleanly(void **state)
{
    (void)state;
    static const char *const files[][2] = {
        {"valid", "full.json"}, {"valid", "sizes.json"}, {"valid", "bom_crlf.json"},
        {"broken", "classes_duplicate_size.json"}, {"broken", "syntax_truncated.json"},
    };
    static const char mutations[] = {'\0', '"', '\\', '{', '}', '[', ']', ',', ':', '0', '-',
                                     'e', '/', '\n', ' ', (char)0xff};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        size_t len;
        char *text = read_exact(path_in(path, sizeof path, g_configs, files[f][0], files[f][1]),
                                &len);
        for (size_t cut = 0; cut <= len; cut++)
            parse_must_not_crash(text, cut);
        for (size_t i = 0; i < len; i++) {
            char keep = text[i];
            for (size_t m = 0; m < sizeof mutations; m++) {
                text[i] = mutations[m];
                parse_must_not_crash(text, len);
            }
            text[i] = keep;
        }
        free(text);
    }
}

static void test_deep_nesting_and_long_keys_fail_cleanly(void **state)
{
    (void)state;
    size_t n = 100000;
    char *text = malloc(2 * n + 1);
    assert_non_null(text);
    memset(text, '[', n);
    memset(text + n, ']', n);
    parse_must_not_crash(text, 2 * n);
    /* a key far longer than any path buffer */
    size_t klen = 5000;
    snprintf(text, 3, "{\"");
    memset(text + 2, 'k', klen);
    snprintf(text + 2 + klen, 8, "\": 1}");
    char err[BUS_ERR_MAX];
    bus_config cfg;
    assert_int_equal(bus_config_parse(text, strlen(text), "long.json", &cfg, err, sizeof err),
                     SHMBUS_ECONFIG);
    assert_non_null(strstr(err, "long.json: $.kkkk"));
    assert_non_null(strstr(err, "unknown key"));
    free(text);
}

static void test_error_buffer_is_never_overrun(void **state)
{
    (void)state;
    static const char text[] = "{\"topics\": [{\"name\": \"a\", \"pool\": \"nope\"}]}";
    static const char want[] = "t.json: $.topics[0].pool: pool \"nope\" is not defined";
    bus_config cfg;
    char err[sizeof want + 8];
    for (size_t n = 1; n < sizeof err; n++) {
        memset(err, 'x', sizeof err);
        assert_int_equal(bus_config_parse(text, strlen(text), "t.json", &cfg, err, n),
                         SHMBUS_ECONFIG);
        assert_int_equal(strlen(err), n - 1 < strlen(want) ? n - 1 : strlen(want));
        assert_memory_equal(err, want, strlen(err));
        if (n < sizeof err - 1)
            assert_int_equal(err[n], 'x');
    }
    assert_string_equal(err, want);
    assert_int_equal(bus_config_parse(text, strlen(text), "t.json", &cfg, NULL, 0),
                     SHMBUS_ECONFIG);
}

static void test_parse_rejects_bad_arguments(void **state)
{
    (void)state;
    bus_config cfg;
    char err[BUS_ERR_MAX];
    assert_int_equal(bus_config_parse(NULL, 3, "x", &cfg, err, sizeof err), SHMBUS_EINVAL);
    assert_int_equal(bus_config_parse("{}", 2, "x", NULL, err, sizeof err), SHMBUS_EINVAL);
    assert_int_equal(bus_config_parse(NULL, 0, "x", &cfg, err, sizeof err), SHMBUS_ECONFIG);
    assert_string_equal(err, "x: $: empty file (expected a JSON object)");
    assert_int_equal(bus_config_parse("{}", 2, NULL, &cfg, err, sizeof err), 0);
    assert_int_equal(bus_config_load(NULL, &cfg, err, sizeof err), SHMBUS_EINVAL);
}

static void test_load_reports_missing_and_unreadable_files(void **state)
{
    (void)state;
    bus_config cfg;
    char err[BUS_ERR_MAX];
    assert_int_equal(bus_config_load("/nonexistent/shmbus.json", &cfg, err, sizeof err),
                     SHMBUS_ENOENT);
    assert_string_equal(err, "/nonexistent/shmbus.json: No such file or directory");
    assert_int_equal(bus_config_load(g_configs, &cfg, err, sizeof err), SHMBUS_ESYS);
    assert_non_null(strstr(err, "Is a directory"));

    char tmp[] = "/tmp/shmbus_test_config_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    /* over the 1 MiB limit: rejected before parsing */
    char *big = malloc(MiB + 10);
    assert_non_null(big);
    memset(big, ' ', MiB + 10);
    big[0] = '{';
    big[MiB + 9] = '}';
    assert_int_equal(write(fd, big, MiB + 10), (ssize_t)(MiB + 10));
    free(big);
    close(fd);
    assert_int_equal(bus_config_load(tmp, &cfg, err, sizeof err), SHMBUS_ECONFIG);
    assert_non_null(strstr(err, "file is larger than 1 MiB"));
    if (geteuid() != 0) { /* root reads anything */
        chmod(tmp, 0);
        assert_int_equal(bus_config_load(tmp, &cfg, err, sizeof err), SHMBUS_EACCES);
        assert_non_null(strstr(err, "Permission denied"));
    }
    unlink(tmp);
}

/* ---- sizes ------------------------------------------------------------------------------- */

static void test_parse_size_accepts_units_and_fractions(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"4096", 4096},
        {"8MiB", 8 * MiB},
        {"8 MiB", 8 * MiB},
        {"1.5MiB", 3 * 512 * KiB},
        {"0.5KiB", 512},
        {"1.25 KiB", 1280},
        {"1.0B", 1},
        {"100B", 100},
        {"1kB", 1000},
        {"1.5kB", 1500},
        {"2MB", 2000000},
        {"3GB", 3000000000ull},
        {"1TB", 1000000000000ull},
        {"4KiB", 4096},
        {"2GiB", 2 * GiB},
        {"1TiB", TiB},
        {"0.0009765625MiB", 1024},
        {"16777215TiB", 16777215ull * TiB},
        {"18446744073709551615", UINT64_MAX},
        {"007KiB", 7 * KiB},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        char err[128] = "";
        int rc = bus_parse_size(good[i].s, &v, err, sizeof err);
        if (rc != 0 || v != good[i].v)
            fail_msg("\"%s\": rc %d value %llu (%s), expected %llu", good[i].s, rc,
                     (unsigned long long)v, err, (unsigned long long)good[i].v);
    }
}

static void test_parse_size_rejects_bad_text_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *why;
    } bad[] = {
        {"", "empty size"},
        {"MiB", "expected a number"},
        {"-1", "cannot be negative"},
        {"-1MiB", "cannot be negative"},
        {"+1MiB", "expected a number"},
        {" 8MiB", "expected a number"},
        {".5MiB", "expected a number"},
        {"1.MiB", "expected a digit after '.'"},
        {"1.5", "not a whole number of bytes"},
        {"1.3KiB", "not a whole number of bytes"},
        {"0.1B", "not a whole number of bytes"},
        {"0.0000000000001TB", "not a whole number of bytes"},
        {"8mib", "unknown unit \"mib\""},
        {"8 KB", "unknown unit \"KB\""},
        {"8K", "unknown unit \"K\""},
        {"8MiB ", "unknown unit \"MiB \""},
        {"8 ", "expected a unit after the space"},
        {"8  MiB", "unknown unit \" MiB\""},
        {"8MiB/s", "unknown unit \"MiB/s\""},
        {"1e3", "unknown unit \"e3\""},
        {"0x10", "unknown unit \"x10\""},
        {"18446744073709551616", "too large"},
        {"16777216TiB", "too large"},
        {"99999999999999999999999", "too large"},
        {"1.00000000000000000001KiB", "too many decimal places"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        char err[160] = "";
        int rc = bus_parse_size(bad[i].s, &v, err, sizeof err);
        if (rc != SHMBUS_EINVAL || v != 777 || !strstr(err, bad[i].why))
            fail_msg("\"%s\": rc %d value %llu err \"%s\", expected \"%s\"", bad[i].s, rc,
                     (unsigned long long)v, err, bad[i].why);
    }
    uint64_t v;
    assert_int_equal(bus_parse_size(NULL, &v, NULL, 0), SHMBUS_EINVAL);
    assert_int_equal(bus_parse_size("8MiB", NULL, NULL, 0), SHMBUS_EINVAL);
}

/* ---- the default, lookups, memory -------------------------------------------------------- */

static void test_default_config(void **state)
{
    (void)state;
    bus_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    bus_config_default(&cfg);
    assert_string_equal(cfg.domain, "default");
    assert_int_equal(cfg.mode, 0600);
    assert_int_equal(cfg.gid, -1);
    assert_string_equal(cfg.group, "");
    assert_string_equal(cfg.runtime_dir, "");
    assert_int_equal(cfg.npools, 1);
    const bus_pool_cfg *p = pool(&cfg, "default");
    assert_int_equal(p->nclasses, 5);
    assert_class(p, 0, 4 * KiB, 256);
    assert_class(p, 1, 64 * KiB, 64);
    assert_class(p, 2, 1 * MiB, 16);
    assert_class(p, 3, 8 * MiB, 8);
    assert_class(p, 4, 24 * MiB, 6);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    assert_string_equal(cfg.default_topic.name, "");
    assert_topic(&cfg.default_topic, "default", 2, 24 * MiB, 4, 100, 16);
}

static void test_lookup_by_name(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_ptr_equal(bus_config_topic(&cfg, "camera/rear"), &cfg.topics[1]);
    assert_ptr_equal(bus_config_pool(&cfg, "mixed"), &cfg.pools[1]);
    assert_null(bus_config_topic(&cfg, "camera"));
    assert_null(bus_config_topic(&cfg, ""));
    assert_null(bus_config_pool(&cfg, "frame"));
    assert_null(bus_config_pool(NULL, "mixed"));
    assert_null(bus_config_topic(&cfg, NULL));
}

static uint64_t sum_pool_sizes(const bus_config *cfg)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < cfg->npools; i++) {
        uint64_t sz = 0;
        assert_int_equal(shmpool_pool_size(cfg->pools[i].classes, cfg->pools[i].nclasses, &sz),
                         0);
        assert_true(sz > 0);
        total += sz;
    }
    return total;
}

static void test_config_memory_is_the_sum_of_pool_sizes(void **state)
{
    (void)state;
    bus_config cfg;
    bus_config_default(&cfg);
    uint64_t payload = 256 * 4 * KiB + 64 * 64 * KiB + 16 * MiB + 8 * 8 * MiB + 6 * 24 * MiB;
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    assert_true(bus_config_memory(&cfg) > payload);
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    load_ok(g_examples, "", "minimal.json", &cfg);
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    cfg.npools = 0;
    assert_int_equal(bus_config_memory(&cfg), 0);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc > 1)
        g_configs = argv[1];
    if (argc > 2)
        g_examples = argv[2];

    struct CMUnitTest broken[NBROKEN];
    for (size_t i = 0; i < NBROKEN; i++)
        broken[i] = (struct CMUnitTest){
            .name = broken_table[i].file,
            .test_func = test_broken_config_fails_with_file_path_and_reason,
            .initial_state = (void *)&broken_table[i],
        };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_broken_file_has_a_table_row),
        cmocka_unit_test(test_empty_object_gives_default_pool_and_template),
        cmocka_unit_test(test_default_written_out_is_the_default),
        cmocka_unit_test(test_full_config_sets_every_field),
        cmocka_unit_test(test_topics_without_pools_use_default_pool_and_no_template),
        cmocka_unit_test(test_pools_without_topics_get_template_on_first_pool),
        cmocka_unit_test(test_sizes_are_accepted_in_every_form),
        cmocka_unit_test(test_on_full_fail_means_no_wait),
        cmocka_unit_test(test_group_by_name_and_by_number),
        cmocka_unit_test(test_byte_order_mark_and_crlf_are_accepted),
        cmocka_unit_test(test_camera_example),
        cmocka_unit_test(test_minimal_example),
        cmocka_unit_test(test_truncated_and_mutated_files_fail_cleanly),
        cmocka_unit_test(test_deep_nesting_and_long_keys_fail_cleanly),
        cmocka_unit_test(test_error_buffer_is_never_overrun),
        cmocka_unit_test(test_parse_rejects_bad_arguments),
        cmocka_unit_test(test_load_reports_missing_and_unreadable_files),
        cmocka_unit_test(test_parse_size_accepts_units_and_fractions),
        cmocka_unit_test(test_parse_size_rejects_bad_text_with_a_reason),
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_lookup_by_name),
        cmocka_unit_test(test_config_memory_is_the_sum_of_pool_sizes),
    };
    int failed = _cmocka_run_group_tests("broken configs", broken, NBROKEN, NULL, NULL);
    failed += cmocka_run_group_tests_name("config", tests, NULL, NULL);
    return failed ? 1 : 0;
}
