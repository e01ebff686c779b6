/* shmpool in one process: size classes, alignment, handle counts, exhaustion, pool and
 * domain lifetime, participants, named nodes and the consistency walk.
 * Every test uses its own domain and checks (in tu_teardown) that it left nothing in the
 * shm directory. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>

#include "layout.h" /* segment header offsets, for the corrupted-segment test only */
#include "testutil.h"

static shmbus_block *loan(shmbus_pool *p, uint64_t size)
{
    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, size, 0, &b));
    assert_non_null(b);
    return b;
}

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
        shmbus_block *b = loan(p, cases[i].size);
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
    shmbus_block *a = loan(p, 10), *b = loan(p, 10), *x = NULL;
    assert_rc(shmpool_loan(p, 10, 0, &x), SHMBUS_EFULL);
    shmbus_block *big = loan(p, 100); /* the larger class is still available to its sizes */
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
            shmbus_block *b = loan(p, c[k].block_size);
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
    shmbus_block *b = loan(p, 10);
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

static void test_loan_with_zero_timeout_fails_with_efull_and_counts_it(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 3}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b[3], *x = NULL;
    for (int i = 0; i < 3; i++)
        b[i] = loan(p, 256);
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
    b[1] = loan(p, 1);
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
    shmbus_block *b = loan(p, 1), *x = NULL;
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
    shmbus_block *b = loan(p, 1);
    uint32_t index = tu_info(b).index;
    struct waiter w = {.p = p, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiting_loan, &w), 0);
    tu_sleep_ms(100); /* let it find the pool empty and sleep */
    assert_ok(shmpool_block_release(b));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_rc(w.rc, 0);
    assert_int_equal(tu_info(w.b).index, index);
    assert_ok(shmpool_block_release(w.b));
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
    shmbus_block *b = loan(p, 1);
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

/* ---- pool and domain lifetime ------------------------------------------------------------ */

static void test_reopening_a_pool_with_different_classes_is_incompatible(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_domain *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 4}, {1024, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 2), *q = NULL;

    shmpool_class same_reversed[] = {{1024, 2}, {64, 4}};
    q = tu_open_pool(d, "p", same_reversed, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));
    /* the same classes in memory that held something else: only the fields count, not the
     * padding bytes between them */
    shmpool_class reused[2];
    memset(reused, 0xff, sizeof reused);
    reused[0].block_size = 64;
    reused[0].count = 4;
    reused[1].block_size = 1024;
    reused[1].count = 2;
    q = tu_open_pool(d, "p", reused, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));
    q = tu_open_pool(d2, "p", c, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));

    shmpool_class fewer[] = {{64, 4}};
    shmpool_class more_blocks[] = {{64, 5}, {1024, 2}};
    shmpool_class other_size[] = {{128, 4}, {1024, 2}};
    shmpool_class extra[] = {{64, 4}, {1024, 2}, {4096, 1}};
    shmpool_domain *ds[] = {d, d2};
    for (int i = 0; i < 2; i++) {
        q = NULL;
        assert_rc(shmpool_pool_open(ds[i], "p", fewer, 1, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", more_blocks, 2, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", other_size, 2, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", extra, 3, &q), SHMBUS_EINCOMPAT);
    }
    /* the original pool is untouched */
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), 2);
    assert_int_equal(st[0].total, 4);
    assert_int_equal(st[1].total, 2);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d));
}

static void test_opening_a_missing_pool_without_classes_is_enoent(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmbus_pool *p = NULL;
    assert_rc(shmpool_pool_open(d, "nope", NULL, 0, &p), SHMBUS_ENOENT);
    assert_false(tu_segment_exists(tu_shm_dir(), TU_DOM(state), "pool.nope"));
    shmpool_class c[] = {{64, 1}};
    shmbus_pool *made = tu_open_pool(d, "nope", c, 1);
    shmbus_pool *again = tu_open_pool(d, "nope", NULL, 0);
    assert_int_equal(shmpool_pool_id(again), shmpool_pool_id(made));
    assert_string_equal(shmpool_pool_name(again), "nope");
    assert_ok(shmpool_domain_close(d));
}

static void test_bad_names_and_classes_are_einval(void **state)
{
    char long32[33], ok31[32], long48[49], ok47[48];
    memset(long32, 'a', 32);
    long32[32] = 0;
    memset(long48, 'n', 48);
    long48[48] = 0;
    memset(ok47, 'n', 47);
    ok47[47] = 0;
    /* a valid 31-character domain name that is still unique to this test */
    snprintf(ok31, sizeof ok31, "%s", TU_DOM(state));
    memset(ok31 + strlen(ok31), 'x', 31 - strlen(ok31));
    ok31[31] = 0;

    shmpool_domain *d = NULL;
    const char *bad_domains[] = {NULL, "", long32, "a/b", "/x", "a.b", ".."};
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        d = NULL;
        assert_rc(shmpool_domain_open(bad_domains[i], NULL, &d), SHMBUS_EINVAL);
    }
    d = tu_open_domain(ok31);
    assert_string_equal(shmpool_domain_name(d), ok31);
    shmpool_class c[] = {{64, 2}};
    shmbus_pool *p = NULL;
    char pool32[33];
    memcpy(pool32, long32, sizeof pool32);
    const char *bad_pools[] = {NULL, "", pool32, "p/q"};
    for (size_t i = 0; i < sizeof bad_pools / sizeof bad_pools[0]; i++)
        assert_rc(shmpool_pool_open(d, bad_pools[i], c, 1, &p), SHMBUS_EINVAL);
    p = tu_open_pool(d, ok31, c, 1); /* 31 characters is a valid pool name too */

    shmpool_class zero_size[] = {{0, 2}};
    shmpool_class zero_count[] = {{64, 0}};
    shmpool_class too_many_blocks[] = {{64, SHMPOOL_MAX_BLOCKS + 1}};
    shmpool_class too_large[] = {{(1ull << 40) + 1, 1}};
    shmpool_class nine[SHMPOOL_MAX_CLASSES + 1];
    for (unsigned i = 0; i < SHMPOOL_MAX_CLASSES + 1; i++)
        nine[i] = (shmpool_class){64u << i, 1};
    shmbus_pool *q = NULL;
    assert_rc(shmpool_pool_open(d, "q", zero_size, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", zero_count, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", too_many_blocks, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", too_large, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", nine, SHMPOOL_MAX_CLASSES + 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", NULL, 1, &q), SHMBUS_EINVAL);
    assert_false(tu_segment_exists(tu_shm_dir(), ok31, "pool.q"));

    shmbus_block *n = NULL;
    bool created;
    assert_rc(shmpool_node_get(p, NULL, 8, &n, &created), SHMBUS_EINVAL);
    assert_rc(shmpool_node_get(p, "", 8, &n, &created), SHMBUS_EINVAL);
    assert_rc(shmpool_node_get(p, long48, 8, &n, &created), SHMBUS_EINVAL);
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_node_get(p, ok47, 8, &n, &created));
    assert_true(created);
    assert_ok(shmpool_block_release(n));

    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_segments(tu_shm_dir(), ok31, true), 0);
}

static void test_closing_a_domain_with_live_handles_is_ebusy_until_they_are_released(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = loan(p, 16);
    memcpy(shmpool_block_data(b), "still here", 11);
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY);

    /* nothing changed: the domain, the pool and the block still work */
    shmbus_block *b2 = loan(p, 16);
    assert_ok(shmpool_block_release(b2));
    assert_string_equal((const char *)shmpool_block_data(b), "still here");
    assert_int_equal(tu_pool_used(p), 1);
    assert_true(tu_segment_exists(tu_shm_dir(), TU_DOM(state), "ctl"));

    shmpool_block_clone(b);
    assert_ok(shmpool_block_release(b));
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY); /* one handle is left */
    assert_ok(shmpool_block_release(b));

    /* a named node is a handle too */
    shmbus_block *node = NULL;
    bool created = false;
    assert_ok(shmpool_node_get(p, "aaa", 16, &node, &created));
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY);
    assert_ok(shmpool_block_release(node));

    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_segments(tu_shm_dir(), TU_DOM(state), true), 0);
}

static void test_last_participant_out_removes_every_segment(void **state)
{
    const char *dir = tu_shm_dir(), *dom = TU_DOM(state);
    shmpool_domain *d1 = tu_open_domain(dom);
    shmpool_domain *d2 = tu_open_domain(dom);
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d1, "p", c, 1);
    shmbus_pool *q2 = tu_open_pool(d2, "q", c, 1);
    /* the names the leftover checks rely on */
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_true(tu_segment_exists(dir, dom, "pool.q"));
    int before = tu_count_segments(dir, dom, false);

    assert_ok(shmpool_domain_close(d1));
    assert_int_equal(tu_count_segments(dir, dom, false), before);
    shmbus_pool *p2 = tu_open_pool(d2, "p", NULL, 0); /* d2 still sees d1's pool */
    shmbus_block *b = loan(p2, 1);
    assert_ok(shmpool_block_release(b));
    b = loan(q2, 1);
    assert_ok(shmpool_block_release(b));

    assert_ok(shmpool_domain_close(d2));
    assert_int_equal(tu_count_segments(dir, dom, true), 0);
}

static void test_shm_dir_option_and_environment_place_every_segment(void **state)
{
    const char *dom = TU_DOM(state);
    char dir[] = "/tmp/shmbus-test-XXXXXX";
    assert_non_null(mkdtemp(dir));

    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.shm_dir = dir;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d, "p", c, 1);
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_int_equal(tu_count_segments("/dev/shm", dom, true), 0);
    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_entries(dir, true), 0);

    char *old = getenv("SHMBUS_SHM_DIR") ? strdup(getenv("SHMBUS_SHM_DIR")) : NULL;
    setenv("SHMBUS_SHM_DIR", dir, 1);
    int rc = shmpool_domain_open(dom, NULL, &d);
    if (old) {
        setenv("SHMBUS_SHM_DIR", old, 1);
        free(old);
    } else {
        unsetenv("SHMBUS_SHM_DIR");
    }
    assert_ok(rc);
    tu_open_pool(d, "p", c, 1);
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_entries(dir, true), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* Overwrite len bytes at off of a file; returns what was there before in saved. */
static void patch_file(const char *path, off_t off, const void *bytes, size_t len, void *saved)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (saved)
        assert_int_equal(pread(fd, saved, len, off), (ssize_t)len);
    assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
    close(fd);
}

static void test_opening_a_segment_with_wrong_magic_version_or_size_is_ebadseg(void **state)
{
    const char *dom = TU_DOM(state);
    char ctl[512], pool[512];
    snprintf(ctl, sizeof ctl, "%s/shmbus.%s.ctl", tu_shm_dir(), dom);
    snprintf(pool, sizeof pool, "%s/shmbus.%s.pool.p", tu_shm_dir(), dom);
    shmpool_domain *d1 = tu_open_domain(dom), *d2 = NULL;
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d1, "p", c, 1);
    shmbus_pool *q = NULL;
    uint8_t junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, saved[8];

    /* pool: wrong magic */
    patch_file(pool, 0, junk, 8, saved);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_rc(shmpool_pool_open(d2, "p", c, 1, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    patch_file(pool, 0, saved, 8, NULL);

    /* pool: wrong layout version */
    uint32_t v = POOL_VERSION + 1;
    patch_file(pool, offsetof(struct pool_seg_hdr, version), &v, 4, saved);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    patch_file(pool, offsetof(struct pool_seg_hdr, version), saved, 4, NULL);

    /* pool: wrong size (grown: shrinking would pull pages from under d1's mapping) */
    struct stat sb;
    assert_int_equal(stat(pool, &sb), 0);
    assert_int_equal(truncate(pool, sb.st_size + 4096), 0);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    assert_int_equal(truncate(pool, sb.st_size), 0);

    /* control segment: wrong magic, while d1 is a live participant */
    patch_file(ctl, 0, junk, 8, saved);
    d2 = NULL;
    assert_rc(shmpool_domain_open(dom, NULL, &d2), SHMBUS_EBADSEG);
    patch_file(ctl, 0, saved, 8, NULL);
    /* control segment: wrong layout version */
    v = CTL_VERSION + 1;
    patch_file(ctl, offsetof(struct ctl_hdr, version), &v, 4, saved);
    assert_rc(shmpool_domain_open(dom, NULL, &d2), SHMBUS_EBADSEG);
    patch_file(ctl, offsetof(struct ctl_hdr, version), saved, 4, NULL);

    /* repaired, everything works again */
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    q = tu_open_pool(d2, "p", NULL, 0);
    shmbus_block *b = loan(q, 1);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

/* ---- participants ------------------------------------------------------------------------ */

static const shmpool_participant_info *find_slot(const shmpool_participant_info *pi, int n,
                                                 unsigned slot)
{
    for (int i = 0; i < n; i++)
        if (pi[i].slot == slot)
            return &pi[i];
    return NULL;
}

static void test_second_domain_object_is_a_second_participant_with_its_own_holds(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state));
    shmpool_domain *d2 = tu_open_domain(TU_DOM(state));
    unsigned s1 = shmpool_domain_slot(d1), s2 = shmpool_domain_slot(d2);
    assert_int_not_equal(s1, s2);
    assert_true(s1 < SHMPOOL_MAX_PARTICIPANTS && s2 < SHMPOOL_MAX_PARTICIPANTS);
    assert_int_not_equal(shmpool_domain_uid(d1), shmpool_domain_uid(d2));
    uint64_t b1 = 1ull << s1, b2 = 1ull << s2;

    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(shmpool_participants(d1, pi, SHMPOOL_MAX_PARTICIPANTS), 2);
    assert_non_null(find_slot(pi, 2, s1));
    assert_non_null(find_slot(pi, 2, s2));

    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p1 = tu_open_pool(d1, "p", c, 1);
    shmbus_block *a = loan(p1, 10), *acq = NULL;
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(a, 10, 0, &desc));
    assert_ok(shmpool_acquire(d2, &desc, &acq));
    assert_int_equal(tu_block_holders(p1, desc.cls, desc.index), b1 | b2);
    assert_int_equal(tu_pool_used(p1), 1);
    assert_int_equal(shmpool_participants(d2, pi, SHMPOOL_MAX_PARTICIPANTS), 2);
    assert_int_equal(find_slot(pi, 2, s1)->held_blocks, 1);
    assert_int_equal(find_slot(pi, 2, s2)->held_blocks, 1);

    assert_ok(shmpool_block_release(a));
    assert_int_equal(tu_block_holders(p1, desc.cls, desc.index), b2);
    assert_int_equal(tu_pool_used(p1), 1);
    shmpool_class_stats st;
    tu_class_stats(p1, 0, &st);
    assert_int_equal(st.frees, 0);
    assert_ok(shmpool_block_release(acq));
    tu_class_stats(p1, 0, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.frees, 1);

    /* d2 loans on its own; d1 can leave while d2 holds it */
    shmbus_pool *p2 = tu_open_pool(d2, "p", NULL, 0);
    shmbus_block *own = loan(p2, 10);
    shmpool_block_info in = tu_info(own);
    assert_int_equal(in.owner_uid, shmpool_domain_uid(d2));
    assert_ok(shmpool_domain_close(d1));
    assert_int_equal(tu_block_holders(p2, in.cls, in.index), b2);
    assert_int_equal(shmpool_participants(d2, pi, SHMPOOL_MAX_PARTICIPANTS), 1);
    assert_ok(shmpool_block_release(own));
    assert_ok(shmpool_domain_close(d2));
}

/* starttime, field 22 of /proc/self/stat */
static uint64_t my_start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')'); /* comm may contain spaces */
    assert_non_null(s);
    s += 2; /* field 3 */
    for (int field = 3; field < 22; field++) {
        s = strchr(s, ' ');
        assert_non_null(s);
        s++;
    }
    return strtoull(s, NULL, 10);
}

static void test_participants_lists_this_process_alive(void **state)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.name = "tester";
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(TU_DOM(state), &o, &d));
    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *a = loan(p, 1), *b = loan(p, 1);
    shmpool_block_clone(a);

    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    memset(pi, 0, sizeof pi);
    assert_int_equal(shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS), 1);
    assert_int_equal(pi[0].slot, shmpool_domain_slot(d));
    assert_int_equal(pi[0].uid, shmpool_domain_uid(d));
    assert_int_equal(pi[0].pid, getpid());
    assert_int_equal(pi[0].start_time, my_start_time());
    assert_true(pi[0].alive);
    assert_int_equal(pi[0].held_blocks, 2); /* blocks, not handles */
    assert_string_equal(pi[0].name, "tester");
    assert_string_equal(shmpool_domain_name(d), TU_DOM(state));

    /* max smaller than the table: still returns how many there are */
    assert_int_equal(shmpool_participants(d, pi, 0), 1);

    assert_ok(shmpool_block_release(a));
    assert_ok(shmpool_block_release(a));
    assert_ok(shmpool_block_release(b));
    assert_int_equal(shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS), 1);
    assert_int_equal(pi[0].held_blocks, 0);
    assert_ok(shmpool_domain_close(d));
}

static void test_participant_table_refuses_the_49th_participant_naming_the_limit(void **state)
{
    shmpool_domain_opts o;
    tu_opts_no_reaper(&o);
    shmpool_domain *d[SHMPOOL_MAX_PARTICIPANTS], *extra = NULL;
    uint64_t slots = 0;
    for (int i = 0; i < SHMPOOL_MAX_PARTICIPANTS; i++) {
        d[i] = NULL;
        assert_ok(shmpool_domain_open(TU_DOM(state), &o, &d[i]));
        slots |= 1ull << shmpool_domain_slot(d[i]);
    }
    assert_int_equal(__builtin_popcountll(slots), SHMPOOL_MAX_PARTICIPANTS);
    assert_rc(shmpool_domain_open(TU_DOM(state), &o, &extra), SHMBUS_ELIMIT);
    /* ... saying which limit it hit */
    if (!strstr(shmpool_last_error(), "48 participant slots"))
        fail_msg("the 49th participant's error \"%s\" does not name the limit",
                 shmpool_last_error());

    unsigned freed = shmpool_domain_slot(d[7]);
    assert_ok(shmpool_domain_close(d[7]));
    assert_ok(shmpool_domain_open(TU_DOM(state), &o, &d[7]));
    assert_int_equal(shmpool_domain_slot(d[7]), freed);
    for (int i = SHMPOOL_MAX_PARTICIPANTS - 1; i >= 0; i--)
        assert_ok(shmpool_domain_close(d[i]));
}

static void test_observer_takes_no_slot_and_no_hold(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = loan(p, 1);
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(b, 1, 0, &desc));

    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.observer = true;
    shmpool_domain *obs = NULL;
    assert_ok(shmpool_domain_open(TU_DOM(state), &o, &obs));
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS), 1);
    shmbus_pool *op = tu_open_pool(obs, "p", NULL, 0);
    assert_int_equal(tu_pool_used(op), 1);
    assert_int_equal(tu_pool_holders(op, NULL), 1ull << shmpool_domain_slot(d));
    shmbus_pool *pools[SHMPOOL_MAX_POOLS];
    assert_int_equal(shmpool_domain_pools(obs, pools, SHMPOOL_MAX_POOLS), 1);

    shmbus_block *x = NULL;
    assert_int_not_equal(shmpool_loan(op, 1, 0, &x), 0);
    assert_int_not_equal(shmpool_acquire(obs, &desc, &x), 0);
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_pool_holders(p, NULL), 1ull << shmpool_domain_slot(d));
    assert_ok(shmpool_domain_close(obs));

    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

static void test_domain_check_reports_a_consistent_domain(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state));
    shmpool_domain *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c1[] = {{64, 8}, {4096, 4}};
    shmpool_class c2[] = {{1024, 5}};
    shmbus_pool *p = tu_open_pool(d1, "p", c1, 2);
    shmbus_pool *q = tu_open_pool(d1, "q", c2, 1);
    shmbus_block *keep[3];
    keep[0] = loan(p, 1);
    keep[1] = loan(p, 4000);
    keep[2] = loan(q, 1);
    for (int i = 0; i < 20; i++) {
        shmbus_block *t = loan(p, (uint64_t)(i % 2 ? 4096 : 8));
        shmpool_block_clone(t);
        shmpool_desc desc;
        assert_ok(shmpool_block_describe(t, 1, 0, &desc));
        shmbus_block *r = NULL;
        assert_ok(shmpool_acquire(d2, &desc, &r));
        assert_ok(shmpool_block_release(t));
        assert_ok(shmpool_block_release(t));
        assert_ok(shmpool_block_release(r));
    }

    shmpool_check_report rep;
    memset(&rep, 0xa5, sizeof rep);
    assert_ok(shmpool_domain_check(d1, &rep));
    assert_int_equal(rep.blocks, 8 + 4 + 5);
    assert_int_equal(rep.used, 3);
    assert_int_equal(rep.orphan_holds, 0);
    assert_int_equal(rep.imbalance, 0);
    memset(&rep, 0xa5, sizeof rep);
    assert_ok(shmpool_domain_check(d2, &rep));
    assert_int_equal(rep.used, 3);

    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), 2);
    assert_int_equal(st[0].loans, 11);
    assert_int_equal(st[0].frees, 10);
    assert_int_equal(st[1].loans, 11);
    assert_int_equal(st[1].frees, 10);

    shmbus_pool *pools[SHMPOOL_MAX_POOLS];
    assert_int_equal(shmpool_domain_pools(d2, pools, SHMPOOL_MAX_POOLS), 2);
    for (int i = 0; i < 3; i++)
        assert_ok(shmpool_block_release(keep[i]));
    memset(&rep, 0xa5, sizeof rep);
    assert_ok(shmpool_domain_check(d1, &rep));
    assert_int_equal(rep.used, 0);
    assert_int_equal(rep.imbalance, 0);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

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
        all[i] = loan(p, 256);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_loan_takes_the_smallest_class_that_fits),
        TU_TEST(test_loan_does_not_spill_into_a_larger_class_when_its_own_is_full),
        TU_TEST(test_loan_larger_than_the_largest_class_is_etoobig),
        TU_TEST(test_payloads_are_64_byte_aligned_and_page_aligned_from_64_kib),
        TU_TEST(test_clone_keeps_the_block_held_until_the_last_handle_is_released),
        TU_TEST(test_loan_with_zero_timeout_fails_with_efull_and_counts_it),
        TU_TEST(test_loan_with_timeout_fails_with_etimedout_when_nothing_is_released),
        TU_TEST(test_waiting_loan_is_woken_by_a_release_in_another_thread),
        TU_TEST(test_threads_sharing_one_hold_never_drop_it_under_each_other),
        TU_TEST(test_reopening_a_pool_with_different_classes_is_incompatible),
        TU_TEST(test_opening_a_missing_pool_without_classes_is_enoent),
        TU_TEST(test_bad_names_and_classes_are_einval),
        TU_TEST(test_closing_a_domain_with_live_handles_is_ebusy_until_they_are_released),
        TU_TEST(test_last_participant_out_removes_every_segment),
        TU_TEST(test_shm_dir_option_and_environment_place_every_segment),
        TU_TEST(test_opening_a_segment_with_wrong_magic_version_or_size_is_ebadseg),
        TU_TEST(test_second_domain_object_is_a_second_participant_with_its_own_holds),
        TU_TEST(test_participants_lists_this_process_alive),
        TU_TEST(test_participant_table_refuses_the_49th_participant_naming_the_limit),
        TU_TEST(test_observer_takes_no_slot_and_no_hold),
        TU_TEST(test_domain_check_reports_a_consistent_domain),
        TU_TEST(test_named_node_is_shared_by_name_and_destroyed_with_its_last_handle),
        TU_TEST(test_named_node_table_is_full_at_its_limit_and_reusable_after_release),
        TU_TEST(test_node_lock_excludes_other_threads),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
