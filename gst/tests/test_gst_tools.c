/* The plugin with the C camera tools, each in its own process: camera-pub's frames come out
 * of shmbussrc bit-exact (against the test pattern drawn here), and shmbussink's frames pass
 * frame-stats' checksums and come out of frame-sink's Y4M bit-exact (against videotestsrc). */
#include <stdio.h>
#include <string.h>

#include "gsttest.h"
#include "format.h"
#include "pattern.h"

#define FRAMES 5

static const struct {
    const char *shm, *gst;
} formats[] = {{"rgb24", "RGB"},     {"gray8", "GRAY8"},     {"yuv420p", "I420"},
               {"yuv422p", "Y42B"}, {"yuv444p", "Y444"}, {"yuyv422", "YUY2"}};

/* Every visible byte of the sample equals camera-pub's pattern for its frame number. */
static void assert_is_pattern(GstSample *sample, shmbus_pixfmt fmt, uint32_t w, uint32_t h)
{
    GstVideoInfo info;
    assert_true(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
    GstBuffer *buf = gst_sample_get_buffer(sample);
    uint64_t n = GST_BUFFER_OFFSET(buf);
    shmbus_frame_hdr g;
    assert_int_equal(shmbus_frame_init(&g, fmt, w, h), 0);
    shmbus_frame_hdr *want = g_malloc0(shmbus_frame_message_size(&g));
    *want = g;
    pattern pat;
    assert_int_equal(pattern_init(&pat, w, h), 0);
    pattern_render(&pat, want, n);
    pattern_free(&pat);
    GstVideoFrame vf;
    assert_true(gst_video_frame_map(&vf, &info, buf, GST_MAP_READ));
    for (unsigned p = 0; p < g.nplanes; p++)
        for (uint32_t r = 0; r < shmbus_frame_rows(&g, p); r++) {
            const uint8_t *got = (const uint8_t *)GST_VIDEO_FRAME_PLANE_DATA(&vf, p) +
                                 (size_t)r * GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
            const uint8_t *exp = shmbus_frame_plane(want, p) + (size_t)r * want->stride[p];
            for (uint32_t c = 0; c < shmbus_frame_row_bytes(&g, p); c++)
                if (got[c] != exp[c] &&
                    !(fmt == SHMBUS_PIXFMT_YUYV422 && w % 2 && c == w * 2))
                    fail_msg("%s frame %" G_GUINT64_FORMAT " plane %u row %u byte %u: %u, "
                             "camera-pub drew %u", shmbus_pixfmt_name(fmt), n, p, r, c, got[c],
                             exp[c]);
        }
    gst_video_frame_unmap(&vf);
    g_free(want);
}

static void test_camera_pub_frames_come_out_of_shmbussrc_bit_exact(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 24, FRAMES + 2, FRAMES + 2);
    const uint32_t w = 161, h = 121;
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        GstElement *rx = gt_start("shmbussrc name=src %s topic=t eos-on-idle=true ! appsink "
                                  "name=out sync=false",
                                  gt_props(f));
        const char *argv[] = {"camera-pub", "--topic", "t", "--format", formats[i].shm,
                              "--size", "161x121", "--count", "5", "--fps", "30",
                              "--wait-subs", "1", "-q", NULL};
        pid_t tx = ct_spawn(f, "camera-pub", gt_config_path(f), NULL, argv);
        for (int k = 0; k < FRAMES; k++) {
            GstSample *sample = gt_pull(rx, "out", 30000);
            if (!sample)
                fail_msg("%s: frame %d did not come", formats[i].shm, k);
            assert_is_pattern(sample, shmbus_pixfmt_parse(formats[i].shm), w, h);
            gst_sample_unref(sample);
        }
        ct_expect_exit(f, tx, 0, 30000);
        gt_expect_eos(rx, 30000);
        gt_stop(rx);
    }
}

/* The planes of each frame of a Y4M file, packed as frame-sink writes them, against the
 * visible bytes of a raw file in GStreamer's layout. */
static void assert_y4m_matches_raw(const char *y4m, const char *raw, const GstVideoInfo *info,
                                   int frames)
{
    size_t ny, nr;
    char *y = ct_slurp(y4m, &ny), *x = ct_slurp(raw, &nr);
    if (!y || !x)
        fail_msg("%s or %s was not written", y4m, raw);
    shmbus_frame_hdr h;
    char why[160];
    assert_true(shmbus_format_header(info, &h, why, sizeof why));
    char *at = memchr(y, '\n', ny);
    assert_non_null(at);
    at++;
    size_t fs = GST_VIDEO_INFO_SIZE(info);
    for (int k = 0; k < frames; k++) {
        if ((size_t)(at - y) + 6 > ny || memcmp(at, "FRAME\n", 6) != 0)
            fail_msg("%s: frame %d is missing", y4m, k);
        at += 6;
        for (unsigned p = 0; p < h.nplanes; p++)
            for (uint32_t r = 0; r < shmbus_frame_rows(&h, p); r++) {
                size_t len = shmbus_frame_row_bytes(&h, p);
                const char *want = x + fs * (size_t)k + h.plane_offset[p] + (size_t)r * h.stride[p];
                if ((size_t)(at - y) + len > ny || memcmp(at, want, len) != 0)
                    fail_msg("%s: frame %d plane %u row %u differs", y4m, k, p, r);
                at += len;
            }
    }
    if ((size_t)(at - y) != ny)
        fail_msg("%s has more than %d frames", y4m, frames);
    free(x);
    free(y);
}

static void test_shmbussink_frames_pass_frame_stats_and_frame_sink_bit_exact(void **state)
{
    fixture *f = *state;
    gt_config(f, "1MiB", 24, 12, 4);
    const char *const fmts[] = {"I420", "Y444", "GRAY8", "RGB"}; /* Y4M has the first three */
    for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
        bool y4m = strcmp(fmts[i], "RGB") != 0;
        char caps[128], ref[128], out[128], summary[128];
        snprintf(caps, sizeof caps, "video/x-raw,format=%s,width=321,height=241", fmts[i]);
        ct_path(f, "ref.raw", ref, sizeof ref);
        ct_path(f, "out.y4m", out, sizeof out);
        ct_path(f, "stats.json", summary, sizeof summary);
        pid_t r = gt_launch(f, "ref", "videotestsrc num-buffers=10 ! %s ! filesink location=%s",
                            caps, ref);
        ct_expect_exit(f, r, 0, 30000);
        const char *stats_argv[] = {"frame-stats", "--topic", "t", "--summary", summary, "-q",
                                    NULL};
        const char *sink_argv[] = {"frame-sink", "--topic", "t", "--y4m", out, "-q", NULL};
        pid_t st = ct_spawn(f, "frame-stats", gt_config_path(f), NULL, stats_argv);
        pid_t sk = y4m ? ct_spawn(f, "frame-sink", gt_config_path(f), NULL, sink_argv) : 0;
        GstElement *tx = gt_start("videotestsrc num-buffers=10 ! %s ! shmbussink name=sink %s "
                                  "topic=t sync=false checksum=true wait-subscribers=%d",
                                  caps, gt_props(f), y4m ? 2 : 1);
        gt_expect_eos(tx, 60000);
        assert_int_equal(gt_stat(tx, "sink", "zero-copy"), 10);
        gt_stop(tx);
        ct_expect_exit(f, st, 0, 30000);
        ASSERT_SUMMARY(f, "stats.json", "received", ==, 10);
        ASSERT_SUMMARY(f, "stats.json", "checksum_errors", ==, 0);
        if (y4m) {
            ct_expect_exit(f, sk, 0, 30000);
            GstVideoInfo info;
            gt_info(&info, fmts[i], 321, 241);
            assert_y4m_matches_raw(out, ref, &info, 10);
        }
    }
}

int main(int argc, char **argv)
{
    gt_init(&argc, &argv);
#define T(t) cmocka_unit_test_setup_teardown(t, ct_setup, ct_teardown)
    const struct CMUnitTest tests[] = {
        T(test_camera_pub_frames_come_out_of_shmbussrc_bit_exact),
        T(test_shmbussink_frames_pass_frame_stats_and_frame_sink_bit_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
