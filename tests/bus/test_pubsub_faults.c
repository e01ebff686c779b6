/* Publish/subscribe when things go wrong: a publisher or a subscriber killed with SIGKILL
 * mid-stream, and a pool that runs dry. (Forged descriptors: test_pubsub_forged.c.)
 *
 * Same rules as test_pubsub.c: every child is forked before the test process touches the bus,
 * children report by exit status, and the test process, a participant that outlives them,
 * reads the pools' counters at the end and closes the domain last (nothing may be left).
 * Timing is asserted twice only: a dead participant's blocks are back within 1 s, and a loan
 * with "on_full": "wait" gives up no sooner than its wait_ms.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pubsub_common.h"

#define RECLAIM_BOUND_MS 1000

static double ms_since(uint64_t t0) { return (double)(proc_now_ns() - t0) / 1e6; }

/* Poll the pool's counters every millisecond until done(stats) or the safety deadline;
 * returns the milliseconds since t0. */
static double poll_pool(shmbus_domain *d, const char *pool, uint64_t t0,
                        bool (*done)(const shmbus_class_stats *t, uint64_t arg), uint64_t arg)
{
    uint64_t deadline = t0 + (uint64_t)PS_SAFETY_MS * 1000000u;
    for (;;) {
        shmbus_class_stats t = ps_pool_totals(d, pool);
        if (done(&t, arg))
            return ms_since(t0);
        if (proc_now_ns() > deadline)
            fail_msg("pool %s: still %u blocks used, %llu reclaimed after %d ms", pool, t.used,
                     (unsigned long long)t.reclaims, PS_SAFETY_MS);
        proc_sleep_ms(1);
    }
}

static bool reclaimed_at_least(const shmbus_class_stats *t, uint64_t n) { return t->reclaims >= n; }
static bool used_at_most(const shmbus_class_stats *t, uint64_t n) { return t->used <= n; }

/* ---- kill -9 of a publisher ------------------------------------------------------------------ */

#define CRASH_WINDOW 6 /* < history 8 (crash.json) */
#define CRASH_KEEP 4   /* messages each subscriber keeps */

struct crash_shared {
    _Atomic uint64_t got[2]; /* subscribers' progress: the publisher's window */
    _Atomic uint64_t stop;   /* subscribers: stop receiving */
};

/* Publishes until it is killed. */
static int crash_publisher(const ps_env *e, ps_chan *c, struct crash_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "crash", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    uint64_t rs = 3;
    for (uint64_t seq = 1;; seq++) {
        uint64_t need = seq > CRASH_WINDOW + 1 ? seq - 1 - CRASH_WINDOW : 0;
        PS_CHECK(ps_wait_counters(sh->got, 2, need, PS_SAFETY_MS) == 0, "subscribers stalled");
        PS_OK(ps_publish(p, ps_rand_len(&rs, 4096), seq, 0, 0));
    }
}

/* Keeps the last CRASH_KEEP messages until the publisher is dead and its holds reclaimed,
 * then checks they are intact and releases them. */
static int crash_subscriber(const ps_env *e, ps_chan *c, struct crash_shared *sh, unsigned i)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "crash", NULL, &s));
    shmbus_msg *keep[CRASH_KEEP] = {0};
    uint64_t n = 0;
    while (!atomic_load(&sh->stop)) {
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        if (rc == SHMBUS_ETIMEDOUT)
            continue;
        PS_OK(rc);
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message %llu", (unsigned long long)n);
        if (keep[n % CRASH_KEEP])
            PS_OK(shmbus_msg_release(keep[n % CRASH_KEEP]));
        keep[n++ % CRASH_KEEP] = m;
        atomic_store(&sh->got[i], shmbus_msg_seq(m));
    }
    PS_CHECK(n >= CRASH_KEEP, "received only %llu", (unsigned long long)n);
    PS_CHECK(proc_tell(c->up[1], 'S') == 0, "pipe");
    PS_CHECK(proc_hear(c->down[0], 'v', PS_SAFETY_MS) == 0, "no 'v'");
    for (unsigned k = 0; k < CRASH_KEEP; k++) {
        ps_hdr h;
        PS_CHECK(ps_check_msg(keep[k], &h) == 0,
                 "a message held across the publisher's death is no longer intact");
        PS_OK(shmbus_msg_release(keep[k]));
    }
    PS_CHECK(proc_tell(c->up[1], 'R') == 0, "pipe");
    PS_CHECK(proc_hear(c->down[0], 'x', PS_SAFETY_MS) == 0, "no 'x'");
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_killed_publisher_leaves_held_messages_readable_and_its_blocks_come_back(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "crash.json");
    struct crash_shared *sh = ps_shared(e, sizeof *sh);
    ps_chan ch[3];
    pid_t pid[3];
    for (unsigned i = 0; i < 3; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? crash_publisher(e, &ch[i], sh) : crash_subscriber(e, &ch[i], sh, i - 1));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 3; i++)
        ps_tell_child(&ch[i], 'g');
    if (ps_wait_counters(sh->got, 2, 100, PS_CHILD_MS) != 0)
        fail_msg("the stream did not get going (see the children's stderr)");

    uint64_t t0 = proc_now_ns();
    ps_kill9(pid[0], "publisher");
    double ms = poll_pool(d, "frames", t0, reclaimed_at_least, 1);
    print_message("    killed publisher's holds reclaimed %.1f ms after kill -9\n", ms);
    assert_true(ms <= RECLAIM_BOUND_MS);

    atomic_store(&sh->stop, 1);
    ps_hear_child(&ch[1], 'S', PS_CHILD_MS, "subscriber 1 stopped");
    ps_hear_child(&ch[2], 'S', PS_CHILD_MS, "subscriber 2 stopped");
    /* Take every block that is free now and overwrite it: had the reclaim freed a block a
     * subscriber still holds, its checksum would break. */
    shmbus_pool *pool;
    ps_assert_ok(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    shmbus_msg *scribble[64];
    unsigned ns = 0;
    while (ns < 64 && shmbus_pool_loan(pool, 4096, 0, &scribble[ns]) == 0)
        memset(shmbus_msg_data(scribble[ns++]), 0xa5, 4096);
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    assert_int_equal(t.used, t.total); /* the subscribers' blocks and ours */
    assert_true(ns <= t.total - CRASH_KEEP);
    ps_tell_child(&ch[1], 'v');
    ps_tell_child(&ch[2], 'v');
    ps_hear_child(&ch[1], 'R', PS_CHILD_MS, "subscriber 1 checked and released");
    ps_hear_child(&ch[2], 'R', PS_CHILD_MS, "subscriber 2 checked and released");
    for (unsigned k = 0; k < ns; k++)
        ps_assert_ok(shmbus_msg_release(scribble[k]));
    t0 = proc_now_ns();
    ms = poll_pool(d, "frames", t0, used_at_most, 0);
    print_message("    every block back %.1f ms after the last release\n", ms);
    assert_true(ms <= RECLAIM_BOUND_MS);

    ps_tell_child(&ch[1], 'x');
    ps_tell_child(&ch[2], 'x');
    proc_expect_ok(pid[1], PS_CHILD_MS, "subscriber 1");
    proc_expect_ok(pid[2], PS_CHILD_MS, "subscriber 2");
    for (unsigned i = 0; i < 3; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d);
}

/* ---- kill -9 of a subscriber --------------------------------------------------------------- */

#define VICTIM_KEEP 6

struct subkill_shared {
    _Atomic uint64_t got;         /* the surviving subscriber's progress: the window */
    _Atomic uint64_t victim_last; /* highest seq the victim holds */
    _Atomic uint64_t stop;        /* publisher: stop */
    _Atomic uint64_t total;       /* publisher: messages published, once stopped */
};

static int subkill_publisher(const ps_env *e, ps_chan *c, struct subkill_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "crash", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    uint64_t rs = 9, seq = 0;
    while (!atomic_load(&sh->stop)) {
        seq++;
        uint64_t need = seq > CRASH_WINDOW + 1 ? seq - 1 - CRASH_WINDOW : 0;
        PS_CHECK(ps_wait_counter(&sh->got, need, PS_SAFETY_MS) == 0, "subscriber stalled");
        PS_OK(ps_publish(p, ps_rand_len(&rs, 4096), seq, 0, 0));
    }
    atomic_store(&sh->total, seq);
    PS_CHECK(ps_wait_counter(&sh->got, seq, PS_SAFETY_MS) == 0, "subscriber stalled");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Takes VICTIM_KEEP messages, keeps them and waits to be killed. */
static int subkill_victim(const ps_env *e, ps_chan *c, struct subkill_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "crash", NULL, &s));
    shmbus_msg *keep[VICTIM_KEEP];
    for (unsigned k = 0; k < VICTIM_KEEP; k++) {
        keep[k] = ps_recv_one(s, "victim");
        atomic_store(&sh->victim_last, shmbus_msg_seq(keep[k]));
    }
    PS_CHECK(proc_tell(c->up[1], 'H') == 0, "pipe");
    for (;;)
        proc_sleep_ms(1000);
}

static int subkill_survivor(const ps_env *e, ps_chan *c, struct subkill_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "crash", NULL, &s));
    uint64_t want = 1;
    for (;;) {
        uint64_t total = atomic_load(&sh->total);
        if (total && want > total)
            break;
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        if (rc == SHMBUS_ETIMEDOUT)
            continue;
        PS_OK(rc);
        ps_expect_seq(m, want);
        atomic_store(&sh->got, want++);
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == want - 1 && st.expired + st.dropped + st.overflow + st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_killed_subscriber_blocks_come_back_while_the_others_go_on(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "crash.json");
    struct subkill_shared *sh = ps_shared(e, sizeof *sh);
    ps_chan ch[3];
    pid_t pid[3];
    for (unsigned i = 0; i < 3; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0   ? subkill_publisher(e, &ch[i], sh)
                  : i == 1 ? subkill_victim(e, &ch[i], sh)
                           : subkill_survivor(e, &ch[i], sh));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 3; i++)
        ps_tell_child(&ch[i], 'g');
    ps_hear_child(&ch[1], 'H', PS_CHILD_MS, "victim holds its messages");
    /* Once the publisher is a history (8) past them, the victim is their only holder. */
    uint64_t past = atomic_load(&sh->victim_last) + 16;
    if (ps_wait_counter(&sh->got, past, PS_CHILD_MS) != 0)
        fail_msg("the stream stalled before seq %llu", (unsigned long long)past);
    uint64_t before = ps_pool_totals(d, "frames").reclaims;

    uint64_t t0 = proc_now_ns();
    ps_kill9(pid[1], "victim subscriber");
    double ms = poll_pool(d, "frames", t0, reclaimed_at_least, before + VICTIM_KEEP);
    print_message("    killed subscriber's %d blocks back %.1f ms after kill -9\n", VICTIM_KEEP,
                  ms);
    assert_true(ms <= RECLAIM_BOUND_MS);

    /* The others go on: a few hundred more messages, all of them delivered. */
    uint64_t later = atomic_load(&sh->got) + 300;
    if (ps_wait_counter(&sh->got, later, PS_CHILD_MS) != 0)
        fail_msg("the stream stalled after the subscriber was killed");
    atomic_store(&sh->stop, 1);
    proc_expect_ok(pid[2], PS_CHILD_MS, "surviving subscriber");
    proc_expect_ok(pid[0], PS_CHILD_MS, "publisher");
    for (unsigned i = 0; i < 3; i++)
        ps_chan_close(&ch[i]);
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    assert_int_equal(t.reclaims - before, VICTIM_KEEP); /* exactly the victim's holds */
    ps_assert_pool_drained(d, "frames", atomic_load(&sh->total));
    ps_close_domain(e, d);
}

/* ---- full pool --------------------------------------------------------------------------- */

struct full_shared {
    double fail_ms, timeout_ms, wait_ms; /* how long the loaner's three loans took */
};

/* Holds both blocks of pool "pwait"; releases one 200 ms after 'W'. */
static int full_holder(const ps_env *e, ps_chan *c)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pool *pool;
    PS_OK(shmbus_pool_open(d, "pwait", NULL, 0, &pool));
    shmbus_msg *m[2];
    PS_OK(shmbus_pool_loan(pool, 100, 0, &m[0]));
    PS_OK(shmbus_pool_loan(pool, 100, 0, &m[1]));
    PS_CHECK(proc_tell(c->up[1], 'H') == 0, "pipe");
    PS_CHECK(proc_hear(c->down[0], 'W', PS_SAFETY_MS) == 0, "no 'W'");
    proc_sleep_ms(200);
    PS_OK(shmbus_msg_release(m[0]));
    PS_CHECK(proc_hear(c->down[0], 'x', PS_SAFETY_MS) == 0, "no 'x'");
    PS_OK(shmbus_msg_release(m[1]));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Loans from the three topics of full.json, step by step as the test process says. */
static int full_loaner(const ps_env *e, ps_chan *c, struct full_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *pf, *pw, *pl;
    shmbus_msg *m[2];
    PS_OK(shmbus_pub_open(d, "t_fail", &pf));
    PS_OK(shmbus_pub_open(d, "t_wait", &pw));
    PS_OK(shmbus_pub_open(d, "t_wait_long", &pl));
    /* "on_full": "fail", the pool exhausted by this publisher's own loans */
    PS_OK(shmbus_pub_loan(pf, 100, &m[0]));
    PS_OK(shmbus_pub_loan(pf, 100, &m[1]));
    uint64_t t0 = proc_now_ns();
    shmbus_msg *x = NULL;
    PS_RC(shmbus_pub_loan(pf, 100, &x), SHMBUS_EFULL);
    sh->fail_ms = ms_since(t0);
    PS_CHECK(x == NULL, "a failed loan gave a message");
    PS_OK(shmbus_msg_release(m[0]));
    PS_OK(shmbus_msg_release(m[1]));
    PS_CHECK(proc_tell(c->up[1], 'a') == 0, "pipe");
    /* "on_full": "wait", "wait_ms": 200, while another process holds every block */
    PS_CHECK(proc_hear(c->down[0], 'b', PS_SAFETY_MS) == 0, "no 'b'");
    t0 = proc_now_ns();
    PS_RC(shmbus_pub_loan(pw, 100, &x), SHMBUS_ETIMEDOUT);
    sh->timeout_ms = ms_since(t0);
    PS_CHECK(sh->timeout_ms >= 200.0, "gave up after %.1f ms, before its wait_ms", sh->timeout_ms);
    PS_CHECK(proc_tell(c->up[1], 'b') == 0, "pipe");
    /* "wait_ms": 30000: the other process releases a block 200 ms later; the loan gets it */
    PS_CHECK(proc_hear(c->down[0], 'c', PS_SAFETY_MS) == 0, "no 'c'");
    t0 = proc_now_ns();
    PS_OK(shmbus_pub_loan(pl, 100, &m[0]));
    sh->wait_ms = ms_since(t0);
    PS_OK(shmbus_msg_release(m[0]));
    PS_OK(shmbus_pub_close(pf));
    PS_OK(shmbus_pub_close(pw));
    PS_OK(shmbus_pub_close(pl));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_full_pool_fails_at_once_or_waits_by_topic_policy(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "full.json");
    struct full_shared *sh = ps_shared(e, sizeof *sh);
    ps_chan ch[2]; /* [0] holder, [1] loaner */
    pid_t pid[2];
    for (unsigned i = 0; i < 2; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? full_holder(e, &ch[i]) : full_loaner(e, &ch[i], sh));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    ps_tell_child(&ch[0], 'g');
    ps_tell_child(&ch[1], 'g');
    ps_hear_child(&ch[1], 'a', PS_CHILD_MS, "loan on a full pool with on_full fail");
    print_message("    on_full fail: SHMBUS_EFULL after %.2f ms\n", sh->fail_ms);
    assert_int_equal(ps_pool_totals(d, "pfail").failed_loans, 1);

    ps_hear_child(&ch[0], 'H', PS_CHILD_MS, "holder took the pool");
    ps_tell_child(&ch[1], 'b');
    ps_hear_child(&ch[1], 'b', PS_CHILD_MS, "loan on a full pool with on_full wait 200 ms");
    print_message("    on_full wait 200 ms: SHMBUS_ETIMEDOUT after %.1f ms\n", sh->timeout_ms);
    assert_int_equal(ps_pool_totals(d, "pwait").failed_loans, 1);

    ps_tell_child(&ch[0], 'W');
    ps_tell_child(&ch[1], 'c');
    proc_expect_ok(pid[1], PS_CHILD_MS, "loaner");
    print_message("    on_full wait 30 s: the loan succeeded after %.1f ms, when the other "
                  "process released a block\n", sh->wait_ms);
    assert_int_equal(ps_pool_totals(d, "pwait").failed_loans, 1);
    ps_tell_child(&ch[0], 'x');
    proc_expect_ok(pid[0], PS_CHILD_MS, "holder");
    for (unsigned i = 0; i < 2; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "pfail", 2);
    ps_assert_pool_drained(d, "pwait", 3);
    ps_close_domain(e, d);
}

PS_MAIN(
    PS_TEST(test_killed_publisher_leaves_held_messages_readable_and_its_blocks_come_back),
    PS_TEST(test_killed_subscriber_blocks_come_back_while_the_others_go_on),
    PS_TEST(test_full_pool_fails_at_once_or_waits_by_topic_policy))
