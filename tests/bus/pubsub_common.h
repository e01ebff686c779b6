/* Helpers of the multi-process pub/sub tests (test_pubsub*.c). Public API only (shmbus.h).
 *
 * Fixture: ps_setup() gives every test its own domain name ("b<pid>x<n>") and a runtime
 * directory under a fresh mkdtemp directory; ps_close_domain() closes the test's own domain
 * (the last participant out) and asserts that no "shmbus.<domain>.*" is left in the shm
 * directory and that the runtime directory "shmbus.<domain>" is gone. ps_teardown() kills
 * leftover children and cleans up whatever a failed test left behind (and fails then).
 *
 * Processes (proc.h: proc_fork, proc_wait, ...): nng aborts a forked child that uses nng
 * after its parent did, so a test forks every child first; the children wait for a "go"
 * token and open their own domain, and only then does the parent open anything. A child
 * reports failure through its exit status and a line on stderr (PS_CHECK, PS_RC), never
 * through cmocka.
 */
#ifndef PUBSUB_COMMON_H
#define PUBSUB_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "shmbus.h"

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct ps_env {
    char dom[32];          /* this test's domain */
    char tmpdir[64];       /* mkdtemp directory: the runtime dir is tmpdir/shmbus.<dom> */
    char config[512];      /* JSON file in tests/bus/pubsub/ ("" : the embedded default) */
    void *shared;          /* ps_shared(): MAP_SHARED memory the children inherit */
    size_t shared_len;
    shmbus_domain *d;      /* the test process's own open domain, closed by teardown if a
                              failed test left it open */
} ps_env;

int ps_setup(void **state);
int ps_teardown(void **state);
#define PS_TEST(f) cmocka_unit_test_setup_teardown(f, ps_setup, ps_teardown)
#define PS_ENV(state) ((ps_env *)*(state))

/* Use tests/bus/pubsub/<file> as the domain's configuration; with $SHMBUS_TEST_DELIVERY set,
 * a copy in e->tmpdir with that "delivery" on every topic (tests/common/delivery.h). */
void ps_use_config(ps_env *e, const char *file);
/* First line of a test about nng itself (raw nng sockets, dial failures, fd limits on
 * sockets): it skips in a run on the shm delivery path. */
void ps_nng_only(void);
/* Zeroed memory shared with the children forked afterwards (one region per test). */
void *ps_shared(ps_env *e, size_t len);

/* Open the test's domain (config, runtime dir). Returns the status; for children. */
int ps_domain_open(const ps_env *e, shmbus_domain **out);
/* In the test process: open it, asserting success (remembered in e->d). */
shmbus_domain *ps_open_domain(ps_env *e);
/* In the test process: close it (asserting success) and assert nothing of the domain is
 * left: no shmbus.<dom>.* in the shm directory, no runtime directory. */
void ps_close_domain(ps_env *e, shmbus_domain *d);

/* Sum of the classes' counters of pool `name` of d (opens the pool; asserts). */
shmbus_class_stats ps_pool_totals(shmbus_domain *d, const char *name);

/* ---- children ---------------------------------------------------------------------------- */

/* Kill a child with SIGKILL and reap it, asserting that the kill is what ended it. */
void ps_kill9(pid_t pid, const char *what);

#define PS_FAIL PROC_FAIL
/* In a child: report a failed check with where and why, then _exit(PS_FAIL). */
#define PS_CHECK(cond, ...)                                                                 \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "child %d: %s:%d: check failed: %s: ", (int)getpid(), __FILE__, \
                    __LINE__, #cond);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
            _exit(PS_FAIL);                                                                 \
        }                                                                                   \
    } while (0)
#define PS_RC(expr, want)                                                                   \
    do {                                                                                    \
        int ps_rc_ = (expr), ps_want_ = (want);                                             \
        if (ps_rc_ != ps_want_) {                                                           \
            fprintf(stderr, "child %d: %s:%d: %s returned %s, expected %s (%s)\n",          \
                    (int)getpid(), __FILE__, __LINE__, #expr, shmbus_errname(ps_rc_),       \
                    shmbus_errname(ps_want_), shmbus_last_error());                         \
            _exit(PS_FAIL);                                                                 \
        }                                                                                   \
    } while (0)
#define PS_OK(expr) PS_RC(expr, 0)
/* In the test process. */
#define ps_assert_rc(expr, want)                                                            \
    do {                                                                                    \
        int ps_rc_ = (expr), ps_want_ = (want);                                             \
        if (ps_rc_ != ps_want_)                                                             \
            fail_msg("%s returned %s, expected %s (%s)", #expr, shmbus_errname(ps_rc_),      \
                     shmbus_errname(ps_want_), shmbus_last_error());                        \
    } while (0)
#define ps_assert_ok(expr) ps_assert_rc(expr, 0)

/* ---- handshakes ---------------------------------------------------------------------------- */

/* Two pipes between the test process and one child: `down` to the child, `up` from it. Make
 * it before forking; each side then calls its ps_chan_* once to close the other's ends, so a
 * dead peer reads as EOF instead of a hang. */
typedef struct ps_chan {
    int down[2];
    int up[2];
} ps_chan;
void ps_chan_make(ps_chan *c);
void ps_chan_child(ps_chan *c);   /* in the child, right after fork */
void ps_chan_parent(ps_chan *c);  /* in the parent, after forking that child */
void ps_chan_close(ps_chan *c);
/* Parent side, asserting: tell the child / hear from it. */
void ps_tell_child(ps_chan *c, char token);
void ps_hear_child(ps_chan *c, char token, int timeout_ms, const char *what);

/* ---- time and scale ------------------------------------------------------------------------ */

/* n scaled by $SHMBUS_TEST_SCALE percent (default 100), at least `min`. */
unsigned ps_scaled(unsigned n, unsigned min);
/* A safety deadline in ms (never a pass/fail timing): base, times 5 under sanitizers. */
int ps_patience(int base_ms);

/* Wait until *c >= v (sleeping in short steps): 0, or -1 after timeout_ms. */
int ps_wait_counter(_Atomic uint64_t *c, uint64_t v, int timeout_ms);
/* Wait until the smallest of c[0..n) >= v. */
int ps_wait_counters(_Atomic uint64_t *c, unsigned n, uint64_t v, int timeout_ms);

/* ---- payloads ------------------------------------------------------------------------------ */

/* A message's payload: a header naming it, then bytes derived from (seq, src), with a
 * checksum over everything. PS_MIN_LEN is the smallest payload. */
typedef struct ps_hdr {
    uint64_t seq;
    uint64_t len;
    uint32_t src;
    uint32_t flags;
    uint64_t sum;
} ps_hdr;
#define PS_MIN_LEN ((uint64_t)sizeof(ps_hdr))
#define PS_FLAG_FINAL 1u

uint64_t ps_rand(uint64_t *state);
/* A random length in [PS_MIN_LEN, max]: mostly small, sometimes up to max. */
uint64_t ps_rand_len(uint64_t *state, uint64_t max);
void ps_fill(void *buf, uint64_t len, uint64_t seq, uint32_t src, uint32_t flags);
/* 0 if buf holds an intact payload of `len` bytes (then *h is its header), -1 if not. */
int ps_verify(const void *buf, uint64_t len, ps_hdr *h);
/* Loan len bytes from p, fill them as payload (seq, src, flags), publish: the status. */
int ps_publish(shmbus_pub *p, uint64_t len, uint64_t seq, uint32_t src, uint32_t flags);
/* Check a received message: intact payload whose header seq equals shmbus_msg_seq and whose
 * length equals shmbus_msg_length. 0, or -1 with the reason on stderr. */
int ps_check_msg(const shmbus_msg *m, ps_hdr *h);

/* ---- child side ------------------------------------------------------------------------------ */

/* The deadline of any wait in a child: failing on it, never passing. The test process waits
 * longer for a child (PS_CHILD_MS), so that a stuck child can still say why before it is
 * killed. */
#define PS_SAFETY_MS ps_patience(60000)
#define PS_CHILD_MS (2 * PS_SAFETY_MS)

/* Child preamble: take the child's ends of c, wait for the go token 'g', open the domain. */
shmbus_domain *ps_child_start(const ps_env *e, ps_chan *c);
/* The next message within PS_SAFETY_MS (fails the child otherwise). */
shmbus_msg *ps_recv_one(shmbus_sub *s, const char *what);
/* Check that m is intact and has seq `want`, then release it (fails the child otherwise). */
void ps_expect_seq(shmbus_msg *m, uint64_t want);
shmbus_sub_counters ps_sub_stats(const shmbus_sub *s);

#define PS_SUB_FMT "received %llu expired %llu dropped %llu overflow %llu invalid %llu held %llu"
#define PS_SUB_ARGS(c)                                                                       \
    (unsigned long long)(c).received, (unsigned long long)(c).expired,                       \
        (unsigned long long)(c).dropped, (unsigned long long)(c).overflow,                   \
        (unsigned long long)(c).invalid, (unsigned long long)(c).held

/* ---- exact loss accounting (for any test with subscribers) ---------------------------------- */

/* The accounting identity of every (publisher, s) pair (shmbus_sub_peer_counters): each
 * sequence after base up to last_seq is counted once,
 *     last_seq - base == received + expired + dropped + overflow + invalid,
 * and the pairs' sums match s's own counters. With all_closed, every pair must also be closed
 * (its publisher left and its end is accounted). Returns the number of pairs, or -1 with the
 * reason on stderr. Child side: call it from the subscriber's process. */
int ps_check_accounting(shmbus_sub *s, bool all_closed);
/* Receive (releasing, checking payloads) until s has `pairs` pairs and all are closed, then
 * check the identity: the number of messages received, or -1 (reason on stderr) if that did
 * not happen within PS_SAFETY_MS. Use after the publishers closed or were killed. */
int64_t ps_drain_until_closed(shmbus_sub *s, unsigned pairs);
/* The pair of publisher `id` (fails the child if s has none). */
shmbus_peer_counters ps_pair(shmbus_sub *s, uint64_t id);
#define PS_PAIR_FMT                                                                         \
    "base %llu last %llu received %llu expired %llu dropped %llu overflow %llu invalid %llu " \
    "forged %llu%s"
#define PS_PAIR_ARGS(p)                                                                      \
    (unsigned long long)(p).base, (unsigned long long)(p).last_seq,                          \
        (unsigned long long)(p).received, (unsigned long long)(p).expired,                   \
        (unsigned long long)(p).dropped, (unsigned long long)(p).overflow,                   \
        (unsigned long long)(p).invalid, (unsigned long long)(p).forged,                     \
        (p).closed ? " closed" : ""

/* In the test process, once every other participant is gone: no block of pool `pool` is in
 * use and each loan was freed once; with loans != 0, that many loans were made. */
void ps_assert_pool_drained(shmbus_domain *d, const char *pool, uint64_t loans);

/* main() of a test file, running the tests given (cmocka_unit_test* entries). Usage:
 * PROGRAM [PATTERN]: run only the tests whose name matches (cmocka's filter, '*'). */
#define PS_MAIN(...)                                                                        \
    int main(int argc, char **argv)                                                         \
    {                                                                                       \
        if (argc > 1)                                                                       \
            cmocka_set_test_filter(argv[1]);                                                \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                    \
        return cmocka_run_group_tests(tests, NULL, NULL);                                   \
    }

#endif
