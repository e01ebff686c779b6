/* shmpool loans in one process: size classes, alignment, handle counts, and threads that share
 * one hold. Every test uses its own domain and checks (in tu_teardown) that it left nothing in
 * the shm directory. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "childutil.h"
#include "testutil.h"

/* ---- size classes ------------------------------------------------------------------------ */

static void test_loan_takes_the_smallest_class_that_fits(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    /* given unsorted: the pool keeps them sorted by block size */
    shmpool_class c[] = {{65536, 2}, {64, 4}, {1024, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 3);

    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), 3);
    assert_int_equal(st[0].block_size, 64);
    assert_int_equal(st[1].block_size, 1024);
    assert_int_equal(st[2].block_size, 65536);
    assert_int_equal(st[0].total, 4);
    assert_int_equal(st[1].total, 4);
    assert_int_equal(st[2].total, 2);

    static const struct {
        uint64_t size;
        unsigned cls;
    } cases[] = {{1, 0}, {63, 0}, {64, 0}, {65, 1}, {1000, 1}, {1024, 1}, {1025, 2}, {65536, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shmbus_block *b = tu_loan(p, cases[i].size);
        shmpool_block_info in = tu_info(b);
        if (in.cls != cases[i].cls)
            fail_msg("loan of %llu bytes took class %u, expected %u",
                     (unsigned long long)cases[i].size, in.cls, cases[i].cls);
        assert_true(shmpool_block_capacity(b) >= st[cases[i].cls].block_size);
        assert_int_equal(in.pool_id, shmpool_pool_id(p));
        assert_int_equal(tu_pool_used(p), 1);
        assert_ok(shmpool_block_release(b));
    }
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d));
}

static void test_loan_does_not_spill_into_a_larger_class_when_its_own_is_full(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 2}, {1024, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 2);
    shmbus_block *a = tu_loan(p, 10), *b = tu_loan(p, 10), *x = NULL;
    assert_rc(shmpool_loan(p, 10, 0, &x), SHMBUS_EFULL);
    shmbus_block *big = tu_loan(p, 100); /* the larger class is still available to its sizes */
    assert_int_equal(tu_info(big).cls, 1);

    shmpool_class_stats s0, s1;
    tu_class_stats(p, 0, &s0);
    tu_class_stats(p, 1, &s1);
    assert_int_equal(s0.failed_loans, 1);
    assert_int_equal(s1.failed_loans, 0);
    assert_int_equal(s0.used, 2);
    assert_int_equal(s1.used, 1);

    assert_ok(shmpool_block_release(a));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_block_release(big));
    assert_ok(shmpool_domain_close(d));
}

static void test_loan_larger_than_the_largest_class_is_etoobig(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 2}, {1024, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 2);
    shmbus_block *x = NULL;
    assert_rc(shmpool_loan(p, 1025, 0, &x), SHMBUS_ETOOBIG);
    assert_rc(shmpool_loan(p, UINT64_MAX, 0, &x), SHMBUS_ETOOBIG);
    assert_rc(shmpool_loan(p, 1025, 100, &x), SHMBUS_ETOOBIG); /* no waiting for the impossible */
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d));
}

static void test_payloads_are_64_byte_aligned_and_page_aligned_from_64_kib(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    /* odd sizes, so a layout that forgets to round the stride shows up */
    shmpool_class c[] = {{100, 3}, {4000, 3}, {65535, 2}, {65536, 2}, {100000, 2}};
    const unsigned nc = 5;
    shmbus_pool *p = tu_open_pool(d, "p", c, nc);
    shmbus_block *blocks[12];
    unsigned n = 0;
    for (unsigned k = 0; k < nc; k++) {
        for (uint32_t i = 0; i < c[k].count; i++) {
            shmbus_block *b = tu_loan(p, c[k].block_size);
            uintptr_t addr = (uintptr_t)shmpool_block_data(b);
            uint64_t align = c[k].block_size >= 65536 ? 4096 : 64;
            if (addr % align != 0)
                fail_msg("class of %llu bytes: payload at %p is not %llu-aligned",
                         (unsigned long long)c[k].block_size, (void *)addr,
                         (unsigned long long)align);
            assert_true(shmpool_block_capacity(b) >= c[k].block_size);
            blocks[n++] = b;
        }
    }
    /* Fill every payload completely with its own byte: blocks must not overlap. */
    for (unsigned i = 0; i < n; i++)
        memset(shmpool_block_data(blocks[i]), 0x10 + (int)i, shmpool_block_capacity(blocks[i]));
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *data = shmpool_block_data(blocks[i]);
        uint64_t cap = shmpool_block_capacity(blocks[i]);
        for (uint64_t j = 0; j < cap; j++)
            if (data[j] != (unsigned char)(0x10 + i))
                fail_msg("block %u byte %llu was overwritten by another block", i,
                         (unsigned long long)j);
    }
    for (unsigned i = 0; i < n; i++)
        assert_ok(shmpool_block_release(blocks[i]));
    assert_ok(shmpool_domain_close(d));
}

/* ---- handles ----------------------------------------------------------------------------- */

static void test_clone_keeps_the_block_held_until_the_last_handle_is_released(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = tu_loan(p, 10);
    shmpool_block_info in = tu_info(b);
    uint64_t me = 1ull << shmpool_domain_slot(d);

    assert_ptr_equal(shmpool_block_clone(b), b);
    assert_ptr_equal(shmpool_block_clone(b), b);
    shmpool_class_stats st;
    for (int i = 0; i < 2; i++) {
        assert_ok(shmpool_block_release(b));
        tu_class_stats(p, 0, &st);
        assert_int_equal(st.used, 1);
        assert_int_equal(st.frees, 0);
        assert_int_equal(tu_block_holders(p, in.cls, in.index), me);
    }
    assert_ok(shmpool_block_release(b));
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.loans, 1);
    assert_int_equal(st.frees, 1);
    assert_int_equal(tu_block_holders(p, in.cls, in.index), 0);
    assert_ok(shmpool_domain_close(d));
}

struct sharer {
    shmpool_domain *d;
    shmbus_pool *p;
    const shmpool_desc *desc;
    uint64_t bit;
    int iterations;
    int lost; /* times a thread held a handle while its process's hold was gone */
    int rc;
};

/* Acquire and release one block over and over, so that this process's handle count keeps
 * going 0 -> 1 -> 0 on several threads at once. */
static void *acquire_release_loop(void *arg)
{
    struct sharer *s = arg;
    for (int i = 0; i < s->iterations; i++) {
        shmbus_block *b = NULL;
        int rc = shmpool_acquire(s->d, s->desc, &b);
        if (rc != 0) {
            s->rc = rc;
            return NULL;
        }
        if (!(tu_block_holders(s->p, s->desc->cls, s->desc->index) & s->bit))
            s->lost++;
        shmpool_block_release(b);
    }
    return NULL;
}

static void test_threads_sharing_one_hold_never_drop_it_under_each_other(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmbus_pool *p = tu_open_pool(d1, "p", (shmpool_class[]){{64, 2}}, 1);
    shmbus_block *b = tu_loan(p, 1);
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(b, 1, 0, &desc));
    uint64_t bit2 = 1ull << shmpool_domain_slot(d2);
    enum { NT = 4 };
    struct sharer sh[NT];
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) {
        sh[i] = (struct sharer){.d = d2, .p = p, .desc = &desc, .bit = bit2, .iterations = 300000};
        assert_int_equal(pthread_create(&t[i], NULL, acquire_release_loop, &sh[i]), 0);
    }
    int lost = 0;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_rc(sh[i].rc, 0);
        lost += sh[i].lost;
    }
    if (lost)
        fail_msg("%d times a thread held a handle while its process's hold was already dropped",
                 lost);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), 1ull << shmpool_domain_slot(d1));
    assert_ok(shmpool_block_release(b));
    assert_int_equal(tu_pool_used(p), 0);
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_loan_takes_the_smallest_class_that_fits),
        TU_TEST(test_loan_does_not_spill_into_a_larger_class_when_its_own_is_full),
        TU_TEST(test_loan_larger_than_the_largest_class_is_etoobig),
        TU_TEST(test_payloads_are_64_byte_aligned_and_page_aligned_from_64_kib),
        TU_TEST(test_clone_keeps_the_block_held_until_the_last_handle_is_released),
        TU_TEST(test_threads_sharing_one_hold_never_drop_it_under_each_other),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
