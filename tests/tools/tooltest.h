/* Helpers for the tests of shmbus-monitor and the shmbus CLI.
 *
 * The tests run the built programs (paths from the compile definitions SHMBUS_CLI and
 * SHMBUS_MONITOR) by fork + exec, so no test process ever uses nng: the parent only opens
 * domains as an observer (which takes no socket) to check what the programs did.
 *
 * Fixture: each test gets a domain name ("tt<pid>_<n>"), a runtime directory made with
 * mkdtemp and exported as SHMBUS_RUNTIME_DIR, and a small configuration file for its domain.
 * Teardown stops every program the test started, fails the test if a segment of its domain
 * is left in the shm directory (removing it), and removes the runtime directory.
 */
#ifndef SHMBUS_TOOLTEST_H
#define SHMBUS_TOOLTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "shmbus.h"

typedef struct tt_env {
    char dom[32];      /* this test's domain */
    char rundir[256];  /* its runtime directory ($SHMBUS_RUNTIME_DIR) */
    char config[320];  /* <rundir>/domain.json: the domain with a small pool "tt" */
} tt_env;

int tt_setup(void **state);
int tt_teardown(void **state);
#define TT_TEST(f) cmocka_unit_test_setup_teardown(f, tt_setup, tt_teardown)
#define TT_ENV(state) ((tt_env *)*(state))

/* A finished program: exit code (128 + signal if one ended it, -1 if it was still running
 * at the deadline and got killed) and what it wrote. */
typedef struct tt_result {
    int code;
    char out[1 << 17];
    char err[1 << 14];
} tt_result;

/* Run argv to completion (at most timeout_ms), capturing stdout and stderr. */
void tt_run(tt_result *r, int timeout_ms, const char *const *argv);
#define TT_RUN(r, timeout_ms, ...) tt_run((r), (timeout_ms), (const char *const[]){__VA_ARGS__, NULL})

/* Start argv in the background, stdout and stderr to out_path (NULL: /dev/null). The
 * teardown stops it if the test does not. */
pid_t tt_spawn(const char *out_path, const char *const *argv);
#define TT_SPAWN(out, ...) tt_spawn((out), (const char *const[]){__VA_ARGS__, NULL})
/* Send sig (0: none) and wait up to timeout_ms: the exit code as in tt_result.code. */
int tt_stop(pid_t pid, int sig, int timeout_ms);
/* Whether pid is still running (not reaped). */
bool tt_running(pid_t pid);

/* A snapshot of a running domain through an observer, or NULL if none runs. */
shmbus_snapshot *tt_snapshot(const char *dom);
/* Poll (every 50 ms, up to timeout_ms) until pred holds for a snapshot of dom. */
bool tt_wait_for(const char *dom, bool (*pred)(const shmbus_snapshot *s, const void *ctx),
                 const void *ctx, int timeout_ms);
/* pred for tt_wait_for: topic ctx has at least (pubs, subs, received by each subscriber). */
typedef struct tt_topic_want {
    const char *topic;
    unsigned pubs, subs;
    uint64_t received;
} tt_topic_want;
bool tt_topic_ready(const shmbus_snapshot *s, const void *want);
const shmbus_topic_info *tt_find_topic(const shmbus_snapshot *s, const char *name);

/* Files whose name starts with "shmbus.<dom>." in the shm directory. */
int tt_count_segments(const char *dom);
const char *tt_shm_dir(void);

void tt_write_file(const char *path, const char *text);
/* Poll (every 50 ms, up to timeout_ms) until the file at path contains needle. */
bool tt_wait_file_contains(const char *path, const char *needle, int timeout_ms);
/* How often needle occurs in haystack. */
int tt_count(const char *haystack, const char *needle);
/* Read a whole (small) file into buf; "" if it cannot. */
void tt_read_file(const char *path, char *buf, size_t len);
void tt_sleep_ms(unsigned ms);

/* Fail the test, showing both outputs, unless r exited with `code`. */
#define tt_assert_exit(r, want)                                                              \
    do {                                                                                     \
        if ((r)->code != (want))                                                             \
            fail_msg("exit code %d, expected %d\n--- stdout:\n%s\n--- stderr:\n%s", (r)->code, \
                     (want), (r)->out, (r)->err);                                            \
    } while (0)
/* Fail unless haystack contains needle, showing haystack. */
#define tt_assert_contains(haystack, needle)                                                 \
    do {                                                                                     \
        if (!strstr((haystack), (needle)))                                                   \
            fail_msg("expected \"%s\" in:\n%s", (needle), (haystack));                      \
    } while (0)

#endif
