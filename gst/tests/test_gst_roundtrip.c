/* shmbussink -> shmbussrc across processes, for every pixel format the frame format has,
 * including odd sizes: what comes out equals what videotestsrc ! filesink writes, and the sink
 * published every frame in the block upstream rendered into (zero copy) or, for buffers from
 * elsewhere, copied it once. Also: gst-inspect lists both elements with their properties. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gsttest.h"

#define FRAMES 6

static const char *const formats[] = {"RGB", "GRAY8", "I420", "Y42B", "Y444", "YUY2"};
static const int sizes[][2] = {{320, 240}, {321, 241}, {33, 17}};

/* videotestsrc ! F,WxH ! filesink: the reference bytes. */
static void reference(fixture *f, const char *caps, const char *pattern, const char *out)
{
    pid_t ref = gt_launch(f, "ref", "videotestsrc num-buffers=%d pattern=%s ! %s ! "
                                    "filesink location=%s",
                          FRAMES, pattern, caps, out);
    ct_expect_exit(f, ref, 0, 60000);
}

/* `source ! shmbussink` in this process to `shmbussrc ! filesink` in a child; returns the
 * sink's zero-copy and copied counts. */
static void send_through_bus(fixture *f, const char *source, const char *out,
                             guint64 *zero_copy, guint64 *copied)
{
    /* filesink unbuffered: by default it keeps 64 KiB of buffers (blocks) before writing */
    pid_t rx = gt_launch(f, "rx", "shmbussrc %s topic=t eos-on-idle=true ! filesink "
                                  "buffer-mode=unbuffered location=%s",
                         gt_props(f), out);
    GstElement *tx = gt_start("%s ! shmbussink name=sink %s topic=t sync=false "
                              "wait-subscribers=1",
                              source, gt_props(f));
    gt_expect_eos(tx, 60000);
    *zero_copy = gt_stat(tx, "sink", "zero-copy");
    *copied = gt_stat(tx, "sink", "copied");
    assert_int_equal(gt_stat(tx, "sink", "published"), FRAMES);
    gt_stop(tx); /* the publisher leaves: the source ends (eos-on-idle) */
    ct_expect_exit(f, rx, 0, 60000);
}

static void test_every_format_and_odd_size_comes_back_bit_exact_without_a_copy(void **state)
{
    fixture *f = *state;
    gt_config(f, "1MiB", 24, FRAMES + 2, 4);
    char ref[128], out[128], caps[128];
    ct_path(f, "ref.raw", ref, sizeof ref);
    ct_path(f, "out.raw", out, sizeof out);
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
        for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
            const char *pattern = s % 2 ? "ball" : "smpte";
            snprintf(caps, sizeof caps, "video/x-raw,format=%s,width=%d,height=%d", formats[i],
                     sizes[s][0], sizes[s][1]);
            reference(f, caps, pattern, ref);
            char src[256];
            snprintf(src, sizeof src, "videotestsrc num-buffers=%d pattern=%s ! %s", FRAMES,
                     pattern, caps);
            guint64 zero_copy, copied;
            send_through_bus(f, src, out, &zero_copy, &copied);
            GstVideoInfo info;
            gt_info(&info, formats[i], sizes[s][0], sizes[s][1]);
            gt_assert_same_frames(ref, out, &info, FRAMES);
            if (zero_copy != FRAMES || copied != 0)
                fail_msg("%s: %" G_GUINT64_FORMAT " frames zero-copy, %" G_GUINT64_FORMAT
                         " copied: videotestsrc should render into the blocks", caps,
                         zero_copy, copied);
        }
}

/* filesrc allocates its own buffers: the sink copies each frame once, and says so. */
static void test_buffers_from_elsewhere_are_copied_once_and_still_bit_exact(void **state)
{
    fixture *f = *state;
    gt_config(f, "1MiB", 24, FRAMES + 2, 4);
    char ref[128], out[128], src[512];
    ct_path(f, "ref.raw", ref, sizeof ref);
    ct_path(f, "out.raw", out, sizeof out);
    const char *caps = "video/x-raw,format=I420,width=321,height=241,framerate=30/1";
    reference(f, caps, "smpte", ref);
    GstVideoInfo info;
    gt_info(&info, "I420", 321, 241);
    snprintf(src, sizeof src, "filesrc location=%s blocksize=%zu ! %s", ref,
             GST_VIDEO_INFO_SIZE(&info), caps);
    guint64 zero_copy, copied;
    send_through_bus(f, src, out, &zero_copy, &copied);
    gt_assert_same_frames(ref, out, &info, FRAMES);
    assert_int_equal(zero_copy, 0);
    assert_int_equal(copied, FRAMES);
}

static void assert_documented(const char *factory, const char *const *own)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (!e)
        fail_msg("%s is not found in %s", factory, GST_TEST_PLUGIN_DIR);
    for (const char *const *p = own; *p; p++) {
        GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), *p);
        if (!ps)
            fail_msg("%s has no property %s", factory, *p);
        const char *blurb = g_param_spec_get_blurb(ps);
        if (!blurb || strlen(blurb) < 10)
            fail_msg("%s.%s is not documented", factory, *p);
    }
    gst_object_unref(e);
}

static void test_gst_inspect_lists_both_elements_with_documented_properties(void **state)
{
    fixture *f = *state;
    static const char *const sink[] = {"topic", "domain", "config", "wait-subscribers",
                                       "wait-timeout", "checksum", "stats", NULL};
    static const char *const src[] = {"topic", "domain", "config", "history", "eos-on-idle",
                                      "stats-interval", "stats", NULL};
    assert_documented("shmbussink", sink);
    assert_documented("shmbussrc", src);
    char cmd[256], out[128]; /* GST_PLUGIN_PATH is the build tree's (gt_init) */
    ct_path(f, "inspect.txt", out, sizeof out);
    snprintf(cmd, sizeof cmd, "gst-inspect-1.0 shmbus > %s 2>&1", out);
    assert_int_equal(system(cmd), 0);
    char *text = ct_slurp(out, NULL);
    assert_non_null(text);
    if (!strstr(text, "shmbussink") || !strstr(text, "shmbussrc"))
        fail_msg("gst-inspect-1.0 shmbus:\n%s", text);
    free(text);
}

int main(int argc, char **argv)
{
    gt_init(&argc, &argv);
#define T(t) cmocka_unit_test_setup_teardown(t, ct_setup, ct_teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_format_and_odd_size_comes_back_bit_exact_without_a_copy),
        T(test_buffers_from_elsewhere_are_copied_once_and_still_bit_exact),
        T(test_gst_inspect_lists_both_elements_with_documented_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
