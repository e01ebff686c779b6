/* shmbus-monitor's one-shot outputs (--json, --once), its exit codes, and the promise that
 * watching a domain changes nothing in it. The live screen: test_monitor_screen.c. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tooltest.h"

#define CLI SHMBUS_CLI
#define MON SHMBUS_MONITOR

static tt_result r;

/* A publisher at 100 Hz and two subscribers on topic "cam", all receiving. */
typedef struct bus {
    pid_t pub, sub[2];
} bus;

static void start_bus(const tt_env *e, bus *b)
{
    b->pub = TT_SPAWN(NULL, CLI, "pub", "cam", "--config", e->config, "--size", "1000", "--rate",
                      "100");
    tt_topic_want w = {.topic = "cam", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    for (int i = 0; i < 2; i++)
        b->sub[i] = TT_SPAWN(NULL, CLI, "echo", "cam", "--domain", e->dom);
    tt_topic_want all = {.topic = "cam", .pubs = 1, .subs = 2, .received = 5};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &all, 10000));
}

static void stop_bus(bus *b)
{
    kill(b->pub, SIGCONT);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tt_stop(b->sub[i], SIGTERM, 5000), 0);
    assert_int_equal(tt_stop(b->pub, SIGTERM, 5000), 0);
}

static cJSON *parse_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("shmbus-monitor --json printed no JSON:\n%s", text);
    return j;
}

static const cJSON *find_named(const cJSON *arr, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return it;
    }
    return NULL;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        fail_msg("\"%s\" is not a number", key);
    return v->valuedouble;
}

static bool has_pid(const cJSON *arr, pid_t pid)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if ((pid_t)num(it, "pid") == pid) return true;
    return false;
}

/* ---- --json -------------------------------------------------------------------------------- */

static void test_json_shows_topic_both_subscribers_rate_and_pool_usage(void **state)
{
    tt_env *e = TT_ENV(state);
    bus b;
    start_bus(e, &b);
    TT_RUN(&r, 15000, MON, "--json", "--domain", e->dom, "--interval", "500");
    tt_assert_exit(&r, 0);
    cJSON *j = parse_json(r.out);

    const cJSON *t = find_named(cJSON_GetObjectItem(j, "topics"), "cam");
    assert_non_null(t);
    const cJSON *delivery = cJSON_GetObjectItem(t, "delivery");
    assert_true(cJSON_IsString(delivery));
    assert_string_equal(delivery->valuestring, "nng"); /* the tools' config does not say */
    const cJSON *subs = cJSON_GetObjectItem(t, "subscribers");
    const cJSON *pubs = cJSON_GetObjectItem(t, "publishers");
    assert_true(cJSON_IsArray(subs) && cJSON_IsArray(pubs));
    assert_int_equal(cJSON_GetArraySize(subs), 2);
    assert_int_equal(cJSON_GetArraySize(pubs), 1);
    assert_true(has_pid(subs, b.sub[0]) && has_pid(subs, b.sub[1]) && has_pid(pubs, b.pub));
    const cJSON *s0 = cJSON_GetArrayItem(subs, 0);
    assert_string_equal(cJSON_GetObjectItem(s0, "name")->valuestring, "shmbus-echo");
    assert_true(num(s0, "received") > 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(s0, "expired")));
    /* the values depend on the machine's load (no timing is asserted): it measured some */
    double hz = num(t, "rate_hz");
    if (!(hz > 0))
        fail_msg("rate_hz %.1f for a 100 Hz publisher", hz);
    assert_true(num(t, "bandwidth_bps") > 0);
    assert_true(num(t, "latency_p50_us") > 0);
    assert_true(num(t, "latency_p99_us") >= num(t, "latency_p50_us"));

    const cJSON *pool = find_named(cJSON_GetObjectItem(j, "pools"), "tt");
    assert_non_null(pool);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(pool, "classes"), 0);
    assert_int_equal((int)num(c0, "block_size"), 4096);
    assert_int_equal((int)num(c0, "total"), 64);
    assert_true(num(c0, "used") >= 1); /* the publisher keeps its history held */
    assert_true(num(c0, "high_water") >= num(c0, "used"));
    const cJSON *holders = cJSON_GetObjectItem(pool, "holders");
    assert_true(has_pid(holders, b.pub));

    const cJSON *parts = cJSON_GetObjectItem(j, "participants");
    assert_int_equal(cJSON_GetArraySize(parts), 3);
    assert_true(has_pid(parts, b.pub) && has_pid(parts, b.sub[0]) && has_pid(parts, b.sub[1]));
    const cJSON *it;
    cJSON_ArrayForEach(it, parts)
    {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(it, "alive")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(it, "held_blocks")));
    }
    cJSON_Delete(j);
    stop_bus(&b);
}

static void test_once_and_json_together_print_one_json_snapshot(void **state)
{
    tt_env *e = TT_ENV(state);
    bus b;
    start_bus(e, &b);
    TT_RUN(&r, 15000, MON, "--once", "--json", "--domain", e->dom, "--interval", "200");
    tt_assert_exit(&r, 0);
    cJSON *j = parse_json(r.out);
    assert_string_equal(cJSON_GetObjectItem(j, "domain")->valuestring, e->dom);
    assert_non_null(find_named(cJSON_GetObjectItem(j, "topics"), "cam"));
    cJSON_Delete(j);
    stop_bus(&b);
}

/* ---- watching changes nothing ---------------------------------------------------------- */

/* Every counter and every state a snapshot shows, except ages and clocks. */
static void assert_same_state(const shmbus_snapshot *a, const shmbus_snapshot *b)
{
    assert_int_equal(a->ntopics, b->ntopics);
    for (unsigned i = 0; i < a->ntopics; i++) {
        const shmbus_topic_info *x = &a->topics[i];
        const shmbus_topic_info *y = tt_find_topic(b, x->def.name);
        assert_non_null(y);
        assert_int_equal(x->npubs, y->npubs);
        assert_int_equal(x->nsubs, y->nsubs);
        for (unsigned k = 0; k < x->npubs; k++) {
            const shmbus_pub_info *p = &x->pubs[k], *q = &y->pubs[k];
            assert_int_equal(p->id, q->id);
            assert_int_equal(p->published, q->published);
            assert_int_equal(p->bytes, q->bytes);
            assert_int_equal(p->last_seq, q->last_seq);
            assert_int_equal(p->loan_failures, q->loan_failures);
        }
        for (unsigned k = 0; k < x->nsubs; k++) {
            const shmbus_sub_info *p = &x->subs[k], *q = &y->subs[k];
            assert_int_equal(p->id, q->id);
            assert_int_equal(p->received, q->received);
            assert_int_equal(p->expired, q->expired);
            assert_int_equal(p->dropped, q->dropped);
            assert_int_equal(p->overflow, q->overflow);
            assert_int_equal(p->invalid, q->invalid);
            assert_int_equal(p->bytes, q->bytes);
            assert_int_equal(p->held, q->held);
            assert_memory_equal(p->latency, q->latency, sizeof p->latency);
        }
    }
    assert_int_equal(a->npools, b->npools);
    for (unsigned i = 0; i < a->npools; i++) {
        const shmbus_pool_info *x = &a->pools[i], *y = &b->pools[i];
        assert_string_equal(x->name, y->name);
        for (unsigned c = 0; c < x->nclasses; c++) {
            const shmbus_class_stats *p = &x->classes[c], *q = &y->classes[c];
            assert_int_equal(p->used, q->used);
            assert_int_equal(p->high_water, q->high_water);
            assert_int_equal(p->loans, q->loans);
            assert_int_equal(p->frees, q->frees);
            assert_int_equal(p->failed_loans, q->failed_loans);
            assert_int_equal(p->reclaims, q->reclaims);
        }
        assert_int_equal(x->nheld, y->nheld);
        for (unsigned k = 0; k < x->nheld; k++) {
            assert_int_equal(x->held[k].index, y->held[k].index);
            assert_int_equal(x->held[k].gen, y->held[k].gen);
            assert_int_equal(x->held[k].holders, y->held[k].holders);
        }
    }
    assert_int_equal(a->nparticipants, b->nparticipants);
    for (unsigned i = 0; i < a->nparticipants; i++) {
        assert_int_equal(a->participants[i].slot, b->participants[i].slot);
        assert_int_equal(a->participants[i].pid, b->participants[i].pid);
        assert_int_equal(a->participants[i].alive, b->participants[i].alive);
        assert_int_equal(a->participants[i].held_blocks, b->participants[i].held_blocks);
    }
}

static bool same_counters(const shmbus_snapshot *a, const shmbus_snapshot *b)
{
    const shmbus_topic_info *x = tt_find_topic(a, "cam"), *y = tt_find_topic(b, "cam");
    if (!x || !y || x->nsubs != y->nsubs || x->npubs != y->npubs)
        return false;
    for (unsigned k = 0; k < x->nsubs; k++)
        if (x->subs[k].received != y->subs[k].received || x->subs[k].held != y->subs[k].held)
            return false;
    return x->pubs[0].published == y->pubs[0].published;
}

static void test_watching_changes_no_counter(void **state)
{
    tt_env *e = TT_ENV(state);
    bus b;
    start_bus(e, &b);
    assert_int_equal(kill(b.pub, SIGSTOP), 0); /* nothing moves from here on */
    shmbus_snapshot *a = NULL;
    for (int tries = 0; tries < 50; tries++) { /* until the subscribers have drained */
        shmbus_snapshot *x = tt_snapshot(e->dom);
        tt_sleep_ms(200);
        shmbus_snapshot *y = tt_snapshot(e->dom);
        bool settled = x && y && same_counters(x, y);
        shmbus_snapshot_free(x);
        if (settled) {
            a = y;
            break;
        }
        shmbus_snapshot_free(y);
    }
    assert_non_null(a);

    /* while a monitor watches, nobody joined the domain */
    pid_t mon = TT_SPAWN(NULL, MON, "--json", "--domain", e->dom, "--interval", "1500");
    tt_sleep_ms(700);
    assert_true(tt_running(mon));
    shmbus_snapshot *during = tt_snapshot(e->dom);
    assert_non_null(during);
    assert_int_equal(during->nparticipants, a->nparticipants);
    for (unsigned i = 0; i < during->nparticipants; i++)
        assert_int_not_equal(during->participants[i].pid, mon);
    shmbus_snapshot_free(during);
    assert_int_equal(tt_stop(mon, 0, 10000), 0);

    TT_RUN(&r, 10000, MON, "--once", "--domain", e->dom, "--interval", "200");
    tt_assert_exit(&r, 0);
    TT_RUN(&r, 10000, MON, "--json", "--config", e->config, "--interval", "200");
    tt_assert_exit(&r, 0);

    shmbus_snapshot *after = tt_snapshot(e->dom);
    assert_non_null(after);
    assert_same_state(a, after);
    shmbus_snapshot_free(a);
    shmbus_snapshot_free(after);
    stop_bus(&b);
}

/* ---- --once ------------------------------------------------------------------------------ */

static void test_once_prints_topics_pools_and_participants(void **state)
{
    tt_env *e = TT_ENV(state);
    bus b;
    start_bus(e, &b);
    TT_RUN(&r, 15000, MON, "--once", "--config", e->config, "--interval", "300");
    tt_assert_exit(&r, 0);
    char want[96];
    snprintf(want, sizeof want, "domain \"%s\"", e->dom);
    tt_assert_contains(r.out, want);
    tt_assert_contains(r.out, "TOPIC");
    tt_assert_contains(r.out, "\ncam ");
    tt_assert_contains(r.out, "subscribers:");
    tt_assert_contains(r.out, "POOL");
    tt_assert_contains(r.out, "\ntt ");
    tt_assert_contains(r.out, "held by shmbus-pub[");
    tt_assert_contains(r.out, "PROCESS");
    snprintf(want, sizeof want, "%d shmbus-echo", (int)b.sub[0]);
    tt_assert_contains(r.out, want);
    stop_bus(&b);
}

/* ---- exit codes -------------------------------------------------------------------------- */

static void test_no_domain_says_so_and_exits_3(void **state)
{
    tt_env *e = TT_ENV(state);
    static const char *const modes[] = {"--once", "--json"};
    for (int i = 0; i < 2; i++) {
        TT_RUN(&r, 10000, MON, modes[i], "--domain", e->dom);
        tt_assert_exit(&r, 3);
        tt_assert_contains(r.err, "no domain");
        tt_assert_contains(r.err, e->dom);
        assert_string_equal(r.out, "");
    }
    TT_RUN(&r, 10000, MON, "--domain", e->dom); /* the live screen, too */
    tt_assert_exit(&r, 3);
    assert_int_equal(tt_count_segments(e->dom), 0);
}

static void test_wait_waits_until_the_domain_starts(void **state)
{
    tt_env *e = TT_ENV(state);
    char out[400];
    snprintf(out, sizeof out, "%s/monitor.out", e->rundir);
    pid_t mon = TT_SPAWN(out, MON, "--json", "--wait", "--domain", e->dom, "--interval", "300");
    tt_sleep_ms(800);
    assert_true(tt_running(mon));
    pid_t pub = TT_SPAWN(NULL, CLI, "pub", "late", "--config", e->config, "--size", "100");
    assert_int_equal(tt_stop(mon, 0, 15000), 0);
    static char text[1 << 16];
    tt_read_file(out, text, sizeof text);
    const char *json = strchr(text, '{'); /* after the "waiting" line */
    assert_non_null(json);
    cJSON *j = parse_json(json);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "topics")));
    assert_non_null(find_named(cJSON_GetObjectItem(j, "pools"), "tt"));
    cJSON_Delete(j);
    assert_int_equal(tt_stop(pub, SIGTERM, 5000), 0);
}

static void test_leftovers_of_dead_processes_are_not_a_running_domain(void **state)
{
    tt_env *e = TT_ENV(state);
    pid_t pub = TT_SPAWN(NULL, CLI, "pub", "t", "--config", e->config, "--size", "100");
    tt_topic_want w = {.topic = "t", .pubs = 1};
    assert_true(tt_wait_for(e->dom, tt_topic_ready, &w, 10000));
    assert_int_equal(tt_stop(pub, SIGKILL, 5000), 128 + SIGKILL);
    TT_RUN(&r, 10000, MON, "--json", "--domain", e->dom, "--interval", "100");
    tt_assert_exit(&r, 3);
    tt_assert_contains(r.err, "shmbus clean");
    TT_RUN(&r, 10000, CLI, "clean", e->dom);
    tt_assert_exit(&r, 0);
}

static void test_config_names_the_domain_and_a_broken_one_exits_4(void **state)
{
    tt_env *e = TT_ENV(state);
    TT_RUN(&r, 10000, MON, "--once", "--config", e->config);
    tt_assert_exit(&r, 3); /* the file names our domain, which does not run */
    tt_assert_contains(r.err, e->dom);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/bad.json", e->rundir);
    tt_write_file(bad, "{\"domain\": ");
    TT_RUN(&r, 10000, MON, "--once", "--config", bad);
    tt_assert_exit(&r, 4);
    tt_assert_contains(r.err, bad);
}

static void test_bad_options_exit_2(void **state)
{
    (void)state;
    TT_RUN(&r, 5000, MON, "--interval", "5");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, MON, "--frobnicate");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, MON, "extra");
    tt_assert_exit(&r, 2);
    TT_RUN(&r, 5000, MON, "--help");
    tt_assert_exit(&r, 0);
    tt_assert_contains(r.out, "usage: shmbus-monitor");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TT_TEST(test_json_shows_topic_both_subscribers_rate_and_pool_usage),
        TT_TEST(test_once_and_json_together_print_one_json_snapshot),
        TT_TEST(test_watching_changes_no_counter),
        TT_TEST(test_once_prints_topics_pools_and_participants),
        TT_TEST(test_no_domain_says_so_and_exits_3),
        TT_TEST(test_wait_waits_until_the_domain_starts),
        TT_TEST(test_leftovers_of_dead_processes_are_not_a_running_domain),
        TT_TEST(test_config_names_the_domain_and_a_broken_one_exits_4),
        TT_TEST(test_bad_options_exit_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
