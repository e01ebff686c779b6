/* Publish/subscribe inside one process: a publisher and subscribers side by side, what a
 * forked child may (not) do with its parent's domain, and the closing rules.
 *
 * Unlike test_pubsub.c and test_pubsub_faults.c, the test process itself uses nng here. That
 * is why these tests live in their own program: after it, no forked child may use nng (nng
 * aborts it), and the only child in this file (the fork-safety test) must not, and does not.
 */
#include <stdlib.h>
#include <string.h>

#include "pubsub_common.h"

#define WAIT_MS ps_patience(10000) /* a safety deadline, never a pass condition */

typedef struct local {
    shmbus_domain *d;
    shmbus_pub *p;
    shmbus_sub *s[2];
} local;

/* Open the domain, a publisher and nsubs subscribers on "loop", connected both ways. */
static local open_local(ps_env *e, unsigned nsubs)
{
    ps_use_config(e, "local.json");
    local l = {.d = ps_open_domain(e)};
    ps_assert_ok(shmbus_pub_open(l.d, "loop", &l.p));
    for (unsigned i = 0; i < nsubs; i++) {
        ps_assert_ok(shmbus_sub_open(l.d, "loop", NULL, &l.s[i]));
        ps_assert_ok(shmbus_sub_wait_publishers(l.s[i], 1, WAIT_MS));
    }
    ps_assert_ok(shmbus_pub_wait_subscribers(l.p, (int)nsubs, WAIT_MS));
    return l;
}

static void close_local(ps_env *e, local *l)
{
    for (unsigned i = 0; i < 2; i++)
        if (l->s[i])
            ps_assert_ok(shmbus_sub_close(l->s[i]));
    ps_assert_ok(shmbus_pub_close(l->p));
    ps_assert_pool_drained(l->d, "frames", 0);
    ps_close_domain(e, l->d);
}

/* Receive one message and check it is intact, from p's publisher, with sequence `want`. */
static shmbus_msg *take(shmbus_sub *s, uint64_t want, uint64_t publisher)
{
    shmbus_msg *m = NULL;
    ps_assert_ok(shmbus_sub_recv(s, WAIT_MS, &m));
    ps_hdr h;
    if (ps_verify(shmbus_msg_data(m), shmbus_msg_length(m), &h) != 0)
        fail_msg("message %llu is not intact", (unsigned long long)want);
    assert_int_equal(h.seq, want);
    assert_int_equal(shmbus_msg_seq(m), want);
    if (publisher)
        assert_int_equal(shmbus_msg_publisher(m), publisher);
    return m;
}

static void expect_no_loss(shmbus_sub *s, uint64_t n)
{
    shmbus_sub_counters st;
    ps_assert_ok(shmbus_sub_stats(s, &st));
    if (st.received != n || st.expired || st.dropped || st.overflow || st.invalid || st.held)
        fail_msg("expected %llu received and no loss: " PS_SUB_FMT, (unsigned long long)n,
                 PS_SUB_ARGS(st));
}

/* ---- in one process ---------------------------------------------------------------------- */

static void test_publisher_and_subscriber_in_one_process_exchange_messages(void **state)
{
    ps_env *e = PS_ENV(state);
    local l = open_local(e, 1);
    unsigned n = ps_scaled(500, 50);
    uint64_t rs = 1, publisher = 0;
    for (uint64_t seq = 1; seq <= n; seq++) {
        ps_assert_ok(ps_publish(l.p, ps_rand_len(&rs, 4096), seq, 0, 0));
        shmbus_msg *m = take(l.s[0], seq, publisher);
        publisher = shmbus_msg_publisher(m);
        assert_true(publisher != 0);
        ps_assert_ok(shmbus_msg_release(m));
    }
    expect_no_loss(l.s[0], n);
    close_local(e, &l);
}

static void test_two_subscribers_in_one_process_each_get_every_message(void **state)
{
    ps_env *e = PS_ENV(state);
    local l = open_local(e, 2);
    unsigned n = ps_scaled(500, 50);
    uint64_t rs = 2;
    for (uint64_t seq = 1; seq <= n; seq++) {
        ps_assert_ok(ps_publish(l.p, ps_rand_len(&rs, 4096), seq, 0, 0));
        /* Both hold the same message at once; they release in either order. */
        shmbus_msg *a = take(l.s[0], seq, 0), *b = take(l.s[1], seq, 0);
        assert_int_equal(shmbus_msg_publisher(a), shmbus_msg_publisher(b));
        ps_assert_ok(shmbus_msg_release(seq % 2 ? a : b));
        ps_hdr h;
        assert_int_equal(ps_verify(shmbus_msg_data(seq % 2 ? b : a),
                                   shmbus_msg_length(seq % 2 ? b : a), &h), 0);
        ps_assert_ok(shmbus_msg_release(seq % 2 ? b : a));
    }
    expect_no_loss(l.s[0], n);
    expect_no_loss(l.s[1], n);
    close_local(e, &l);
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* Everything inherited from the parent answers SHMBUS_EFORKED, before touching nng. */
static int forked_child(const local *l, shmbus_pool *pool, shmbus_msg *held)
{
    shmbus_pub *p2 = NULL;
    shmbus_sub *s2 = NULL;
    shmbus_pool *pool2 = NULL;
    shmbus_msg *m = NULL;
    PS_RC(shmbus_pub_open(l->d, "loop", &p2), SHMBUS_EFORKED);
    PS_RC(shmbus_sub_open(l->d, "loop", NULL, &s2), SHMBUS_EFORKED);
    PS_RC(shmbus_pub_loan(l->p, 64, &m), SHMBUS_EFORKED);
    PS_RC(shmbus_sub_recv(l->s[0], 0, &m), SHMBUS_EFORKED);
    PS_RC(shmbus_pool_open(l->d, "frames", NULL, 0, &pool2), SHMBUS_EFORKED);
    PS_RC(shmbus_pool_loan(pool, 64, 0, &m), SHMBUS_EFORKED);
    /* Dropping the inherited handle must leave the parent's hold and counters alone. */
    PS_RC(shmbus_msg_release(held), SHMBUS_EFORKED);
    return 0;
}

static void test_forked_child_gets_eforked_and_parent_goes_on(void **state)
{
    ps_env *e = PS_ENV(state);
    local l = open_local(e, 1);
    ps_assert_ok(ps_publish(l.p, 300, 1, 0, 0));
    shmbus_msg *held = take(l.s[0], 1, 0);
    shmbus_pool *pool;
    ps_assert_ok(shmbus_pool_open(l.d, "frames", NULL, 0, &pool));
    uint32_t used = ps_pool_totals(l.d, "frames").used;

    pid_t pid = proc_fork();
    if (pid == 0)
        _exit(forked_child(&l, pool, held));
    proc_expect_ok(pid, WAIT_MS, "forked child");

    assert_int_equal(ps_pool_totals(l.d, "frames").used, used);
    shmbus_sub_counters st;
    ps_assert_ok(shmbus_sub_stats(l.s[0], &st));
    uint64_t held_after_fork = st.held; /* checked at the end, after cleaning up */
    ps_hdr h;
    assert_int_equal(ps_verify(shmbus_msg_data(held), shmbus_msg_length(held), &h), 0);
    ps_assert_ok(shmbus_msg_release(held));
    for (uint64_t seq = 2; seq <= 10; seq++) {
        ps_assert_ok(ps_publish(l.p, 300, seq, 0, 0));
        ps_assert_ok(shmbus_msg_release(take(l.s[0], seq, 0)));
    }
    ps_assert_ok(shmbus_sub_stats(l.s[0], &st));
    close_local(e, &l);
    if (held_after_fork != 1)
        fail_msg("the subscriber held 1 message, but its counter said %llu after a forked "
                 "child released its inherited copy of the handle (%llu at the end, after "
                 "every release)", (unsigned long long)held_after_fork,
                 (unsigned long long)st.held);
    if (st.received != 10 || st.expired || st.dropped || st.overflow || st.invalid)
        fail_msg("expected 10 received and no loss: " PS_SUB_FMT, PS_SUB_ARGS(st));
}

/* ---- closing rules -------------------------------------------------------------------------- */

static void test_sub_close_with_unreleased_message_is_busy(void **state)
{
    ps_env *e = PS_ENV(state);
    local l = open_local(e, 1);
    ps_assert_ok(ps_publish(l.p, 100, 1, 0, 0));
    shmbus_msg *m = take(l.s[0], 1, 0);
    shmbus_msg *c = shmbus_msg_clone(m);
    ps_assert_rc(shmbus_sub_close(l.s[0]), SHMBUS_EBUSY);
    ps_assert_ok(shmbus_msg_release(m));
    ps_assert_rc(shmbus_sub_close(l.s[0]), SHMBUS_EBUSY); /* a clone still holds it */
    ps_assert_ok(shmbus_msg_release(c));
    ps_assert_ok(shmbus_sub_close(l.s[0]));
    l.s[0] = NULL;
    close_local(e, &l);
}

static void test_pub_close_with_unpublished_loan_is_busy(void **state)
{
    ps_env *e = PS_ENV(state);
    local l = open_local(e, 0);
    shmbus_msg *a, *b;
    ps_assert_ok(shmbus_pub_loan(l.p, 100, &a));
    ps_assert_ok(shmbus_pub_loan(l.p, 100, &b));
    ps_assert_rc(shmbus_pub_close(l.p), SHMBUS_EBUSY);
    ps_fill(shmbus_msg_data(a), 100, 1, 0, 0);
    ps_assert_ok(shmbus_pub_publish(l.p, a, 100));
    ps_assert_rc(shmbus_pub_close(l.p), SHMBUS_EBUSY); /* b is still on loan */
    ps_assert_ok(shmbus_msg_release(b));                /* discarded, never published */
    close_local(e, &l);
}

static void test_domain_close_with_open_pub_sub_or_held_message_is_busy(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "local.json");
    shmbus_domain *d = ps_open_domain(e);
    shmbus_pub *p;
    shmbus_sub *s;
    ps_assert_ok(shmbus_pub_open(d, "loop", &p));
    ps_assert_rc(shmbus_domain_close(d), SHMBUS_EBUSY);
    ps_assert_ok(shmbus_sub_open(d, "loop", NULL, &s));
    ps_assert_rc(shmbus_domain_close(d), SHMBUS_EBUSY);
    ps_assert_ok(shmbus_pub_close(p));
    ps_assert_rc(shmbus_domain_close(d), SHMBUS_EBUSY);
    ps_assert_ok(shmbus_sub_close(s));
    shmbus_pool *pool;
    shmbus_msg *m;
    ps_assert_ok(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    ps_assert_ok(shmbus_pool_loan(pool, 64, 0, &m));
    ps_assert_rc(shmbus_domain_close(d), SHMBUS_EBUSY);
    ps_assert_ok(shmbus_msg_release(m));
    ps_close_domain(e, d);
}

PS_MAIN(
    PS_TEST(test_publisher_and_subscriber_in_one_process_exchange_messages),
    PS_TEST(test_two_subscribers_in_one_process_each_get_every_message),
    PS_TEST(test_forked_child_gets_eforked_and_parent_goes_on),
    PS_TEST(test_sub_close_with_unreleased_message_is_busy),
    PS_TEST(test_pub_close_with_unpublished_loan_is_busy),
    PS_TEST(test_domain_close_with_open_pub_sub_or_held_message_is_busy))
