/* Helpers shared by the shmbus test programs.
 *
 * Fixture: every test gets its own domain name ("t<pid>_<n>") from tu_setup(); tu_teardown()
 * kills any child the test left behind, then fails the test if a segment of that domain is
 * still in the shm directory (and removes it, so one failure does not leak into the host).
 *
 * Children (proc.h): proc_fork() returns 0 in the child, which must leave with _exit() and
 * report a failure only through its exit status (CHILD_CHECK / CHILD_RC). The parent collects
 * it with proc_wait(), which never hangs: a child still running at the deadline is killed.
 */
#ifndef SHMBUS_TESTUTIL_H
#define SHMBUS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "shmpool.h"

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct tu_fixture {
    char dom[SHMPOOL_NAME_MAX + 1]; /* this test's domain name */
    char dom2[SHMPOOL_NAME_MAX + 1]; /* a second one, for tests that need two domains */
} tu_fixture;

int tu_setup(void **state);
/* In main(): run only the tests matching $SHMBUS_TEST_FILTER (a cmocka pattern), if set. */
void tu_apply_filter(void);
int tu_teardown(void **state);
#define TU_TEST(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
#define TU_DOM(state) (((tu_fixture *)*(state))->dom)
#define TU_DOM2(state) (((tu_fixture *)*(state))->dom2)

/* ---- status codes ------------------------------------------------------------------------ */

/* Name and message of a status code, from the one X-macro list in shmbus_errors.h. */
const char *tu_errname(int code);
const char *tu_errmsg(int code);

/* Assert that expr returns want; on mismatch name both codes. */
#define assert_rc(expr, want)                                                               \
    do {                                                                                    \
        int tu_rc_ = (expr);                                                                \
        int tu_want_ = (want);                                                              \
        if (tu_rc_ != tu_want_)                                                             \
            fail_msg("%s returned %d (%s), expected %d (%s)", #expr, tu_rc_,                \
                     tu_errname(tu_rc_), tu_want_, tu_errname(tu_want_));                   \
    } while (0)
#define assert_ok(expr) assert_rc(expr, 0)

/* In a forked child: on failure print where and why, then _exit(CHILD_FAIL). */
#define CHILD_FAIL PROC_FAIL
#define CHILD_CHECK(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "child %d: %s:%d: check failed: %s\n", (int)getpid(), __FILE__, \
                    __LINE__, #cond);                                                       \
            _exit(CHILD_FAIL);                                                              \
        }                                                                                   \
    } while (0)
#define CHILD_RC(expr, want)                                                                \
    do {                                                                                    \
        int tu_rc_ = (expr);                                                                \
        int tu_want_ = (want);                                                              \
        if (tu_rc_ != tu_want_) {                                                           \
            fprintf(stderr, "child %d: %s:%d: %s returned %d (%s), expected %d (%s)\n",     \
                    (int)getpid(), __FILE__, __LINE__, #expr, tu_rc_, tu_errname(tu_rc_),   \
                    tu_want_, tu_errname(tu_want_));                                        \
            _exit(CHILD_FAIL);                                                              \
        }                                                                                   \
    } while (0)
#define CHILD_OK(expr) CHILD_RC(expr, 0)

/* ---- shm directory ----------------------------------------------------------------------- */

/* $SHMBUS_SHM_DIR if set, else /dev/shm (where the library puts segments by default). */
const char *tu_shm_dir(void);
/* Number of files in dir whose name starts with "shmbus.<domain>."; print lists them. */
int tu_count_segments(const char *dir, const char *domain, bool print);
/* Whether "shmbus.<domain>.<suffix>" exists in dir. */
bool tu_segment_exists(const char *dir, const char *domain, const char *suffix);
/* Unlink every "shmbus.<domain>.*" in dir; returns how many. */
int tu_remove_segments(const char *dir, const char *domain);
/* Number of entries in dir besides . and .. */
int tu_count_entries(const char *dir, bool print);

/* ---- misc -------------------------------------------------------------------------------- */

/* splitmix64 */
uint64_t tu_rand(uint64_t *s);
/* SHMBUS_STRESS_SECONDS, default 3. */
int tu_stress_seconds(void);
bool tu_is_root(void);

/* Sum of stats.used over the pool's classes. */
uint32_t tu_pool_used(const shmbus_pool *p);
/* stats of one class (asserts). */
void tu_class_stats(const shmbus_pool *p, unsigned cls, shmpool_class_stats *out);
/* OR of every used block's holder mask; *nused counts used blocks (may be NULL). */
uint64_t tu_pool_holders(const shmbus_pool *p, unsigned *nused);
/* Holder mask of one block (0 if free). */
uint64_t tu_block_holders(const shmbus_pool *p, unsigned cls, uint32_t index);
/* Asserts shmpool_domain_check is consistent with no orphan holds and no imbalance. */
void tu_assert_consistent(shmpool_domain *d);

/* Open, asserting success (not for children); a failure is reported at the caller's line. */
#define tu_open_domain(...) tu_open_domain_at(__FILE__, __LINE__, __VA_ARGS__)
#define tu_open_pool(...) tu_open_pool_at(__FILE__, __LINE__, __VA_ARGS__)
shmpool_domain *tu_open_domain_at(const char *file, int line, const char *name);
shmbus_pool *tu_open_pool_at(const char *file, int line, shmpool_domain *d, const char *name,
                             const shmpool_class *classes, unsigned nclasses);
shmpool_block_info tu_info(const shmbus_block *b);

/* Payload pattern derived from the block's loan number (its first and last 8 bytes), so a
 * reader can tell that it got exactly the block a descriptor names, and a holder can tell
 * that nobody reused its block meanwhile. Safe in children. */
void tu_write_pattern(shmbus_block *b);
bool tu_has_pattern(const shmbus_block *b, uint64_t seq);

/* Loan `size` bytes without waiting, asserting success; not for children. */
shmbus_block *tu_loan(shmbus_pool *p, uint64_t size);

/* Domain options with the reaper off (tests that sweep by hand). */
void tu_opts_no_reaper(shmpool_domain_opts *o);

/* Loan a block of `len` bytes (no wait), write the pattern and describe it (user 0), asserting
 * each step; not for children. */
shmbus_block *tu_loan_described(shmbus_pool *p, uint64_t len, shmpool_desc *desc);
/* Encode a descriptor and write it to fd, asserting success; not for children. */
void tu_send_desc(int fd, const shmpool_desc *desc);
/* In a child: read one encoded descriptor from fd (20 s at most) and decode it; on failure
 * _exit(CHILD_FAIL). */
void tu_child_recv_desc(int fd, shmpool_desc *desc);

#endif
