/* shmpool across real processes: the multi-process thread stress, crash reclaim, exhaustion,
 * named nodes, fork, and a domain whose participants all died.
 *
 * Children are forked before the parent opens the domain (or open their own), report failure
 * only through their exit status, and leave with _exit(). */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "layout.h" /* the participant table, for the pid-reuse test only */
#include "testutil.h"

extern char **environ;

/* ---- helpers for children (no cmocka in a child) ----------------------------------------- */

static shmpool_domain *child_open(const char *dom, bool reaper)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.no_reaper = !reaper;
    shmpool_domain *d = NULL;
    CHILD_OK(shmpool_domain_open(dom, &o, &d));
    return d;
}

static shmbus_pool *child_pool(shmpool_domain *d, const shmpool_class *c, unsigned n)
{
    shmbus_pool *p = NULL;
    CHILD_OK(shmpool_pool_open(d, "p", c, n, &p));
    return p;
}

static shmbus_block *child_loan(shmbus_pool *p, uint64_t size)
{
    shmbus_block *b = NULL;
    CHILD_OK(shmpool_loan(p, size, 0, &b));
    tu_write_pattern(b);
    return b;
}

/* Block forever (until SIGKILL, or the parent's death via PDEATHSIG). */
static void child_park(void)
{
    for (;;)
        pause();
}

static void *shared_map(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    return m;
}

/* Time from t0 until the pool has exactly `used` blocks in use, all held only by `mask`;
 * polls every millisecond; fails after give_up_ms. */
static double wait_for_reclaim(const shmbus_pool *p, uint32_t used, uint64_t mask, uint64_t t0,
                               unsigned give_up_ms)
{
    for (;;) {
        unsigned n;
        uint64_t holders = tu_pool_holders(p, &n);
        if (tu_pool_used(p) == used && n == used && holders == mask)
            return (double)(tu_now_ns() - t0) / 1e6;
        if (tu_now_ns() - t0 > (uint64_t)give_up_ms * 1000000u)
            fail_msg("after %u ms: %u blocks used (want %u), holders %#llx (want %#llx)",
                     give_up_ms, tu_pool_used(p), used, (unsigned long long)holders,
                     (unsigned long long)mask);
        tu_sleep_ms(1);
    }
}

static int count_participants(shmpool_domain *d, shmpool_participant_info *pi)
{
    int n = shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS);
    assert_true(n >= 0);
    return n;
}

static uint64_t class_reclaims(const shmbus_pool *p)
{
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    int n = shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES);
    assert_true(n > 0);
    uint64_t r = 0;
    for (int i = 0; i < n; i++)
        r += st[i].reclaims;
    return r;
}

/* ---- stress ------------------------------------------------------------------------------ */

enum { ST_PROCS = 4, ST_THREADS = 4, ST_MBOX = 64, ST_HELD = 12, ST_QUEUE = 64 };
enum { MB_FREE, MB_BUSY, MB_READY };

static const shmpool_class stress_classes[] = {{64, 48}, {1024, 24}, {16384, 12}, {262144, 4}};
#define ST_NCLASSES 4

/* Shared between the stress processes: a mailbox of descriptors (our own mmap, not the
 * library's) and per-process counters. */
struct mbox_slot {
    _Atomic uint32_t state;
    uint32_t from;
    uint8_t wire[SHMPOOL_DESC_SIZE];
};

struct stress_counts {
    _Atomic uint64_t loans, full, clones, handoffs, posts, dropped, acquired, acquired_remote,
        expired, releases, errors;
};

struct stress_shared {
    struct mbox_slot mbox[ST_MBOX];
    struct stress_counts counts[ST_PROCS];
};

struct held {
    shmbus_block *b;
    uint64_t seq;
};

struct stress_proc {
    struct stress_shared *sh;
    struct stress_counts *cnt;
    shmpool_domain *d;
    shmbus_pool *p;
    unsigned proc;
    uint64_t deadline;
    pthread_mutex_t qlock; /* in-process hand-off queue between threads */
    struct held queue[ST_QUEUE];
    unsigned qn;
};

struct stress_thread {
    struct stress_proc *sp;
    unsigned id;
    uint64_t rng;
    struct held h[ST_HELD];
    unsigned n;
    bool failed;
};

static void st_error(struct stress_thread *t, const char *what, int rc)
{
    fprintf(stderr, "stress process %u thread %u: %s: %d (%s)\n", t->sp->proc, t->id, what, rc,
            tu_errname(rc));
    atomic_fetch_add(&t->sp->cnt->errors, 1);
    t->failed = true;
}

static void st_release(struct stress_thread *t, struct held h)
{
    if (!tu_has_pattern(h.b, h.seq))
        st_error(t, "payload changed while held", 0);
    int rc = shmpool_block_release(h.b);
    if (rc)
        st_error(t, "release", rc);
    atomic_fetch_add(&t->sp->cnt->releases, 1);
}

/* Keep a handle, or release it at once if this thread already holds enough. */
static void st_keep(struct stress_thread *t, shmbus_block *b, uint64_t seq)
{
    if (t->n < ST_HELD)
        t->h[t->n++] = (struct held){b, seq};
    else
        st_release(t, (struct held){b, seq});
}

static struct held st_remove(struct stress_thread *t, unsigned i)
{
    struct held h = t->h[i];
    t->h[i] = t->h[--t->n];
    return h;
}

static void st_post(struct stress_thread *t, const shmpool_desc *desc)
{
    struct stress_shared *sh = t->sp->sh;
    unsigned start = (unsigned)(tu_rand(&t->rng) % ST_MBOX);
    for (unsigned k = 0; k < 8; k++) {
        struct mbox_slot *s = &sh->mbox[(start + k) % ST_MBOX];
        uint32_t expect = MB_FREE;
        if (atomic_compare_exchange_strong(&s->state, &expect, MB_BUSY)) {
            s->from = t->sp->proc;
            shmpool_desc_encode(desc, s->wire);
            atomic_store_explicit(&s->state, MB_READY, memory_order_release);
            atomic_fetch_add(&t->sp->cnt->posts, 1);
            return;
        }
    }
    atomic_fetch_add(&t->sp->cnt->dropped, 1); /* a dropped descriptor must leak nothing */
}

static void st_take(struct stress_thread *t)
{
    struct stress_shared *sh = t->sp->sh;
    unsigned start = (unsigned)(tu_rand(&t->rng) % ST_MBOX);
    for (unsigned k = 0; k < ST_MBOX; k++) {
        struct mbox_slot *s = &sh->mbox[(start + k) % ST_MBOX];
        uint32_t expect = MB_READY;
        if (!atomic_compare_exchange_strong_explicit(&s->state, &expect, MB_BUSY,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        uint8_t wire[SHMPOOL_DESC_SIZE];
        memcpy(wire, s->wire, sizeof wire);
        uint32_t from = s->from;
        atomic_store_explicit(&s->state, MB_FREE, memory_order_release);

        shmpool_desc desc;
        int rc = shmpool_desc_decode(wire, sizeof wire, &desc);
        if (rc) {
            st_error(t, "decode", rc);
            return;
        }
        shmbus_block *b = NULL;
        rc = shmpool_acquire(t->sp->d, &desc, &b);
        if (rc == SHMBUS_EEXPIRED) {
            atomic_fetch_add(&t->sp->cnt->expired, 1);
            return;
        }
        if (rc) {
            st_error(t, "acquire", rc);
            return;
        }
        shmpool_block_info in;
        shmpool_block_get_info(b, &in);
        if (in.seq != desc.seq || in.index != desc.index || in.length != desc.length ||
            !tu_has_pattern(b, desc.seq))
            st_error(t, "acquired block is not the one described", 0);
        atomic_fetch_add(&t->sp->cnt->acquired, 1);
        if (from != t->sp->proc)
            atomic_fetch_add(&t->sp->cnt->acquired_remote, 1);
        st_keep(t, b, desc.seq);
        return;
    }
}

static void st_loan(struct stress_thread *t)
{
    unsigned k = (unsigned)(tu_rand(&t->rng) % ST_NCLASSES);
    uint64_t lo = k ? stress_classes[k - 1].block_size + 1 : 16;
    uint64_t size = lo + tu_rand(&t->rng) % (stress_classes[k].block_size - lo + 1);
    int timeout = tu_rand(&t->rng) % 4 == 0 ? 1 + (int)(tu_rand(&t->rng) % 3) : 0;
    shmbus_block *b = NULL;
    int rc = shmpool_loan(t->sp->p, size, timeout, &b);
    if (rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT) {
        atomic_fetch_add(&t->sp->cnt->full, 1);
        return;
    }
    if (rc) {
        st_error(t, "loan", rc);
        return;
    }
    atomic_fetch_add(&t->sp->cnt->loans, 1);
    if (shmpool_block_capacity(b) < size)
        st_error(t, "capacity below the size asked for", 0);
    tu_write_pattern(b);
    shmpool_block_info in;
    shmpool_block_get_info(b, &in);
    if (in.cls != k)
        st_error(t, "loan took the wrong class", 0);
    if (tu_rand(&t->rng) % 2) {
        shmpool_desc desc;
        rc = shmpool_block_describe(b, size, t->sp->proc, &desc);
        if (rc)
            st_error(t, "describe", rc);
        else
            st_post(t, &desc);
    }
    st_keep(t, b, in.seq);
}

static void *stress_thread_main(void *arg)
{
    struct stress_thread *t = arg;
    struct stress_proc *sp = t->sp;
    while (!t->failed && tu_now_ns() < sp->deadline) {
        unsigned op = (unsigned)(tu_rand(&t->rng) % 100);
        if (op < 25) {
            if (t->n < ST_HELD)
                st_loan(t);
            else
                st_release(t, st_remove(t, (unsigned)(tu_rand(&t->rng) % t->n)));
        } else if (op < 35) {
            if (t->n == 0)
                continue;
            struct held h = t->h[tu_rand(&t->rng) % t->n];
            if (shmpool_block_clone(h.b) != h.b)
                st_error(t, "clone returned another handle", 0);
            atomic_fetch_add(&sp->cnt->clones, 1);
            st_keep(t, h.b, h.seq);
        } else if (op < 45) { /* hand a handle to another thread of this process */
            if (t->n == 0)
                continue;
            pthread_mutex_lock(&sp->qlock);
            if (sp->qn < ST_QUEUE) {
                sp->queue[sp->qn++] = st_remove(t, (unsigned)(tu_rand(&t->rng) % t->n));
                atomic_fetch_add(&sp->cnt->handoffs, 1);
            }
            pthread_mutex_unlock(&sp->qlock);
        } else if (op < 55) {
            if (t->n >= ST_HELD)
                continue;
            pthread_mutex_lock(&sp->qlock);
            if (sp->qn > 0) {
                unsigned i = (unsigned)(tu_rand(&t->rng) % sp->qn);
                t->h[t->n++] = sp->queue[i];
                sp->queue[i] = sp->queue[--sp->qn];
            }
            pthread_mutex_unlock(&sp->qlock);
        } else if (op < 75) {
            st_take(t);
        } else if (t->n > 0) {
            st_release(t, st_remove(t, (unsigned)(tu_rand(&t->rng) % t->n)));
        }
    }
    while (t->n > 0)
        st_release(t, st_remove(t, t->n - 1));
    return NULL;
}

/* One stress process: waits for the go byte, then ST_THREADS threads for `seconds`. */
static void stress_child(const char *dom, struct stress_shared *sh, unsigned proc, int go_fd,
                         int seconds)
{
    CHILD_CHECK(tu_await(go_fd, 'g', 30000) == 0);
    struct stress_proc sp = {.sh = sh, .cnt = &sh->counts[proc], .proc = proc};
    pthread_mutex_init(&sp.qlock, NULL);
    sp.d = child_open(dom, true);
    CHILD_OK(shmpool_pool_open(sp.d, "stress", NULL, 0, &sp.p));
    sp.deadline = tu_now_ns() + (uint64_t)seconds * 1000000000u;
    struct stress_thread th[ST_THREADS];
    pthread_t tid[ST_THREADS];
    for (unsigned i = 0; i < ST_THREADS; i++) {
        th[i] = (struct stress_thread){.sp = &sp, .id = i, .rng = getpid() * 1000003ull + i};
        CHILD_CHECK(pthread_create(&tid[i], NULL, stress_thread_main, &th[i]) == 0);
    }
    for (unsigned i = 0; i < ST_THREADS; i++)
        CHILD_CHECK(pthread_join(tid[i], NULL) == 0);
    struct stress_thread drain = {.sp = &sp, .id = ST_THREADS};
    for (unsigned i = 0; i < sp.qn; i++)
        st_release(&drain, sp.queue[i]);
    CHILD_OK(shmpool_domain_close(sp.d));
    _exit(atomic_load(&sp.cnt->errors) == 0 ? 0 : CHILD_FAIL);
}

static void run_stress(void **state, bool kill_one)
{
    const char *dom = TU_DOM(state);
    int seconds = tu_stress_seconds();
    struct stress_shared *sh = shared_map(sizeof *sh);
    int go[2];
    tu_pipe(go);
    pid_t pids[ST_PROCS];
    for (unsigned i = 0; i < ST_PROCS; i++) {
        pids[i] = tu_fork();
        if (pids[i] == 0)
            stress_child(dom, sh, i, go[0], seconds);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "stress", stress_classes, ST_NCLASSES);
    for (unsigned i = 0; i < ST_PROCS; i++)
        assert_int_equal(tu_signal(go[1], 'g'), 0);
    print_message("    %d processes x %d threads for %d s%s\n", ST_PROCS, ST_THREADS, seconds,
                  kill_one ? ", process 0 killed half way" : "");

    if (kill_one) {
        tu_sleep_ms((unsigned)seconds * 500u);
        assert_int_equal(kill(pids[0], SIGKILL), 0);
        assert_int_equal(tu_wait(pids[0], 10000), 128 + SIGKILL);
    }
    for (unsigned i = kill_one ? 1 : 0; i < ST_PROCS; i++) {
        char what[64];
        snprintf(what, sizeof what, "stress process %u", i);
        tu_expect_child_ok(pids[i], (seconds + 120) * 1000, what);
    }

    struct stress_counts total = {0};
    for (unsigned i = 0; i < ST_PROCS; i++) {
        struct stress_counts *c = &sh->counts[i];
        total.loans += c->loans;
        total.full += c->full;
        total.clones += c->clones;
        total.handoffs += c->handoffs;
        total.posts += c->posts;
        total.dropped += c->dropped;
        total.acquired += c->acquired;
        total.acquired_remote += c->acquired_remote;
        total.expired += c->expired;
        total.releases += c->releases;
        total.errors += c->errors;
    }
    print_message("    loans %llu (pool full %llu), clones %llu, hand-offs %llu, descriptors "
                  "posted %llu (dropped %llu), acquired %llu (%llu from another process), "
                  "expired %llu, releases %llu\n",
                  (unsigned long long)total.loans, (unsigned long long)total.full,
                  (unsigned long long)total.clones, (unsigned long long)total.handoffs,
                  (unsigned long long)total.posts, (unsigned long long)total.dropped,
                  (unsigned long long)total.acquired, (unsigned long long)total.acquired_remote,
                  (unsigned long long)total.expired, (unsigned long long)total.releases);
    assert_int_equal(total.errors, 0);
    /* the run exercised what it claims to */
    assert_true(total.loans > 0 && total.clones > 0 && total.handoffs > 0);
    assert_true(total.acquired_remote > 0);

    if (kill_one) {
        /* the dead one's holds: reclaimed by the reaper or by this sweep */
        assert_true(shmpool_domain_sweep(d) >= 0);
        wait_for_reclaim(p, 0, 0, tu_now_ns(), 5000);
    }
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), ST_NCLASSES);
    uint64_t loans = 0;
    for (unsigned k = 0; k < ST_NCLASSES; k++) {
        print_message("    class %llu: loans %llu frees %llu high water %u/%u failed %llu "
                      "reclaims %llu\n",
                      (unsigned long long)st[k].block_size, (unsigned long long)st[k].loans,
                      (unsigned long long)st[k].frees, st[k].high_water, st[k].total,
                      (unsigned long long)st[k].failed_loans,
                      (unsigned long long)st[k].reclaims);
        assert_int_equal(st[k].used, 0);
        loans += st[k].loans;
        if (!kill_one) {
            assert_int_equal(st[k].loans, st[k].frees);
            assert_int_equal(st[k].reclaims, 0);
        }
    }
    shmpool_check_report rep;
    int rc = shmpool_domain_check(d, &rep);
    print_message("    check: rc %d, blocks %llu, used %llu, orphan holds %llu, imbalance %lld\n",
                  rc, (unsigned long long)rep.blocks, (unsigned long long)rep.used,
                  (unsigned long long)rep.orphan_holds, (long long)rep.imbalance);
    assert_int_equal(rep.used, 0);
    assert_int_equal(rep.orphan_holds, 0);
    if (!kill_one) {
        assert_int_equal(loans, total.loans);
        tu_assert_consistent(d);
    }
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(count_participants(d, pi), 1);
    assert_ok(shmpool_domain_close(d));
    munmap(sh, sizeof *sh);
    for (unsigned k = 0; k < ST_NCLASSES; k++) /* last, so that it hides no other finding */
        if (st[k].high_water > st[k].total)
            fail_msg("class %llu: high water %u is above its %u blocks",
                     (unsigned long long)st[k].block_size, st[k].high_water, st[k].total);
}

static void test_stress_processes_and_threads_leave_every_block_free(void **state)
{
    run_stress(state, false);
}

static void test_stress_with_a_killed_process_leaves_every_block_free(void **state)
{
    run_stress(state, true);
}

/* ---- crash reclaim ----------------------------------------------------------------------- */

static const shmpool_class crash_classes[] = {{256, 16}, {131072, 4}};

static void test_killed_child_holds_are_reclaimed_within_one_second(void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        uint8_t wire[3][SHMPOOL_DESC_SIZE];
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        CHILD_CHECK(tu_read_all(to_child[0], wire, sizeof wire, 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        for (int i = 0; i < 3; i++) {
            shmpool_desc desc;
            shmbus_block *r = NULL;
            CHILD_OK(shmpool_desc_decode(wire[i], SHMPOOL_DESC_SIZE, &desc));
            CHILD_OK(shmpool_acquire(d, &desc, &r));
            CHILD_CHECK(tu_has_pattern(r, desc.seq));
        }
        child_loan(p, 100);
        child_loan(p, 200);
        shmbus_block *big = child_loan(p, 100000);
        shmpool_block_clone(big); /* a second handle, same hold */
        child_loan(p, 131072);
        uint32_t slot = shmpool_domain_slot(d);
        CHILD_CHECK(tu_write_all(to_parent[1], &slot, sizeof slot) == 0);
        child_park();
    }

    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", crash_classes, 2);
    shmbus_block *mine[3];
    uint8_t wire[3][SHMPOOL_DESC_SIZE];
    uint64_t sizes[3] = {100, 100000, 50};
    for (int i = 0; i < 3; i++) {
        assert_ok(shmpool_loan(p, sizes[i], 0, &mine[i]));
        tu_write_pattern(mine[i]);
        shmpool_desc desc;
        assert_ok(shmpool_block_describe(mine[i], sizes[i], 0, &desc));
        shmpool_desc_encode(&desc, wire[i]);
    }
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    assert_int_equal(tu_write_all(to_child[1], wire, sizeof wire), 0);
    uint32_t child_slot;
    assert_int_equal(tu_read_all(to_parent[0], &child_slot, sizeof child_slot, 20000), 0);
    uint64_t me = 1ull << shmpool_domain_slot(d), child = 1ull << child_slot;

    assert_int_equal(tu_pool_used(p), 3 + 4);
    for (int i = 0; i < 3; i++) {
        shmpool_block_info in = tu_info(mine[i]);
        assert_int_equal(tu_block_holders(p, in.cls, in.index), me | child);
    }
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(count_participants(d, pi), 2);
    bool seen = false;
    for (int i = 0; i < 2; i++)
        if (pi[i].slot == child_slot) {
            seen = true;
            assert_int_equal(pi[i].pid, pid);
            assert_true(pi[i].alive);
            assert_int_equal(pi[i].held_blocks, 7);
        }
    assert_true(seen);

    /* the third block is now held by the child alone: it must come back to the pool */
    assert_ok(shmpool_block_release(mine[2]));
    assert_int_equal(tu_pool_used(p), 7);

    uint64_t t0 = tu_now_ns();
    assert_int_equal(kill(pid, SIGKILL), 0);
    double ms = wait_for_reclaim(p, 2, me, t0, 5000);
    print_message("    crash reclaim: %.1f ms from SIGKILL until all 7 holds of the child were "
                  "released (reaper thread, no explicit sweep)\n",
                  ms);
    assert_int_equal(tu_wait(pid, 5000), 128 + SIGKILL);
    if (ms > 1000.0)
        fail_msg("reclaim took %.1f ms, the bound is 1000 ms", ms);

    /* the parent's blocks are untouched */
    for (int i = 0; i < 2; i++) {
        shmpool_block_info in = tu_info(mine[i]);
        assert_true(tu_has_pattern(mine[i], in.seq));
        assert_int_equal(tu_block_holders(p, in.cls, in.index), me);
    }
    assert_int_equal(class_reclaims(p), 7);
    assert_int_equal(count_participants(d, pi), 1);
    assert_int_equal(pi[0].slot, shmpool_domain_slot(d));
    for (int i = 0; i < 2; i++)
        assert_ok(shmpool_block_release(mine[i]));
    assert_int_equal(tu_pool_used(p), 0);
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

/* A child that opens the domain, loans n blocks of 256 bytes, reports its slot and parks. */
static pid_t spawn_holder(const char *dom, unsigned n, uint32_t *slot_out)
{
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        for (unsigned i = 0; i < n; i++)
            child_loan(p, 256);
        uint32_t slot = shmpool_domain_slot(d);
        CHILD_CHECK(tu_write_all(to_parent[1], &slot, sizeof slot) == 0);
        child_park();
    }
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    assert_int_equal(tu_read_all(to_parent[0], slot_out, sizeof *slot_out, 20000), 0);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
    return pid;
}

/* spawn_holder, then SIGKILL it and reap it; returns its pid. */
static pid_t kill_holder(const char *dom, unsigned n, uint32_t *slot_out)
{
    pid_t pid = spawn_holder(dom, n, slot_out);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(tu_wait(pid, 5000), 128 + SIGKILL);
    return pid;
}

/* The parent's domain with the reaper off (tests that sweep by hand). */
static shmpool_domain *open_no_reaper(const char *dom)
{
    shmpool_domain_opts o;
    tu_opts_no_reaper(&o);
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    return d;
}

struct sweeper {
    shmpool_domain *d;
    pthread_barrier_t *go;
    int rc;
};

static void *sweep_thread(void *arg)
{
    struct sweeper *s = arg;
    pthread_barrier_wait(s->go);
    s->rc = shmpool_domain_sweep(s->d);
    return NULL;
}

static void test_sweep_reclaims_a_dead_participant_exactly_once(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d1 = open_no_reaper(dom), *d2 = open_no_reaper(dom);
    shmbus_pool *p = tu_open_pool(d1, "p", (shmpool_class[]){{256, 4}}, 1);
    uint32_t slot;
    kill_holder(dom, 3, &slot);

    /* no reaper runs and nobody swept: the dead one's holds are still there */
    assert_int_equal(tu_pool_used(p), 3);
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    int n = count_participants(d1, pi);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        if (pi[i].slot == slot)
            assert_false(pi[i].alive);

    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct sweeper s1 = {d1, &go, -100}, s2 = {d2, &go, -100};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, sweep_thread, &s1), 0);
    assert_int_equal(pthread_create(&t2, NULL, sweep_thread, &s2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&go);
    print_message("    concurrent sweeps returned %d and %d\n", s1.rc, s2.rc);
    assert_true(s1.rc >= 0 && s2.rc >= 0);
    assert_int_equal(s1.rc + s2.rc, 1);
    assert_int_equal(shmpool_domain_sweep(d1), 0);
    assert_int_equal(shmpool_domain_sweep(d2), 0);

    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.reclaims, 3);
    assert_int_equal(st.frees, 3);
    assert_int_equal(count_participants(d1, pi), 2);
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_loan_from_an_exhausted_pool_reclaims_a_dead_holder_first(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = open_no_reaper(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    uint32_t slot;
    kill_holder(dom, 4, &slot);
    assert_int_equal(tu_pool_used(p), 4);

    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, 1, 0, &b)); /* found it empty, swept, loaned */
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 1);
    assert_int_equal(st.reclaims, 4);
    assert_int_equal(st.failed_loans, 0);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

/* A dead participant whose recorded pid now names a live process (the pid was reused): its
 * holds must still be reclaimed. The test writes the live pid into the table itself. */
static void test_reused_pid_does_not_keep_a_dead_participant_alive(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = open_no_reaper(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    uint32_t slot;
    pid_t pid = kill_holder(dom, 2, &slot);

    char path[512];
    snprintf(path, sizeof path, "%s/shmbus.%s.ctl", tu_shm_dir(), dom);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct ctl_hdr *ctl = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(ctl != MAP_FAILED);
    assert_int_equal(atomic_load(&ctl->participants[slot].pid), pid);
    atomic_store(&ctl->participants[slot].pid, (uint32_t)getpid()); /* reused by a live one */
    munmap(ctl, sizeof *ctl);

    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    int n = count_participants(d, pi);
    for (int i = 0; i < n; i++)
        if (pi[i].slot == slot) {
            assert_int_equal(pi[i].pid, getpid());
            assert_false(pi[i].alive);
        }
    assert_int_equal(tu_pool_used(p), 2);
    assert_int_equal(shmpool_domain_sweep(d), 1);
    assert_int_equal(tu_pool_used(p), 0);
    assert_int_equal(count_participants(d, pi), 1);
    assert_ok(shmpool_domain_close(d));
}

/* A participant that started a helper process and was then killed: the helper inherited
 * its file descriptors, yet must not keep the dead participant looking alive. */
static void run_reclaim_with_live_helper(void **state, bool spawn)
{
    const char *dom = TU_DOM(state);
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        child_loan(p, 256);
        child_loan(p, 256);
        pid_t helper;
        if (spawn) { /* a program started the way system() and posix_spawn() do it */
            char *argv[] = {"sleep", "30", NULL};
            CHILD_CHECK(posix_spawnp(&helper, "sleep", NULL, NULL, argv, environ) == 0);
        } else { /* a plain fork that outlives us (no PDEATHSIG) */
            helper = fork();
            CHILD_CHECK(helper >= 0);
            if (helper == 0) {
                for (int i = 0; i < 300; i++) /* 30 s at most */
                    tu_sleep_ms(100);
                _exit(0);
            }
        }
        CHILD_CHECK(tu_write_all(to_parent[1], &helper, sizeof helper) == 0);
        child_park();
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    pid_t helper;
    assert_int_equal(tu_read_all(to_parent[0], &helper, sizeof helper, 20000), 0);
    assert_int_equal(tu_pool_used(p), 2);

    uint64_t t0 = tu_now_ns();
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(tu_wait(pid, 5000), 128 + SIGKILL);
    unsigned n;
    double ms = -1;
    while (tu_now_ns() - t0 < 3000000000ull) { /* the helper lives on meanwhile */
        if (tu_pool_used(p) == 0 && tu_pool_holders(p, &n) == 0) {
            ms = (double)(tu_now_ns() - t0) / 1e6;
            break;
        }
        tu_sleep_ms(1);
    }
    bool helper_lived = kill(helper, 0) == 0;
    kill(helper, SIGKILL); /* an orphan now: init reaps it */
    if (ms < 0) {
        /* end cleanly (a domain left open keeps its reaper thread, and later tests must fork
         * from a single-threaded process): with the helper gone the holds must go too */
        assert_true(shmpool_domain_sweep(d) >= 0);
        wait_for_reclaim(p, 0, 0, tu_now_ns(), 5000);
        assert_ok(shmpool_domain_close(d));
        fail_msg("the dead participant's holds were not reclaimed in 3 s while its %s helper "
                 "(pid %d) ran; they were once the helper was killed",
                 spawn ? "spawned" : "forked", (int)helper);
    }
    print_message("    reclaim with the dead participant's %s helper still running: %.1f ms\n",
                  spawn ? "spawned" : "forked", ms);
    if (!helper_lived)
        fail_msg("the %s helper died before the measurement: nothing was tested",
                 spawn ? "spawned" : "forked");
    if (ms > 1000.0)
        fail_msg("reclaim took %.1f ms, the bound is 1000 ms", ms);
    assert_ok(shmpool_domain_close(d));
}

static void test_crashed_participant_is_reclaimed_while_a_helper_it_forked_lives(void **state)
{
    run_reclaim_with_live_helper(state, false);
}

static void test_crashed_participant_is_reclaimed_while_a_program_it_spawned_lives(void **state)
{
    run_reclaim_with_live_helper(state, true);
}

struct own_holds {
    uint64_t bit;
    unsigned found;
};

static int count_own_holds(const shmpool_block_state *st, void *ctx)
{
    struct own_holds *o = ctx;
    o->found += (st->holders & o->bit) != 0;
    return 0;
}

static void test_new_participant_never_inherits_holds_of_a_dead_one(void **state)
{
    const char *dom = TU_DOM(state);
    int to_a[2], from_a[2], to_b[2], from_b[2];
    tu_pipe(to_a);
    tu_pipe(from_a);
    tu_pipe(to_b);
    tu_pipe(from_b);
    pid_t b_pid = tu_fork();
    if (b_pid == 0) { /* B joins after A died and must start with no hold at all */
        CHILD_CHECK(tu_await(to_b[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, false);
        shmbus_pool *p = child_pool(d, NULL, 0);
        struct own_holds o = {.bit = 1ull << shmpool_domain_slot(d)};
        CHILD_OK(shmpool_pool_walk(p, count_own_holds, &o));
        CHILD_CHECK(o.found == 0);
        shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
        int n = shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS);
        CHILD_CHECK(n > 0);
        for (int i = 0; i < n; i++)
            if (pi[i].slot == shmpool_domain_slot(d))
                CHILD_CHECK(pi[i].held_blocks == 0 && pi[i].alive);
        uint32_t slot = shmpool_domain_slot(d);
        shmbus_block *x = child_loan(p, 1);
        CHILD_OK(shmpool_block_release(x));
        CHILD_OK(shmpool_domain_close(d));
        CHILD_CHECK(tu_write_all(from_b[1], &slot, sizeof slot) == 0);
        _exit(0);
    }
    pid_t a_pid = tu_fork();
    if (a_pid == 0) { /* A acquires the parent's block, loans three, and is killed */
        shmpool_desc desc;
        tu_child_recv_desc(to_a[0], &desc);
        shmpool_domain *d = child_open(dom, false);
        shmbus_pool *p = child_pool(d, NULL, 0);
        shmbus_block *r = NULL;
        CHILD_OK(shmpool_acquire(d, &desc, &r));
        for (int i = 0; i < 3; i++)
            child_loan(p, 1);
        uint32_t slot = shmpool_domain_slot(d);
        CHILD_CHECK(tu_write_all(from_a[1], &slot, sizeof slot) == 0);
        child_park();
    }
    shmpool_domain *d = open_no_reaper(dom); /* nothing reclaims A behind the test's back */
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 8}}, 1);
    shmpool_desc desc;
    shmbus_block *mine = tu_loan_described(p, 1, &desc);
    tu_send_desc(to_a[1], &desc);
    uint32_t a_slot, b_slot;
    assert_int_equal(tu_read_all(from_a[0], &a_slot, sizeof a_slot, 20000), 0);
    uint64_t me = 1ull << shmpool_domain_slot(d);
    assert_int_equal(tu_pool_used(p), 4);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me | (1ull << a_slot));
    assert_int_equal(kill(a_pid, SIGKILL), 0);
    assert_int_equal(tu_wait(a_pid, 5000), 128 + SIGKILL);

    assert_int_equal(tu_signal(to_b[1], 'g'), 0);
    tu_expect_child_ok(b_pid, 20000, "participant joining after a death");
    assert_int_equal(tu_read_all(from_b[0], &b_slot, sizeof b_slot, 1000), 0);
    print_message("    dead participant had slot %u, the next one got slot %u\n", a_slot, b_slot);

    assert_true(shmpool_domain_sweep(d) >= 0);
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me);
    assert_true(tu_has_pattern(mine, desc.seq));
    assert_ok(shmpool_block_release(mine));
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

/* ---- exhaustion across processes --------------------------------------------------------- */

/* A child that loans every block of the pool "p" ({4096, 2}), says 'r', then releases one
 * block 200 ms after each 'x' it receives, and leaves after the second. */
static pid_t spawn_exhauster(const char *dom, int *to_child_w, int *from_child_r)
{
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        shmbus_block *b[2] = {child_loan(p, 4096), child_loan(p, 4096)};
        CHILD_CHECK(tu_signal(to_parent[1], 'r') == 0);
        for (int i = 0; i < 2; i++) {
            CHILD_CHECK(tu_await(to_child[0], 'x', 60000) == 0);
            tu_sleep_ms(200); /* let the parent go to sleep in its loan */
            CHILD_OK(shmpool_block_release(b[i]));
        }
        CHILD_OK(shmpool_domain_close(d));
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    *to_child_w = to_child[1];
    *from_child_r = to_parent[0];
    return pid;
}

static void test_loan_waits_for_a_block_released_by_another_process(void **state)
{
    const char *dom = TU_DOM(state);
    int w, r;
    pid_t pid = spawn_exhauster(dom, &w, &r);
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{4096, 2}}, 1);
    assert_int_equal(tu_signal(w, 'g'), 0);
    assert_int_equal(tu_await(r, 'r', 20000), 0);
    assert_int_equal(tu_pool_used(p), 2);

    shmbus_block *b[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tu_signal(w, 'x'), 0);
        uint64_t t0 = tu_now_ns();
        assert_ok(shmpool_loan(p, 4096, 20000, &b[i]));
        print_message("    loan %d waited %.1f ms for the other process's release\n", i,
                      (double)(tu_now_ns() - t0) / 1e6);
    }
    tu_expect_child_ok(pid, 20000, "exhausting child");
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 2);
    assert_int_equal(st.failed_loans, 0);
    assert_int_equal(tu_pool_holders(p, NULL), 1ull << shmpool_domain_slot(d));
    for (int i = 0; i < 2; i++)
        assert_ok(shmpool_block_release(b[i]));
    close(w);
    close(r);
    assert_ok(shmpool_domain_close(d));
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_loan_fails_at_once_or_times_out_while_another_process_holds_every_block(
    void **state)
{
    const char *dom = TU_DOM(state);
    int w, r;
    pid_t pid = spawn_exhauster(dom, &w, &r);
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{4096, 2}}, 1);
    assert_int_equal(tu_signal(w, 'g'), 0);
    assert_int_equal(tu_await(r, 'r', 20000), 0);

    shmbus_block *b = NULL;
    uint64_t t0 = tu_now_ns();
    assert_rc(shmpool_loan(p, 1, 0, &b), SHMBUS_EFULL);
    double full_ms = (double)(tu_now_ns() - t0) / 1e6;

    const int wait_ms = 300;
    double cpu0 = thread_cpu_ms();
    t0 = tu_now_ns();
    assert_rc(shmpool_loan(p, 1, wait_ms, &b), SHMBUS_ETIMEDOUT);
    double waited = (double)(tu_now_ns() - t0) / 1e6, cpu = thread_cpu_ms() - cpu0;
    print_message("    EFULL after %.2f ms; ETIMEDOUT after %.1f ms (asked %d) using %.1f ms of "
                  "CPU\n",
                  full_ms, waited, wait_ms, cpu);
    /* "without spinning a core": a sleeping waiter uses a small part of the time it waits */
    if (cpu > wait_ms / 2.0)
        fail_msg("the waiting loan used %.1f ms of CPU in %.1f ms: it spins", cpu, waited);

    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.failed_loans, 2);
    assert_int_equal(st.used, 2);
    assert_int_equal(tu_signal(w, 'x'), 0);
    assert_int_equal(tu_signal(w, 'x'), 0);
    tu_expect_child_ok(pid, 20000, "exhausting child");
    assert_int_equal(tu_pool_used(p), 0);
    close(w);
    close(r);
    assert_ok(shmpool_domain_close(d));
}

/* ---- named nodes across processes -------------------------------------------------------- */

static void test_named_node_is_shared_between_processes_and_destroyed_after_both_release(
    void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        shmbus_block *n = NULL;
        bool created = true;
        CHILD_OK(shmpool_node_get(p, "aaa", 64, &n, &created));
        CHILD_CHECK(!created);
        uint64_t *v = shmpool_block_data(n);
        CHILD_OK(shmpool_node_lock(n));
        CHILD_CHECK(v[0] == 1);
        v[0] = 2;
        strcpy((char *)&v[1], "from the child");
        CHILD_OK(shmpool_node_unlock(n));
        CHILD_CHECK(tu_signal(to_parent[1], 'r') == 0);
        CHILD_CHECK(tu_await(to_child[0], 'x', 20000) == 0);
        CHILD_OK(shmpool_node_lock(n));
        CHILD_CHECK(v[0] == 3);
        CHILD_OK(shmpool_node_unlock(n));
        CHILD_OK(shmpool_block_release(n)); /* the last holder: the node goes */
        CHILD_OK(shmpool_domain_close(d));
        _exit(0);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{64, 4}}, 1);
    shmbus_block *n = NULL;
    bool created = false;
    assert_ok(shmpool_node_get(p, "aaa", 64, &n, &created));
    assert_true(created);
    uint64_t *v = shmpool_block_data(n);
    assert_ok(shmpool_node_lock(n));
    assert_int_equal(v[0], 0);
    v[0] = 1;
    assert_ok(shmpool_node_unlock(n));
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    assert_int_equal(tu_await(to_parent[0], 'r', 20000), 0);

    assert_ok(shmpool_node_lock(n));
    assert_int_equal(v[0], 2);
    assert_string_equal((const char *)&v[1], "from the child");
    v[0] = 3;
    assert_ok(shmpool_node_unlock(n));
    assert_int_equal(__builtin_popcountll(tu_pool_holders(p, NULL)), 2);
    assert_ok(shmpool_block_release(n));
    assert_int_equal(tu_pool_used(p), 1); /* the child still holds it */
    assert_ok(shmpool_node_get(p, "aaa", 64, &n, &created));
    assert_false(created); /* still the same node */
    assert_int_equal(((uint64_t *)shmpool_block_data(n))[0], 3);
    assert_ok(shmpool_block_release(n));

    assert_int_equal(tu_signal(to_child[1], 'x'), 0);
    tu_expect_child_ok(pid, 20000, "node child");
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_node_get(p, "aaa", 64, &n, &created));
    assert_true(created); /* fresh */
    const unsigned char *bytes = shmpool_block_data(n);
    for (uint64_t i = 0; i < shmpool_block_capacity(n); i++)
        if (bytes[i])
            fail_msg("re-created node is not zero-filled at byte %llu", (unsigned long long)i);
    assert_ok(shmpool_block_release(n));
    assert_ok(shmpool_domain_close(d));
}

static void test_node_lock_excludes_other_processes(void **state)
{
    const char *dom = TU_DOM(state);
    enum { NPROC = 3, ITER = 3000 };
    int go[2];
    tu_pipe(go);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = tu_fork();
        if (pids[i] == 0) {
            CHILD_CHECK(tu_await(go[0], 'g', 20000) == 0);
            shmpool_domain *d = child_open(dom, true);
            shmbus_pool *p = child_pool(d, NULL, 0);
            shmbus_block *n = NULL;
            bool created = true;
            CHILD_OK(shmpool_node_get(p, "counter", 8, &n, &created));
            CHILD_CHECK(!created);
            volatile uint64_t *v = shmpool_block_data(n);
            for (int k = 0; k < ITER; k++) {
                CHILD_OK(shmpool_node_lock(n));
                uint64_t x = *v;
                if (k % 64 == 0)
                    sched_yield();
                *v = x + 1;
                CHILD_OK(shmpool_node_unlock(n));
            }
            CHILD_OK(shmpool_block_release(n));
            CHILD_OK(shmpool_domain_close(d));
            _exit(0);
        }
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{64, 2}}, 1);
    shmbus_block *n = NULL;
    bool created;
    assert_ok(shmpool_node_get(p, "counter", 8, &n, &created));
    assert_true(created);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(tu_signal(go[1], 'g'), 0);
    for (int i = 0; i < NPROC; i++)
        tu_expect_child_ok(pids[i], 60000, "incrementing child");
    assert_ok(shmpool_node_lock(n));
    assert_int_equal(*(uint64_t *)shmpool_block_data(n), NPROC * ITER);
    assert_ok(shmpool_node_unlock(n));
    assert_ok(shmpool_block_release(n));
    assert_ok(shmpool_domain_close(d));
}

static void test_node_lock_reports_owner_dead_after_its_holder_is_killed(void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        shmbus_block *n = NULL;
        bool created = true;
        CHILD_OK(shmpool_node_get(p, "aaa", 64, &n, &created));
        CHILD_CHECK(!created);
        CHILD_OK(shmpool_node_lock(n));
        strcpy(shmpool_block_data(n), "half-written");
        CHILD_CHECK(tu_signal(to_parent[1], 'r') == 0);
        child_park(); /* killed holding the lock */
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{64, 4}}, 1);
    shmbus_block *n = NULL;
    bool created;
    assert_ok(shmpool_node_get(p, "aaa", 64, &n, &created));
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    assert_int_equal(tu_await(to_parent[0], 'r', 20000), 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(tu_wait(pid, 5000), 128 + SIGKILL);

    assert_rc(shmpool_node_lock(n), SHMBUS_EOWNERDEAD); /* we hold it now */
    assert_string_equal((const char *)shmpool_block_data(n), "half-written");
    strcpy(shmpool_block_data(n), "repaired");
    assert_ok(shmpool_node_unlock(n));
    for (int i = 0; i < 3; i++) { /* and it is an ordinary lock again */
        assert_ok(shmpool_node_lock(n));
        assert_ok(shmpool_node_unlock(n));
    }
    assert_true(shmpool_domain_sweep(d) >= 0);
    wait_for_reclaim(p, 1, 1ull << shmpool_domain_slot(d), tu_now_ns(), 5000);
    assert_string_equal((const char *)shmpool_block_data(n), "repaired");
    assert_ok(shmpool_block_release(n));
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d));
}

/* ---- fork, read-only mapping, lifetimes -------------------------------------------------- */

static void test_domain_opened_before_fork_returns_eforked_in_the_child(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    shmpool_desc desc;
    shmbus_block *b = tu_loan_described(p, 1, &desc);

    pid_t pid = tu_fork();
    if (pid == 0) {
        shmbus_block *x = NULL;
        CHILD_RC(shmpool_loan(p, 1, 0, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_loan(p, 1, 100, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_acquire(d, &desc, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_block_release(b), SHMBUS_EFORKED);
        /* opening the domain again in the child works (no reaper: this child stays
         * single-threaded, which sanitizers need after a fork) */
        shmpool_domain *d2 = child_open(dom, false);
        shmbus_pool *p2 = child_pool(d2, NULL, 0);
        CHILD_OK(shmpool_acquire(d2, &desc, &x));
        CHILD_CHECK(tu_has_pattern(x, desc.seq));
        shmbus_block *y = child_loan(p2, 1);
        CHILD_OK(shmpool_block_release(y));
        CHILD_OK(shmpool_block_release(x));
        CHILD_OK(shmpool_domain_close(d2));
        _exit(0);
    }
    tu_expect_child_ok(pid, 20000, "forked child");
    /* the child's calls on the inherited domain touched nothing */
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), 1ull << shmpool_domain_slot(d));
    assert_true(tu_has_pattern(b, desc.seq));
    /* and its exit did not make this process look dead */
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(count_participants(d, pi), 1);
    assert_true(pi[0].alive);
    assert_int_equal(shmpool_domain_sweep(d), 0);
    assert_int_equal(tu_pool_used(p), 1);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

static sigjmp_buf g_fault_jmp;

static void on_fault(int sig)
{
    (void)sig;
    siglongjmp(g_fault_jmp, 1);
}

static void test_acquired_block_is_read_only_in_a_process_that_never_loaned(void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2];
    tu_pipe(to_child);
    pid_t pid = tu_fork();
    if (pid == 0) {
        shmpool_desc desc;
        tu_child_recv_desc(to_child[0], &desc);
        shmpool_domain *d = child_open(dom, true);
        shmbus_block *r = NULL;
        CHILD_OK(shmpool_acquire(d, &desc, &r));
        volatile char *data = shmpool_block_data(r);
        CHILD_CHECK(tu_has_pattern(r, desc.seq));
        struct sigaction sa = {.sa_handler = on_fault}, old_segv, old_bus;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
        sigaction(SIGBUS, &sa, &old_bus);
        volatile bool faulted = false;
        if (sigsetjmp(g_fault_jmp, 1) == 0)
            data[8] = 1;
        else
            faulted = true;
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
        if (!faulted)
            fprintf(stderr, "child: writing to an acquired block succeeded\n");
        CHILD_OK(shmpool_block_release(r));
        CHILD_OK(shmpool_domain_close(d));
        _exit(faulted ? 0 : 3);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 2}}, 1);
    shmpool_desc desc;
    shmbus_block *b = tu_loan_described(p, 64, &desc);
    tu_send_desc(to_child[1], &desc);
    tu_expect_child_ok(pid, 20000, "read-only reader");
    assert_true(tu_has_pattern(b, desc.seq));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

static void test_block_outlives_its_loaner_process_while_another_holds_it(void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2], to_parent[2];
    tu_pipe(to_child);
    tu_pipe(to_parent);
    pid_t pid = tu_fork();
    if (pid == 0) {
        CHILD_CHECK(tu_await(to_child[0], 'g', 20000) == 0);
        shmpool_domain *d = child_open(dom, true);
        shmbus_pool *p = child_pool(d, NULL, 0);
        shmbus_block *b = child_loan(p, 200);
        shmpool_desc desc;
        CHILD_OK(shmpool_block_describe(b, 200, 0, &desc));
        uint8_t wire[SHMPOOL_DESC_SIZE];
        shmpool_desc_encode(&desc, wire);
        CHILD_CHECK(tu_write_all(to_parent[1], wire, sizeof wire) == 0);
        CHILD_CHECK(tu_await(to_child[0], 'x', 20000) == 0);
        CHILD_OK(shmpool_block_release(b));
        CHILD_OK(shmpool_domain_close(d));
        _exit(0);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 2}}, 1);
    assert_int_equal(tu_signal(to_child[1], 'g'), 0);
    uint8_t wire[SHMPOOL_DESC_SIZE];
    assert_int_equal(tu_read_all(to_parent[0], wire, sizeof wire, 20000), 0);
    shmpool_desc desc;
    shmbus_block *r = NULL;
    assert_ok(shmpool_desc_decode(wire, sizeof wire, &desc));
    assert_ok(shmpool_acquire(d, &desc, &r));
    assert_int_equal(tu_signal(to_child[1], 'x'), 0);
    tu_expect_child_ok(pid, 20000, "loaner child");

    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(count_participants(d, pi), 1);
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), 1ull << shmpool_domain_slot(d));
    assert_true(tu_has_pattern(r, desc.seq));
    assert_int_equal(tu_info(r).owner_uid, desc.owner_uid);
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.frees, 0);
    assert_ok(shmpool_block_release(r)); /* the last hold, in another process than the loan */
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.frees, 1);
    assert_ok(shmpool_domain_close(d));
}

static void test_domain_whose_participants_all_crashed_starts_clean(void **state)
{
    const char *dom = TU_DOM(state);
    static const shmpool_class c[] = {{256, 8}, {65536, 4}};
    enum { NPROC = 3 };
    int go[2], ready[2];
    tu_pipe(go);
    tu_pipe(ready);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = tu_fork();
        if (pids[i] == 0) { /* they race to create the domain, the pool and the node */
            CHILD_CHECK(tu_await(go[0], 'g', 20000) == 0);
            shmpool_domain *d = child_open(dom, true);
            shmbus_pool *p = child_pool(d, c, 2);
            child_loan(p, 100);
            child_loan(p, 65536);
            shmbus_block *n = NULL;
            bool created;
            CHILD_OK(shmpool_node_get(p, "n", 8, &n, &created));
            if (i == 0)
                CHILD_OK(shmpool_node_lock(n)); /* and one dies holding the node's lock */
            CHILD_CHECK(tu_signal(ready[1], 'r') == 0);
            child_park();
        }
    }
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(tu_signal(go[1], 'g'), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(tu_await(ready[0], 'r', 20000), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(kill(pids[i], SIGKILL), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(tu_wait(pids[i], 5000), 128 + SIGKILL);
    /* what they left behind */
    assert_true(tu_segment_exists(tu_shm_dir(), dom, "ctl"));
    assert_true(tu_segment_exists(tu_shm_dir(), dom, "pool.p"));

    shmpool_domain *d = open_no_reaper(dom); /* the open itself must clean up */
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(count_participants(d, pi), 1);
    assert_int_equal(pi[0].slot, shmpool_domain_slot(d));
    shmbus_pool *p = tu_open_pool(d, "p", c, 2);
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), 2);
    assert_int_equal(st[0].used, 0);
    assert_int_equal(st[1].used, 0);
    tu_assert_consistent(d);
    shmbus_block *n = NULL;
    bool created = false;
    assert_ok(shmpool_node_get(p, "n", 8, &n, &created));
    assert_true(created);
    assert_ok(shmpool_node_lock(n)); /* a fresh node has a fresh lock */
    assert_ok(shmpool_node_unlock(n));
    assert_ok(shmpool_block_release(n));
    /* every block can be loaned */
    shmbus_block *all[12];
    for (int i = 0; i < 8; i++)
        assert_ok(shmpool_loan(p, 1, 0, &all[i]));
    for (int i = 8; i < 12; i++)
        assert_ok(shmpool_loan(p, 65536, 0, &all[i]));
    for (int i = 0; i < 12; i++)
        assert_ok(shmpool_block_release(all[i]));
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_stress_processes_and_threads_leave_every_block_free),
        TU_TEST(test_stress_with_a_killed_process_leaves_every_block_free),
        TU_TEST(test_killed_child_holds_are_reclaimed_within_one_second),
        TU_TEST(test_sweep_reclaims_a_dead_participant_exactly_once),
        TU_TEST(test_loan_from_an_exhausted_pool_reclaims_a_dead_holder_first),
        TU_TEST(test_reused_pid_does_not_keep_a_dead_participant_alive),
        TU_TEST(test_crashed_participant_is_reclaimed_while_a_helper_it_forked_lives),
        TU_TEST(test_crashed_participant_is_reclaimed_while_a_program_it_spawned_lives),
        TU_TEST(test_new_participant_never_inherits_holds_of_a_dead_one),
        TU_TEST(test_loan_waits_for_a_block_released_by_another_process),
        TU_TEST(test_loan_fails_at_once_or_times_out_while_another_process_holds_every_block),
        TU_TEST(test_named_node_is_shared_between_processes_and_destroyed_after_both_release),
        TU_TEST(test_node_lock_excludes_other_processes),
        TU_TEST(test_node_lock_reports_owner_dead_after_its_holder_is_killed),
        TU_TEST(test_domain_opened_before_fork_returns_eforked_in_the_child),
        TU_TEST(test_acquired_block_is_read_only_in_a_process_that_never_loaned),
        TU_TEST(test_block_outlives_its_loaner_process_while_another_holds_it),
        TU_TEST(test_domain_whose_participants_all_crashed_starts_clean),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
