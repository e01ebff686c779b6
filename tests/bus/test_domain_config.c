/* Domains opened by several processes with configuration files: compatible definitions join
 * the same domain, conflicting ones get SHMBUS_EINCOMPAT with both definitions named, and a
 * bad or missing file is a clear error that changes nothing in the running domain. The
 * conflicting opens run in child processes, forked before the test process opens anything. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pubsub_common.h"

/* A child that, once told to go, opens the test's domain with tests/bus/pubsub/<file> and
 * exits 0 if that gave `want` and the detail contains `needle` (if not NULL). Children are
 * forked before the test process opens anything: a child forked from a process whose threads
 * may hold an allocator lock (ASan's is not fork-safe) could hang. */
struct child {
    pid_t pid;
    int go; /* write end: one byte starts it */
};

static struct child spawn_expect(ps_env *e, const char *file, int want, const char *needle)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct child c = {.pid = proc_fork(), .go = fds[1]};
    if (c.pid == 0) {
        close(fds[1]);
        char b;
        if (read(fds[0], &b, 1) != 1)
            _exit(4);
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
    close(fds[0]);
    return c;
}

/* Let the child run and check it succeeded. */
static void run_child(struct child c, const char *what)
{
    assert_int_equal(write(c.go, "g", 1), 1);
    close(c.go);
    proc_expect_ok(c.pid, 20000, what);
}

static void test_conflicting_pool_definition_is_incompatible_and_named(void **state)
{
    ps_env *e = PS_ENV(state);
    struct child c = spawn_expect(e, "compat_other_pool.json", SHMBUS_EINCOMPAT, "pool \"frames\"");
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    run_child(c, "compat_other_pool.json");
    ps_close_domain(e, d);
}

static void test_conflicting_pool_definition_names_both_definitions(void **state)
{
    ps_env *e = PS_ENV(state);
    /* compat_other_pool.json: 2 MiB x 8; the running domain (compat_base.json): 1 MiB x 8 */
    struct child a = spawn_expect(e, "compat_other_pool.json", SHMBUS_EINCOMPAT, "(2 MiB x 8)");
    struct child b = spawn_expect(e, "compat_other_pool.json", SHMBUS_EINCOMPAT, "(1 MiB x 8)");
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    run_child(a, "compat_other_pool.json (this file's definition)");
    run_child(b, "compat_other_pool.json (the running definition)");
    ps_close_domain(e, d);
}

static void test_conflicting_topic_definition_is_incompatible_with_both_definitions(void **state)
{
    ps_env *e = PS_ENV(state);
    /* the message shows this file's definition and the running one's */
    struct child a = spawn_expect(e, "compat_other_topic.json", SHMBUS_EINCOMPAT, "history 2");
    struct child b = spawn_expect(e, "compat_other_topic.json", SHMBUS_EINCOMPAT, "history 4");
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    run_child(a, "compat_other_topic.json (this file's definition)");
    run_child(b, "compat_other_topic.json (the running definition)");
    ps_close_domain(e, d);
}

static void test_conflicting_delivery_is_incompatible_with_both_definitions(void **state)
{
    ps_env *e = PS_ENV(state);
    /* compat_other_delivery.json differs from compat_base.json only in "delivery" */
    struct child a = spawn_expect(e, "compat_other_delivery.json", SHMBUS_EINCOMPAT,
                                  "delivery shm) unlike");
    struct child b = spawn_expect(e, "compat_other_delivery.json", SHMBUS_EINCOMPAT,
                                  "delivery nng)");
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    run_child(a, "compat_other_delivery.json (this file's definition)");
    run_child(b, "compat_other_delivery.json (the running definition)");
    ps_close_domain(e, d);
}

static void test_compatible_superset_joins_and_adds_its_topics(void **state)
{
    ps_env *e = PS_ENV(state);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = proc_fork();
    if (pid == 0) { /* joins with more pools and topics once told, and stays a while */
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1)
            _exit(4);
        ps_use_config(e, "compat_superset.json");
        shmbus_domain *c = NULL;
        if (ps_domain_open(e, &c) != 0)
            _exit(1);
        proc_sleep_ms(300);
        _exit(shmbus_domain_close(c) == 0 ? 0 : 2);
    }
    close(go[0]);
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
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
            proc_sleep_ms(5);
    }
    assert_true(seen);
    proc_expect_ok(pid, 20000, "superset participant");
    ps_close_domain(e, d);
}

static void test_bad_or_missing_file_is_a_clear_error_and_changes_nothing(void **state)
{
    ps_env *e = PS_ENV(state);
    struct child c[] = {
        spawn_expect(e, "compat_broken.json", SHMBUS_ECONFIG, "$.topics[0].pool"),
        spawn_expect(e, "compat_broken.json", SHMBUS_ECONFIG, "compat_broken.json"),
        spawn_expect(e, "no_such_file.json", SHMBUS_ENOENT, "no_such_file.json"),
    };
    ps_use_config(e, "compat_base.json");
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++)
        run_child(c[i], "bad or missing file");
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
        PS_TEST(test_conflicting_pool_definition_names_both_definitions),
        PS_TEST(test_conflicting_topic_definition_is_incompatible_with_both_definitions),
        PS_TEST(test_conflicting_delivery_is_incompatible_with_both_definitions),
        PS_TEST(test_compatible_superset_joins_and_adds_its_topics),
        PS_TEST(test_bad_or_missing_file_is_a_clear_error_and_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
