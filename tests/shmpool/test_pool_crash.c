/* Crash reclaim: the holds of a killed participant come back (by its peers' reapers, a sweep,
 * or an exhausted loan), also while a process it started lives on or its pid was reused; a
 * new participant never inherits them; a domain whose participants all died starts clean. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "layout.h" /* the participant table, for the pid-reuse test only */
#include "childutil.h"
#include "testutil.h"

extern char **environ;

/* ---- crash reclaim ----------------------------------------------------------------------- */

static const shmpool_class crash_classes[] = {{256, 16}, {131072, 4}};

static void test_killed_child_holds_are_reclaimed_within_one_second(void **state)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_fork(&ch);
    if (pid == 0) {
        uint8_t wire[3][SHMPOOL_DESC_SIZE];
        CHILD_CHECK(proc_hear(ch.to_child[0], 'g', 20000) == 0);
        CHILD_CHECK(proc_read_all(ch.to_child[0], wire, sizeof wire, 20000) == 0);
        shmpool_domain *d = tu_child_open(dom, true);
        shmbus_pool *p = tu_child_pool(d, NULL, 0);
        for (int i = 0; i < 3; i++) {
            shmpool_desc desc;
            shmbus_block *r = NULL;
            CHILD_OK(shmpool_desc_decode(wire[i], SHMPOOL_DESC_SIZE, &desc));
            CHILD_OK(shmpool_acquire(d, &desc, &r));
            CHILD_CHECK(tu_has_pattern(r, desc.seq));
        }
        tu_child_loan(p, 100);
        tu_child_loan(p, 200);
        shmbus_block *big = tu_child_loan(p, 100000);
        shmpool_block_clone(big); /* a second handle, same hold */
        tu_child_loan(p, 131072);
        uint32_t slot = shmpool_domain_slot(d);
        CHILD_CHECK(proc_write_all(ch.to_parent[1], &slot, sizeof slot) == 0);
        tu_child_park();
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
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    assert_int_equal(proc_write_all(ch.to_child[1], wire, sizeof wire), 0);
    uint32_t child_slot;
    assert_int_equal(proc_read_all(ch.to_parent[0], &child_slot, sizeof child_slot, 20000), 0);
    uint64_t me = 1ull << shmpool_domain_slot(d), child = 1ull << child_slot;

    assert_int_equal(tu_pool_used(p), 3 + 4);
    for (int i = 0; i < 3; i++) {
        shmpool_block_info in = tu_info(mine[i]);
        assert_int_equal(tu_block_holders(p, in.cls, in.index), me | child);
    }
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(tu_count_participants(d, pi), 2);
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

    uint64_t t0 = proc_now_ns();
    assert_int_equal(kill(pid, SIGKILL), 0);
    double ms = tu_wait_for_reclaim(p, 2, me, t0, 5000);
    print_message("    crash reclaim: %.1f ms from SIGKILL until all 7 holds of the child were "
                  "released (reaper thread, no explicit sweep)\n",
                  ms);
    assert_int_equal(proc_wait(pid, 5000), 128 + SIGKILL);
    if (ms > 1000.0)
        fail_msg("reclaim took %.1f ms, the bound is 1000 ms", ms);

    /* the parent's blocks are untouched */
    for (int i = 0; i < 2; i++) {
        shmpool_block_info in = tu_info(mine[i]);
        assert_true(tu_has_pattern(mine[i], in.seq));
        assert_int_equal(tu_block_holders(p, in.cls, in.index), me);
    }
    assert_int_equal(tu_class_reclaims(p), 7);
    assert_int_equal(tu_count_participants(d, pi), 1);
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
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        for (unsigned i = 0; i < n; i++)
            tu_child_loan(ch.p, 256);
        uint32_t slot = shmpool_domain_slot(ch.d);
        CHILD_CHECK(proc_write_all(ch.to_parent[1], &slot, sizeof slot) == 0);
        tu_child_park();
    }
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    assert_int_equal(proc_read_all(ch.to_parent[0], slot_out, sizeof *slot_out, 20000), 0);
    tu_child_close_pipes(&ch);
    return pid;
}

/* spawn_holder, then SIGKILL it and reap it; returns its pid. */
static pid_t kill_holder(const char *dom, unsigned n, uint32_t *slot_out)
{
    pid_t pid = spawn_holder(dom, n, slot_out);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(proc_wait(pid, 5000), 128 + SIGKILL);
    return pid;
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
    shmpool_domain *d1 = tu_open_no_reaper(dom), *d2 = tu_open_no_reaper(dom);
    shmbus_pool *p = tu_open_pool(d1, "p", (shmpool_class[]){{256, 4}}, 1);
    uint32_t slot;
    kill_holder(dom, 3, &slot);

    /* no reaper runs and nobody swept: the dead one's holds are still there */
    assert_int_equal(tu_pool_used(p), 3);
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    int n = tu_count_participants(d1, pi);
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
    assert_int_equal(tu_count_participants(d1, pi), 2);
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_loan_from_an_exhausted_pool_reclaims_a_dead_holder_first(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = tu_open_no_reaper(dom);
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
    shmpool_domain *d = tu_open_no_reaper(dom);
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
    int n = tu_count_participants(d, pi);
    for (int i = 0; i < n; i++)
        if (pi[i].slot == slot) {
            assert_int_equal(pi[i].pid, getpid());
            assert_false(pi[i].alive);
        }
    assert_int_equal(tu_pool_used(p), 2);
    assert_int_equal(shmpool_domain_sweep(d), 1);
    assert_int_equal(tu_pool_used(p), 0);
    assert_int_equal(tu_count_participants(d, pi), 1);
    assert_ok(shmpool_domain_close(d));
}

/* A participant that started a helper process and was then killed: the helper inherited
 * its file descriptors, yet must not keep the dead participant looking alive. */
static void run_reclaim_with_live_helper(void **state, bool spawn)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        tu_child_loan(ch.p, 256);
        tu_child_loan(ch.p, 256);
        pid_t helper;
        if (spawn) { /* a program started the way system() and posix_spawn() do it */
            char *argv[] = {"sleep", "30", NULL};
            CHILD_CHECK(posix_spawnp(&helper, "sleep", NULL, NULL, argv, environ) == 0);
        } else { /* a plain fork that outlives us (no PDEATHSIG) */
            helper = fork();
            CHILD_CHECK(helper >= 0);
            if (helper == 0) {
                for (int i = 0; i < 300; i++) /* 30 s at most */
                    proc_sleep_ms(100);
                _exit(0);
            }
        }
        CHILD_CHECK(proc_write_all(ch.to_parent[1], &helper, sizeof helper) == 0);
        tu_child_park();
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    pid_t helper;
    assert_int_equal(proc_read_all(ch.to_parent[0], &helper, sizeof helper, 20000), 0);
    assert_int_equal(tu_pool_used(p), 2);

    uint64_t t0 = proc_now_ns();
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(proc_wait(pid, 5000), 128 + SIGKILL);
    unsigned n;
    double ms = -1;
    while (proc_now_ns() - t0 < 3000000000ull) { /* the helper lives on meanwhile */
        if (tu_pool_used(p) == 0 && tu_pool_holders(p, &n) == 0) {
            ms = (double)(proc_now_ns() - t0) / 1e6;
            break;
        }
        proc_sleep_ms(1);
    }
    bool helper_lived = kill(helper, 0) == 0;
    kill(helper, SIGKILL); /* an orphan now: init reaps it */
    if (ms < 0) {
        /* end cleanly (a domain left open keeps its reaper thread, and later tests must fork
         * from a single-threaded process): with the helper gone the holds must go too */
        assert_true(shmpool_domain_sweep(d) >= 0);
        tu_wait_for_reclaim(p, 0, 0, proc_now_ns(), 5000);
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
    proc_pipe(to_a);
    proc_pipe(from_a);
    proc_pipe(to_b);
    proc_pipe(from_b);
    pid_t b_pid = proc_fork();
    if (b_pid == 0) { /* B joins after A died and must start with no hold at all */
        CHILD_CHECK(proc_hear(to_b[0], 'g', 20000) == 0);
        shmpool_domain *d = tu_child_open(dom, false);
        shmbus_pool *p = tu_child_pool(d, NULL, 0);
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
        shmbus_block *x = tu_child_loan(p, 1);
        CHILD_OK(shmpool_block_release(x));
        CHILD_OK(shmpool_domain_close(d));
        CHILD_CHECK(proc_write_all(from_b[1], &slot, sizeof slot) == 0);
        _exit(0);
    }
    pid_t a_pid = proc_fork();
    if (a_pid == 0) { /* A acquires the parent's block, loans three, and is killed */
        shmpool_desc desc;
        tu_child_recv_desc(to_a[0], &desc);
        shmpool_domain *d = tu_child_open(dom, false);
        shmbus_pool *p = tu_child_pool(d, NULL, 0);
        shmbus_block *r = NULL;
        CHILD_OK(shmpool_acquire(d, &desc, &r));
        for (int i = 0; i < 3; i++)
            tu_child_loan(p, 1);
        uint32_t slot = shmpool_domain_slot(d);
        CHILD_CHECK(proc_write_all(from_a[1], &slot, sizeof slot) == 0);
        tu_child_park();
    }
    shmpool_domain *d = tu_open_no_reaper(dom); /* nothing reclaims A behind the test's back */
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 8}}, 1);
    shmpool_desc desc;
    shmbus_block *mine = tu_loan_described(p, 1, &desc);
    tu_send_desc(to_a[1], &desc);
    uint32_t a_slot, b_slot;
    assert_int_equal(proc_read_all(from_a[0], &a_slot, sizeof a_slot, 20000), 0);
    uint64_t me = 1ull << shmpool_domain_slot(d);
    assert_int_equal(tu_pool_used(p), 4);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me | (1ull << a_slot));
    assert_int_equal(kill(a_pid, SIGKILL), 0);
    assert_int_equal(proc_wait(a_pid, 5000), 128 + SIGKILL);

    assert_int_equal(proc_tell(to_b[1], 'g'), 0);
    proc_expect_ok(b_pid, 20000, "participant joining after a death");
    assert_int_equal(proc_read_all(from_b[0], &b_slot, sizeof b_slot, 1000), 0);
    print_message("    dead participant had slot %u, the next one got slot %u\n", a_slot, b_slot);

    assert_true(shmpool_domain_sweep(d) >= 0);
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me);
    assert_true(tu_has_pattern(mine, desc.seq));
    assert_ok(shmpool_block_release(mine));
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

static void test_domain_whose_participants_all_crashed_starts_clean(void **state)
{
    const char *dom = TU_DOM(state);
    static const shmpool_class c[] = {{256, 8}, {65536, 4}};
    enum { NPROC = 3 };
    int go[2], ready[2];
    proc_pipe(go);
    proc_pipe(ready);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = proc_fork();
        if (pids[i] == 0) { /* they race to create the domain, the pool and the node */
            CHILD_CHECK(proc_hear(go[0], 'g', 20000) == 0);
            shmpool_domain *d = tu_child_open(dom, true);
            shmbus_pool *p = tu_child_pool(d, c, 2);
            tu_child_loan(p, 100);
            tu_child_loan(p, 65536);
            shmbus_block *n = NULL;
            bool created;
            CHILD_OK(shmpool_node_get(p, "n", 8, &n, &created));
            if (i == 0)
                CHILD_OK(shmpool_node_lock(n)); /* and one dies holding the node's lock */
            CHILD_CHECK(proc_tell(ready[1], 'r') == 0);
            tu_child_park();
        }
    }
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(proc_tell(go[1], 'g'), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(proc_hear(ready[0], 'r', 20000), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(kill(pids[i], SIGKILL), 0);
    for (int i = 0; i < NPROC; i++)
        assert_int_equal(proc_wait(pids[i], 5000), 128 + SIGKILL);
    /* what they left behind */
    assert_true(tu_segment_exists(tu_shm_dir(), dom, "ctl"));
    assert_true(tu_segment_exists(tu_shm_dir(), dom, "pool.p"));

    shmpool_domain *d = tu_open_no_reaper(dom); /* the open itself must clean up */
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(tu_count_participants(d, pi), 1);
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
        TU_TEST(test_killed_child_holds_are_reclaimed_within_one_second),
        TU_TEST(test_sweep_reclaims_a_dead_participant_exactly_once),
        TU_TEST(test_loan_from_an_exhausted_pool_reclaims_a_dead_holder_first),
        TU_TEST(test_reused_pid_does_not_keep_a_dead_participant_alive),
        TU_TEST(test_crashed_participant_is_reclaimed_while_a_helper_it_forked_lives),
        TU_TEST(test_crashed_participant_is_reclaimed_while_a_program_it_spawned_lives),
        TU_TEST(test_new_participant_never_inherits_holds_of_a_dead_one),
        TU_TEST(test_domain_whose_participants_all_crashed_starts_clean),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
