/* Two hosts, two bridges, one DDS domain on loopback (bridge_harness.h): camera frames and
 * plain messages cross bit-exact, counted and in order; large frames cross; a topic bridged
 * both ways never echoes.
 *
 * Start order: a shmbus subscriber started before its publisher may miss the first messages
 * on today's bus, so every test waits for the connections it relies on (publisher sees the
 * bridge's subscriber, subscriber sees the bridge's publisher, both bridges matched on DDS)
 * before the first message. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_harness.h"

#define TOPIC "camera/front"

static const char image_out[] =
    "\"out\": [{\"topic\": \"camera/front\", \"type\": \"image\", \"frame_id\": \"front\","
    " \"qos\": {\"reliability\": \"reliable\", \"depth\": 10, \"max_blocking_ms\": 2000}}]";
static const char image_in[] =
    "\"in\": [{\"topic\": \"camera/front\", \"type\": \"image\", \"checksum\": true,"
    " \"qos\": {\"reliability\": \"reliable\", \"depth\": 10}}]";

/* How many subscribers (alive) the topic has on a host's domain. */
static unsigned topic_subs(bh_host *h, const char *topic)
{
    shmbus_snapshot *s;
    if (shmbus_snapshot_take(h->d, &s) != 0) return 0;
    unsigned n = 0;
    for (unsigned t = 0; t < s->ntopics; t++)
        if (strcmp(s->topics[t].def.name, topic) == 0)
            for (unsigned i = 0; i < s->topics[t].nsubs; i++) n += s->topics[t].subs[i].alive;
    shmbus_snapshot_free(s);
    return n;
}

/* Whether the host's domain has a live participant `name` publishing on `topic`. */
static bool participant_publishes(bh_host *h, const char *name, const char *topic)
{
    shmbus_snapshot *s;
    if (shmbus_snapshot_take(h->d, &s) != 0) return false;
    bool found = false;
    for (unsigned t = 0; t < s->ntopics; t++)
        for (unsigned i = 0; strcmp(s->topics[t].def.name, topic) == 0 && i < s->topics[t].npubs;
             i++)
            for (unsigned p = 0; p < s->nparticipants; p++)
                found = found || (s->participants[p].alive &&
                                  s->participants[p].pid == s->topics[t].pubs[i].pid &&
                                  strcmp(s->participants[p].name, name) == 0);
    shmbus_snapshot_free(s);
    return found;
}

static void expect_in_order(const bh_receiver *r, unsigned n, uint64_t first)
{
    assert_int_equal(atomic_load(&r->bad), 0);
    assert_int_equal(atomic_load(&r->got), n);
    for (unsigned i = 0; i < n; i++)
        if (r->idx[i] != first + i)
            fail_msg("message %u has index %llu, expected %llu", i, (unsigned long long)r->idx[i],
                     (unsigned long long)(first + i));
}

static void test_camera_frames_reach_frame_stats_on_other_host_bit_exact_in_order(void **state)
{
    bh_env *e = *state;
    enum { N = 40 };
    bh_start_pair(e, image_out, image_in, TOPIC);
    shmbus_sub *sub = bh_open_both_sub_b(e, TOPIC);
    char summary[160], count[16];
    bh_path(e, "frame-stats.json", summary, sizeof summary);
    snprintf(count, sizeof count, "%d", N);
    const char *fs[] = {"frame-stats", "--config", e->b.domcfg, "--domain", e->b.dom,
                        "--topic",     TOPIC,      "--count",   count,      "--summary",
                        summary,       "-q",       NULL};
    pid_t stats = bh_spawn(e, &e->b, fs, NULL);
    for (int i = 0; i < 1000 && topic_subs(&e->b, TOPIC) < 2; i++) bh_sleep_ms(10);
    assert_int_equal(topic_subs(&e->b, TOPIC), 2);
    bh_sleep_ms(500); /* frame-stats connects to the bridge's publisher */
    bh_receiver rx;
    bh_receiver_start(&rx, sub, true, N, 60000);

    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(e->a.d, TOPIC, &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 10000), 0);
    for (unsigned i = 0; i < N; i++) {
        bh_receiver_window(&rx, i, 4);
        bh_publish_frame(pub, SHMBUS_PIXFMT_RGB24, 640, 480, i);
    }
    bh_receiver_join(&rx);
    expect_in_order(&rx, N, 0);
    assert_int_equal(bh_wait(e, stats, 30000), 0);
    assert_true(bh_json_number(summary, "received") == N);
    assert_true(bh_json_number(summary, "checksum_errors") == 0);
    assert_true(bh_json_number(summary, "lost") == 0);
    assert_true(bh_json_number(summary, "seq_gaps") == 0);
    assert_true(bh_json_number(summary, "first_frame") == 0);
    assert_true(bh_json_number(summary, "last_frame") == N - 1);
    bh_wait_stat(&e->a, "out", TOPIC, "forwarded", N, 5000);
    bh_wait_stat(&e->b, "in", TOPIC, "forwarded", N, 5000);
    bh_expect_stat(&e->a, "out", TOPIC, "received", N);
    bh_expect_stat(&e->b, "in", TOPIC, "received", N);
    bh_expect_stat(&e->b, "in", TOPIC, "dropped.invalid", 0);

    /* what the tools show: participant "shmbus-bridge", publishing its frames and its stats */
    assert_true(participant_publishes(&e->b, "shmbus-bridge", TOPIC));
    assert_true(participant_publishes(&e->b, "shmbus-bridge", "shmbus-bridge/stats"));
    /* the counters also travel on the bus, as JSON on shmbus-bridge/stats */
    shmbus_sub *ssub;
    assert_int_equal(shmbus_sub_open(e->b.d, "shmbus-bridge/stats", NULL, &ssub), 0);
    shmbus_msg *m;
    int rc = shmbus_sub_recv(ssub, 10000, &m);
    assert_int_equal(rc, 0);
    char text[4096] = "";
    uint64_t len = shmbus_msg_length(m);
    memcpy(text, shmbus_msg_data(m), len < sizeof text - 1 ? len : sizeof text - 1);
    shmbus_msg_release(m);
    char want[64];
    snprintf(want, sizeof want, "\"forwarded\":%d", N);
    if (!strstr(text, "\"topic\":\"camera/front\"") || !strstr(text, want))
        fail_msg("stats message: %s", text);
    assert_int_equal(shmbus_sub_close(ssub), 0);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(shmbus_pub_close(pub), 0);
}

static void test_plain_topic_random_size_messages_arrive_checksummed_in_order(void **state)
{
    bh_env *e = *state;
    enum { N = 150 };
    const char *out = "\"out\": [{\"topic\": \"log/data\", \"qos\": {\"max_blocking_ms\": 2000}}]";
    const char *in = "\"in\": [{\"topic\": \"log/data\"}]";
    bh_start_pair(e, out, in, "log/data");
    shmbus_sub *sub = bh_open_both_sub_b(e, "log/data");
    bh_receiver rx;
    bh_receiver_start(&rx, sub, false, N, 60000);
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(e->a.d, "log/data", &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 10000), 0);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    for (unsigned i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t size = 16 + (seed >> 33) % 300000; /* 16 B .. 300 KB */
        bh_receiver_window(&rx, i, 4);
        bh_publish_message(pub, i, size);
    }
    bh_receiver_join(&rx);
    expect_in_order(&rx, N, 0);
    bh_wait_stat(&e->a, "out", "log/data", "forwarded", N, 5000);
    bh_expect_stat(&e->b, "in", "log/data", "forwarded", N);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(shmbus_pub_close(pub), 0);
}

static void large_frames(shmbus_pub *pub, bh_receiver *rx, uint32_t w, uint32_t h, unsigned n,
                         unsigned first)
{
    for (unsigned i = first; i < first + n; i++) {
        bh_receiver_window(rx, i, 1);
        bh_publish_frame(pub, SHMBUS_PIXFMT_RGB24, w, h, i);
    }
}

static void test_1080p_and_4k_rgb24_frames_cross_loopback(void **state)
{
    bh_env *e = *state;
    bh_start_pair(e, image_out, image_in, TOPIC);
    shmbus_sub *sub = bh_open_both_sub_b(e, TOPIC);
    bh_receiver rx;
    bh_receiver_start(&rx, sub, true, 8, 120000);
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(e->a.d, TOPIC, &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 10000), 0);
    large_frames(pub, &rx, 1920, 1080, 4, 0); /* 6.2 MB each */
    large_frames(pub, &rx, 3840, 2160, 4, 4); /* 24.9 MB each */
    bh_receiver_join(&rx);
    if (atomic_load(&rx.got) != 8) bh_print_log(&e->a), bh_print_log(&e->b);
    expect_in_order(&rx, 8, 0);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(shmbus_pub_close(pub), 0);
}

static void test_topic_bridged_both_ways_on_two_hosts_never_echoes(void **state)
{
    bh_env *e = *state;
    enum { N = 10 };
    const char *both =
        "\"out\": [{\"topic\": \"camera/front\", \"type\": \"image\", \"qos\": {\"reliability\": "
        "\"reliable\", \"max_blocking_ms\": 2000}}],\n \"in\": [{\"topic\": \"camera/front\", "
        "\"type\": \"image\", \"qos\": {\"reliability\": \"reliable\"}}]";
    bh_write_bridge_config(e, &e->a, both);
    bh_write_bridge_config(e, &e->b, both);
    bh_start_bridge(e, &e->a);
    bh_start_bridge(e, &e->b);
    bh_host *hosts[2] = {&e->a, &e->b};
    shmbus_sub *sub[2];
    shmbus_pub *pub[2];
    bh_receiver rx[2];
    for (int i = 0; i < 2; i++) {
        bh_wait_stat(hosts[i], "out", TOPIC, "matched", 1, 30000);
        bh_wait_stat(hosts[i], "in", TOPIC, "matched", 1, 30000);
        bh_open(hosts[i], i ? "test-b" : "test-a");
        assert_int_equal(shmbus_sub_open(hosts[i]->d, TOPIC, NULL, &sub[i]), 0);
        assert_int_equal(shmbus_sub_wait_publishers(sub[i], 1, 10000), 0); /* the bridge's */
        assert_int_equal(shmbus_pub_open(hosts[i]->d, TOPIC, &pub[i]), 0);
        assert_int_equal(shmbus_pub_wait_subscribers(pub[i], 2, 10000), 0);
        assert_int_equal(shmbus_sub_wait_publishers(sub[i], 2, 10000), 0); /* and the test's */
    }
    for (int i = 0; i < 2; i++) bh_receiver_start(&rx[i], sub[i], true, 4 * N, 8000);
    /* a publishes 0..N-1, then b publishes 100..100+N-1 */
    for (int h = 0; h < 2; h++)
        for (unsigned k = 0; k < N; k++) {
            bh_receiver_window(&rx[!h], h * N + k, 2); /* the far side keeps up */
            bh_publish_frame(pub[h], SHMBUS_PIXFMT_GRAY8, 64, 48, (uint64_t)h * 100 + k);
        }
    /* Each side gets its own N and the other's N exactly once; the receivers wait their full
     * time for more (an echo would be a second copy), so no early end hides one. */
    for (int i = 0; i < 2; i++) {
        bh_receiver_join(&rx[i]);
        assert_int_equal(atomic_load(&rx[i].bad), 0);
        assert_int_equal(atomic_load(&rx[i].got), 2 * N);
        unsigned seen[2][N] = {{0}};
        for (unsigned j = 0; j < 2 * N; j++) {
            uint64_t x = rx[i].idx[j];
            assert_true(x < N || (x >= 100 && x < 100 + N));
            seen[x >= 100][x % 100]++;
        }
        for (unsigned k = 0; k < N; k++) assert_true(seen[0][k] == 1 && seen[1][k] == 1);
    }
    for (int i = 0; i < 2; i++) {
        bh_expect_stat(hosts[i], "out", TOPIC, "forwarded", N);
        bh_expect_stat(hosts[i], "out", TOPIC, "looped", N);
        bh_expect_stat(hosts[i], "in", TOPIC, "forwarded", N);
        assert_int_equal(shmbus_sub_close(sub[i]), 0);
        assert_int_equal(shmbus_pub_close(pub[i]), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BH_TEST(test_camera_frames_reach_frame_stats_on_other_host_bit_exact_in_order),
        BH_TEST(test_plain_topic_random_size_messages_arrive_checksummed_in_order),
        BH_TEST(test_topic_bridged_both_ways_on_two_hosts_never_echoes),
        BH_TEST_LARGE(test_1080p_and_4k_rgb24_frames_cross_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
