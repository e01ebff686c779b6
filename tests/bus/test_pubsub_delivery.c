/* The delivery path's guarantees (docs/delivery.md): start order, exact loss accounting up to
 * the end of a stream, the history giving way to loans, unreachable publishers reported.
 *
 * Same rules as test_pubsub.c: children are forked before the test process touches the bus
 * and report by exit status; the test process opens the domain as a bystander and closes it
 * last. Config: pubsub/delivery.json.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pubsub_common.h"
#include "registry.h" /* to write what another process could write into the registry */

/* Run n children, child i as fn(e, &ch[i], sh, i), with the test process's domain open after
 * they are forked; then `between` (may be NULL) and wait for all of them. */
typedef int (*child_fn)(const ps_env *e, ps_chan *c, void *sh, unsigned i);
typedef void (*between_fn)(ps_env *e, ps_chan *ch, pid_t *pid, void *sh);

static void run_children(ps_env *e, unsigned n, child_fn fn, void *sh, between_fn between,
                         const char *pool)
{
    ps_chan ch[4];
    pid_t pid[4];
    for (unsigned i = 0; i < n; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(fn(e, &ch[i], sh, i));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < n; i++)
        ps_tell_child(&ch[i], 'g');
    if (between)
        between(e, ch, pid, sh);
    for (unsigned i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "child %u", i);
        if (pid[i])
            proc_expect_ok(pid[i], PS_CHILD_MS, what);
        ps_chan_close(&ch[i]);
    }
    ps_assert_pool_drained(d, pool, 0);
    ps_close_domain(e, d);
}

/* ---- start order --------------------------------------------------------------------------- */

struct order_shared {
    _Atomic uint64_t sub_open; /* iteration whose subscriber is open */
    _Atomic uint64_t got;      /* iteration whose messages all arrived */
    _Atomic uint64_t pub_done; /* iteration whose publisher closed */
    uint64_t open_ns_sum, open_ns_max; /* shmbus_pub_open, waiting for the subscriber */
};

static const unsigned order_sizes[] = {1, 4, 16};

static unsigned order_iterations(void) { return 3 * ps_scaled(200, 10); }

static int order_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    struct order_shared *sh = arg;
    shmbus_domain *d = ps_child_start(e, c);
    for (uint64_t it = 1; it <= order_iterations(); it++) {
        uint64_t n = order_sizes[it % 3];
        if (i == 0) { /* the subscriber, open before the publisher */
            PS_CHECK(ps_wait_counter(&sh->pub_done, it - 1, PS_SAFETY_MS) == 0, "stalled");
            shmbus_sub *s;
            PS_OK(shmbus_sub_open(d, "order", NULL, &s));
            atomic_store(&sh->sub_open, it);
            uint64_t publisher = 0;
            for (uint64_t want = 1; want <= n; want++) {
                shmbus_msg *m = ps_recv_one(s, "subscriber started first");
                PS_CHECK(shmbus_msg_seq(m) == want,
                         "iteration %llu (%llu messages): got seq %llu first, wanted %llu: "
                         "the subscriber missed the start of the stream",
                         (unsigned long long)it, (unsigned long long)n,
                         (unsigned long long)shmbus_msg_seq(m), (unsigned long long)want);
                publisher = shmbus_msg_publisher(m);
                ps_expect_seq(m, want);
            }
            atomic_store(&sh->got, it);
            PS_CHECK(ps_wait_counter(&sh->pub_done, it, PS_SAFETY_MS) == 0, "stalled");
            PS_CHECK(ps_drain_until_closed(s, 1) == 0, "iteration %llu", (unsigned long long)it);
            shmbus_peer_counters p = ps_pair(s, publisher);
            PS_CHECK(p.base == 0 && p.last_seq == n && p.received == n, PS_PAIR_FMT,
                     PS_PAIR_ARGS(p));
            PS_OK(shmbus_sub_close(s));
        } else { /* the publisher: at full rate the moment it opens, no wait option */
            PS_CHECK(ps_wait_counter(&sh->sub_open, it, PS_SAFETY_MS) == 0, "stalled");
            shmbus_pub *p;
            uint64_t t0 = proc_now_ns();
            PS_OK(shmbus_pub_open(d, "order", &p));
            uint64_t took = proc_now_ns() - t0;
            sh->open_ns_sum += took;
            if (took > sh->open_ns_max)
                sh->open_ns_max = took;
            for (uint64_t seq = 1; seq <= n; seq++)
                PS_OK(ps_publish(p, 64, seq, 0, 0));
            /* closing releases the history: only after the subscriber has taken it all */
            PS_CHECK(ps_wait_counter(&sh->got, it, PS_SAFETY_MS) == 0, "stalled");
            PS_OK(shmbus_pub_close(p));
            atomic_store(&sh->pub_done, it);
        }
    }
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_subscriber_started_first_gets_every_message_from_seq_1(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    struct order_shared *sh = ps_shared(e, sizeof *sh);
    run_children(e, 2, order_child, sh, NULL, "frames");
    print_message("    %u rounds of subscriber, then publisher of 1, 4 or 16 messages at full "
                  "rate: every message arrived; shmbus_pub_open took %.2f ms on average, "
                  "%.2f ms at most (bound %d ms)\n", order_iterations(),
                  (double)sh->open_ns_sum / order_iterations() / 1e6,
                  (double)sh->open_ns_max / 1e6, SHMBUS_PUB_OPEN_WAIT_MS);
}

/* A subscriber open before the publisher but stopped while it opens, so that the publisher's
 * wait runs out and its first messages go out before the subscriber connects. */
static int late_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    (void)arg;
    shmbus_domain *d = ps_child_start(e, c);
    if (i == 0) {
        shmbus_sub *s;
        PS_OK(shmbus_sub_open(d, "stream", NULL, &s));
        PS_CHECK(proc_tell(c->up[1], 'S') == 0, "pipe");
        /* 1..3 from the history as soon as it connects (the publisher publishes nothing
         * more until they arrived), then 4 live */
        for (uint64_t want = 1; want <= 4; want++) {
            ps_expect_seq(ps_recv_one(s, "subscriber that connected late"), want);
            PS_CHECK(want != 3 || proc_tell(c->up[1], 'h') == 0, "pipe");
        }
        PS_CHECK(proc_tell(c->up[1], 'r') == 0, "pipe");
        PS_CHECK(ps_drain_until_closed(s, 1) == 0, "end of stream");
        shmbus_peer_counters pc;
        PS_CHECK(shmbus_sub_peer_counters(s, &pc, 1) == 1 && pc.base == 0 && pc.received == 4 &&
                     pc.last_seq == 4,
                 PS_PAIR_FMT, PS_PAIR_ARGS(pc));
        PS_OK(shmbus_sub_close(s));
    } else {
        PS_CHECK(proc_hear(c->down[0], 'p', PS_CHILD_MS) == 0, "no go");
        shmbus_pub *p;
        PS_OK(shmbus_pub_open(d, "stream", &p)); /* gives up waiting after its bound */
        PS_CHECK(shmbus_pub_subscribers(p) == 0, "a stopped subscriber connected");
        for (uint64_t seq = 1; seq <= 3; seq++) /* fewer than the history (4) */
            PS_OK(ps_publish(p, 64, seq, 0, 0));
        PS_CHECK(proc_tell(c->up[1], 'P') == 0, "pipe");
        PS_CHECK(proc_hear(c->down[0], 'l', PS_CHILD_MS) == 0, "no go");
        PS_OK(ps_publish(p, 64, 4, 0, 0));
        PS_CHECK(proc_hear(c->down[0], 'x', PS_CHILD_MS) == 0, "no go");
        PS_OK(shmbus_pub_close(p));
    }
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void late_between(ps_env *e, ps_chan *ch, pid_t *pid, void *arg)
{
    (void)e, (void)arg;
    ps_hear_child(&ch[0], 'S', PS_CHILD_MS, "subscriber open");
    proc_stop(pid[0], PS_CHILD_MS); /* stopped for real before its publisher opens */
    ps_tell_child(&ch[1], 'p');
    ps_hear_child(&ch[1], 'P', PS_CHILD_MS, "publisher published");
    assert_int_equal(kill(pid[0], SIGCONT), 0);
    ps_hear_child(&ch[0], 'h', PS_CHILD_MS, "subscriber received 1..3 from the history");
    ps_tell_child(&ch[1], 'l');
    ps_hear_child(&ch[0], 'r', PS_CHILD_MS, "subscriber received 4");
    ps_tell_child(&ch[1], 'x');
}

static void test_subscriber_connecting_after_the_first_messages_gets_them_first(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    run_children(e, 2, late_child, NULL, late_between, "frames");
}

/* ---- the end of a stream ---------------------------------------------------------------------- */

struct end_shared {
    _Atomic uint64_t published; /* the publisher's last sequence */
    _Atomic uint64_t drain;     /* the subscriber may read now */
    bool kill;                  /* the publisher is killed instead of closing */
};

static int end_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    struct end_shared *sh = arg;
    shmbus_domain *d = ps_child_start(e, c);
    if (i == 0) { /* subscriber */
        shmbus_sub *s;
        PS_OK(shmbus_sub_open(d, "stream", NULL, &s));
        PS_CHECK(proc_tell(c->up[1], 'S') == 0, "pipe");
        PS_CHECK(ps_wait_counter(&sh->drain, 1, PS_CHILD_MS) == 0, "never told to read");
        int64_t got = ps_drain_until_closed(s, 1);
        PS_CHECK(got >= 0, "the end of the stream was not accounted");
        shmbus_peer_counters pc;
        PS_CHECK(shmbus_sub_peer_counters(s, &pc, 1) == 1, "one publisher");
        uint64_t n = atomic_load(&sh->published);
        PS_CHECK(pc.base == 0 && pc.last_seq == n && pc.invalid == 0 && (uint64_t)got == pc.received,
                 "published %llu: " PS_PAIR_FMT, (unsigned long long)n, PS_PAIR_ARGS(pc));
        fprintf(stderr, "    published %llu: received %llu expired %llu dropped %llu "
                "overflow %llu invalid %llu\n", (unsigned long long)n,
                (unsigned long long)pc.received, (unsigned long long)pc.expired,
                (unsigned long long)pc.dropped, (unsigned long long)pc.overflow,
                (unsigned long long)pc.invalid);
        PS_OK(shmbus_sub_close(s));
    } else { /* publisher */
        PS_CHECK(proc_hear(c->down[0], 'p', PS_CHILD_MS) == 0, "no go");
        shmbus_pub *p;
        PS_OK(shmbus_pub_open(d, "stream", &p)); /* waits for the subscriber */
        PS_CHECK(shmbus_pub_subscribers(p) == 1, "the subscriber did not connect");
        PS_CHECK(proc_tell(c->up[1], 'O') == 0, "pipe");
        PS_CHECK(proc_hear(c->down[0], 'P', PS_CHILD_MS) == 0, "no go");
        uint64_t n = ps_scaled(20000, 200);
        for (uint64_t seq = 1; seq <= n; seq++)
            PS_OK(ps_publish(p, 64, seq, 0, 0));
        atomic_store(&sh->published, n);
        if (sh->kill) {
            PS_CHECK(proc_tell(c->up[1], 'K') == 0, "pipe");
            for (;;)
                proc_sleep_ms(1000);
        }
        PS_OK(shmbus_pub_close(p));
    }
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void end_between(ps_env *e, ps_chan *ch, pid_t *pid, void *arg)
{
    (void)e;
    struct end_shared *sh = arg;
    ps_hear_child(&ch[0], 'S', PS_CHILD_MS, "subscriber open");
    ps_tell_child(&ch[1], 'p');
    ps_hear_child(&ch[1], 'O', PS_CHILD_MS, "publisher connected");
    if (!sh->kill)
        proc_stop(pid[0], PS_CHILD_MS);
    ps_tell_child(&ch[1], 'P');
    if (sh->kill) {
        ps_hear_child(&ch[1], 'K', PS_CHILD_MS, "publisher published");
        ps_kill9(pid[1], "publisher");
        pid[1] = 0;
    } else {
        proc_expect_ok(pid[1], PS_CHILD_MS, "publisher");
        pid[1] = 0;
        assert_int_equal(kill(pid[0], SIGCONT), 0);
    }
    atomic_store(&sh->drain, 1);
}

static void test_subscriber_stopped_until_its_publisher_closed_counts_every_message(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    struct end_shared *sh = ps_shared(e, sizeof *sh);
    run_children(e, 2, end_child, sh, end_between, "frames");
}

static void test_messages_of_a_killed_publisher_are_all_counted(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    struct end_shared *sh = ps_shared(e, sizeof *sh);
    sh->kill = true;
    run_children(e, 2, end_child, sh, end_between, "frames");
}

/* ---- history against the pool ---------------------------------------------------------------- */

static int share_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    (void)arg, (void)i;
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *a, *b;
    PS_OK(shmbus_pub_open(d, "shared", &a));
    PS_OK(shmbus_pub_open(d, "shared", &b));
    for (uint64_t seq = 1; seq <= 100; seq++)
        PS_OK(ps_publish(a, 64, seq, 0, 0));
    for (uint64_t seq = 1; seq <= 100; seq++) /* a holds its history of 4 of the 6 blocks */
        PS_OK(ps_publish(b, 64, seq, 1, 0));
    for (uint64_t seq = 101; seq <= 200; seq++) { /* and both keep going, in turns */
        PS_OK(ps_publish(a, 64, seq, 0, 0));
        PS_OK(ps_publish(b, 64, seq, 1, 0));
    }
    shmbus_snapshot *snap;
    PS_OK(shmbus_snapshot_take(d, &snap));
    uint64_t released = 0;
    for (unsigned t = 0; t < snap->ntopics; t++)
        for (unsigned k = 0; k < snap->topics[t].npubs; k++)
            released += snap->topics[t].pubs[k].hist_released;
    shmbus_snapshot_free(snap);
    PS_CHECK(released > 0, "no history hold was given up, yet both published");
    fprintf(stderr, "    history holds given up for loans: %llu\n", (unsigned long long)released);
    PS_OK(shmbus_pub_close(a));
    PS_OK(shmbus_pub_close(b));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_history_gives_way_to_loans_of_two_publishers_on_a_small_pool(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    run_children(e, 1, share_child, NULL, NULL, "tiny");
}

/* ---- unreachable publishers --------------------------------------------------------------------- */

#define UNREACH_PUBS 20

struct unreach_shared {
    _Atomic uint64_t done;
};

/* Descriptors open now (new ones take the lowest free numbers, below the limit). */
static int open_fds(void)
{
    int n = 0;
    DIR *dp = opendir("/proc/self/fd");
    for (struct dirent *de; dp && (de = readdir(dp)) != NULL;)
        n += de->d_name[0] != '.';
    if (dp)
        closedir(dp);
    return n;
}

static int unreach_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    struct unreach_shared *sh = arg;
    shmbus_domain *d = ps_child_start(e, c);
    if (i == 1) { /* the publishers, there before the subscriber */
        shmbus_pub *p[UNREACH_PUBS];
        for (unsigned k = 0; k < UNREACH_PUBS; k++)
            PS_OK(shmbus_pub_open(d, "many", &p[k]));
        PS_CHECK(proc_tell(c->up[1], 'P') == 0, "pipe");
        PS_CHECK(ps_wait_counter(&sh->done, 1, PS_CHILD_MS) == 0, "subscriber stalled");
        for (unsigned k = 0; k < UNREACH_PUBS; k++)
            PS_OK(shmbus_pub_close(p[k]));
        PS_OK(shmbus_domain_close(d));
        return 0;
    }
    PS_CHECK(proc_hear(c->down[0], 'p', PS_CHILD_MS) == 0, "no go");
    struct rlimit full, low;
    PS_CHECK(getrlimit(RLIMIT_NOFILE, &full) == 0, "getrlimit");
    low = full;
    low.rlim_cur = (rlim_t)open_fds() + 8; /* the socket, and a few connections */
    PS_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "many", NULL, &s));
    /* every publisher is connected or counted unreachable */
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    shmbus_sub_counters st = ps_sub_stats(s);
    while (shmbus_sub_publishers(s) + (int)st.unreachable < UNREACH_PUBS) {
        PS_CHECK(proc_now_ns() < deadline, "%d publishers connected, %llu counted unreachable",
                 shmbus_sub_publishers(s), (unsigned long long)st.unreachable);
        proc_sleep_ms(10);
        st = ps_sub_stats(s);
    }
    PS_CHECK(st.unreachable > 0, "all %d connected under a limit of %llu descriptors",
             shmbus_sub_publishers(s), (unsigned long long)low.rlim_cur);
    shmbus_msg *m = NULL;
    int rc = shmbus_sub_recv(s, 0, &m);
    char why[256];
    snprintf(why, sizeof why, "%s", shmbus_last_error()); /* the next call clears it */
    PS_CHECK(rc == SHMBUS_ETRANSPORT && strstr(why, "cannot reach publisher"),
             "recv after unreachable publishers returned %s (%s)", shmbus_errname(rc), why);
    fprintf(stderr, "    fd limit %llu: %d of %d publishers connected, %llu unreachable: %s\n",
            (unsigned long long)low.rlim_cur, shmbus_sub_publishers(s), UNREACH_PUBS,
            (unsigned long long)st.unreachable, why);
    PS_CHECK(setrlimit(RLIMIT_NOFILE, &full) == 0, "setrlimit");
    PS_OK(shmbus_sub_wait_publishers(s, UNREACH_PUBS, PS_SAFETY_MS)); /* it keeps trying */
    atomic_store(&sh->done, 1);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void unreach_between(ps_env *e, ps_chan *ch, pid_t *pid, void *sh)
{
    (void)e, (void)pid, (void)sh;
    ps_hear_child(&ch[1], 'P', PS_CHILD_MS, "publishers open");
    ps_tell_child(&ch[0], 'p');
}

static void test_subscriber_out_of_descriptors_counts_and_reports_unreachable_publishers(
    void **state)
{
    ps_nng_only(); /* publishers a subscriber cannot dial */
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    run_children(e, 2, unreach_child, ps_shared(e, sizeof(struct unreach_shared)),
                 unreach_between, "frames");
}

/* ---- registry values another process wrote ---------------------------------------------- */

/* The test domain's registry, mapped read-write as any participant maps it. */
static struct reg_hdr *map_registry(const ps_env *e, size_t *len)
{
    const char *dir = getenv("SHMBUS_SHM_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/shmbus.%s.reg", dir && *dir ? dir : "/dev/shm", e->dom);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    *len = 64 + sizeof(struct reg_hdr); /* the aux segment header, then the registry */
    void *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(m != MAP_FAILED);
    return (struct reg_hdr *)((char *)m + 64);
}

static unsigned topic_index(struct reg_hdr *r, const char *name)
{
    for (unsigned i = 0; i < REG_MAX_TOPICS; i++)
        if (strcmp(r->topics[i].name, name) == 0)
            return i;
    fail_msg("no topic %s", name);
    return 0;
}

static int corrupt_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    (void)arg;
    shmbus_domain *d = ps_child_start(e, c);
    PS_CHECK(proc_tell(c->up[1], 'o') == 0, "pipe");
    if (i == 0) { /* a publisher whose topic and registry entry then say history 0 */
        shmbus_pub *p;
        PS_OK(shmbus_pub_open(d, "stream", &p));
        for (uint64_t seq = 1; seq <= 3; seq++)
            PS_OK(ps_publish(p, 64, seq, 0, 0));
        PS_CHECK(proc_tell(c->up[1], 'p') == 0, "pipe");
        PS_CHECK(proc_hear(c->down[0], 'n', PS_CHILD_MS) == 0, "no go");
        /* connected on this side too, or 4 would only reach the subscriber through the
         * history, which the subscriber cannot read (its length is 0 now) */
        PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
        PS_OK(ps_publish(p, 64, 4, 0, 0)); /* its own copy of the history length */
        PS_CHECK(proc_hear(c->down[0], 'x', PS_CHILD_MS) == 0, "no go");
        PS_OK(shmbus_pub_close(p));
    } else {
        PS_CHECK(proc_hear(c->down[0], 'c', PS_CHILD_MS) == 0, "no go");
        shmbus_sub *s;
        shmbus_sub_opts o = {.history = true};
        PS_OK(shmbus_sub_open(d, "stream", &o, &s)); /* its publisher's history is 0 */
        shmbus_msg *m;
        PS_RC(shmbus_sub_recv(s, 0, &m), SHMBUS_EAGAIN);
        PS_OK(shmbus_sub_wait_publishers(s, 1, PS_SAFETY_MS));
        PS_CHECK(proc_tell(c->up[1], 's') == 0, "pipe");
        PS_CHECK(proc_hear(c->down[0], 'C', PS_CHILD_MS) == 0, "no go");
        shmbus_pub *p;
        int rc = shmbus_pub_open(d, "stream", &p); /* the topic's history is 0 now */
        PS_CHECK((rc == SHMBUS_EBADSEG || rc == SHMBUS_EINCOMPAT) &&
                     strstr(shmbus_last_error(), "history"),
                 "publisher on a topic with history 0: %s (%s)", shmbus_errname(rc),
                 shmbus_last_error());
        PS_CHECK(proc_tell(c->up[1], 'n') == 0, "pipe");
        ps_expect_seq(ps_recv_one(s, "after the history"), 4);
        PS_CHECK(ps_check_accounting(s, false) == 1, "accounting");
        PS_OK(shmbus_sub_close(s));
    }
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void corrupt_between(ps_env *e, ps_chan *ch, pid_t *pid, void *arg)
{
    (void)pid, (void)arg;
    for (unsigned i = 0; i < 2; i++)
        ps_hear_child(&ch[i], 'o', PS_CHILD_MS, "domain open");
    ps_hear_child(&ch[0], 'p', PS_CHILD_MS, "published");
    size_t len;
    struct reg_hdr *r = map_registry(e, &len);
    unsigned stream = topic_index(r, "stream");
    unsigned n = 0;
    for (unsigned k = 0; k < REG_MAX_PUBS; k++)
        if (REG_OWN_STATE(atomic_load(&r->pubs[k].own)) == REG_LIVE &&
            r->pubs[k].topic == stream) {
            r->pubs[k].history = 0;
            n++;
        }
    assert_int_equal(n, 1);
    ps_tell_child(&ch[1], 'c');
    ps_hear_child(&ch[1], 's', PS_CHILD_MS, "subscriber open");
    r->topics[stream].history = 0;
    ps_tell_child(&ch[1], 'C');
    ps_hear_child(&ch[1], 'n', PS_CHILD_MS, "publisher refused");
    ps_tell_child(&ch[0], 'n');
    proc_expect_ok(pid[1], PS_CHILD_MS, "subscriber");
    pid[1] = 0;
    r->topics[stream].history = 4; /* as it was, for the domain's last close */
    munmap((char *)r - 64, len);
    ps_tell_child(&ch[0], 'x');
}

static void test_history_0_written_into_the_registry_is_an_error_not_a_crash(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    run_children(e, 2, corrupt_child, NULL, corrupt_between, "frames");
}

/* ---- tombstones are bounded ------------------------------------------------------------------ */

static int tomb_child(const ps_env *e, ps_chan *c, void *arg, unsigned i)
{
    (void)arg;
    shmbus_domain *d = ps_child_start(e, c);
    if (i == 0) { /* a subscriber that never reads, then dies */
        shmbus_sub *s;
        PS_OK(shmbus_sub_open(d, "stream", NULL, &s));
        PS_CHECK(proc_tell(c->up[1], 'S') == 0, "pipe");
        for (;;)
            proc_sleep_ms(1000);
    }
    PS_CHECK(proc_hear(c->down[0], 'p', PS_CHILD_MS) == 0, "no go");
    shmbus_pub *p;
    PS_OK(shmbus_pub_open(d, "stream", &p));
    for (uint64_t seq = 1; seq <= 10; seq++)
        PS_OK(ps_publish(p, 64, seq, 0, 0));
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Publisher entries that are not free (live or tombstones). */
static unsigned pub_entries(const ps_env *e)
{
    size_t len;
    struct reg_hdr *r = map_registry(e, &len);
    unsigned n = 0;
    for (unsigned k = 0; k < REG_MAX_PUBS; k++)
        n += atomic_load(&r->pubs[k].own) != 0;
    munmap((char *)r - 64, len);
    return n;
}

static void tomb_between(ps_env *e, ps_chan *ch, pid_t *pid, void *arg)
{
    (void)arg;
    ps_hear_child(&ch[0], 'S', PS_CHILD_MS, "subscriber open");
    ps_tell_child(&ch[1], 'p');
    proc_expect_ok(pid[1], PS_CHILD_MS, "publisher");
    pid[1] = 0;
    /* its end is not accounted yet: the tombstone stays for the subscriber */
    assert_int_equal(pub_entries(e), 1);
    ps_kill9(pid[0], "subscriber");
    pid[0] = 0;
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_CHILD_MS * 1000000u;
    while (pub_entries(e) != 0) {
        if (proc_now_ns() > deadline)
            fail_msg("a dead subscriber pins its publisher's tombstone");
        proc_sleep_ms(10);
    }
}

static void test_a_dead_subscriber_does_not_pin_a_closed_publishers_tombstone(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "delivery.json");
    run_children(e, 2, tomb_child, NULL, tomb_between, "frames");
}

PS_MAIN(
    PS_TEST(test_subscriber_started_first_gets_every_message_from_seq_1),
    PS_TEST(test_subscriber_connecting_after_the_first_messages_gets_them_first),
    PS_TEST(test_subscriber_stopped_until_its_publisher_closed_counts_every_message),
    PS_TEST(test_messages_of_a_killed_publisher_are_all_counted),
    PS_TEST(test_history_gives_way_to_loans_of_two_publishers_on_a_small_pool),
    PS_TEST(test_subscriber_out_of_descriptors_counts_and_reports_unreachable_publishers),
    PS_TEST(test_history_0_written_into_the_registry_is_an_error_not_a_crash),
    PS_TEST(test_a_dead_subscriber_does_not_pin_a_closed_publishers_tombstone))
