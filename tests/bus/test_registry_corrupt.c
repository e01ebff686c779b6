/* A corrupted registry (any process of the domain may write it) gives clean errors, never a
 * crash or a hang: topic entries with history 0 or beyond the limit, other fields out of
 * range, unterminated or invalid names, publisher entries whose topic index is out of range
 * or whose id is not their entry's. Opening such a topic is SHMBUS_EBADSEG saying what is
 * wrong; snapshots leave corrupt topics out and show names printable; the reaper frees the
 * dead entries without removing anything.
 *
 * One process, no children: the test process corrupts its own domain's registry through a
 * second mapping of the segment (iso_setup: own domain and runtime directory).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "iso_common.h"
#include "reg_access.h"

static struct reg_topic *find_topic(struct reg_hdr *r, const char *name)
{
    for (unsigned i = 0; i < REG_MAX_TOPICS; i++)
        if (atomic_load(&r->topics[i].state) == REG_LIVE && !strcmp(r->topics[i].name, name))
            return &r->topics[i];
    fail_msg("no topic \"%s\" in the registry", name);
    return NULL;
}

/* Opening a publisher and a subscriber on `topic` must give EBADSEG naming `what`. */
static void expect_badseg(shmbus_domain *d, const char *topic, const char *what, char *problems,
                          size_t len)
{
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    int rc = shmbus_pub_open(d, topic, &p);
    if (rc != SHMBUS_EBADSEG || !strstr(shmbus_last_error(), what))
        note(problems, len, "publisher with %s: %s \"%s\"", what, shmbus_errname(rc),
             shmbus_last_error());
    else
        print_message("    %s\n", shmbus_last_error());
    rc = shmbus_sub_open(d, topic, NULL, &s);
    if (rc != SHMBUS_EBADSEG || !strstr(shmbus_last_error(), what))
        note(problems, len, "subscriber with %s: %s \"%s\"", what, shmbus_errname(rc),
             shmbus_last_error());
    if (p)
        shmbus_pub_close(p);
    if (s)
        shmbus_sub_close(s);
}

static void test_corrupt_topic_entries_give_ebadseg_saying_what_is_wrong(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    reg_map m = reg_map_open(e->dom);
    assert_non_null(m.r);
    struct reg_topic *t = find_topic(m.r, "t"), saved = *t;
    char problems[4096] = "";
    t->history = 0;
    expect_badseg(d, "t", "history 0 is not in 1..64", problems, sizeof problems);
    t->history = 1000000;
    expect_badseg(d, "t", "history 1000000 is not in 1..64", problems, sizeof problems);
    t->history = saved.history;
    t->max_held = 0;
    expect_badseg(d, "t", "max_held 0", problems, sizeof problems);
    t->max_held = saved.max_held;
    t->queue_depth = 1u << 31;
    expect_badseg(d, "t", "queue_depth 2147483648", problems, sizeof problems);
    t->queue_depth = saved.queue_depth;
    t->full_wait_ms = -5;
    expect_badseg(d, "t", "wait -5 ms", problems, sizeof problems);
    t->full_wait_ms = saved.full_wait_ms;
    memset(t->pool, 'P', sizeof t->pool); /* unterminated */
    expect_badseg(d, "t", "its pool name is not a valid pool name", problems, sizeof problems);
    memcpy(t->pool, saved.pool, sizeof t->pool);
    /* restored: it works again */
    shmbus_pub *p = NULL;
    ps_assert_ok(shmbus_pub_open(d, "t", &p));
    ps_assert_ok(shmbus_pub_close(p));
    reg_map_close(&m);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

static void test_corrupt_entries_are_left_out_of_snapshots_and_reaped_safely(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    reg_map m = reg_map_open(e->dom);
    assert_non_null(m.r);
    struct reg_hdr *r = m.r;
    /* topics: one with an unterminated name, one with a newline in its name */
    unsigned a = REG_MAX_TOPICS - 1, b = REG_MAX_TOPICS - 2;
    memset(r->topics[a].name, 'A', sizeof r->topics[a].name);
    memset(r->topics[a].pool, 'B', sizeof r->topics[a].pool);
    r->topics[a].history = 2;
    atomic_store(&r->topics[a].state, REG_LIVE);
    snprintf(r->topics[b].name, sizeof r->topics[b].name, "two\nlines");
    snprintf(r->topics[b].pool, sizeof r->topics[b].pool, "frames");
    r->topics[b].history = 2;
    atomic_store(&r->topics[b].state, REG_LIVE);
    /* publishers of no process of the domain: a topic index out of range, an id of another
     * entry, an endpoint naming a file of the test's, a process name with a newline */
    char victim[REG_ENDPOINT_MAX - 8];
    snprintf(victim, sizeof victim, "%s/victim", e->tmpdir);
    int fd = open(victim, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    unsigned pa = REG_MAX_PUBS - 1, pb = REG_MAX_PUBS - 2;
    r->pubs[pa].topic = 999999;
    r->pubs[pa].pub_id = (5ull << 8) | pa;
    snprintf(r->pubs[pa].endpoint, sizeof r->pubs[pa].endpoint, "%s", victim);
    memset(r->pubs[pa].name, 'N', sizeof r->pubs[pa].name);
    atomic_store(&r->pubs[pa].own, REG_OWN(REG_DEAD_UID, REG_LIVE));
    r->pubs[pb].topic = 0;
    r->pubs[pb].pub_id = (5ull << 8) | 3; /* not entry pb's id */
    snprintf(r->pubs[pb].endpoint, sizeof r->pubs[pb].endpoint, "%s", victim);
    snprintf(r->pubs[pb].name, sizeof r->pubs[pb].name, "bad\nname");
    atomic_store(&r->pubs[pb].own, REG_OWN(REG_DEAD_UID, REG_LIVE));

    /* and one owned by the test process itself (so never reaped) with a newline in its
     * process name */
    shmbus_snapshot *s = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &s));
    assert_int_equal(s->nparticipants, 1);
    uint64_t self = s->participants[0].uid;
    shmbus_snapshot_free(s);
    unsigned pc = REG_MAX_PUBS - 3;
    r->pubs[pc].topic = 0;
    r->pubs[pc].pub_id = (6ull << 8) | pc;
    snprintf(r->pubs[pc].name, sizeof r->pubs[pc].name, "bad\nname");
    atomic_store(&r->pubs[pc].own, REG_OWN(self, REG_LIVE));

    char problems[4096] = "";
    unsigned shown = 0;
    ps_assert_ok(shmbus_snapshot_take(d, &s));
    for (unsigned i = 0; i < s->ntopics; i++) {
        const shmbus_topic_info *ti = &s->topics[i];
        if (strcmp(ti->def.name, "t") != 0)
            note(problems, sizeof problems, "the snapshot lists a topic \"%.70s\"",
                 ti->def.name);
        for (unsigned k = 0; k < ti->npubs; k++) {
            if (strchr(ti->pubs[k].name, '\n'))
                note(problems, sizeof problems, "a publisher's name has a newline");
            shown += ti->pubs[k].id == r->pubs[pc].pub_id;
        }
    }
    shmbus_snapshot_free(s);
    if (shown != 1)
        note(problems, sizeof problems, "the live publisher entry was listed %u times", shown);
    /* the topic with the corrupt name does not stand in for a valid one of 63 'A's */
    char longest[SHMBUS_TOPIC_NAME_MAX + 1];
    memset(longest, 'A', SHMBUS_TOPIC_NAME_MAX);
    longest[SHMBUS_TOPIC_NAME_MAX] = 0;
    shmbus_pub *p = NULL;
    int rc = shmbus_pub_open(d, longest, &p);
    if (rc != 0)
        note(problems, sizeof problems, "a valid topic next to a corrupt one: %s \"%s\"",
             shmbus_errname(rc), shmbus_last_error());
    if (p)
        ps_assert_ok(shmbus_pub_close(p));
    /* the discovery thread reaps the dead publishers: wait until it has */
    bool reaped = reg_wait_pubs_free(r, (const unsigned[]){pa, pb}, 2, ps_patience(10000));
    if (!reaped)
        note(problems, sizeof problems, "the dead publishers' entries were never freed");
    if (access(victim, F_OK) != 0)
        note(problems, sizeof problems, "the file an entry named was removed");
    unlink(victim);
    atomic_store(&r->pubs[pc].own, 0);
    reg_map_close(&m);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

/* Publishers and subscribers use a copy of the topic's definition checked at open: a history
 * changed to 0 or beyond the limit afterwards (or in a publisher's entry, read by late
 * subscribers) can make neither divide by zero nor index out of bounds. */
static void test_registry_rewritten_after_open_cannot_crash_publishers_or_subscribers(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    reg_map m = reg_map_open(e->dom);
    assert_non_null(m.r);
    struct reg_topic *t = find_topic(m.r, "t");
    uint32_t history = t->history;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    ps_assert_ok(shmbus_sub_open(d, "t", NULL, &s));
    ps_assert_ok(shmbus_pub_open(d, "t", &p));
    ps_assert_ok(shmbus_pub_wait_subscribers(p, 1, WAIT_MS));
    struct reg_pub *entry = NULL;
    for (unsigned i = 0; i < REG_MAX_PUBS && !entry; i++)
        if (REG_OWN_STATE(atomic_load(&m.r->pubs[i].own)) == REG_LIVE)
            entry = &m.r->pubs[i];
    assert_non_null(entry);
    const uint32_t bad[] = {0, 1000000};
    uint64_t seq = 0;
    for (unsigned b = 0; b < 2; b++) {
        t->history = bad[b];
        entry->history = bad[b];
        for (unsigned k = 0; k < 20; k++) /* past the real history: every slot is reused */
            ps_assert_ok(ps_publish(p, 64, ++seq, 1, 0));
        shmbus_sub *late = NULL;
        shmbus_sub_opts o = {.history = true};
        int rc = shmbus_sub_open(d, "t", &o, &late);
        if (rc != SHMBUS_EBADSEG) /* a new open sees the corrupt definition and says so */
            fail_msg("a subscriber opened on history %u: %s \"%s\"", bad[b],
                     shmbus_errname(rc), shmbus_last_error());
        if (late)
            shmbus_sub_close(late);
    }
    t->history = history; /* restored: a late subscriber with history reads the entry's */
    entry->history = 0;
    shmbus_sub *late = NULL;
    ps_assert_ok(shmbus_sub_open(d, "t", &(shmbus_sub_opts){.history = true}, &late));
    ps_assert_ok(shmbus_sub_close(late));
    entry->history = history;
    /* the first subscriber accounts for every message (most expired: it read none while
     * they were published), and those it gets are intact */
    shmbus_sub_counters c = {0};
    for (uint64_t until = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
         c.received + c.expired + c.dropped + c.overflow + c.invalid < seq &&
         proc_now_ns() < until;) {
        shmbus_msg *msg = NULL;
        if (shmbus_sub_recv(s, 20, &msg) == 0) {
            ps_hdr h;
            assert_int_equal(ps_check_msg(msg, &h), 0);
            ps_assert_ok(shmbus_msg_release(msg));
        }
        ps_assert_ok(shmbus_sub_stats(s, &c));
    }
    print_message("    after the rewrites: " PS_SUB_FMT "\n", PS_SUB_ARGS(c));
    assert_int_equal(c.received + c.expired + c.dropped + c.overflow, seq);
    assert_int_equal(c.invalid, 0);
    assert_true(c.received > 0);
    reg_map_close(&m);
    ps_assert_ok(shmbus_pub_close(p));
    ps_assert_ok(shmbus_sub_close(s));
    ps_close_domain(e, d);
}

PS_MAIN(ISO_TEST(test_corrupt_topic_entries_give_ebadseg_saying_what_is_wrong),
        ISO_TEST(test_corrupt_entries_are_left_out_of_snapshots_and_reaped_safely),
        ISO_TEST(test_registry_rewritten_after_open_cannot_crash_publishers_or_subscribers))
