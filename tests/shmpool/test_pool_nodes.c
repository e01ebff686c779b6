/* Named nodes: shared by name, destroyed with their last handle, the table's limit, and the
 * node lock between threads and between processes (also when its holder is killed). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "childutil.h"
#include "testutil.h"

/* ---- named nodes ------------------------------------------------------------------------- */

static bool all_zero(const void *p, uint64_t n)
{
    const unsigned char *c = p;
    for (uint64_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

static void test_named_node_is_shared_by_name_and_destroyed_with_its_last_handle(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state));
    shmpool_domain *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 8}};
    shmbus_pool *p = tu_open_pool(d1, "p", c, 1);
    shmbus_pool *p2 = tu_open_pool(d2, "p", NULL, 0);
    /* dirty every block first, so "zero-filled" means something */
    shmbus_block *all[8];
    for (int i = 0; i < 8; i++) {
        all[i] = tu_loan(p, 256);
        memset(shmpool_block_data(all[i]), 0xee, 256);
    }
    for (int i = 0; i < 8; i++)
        assert_ok(shmpool_block_release(all[i]));

    shmbus_block *n1 = NULL, *n2 = NULL, *n3 = NULL, *other = NULL;
    bool created = false;
    assert_ok(shmpool_node_get(p, "aaa", 100, &n1, &created));
    assert_true(created);
    assert_true(shmpool_block_capacity(n1) >= 100);
    assert_true(all_zero(shmpool_block_data(n1), shmpool_block_capacity(n1)));
    strcpy(shmpool_block_data(n1), "hello");

    assert_ok(shmpool_node_get(p, "aaa", 100, &n2, &created));
    assert_false(created);
    assert_string_equal((const char *)shmpool_block_data(n2), "hello");
    assert_ok(shmpool_node_get(p2, "aaa", 100, &n3, &created)); /* another participant */
    assert_false(created);
    assert_string_equal((const char *)shmpool_block_data(n3), "hello");
    shmpool_block_info i1 = tu_info(n1), i3 = tu_info(n3);
    assert_int_equal(i1.index, i3.index);
    assert_int_equal(i1.seq, i3.seq);

    assert_ok(shmpool_node_get(p, "bbb", 100, &other, &created));
    assert_true(created);
    assert_int_not_equal(tu_info(other).index, i1.index);
    assert_int_equal(tu_pool_used(p), 2);

    assert_ok(shmpool_block_release(n1));
    assert_ok(shmpool_block_release(n3));
    assert_int_equal(tu_pool_used(p), 2); /* n2 still holds "aaa" */
    assert_ok(shmpool_node_get(p2, "aaa", 100, &n3, &created));
    assert_false(created);
    assert_ok(shmpool_block_release(n3));
    assert_ok(shmpool_block_release(n2));
    assert_int_equal(tu_pool_used(p), 1); /* "aaa" is gone, "bbb" lives */

    assert_ok(shmpool_node_get(p2, "aaa", 100, &n1, &created));
    assert_true(created);
    assert_true(all_zero(shmpool_block_data(n1), shmpool_block_capacity(n1)));
    assert_ok(shmpool_block_release(n1));
    assert_ok(shmpool_block_release(other));
    assert_int_equal(tu_pool_used(p), 0);
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_named_node_table_is_full_at_its_limit_and_reusable_after_release(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, SHMPOOL_MAX_NODES + 8}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *n[SHMPOOL_MAX_NODES], *x = NULL;
    bool created;
    char name[32];
    for (int i = 0; i < SHMPOOL_MAX_NODES; i++) {
        snprintf(name, sizeof name, "node%d", i);
        assert_ok(shmpool_node_get(p, name, 8, &n[i], &created));
        assert_true(created);
    }
    assert_rc(shmpool_node_get(p, "one-too-many", 8, &x, &created), SHMBUS_ELIMIT);
    assert_ok(shmpool_node_get(p, "node3", 8, &x, &created)); /* existing ones still open */
    assert_false(created);
    assert_ok(shmpool_block_release(x));
    assert_ok(shmpool_block_release(n[5]));
    assert_ok(shmpool_node_get(p, "one-too-many", 8, &x, &created));
    assert_true(created);
    assert_ok(shmpool_block_release(x));
    for (int i = 0; i < SHMPOOL_MAX_NODES; i++)
        if (i != 5)
            assert_ok(shmpool_block_release(n[i]));
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d));
}

struct locker {
    shmbus_block *node;
    int iterations;
    int rc;
};

static void *lock_and_increment(void *arg)
{
    struct locker *l = arg;
    volatile uint64_t *counter = shmpool_block_data(l->node);
    for (int i = 0; i < l->iterations; i++) {
        int rc = shmpool_node_lock(l->node);
        if (rc != 0) {
            l->rc = rc;
            return NULL;
        }
        uint64_t v = *counter;
        if (i % 64 == 0)
            sched_yield();
        *counter = v + 1;
        rc = shmpool_node_unlock(l->node);
        if (rc != 0) {
            l->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

static void test_node_lock_excludes_other_threads(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *node = NULL;
    bool created;
    assert_ok(shmpool_node_get(p, "counter", 8, &node, &created));
    enum { NT = 4, ITER = 2000 };
    pthread_t t[NT];
    struct locker l[NT];
    for (int i = 0; i < NT; i++) {
        shmbus_block *h = NULL;
        assert_ok(shmpool_node_get(p, "counter", 8, &h, &created)); /* a handle per thread */
        assert_false(created);
        l[i] = (struct locker){.node = h, .iterations = ITER};
        assert_int_equal(pthread_create(&t[i], NULL, lock_and_increment, &l[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_rc(l[i].rc, 0);
        assert_ok(shmpool_block_release(l[i].node));
    }
    assert_ok(shmpool_node_lock(node));
    assert_int_equal(*(uint64_t *)shmpool_block_data(node), NT * ITER);
    assert_ok(shmpool_node_unlock(node));
    assert_ok(shmpool_block_release(node));
    assert_ok(shmpool_domain_close(d));
}

/* ---- named nodes across processes -------------------------------------------------------- */

/* In a child: a handle on the existing 64-byte node `name` (the parent made it). */
static shmbus_block *child_node_get(shmbus_pool *p, const char *name)
{
    shmbus_block *n = NULL;
    bool created = true;
    CHILD_OK(shmpool_node_get(p, name, 64, &n, &created));
    CHILD_CHECK(!created);
    return n;
}

static void test_named_node_is_shared_between_processes_and_destroyed_after_both_release(
    void **state)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        shmbus_block *n = child_node_get(ch.p, "aaa");
        uint64_t *v = shmpool_block_data(n);
        CHILD_OK(shmpool_node_lock(n));
        CHILD_CHECK(v[0] == 1);
        v[0] = 2;
        strcpy((char *)&v[1], "from the child");
        CHILD_OK(shmpool_node_unlock(n));
        CHILD_CHECK(proc_tell(ch.to_parent[1], 'r') == 0);
        CHILD_CHECK(proc_hear(ch.to_child[0], 'x', 20000) == 0);
        CHILD_OK(shmpool_node_lock(n));
        CHILD_CHECK(v[0] == 3);
        CHILD_OK(shmpool_node_unlock(n));
        CHILD_OK(shmpool_block_release(n)); /* the last holder: the node goes */
        CHILD_OK(shmpool_domain_close(ch.d));
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
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    assert_int_equal(proc_hear(ch.to_parent[0], 'r', 20000), 0);

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

    assert_int_equal(proc_tell(ch.to_child[1], 'x'), 0);
    proc_expect_ok(pid, 20000, "node child");
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
    proc_pipe(go);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = proc_fork();
        if (pids[i] == 0) {
            CHILD_CHECK(proc_hear(go[0], 'g', 20000) == 0);
            shmpool_domain *d = tu_child_open(dom, true);
            shmbus_pool *p = tu_child_pool(d, NULL, 0);
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
        assert_int_equal(proc_tell(go[1], 'g'), 0);
    for (int i = 0; i < NPROC; i++)
        proc_expect_ok(pids[i], 60000, "incrementing child");
    assert_ok(shmpool_node_lock(n));
    assert_int_equal(*(uint64_t *)shmpool_block_data(n), NPROC * ITER);
    assert_ok(shmpool_node_unlock(n));
    assert_ok(shmpool_block_release(n));
    assert_ok(shmpool_domain_close(d));
}

static void test_node_lock_reports_owner_dead_after_its_holder_is_killed(void **state)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_start(&ch, dom, true);
    if (pid == 0) {
        shmbus_block *n = child_node_get(ch.p, "aaa");
        CHILD_OK(shmpool_node_lock(n));
        strcpy(shmpool_block_data(n), "half-written");
        CHILD_CHECK(proc_tell(ch.to_parent[1], 'r') == 0);
        tu_child_park(); /* killed holding the lock */
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{64, 4}}, 1);
    shmbus_block *n = NULL;
    bool created;
    assert_ok(shmpool_node_get(p, "aaa", 64, &n, &created));
    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    assert_int_equal(proc_hear(ch.to_parent[0], 'r', 20000), 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(proc_wait(pid, 5000), 128 + SIGKILL);

    assert_rc(shmpool_node_lock(n), SHMBUS_EOWNERDEAD); /* we hold it now */
    assert_string_equal((const char *)shmpool_block_data(n), "half-written");
    strcpy(shmpool_block_data(n), "repaired");
    assert_ok(shmpool_node_unlock(n));
    for (int i = 0; i < 3; i++) { /* and it is an ordinary lock again */
        assert_ok(shmpool_node_lock(n));
        assert_ok(shmpool_node_unlock(n));
    }
    assert_true(shmpool_domain_sweep(d) >= 0);
    tu_wait_for_reclaim(p, 1, 1ull << shmpool_domain_slot(d), proc_now_ns(), 5000);
    assert_string_equal((const char *)shmpool_block_data(n), "repaired");
    assert_ok(shmpool_block_release(n));
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_named_node_is_shared_by_name_and_destroyed_with_its_last_handle),
        TU_TEST(test_named_node_table_is_full_at_its_limit_and_reusable_after_release),
        TU_TEST(test_node_lock_excludes_other_threads),
        TU_TEST(test_named_node_is_shared_between_processes_and_destroyed_after_both_release),
        TU_TEST(test_node_lock_excludes_other_processes),
        TU_TEST(test_node_lock_reports_owner_dead_after_its_holder_is_killed),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
