/* The shmbus command line, run as a program against real domains: every subcommand, its
 * output and its exit codes (docs/cli.md), errors included. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tooltest.h"

#define CLI SHMBUS_CLI

static tt_result r; /* big buffers: not on the stack */

/* Start `shmbus pub TOPIC` on the test's domain and wait until it publishes. */
static pid_t start_pub(const tt_env *e, const char *topic, const char *size, const char *rate)
{
    pid_t pid = TT_SPAWN(NULL, CLI, "pub", topic, "--config", e->config, "--size", size, "--rate",
                         rate);
    tt_topic_want w = {.topic = topic, .pubs = 1};
    if (!tt_wait_for(e->dom, tt_topic_ready, &w, 10000))
        fail_msg("shmbus pub did not start publishing on %s", topic);
    return pid;
}

static void stop_ok(pid_t pid, const char *what)
{
    int code = tt_stop(pid, SIGTERM, 5000);
    if (code != 0)
        fail_msg("%s exited with %d after SIGTERM, expected 0", what, code);
}

/* ---- usage ------------------------------------------------------------------------------- */

static void test_every_subcommand_has_help_and_exits_0(void **state)
{
    (void)state;
    static const char *const cmds[] = {"list", "info", "echo",   "hz",   "bw",
                                       "pub",  "config", "doctor", "clean"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        TT_RUN(&r, 5000, CLI, cmds[i], "--help");
        tt_assert_exit(&r, 0);
        char want[64];
        snprintf(want, sizeof want, "usage: shmbus %s", cmds[i]);
        tt_assert_contains(r.out, want);
    }
    TT_RUN(&r, 5000, CLI, "config", "check", "--help");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "usage: shmbus config check FILE");
    TT_RUN(&r, 5000, CLI, "--help");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "Exit codes");
}

static void test_bad_command_lines_exit_2(void **state)
{
    (void)state;
    TT_RUN(&r, 5000, CLI);
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, CLI, "frobnicate");
    tt_assert_exit(&r, 2);
    tt_assert_contains(r.err, "unknown command \"frobnicate\"");
    TT_RUN(&r, 5000, CLI, "list", "--no-such-option");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, CLI, "info");
    tt_assert_exit(&r, 2);
    tt_assert_contains(r.err, "missing TOPIC");
    TT_RUN(&r, 5000, CLI, "echo", "t", "--count", "zero");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, CLI, "pub", "t");
    tt_assert_exit(&r, 2);
    tt_assert_contains(r.err, "--size N and --file F");
    TT_RUN(&r, 5000, CLI, "pub", "t", "--size", "10", "--file", "/etc/hostname");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, CLI, "pub", "t", "--size", "12 parsecs");
    tt_assert_exit(&r, 2);
    tt_assert_contains(r.err, "--size");
    TT_RUN(&r, 5000, CLI, "hz", "t", "--window", "-1");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, CLI, "config", "lint", "x.json");
    tt_assert_exit(&r, 2);
}

/* ---- no domain --------------------------------------------------------------------------- */

static void test_commands_on_a_domain_that_does_not_run_exit_3(void **state)
{
    tt_env *e = TT_ENV(state);
    const char *const runs[][8] = {
        {CLI, "list", "--domain", e->dom, NULL},
        {CLI, "info", "t", "--domain", e->dom, NULL},
        {CLI, "echo", "t", "--domain", e->dom, "--count", "1", NULL},
        {CLI, "hz", "t", "--domain", e->dom, "--count", "1", NULL},
        {CLI, "bw", "t", "--domain", e->dom, "--count", "1", NULL},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        tt_run(&r, 10000, runs[i]);
        tt_assert_exit(&r, 3);
        tt_assert_contains(r.err, "no domain");
        tt_assert_contains(r.err, e->dom);
        assert_int_equal(tt_count_segments(e->dom), 0); /* looking started nothing */
    }
}

/* ---- list, info -------------------------------------------------------------------------- */

static void test_list_and_info_show_publishers_and_subscribers(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "cam/front", "1000", "50");
    pid_t sub = TT_SPAWN(NULL, CLI, "echo", "cam/front", "--config", e->config);
    tt_topic_want w = {.topic = "cam/front", .pubs = 1, .subs = 1, .received = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));

    TT_RUN(&r, 10000, CLI, "list", "--domain", e->dom);
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "TOPIC");
    const char *row = strstr(r.out, "cam/front");
    assert_non_null(row);
    unsigned pubs = 0, subs = 0;
    assert_int_equal(sscanf(row, "cam/front %u %u", &pubs, &subs), 2);
    assert_int_equal(pubs, 1);
    assert_int_equal(subs, 1);

    TT_RUN(&r, 10000, CLI, "info", "cam/front", "--config", e->config);
    tt_assert_exit(&r, 0);
    char want[64];
    tt_assert_contains(r.out, "topic cam/front");
    tt_assert_contains(r.out, "pool tt");
    tt_assert_contains(r.out, "publishers (1)");
    tt_assert_contains(r.out, "subscribers (1)");
    snprintf(want, sizeof want, "pid %d shmbus-pub (alive)", (int)pub);
    tt_assert_contains(r.out, want);
    snprintf(want, sizeof want, "pid %d shmbus-echo (alive)", (int)sub);
    tt_assert_contains(r.out, want);
    /* every counter is shown (their values depend on how busy the machine is) */
    static const char *const counters[] = {"received ", "expired ", "dropped ", "overflow ",
                                           "invalid ", "held "};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        tt_assert_contains(r.out, counters[i]);

    stop_ok(sub, "shmbus echo");
    stop_ok(pub, "shmbus pub");
}

static void test_info_of_an_unknown_topic_exits_3(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "known", "100", "20");
    TT_RUN(&r, 10000, CLI, "info", "unknown/topic", "--domain", e->dom);
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "no topic \"unknown/topic\"");
    stop_ok(pub, "shmbus pub");
}

/* ---- echo, pub --------------------------------------------------------------------------- */

static void test_echo_prints_sequence_size_latency_and_first_bytes(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "data", "32", "100");
    TT_RUN(&r, 15000, CLI, "echo", "data", "--domain", e->dom, "--count", "3", "--bytes", "4");
    tt_assert_exit(&r, 0);
    int lines = 0;
    for (char *l = r.out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        uint64_t seq, size;
        double lat;
        unsigned b[4];
        int n = sscanf(l, "seq %" SCNu64 " size %" SCNu64 " latency %lf us %x %x %x %x ...", &seq,
                       &size, &lat, &b[0], &b[1], &b[2], &b[3]);
        if (n != 7)
            fail_msg("unexpected echo line (%d fields): %s", n, l);
        assert_int_equal(size, 32);
        assert_true(lat >= 0 && lat < 5e6);
        for (unsigned i = 0; i < 4; i++) /* shmbus pub: byte i of message seq is seq + i */
            assert_int_equal(b[i], (seq + i) & 0xff);
        lines++;
    }
    assert_int_equal(lines, 3);
    stop_ok(pub, "shmbus pub");
}

static void test_pub_sends_a_file_that_echo_receives(void **state)
{
    tt_env *e = TT_ENV(state);
    char file[400];
    snprintf(file, sizeof file, "%s/payload.txt", e->rundir);
    tt_write_file(file, "hello, bus");
    pid_t keeper = start_pub(e, "keeper", "100", "10"); /* echo needs a running domain */
    /* --config: the topic is new, and only the file's default_topic can create it */
    pid_t pub = TT_SPAWN(NULL, CLI, "pub", "greeting", "--config", e->config, "--file", file,
                         "--count", "3", "--rate", "20", "--wait-subscribers", "1");
    tt_topic_want w = {.topic = "greeting", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    TT_RUN(&r, 15000, CLI, "echo", "greeting", "--domain", e->dom, "--count", "1");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "size 10 ");
    tt_assert_contains(r.out, "68 65 6c 6c 6f 2c 20 62 75 73"); /* "hello, bus" */
    assert_int_equal(tt_stop(pub, 0, 10000), 0);
    stop_ok(keeper, "shmbus pub");
}

/* --size reads sizes as configuration files do (shmbus_parse_size): units are case-sensitive. */
static void test_pub_size_takes_the_config_size_grammar(void **state)
{
    tt_env *e = TT_ENV(state);
    TT_RUN(&r, 5000, CLI, "pub", "sized", "--config", e->config, "--size", "8KB");
    tt_assert_exit(&r, 2);
    tt_assert_contains(r.err, "--size: bad size \"8KB\": unknown unit \"KB\"");
    pid_t pub = start_pub(e, "sized", "1.5 KiB", "100");
    TT_RUN(&r, 15000, CLI, "echo", "sized", "--domain", e->dom, "--count", "1");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "size 1536 ");
    stop_ok(pub, "shmbus pub");
}

static void test_echo_of_a_topic_the_config_does_not_allow_exits_3(void **state)
{
    tt_env *e = TT_ENV(state);
    /* a domain that lists its topics and has no default_topic */
    char cfg[400], text[512];
    snprintf(cfg, sizeof cfg, "%s/strict.json", e->rundir);
    snprintf(text, sizeof text,
             "{\"domain\": \"%s\", \"pools\": [{\"name\": \"p\", \"block_size\": \"4KiB\", "
             "\"count\": 16}], \"topics\": [{\"name\": \"only\", \"pool\": \"p\"}]}",
             e->dom);
    tt_write_file(cfg, text);
    pid_t pub = TT_SPAWN(NULL, CLI, "pub", "only", "--config", cfg, "--size", "64", "--rate", "10");
    tt_topic_want w = {.topic = "only", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    TT_RUN(&r, 10000, CLI, "echo", "other", "--config", cfg, "--count", "1");
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "\"other\"");
    TT_RUN(&r, 10000, CLI, "pub", "other", "--config", cfg, "--size", "64", "--count", "1");
    tt_assert_exit(&r, 3);
    stop_ok(pub, "shmbus pub");
}

/* Like `ros2 topic echo`: a topic that does not exist yet is waited for, said once, with the
 * nearest name the domain has; the first message of the topic, once it exists, is printed. */
static void test_echo_waits_for_a_missing_topic_and_suggests_the_nearest(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t keeper = start_pub(e, "camera/front", "64", "20");
    char out[400];
    snprintf(out, sizeof out, "%s/echo.out", e->rundir);
    pid_t echo = TT_SPAWN(out, CLI, "echo", "camera/fornt", "--domain", e->dom, "--count", "1");
    if (!tt_wait_file_contains(out, "waiting for topic \"camera/fornt\"", 10000))
        fail_msg("shmbus echo did not say it waits for the topic");
    tt_sleep_ms(600); /* it keeps waiting, silently */
    assert_true(tt_running(echo));
    pid_t pub = TT_SPAWN(NULL, CLI, "pub", "camera/fornt", "--config", e->config, "--size", "32",
                         "--rate", "20");
    assert_int_equal(tt_stop(echo, 0, 15000), 0);
    static char text[1 << 16];
    tt_read_file(out, text, sizeof text);
    assert_int_equal(tt_count(text, "waiting for"), 1);
    tt_assert_contains(text, "in domain \"");
    tt_assert_contains(text, e->dom);
    tt_assert_contains(text, "did you mean camera/front?");
    tt_assert_contains(text, "size 32 ");
    stop_ok(pub, "shmbus pub");
    stop_ok(keeper, "shmbus pub");
}

static void test_echo_with_wait_waits_for_the_domain_to_start(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/echo.out", e->rundir);
    pid_t echo = TT_SPAWN(out, CLI, "echo", "t", "--domain", e->dom, "--wait", "--count", "2");
    if (!tt_wait_file_contains(out, "waiting for domain", 10000))
        fail_msg("shmbus echo --wait did not say it waits for the domain");
    assert_true(tt_running(echo));
    assert_int_equal(tt_count_segments(e->dom), 0); /* waiting starts nothing */
    pid_t pub = start_pub(e, "t", "16", "20");
    assert_int_equal(tt_stop(echo, 0, 15000), 0);
    static char text[1 << 16];
    tt_read_file(out, text, sizeof text);
    assert_int_equal(tt_count(text, "waiting for domain"), 1);
    assert_int_equal(tt_count(text, "size 16 "), 2);
    stop_ok(pub, "shmbus pub");
}

static void test_a_signal_ends_the_wait_cleanly(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/hz.out", e->rundir);
    pid_t hz = TT_SPAWN(out, CLI, "hz", "t", "--domain", e->dom, "--wait");
    if (!tt_wait_file_contains(out, "waiting for domain", 10000))
        fail_msg("shmbus hz --wait did not say it waits");
    assert_int_equal(tt_stop(hz, SIGINT, 5000), 0);
    assert_int_equal(tt_count_segments(e->dom), 0);
}

static void test_info_of_an_unknown_topic_suggests_the_nearest(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "camera/front", "64", "20");
    TT_RUN(&r, 10000, CLI, "info", "camera/frnt", "--domain", e->dom);
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "did you mean camera/front?");
    TT_RUN(&r, 10000, CLI, "info", "imu", "--domain", e->dom);
    tt_assert_exit(&r, 3);
    assert_null(strstr(r.err, "did you mean"));
    stop_ok(pub, "shmbus pub");
}

/* pred for tt_wait_for: the one subscriber of topic "burst" has accounted for *ctx messages
 * (received + expired + dropped + overflow + invalid). */
static bool all_accounted(const shmbus_snapshot *s, const void *ctx)
{
    const shmbus_topic_info *t = tt_find_topic(s, "burst");
    if (!t || t->nsubs != 1)
        return false;
    const shmbus_sub_info *x = &t->subs[0];
    return x->received + x->expired + x->dropped + x->overflow + x->invalid >=
           *(const uint64_t *)ctx;
}

/* The identity through the CLI: echo, started before the publisher, prints one line per
 * message it received and, at the end, its counters; every message `pub` published is
 * received or counted lost by cause. */
static void test_echo_receives_or_counts_every_message_published_after_it_joined(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/echo.out", e->rundir);
    pid_t keeper = start_pub(e, "other", "16", "10"); /* the domain runs; "burst" not yet */
    pid_t echo = TT_SPAWN(out, CLI, "echo", "burst", "--domain", e->dom, "--bytes", "0");
    assert_true(tt_wait_file_contains(out, "waiting for topic \"burst\"", 10000));
    TT_RUN(&r, 60000, CLI, "pub", "burst", "--config", e->config, "--size", "2000", "--rate",
           "0", "--count", "500", "--wait-subscribers", "1");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "published 500 message(s)");
    uint64_t want = 500;
    if (!tt_wait_for(e->dom, all_accounted, &want, 20000)) {
        shmbus_snapshot *s = tt_snapshot(e->dom);
        const shmbus_topic_info *t = tt_find_topic(s, "burst");
        const shmbus_sub_info *x = t && t->nsubs ? &t->subs[0] : NULL;
        if (x)
            fail_msg("500 published; the subscriber counts received %" PRIu64 ", expired %" PRIu64
                     ", dropped %" PRIu64 ", overflow %" PRIu64 ", invalid %" PRIu64,
                     x->received, x->expired, x->dropped, x->overflow, x->invalid);
        fail_msg("no subscriber on \"burst\"");
    }
    assert_int_equal(tt_stop(echo, SIGINT, 10000), 0);
    static char text[1 << 17];
    tt_read_file(out, text, sizeof text);
    const char *line = strstr(text, "shmbus echo: received ");
    if (!line)
        fail_msg("no counters line in:\n%s", text);
    unsigned long long got, expired, dropped, overflow, invalid;
    assert_int_equal(sscanf(line, "shmbus echo: received %llu, expired %llu, dropped %llu, "
                                  "overflow %llu, invalid %llu", &got, &expired, &dropped,
                            &overflow, &invalid), 5);
    assert_int_equal(got + expired + dropped + overflow + invalid, 500);
    assert_int_equal(tt_count(text, "seq "), (int)got);
    stop_ok(keeper, "shmbus pub");
}

/* ---- hz, bw ------------------------------------------------------------------------------ */

static void test_hz_and_bw_report_rate_and_bandwidth_each_second(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "imu", "1000", "50");
    TT_RUN(&r, 15000, CLI, "hz", "imu", "--domain", e->dom, "--count", "2", "--window", "2");
    tt_assert_exit(&r, 0);
    double hz = 0;
    char *second = strchr(r.out, '\n');
    assert_non_null(second);
    assert_int_equal(sscanf(second + 1, "rate %lf Hz", &hz), 1);
    /* the value depends on the machine's load (no timing is asserted): it measured some */
    if (!(hz > 0))
        fail_msg("rate %.2f Hz for a 50 Hz publisher:\n%s", hz, r.out);
    tt_assert_contains(r.out, "std dev");

    TT_RUN(&r, 15000, CLI, "bw", "imu", "--domain", e->dom, "--duration", "2.2");
    tt_assert_exit(&r, 0);
    second = strchr(r.out, '\n');
    assert_non_null(second);
    double bw = 0;
    char unit[16] = "";
    assert_int_equal(sscanf(second + 1, "bandwidth %lf %15s", &bw, unit), 2);
    tt_assert_contains(unit, "B/s"); /* about 50 x 1000 bytes a second: "kB/s" */
    if (!(bw > 0))
        fail_msg("bandwidth %.2f %s for 50 kB/s:\n%s", bw, unit, r.out);
    tt_assert_contains(r.out, "mean 1000 B");
    stop_ok(pub, "shmbus pub");
}

/* ---- config check ------------------------------------------------------------------------ */

static void test_config_check_prints_pools_topics_and_total_memory(void **state)
{
    tt_env *e = TT_ENV(state);
    shmbus_config_summary s;
    assert_int_equal(shmbus_config_load(e->config, &s), 0);
    TT_RUN(&r, 5000, CLI, "config", "check", e->config);
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "valid");
    tt_assert_contains(r.out, "pools (1)");
    tt_assert_contains(r.out, "64 blocks of 4.0 KiB");
    tt_assert_contains(r.out, "16 blocks of 64.0 KiB");
    tt_assert_contains(r.out, "unlisted topics:");
    tt_assert_contains(r.out, "  tt               memory ");
    tt_assert_contains(r.out, "delivery nng"); /* the default, written out */
    char want[96];
    snprintf(want, sizeof want, "(%" PRIu64 " bytes)\n", s.total_bytes);
    tt_assert_contains(strstr(r.out, "total shared memory"), want);
}

static void test_config_check_of_a_broken_file_exits_4_naming_the_file(void **state)
{
    tt_env *e = TT_ENV(state);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/broken.json", e->rundir);
    tt_write_file(bad, "{\"pools\": [ {\"name\": \"p\", \"block_size\": 4096,\n");
    TT_RUN(&r, 5000, CLI, "config", "check", bad);
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, bad);
    tt_assert_contains(r.err, "syntax error");

    tt_write_file(bad, "{\"pools\": [{\"name\": \"p\", \"block_size\": 4096, \"count\": 1, "
                       "\"colour\": \"red\"}]}");
    TT_RUN(&r, 5000, CLI, "config", "check", bad);
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, bad);
    tt_assert_contains(r.err, "$.pools[0]");

    TT_RUN(&r, 5000, CLI, "config", "check", "/nonexistent/shmbus.json");
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, "/nonexistent/shmbus.json");

    /* every subcommand that takes --config says the same */
    TT_RUN(&r, 5000, CLI, "list", "--config", bad);
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, bad);
    TT_RUN(&r, 5000, CLI, "doctor", "--config", bad);
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, bad);
}

/* ---- doctor, clean ----------------------------------------------------------------------- */

/* A domain whose only process was killed: its segments stay behind. */
static void leave_dead_domain(const tt_env *e)
{
    pid_t pub = start_pub(e, "doomed", "100", "50");
    assert_int_equal(tt_stop(pub, SIGKILL, 5000), 128 + SIGKILL);
    assert_true(tt_count_segments(e->dom) > 0);
}

static void test_doctor_reports_every_check_and_a_dead_domain(void **state)
{
    tt_env *e = TT_ENV(state);
    char sysd[400], text[64];
    snprintf(sysd, sizeof sysd, "%s/systemd", e->rundir);
    assert_int_equal(mkdir(sysd, 0700), 0);
    snprintf(text, sizeof text, "[Login]\nRemoveIPC=no\n");
    char conf[480];
    snprintf(conf, sizeof conf, "%s/logind.conf", sysd);
    tt_write_file(conf, text);
    setenv("SHMBUS_SYSTEMD_DIR", sysd, 1);
    leave_dead_domain(e);

    TT_RUN(&r, 20000, CLI, "doctor", "--config", e->config);
    tt_assert_exit(&r, 1);
    tt_assert_contains(r.out, "shm space");
    tt_assert_contains(r.out, "RemoveIPC=no");
    tt_assert_contains(r.out, "open files");
    tt_assert_contains(r.out, "runtime dir");
    char want[128];
    snprintf(want, sizeof want, "domain \"%s\":", e->dom);
    const char *line = strstr(r.out, want);
    assert_non_null(line);
    tt_assert_contains(line, "left by processes that died");
    snprintf(want, sizeof want, "fix: shmbus clean %s\n", e->dom);
    tt_assert_contains(line, want);
    /* every problem line has a fix */
    for (const char *p = strstr(r.out, "PROBLEM"); p; p = strstr(p + 1, "PROBLEM")) {
        const char *eol = strchr(p, '\n');
        const char *fix = strstr(p, "; fix: ");
        assert_true(fix && eol && fix < eol);
    }

    TT_RUN(&r, 10000, CLI, "clean", e->dom);
    tt_assert_exit(&r, 0);
    assert_int_equal(tt_count_segments(e->dom), 0);
    TT_RUN(&r, 20000, CLI, "doctor", "--config", e->config);
    snprintf(want, sizeof want, "leftovers     domain \"%s\"", e->dom);
    assert_null(strstr(r.out, want));
    unsetenv("SHMBUS_SYSTEMD_DIR");
}

static void test_clean_refuses_while_a_process_uses_the_domain(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = start_pub(e, "busy", "100", "50");
    int before = tt_count_segments(e->dom);
    TT_RUN(&r, 10000, CLI, "clean", "--domain", e->dom);
    tt_assert_exit(&r, 1);
    tt_assert_contains(r.err, "in use");
    char want[64];
    snprintf(want, sizeof want, "pid %d", (int)pub);
    tt_assert_contains(r.err, want);
    assert_int_equal(tt_count_segments(e->dom), before);
    stop_ok(pub, "shmbus pub");
    TT_RUN(&r, 10000, CLI, "clean", "--config", e->config);
    tt_assert_exit(&r, 3); /* the last one out removed it all */
}

static void test_clean_removes_what_a_dead_domain_left(void **state)
{
    tt_env *e = TT_ENV(state);
    leave_dead_domain(e);
    TT_RUN(&r, 10000, CLI, "list", "--domain", e->dom);
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "shmbus clean");
    TT_RUN(&r, 10000, CLI, "clean", e->dom);
    tt_assert_exit(&r, 0);
    assert_int_equal(tt_count_segments(e->dom), 0);
    TT_RUN(&r, 10000, CLI, "clean", e->dom);
    tt_assert_exit(&r, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TT_TEST(test_every_subcommand_has_help_and_exits_0),
        TT_TEST(test_bad_command_lines_exit_2),
        TT_TEST(test_commands_on_a_domain_that_does_not_run_exit_3),
        TT_TEST(test_list_and_info_show_publishers_and_subscribers),
        TT_TEST(test_info_of_an_unknown_topic_exits_3),
        TT_TEST(test_echo_prints_sequence_size_latency_and_first_bytes),
        TT_TEST(test_pub_sends_a_file_that_echo_receives),
        TT_TEST(test_pub_size_takes_the_config_size_grammar),
        TT_TEST(test_echo_of_a_topic_the_config_does_not_allow_exits_3),
        TT_TEST(test_echo_waits_for_a_missing_topic_and_suggests_the_nearest),
        TT_TEST(test_echo_with_wait_waits_for_the_domain_to_start),
        TT_TEST(test_echo_receives_or_counts_every_message_published_after_it_joined),
        TT_TEST(test_a_signal_ends_the_wait_cleanly),
        TT_TEST(test_info_of_an_unknown_topic_suggests_the_nearest),
        TT_TEST(test_hz_and_bw_report_rate_and_bandwidth_each_second),
        TT_TEST(test_config_check_prints_pools_topics_and_total_memory),
        TT_TEST(test_config_check_of_a_broken_file_exits_4_naming_the_file),
        TT_TEST(test_doctor_reports_every_check_and_a_dead_domain),
        TT_TEST(test_clean_refuses_while_a_process_uses_the_domain),
        TT_TEST(test_clean_removes_what_a_dead_domain_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
