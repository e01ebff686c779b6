/* Domains opened by several processes with configuration files: compatible definitions join
 * the same domain, conflicting ones get SHMBUS_EINCOMPAT with both definitions named, and a
 * bad or missing file is a clear error that changes nothing in the running domain. The
 * conflicting opens run in child processes (the domain is opened and checked in each; no nng
 * is used before the fork). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pubsub_common.h"

/* Open the test's domain with tests/bus/pubsub/<file> in a child; exit 0 if it gave `want`
 * and the detail contains `needle` (if not NULL). */
static void expect_in_child(ps_env *e, const char *file, int want, const char *needle)
{
    pid_t pid = ps_fork();
    if (pid == 0) {
        ps_use_config(e, file);
        shmbus_domain *d = NULL;
        int rc = ps_domain_open(e, &d);
        if (rc != want) {
            fprintf(stderr, "%s: got %s (%s), want %s\n", file, shmbus_errname(rc),
                    shmbus_last_error(), shmbus_errname(want));
            _exit(1);
        }
        if (needle && !strstr(shmbus_last_error(), needle)) {
            fprintf(stderr, "%s: detail \"%s\" lacks \"%s\"\n", file, shmbus_last_error(), needle);
            _exit(2);
        }
        if (d && shmbus_domain_close(d) != 0)
            _exit(3);
        _exit(0);
    }
    ps_expect_ok(pid, 20000, file);
}

static void test_conflicting_pool_definition_is_incompatible_and_named(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    expect_in_child(e, "compat_other_pool.json", SHMBUS_EINCOMPAT, "pool \"frames\"");
    ps_close_domain(e, d);
}

static void test_conflicting_topic_definition_is_incompatible_with_both_definitions(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    /* the message shows this file's definition and the running one's */
    expect_in_child(e, "compat_other_topic.json", SHMBUS_EINCOMPAT, "history 2");
    expect_in_child(e, "compat_other_topic.json", SHMBUS_EINCOMPAT, "history 4");
    ps_close_domain(e, d);
}

static void test_compatible_superset_joins_and_adds_its_topics(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    pid_t pid = ps_fork();
    if (pid == 0) { /* joins with more pools and topics, and stays until told */
        ps_use_config(e, "compat_superset.json");
        shmbus_domain *c = NULL;
        if (ps_domain_open(e, &c) != 0)
            _exit(1);
        ps_sleep_ms(300);
        _exit(shmbus_domain_close(c) == 0 ? 0 : 2);
    }
    /* the running domain now has the superset's topic "imu" with its definition */
    shmbus_snapshot *s = NULL;
    bool seen = false;
    for (int i = 0; i < 200 && !seen; i++) {
        ps_assert_ok(shmbus_snapshot_take(d, &s));
        for (unsigned t = 0; t < s->ntopics; t++)
            if (!strcmp(s->topics[t].def.name, "imu")) {
                seen = true;
                assert_int_equal(s->topics[t].def.history, 8);
                assert_string_equal(s->topics[t].def.pool, "small");
            }
        shmbus_snapshot_free(s);
        if (!seen)
            ps_sleep_ms(5);
    }
    assert_true(seen);
    ps_expect_ok(pid, 20000, "superset participant");
    ps_close_domain(e, d);
}

static void test_bad_or_missing_file_is_a_clear_error_and_changes_nothing(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    expect_in_child(e, "compat_broken.json", SHMBUS_ECONFIG, "$.topics[0].pool");
    expect_in_child(e, "compat_broken.json", SHMBUS_ECONFIG, "compat_broken.json");
    expect_in_child(e, "no_such_file.json", SHMBUS_ENOENT, "no_such_file.json");
    /* the running domain is as it was: one participant, its own topic */
    shmbus_snapshot *s = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &s));
    assert_int_equal(s->alive, 1);
    assert_int_equal(s->ntopics, 1);
    assert_string_equal(s->topics[0].def.name, "cam");
    shmbus_snapshot_free(s);
    ps_close_domain(e, d);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    const struct CMUnitTest tests[] = {
        PS_TEST(test_conflicting_pool_definition_is_incompatible_and_named),
        PS_TEST(test_conflicting_topic_definition_is_incompatible_with_both_definitions),
        PS_TEST(test_compatible_superset_joins_and_adds_its_topics),
        PS_TEST(test_bad_or_missing_file_is_a_clear_error_and_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
