/* Loans of an exhausted pool: failing at once, timing out, and waiting until a release in
 * another thread or another process frees a block. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "childutil.h"
#include "testutil.h"

/* ---- in one process ---------------------------------------------------------------------- */

static void test_loan_with_zero_timeout_fails_with_efull_and_counts_it(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 3}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b[3], *x = NULL;
    for (int i = 0; i < 3; i++)
        b[i] = tu_loan(p, 256);
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 3);
    assert_int_equal(st.high_water, 3);

    assert_rc(shmpool_loan(p, 1, 0, &x), SHMBUS_EFULL);
    assert_rc(shmpool_loan(p, 1, 0, &x), SHMBUS_EFULL);
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.failed_loans, 2);
    assert_int_equal(st.loans, 3);

    assert_ok(shmpool_block_release(b[1]));
    b[1] = tu_loan(p, 1);
    assert_ok(shmpool_block_release(b[0]));
    assert_ok(shmpool_block_release(b[2]));
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 1);
    assert_int_equal(st.high_water, 3); /* the peak stays */
    assert_ok(shmpool_block_release(b[1]));
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.loans, 4);
    assert_int_equal(st.frees, 4);
    assert_int_equal(st.high_water, 3);
    assert_int_equal(st.oldest_hold_ns, 0);
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

static void test_loan_with_timeout_fails_with_etimedout_when_nothing_is_released(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 1}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = tu_loan(p, 1), *x = NULL;
    assert_rc(shmpool_loan(p, 1, 50, &x), SHMBUS_ETIMEDOUT);
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.failed_loans, 1);
    assert_true(st.oldest_hold_ns > 0); /* b has been held for at least those 50 ms */
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

struct waiter {
    shmbus_pool *p;
    int rc;
    shmbus_block *b;
};

static void *waiting_loan(void *arg)
{
    struct waiter *w = arg;
    w->rc = shmpool_loan(w->p, 1, 10000, &w->b);
    return NULL;
}

static void test_waiting_loan_is_woken_by_a_release_in_another_thread(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 1}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = tu_loan(p, 1);
    uint32_t index = tu_info(b).index;
    struct waiter w = {.p = p, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiting_loan, &w), 0);
    proc_sleep_ms(100); /* let it find the pool empty and sleep */
    assert_ok(shmpool_block_release(b));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_rc(w.rc, 0);
    assert_int_equal(tu_info(w.b).index, index);
    assert_ok(shmpool_block_release(w.b));
    assert_ok(shmpool_domain_close(d));
}

/* ---- exhaustion across processes --------------------------------------------------------- */

/* A child that loans every block of the pool "p" ({4096, 2}), says 'r', then releases one
 * block 200 ms after each 'x' it receives, and leaves after the second. */
static pid_t spawn_exhauster(const char *dom, int *to_child_w, int *from_child_r)
{
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        shmbus_block *b[2] = {tu_child_loan(ch.p, 4096), tu_child_loan(ch.p, 4096)};
        CHILD_CHECK(proc_tell(ch.to_parent[1], 'r') == 0);
        for (int i = 0; i < 2; i++) {
            CHILD_CHECK(proc_hear(ch.to_child[0], 'x', 60000) == 0);
            proc_sleep_ms(200); /* let the parent go to sleep in its loan */
            CHILD_OK(shmpool_block_release(b[i]));
        }
        CHILD_OK(shmpool_domain_close(ch.d));
        _exit(0);
    }
    close(ch.to_child[0]);
    close(ch.to_parent[1]);
    *to_child_w = ch.to_child[1];
    *from_child_r = ch.to_parent[0];
    return pid;
}

/* The parent's side of a pool that another process exhausted. */
struct exhausted {
    shmpool_domain *d;
    shmbus_pool *p; /* "p", {4096, 2} */
    pid_t pid;      /* the exhausting child */
    int w, r;       /* pipes to and from it */
};

/* Start the exhausting child, open the domain and its pool, and wait until the child holds
 * every block. */
static void exhaust_by_child(const char *dom, struct exhausted *x)
{
    x->pid = spawn_exhauster(dom, &x->w, &x->r);
    x->d = tu_open_domain(dom);
    x->p = tu_open_pool(x->d, "p", (shmpool_class[]){{4096, 2}}, 1);
    assert_int_equal(proc_tell(x->w, 'g'), 0);
    assert_int_equal(proc_hear(x->r, 'r', 20000), 0);
}

static void test_loan_waits_for_a_block_released_by_another_process(void **state)
{
    struct exhausted x;
    exhaust_by_child(TU_DOM(state), &x);
    shmpool_domain *d = x.d;
    shmbus_pool *p = x.p;
    assert_int_equal(tu_pool_used(p), 2);

    shmbus_block *b[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(proc_tell(x.w, 'x'), 0);
        uint64_t t0 = proc_now_ns();
        assert_ok(shmpool_loan(p, 4096, 20000, &b[i]));
        print_message("    loan %d waited %.1f ms for the other process's release\n", i,
                      (double)(proc_now_ns() - t0) / 1e6);
    }
    proc_expect_ok(x.pid, 20000, "exhausting child");
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 2);
    assert_int_equal(st.failed_loans, 0);
    assert_int_equal(tu_pool_holders(p, NULL), 1ull << shmpool_domain_slot(d));
    for (int i = 0; i < 2; i++)
        assert_ok(shmpool_block_release(b[i]));
    close(x.w);
    close(x.r);
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
    struct exhausted x;
    exhaust_by_child(TU_DOM(state), &x);
    shmpool_domain *d = x.d;
    shmbus_pool *p = x.p;

    shmbus_block *b = NULL;
    uint64_t t0 = proc_now_ns();
    assert_rc(shmpool_loan(p, 1, 0, &b), SHMBUS_EFULL);
    double full_ms = (double)(proc_now_ns() - t0) / 1e6;

    const int wait_ms = 300;
    double cpu0 = thread_cpu_ms();
    t0 = proc_now_ns();
    assert_rc(shmpool_loan(p, 1, wait_ms, &b), SHMBUS_ETIMEDOUT);
    double waited = (double)(proc_now_ns() - t0) / 1e6, cpu = thread_cpu_ms() - cpu0;
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
    assert_int_equal(proc_tell(x.w, 'x'), 0);
    assert_int_equal(proc_tell(x.w, 'x'), 0);
    proc_expect_ok(x.pid, 20000, "exhausting child");
    assert_int_equal(tu_pool_used(p), 0);
    close(x.w);
    close(x.r);
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_loan_with_zero_timeout_fails_with_efull_and_counts_it),
        TU_TEST(test_loan_with_timeout_fails_with_etimedout_when_nothing_is_released),
        TU_TEST(test_waiting_loan_is_woken_by_a_release_in_another_thread),
        TU_TEST(test_loan_waits_for_a_block_released_by_another_process),
        TU_TEST(test_loan_fails_at_once_or_times_out_while_another_process_holds_every_block),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
