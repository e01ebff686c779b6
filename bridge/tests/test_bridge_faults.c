/* Faults: kill -9 of either bridge mid-stream leaves no block held and a restarted bridge
 * resumes; malformed DDS images are counted and skipped and never reach subscribers; a
 * stalled network makes the bridge lose frames (counted) while local subscribers get every
 * one. SIGUSR1 prints the counters. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_harness.h"

#define TOPIC "camera/front"

static const char image_out[] =
    "\"out\": [{\"topic\": \"camera/front\", \"type\": \"image\", \"qos\": {\"reliability\": "
    "\"reliable\", \"max_blocking_ms\": 50}}]";
static const char image_in[] =
    "\"in\": [{\"topic\": \"camera/front\", \"type\": \"image\", \"qos\": {\"reliability\": "
    "\"reliable\"}}]";

/* A publishing thread: frames 640x480 rgb24 every 20 ms until told to stop. */
typedef struct streamer {
    shmbus_pub *pub;
    _Atomic bool stop;
    _Atomic uint64_t sent;
    pthread_t th;
} streamer;

static void *stream_run(void *arg)
{
    streamer *s = arg;
    while (!atomic_load(&s->stop)) {
        bh_publish_frame(s->pub, SHMBUS_PIXFMT_RGB24, 640, 480, atomic_load(&s->sent));
        atomic_fetch_add(&s->sent, 1);
        bh_sleep_ms(20);
    }
    return NULL;
}

static void stream_start(streamer *s, bh_host *h)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(shmbus_pub_open(h->d, TOPIC, &s->pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(s->pub, 1, 10000), 0);
    assert_int_equal(pthread_create(&s->th, NULL, stream_run, s), 0);
}

static void stream_stop(streamer *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    assert_int_equal(shmbus_pub_close(s->pub), 0);
}

/* Wait until the receiver has n more messages than `base`. */
static void wait_more(bh_env *e, bh_receiver *rx, unsigned base, unsigned n)
{
    for (int i = 0; i < 3000 && atomic_load(&rx->got) < base + n; i++) bh_sleep_ms(10);
    if (atomic_load(&rx->got) < base + n) {
        bh_print_log(&e->a);
        bh_print_log(&e->b);
        fail_msg("received %u, expected at least %u", atomic_load(&rx->got), base + n);
    }
    assert_int_equal(atomic_load(&rx->bad), 0);
}

static void
test_kill9_of_either_bridge_mid_stream_leaves_no_block_held_and_restart_resumes(void **state)
{
    bh_env *e = *state;
    bh_start_pair(e, image_out, image_in, TOPIC);
    shmbus_sub *sub = bh_open_both_sub_b(e, TOPIC);
    bh_receiver rx;
    bh_receiver_start(&rx, sub, true, 100000, 240000);
    streamer st;
    stream_start(&st, &e->a);
    wait_more(e, &rx, 0, 10);

    /* host a's bridge dies mid-stream: once the publisher is gone too, nothing is held */
    assert_int_equal(bh_stop_bridge(e, &e->a, SIGKILL), 128 + SIGKILL);
    stream_stop(&st);
    assert_int_equal(bh_wait_pool_used(&e->a, 0, 10000), 0);
    /* restarted, it resumes */
    bh_start_bridge(e, &e->a);
    bh_wait_stat(&e->a, "out", TOPIC, "matched", 1, 30000);
    stream_start(&st, &e->a);
    unsigned base = atomic_load(&rx.got);
    wait_more(e, &rx, base, 10);

    /* host b's bridge dies mid-stream: the frames it held return to b's pool */
    assert_int_equal(bh_stop_bridge(e, &e->b, SIGKILL), 128 + SIGKILL);
    assert_int_equal(bh_wait_pool_used(&e->b, 0, 10000), 0);
    bh_start_bridge(e, &e->b);
    assert_int_equal(shmbus_sub_wait_publishers(sub, 1, 20000), 0);
    base = atomic_load(&rx.got);
    wait_more(e, &rx, base, 10);

    stream_stop(&st);
    atomic_store(&rx.stop, true);
    bh_receiver_join(&rx);
    assert_int_equal(atomic_load(&rx.bad), 0);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(bh_wait_pool_used(&e->a, 0, 10000), 0);
}

static void test_malformed_dds_images_are_counted_and_skipped_never_delivered(void **state)
{
    bh_env *e = *state;
    bh_write_bridge_config(e, &e->b, image_in);
    bh_start_bridge(e, &e->b);
    bh_open(&e->b, "test-b");
    shmbus_sub *sub;
    assert_int_equal(shmbus_sub_open(e->b.d, TOPIC, NULL, &sub), 0);
    assert_int_equal(shmbus_sub_wait_publishers(sub, 1, 10000), 0);
    /* g good; s step*height != data length; e unknown encoding; z zero width; r step < row */
    const char *seq = "g,s,e,g,z,r,g,e,s,g";
    const unsigned good[] = {0, 3, 6, 9};
    const char *argv[] = {"ros2-image-peer",
                          "pub",
                          "--topic",
                          "rt/camera/front",
                          "--width",
                          "96",
                          "--height",
                          "64",
                          "--encoding",
                          "rgb8",
                          "--reliable",
                          "--sequence",
                          seq,
                          NULL};
    pid_t peer = bh_spawn(e, &e->b, argv, NULL);
    for (unsigned i = 0; i < 4; i++) {
        shmbus_msg *m;
        int rc = shmbus_sub_recv(sub, 20000, &m);
        if (rc != 0) {
            bh_print_log(&e->b);
            fail_msg("frame %u: %s", i, shmbus_strerror(rc));
        }
        uint64_t idx;
        assert_true(bh_frame_ok(m, &idx));
        assert_int_equal(idx, good[i]);
        shmbus_msg_release(m);
    }
    assert_int_equal(bh_wait(e, peer, 30000), 0);
    bh_wait_stat(&e->b, "in", TOPIC, "received", 10, 10000);
    bh_expect_stat(&e->b, "in", TOPIC, "forwarded", 4);
    bh_expect_stat(&e->b, "in", TOPIC, "dropped.invalid", 4);
    bh_expect_stat(&e->b, "in", TOPIC, "dropped.refused", 2);
    shmbus_msg *m;
    assert_int_equal(shmbus_sub_recv(sub, 500, &m), SHMBUS_ETIMEDOUT); /* nothing else came */
    assert_int_equal(kill(e->b.bridge, 0), 0);                         /* still running */
    /* SIGUSR1: the counters on stderr */
    assert_int_equal(kill(e->b.bridge, SIGUSR1), 0);
    char *log = NULL;
    for (int i = 0; i < 500; i++, bh_sleep_ms(20)) {
        free(log);
        log = bh_slurp(e->b.log);
        if (log && strstr(log, "\"invalid\":4,\"pool_full\"")) break;
    }
    if (!log || !strstr(log, "\"invalid\":4,\"pool_full\""))
        fail_msg("no counters on SIGUSR1: %s", log);
    free(log);
    assert_int_equal(shmbus_sub_close(sub), 0);
    /* and it stops cleanly */
    assert_int_equal(bh_stop_bridge(e, &e->b, SIGTERM), 0);
}

static void test_stalled_network_loses_bridge_frames_counted_local_subscriber_gets_all(void **state)
{
    bh_env *e = *state;
    enum { N = 150 };
    bh_start_pair(e, image_out, image_in, TOPIC);
    /* the network (the far bridge) stops answering: a reliable writer runs out of room */
    assert_int_equal(kill(e->b.bridge, SIGSTOP), 0);
    bh_open(&e->a, "test-a");
    shmbus_sub *sub;
    assert_int_equal(shmbus_sub_open(e->a.d, TOPIC, NULL, &sub), 0);
    bh_receiver rx;
    bh_receiver_start(&rx, sub, true, N, 120000);
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(e->a.d, TOPIC, &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 2, 10000), 0);
    assert_int_equal(shmbus_sub_wait_publishers(sub, 1, 10000), 0);
    for (unsigned i = 0; i < N; i++) { /* 138 MB in all: more than a writer may have */
        bh_receiver_window(&rx, i, 4); /* unacknowledged (64 MB), so writes must wait */
        bh_publish_frame(pub, SHMBUS_PIXFMT_RGB24, 640, 480, i);
        bh_sleep_ms(10);
    }
    bh_receiver_join(&rx);
    assert_int_equal(atomic_load(&rx.bad), 0);
    assert_int_equal(atomic_load(&rx.got), N); /* the local subscriber got every frame */
    for (unsigned i = 0; i < N; i++) assert_int_equal(rx.idx[i], i);
    /* the bridge lost frames and counted them: busy writes, or frames it had no time for */
    double busy, lost, fwd, got;
    for (int i = 0; i < 500; i++) { /* until the stats file shows every frame accounted for */
        busy = bh_stat(&e->a, "out", TOPIC, "dropped.busy");
        lost = bh_stat(&e->a, "out", TOPIC, "local_lost");
        fwd = bh_stat(&e->a, "out", TOPIC, "forwarded");
        got = bh_stat(&e->a, "out", TOPIC, "received");
        if (got + lost == N && fwd + busy == got) break;
        bh_sleep_ms(20);
    }
    if (!(busy >= 1 && got + lost == N && fwd + busy == got)) {
        bh_print_log(&e->a);
        fail_msg("busy %g lost %g forwarded %g received %g of %d", busy, lost, fwd, got, N);
    }
    assert_int_equal(kill(e->b.bridge, SIGCONT), 0);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(shmbus_pub_close(pub), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BH_TEST(test_malformed_dds_images_are_counted_and_skipped_never_delivered),
        BH_TEST(test_stalled_network_loses_bridge_frames_counted_local_subscriber_gets_all),
        BH_TEST(test_kill9_of_either_bridge_mid_stream_leaves_no_block_held_and_restart_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
