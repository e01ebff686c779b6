/* Blocks and domains across processes: a domain opened before fork() in the child, a block
 * acquired by a process that never loaned is read-only there, and a block outlives its loaner
 * while another process holds it. */
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "childutil.h"
#include "testutil.h"

/* ---- fork, read-only mapping, lifetimes -------------------------------------------------- */

static void test_domain_opened_before_fork_returns_eforked_in_the_child(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    shmpool_desc desc;
    shmbus_block *b = tu_loan_described(p, 1, &desc);

    pid_t pid = proc_fork();
    if (pid == 0) {
        shmbus_block *x = NULL;
        CHILD_RC(shmpool_loan(p, 1, 0, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_loan(p, 1, 100, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_acquire(d, &desc, &x), SHMBUS_EFORKED);
        CHILD_RC(shmpool_block_release(b), SHMBUS_EFORKED);
        /* opening the domain again in the child works (no reaper: this child stays
         * single-threaded, which sanitizers need after a fork) */
        shmpool_domain *d2 = tu_child_open(dom, false);
        shmbus_pool *p2 = tu_child_pool(d2, NULL, 0);
        CHILD_OK(shmpool_acquire(d2, &desc, &x));
        CHILD_CHECK(tu_has_pattern(x, desc.seq));
        shmbus_block *y = tu_child_loan(p2, 1);
        CHILD_OK(shmpool_block_release(y));
        CHILD_OK(shmpool_block_release(x));
        CHILD_OK(shmpool_domain_close(d2));
        _exit(0);
    }
    proc_expect_ok(pid, 20000, "forked child");
    /* the child's calls on the inherited domain touched nothing */
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), 1ull << shmpool_domain_slot(d));
    assert_true(tu_has_pattern(b, desc.seq));
    /* and its exit did not make this process look dead */
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(tu_count_participants(d, pi), 1);
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
    proc_pipe(to_child);
    pid_t pid = proc_fork();
    if (pid == 0) {
        shmpool_desc desc;
        tu_child_recv_desc(to_child[0], &desc);
        shmpool_domain *d = tu_child_open(dom, true);
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
    proc_expect_ok(pid, 20000, "read-only reader");
    assert_true(tu_has_pattern(b, desc.seq));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

static void test_block_outlives_its_loaner_process_while_another_holds_it(void **state)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        shmbus_block *b = tu_child_loan(ch.p, 200);
        shmpool_desc desc;
        CHILD_OK(shmpool_block_describe(b, 200, 0, &desc));
        uint8_t wire[SHMPOOL_DESC_SIZE];
        shmpool_desc_encode(&desc, wire);
        CHILD_CHECK(proc_write_all(ch.to_parent[1], wire, sizeof wire) == 0);
        CHILD_CHECK(proc_hear(ch.to_child[0], 'x', 20000) == 0);
        CHILD_OK(shmpool_block_release(b));
        CHILD_OK(shmpool_domain_close(ch.d));
        _exit(0);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 2}}, 1);
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    uint8_t wire[SHMPOOL_DESC_SIZE];
    assert_int_equal(proc_read_all(ch.to_parent[0], wire, sizeof wire, 20000), 0);
    shmpool_desc desc;
    shmbus_block *r = NULL;
    assert_ok(shmpool_desc_decode(wire, sizeof wire, &desc));
    assert_ok(shmpool_acquire(d, &desc, &r));
    assert_int_equal(proc_tell(ch.to_child[1], 'x'), 0);
    proc_expect_ok(pid, 20000, "loaner child");

    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(tu_count_participants(d, pi), 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_domain_opened_before_fork_returns_eforked_in_the_child),
        TU_TEST(test_acquired_block_is_read_only_in_a_process_that_never_loaned),
        TU_TEST(test_block_outlives_its_loaner_process_while_another_holds_it),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
