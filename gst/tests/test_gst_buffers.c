/* shmbussrc's buffers are the shared-memory blocks themselves, released when downstream frees
 * them; a slow pipeline loses frames, counted, while the publisher and a fast subscriber go
 * on; a pipeline killed with SIGKILL gives its blocks back; the monitor names each element
 * "gst.<pipeline>.<element>". */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "gsttest.h"

#define RGB_320 "video/x-raw,format=RGB,width=320,height=240"

/* Whether p lies in this process's mapping of the test domain's pool "frames". */
static bool in_pool_mapping(const fixture *f, const void *p)
{
    char name[96], line[512];
    snprintf(name, sizeof name, "shmbus.%s.pool.frames", f->dom);
    FILE *maps = fopen("/proc/self/maps", "r");
    assert_non_null(maps);
    bool in = false;
    while (!in && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        if (strstr(line, name) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
            in = (unsigned long)p >= lo && (unsigned long)p < hi;
    }
    fclose(maps);
    return in;
}

static void test_src_buffers_are_pool_blocks_released_when_downstream_frees_them(void **state)
{
    enum { N = 8 };
    fixture *f = *state;
    gt_config(f, "1MiB", 24, N + 2, N + 2);
    shmbus_domain *d = gt_domain(f);
    GstElement *rx = gt_start("shmbussrc name=src %s topic=t eos-on-idle=true ! appsink "
                              "name=out sync=false enable-last-sample=false",
                              gt_props(f));
    pid_t tx = gt_launch(f, "tx", "videotestsrc num-buffers=%d ! " RGB_320 " ! shmbussink %s "
                                  "topic=t sync=false wait-subscribers=1",
                         N, gt_props(f));
    GstSample *kept[N];
    for (int i = 0; i < N; i++) {
        kept[i] = gt_pull(rx, "out", 30000);
        if (!kept[i])
            fail_msg("frame %d did not come", i);
        GstBuffer *buf = gst_sample_get_buffer(kept[i]);
        assert_int_equal(gst_buffer_n_memory(buf), 1);
        assert_true(gst_memory_is_type(gst_buffer_peek_memory(buf, 0), "ShmbusMemory"));
        GstMapInfo map;
        assert_true(gst_buffer_map(buf, &map, GST_MAP_READ));
        if (!in_pool_mapping(f, map.data))
            fail_msg("frame %d at %p is not in the pool's mapping", i, (void *)map.data);
        gst_buffer_unmap(buf, &map);
        /* read-only: other processes read the same block */
        assert_true(GST_MEMORY_IS_READONLY(gst_buffer_peek_memory(buf, 0)));
    }
    assert_int_equal(gt_stat(rx, "src", "held"), N);
    assert_int_equal(gt_stat(rx, "src", "copied"), 0);
    for (int i = 0; i < N; i++)
        gst_sample_unref(kept[i]);
    /* appsink keeps the first buffer as its preroll sample until it stops */
    assert_int_equal(gt_stat(rx, "src", "held"), 1);
    ct_expect_exit(f, tx, 0, 60000);
    gt_expect_eos(rx, 30000);
    gt_stop(rx);
    unsigned used = gt_wait_pool_empty(d, 10000);
    if (used)
        fail_msg("%u blocks still in use after both pipelines ended", used);
    assert_int_equal(shmbus_domain_close(d), 0);
}

static void test_slow_pipeline_loses_frames_counted_while_the_publisher_goes_on(void **state)
{
    enum { N = 100 };
    fixture *f = *state;
    gt_config(f, "256KiB", 40, 16, 2);
    const char *stats_argv[] = {"frame-stats", "--summary", "fast.json", "--topic", "t", "-q",
                                NULL};
    char summary[128];
    ct_path(f, "fast.json", summary, sizeof summary);
    stats_argv[2] = summary;
    pid_t fast = ct_spawn(f, "fast", gt_config_path(f), NULL, stats_argv);
    GstElement *slow = gt_start("shmbussrc name=slow %s topic=t eos-on-idle=true ! identity "
                                "sleep-time=100000 ! fakesink sync=false",
                                gt_props(f));
    pid_t tx = gt_launch(f, "tx", "videotestsrc num-buffers=%d ! " RGB_320 ",framerate=50/1 ! "
                                  "shmbussink %s topic=t wait-subscribers=2",
                         N, gt_props(f));
    ct_expect_exit(f, tx, 0, 120000);
    guint64 pushed_when_publisher_done = gt_stat(slow, "slow", "pushed");
    gt_expect_eos(slow, 60000);
    guint64 pushed = gt_stat(slow, "slow", "pushed"), lost = gt_stat(slow, "slow", "lost");
    const GstStructure *posted = gt_last_stats();
    guint64 posted_lost = 0;
    assert_non_null(posted);
    assert_true(gst_structure_get_uint64(posted, "lost", &posted_lost));
    gt_stop(slow);
    ct_expect_exit(f, fast, 0, 60000);
    /* the publisher finished its 100 frames at 50 fps while the slow one, at 10 fps, was far
     * behind: it did not wait for it */
    if (pushed_when_publisher_done >= N)
        fail_msg("the slow pipeline had all %d frames when the publisher finished", N);
    if (lost == 0 || pushed + lost != N)
        fail_msg("slow pipeline: %" G_GUINT64_FORMAT " pushed + %" G_GUINT64_FORMAT
                 " lost, expected some lost and %d in all", pushed, lost, N);
    assert_true(posted_lost > 0); /* a shmbussrc-stats message said so on the bus */
    ASSERT_SUMMARY(f, "fast.json", "received", ==, N);
    ASSERT_SUMMARY(f, "fast.json", "lost", ==, 0);
}

/* Name of the participant/sub/pub entries: "gst.<pipeline>.<element>". */
static bool snapshot_has(shmbus_domain *d, const char *sub_name, const char *pub_suffix,
                         unsigned *sub_held)
{
    shmbus_snapshot *s;
    assert_int_equal(shmbus_snapshot_take(d, &s), 0);
    bool sub = false, pub = false;
    for (unsigned t = 0; t < s->ntopics; t++) {
        for (unsigned i = 0; i < s->topics[t].nsubs; i++)
            sub |= strcmp(s->topics[t].subs[i].name, sub_name) == 0;
        for (unsigned i = 0; i < s->topics[t].npubs; i++)
            pub |= g_str_has_prefix(s->topics[t].pubs[i].name, "gst.pipeline") &&
                   g_str_has_suffix(s->topics[t].pubs[i].name, pub_suffix);
    }
    *sub_held = 0;
    for (unsigned i = 0; i < s->nparticipants; i++)
        if (strcmp(s->participants[i].name, sub_name) == 0 && s->participants[i].alive)
            *sub_held = (unsigned)s->participants[i].held_blocks;
    shmbus_snapshot_free(s);
    return sub && pub;
}

static void test_killed_pipeline_gives_its_blocks_back_and_elements_show_by_name(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 24, 4, 2);
    shmbus_domain *d = gt_domain(f);
    pid_t victim = gt_launch(f, "victim", "shmbussrc name=victim %s topic=t ! identity "
                                          "sleep-time=5000000 ! fakesink",
                             gt_props(f));
    GstElement *tx = gt_start("videotestsrc num-buffers=600 ! " RGB_320 ",framerate=30/1 ! "
                              "shmbussink name=pub %s topic=t wait-subscribers=1",
                              gt_props(f));
    unsigned held = 0;
    for (int waited = 0; waited < 30000; waited += 20) {
        if (snapshot_has(d, "gst.pipeline0.victim", ".pub", &held) && held > 0)
            break;
        g_usleep(20000);
    }
    if (held == 0)
        fail_msg("the victim pipeline never showed as gst.pipeline0.victim holding a block");
    kill(victim, SIGKILL);
    ct_expect_exit(f, victim, 128 + SIGKILL, 10000);
    gt_stop(tx); /* the publisher leaves too: every block must come back */
    unsigned used = gt_wait_pool_empty(d, 10000);
    if (used)
        fail_msg("%u blocks still in use after the victim was killed and the publisher left",
                 used);
    assert_int_equal(shmbus_domain_close(d), 0);
}

int main(int argc, char **argv)
{
    gt_init(&argc, &argv);
#define T(t) cmocka_unit_test_setup_teardown(t, ct_setup, ct_teardown)
    const struct CMUnitTest tests[] = {
        T(test_src_buffers_are_pool_blocks_released_when_downstream_frees_them),
        T(test_slow_pipeline_loses_frames_counted_while_the_publisher_goes_on),
        T(test_killed_pipeline_gives_its_blocks_back_and_elements_show_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
