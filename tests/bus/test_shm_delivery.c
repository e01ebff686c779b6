/* Shared-memory delivery (docs/delivery.md, "Shared-memory delivery"), what only that path
 * has: a publisher never waits for a stopped subscriber and every message is counted;
 * processes killed at random points of push and pop leave every ring, wake-up word and pool
 * consistent; a corrupted ring slot or head is counted, never delivered or crashed on; the
 * pollable fd costs nothing until asked for, and a stranger's datagram only wakes.
 * (The behaviour both paths share is tested by the pub/sub tests run for each path.)
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "iso_common.h"
#include "reg_access.h"

#define RING_DEPTH 16 /* topic "ring" of shm.json */
#define WIRE 80       /* bytes of a descriptor in a ring slot (reg_hist.w) */

/* ---- a stopped subscriber ------------------------------------------------------------------ */

struct stop_shared {
    _Atomic uint64_t go_read;
    _Atomic uint64_t published;
};

static int stopped_subscriber(const ps_env *e, ps_chan *c, void *arg)
{
    struct stop_shared *sh = arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_sub *s = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_sub_open(d, "ring", NULL, &s));
    child_tell(c, 'r');
    PS_OK(shmbus_sub_wait_publishers(s, 1, PS_SAFETY_MS)); /* reads its ring: then stopped */
    child_tell(c, 'a');
    PS_CHECK(ps_wait_counter(&sh->go_read, 1, PS_CHILD_MS) == 0, "never told to read");
    PS_CHECK(ps_drain_until_closed(s, 1) >= 0, "the end of the stream was not accounted");
    shmbus_peer_counters pc;
    PS_CHECK(shmbus_sub_peer_counters(s, &pc, 1) == 1, "one publisher");
    uint64_t n = atomic_load(&sh->published);
    PS_CHECK(pc.base == 0 && pc.last_seq == n && pc.invalid == 0 && pc.overflow == 0 &&
                 pc.received + pc.expired <= RING_DEPTH && pc.dropped >= n - RING_DEPTH,
             "published %llu: " PS_PAIR_FMT, (unsigned long long)n, PS_PAIR_ARGS(pc));
    fprintf(stderr, "    stopped through %llu messages: received %llu expired %llu dropped %llu\n",
            (unsigned long long)n, (unsigned long long)pc.received,
            (unsigned long long)pc.expired, (unsigned long long)pc.dropped);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int full_rate_publisher(const ps_env *e, ps_chan *c, void *arg)
{
    struct stop_shared *sh = arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_pub_open(d, "ring", &p));
    child_tell(c, 'o');
    child_hear(c, 'P');
    uint64_t n = ps_scaled(20000, 1000);
    for (uint64_t seq = 1; seq <= n; seq++)
        PS_OK(ps_publish(p, 64, seq, 0, 0));
    atomic_store(&sh->published, n);
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_publisher_never_waits_for_a_stopped_subscriber_and_every_loss_is_counted(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "shm.json");
    struct stop_shared *sh = ps_shared(e, sizeof *sh);
    ps_chan ch[2];
    pid_t pid[2];
    iso_child_fn run[2] = {stopped_subscriber, full_rate_publisher};
    iso_fork_children(e, ch, pid, 2, run, sh);
    ps_tell_child(&ch[0], 'g');
    ps_hear_child(&ch[0], 'r', PS_CHILD_MS, "subscriber opened");
    ps_tell_child(&ch[1], 'g');
    ps_hear_child(&ch[1], 'o', PS_CHILD_MS, "publisher opened");
    ps_hear_child(&ch[0], 'a', PS_CHILD_MS, "subscriber reads the publisher's ring");
    assert_int_equal(kill(pid[0], SIGSTOP), 0);
    ps_tell_child(&ch[1], 'P');
    /* a publisher that waited for the stopped subscriber would never end: the hang guard */
    ps_expect_ok(pid[1], PS_CHILD_MS, "publisher at full rate with its subscriber stopped");
    assert_int_equal(kill(pid[0], SIGCONT), 0);
    atomic_store(&sh->go_read, 1);
    ps_expect_ok(pid[0], PS_CHILD_MS, "stopped subscriber");
    for (unsigned i = 0; i < 2; i++)
        ps_chan_close(&ch[i]);
    shmbus_domain *d = ps_open_domain(e);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d);
}

/* ---- kill -9 at random points of push and pop ---------------------------------------------- */

/* A process that publishes or receives on "chaos" until it is killed. */
static int chaos_worker(const ps_env *e, ps_chan *c, bool publisher)
{
    ps_chan_child(c);
    shmbus_domain *d = NULL;
    PS_OK(ps_domain_open(e, &d));
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    if (publisher)
        PS_OK(shmbus_pub_open(d, "chaos", &p));
    else
        PS_OK(shmbus_sub_open(d, "chaos", NULL, &s));
    PS_CHECK(ps_tell(c->up[1], 'r') == 0, "pipe");
    uint64_t rs = (uint64_t)getpid();
    for (uint64_t seq = 1;; seq++) {
        if (p) {
            int rc = ps_publish(p, ps_rand_len(&rs, 4096), seq, 0, 0);
            PS_CHECK(rc == 0 || rc == SHMBUS_EFULL, "publish: %s", shmbus_errname(rc));
            seq -= rc != 0;
        } else {
            shmbus_msg *m = NULL;
            int rc = shmbus_sub_recv(s, 5, &m);
            PS_CHECK(rc == 0 || rc == SHMBUS_ETIMEDOUT, "recv: %s", shmbus_errname(rc));
            if (m) {
                ps_hdr h;
                PS_CHECK(ps_check_msg(m, &h) == 0, "message is not intact");
                PS_OK(shmbus_msg_release(m));
            }
        }
    }
}

/* Lives through all the kills and reads everything: the others' queues must keep working. */
static int chaos_listener(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_sub *s = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_sub_open(d, "chaos", NULL, &s));
    child_tell(c, 'r');
    uint64_t got = 0;
    for (int rc = 0; rc == 0 || ps_hear(c->down[0], 'x', 1) != 0;) {
        shmbus_msg *m = NULL;
        rc = shmbus_sub_recv(s, 20, &m);
        PS_CHECK(rc == 0 || rc == SHMBUS_ETIMEDOUT, "recv: %s (%s)", shmbus_errname(rc),
                 shmbus_last_error());
        if (m) {
            ps_hdr h;
            PS_CHECK(ps_check_msg(m, &h) == 0, "message is not intact");
            PS_OK(shmbus_msg_release(m));
            got++;
        }
    }
    /* read on until every killed publisher's end is accounted, then check every pair */
    static shmbus_peer_counters pc[2048];
    int n = 0;
    bool closed = false;
    for (uint64_t t0 = ps_now_ns(); !closed; ) {
        shmbus_msg *m = NULL;
        if (shmbus_sub_recv(s, 20, &m) == 0) {
            PS_OK(shmbus_msg_release(m));
            got++;
            continue;
        }
        n = shmbus_sub_peer_counters(s, pc, 2048);
        PS_CHECK(n >= 0 && n <= 2048, "peer counters: %d", n);
        closed = true;
        for (int i = 0; i < n; i++)
            closed &= pc[i].closed;
        PS_CHECK(closed || ps_now_ns() - t0 < (uint64_t)PS_SAFETY_MS * 1000000u,
                 "pairs not closed after the last kill");
    }
    uint64_t received = 0;
    for (int i = 0; i < n; i++) {
        shmbus_peer_counters q = pc[i];
        PS_CHECK(q.last_seq - q.base ==
                     q.received + q.expired + q.dropped + q.overflow + q.invalid &&
                     q.invalid == 0 && q.forged == 0,
                 "pair %d: " PS_PAIR_FMT, i, PS_PAIR_ARGS(q));
        received += q.received;
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.invalid == 0 && st.received == got && received == got, PS_SUB_FMT,
             PS_SUB_ARGS(st));
    fprintf(stderr, "    listener: %d publishers, every pair adds up\n", n);
    fprintf(stderr, "    listener: " PS_SUB_FMT "\n", PS_SUB_ARGS(st));
    child_tell(c, 'q'); /* not in recv any more: the test process checks the queues */
    child_hear(c, 'z');
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Every ring, wake-up word and subscriber entry once every process but the listener (which
 * is not in recv) is gone. */
static void check_queues(const ps_env *e, char *problems, size_t len)
{
    reg_map m = reg_map_open(e->dom);
    struct reg_rings *rings = NULL;
    reg_map mr = reg_rings_open(e->dom, &rings);
    assert_non_null(m.r);
    assert_non_null(rings);
    bool settled = false;
    for (uint64_t t0 = ps_now_ns(); !settled && ps_now_ns() - t0 < 30000000000ull;) {
        unsigned subs = 0; /* the reapers free dead subscribers' entries and tombstones */
        for (unsigned j = 0; j < REG_MAX_SUBS; j++)
            subs += atomic_load(&m.r->subs[j].own) != 0;
        settled = subs == 1;
        for (unsigned i = 0; i < REG_MAX_PUBS; i++)
            settled &= REG_OWN_STATE(atomic_load(&m.r->pubs[i].own)) != REG_LIVE;
        if (!settled)
            ps_sleep_ms(20);
    }
    if (!settled)
        note(problems, len, "entries of dead processes still live after 30 s");
    for (unsigned t = 0; t < REG_MAX_TOPICS; t++)
        for (unsigned k = 0; k < REG_MAX_SUBS / 64; k++)
            if (atomic_load(&m.r->wake[t].sleepers[k]) != 0)
                note(problems, len, "topic %u: sleepers %#llx with nobody asleep", t,
                     (unsigned long long)atomic_load(&m.r->wake[t].sleepers[k]));
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        uint64_t head = atomic_load(&rings->ring[i].head);
        uint64_t last = atomic_load(&m.r->pubs[i].last_seq);
        if (atomic_load(&m.r->pubs[i].own) && head > last)
            note(problems, len, "ring %u: head %llu beyond the last sequence %llu", i,
                 (unsigned long long)head, (unsigned long long)last);
    }
    reg_map_close(&mr);
    reg_map_close(&m);
}

static void test_kill9_at_random_points_of_push_and_pop_leaves_queues_and_pools_consistent(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "shm.json");
    ps_chan lc;
    pid_t lp;
    iso_child_fn run[1] = {chaos_listener};
    iso_fork_children(e, &lc, &lp, 1, run, NULL);
    ps_tell_child(&lc, 'g');
    ps_hear_child(&lc, 'r', PS_CHILD_MS, "listener opened");
    unsigned iters = ps_scaled(1000, 1000), kills[3] = {0};
    uint64_t rs = 42, t0 = ps_now_ns();
    for (unsigned it = 0; it < iters; it++) {
        ps_chan ch[2];
        pid_t pid[2];
        for (unsigned k = 0; k < 2; k++) {
            ps_chan_make(&ch[k]);
            if ((pid[k] = ps_fork()) == 0)
                _exit(chaos_worker(e, &ch[k], k == 0));
            ps_chan_parent(&ch[k]);
        }
        for (unsigned k = 0; k < 2; k++)
            ps_hear_child(&ch[k], 'r', PS_CHILD_MS, k ? "subscriber worker" : "publisher worker");
        /* kill at a random instruction: one of them first, or both at once */
        unsigned how = (unsigned)(ps_rand(&rs) % 3), first = how == 2 ? 0 : how;
        usleep((useconds_t)(ps_rand(&rs) % 2000));
        kill(pid[first], SIGKILL);
        if (how != 2)
            usleep((useconds_t)(ps_rand(&rs) % 500));
        kill(pid[1 - first], SIGKILL);
        kills[how]++;
        for (unsigned k = 0; k < 2; k++) {
            ps_kill9(pid[k], k ? "subscriber worker" : "publisher worker");
            ps_chan_close(&ch[k]);
        }
    }
    print_message("    %u rounds in %.1f s: publisher killed first %u, subscriber first %u, "
                  "both at once %u\n", iters, (double)(ps_now_ns() - t0) / 1e9, kills[0],
                  kills[1], kills[2]);
    ps_tell_child(&lc, 'x');
    ps_hear_child(&lc, 'q', PS_CHILD_MS, "listener checked every pair");
    char problems[2048] = "";
    check_queues(e, problems, sizeof problems);
    shmbus_domain *d = ps_open_domain(e);
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    for (uint64_t t1 = ps_now_ns(); t.used && ps_now_ns() - t1 < 30000000000ull;) {
        ps_sleep_ms(20); /* the reaper of this process takes what the last ones left */
        t = ps_pool_totals(d, "frames");
    }
    if (t.used)
        note(problems, sizeof problems, "%u blocks still in use with every process gone", t.used);
    ps_tell_child(&lc, 'z');
    ps_expect_ok(lp, PS_CHILD_MS, "listener");
    ps_chan_close(&lc);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- corrupted slots, a forged head, stray datagrams --------------------------------------- */

static int wake_sockets(uint64_t nonce)
{
    char prefix[64], line[512];
    snprintf(prefix, sizeof prefix, "@shmbus-wake/%016llx/", (unsigned long long)nonce);
    FILE *f = fopen("/proc/net/unix", "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, prefix) != NULL;
    fclose(f);
    return n;
}

static bool readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static void test_corrupt_ring_slots_and_head_count_invalid_and_stray_datagrams_only_wake(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "shm.json");
    shmbus_domain *d = ps_open_domain(e);
    shmbus_sub *s = NULL;
    shmbus_pub *p = NULL;
    ps_assert_ok(shmbus_sub_open(d, "ring", NULL, &s));
    ps_assert_ok(shmbus_pub_open(d, "ring", &p));
    reg_map m = reg_map_open(e->dom);
    struct reg_rings *rings = NULL;
    reg_map mr = reg_rings_open(e->dom, &rings);
    assert_non_null(m.r);
    assert_non_null(rings);
    uint64_t nonce = m.r->nonce;
    /* a subscriber that never asked for its fd has no wake socket */
    assert_int_equal(wake_sockets(nonce), 0);
    ps_assert_ok(ps_publish(p, 100, 1, 0, 0));
    shmbus_msg *msg = ps_recv_one(s, "seq 1");
    uint64_t pub_id = shmbus_msg_publisher(msg);
    ps_expect_seq(msg, 1);
    unsigned slot = REG_MAX_PUBS, me = REG_MAX_SUBS;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++)
        if (atomic_load(&m.r->pubs[i].pub_id) == pub_id)
            slot = i;
    for (unsigned j = 0; j < REG_MAX_SUBS; j++)
        if (REG_OWN_STATE(atomic_load(&m.r->subs[j].own)) == REG_LIVE)
            me = j; /* the only subscriber of this test's domain */
    assert_true(slot < REG_MAX_PUBS && me < REG_MAX_SUBS);
    struct reg_ring *r = &rings->ring[slot];
    /* 2: the slot's version says another sequence; 3: garbage under the right version;
     * 4: a valid descriptor of sequence 3 put where 4 goes */
    uint8_t saved[WIRE];
    for (uint64_t q = 2; q <= 4; q++) {
        ps_assert_ok(ps_publish(p, 100, q, 0, 0));
        struct reg_hist *h = &r->slot[q % RING_DEPTH];
        if (q == 2)
            atomic_store(&h->version, 1); /* no sequence's */
        else if (q == 3) {
            for (unsigned w = 0; w < WIRE / 8; w++) {
                uint64_t x = atomic_load(&h->w[w]);
                memcpy(saved + w * 8, &x, 8);
                atomic_store(&h->w[w], 0x5a5a5a5a5a5a5a5aull * (w + 1));
            }
        } else
            for (unsigned w = 0; w < WIRE / 8; w++) {
                uint64_t x;
                memcpy(&x, saved + w * 8, 8);
                atomic_store(&h->w[w], x);
            }
        ps_assert_rc(shmbus_sub_recv(s, 50, &msg), SHMBUS_ETIMEDOUT);
    }
    /* a head far beyond what the publisher published counts nothing */
    atomic_store(&r->head, 1ull << 40);
    ps_assert_rc(shmbus_sub_recv(s, 50, &msg), SHMBUS_ETIMEDOUT);
    atomic_store(&r->head, 4);
    ps_assert_ok(ps_publish(p, 100, 5, 0, 0));
    ps_expect_seq(ps_recv_one(s, "seq 5"), 5);
    shmbus_peer_counters pc = ps_pair(s, pub_id);
    if (pc.last_seq != 5 || pc.received != 2 || pc.invalid != 3 || pc.dropped || pc.expired)
        fail_msg("after 3 corrupt slots: " PS_PAIR_FMT, PS_PAIR_ARGS(pc));
    assert_true(ps_check_accounting(s, false) >= 0);

    /* the fd: made on request, readable for a publish, and a stranger's datagram only wakes */
    int fd = -1;
    ps_assert_ok(shmbus_sub_fd(s, &fd));
    assert_int_equal(wake_sockets(m.r->nonce), 1);
    assert_false(readable(fd));
    ps_assert_ok(ps_publish(p, 100, 6, 0, 0));
    assert_true(readable(fd));
    ps_assert_ok(shmbus_sub_recv(s, 0, &msg));
    ps_expect_seq(msg, 6);
    ps_assert_rc(shmbus_sub_recv(s, 0, &msg), SHMBUS_EAGAIN);
    assert_false(readable(fd));
    int stranger = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "shmbus-wake/%016llx/%llu",
                     (unsigned long long)nonce,
                     (unsigned long long)atomic_load(&m.r->subs[me].sub_id));
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    for (int k = 0; k < 8; k++) /* (a datagram socket queues 10 by default) */
        assert_int_equal(sendto(stranger, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&a, alen), 1);
    close(stranger);
    assert_true(readable(fd));
    ps_assert_rc(shmbus_sub_recv(s, 0, &msg), SHMBUS_EAGAIN); /* woken for nothing */
    assert_false(readable(fd));
    ps_assert_ok(ps_publish(p, 100, 7, 0, 0));
    assert_true(readable(fd));
    ps_assert_ok(shmbus_sub_recv(s, 0, &msg));
    ps_expect_seq(msg, 7);
    assert_int_equal(ps_pair(s, pub_id).invalid, 3);

    reg_map_close(&mr);
    reg_map_close(&m);
    ps_assert_ok(shmbus_pub_close(p));
    ps_assert_ok(shmbus_sub_close(s));
    assert_int_equal(wake_sockets(nonce), 0);
    ps_close_domain(e, d);
}

PS_MAIN(
    ISO_TEST(test_publisher_never_waits_for_a_stopped_subscriber_and_every_loss_is_counted),
    ISO_TEST(test_kill9_at_random_points_of_push_and_pop_leaves_queues_and_pools_consistent),
    ISO_TEST(test_corrupt_ring_slots_and_head_count_invalid_and_stray_datagrams_only_wake))
