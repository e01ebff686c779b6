/* What is left of a domain whose processes all crashed: the next process to open it starts
 * clean, and shmbus_domain_remove() clears it but refuses while a participant lives.
 *
 * Same rules as test_pubsub.c: every child is forked before the test process opens anything,
 * the test process never uses nng itself (no publisher or subscriber of its own), children
 * report through their exit status and a line on stderr, and the test process asserts at the
 * end that nothing named shmbus.<domain>.* is left in the shm directory. Each test has its own
 * domain "iso<pid>x<n>" and a runtime directory under its own mkdtemp directory.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "delivery.h"
#include "iso_common.h"

/* ---- a domain whose every process crashed ---------------------------------------------------- */

#define CR_N 6 /* messages the crashing children publish and hold */

/* Publishes CR_N on "t" and keeps a loan it never publishes, a block loaned straight from the
 * pool and the named node "n" with its lock held; on 'm' publishes one more. Waits to die. */
static int crash_publisher(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    shmbus_pool *pool = NULL;
    shmbus_msg *loan = NULL, *raw = NULL, *node = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_pub_open(d, "t", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
    for (uint64_t k = 1; k <= CR_N; k++)
        PS_OK(ps_publish(p, 1000, k, 3, 0));
    PS_OK(shmbus_pub_loan(p, 1000, &loan));
    PS_OK(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    PS_OK(shmbus_pool_loan(pool, 100, 0, &raw));
    PS_OK(shmbus_node_get(pool, "n", 64, &node, NULL));
    PS_OK(shmbus_node_lock(node));
    child_tell(c, 'h');
    child_hear(c, 'm');
    PS_OK(ps_publish(p, 1000, CR_N + 1, 3, 0));
    for (;;)
        proc_sleep_ms(1000);
}

/* Takes every message on "t" and holds them all. Waits to die. */
static int crash_subscriber(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_sub *s = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_sub_open(d, "t", NULL, &s));
    child_tell(c, 'r');
    for (uint64_t k = 1; k <= CR_N; k++) {
        shmbus_msg *m = ps_recv_one(s, "crash subscriber");
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0 && h.seq == k, "message %llu", (unsigned long long)k);
    }
    child_tell(c, 'h');
    shmbus_msg *m = ps_recv_one(s, "message published after shmbus_domain_remove was refused");
    ps_hdr h;
    PS_CHECK(ps_check_msg(m, &h) == 0 && h.seq == CR_N + 1, "message %d", CR_N + 1);
    child_tell(c, 'm');
    for (;;)
        proc_sleep_ms(1000);
}

/* Socket files of the crash publisher in the runtime directory: one on the nng delivery path,
 * none on shm (whose descriptors go through the "rings" segment). */
static int publisher_sockets(void) { return delivery_is_shm() ? 0 : 1; }

/* Start the two crashing children on "t" and wait until both hold their messages. */
static void crash_start(ps_env *e, ps_chan *ch, unsigned first)
{
    ps_tell_child(&ch[first], 'g');
    ps_hear_child(&ch[first], 'r', PS_CHILD_MS, "crash subscriber opened");
    ps_tell_child(&ch[first + 1], 'g');
    ps_hear_child(&ch[first + 1], 'h', PS_CHILD_MS, "crash publisher holds its messages");
    ps_hear_child(&ch[first], 'h', PS_CHILD_MS, "crash subscriber holds its messages");
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    /* The premise: a running domain has segments and, on the nng delivery path, a publisher's
     * socket; the shm path has no socket file but a segment more (the publishers' rings). */
    assert_true(leftovers(e->dom, NULL, 0) >= (delivery_is_shm() ? 4 : 3));
    assert_int_equal(entries_matching(rd, "", ".ipc", NULL, 0), publisher_sockets());
}

/* Opened after the crash: a late subscriber asking for history, then a new publisher. */
static int fresh_subscriber(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_sub *s = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_sub_open(d, "t", &(shmbus_sub_opts){.history = true}, &s));
    shmbus_msg *m = NULL;
    int rc = shmbus_sub_recv(s, 0, &m);
    PS_CHECK(rc == SHMBUS_EAGAIN, "a subscriber of the restarted domain got %s (seq %llu) "
             "before anyone published: a dead publisher's history survived",
             shmbus_errname(rc), rc == 0 ? (unsigned long long)shmbus_msg_seq(m) : 0ull);
    child_tell(c, 'r');
    for (uint64_t k = 1; k <= CR_N; k++)
        ps_expect_seq(ps_recv_one(s, "fresh subscriber"), k);
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == CR_N && st.expired + st.dropped + st.overflow + st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    child_tell(c, 'd');
    child_hear(c, 'q');
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int fresh_publisher(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_pub_open(d, "t", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
    for (uint64_t k = 1; k <= CR_N; k++)
        PS_OK(ps_publish(p, 1000, k, 4, 0));
    child_tell(c, 'd');
    child_hear(c, 'q');
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_domain_whose_every_process_crashed_starts_clean_for_the_next_opener(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    enum { CSUB, CPUB, FSUB, FPUB, N };
    ps_chan ch[N];
    pid_t pid[N];
    const iso_child_fn run[N] = {
        [CSUB] = crash_subscriber,
        [CPUB] = crash_publisher,
        [FSUB] = fresh_subscriber,
        [FPUB] = fresh_publisher,
    };
    iso_fork_children(e, ch, pid, N, run, NULL);
    crash_start(e, ch, CSUB);
    ps_kill9(pid[CSUB], "crash subscriber");
    ps_kill9(pid[CPUB], "crash publisher");
    char names[1024];
    leftovers(e->dom, names, sizeof names);
    print_message("    left by the crashed processes:%s\n", names);

    /* The next process to open the domain finds nobody alive and starts clean. */
    shmbus_domain *d = ps_open_domain(e);
    shmbus_snapshot *snap = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &snap));
    char problems[2048] = "";
    if (snap->nparticipants != 1 || snap->participants[0].pid != getpid())
        note(problems, sizeof problems, "%u participants after reopening (expected only the "
             "test process)", snap->nparticipants);
    for (unsigned i = 0; i < snap->ntopics; i++)
        if (snap->topics[i].npubs || snap->topics[i].nsubs)
            note(problems, sizeof problems, "topic %s still lists %u publishers and %u "
                 "subscribers of the dead processes", snap->topics[i].def.name,
                 snap->topics[i].npubs, snap->topics[i].nsubs);
    shmbus_snapshot_free(snap);
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    if (t.used || t.loans || t.total != 32)
        note(problems, sizeof problems, "pool frames after reopening: %u of %u blocks in use, "
             "%llu loans (expected a fresh pool)", t.used, t.total, (unsigned long long)t.loans);
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    int stale = entries_matching(rd, "", ".ipc", NULL, 0);
    if (stale != 0)
        note(problems, sizeof problems, "%d stale socket files in %s", stale, rd);
    /* The dead publisher held node "n" and its lock: the node is new and its lock free. */
    shmbus_pool *pool = NULL;
    shmbus_msg *node = NULL;
    bool created = false;
    ps_assert_ok(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    ps_assert_ok(shmbus_node_get(pool, "n", 64, &node, &created));
    if (!created)
        note(problems, sizeof problems, "node \"n\" of a dead process survived the restart");
    ps_assert_ok(shmbus_node_lock(node));
    ps_assert_ok(shmbus_node_unlock(node));
    ps_assert_ok(shmbus_msg_release(node));

    /* Topics are usable: a late subscriber with history, then a new publisher. */
    ps_tell_child(&ch[FSUB], 'g');
    ps_hear_child(&ch[FSUB], 'r', PS_CHILD_MS, "fresh subscriber opened");
    ps_tell_child(&ch[FPUB], 'g');
    ps_hear_child(&ch[FPUB], 'd', PS_CHILD_MS, "fresh publisher published");
    ps_hear_child(&ch[FSUB], 'd', PS_CHILD_MS, "fresh subscriber received");
    ps_tell_child(&ch[FSUB], 'q');
    ps_tell_child(&ch[FPUB], 'q');
    proc_expect_ok(pid[FSUB], PS_CHILD_MS, "fresh subscriber");
    proc_expect_ok(pid[FPUB], PS_CHILD_MS, "fresh publisher");
    for (unsigned i = 0; i < N; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

static bool listed(const char *dom)
{
    char names[64][32];
    int n = shmbus_domain_list(NULL, names, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (strcmp(names[i], dom) == 0)
            return true;
    return false;
}

static void test_domain_remove_refuses_while_a_participant_lives_and_clears_a_dead_domain(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    enum { CSUB, CPUB, N };
    ps_chan ch[N];
    pid_t pid[N];
    const iso_child_fn run[N] = {[CSUB] = crash_subscriber, [CPUB] = crash_publisher};
    iso_fork_children(e, ch, pid, N, run, NULL);
    crash_start(e, ch, CSUB);
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    assert_true(listed(e->dom));
    int segs = leftovers(e->dom, NULL, 0);
    /* shmbus_domain_remove finds the runtime directory as a process without a configuration
     * file does (no path comes from shared memory): from $SHMBUS_RUNTIME_DIR. */
    setenv("SHMBUS_RUNTIME_DIR", e->tmpdir, 1);

    /* Alive: refused, and nothing changes for the running processes. */
    ps_assert_rc(shmbus_domain_remove(e->dom, NULL), SHMBUS_EBUSY);
    assert_int_equal(leftovers(e->dom, NULL, 0), segs);
    assert_int_equal(entries_matching(rd, "", ".ipc", NULL, 0), publisher_sockets());
    ps_tell_child(&ch[CPUB], 'm');
    ps_hear_child(&ch[CSUB], 'm', PS_CHILD_MS, "the pair still works after a refused remove");

    ps_kill9(pid[CSUB], "crash subscriber");
    ps_assert_rc(shmbus_domain_remove(e->dom, NULL), SHMBUS_EBUSY); /* the publisher lives */
    assert_int_equal(leftovers(e->dom, NULL, 0), segs);

    ps_kill9(pid[CPUB], "crash publisher");
    ps_assert_ok(shmbus_domain_remove(e->dom, NULL));
    char names[1024];
    if (leftovers(e->dom, names, sizeof names) != 0)
        fail_msg("shmbus_domain_remove left%s", names);
    if (access(rd, F_OK) == 0)
        fail_msg("shmbus_domain_remove left the runtime directory %s", rd);
    assert_false(listed(e->dom));
    ps_assert_rc(shmbus_domain_remove(e->dom, NULL), SHMBUS_ENOENT); /* nothing left to remove */
    unsetenv("SHMBUS_RUNTIME_DIR");
    for (unsigned i = 0; i < N; i++)
        ps_chan_close(&ch[i]);

    /* And the name can be used again. */
    shmbus_domain *d = ps_open_domain(e);
    shmbus_class_stats t = ps_pool_totals(d, "frames");
    assert_int_equal(t.used, 0);
    assert_int_equal(t.loans, 0);
    ps_close_domain(e, d);
}

PS_MAIN(
    ISO_TEST(test_domain_whose_every_process_crashed_starts_clean_for_the_next_opener),
    ISO_TEST(test_domain_remove_refuses_while_a_participant_lives_and_clears_a_dead_domain))
