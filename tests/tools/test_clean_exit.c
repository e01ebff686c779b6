/* Every program in build/bin (but shmbus-chaos, the pool's own test tool) leaves nothing
 * behind: each one is run here on its own shm directory ($SHMBUS_SHM_DIR, a fresh directory
 * under /dev/shm that only this test uses), stopped by SIGINT or SIGTERM while it works or
 * waits, or made to fail after it joined a domain; afterwards the directory must be empty. Also the first run of README: `hello sub`
 * and `hello pub` in two processes print all five messages. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tooltest.h"

#define BIN SHMBUS_BIN_DIR "/"
#define CLI SHMBUS_CLI
#define MON SHMBUS_MONITOR

static tt_result r;
static char shm_dir[64];

/* The fixture of tooltest, on a private shm directory. */
static int setup(void **state)
{
    snprintf(shm_dir, sizeof shm_dir, "/dev/shm/shmbus-exittest.XXXXXX");
    if (!mkdtemp(shm_dir))
        return -1;
    setenv("SHMBUS_SHM_DIR", shm_dir, 1);
    return tt_setup(state);
}

/* Names of the files in the private shm directory, "" if none; with remove, unlinks them. */
static const char *shm_files(bool remove)
{
    static char names[4096];
    names[0] = 0;
    DIR *d = opendir(shm_dir);
    if (!d)
        return names;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s ", de->d_name);
        if (remove) {
            char p[400];
            snprintf(p, sizeof p, "%s/%s", shm_dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
    return names;
}

static int teardown(void **state)
{
    int rc = tt_teardown(state);
    shm_files(true);
    rmdir(shm_dir);
    unsetenv("SHMBUS_SHM_DIR");
    return rc;
}

#define EXIT_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static void assert_nothing_left(const char *after)
{
    const char *left = shm_files(false);
    if (left[0])
        fail_msg("after %s, the shm directory still has: %s", after, left);
}

/* Start argv, wait until its output (stdout and stderr, in <rundir>/<tag>.out) contains
 * `ready` (NULL: until it has files in the shm directory, and 300 ms more), send sig and
 * require exit code want. */
static void stop_when(const tt_env *e, const char *tag, const char *ready, int sig, int want,
                      const char *const *argv)
{
    char out[400];
    snprintf(out, sizeof out, "%s/%s.out", e->rundir, tag);
    pid_t pid = tt_spawn(out, argv);
    if (!ready) {
        for (int i = 0; i < 400 && !shm_files(false)[0]; i++)
            tt_sleep_ms(50);
        tt_sleep_ms(300);
    } else if (!tt_wait_file_contains(out, ready, 20000)) {
        static char text[1 << 16];
        tt_read_file(out, text, sizeof text);
        fail_msg("%s did not print \"%s\":\n%s", tag, ready, text);
    }
    int code = tt_stop(pid, sig, 20000);
    if (code != want) {
        static char text[1 << 16];
        tt_read_file(out, text, sizeof text);
        fail_msg("%s exited with %d after %s, expected %d:\n%s", tag, code, strsignal(sig),
                 want, text);
    }
    assert_nothing_left(tag);
}
#define STOP_WHEN(e, tag, ready, sig, want, ...)                                             \
    stop_when((e), (tag), (ready), (sig), (want), (const char *const[]){__VA_ARGS__, NULL})

/* ---- hello ---------------------------------------------------------------------------------- */

static void test_hello_sub_then_pub_prints_all_five_messages(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/sub.out", e->rundir);
    pid_t sub = TT_SPAWN(out, BIN "hello", "sub");
    assert_true(tt_wait_file_contains(out, "waiting for a publisher", 10000));
    TT_RUN(&r, 30000, BIN "hello", "pub");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "published 5 messages");
    assert_int_equal(tt_stop(sub, 0, 20000), 0);
    static char text[1 << 16];
    tt_read_file(out, text, sizeof text);
    for (int i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "got seq %d: hello #%d from shared memory", i + 1, i);
        tt_assert_contains(text, want);
    }
    assert_nothing_left("hello sub and hello pub");
}

static void test_hello_alone_prints_five_and_answers_help(void **state)
{
    (void)state;
    TT_RUN(&r, 30000, BIN "hello");
    tt_assert_exit(&r, 0);
    assert_int_equal(tt_count(r.out, "got seq"), 5);
    assert_nothing_left("hello");
    TT_RUN(&r, 5000, BIN "hello", "--help");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "usage: hello");
    TT_RUN(&r, 5000, BIN "hello", "publish");
    tt_assert_exit(&r, 2);
}

static void test_hello_stopped_while_waiting_leaves_nothing(void **state)
{
    tt_env *e = TT_ENV(state);
    STOP_WHEN(e, "hello-sub", "waiting for a publisher", SIGINT, 0, BIN "hello", "sub");
    STOP_WHEN(e, "hello-pub", "waiting for a subscriber", SIGTERM, 0, BIN "hello", "pub");
}

/* ---- pool-demo -------------------------------------------------------------------------------- */

static void test_pool_demo_stopped_mid_run_leaves_nothing(void **state)
{
    STOP_WHEN(TT_ENV(state), "pool-demo", NULL, SIGTERM, 0, BIN "pool-demo", "100000");
}

/* ---- the shmbus CLI and the monitor ------------------------------------------------------------ */

static void test_cli_commands_stopped_by_signals_leave_nothing(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/pub.out", e->rundir);
    pid_t pub = TT_SPAWN(out, CLI, "pub", "t", "--config", e->config, "--size", "100", "--rate",
                         "50");
    tt_topic_want w = {.topic = "t", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    static const char *const cmds[] = {"echo", "hz", "bw"};
    pid_t subs[3];
    for (int i = 0; i < 3; i++)
        subs[i] = TT_SPAWN(NULL, CLI, cmds[i], "t", "--domain", e->dom);
    tt_topic_want all = {.topic = "t", .pubs = 1, .subs = 3, .received = 3};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &all, 10000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(tt_stop(subs[i], i % 2 ? SIGINT : SIGTERM, 10000), 0);
    assert_int_equal(tt_stop(pub, SIGINT, 10000), 0);
    assert_nothing_left("shmbus pub, echo, hz, bw");
    STOP_WHEN(e, "echo-wait", "waiting for domain", SIGTERM, 0, CLI, "echo", "t", "--wait",
              "--domain", e->dom);
    STOP_WHEN(e, "mon-wait", "waiting for domain", SIGINT, 0, MON, "--json", "--wait", "--domain",
              e->dom);
}

static void test_pub_that_fails_after_joining_leaves_nothing(void **state)
{
    tt_env *e = TT_ENV(state);
    /* 100 KiB is beyond the topic's max_message_size (64 KiB): the domain is started, the
     * publisher opened, and the first loan fails */
    TT_RUN(&r, 10000, CLI, "pub", "t", "--config", e->config, "--size", "100KiB", "--count", "1");
    tt_assert_exit(&r, 1);
    assert_nothing_left("a failed shmbus pub");
}

/* ---- the camera programs ----------------------------------------------------------------------- */

static void test_camera_programs_stopped_by_signals_leave_nothing(void **state)
{
    tt_env *e = TT_ENV(state);
    char outs[3][400];
    const char *tags[3] = {"camera-pub", "frame-stats", "frame-sink"};
    for (int i = 0; i < 3; i++)
        snprintf(outs[i], sizeof outs[i], "%s/%s.out", e->rundir, tags[i]);
    pid_t stats = TT_SPAWN(outs[1], BIN "frame-stats", "--config", SHMBUS_CAMERA_TEST_CONFIG,
                           "--domain", e->dom, "--follow");
    pid_t sink = TT_SPAWN(outs[2], BIN "frame-sink", "--config", SHMBUS_CAMERA_TEST_CONFIG,
                          "--domain", e->dom, "--follow", "--every", "1000", "--ppm", e->rundir);
    assert_true(tt_wait_file_contains(outs[1], "waiting for a publisher", 10000));
    pid_t pub = TT_SPAWN(outs[0], BIN "camera-pub", "--config", SHMBUS_CAMERA_TEST_CONFIG,
                         "--domain", e->dom, "--size", "160x120", "--fps", "50");
    tt_topic_want all = {.topic = "camera/front", .pubs = 1, .subs = 2, .received = 5};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &all, 20000));
    assert_int_equal(tt_stop(stats, SIGINT, 10000), 0);
    assert_int_equal(tt_stop(sink, SIGTERM, 10000), 0);
    assert_int_equal(tt_stop(pub, SIGTERM, 10000), 0);
    assert_nothing_left("camera-pub, frame-stats, frame-sink");
}

static void test_camera_programs_that_fail_leave_nothing_and_exit_with_the_common_codes(void **state)
{
    tt_env *e = TT_ENV(state);
    /* a 1080p frame does not fit the test configuration's 320 KiB messages */
    TT_RUN(&r, 20000, BIN "camera-pub", "--config", SHMBUS_CAMERA_TEST_CONFIG, "--domain",
           e->dom, "--size", "1920x1080", "--count", "1", "-q");
    tt_assert_exit(&r, 1);
    tt_assert_contains(r.err, "max_message_size");
    assert_nothing_left("a failed camera-pub");
    /* the common exit codes: 4 for a configuration that cannot be read, 3 for a topic the
     * configuration does not allow (after joining: the domain is closed again) */
    TT_RUN(&r, 20000, BIN "frame-stats", "--config", "/nonexistent/cam.json", "-q");
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, "/nonexistent/cam.json");
    char strict[400], text[512];
    snprintf(strict, sizeof strict, "%s/strict.json", e->rundir);
    snprintf(text, sizeof text,
             "{\"domain\": \"%s\", \"pools\": [{\"name\": \"p\", \"block_size\": "
             "\"4KiB\", \"count\": 8}], \"topics\": [{\"name\": \"only\", \"pool\": \"p\"}]}",
             e->dom);
    tt_write_file(strict, text);
    TT_RUN(&r, 20000, BIN "frame-sink", "--config", strict, "--ppm", e->rundir, "-q");
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "camera/front");
    tt_assert_contains(r.err, e->dom);
    assert_nothing_left("frame-sink on a topic its configuration does not allow");
}

/* ---- the benchmarks ------------------------------------------------------------------------------- */

/* (shmbus-chaos is not here: it belongs to the pool's reliability tests, docs/reliability.md.) */
static void test_bench_stopped_by_signals_leaves_nothing(void **state)
{
    tt_env *e = TT_ENV(state);
    STOP_WHEN(e, "bench-pool", NULL, SIGINT, 0, BIN "shmbus-bench", "pool", "--seconds", "600");
    STOP_WHEN(e, "bench-latency", NULL, SIGTERM, 0, BIN "shmbus-bench", "latency");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        EXIT_TEST(test_hello_sub_then_pub_prints_all_five_messages),
        EXIT_TEST(test_hello_alone_prints_five_and_answers_help),
        EXIT_TEST(test_hello_stopped_while_waiting_leaves_nothing),
        EXIT_TEST(test_pool_demo_stopped_mid_run_leaves_nothing),
        EXIT_TEST(test_cli_commands_stopped_by_signals_leave_nothing),
        EXIT_TEST(test_pub_that_fails_after_joining_leaves_nothing),
        EXIT_TEST(test_camera_programs_stopped_by_signals_leave_nothing),
        EXIT_TEST(test_camera_programs_that_fail_leave_nothing_and_exit_with_the_common_codes),
        EXIT_TEST(test_bench_stopped_by_signals_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
