/* The camera frame header (examples/camera/frame.h): geometry of each format, validation of
 * what a subscriber receives, the checksum, and the colour conversions. No shared memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "convert.h"
#include "frame.h"
#include "pattern.h"

static void test_geometry_of_each_format_at_an_odd_size(void **state)
{
    (void)state;
    static const struct {
        cam_pixfmt fmt;
        unsigned planes;
        uint32_t stride0, stride1, rows1;
    } cases[] = {
        {CAM_FMT_RGB24, 1, 99, 0, 0},      {CAM_FMT_GRAY8, 1, 33, 0, 0},
        {CAM_FMT_YUV420P, 3, 33, 17, 9},   {CAM_FMT_YUV422P, 3, 33, 17, 17},
        {CAM_FMT_YUV444P, 3, 33, 33, 17},  {CAM_FMT_YUYV422, 1, 68, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cam_frame_hdr h;
        assert_int_equal(cam_frame_init(&h, cases[i].fmt, 33, 17), 0);
        assert_int_equal(h.nplanes, cases[i].planes);
        assert_int_equal(h.stride[0], cases[i].stride0);
        assert_int_equal(h.payload_offset % CAM_PAYLOAD_ALIGN, 0);
        uint64_t total = h.plane_size[0];
        if (h.nplanes == 3) {
            assert_int_equal(h.stride[1], cases[i].stride1);
            assert_int_equal(cam_plane_rows(&h, 1), cases[i].rows1);
            assert_int_equal(h.plane_offset[1], h.plane_size[0]);
            total += 2 * h.plane_size[1];
        }
        assert_int_equal(h.payload_size, total);
        const cam_frame_hdr *out;
        assert_int_equal(cam_frame_check(&h, cam_frame_message_size(&h), &out, NULL, 0), -1 + 1);
        assert_ptr_equal(out, &h);
        assert_string_equal(cam_pixfmt_name(cases[i].fmt),
                            cam_pixfmt_name(cam_pixfmt_parse(cam_pixfmt_name(cases[i].fmt))));
    }
    cam_frame_hdr h;
    assert_int_equal(cam_frame_init(&h, CAM_FMT_RGB24, 0, 10), -1);
    assert_int_equal(cam_frame_init(&h, CAM_FMT_RGB24, 16385, 10), -1);
    assert_int_equal(cam_frame_init(&h, (cam_pixfmt)99, 16, 16), -1);
    assert_int_equal(cam_frame_init_stride(&h, CAM_FMT_RGB24, 16, 16, 47), -1); /* < 48 */
    assert_int_equal(cam_frame_init_stride(&h, CAM_FMT_YUV420P, 16, 16, 64), 0);
    assert_int_equal(h.stride[1], 32);
}

/* A valid 16x8 yuv420p message in buf (header + pixels), as a publisher would write it. */
static uint64_t make_frame(uint8_t *buf)
{
    cam_frame_hdr *h = (cam_frame_hdr *)buf;
    assert_int_equal(cam_frame_init(h, CAM_FMT_YUV420P, 16, 8), 0);
    for (uint64_t i = 0; i < h->payload_size; i++)
        cam_plane_mut(h, 0)[i] = (uint8_t)(i * 7);
    h->checksum = cam_checksum(cam_plane(h, 0), h->payload_size);
    return cam_frame_message_size(h);
}

static void test_check_rejects_every_inconsistent_header(void **state)
{
    (void)state;
    _Alignas(64) uint8_t buf[1024];
    uint64_t len = make_frame(buf);
    cam_frame_hdr good = *(cam_frame_hdr *)buf;
    const cam_frame_hdr *out;
    char why[200];
    assert_int_equal(cam_frame_check(buf, len, &out, why, sizeof why), 0);
#define BREAKS(stmt, reason)                                                                  \
    do {                                                                                      \
        cam_frame_hdr *h = (cam_frame_hdr *)buf;                                              \
        *h = good;                                                                            \
        stmt;                                                                                 \
        assert_int_equal(cam_frame_check(buf, len, &out, why, sizeof why), -1);               \
        assert_null(out);                                                                     \
        if (!strstr(why, reason))                                                             \
            fail_msg("%s: reason \"%s\" lacks \"%s\"", #stmt, why, reason);                   \
    } while (0)
    BREAKS(h->magic ^= 1, "not a camera frame");
    BREAKS(h->version = 2, "version");
    BREAKS(h->header_size = 128, "header size");
    BREAKS(h->format = 0, "pixel format");
    BREAKS(h->format = 77, "pixel format");
    BREAKS(h->width = 0, "out of range");
    BREAKS(h->height = 100000, "out of range");
    BREAKS(h->nplanes = 1, "planes");
    BREAKS(h->payload_offset = 200, "not inside");
    BREAKS(h->payload_offset = 320, "not inside");
    BREAKS(h->payload_size = len, "not inside");
    BREAKS(h->payload_offset = UINT64_MAX - 63, "not inside");
    BREAKS(h->stride[1] = 4, "shorter than a row");
    BREAKS(h->plane_size[2] += 1, "stride x rows");
    BREAKS(h->plane_offset[2] = h->payload_size - 10, "not inside");
    BREAKS(h->plane_offset[1] = UINT64_MAX, "not inside");
    BREAKS(memset(h->colorspace, 'x', sizeof h->colorspace), "unterminated");
    BREAKS(memset(h->extra, 'x', sizeof h->extra), "unterminated");
#undef BREAKS
    *(cam_frame_hdr *)buf = good;
    assert_int_equal(cam_frame_check(buf, len - 1, &out, why, sizeof why), -1);
    assert_int_equal(cam_frame_check(buf, 100, &out, why, sizeof why), -1);
    assert_non_null(strstr(why, "shorter than a frame header"));
}

static void test_checksum_sees_any_single_changed_bit_and_the_length(void **state)
{
    (void)state;
    uint8_t data[203];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 5);
    uint64_t sum = cam_checksum(data, sizeof data);
    assert_int_equal(cam_checksum(data, sizeof data), sum); /* deterministic */
    for (size_t i = 0; i < sizeof data; i++)
        for (int b = 0; b < 8; b++) {
            data[i] ^= (uint8_t)(1u << b);
            assert_int_not_equal(cam_checksum(data, sizeof data), sum);
            data[i] ^= (uint8_t)(1u << b);
        }
    /* two flips of the top bit in the same lane do not cancel */
    data[7] ^= 0x80;
    data[39] ^= 0x80;
    assert_int_not_equal(cam_checksum(data, sizeof data), sum);
    data[7] ^= 0x80;
    data[39] ^= 0x80;
    uint8_t zeros[64] = {0};
    assert_int_not_equal(cam_checksum(zeros, 63), cam_checksum(zeros, 64));
    assert_int_not_equal(cam_checksum(zeros, 0), cam_checksum(zeros, 1));
}

static void test_rgb_survives_a_trip_through_yuv_within_rounding(void **state)
{
    (void)state;
    for (int r = 0; r < 256; r += 15)
        for (int g = 0; g < 256; g += 15)
            for (int b = 0; b < 256; b += 15)
                for (int full = 0; full < 2; full++) {
                    uint8_t in[3] = {(uint8_t)r, (uint8_t)g, (uint8_t)b}, out[3], y, u, v;
                    conv_rgb_to_yuv(in, full, &y, &u, &v);
                    conv_yuv_to_rgb(y, u, v, full, out);
                    for (int c = 0; c < 3; c++)
                        if (abs(in[c] - out[c]) > 3)
                            fail_msg("rgb %d,%d,%d (%s) came back as %d,%d,%d", r, g, b,
                                     full ? "full" : "limited", out[0], out[1], out[2]);
                }
}

static void test_pattern_draws_the_same_picture_in_every_format(void **state)
{
    (void)state;
    const uint32_t w = 64, h = 48;
    pattern p;
    assert_int_equal(pattern_init(&p, w, h), 0);
    uint8_t *ref = malloc(w * 3), *row = malloc(w * 3);
    cam_frame_hdr *rgb = aligned_alloc(64, 64 * 1024), *f = aligned_alloc(64, 64 * 1024);
    assert_int_equal(cam_frame_init(rgb, CAM_FMT_RGB24, w, h), 0);
    pattern_render(&p, rgb, 1234);
    for (int fmt = CAM_FMT_GRAY8; fmt < CAM_FMT_COUNT; fmt++) {
        if (fmt == CAM_FMT_GRAY8)
            continue; /* no colour to compare */
        assert_int_equal(cam_frame_init(f, (cam_pixfmt)fmt, w, h), 0);
        pattern_render(&p, f, 1234);
        /* luma-resolution rows where chroma is constant around: compare row 20 at x = 40 */
        conv_get_rgb_row(rgb, 20, ref);
        conv_get_rgb_row(f, 20, row);
        for (int c = 0; c < 3; c++)
            if (abs(ref[40 * 3 + c] - row[40 * 3 + c]) > 4)
                fail_msg("%s: pixel (40,20) is %d,%d,%d, rgb24 has %d,%d,%d",
                         cam_pixfmt_name(fmt), row[120], row[121], row[122], ref[120], ref[121],
                         ref[122]);
    }
    /* the frame number changes the picture */
    uint64_t a = cam_checksum(cam_plane(rgb, 0), rgb->payload_size);
    pattern_render(&p, rgb, 1235);
    assert_int_not_equal(cam_checksum(cam_plane(rgb, 0), rgb->payload_size), a);
    free(ref);
    free(row);
    free(rgb);
    free(f);
    pattern_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_of_each_format_at_an_odd_size),
        cmocka_unit_test(test_check_rejects_every_inconsistent_header),
        cmocka_unit_test(test_checksum_sees_any_single_changed_bit_and_the_length),
        cmocka_unit_test(test_rgb_survives_a_trip_through_yuv_within_rounding),
        cmocka_unit_test(test_pattern_draws_the_same_picture_in_every_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
