/* shmpool under stress: processes of threads loaning, passing and releasing blocks, with and
 * without a process killed midway; every block is free at the end.
 *
 * Children are forked before the parent opens the domain (or open their own), report failure
 * only through their exit status, and leave with _exit(). */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "childutil.h"
#include "testutil.h"

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
    while (!t->failed && proc_now_ns() < sp->deadline) {
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
    CHILD_CHECK(proc_hear(go_fd, 'g', 30000) == 0);
    struct stress_proc sp = {.sh = sh, .cnt = &sh->counts[proc], .proc = proc};
    pthread_mutex_init(&sp.qlock, NULL);
    sp.d = tu_child_open(dom, true);
    CHILD_OK(shmpool_pool_open(sp.d, "stress", NULL, 0, &sp.p));
    sp.deadline = proc_now_ns() + (uint64_t)seconds * 1000000000u;
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
    struct stress_shared *sh = tu_shared_map(sizeof *sh);
    int go[2];
    proc_pipe(go);
    pid_t pids[ST_PROCS];
    for (unsigned i = 0; i < ST_PROCS; i++) {
        pids[i] = proc_fork();
        if (pids[i] == 0)
            stress_child(dom, sh, i, go[0], seconds);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "stress", stress_classes, ST_NCLASSES);
    for (unsigned i = 0; i < ST_PROCS; i++)
        assert_int_equal(proc_tell(go[1], 'g'), 0);
    print_message("    %d processes x %d threads for %d s%s\n", ST_PROCS, ST_THREADS, seconds,
                  kill_one ? ", process 0 killed half way" : "");

    if (kill_one) {
        proc_sleep_ms((unsigned)seconds * 500u);
        assert_int_equal(kill(pids[0], SIGKILL), 0);
        assert_int_equal(proc_wait(pids[0], 10000), 128 + SIGKILL);
    }
    for (unsigned i = kill_one ? 1 : 0; i < ST_PROCS; i++) {
        char what[64];
        snprintf(what, sizeof what, "stress process %u", i);
        proc_expect_ok(pids[i], (seconds + 120) * 1000, what);
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
        tu_wait_for_reclaim(p, 0, 0, proc_now_ns(), 5000);
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
    assert_int_equal(tu_count_participants(d, pi), 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_stress_processes_and_threads_leave_every_block_free),
        TU_TEST(test_stress_with_a_killed_process_leaves_every_block_free),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
