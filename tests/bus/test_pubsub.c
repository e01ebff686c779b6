/* Publish/subscribe across processes: delivery, order, integrity and the accounting of every
 * loss. Real processes (fork), real shared memory, real nng sockets over ipc://.
 *
 * Each test forks its children before it touches the bus (nng aborts a child that uses nng
 * after its parent did); the children wait for a go token, open their own domain and report
 * through their exit status. The test process opens the domain too, as a bystander that
 * outlives the children, so it can read the pools' counters after they are gone, and closes
 * it last: then nothing of the domain may be left (pubsub_common.h).
 *
 * Publishers that must not lose a message to a subscriber are paced by a credit window in
 * shared memory: a publisher publishes seq s only when every such subscriber has received
 * s - 1 - W. With W < history, no message can leave the publisher's history before those
 * subscribers took it, and no nng queue can hold more than W + 1 descriptors, so "keeps up"
 * is exact and loss-free delivery does not depend on timing.
 *
 * Message counts scale with $SHMBUS_TEST_SCALE (percent, default 100).
 */
#include <stdlib.h>
#include <string.h>

#include "pubsub_common.h"

/* ---- 1 publisher, 4 subscribers --------------------------------------------------------- */

#define FANOUT_SUBS 4
#define FANOUT_WINDOW 16 /* < history 32 (fanout.json) */

struct fanout_shared {
    _Atomic uint64_t got[FANOUT_SUBS]; /* highest seq each subscriber has received */
};

static int fanout_publisher(const ps_env *e, ps_chan *c, struct fanout_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "fanout", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, FANOUT_SUBS, PS_SAFETY_MS));
    uint64_t rs = 0x5eed;
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint64_t need = seq > FANOUT_WINDOW + 1 ? seq - 1 - FANOUT_WINDOW : 0;
        PS_CHECK(ps_wait_counters(sh->got, FANOUT_SUBS, need, PS_SAFETY_MS) == 0,
                 "subscribers stopped at seq < %llu", (unsigned long long)need);
        PS_OK(ps_publish(p, ps_rand_len(&rs, 64 * 1024), seq, 0, 0));
    }
    /* Closing releases the history: only after everyone has taken the last message. */
    PS_CHECK(ps_wait_counters(sh->got, FANOUT_SUBS, n, PS_SAFETY_MS) == 0, "subscribers stalled");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int fanout_subscriber(const ps_env *e, ps_chan *c, struct fanout_shared *sh, unsigned i,
                             unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "fanout", NULL, &s));
    uint64_t publisher = 0;
    for (uint64_t want = 1; want <= n; want++) {
        shmbus_msg *m = ps_recv_one(s, "fanout subscriber");
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message %llu is not intact", (unsigned long long)want);
        PS_CHECK(shmbus_msg_seq(m) == want, "expected seq %llu, got %llu",
                 (unsigned long long)want, (unsigned long long)shmbus_msg_seq(m));
        if (!publisher)
            publisher = shmbus_msg_publisher(m);
        PS_CHECK(publisher && shmbus_msg_publisher(m) == publisher, "publisher id changed");
        PS_OK(shmbus_msg_release(m));
        atomic_store(&sh->got[i], want);
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == n && st.expired == 0 && st.dropped == 0 && st.overflow == 0 &&
                 st.invalid == 0 && st.held == 0,
             "subscriber %u: " PS_SUB_FMT, i, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_one_publisher_reaches_four_subscribers_intact_and_in_order(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "fanout.json");
    struct fanout_shared *sh = ps_shared(e, sizeof *sh);
    unsigned n = ps_scaled(10000, 200);
    ps_chan ch[1 + FANOUT_SUBS];
    pid_t pid[1 + FANOUT_SUBS];
    for (unsigned i = 0; i < 1 + FANOUT_SUBS; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? fanout_publisher(e, &ch[i], sh, n)
                         : fanout_subscriber(e, &ch[i], sh, i - 1, n));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 1 + FANOUT_SUBS; i++)
        ps_tell_child(&ch[i], 'g');
    for (unsigned i = 0; i < 1 + FANOUT_SUBS; i++) {
        proc_expect_ok(pid[i], PS_CHILD_MS, i == 0 ? "publisher" : "subscriber");
        ps_chan_close(&ch[i]);
    }
    ps_assert_pool_drained(d, "frames", n);
    ps_close_domain(e, d);
}

/* ---- a slow subscriber beside a fast one ------------------------------------------------- */

#define SLOW_WINDOW 6 /* < history 8 (slow.json); paced by the fast subscriber only */
#define SLOW_SLEEP_MS 2

struct slow_shared {
    _Atomic uint64_t fast_got;
    _Atomic uint64_t slow_done;
    shmbus_sub_counters slow, fast;
};

static int slow_publisher(const ps_env *e, ps_chan *c, struct slow_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "slow", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    uint64_t rs = 7;
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint64_t need = seq > SLOW_WINDOW + 1 ? seq - 1 - SLOW_WINDOW : 0;
        PS_CHECK(ps_wait_counter(&sh->fast_got, need, PS_SAFETY_MS) == 0,
                 "fast subscriber stalled");
        /* The last message is marked: nng drops the oldest descriptors of a full queue, never
         * the newest, so the slow subscriber gets it and sees every gap before it. */
        PS_OK(ps_publish(p, ps_rand_len(&rs, 4096), seq, 0, seq == n ? PS_FLAG_FINAL : 0));
    }
    PS_CHECK(ps_wait_counter(&sh->fast_got, n, PS_SAFETY_MS) == 0, "fast subscriber stalled");
    PS_CHECK(ps_wait_counter(&sh->slow_done, 1, PS_SAFETY_MS) == 0, "slow subscriber stalled");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int slow_subscriber(const ps_env *e, ps_chan *c, struct slow_shared *sh, bool slow,
                           unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "slow", NULL, &s));
    uint64_t last = 0;
    for (;;) {
        shmbus_msg *m = ps_recv_one(s, slow ? "slow subscriber" : "fast subscriber");
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message %llu is not intact",
                 (unsigned long long)shmbus_msg_seq(m));
        uint64_t seq = shmbus_msg_seq(m);
        PS_CHECK(slow ? seq > last : seq == last + 1, "seq %llu after %llu",
                 (unsigned long long)seq, (unsigned long long)last);
        last = seq;
        if (slow && !(h.flags & PS_FLAG_FINAL))
            proc_sleep_ms(SLOW_SLEEP_MS);
        PS_OK(shmbus_msg_release(m));
        if (!slow)
            atomic_store(&sh->fast_got, seq);
        if (h.flags & PS_FLAG_FINAL)
            break;
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    if (slow) {
        sh->slow = st;
        atomic_store(&sh->slow_done, 1); /* the publisher may close now */
    } else {
        sh->fast = st;
    }
    PS_CHECK(last == n, "the last message was seq %llu, published %u", (unsigned long long)last,
             n);
    /* Every message published after it connected is accounted for, exactly once. */
    PS_CHECK(st.received + st.expired + st.dropped + st.overflow == n,
             "%s subscriber: published %u != " PS_SUB_FMT, slow ? "slow" : "fast", n,
             PS_SUB_ARGS(st));
    PS_CHECK(st.invalid == 0 && st.held == 0, PS_SUB_FMT, PS_SUB_ARGS(st));
    shmbus_peer_counters pc;
    PS_CHECK(shmbus_sub_peer_counters(s, &pc, 1) == 1 && pc.base == 0 && pc.last_seq == n,
             PS_PAIR_FMT, PS_PAIR_ARGS(pc));
    if (slow)
        PS_CHECK(st.received < n, "the slow subscriber lost nothing: the test did not test");
    else
        PS_CHECK(st.received == n, "the fast subscriber lost messages: " PS_SUB_FMT,
                 PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_slow_subscriber_counts_every_loss_and_fast_one_loses_nothing(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "slow.json");
    struct slow_shared *sh = ps_shared(e, sizeof *sh);
    unsigned n = ps_scaled(2000, 200);
    ps_chan ch[3];
    pid_t pid[3];
    for (unsigned i = 0; i < 3; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? slow_publisher(e, &ch[i], sh, n)
                         : slow_subscriber(e, &ch[i], sh, i == 2, n));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 3; i++)
        ps_tell_child(&ch[i], 'g');
    const char *what[3] = {"publisher", "fast subscriber", "slow subscriber"};
    for (unsigned i = 0; i < 3; i++) {
        proc_expect_ok(pid[i], PS_CHILD_MS, what[i]);
        ps_chan_close(&ch[i]);
    }
    print_message("    slow subscriber of %u: " PS_SUB_FMT "\n", n, PS_SUB_ARGS(sh->slow));
    ps_assert_pool_drained(d, "frames", n);
    ps_close_domain(e, d);
}

/* ---- late join with history --------------------------------------------------------------- */

static int history_publisher(const ps_env *e, ps_chan *c)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "hist", &p));
    for (uint64_t seq = 1; seq <= 10; seq++)
        PS_OK(ps_publish(p, 100 + seq, seq, 0, 0));
    PS_CHECK(proc_tell(c->up[1], 'p') == 0, "pipe");
    PS_CHECK(proc_hear(c->down[0], 'l', PS_SAFETY_MS) == 0, "no 'l'");
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    /* Live ones: fewer than the history, so none can leave it before they are taken. */
    for (uint64_t seq = 11; seq <= 13; seq++)
        PS_OK(ps_publish(p, 100 + seq, seq, 0, 0));
    PS_CHECK(proc_hear(c->down[0], 'x', PS_SAFETY_MS) == 0, "no 'x'");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int history_subscriber(const ps_env *e, ps_chan *c, bool history)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    shmbus_sub_opts o = {.history = history};
    PS_OK(shmbus_sub_open(d, "hist", &o, &s));
    shmbus_msg *m;
    if (history) /* the publisher keeps the last 4 (history.json): 7..10, oldest first */
        for (uint64_t seq = 7; seq <= 10; seq++) {
            PS_OK(shmbus_sub_recv(s, 0, &m));
            ps_expect_seq(m, seq);
        }
    PS_RC(shmbus_sub_recv(s, 0, &m), SHMBUS_EAGAIN);
    PS_OK(shmbus_sub_wait_publishers(s, 1, PS_SAFETY_MS));
    PS_CHECK(proc_tell(c->up[1], 'r') == 0, "pipe");
    for (uint64_t seq = 11; seq <= 13; seq++)
        ps_expect_seq(ps_recv_one(s, "late subscriber"), seq);
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == (history ? 7u : 3u) && st.expired == 0 && st.dropped == 0 &&
                 st.overflow == 0 && st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    /* joined after seq 10: counts 11..13; the history is extra */
    shmbus_peer_counters pc;
    PS_CHECK(shmbus_sub_peer_counters(s, &pc, 1) == 1, "one publisher");
    PS_CHECK(pc.base == 10 && pc.last_seq == 13 && pc.received == 3 &&
                 pc.history == (history ? 4u : 0u),
             PS_PAIR_FMT, PS_PAIR_ARGS(pc));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_late_subscriber_gets_history_first_only_when_asked(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "history.json");
    ps_chan ch[3];
    pid_t pid[3];
    for (unsigned i = 0; i < 3; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? history_publisher(e, &ch[i]) : history_subscriber(e, &ch[i], i == 1));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    ps_tell_child(&ch[0], 'g');
    ps_hear_child(&ch[0], 'p', PS_CHILD_MS, "publisher published 1..10");
    ps_tell_child(&ch[1], 'g');
    ps_tell_child(&ch[2], 'g');
    ps_hear_child(&ch[1], 'r', PS_CHILD_MS, "subscriber with history");
    ps_hear_child(&ch[2], 'r', PS_CHILD_MS, "subscriber without history");
    ps_tell_child(&ch[0], 'l');
    proc_expect_ok(pid[1], PS_CHILD_MS, "subscriber with history");
    proc_expect_ok(pid[2], PS_CHILD_MS, "subscriber without history");
    ps_tell_child(&ch[0], 'x');
    proc_expect_ok(pid[0], PS_CHILD_MS, "publisher");
    for (unsigned i = 0; i < 3; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 13);
    ps_close_domain(e, d);
}

/* ---- several publishers on one topic -------------------------------------------------------- */

#define MANY_PUBS 3
#define MANY_WINDOW 8 /* < history 16 (many.json) */

struct many_shared {
    _Atomic uint64_t got[MANY_PUBS]; /* messages of publisher j the subscriber has received */
};

static int many_publisher(const ps_env *e, ps_chan *c, struct many_shared *sh, unsigned j,
                          unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "many", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
    uint64_t rs = 100 + j;
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint64_t need = seq > MANY_WINDOW + 1 ? seq - 1 - MANY_WINDOW : 0;
        PS_CHECK(ps_wait_counter(&sh->got[j], need, PS_SAFETY_MS) == 0, "subscriber stalled");
        PS_OK(ps_publish(p, ps_rand_len(&rs, 4096), seq, j, 0));
    }
    PS_CHECK(ps_wait_counter(&sh->got[j], n, PS_SAFETY_MS) == 0, "subscriber stalled");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int many_subscriber(const ps_env *e, ps_chan *c, struct many_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "many", NULL, &s));
    uint64_t id[MANY_PUBS] = {0};
    for (uint64_t k = 0; k < (uint64_t)MANY_PUBS * n; k++) {
        shmbus_msg *m = ps_recv_one(s, "subscriber of many");
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message is not intact");
        PS_CHECK(h.src < MANY_PUBS, "source %u", h.src);
        uint64_t from = shmbus_msg_publisher(m);
        if (!id[h.src]) {
            for (unsigned j = 0; j < MANY_PUBS; j++)
                PS_CHECK(id[j] != from, "publishers %u and %u share id %llu", j, h.src,
                         (unsigned long long)from);
            id[h.src] = from;
        }
        PS_CHECK(from == id[h.src], "publisher %u's id changed", h.src);
        uint64_t want = atomic_load(&sh->got[h.src]) + 1;
        PS_CHECK(shmbus_msg_seq(m) == want, "publisher %u: expected seq %llu, got %llu", h.src,
                 (unsigned long long)want, (unsigned long long)shmbus_msg_seq(m));
        PS_OK(shmbus_msg_release(m));
        atomic_store(&sh->got[h.src], want);
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == (uint64_t)MANY_PUBS * n && st.expired == 0 && st.dropped == 0 &&
                 st.overflow == 0 && st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_many_publishers_each_arrive_complete_and_in_their_order(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "many.json");
    struct many_shared *sh = ps_shared(e, sizeof *sh);
    unsigned n = ps_scaled(2000, 100);
    ps_chan ch[1 + MANY_PUBS];
    pid_t pid[1 + MANY_PUBS];
    for (unsigned i = 0; i < 1 + MANY_PUBS; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? many_subscriber(e, &ch[i], sh, n)
                         : many_publisher(e, &ch[i], sh, i - 1, n));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 1 + MANY_PUBS; i++)
        ps_tell_child(&ch[i], 'g');
    for (unsigned i = 0; i < 1 + MANY_PUBS; i++) {
        proc_expect_ok(pid[i], PS_CHILD_MS, i == 0 ? "subscriber" : "publisher");
        ps_chan_close(&ch[i]);
    }
    ps_assert_pool_drained(d, "frames", (uint64_t)MANY_PUBS * n);
    ps_close_domain(e, d);
}

PS_MAIN(
    PS_TEST(test_one_publisher_reaches_four_subscribers_intact_and_in_order),
    PS_TEST(test_slow_subscriber_counts_every_loss_and_fast_one_loses_nothing),
    PS_TEST(test_late_subscriber_gets_history_first_only_when_asked),
    PS_TEST(test_many_publishers_each_arrive_complete_and_in_their_order))
