/* shmbussrc follows the frames: caps renegotiate when the size or format changes mid-stream,
 * and a frame of a pixel format GStreamer lacks gives an error message on the bus. The
 * publisher here is this process, through the public API, with tightly packed rows. */
#include <stdio.h>
#include <string.h>

#include "gsttest.h"

static uint8_t pixel(uint64_t k, unsigned p, uint32_t r, uint32_t c)
{
    return (uint8_t)(k * 31 + p * 101 + r * 7 + c * 3);
}

static void publish(shmbus_pub *pub, shmbus_pixfmt fmt, uint32_t w, uint32_t h, uint64_t k)
{
    shmbus_frame_hdr g, *hdr;
    shmbus_msg *m;
    assert_int_equal(shmbus_frame_init(&g, fmt, w, h), 0);
    assert_int_equal(shmbus_frame_loan(pub, &g, &m, &hdr), 0);
    for (unsigned p = 0; p < hdr->nplanes; p++)
        for (uint32_t r = 0; r < shmbus_frame_rows(hdr, p); r++)
            for (uint32_t c = 0; c < shmbus_frame_row_bytes(hdr, p); c++)
                shmbus_frame_plane_mut(hdr, p)[(size_t)r * hdr->stride[p] + c] = pixel(k, p, r, c);
    hdr->frame_number = k;
    assert_int_equal(shmbus_frame_publish(pub, m, false), 0);
}

static const struct {
    shmbus_pixfmt fmt;
    const char *gst;
    uint32_t w, h;
} steps[] = {
    {SHMBUS_PIXFMT_RGB24, "RGB", 64, 48},    {SHMBUS_PIXFMT_YUV420P, "I420", 33, 17},
    {SHMBUS_PIXFMT_GRAY8, "GRAY8", 100, 10}, {SHMBUS_PIXFMT_YUYV422, "YUY2", 31, 9},
    {SHMBUS_PIXFMT_RGB24, "RGB", 64, 48},
};
#define PER_STEP 2

/* The sample is frame k of step s: its caps, and every visible byte. */
static void check_sample(GstSample *sample, size_t s, uint64_t k)
{
    GstVideoInfo info;
    assert_true(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
    if (strcmp(gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)), steps[s].gst) != 0 ||
        GST_VIDEO_INFO_WIDTH(&info) != (int)steps[s].w ||
        GST_VIDEO_INFO_HEIGHT(&info) != (int)steps[s].h)
        fail_msg("frame %" G_GUINT64_FORMAT ": caps %" GST_PTR_FORMAT ", expected %s %ux%u", k,
                 gst_sample_get_caps(sample), steps[s].gst, steps[s].w, steps[s].h);
    GstBuffer *buf = gst_sample_get_buffer(sample);
    assert_int_equal(GST_BUFFER_OFFSET(buf), k);
    GstVideoFrame vf;
    assert_true(gst_video_frame_map(&vf, &info, buf, GST_MAP_READ));
    shmbus_frame_hdr g;
    assert_int_equal(shmbus_frame_init(&g, steps[s].fmt, steps[s].w, steps[s].h), 0);
    for (unsigned p = 0; p < g.nplanes; p++)
        for (uint32_t r = 0; r < shmbus_frame_rows(&g, p); r++) {
            const uint8_t *row = (const uint8_t *)GST_VIDEO_FRAME_PLANE_DATA(&vf, p) +
                                 (size_t)r * GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
            for (uint32_t c = 0; c < shmbus_frame_row_bytes(&g, p); c++)
                if (row[c] != pixel(k, p, r, c) &&
                    !(g.format == SHMBUS_PIXFMT_YUYV422 && g.width % 2 && c == g.width * 2))
                    fail_msg("frame %" G_GUINT64_FORMAT " plane %u row %u byte %u: %u, "
                             "expected %u", k, p, r, c, row[c], pixel(k, p, r, c));
        }
    gst_video_frame_unmap(&vf);
}

static void test_caps_follow_size_and_format_changes_mid_stream(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 32, 16, 16);
    shmbus_domain *d = gt_domain(f);
    GstElement *rx = gt_start("shmbussrc %s topic=t eos-on-idle=true ! appsink name=out "
                              "sync=false",
                              gt_props(f));
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(d, "t", &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 30000), 0);
    uint64_t k = 0;
    for (size_t s = 0; s < G_N_ELEMENTS(steps); s++)
        for (int i = 0; i < PER_STEP; i++)
            publish(pub, steps[s].fmt, steps[s].w, steps[s].h, k++);
    k = 0;
    for (size_t s = 0; s < G_N_ELEMENTS(steps); s++)
        for (int i = 0; i < PER_STEP; i++, k++) {
            GstSample *sample = gt_pull(rx, "out", 30000);
            if (!sample)
                fail_msg("frame %" G_GUINT64_FORMAT " did not come", k);
            check_sample(sample, s, k);
            gst_sample_unref(sample);
        }
    assert_int_equal(shmbus_pub_close(pub), 0); /* the source ends: EOS */
    gt_expect_eos(rx, 30000);
    gt_stop(rx);
    assert_int_equal(shmbus_domain_close(d), 0);
}

/* shmbussink fills the header: frame numbers from 0, the capture time from the buffer's
 * timestamp on the (monotonic) pipeline clock, never after publishing, rate and aspect. */
static void test_sink_stamps_number_capture_time_rate_and_aspect(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 16, 8, 8);
    shmbus_domain *d = gt_domain(f);
    shmbus_sub *sub;
    assert_int_equal(shmbus_sub_open(d, "t", NULL, &sub), 0);
    GstElement *tx = gt_start("videotestsrc is-live=true num-buffers=5 ! video/x-raw,format=I420,"
                              "width=64,height=48,framerate=25/1,pixel-aspect-ratio=4/3 ! "
                              "shmbussink %s topic=t wait-subscribers=1",
                              gt_props(f));
    uint64_t last_capture = 0;
    for (uint64_t k = 0; k < 5; k++) {
        shmbus_msg *m;
        const shmbus_frame_hdr *h;
        assert_int_equal(shmbus_sub_recv(sub, 30000, &m), 0);
        assert_int_equal(shmbus_frame_get(m, &h), 0);
        assert_int_equal(h->frame_number, k);
        assert_int_equal(h->format, SHMBUS_PIXFMT_YUV420P);
        assert_true(h->flags & SHMBUS_FRAME_FLAG_HAS_FPS);
        assert_true(h->fps_num == 25 && h->fps_den == 1);
        assert_true(h->flags & SHMBUS_FRAME_FLAG_HAS_SAR);
        assert_true(h->sar_num == 4 && h->sar_den == 3);
        if (h->capture_ns == 0 || h->capture_ns > shmbus_msg_timestamp_ns(m) ||
            h->capture_ns <= last_capture)
            fail_msg("frame %" G_GUINT64_FORMAT ": captured at %" G_GUINT64_FORMAT
                     ", published at %" G_GUINT64_FORMAT ", previous capture %" G_GUINT64_FORMAT,
                     k, h->capture_ns, shmbus_msg_timestamp_ns(m), last_capture);
        last_capture = h->capture_ns;
        shmbus_msg_release(m);
    }
    gt_expect_eos(tx, 30000);
    gt_stop(tx);
    assert_int_equal(shmbus_sub_close(sub), 0);
    assert_int_equal(shmbus_domain_close(d), 0);
}

/* history=true: a pipeline started after the frames were published still gets the ones the
 * publisher holds (its history), oldest first. */
static void test_late_pipeline_with_history_gets_the_held_frames(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 16, 4, 4);
    shmbus_domain *d = gt_domain(f);
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(d, "t", &pub), 0);
    for (uint64_t k = 0; k < 6; k++) /* the history keeps the last 4 */
        publish(pub, steps[0].fmt, steps[0].w, steps[0].h, k);
    GstElement *rx = gt_start("shmbussrc %s topic=t history=true ! appsink name=out sync=false",
                              gt_props(f));
    for (uint64_t k = 2; k < 6; k++) {
        GstSample *sample = gt_pull(rx, "out", 30000);
        if (!sample)
            fail_msg("held frame %" G_GUINT64_FORMAT " did not come", k);
        check_sample(sample, 0, k);
        gst_sample_unref(sample);
    }
    gt_stop(rx);
    assert_int_equal(shmbus_pub_close(pub), 0);
    assert_int_equal(shmbus_domain_close(d), 0);
}

/* A frame whose header names pixel format 99: valid otherwise, but nobody can show it. */
static void test_a_pixel_format_gstreamer_lacks_is_an_error_message_not_a_crash(void **state)
{
    fixture *f = *state;
    gt_config(f, "256KiB", 16, 4, 2);
    shmbus_domain *d = gt_domain(f);
    GstElement *rx = gt_start("shmbussrc name=src %s topic=t ! fakesink", gt_props(f));
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(d, "t", &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 30000), 0);
    shmbus_frame_hdr g;
    shmbus_msg *m;
    assert_int_equal(shmbus_frame_init(&g, SHMBUS_PIXFMT_RGB24, 32, 8), 0);
    g.format = 99;
    assert_int_equal(shmbus_pub_loan(pub, shmbus_frame_message_size(&g), &m), 0);
    memcpy(shmbus_msg_data(m), &g, sizeof g);
    assert_int_equal(shmbus_pub_publish(pub, m, shmbus_frame_message_size(&g)), 0);
    GstMessage *msg = gt_wait_end(rx, 30000);
    if (!msg || GST_MESSAGE_TYPE(msg) != GST_MESSAGE_ERROR)
        fail_msg("expected an error message on the bus");
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &err, &dbg);
    assert_string_equal(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), "src");
    if (!strstr(err->message, "not a frame GStreamer can take") || !dbg ||
        !strstr(dbg, "unknown pixel format 99"))
        fail_msg("unclear error: %s (%s)", err->message, dbg ? dbg : "");
    g_error_free(err);
    g_free(dbg);
    gst_message_unref(msg);
    gt_stop(rx);
    assert_int_equal(shmbus_pub_close(pub), 0);
    assert_int_equal(shmbus_domain_close(d), 0);
}

int main(int argc, char **argv)
{
    gt_init(&argc, &argv);
#define T(t) cmocka_unit_test_setup_teardown(t, ct_setup, ct_teardown)
    const struct CMUnitTest tests[] = {
        T(test_caps_follow_size_and_format_changes_mid_stream),
        T(test_sink_stamps_number_capture_time_rate_and_aspect),
        T(test_late_pipeline_with_history_gets_the_held_frames),
        T(test_a_pixel_format_gstreamer_lacks_is_an_error_message_not_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
