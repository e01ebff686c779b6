/* Publish/subscribe across processes, the receiving side's limits: max_held turns further
 * messages into overflow for that subscriber only, and the subscriber's fd polls readable when
 * a message is published. Real processes (fork), real shared memory, real nng sockets; the
 * rules of test_pubsub.c apply (children forked before the test touches the bus, credit
 * windows instead of timing, pubsub_common.h).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_common.h"

/* ---- max_held ---------------------------------------------------------------------------- */

#define HELD_MAX 4    /* max_held of held.json */
#define HELD_WINDOW 6 /* < history 8 */

struct held_shared {
    _Atomic uint64_t got[2]; /* [0] the hoarder: descriptors it has seen; [1] the other */
};

static int held_publisher(const ps_env *e, ps_chan *c, struct held_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "held", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint64_t need = seq > HELD_WINDOW + 1 ? seq - 1 - HELD_WINDOW : 0;
        PS_CHECK(ps_wait_counters(sh->got, 2, need, PS_SAFETY_MS) == 0, "subscribers stalled");
        /* on_full is "fail": a hoarding subscriber must never make a loan fail or wait */
        PS_OK(ps_publish(p, 64 + seq % 512, seq, 0, 0));
    }
    PS_CHECK(ps_wait_counters(sh->got, 2, n, PS_SAFETY_MS) == 0, "subscribers stalled");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Holds the first HELD_MAX messages and keeps receiving: everything after is overflow. */
static int held_hoarder(const ps_env *e, ps_chan *c, struct held_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "held", NULL, &s));
    shmbus_msg *kept[HELD_MAX];
    for (unsigned k = 0; k < HELD_MAX; k++) {
        kept[k] = ps_recv_one(s, "hoarder");
        PS_CHECK(shmbus_msg_seq(kept[k]) == k + 1, "seq %llu",
                 (unsigned long long)shmbus_msg_seq(kept[k]));
        atomic_store(&sh->got[0], k + 1);
    }
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    shmbus_sub_counters st;
    for (;;) {
        st = ps_sub_stats(s);
        uint64_t seen = st.received + st.expired + st.dropped + st.overflow + st.invalid;
        atomic_store(&sh->got[0], seen);
        if (seen >= n)
            break;
        PS_CHECK(proc_now_ns() < deadline, "saw %llu of %u", (unsigned long long)seen, n);
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        PS_CHECK(rc == SHMBUS_ETIMEDOUT, "recv beyond max_held returned %s (seq %llu)",
                 shmbus_errname(rc), m ? (unsigned long long)shmbus_msg_seq(m) : 0ull);
    }
    PS_CHECK(st.received == HELD_MAX && st.held == HELD_MAX && st.overflow == n - HELD_MAX &&
                 st.expired == 0 && st.dropped == 0 && st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    for (unsigned k = 0; k < HELD_MAX; k++) { /* still intact: held blocks are never reused */
        ps_hdr h;
        PS_CHECK(ps_check_msg(kept[k], &h) == 0, "held message %u", k + 1);
        PS_OK(shmbus_msg_release(kept[k]));
    }
    PS_CHECK(ps_sub_stats(s).held == 0, "held after releasing");
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int held_other(const ps_env *e, ps_chan *c, struct held_shared *sh, unsigned n)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "held", NULL, &s));
    for (uint64_t want = 1; want <= n; want++) {
        shmbus_msg *m = ps_recv_one(s, "other subscriber");
        ps_expect_seq(m, want);
        atomic_store(&sh->got[1], want);
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == n && st.expired + st.dropped + st.overflow + st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_max_held_turns_further_messages_into_overflow_for_that_subscriber_only(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "held.json");
    struct held_shared *sh = ps_shared(e, sizeof *sh);
    unsigned n = ps_scaled(500, 50);
    ps_chan ch[3];
    pid_t pid[3];
    for (unsigned i = 0; i < 3; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0   ? held_publisher(e, &ch[i], sh, n)
                  : i == 1 ? held_hoarder(e, &ch[i], sh, n)
                           : held_other(e, &ch[i], sh, n));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < 3; i++)
        ps_tell_child(&ch[i], 'g');
    const char *what[3] = {"publisher", "hoarding subscriber", "other subscriber"};
    for (unsigned i = 0; i < 3; i++) {
        proc_expect_ok(pid[i], PS_CHILD_MS, what[i]);
        ps_chan_close(&ch[i]);
    }
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    assert_int_equal(t.failed_loans, 0);
    ps_assert_pool_drained(d, "frames", n);
    ps_close_domain(e, d);
}

/* ---- pollable fd --------------------------------------------------------------------------- */

static int poll_publisher(const ps_env *e, ps_chan *c)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "ticks", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
    PS_CHECK(proc_hear(c->down[0], '1', PS_SAFETY_MS) == 0, "no '1'");
    PS_OK(ps_publish(p, 64, 1, 0, 0));
    PS_CHECK(proc_hear(c->down[0], '3', PS_SAFETY_MS) == 0, "no '3'");
    for (uint64_t seq = 2; seq <= 4; seq++)
        PS_OK(ps_publish(p, 64, seq, 0, 0));
    PS_CHECK(proc_hear(c->down[0], 'x', PS_SAFETY_MS) == 0, "no 'x'");
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    PS_CHECK(r >= 0, "poll failed");
    return r == 1 && (pfd.revents & POLLIN);
}

static int poll_subscriber(const ps_env *e, ps_chan *c)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "ticks", NULL, &s));
    int fd = -1;
    PS_OK(shmbus_sub_fd(s, &fd));
    PS_CHECK(fd >= 0, "fd %d", fd);
    PS_OK(shmbus_sub_wait_publishers(s, 1, PS_SAFETY_MS));
    PS_CHECK(!readable(fd, 0), "readable before anything was published");
    PS_CHECK(proc_tell(c->up[1], 'r') == 0, "pipe");
    /* One message: poll wakes, recv(0) gets it, then EAGAIN and the fd is quiet again. */
    PS_CHECK(readable(fd, PS_SAFETY_MS), "poll did not wake for a published message");
    shmbus_msg *m;
    PS_OK(shmbus_sub_recv(s, 0, &m));
    ps_expect_seq(m, 1);
    PS_RC(shmbus_sub_recv(s, 0, &m), SHMBUS_EAGAIN);
    PS_CHECK(!readable(fd, 0), "still readable after the only message was received");
    PS_CHECK(proc_tell(c->up[1], 'a') == 0, "pipe");
    /* Three more: an event loop (poll, then recv(0) until EAGAIN) gets all of them. */
    uint64_t want = 2;
    while (want <= 4) {
        PS_CHECK(readable(fd, PS_SAFETY_MS), "poll did not wake; waiting for seq %llu",
                 (unsigned long long)want);
        int rc;
        while ((rc = shmbus_sub_recv(s, 0, &m)) == 0)
            ps_expect_seq(m, want++);
        PS_RC(rc, SHMBUS_EAGAIN);
    }
    PS_CHECK(ps_check_accounting(s, false) >= 0, "per-publisher accounting");
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_subscriber_fd_polls_readable_when_a_message_is_published(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "poll.json");
    ps_chan ch[2];
    pid_t pid[2];
    for (unsigned i = 0; i < 2; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(i == 0 ? poll_publisher(e, &ch[i]) : poll_subscriber(e, &ch[i]));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    ps_tell_child(&ch[0], 'g');
    ps_tell_child(&ch[1], 'g');
    ps_hear_child(&ch[1], 'r', PS_CHILD_MS, "subscriber connected and quiet");
    ps_tell_child(&ch[0], '1');
    ps_hear_child(&ch[1], 'a', PS_CHILD_MS, "subscriber woke for the first message");
    ps_tell_child(&ch[0], '3');
    proc_expect_ok(pid[1], PS_CHILD_MS, "polling subscriber");
    ps_tell_child(&ch[0], 'x');
    proc_expect_ok(pid[0], PS_CHILD_MS, "publisher");
    for (unsigned i = 0; i < 2; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 4);
    ps_close_domain(e, d);
}

PS_MAIN(
    PS_TEST(test_max_held_turns_further_messages_into_overflow_for_that_subscriber_only),
    PS_TEST(test_subscriber_fd_polls_readable_when_a_message_is_published))
