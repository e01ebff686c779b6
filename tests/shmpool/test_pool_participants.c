/* Participants in one process: a second domain object, the participant list, the table's
 * limit, observers, and the consistency walk. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "childutil.h"
#include "testutil.h"

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
    shmbus_block *a = tu_loan(p1, 10), *acq = NULL;
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
    shmbus_block *own = tu_loan(p2, 10);
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
    shmbus_block *a = tu_loan(p, 1), *b = tu_loan(p, 1);
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
    shmbus_block *b = tu_loan(p, 1);
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
    keep[0] = tu_loan(p, 1);
    keep[1] = tu_loan(p, 4000);
    keep[2] = tu_loan(q, 1);
    for (int i = 0; i < 20; i++) {
        shmbus_block *t = tu_loan(p, (uint64_t)(i % 2 ? 4096 : 8));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_second_domain_object_is_a_second_participant_with_its_own_holds),
        TU_TEST(test_participants_lists_this_process_alive),
        TU_TEST(test_participant_table_refuses_the_49th_participant_naming_the_limit),
        TU_TEST(test_observer_takes_no_slot_and_no_hold),
        TU_TEST(test_domain_check_reports_a_consistent_domain),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
