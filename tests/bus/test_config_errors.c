/* Configuration errors: every mistake in a file is one line naming the file, the JSON path (or
 * the line and column) and the reason, and leaves the caller's configuration untouched; bad,
 * truncated, mutated, deep or huge input fails cleanly.
 *
 * The sample files are the specification of the error messages: every file under
 * configs/broken/ has a row in broken_table naming a piece of the message it must produce.
 *
 * Usage: test_config_errors [CONFIGS_DIR [EXAMPLES_DIR]] (defaults are compiled in).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config_testutil.h"

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
     "max_message_size, max_held, on_full, wait_ms, queue_depth, delivery)"},
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
    {"delivery_unknown.json", "$.topics[0].delivery: expected \"nng\" or \"shm\", got \"futex\""},
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
     "max_message_size, max_held, on_full, wait_ms, queue_depth, delivery)"},
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

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    config_test_args(argc, argv);

    struct CMUnitTest broken[NBROKEN];
    for (size_t i = 0; i < NBROKEN; i++)
        broken[i] = (struct CMUnitTest){
            .name = broken_table[i].file,
            .test_func = test_broken_config_fails_with_file_path_and_reason,
            .initial_state = (void *)&broken_table[i],
        };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_broken_file_has_a_table_row),
        cmocka_unit_test(test_truncated_and_mutated_files_fail_cleanly),
        cmocka_unit_test(test_deep_nesting_and_long_keys_fail_cleanly),
        cmocka_unit_test(test_error_buffer_is_never_overrun),
        cmocka_unit_test(test_parse_rejects_bad_arguments),
        cmocka_unit_test(test_load_reports_missing_and_unreadable_files),
    };
    int failed = _cmocka_run_group_tests("broken configs", broken, NBROKEN, NULL, NULL);
    failed += cmocka_run_group_tests_name("config", tests, NULL, NULL);
    return failed ? 1 : 0;
}
