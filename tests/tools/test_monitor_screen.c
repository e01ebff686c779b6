/* shmbus-monitor's live screen, driven through a pseudo-terminal by tmux: it starts, shows
 * the topic, answers its keys, survives resizes, quits on q and leaves the terminal sane.
 * Skipped (with a message) when tmux is not installed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tooltest.h"

#define CLI SHMBUS_CLI
#define MON SHMBUS_MONITOR
#define PROMPT "ttprompt$"

static tt_result r;
static char tmux_path[512];
static char sock[400]; /* the tmux server's socket, in the test's runtime directory */

static bool find_tmux(void)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(tmux_path, sizeof tmux_path, "%s/tmux", d);
        if (access(tmux_path, X_OK) == 0)
            return true;
    }
    return false;
}

#define TMUX(...) TT_RUN(&r, 10000, tmux_path, "-S", sock, "-f", "/dev/null", __VA_ARGS__)

static void capture(void)
{
    TMUX("capture-pane", "-p", "-t", "tt");
    if (r.code != 0)
        fail_msg("tmux capture-pane failed: %s", r.err);
}

/* Poll the pane until it shows `text` (the last capture stays in r.out). */
static void wait_screen(const char *text, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        capture();
        if (strstr(r.out, text))
            return;
        if (waited >= timeout_ms)
            fail_msg("the screen never showed \"%s\"; it shows:\n%s", text, r.out);
        tt_sleep_ms(100);
    }
}

/* Poll the pane until it no longer shows `text`. */
static void wait_screen_gone(const char *text, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        capture();
        if (!strstr(r.out, text))
            return;
        if (waited >= timeout_ms)
            fail_msg("the screen still shows \"%s\":\n%s", text, r.out);
        tt_sleep_ms(100);
    }
}

static void keys(const char *k) { TMUX("send-keys", "-t", "tt", k); }

/* Quit the monitor with q and wait until its screen is gone, so that what is typed next goes
 * to the shell, not to a monitor that has not read the q yet. */
static void quit_monitor(void)
{
    keys("q");
    wait_screen_gone("q quit", 10000);
}
static void type(const char *text)
{
    TMUX("send-keys", "-t", "tt", "-l", text);
    keys("Enter");
}

/* A bus with one publisher and one subscriber, and a shell in an 80x24 tmux pane. */
static void start(const tt_env *e, pid_t *pub, pid_t *sub)
{
    *pub = TT_SPAWN(NULL, CLI, "pub", "cam/front", "--config", e->config, "--size", "2000",
                    "--rate", "50");
    tt_topic_want w = {.topic = "cam/front", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    *sub = TT_SPAWN(NULL, CLI, "echo", "cam/front", "--domain", e->dom);
    tt_topic_want all = {.topic = "cam/front", .pubs = 1, .subs = 1, .received = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &all, 10000));
    /* a tmux server of its own per test, its socket removed with the runtime directory */
    snprintf(sock, sizeof sock, "%s/tmux.sock", e->rundir);
    TMUX("new-session", "-d", "-s", "tt", "-x", "80", "-y", "24",
         "env PS1='" PROMPT " ' ENV= sh -i");
    tt_assert_exit(&r, 0);
    wait_screen(PROMPT, 5000);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --domain %s --interval 300", MON, e->dom);
    type(cmd);
}

static void stop(pid_t pub, pid_t sub)
{
    TMUX("kill-server");
    assert_int_equal(tt_stop(sub, SIGTERM, 5000), 0);
    assert_int_equal(tt_stop(pub, SIGTERM, 5000), 0);
}

static bool has_token(const char *text, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = strstr(text, tok); p; p = strstr(p + 1, tok)) {
        bool start = p == text || p[-1] == ' ' || p[-1] == '\n' || p[-1] == ';';
        bool end = p[n] == ' ' || p[n] == '\n' || p[n] == ';' || p[n] == 0;
        if (start && end)
            return true;
    }
    return false;
}

static void test_screen_shows_the_topic_and_q_leaves_a_sane_terminal(void **state)
{
    if (!tmux_path[0])
        skip();
    tt_env *e = TT_ENV(state);
    pid_t pub, sub;
    start(e, &pub, &sub);
    wait_screen("cam/front", 10000);
    wait_screen("shmbus-monitor", 1000);
    tt_assert_contains(r.out, e->dom);
    tt_assert_contains(r.out, "POOL");
    tt_assert_contains(r.out, "shmbus-echo");
    tt_assert_contains(r.out, "q quit");

    quit_monitor();
    type("echo rc=$?");
    wait_screen("rc=0", 5000);
    type("stty -a");
    wait_screen("icanon", 5000);
    if (!has_token(r.out, "icanon") || has_token(r.out, "-icanon") || !has_token(r.out, "echo") ||
        has_token(r.out, "-echo"))
        fail_msg("the terminal was left without echo or icanon:\n%s", r.out);
    stop(pub, sub);
}

static void test_keys_open_details_sort_pause_and_resizes_redraw(void **state)
{
    if (!tmux_path[0])
        skip();
    tt_env *e = TT_ENV(state);
    pid_t pub, sub;
    start(e, &pub, &sub);
    wait_screen("cam/front", 10000);

    keys("Enter");
    wait_screen("PUBLISHERS (1)", 3000);
    wait_screen("SUBSCRIBERS (1)", 1000);
    tt_assert_contains(r.out, "rate history");
    keys("Escape");
    wait_screen("USED/TOTAL", 3000);

    keys("s");
    wait_screen("sort:rate", 3000);
    keys("s");
    wait_screen("sort:bw", 3000);
    keys("p");
    wait_screen("[PAUSED]", 3000);
    keys("p");
    for (int i = 0; i < 30; i++) { /* resumed */
        capture();
        if (!strstr(r.out, "[PAUSED]"))
            break;
        tt_sleep_ms(100);
    }
    assert_null(strstr(r.out, "[PAUSED]"));

    TMUX("resize-window", "-t", "tt", "-x", "120", "-y", "40");
    tt_assert_exit(&r, 0);
    wait_screen("HISTORY", 3000);
    TMUX("resize-window", "-t", "tt", "-x", "60", "-y", "14");
    tt_assert_exit(&r, 0);
    tt_sleep_ms(500);
    wait_screen("shmbus-monitor", 3000);
    wait_screen("q quit", 3000);
    for (const char *l = r.out; *l;) { /* nothing drawn past the right edge */
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        char row[1024];
        snprintf(row, sizeof row, "%.*s", (int)len, l);
        int cols = 0;
        for (const char *p = row; *p; p++)
            cols += ((unsigned char)*p & 0xc0) != 0x80;
        if (cols > 60)
            fail_msg("a row of %d columns on a 60-column screen:\n%s", cols, r.out);
        l += len + (eol ? 1 : 0);
    }

    quit_monitor();
    type("echo rc=$?");
    wait_screen("rc=0", 5000);
    stop(pub, sub);
}

/* Stop the test's tmux server (and what runs in it) before the fixture's teardown. */
static int teardown(void **state)
{
    if (tmux_path[0] && sock[0])
        TMUX("kill-server");
    sock[0] = 0;
    return tt_teardown(state);
}

#define SCREEN_TEST(f) cmocka_unit_test_setup_teardown(f, tt_setup, teardown)

int main(void)
{
    if (!find_tmux()) {
        tmux_path[0] = 0;
        fprintf(stderr, "tmux is not installed: the live-screen tests are skipped\n");
    }
    const struct CMUnitTest tests[] = {
        SCREEN_TEST(test_screen_shows_the_topic_and_q_leaves_a_sane_terminal),
        SCREEN_TEST(test_keys_open_details_sort_pause_and_resizes_redraw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
