/* The camera frame header (api/shmbus_frame.h): geometry of each format, validation of
 * what a subscriber receives, the checksum, and the colour conversions. No shared memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "convert.h"
#include "shmbus_frame.h"
#include "pattern.h"

static void test_geometry_of_each_format_at_an_odd_size(void **state)
{
    (void)state;
    static const struct {
        shmbus_pixfmt fmt;
        unsigned planes;
        uint32_t stride0, stride1, rows1;
    } cases[] = {
        {SHMBUS_PIXFMT_RGB24, 1, 99, 0, 0},     {SHMBUS_PIXFMT_GRAY8, 1, 33, 0, 0},
        {SHMBUS_PIXFMT_YUV420P, 3, 33, 17, 9},  {SHMBUS_PIXFMT_YUV422P, 3, 33, 17, 17},
        {SHMBUS_PIXFMT_YUV444P, 3, 33, 33, 17}, {SHMBUS_PIXFMT_YUYV422, 1, 68, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shmbus_frame_hdr h;
        assert_int_equal(shmbus_frame_init(&h, cases[i].fmt, 33, 17), 0);
        assert_int_equal(h.nplanes, cases[i].planes);
        assert_int_equal(h.stride[0], cases[i].stride0);
        assert_int_equal(h.payload_offset % SHMBUS_FRAME_ALIGN, 0);
        uint64_t total = h.plane_size[0];
        if (h.nplanes == 3) {
            assert_int_equal(h.stride[1], cases[i].stride1);
            assert_int_equal(shmbus_frame_rows(&h, 1), cases[i].rows1);
            assert_int_equal(h.plane_offset[1], h.plane_size[0]);
            total += 2 * h.plane_size[1];
        }
        assert_int_equal(h.payload_size, total);
        const shmbus_frame_hdr *out;
        assert_int_equal(shmbus_frame_check(&h, shmbus_frame_message_size(&h), &out, NULL, 0), 0);
        assert_ptr_equal(out, &h);
        assert_string_equal(
            shmbus_pixfmt_name(cases[i].fmt),
            shmbus_pixfmt_name(shmbus_pixfmt_parse(shmbus_pixfmt_name(cases[i].fmt))));
    }
    shmbus_frame_hdr h;
    assert_int_equal(shmbus_frame_init(&h, SHMBUS_PIXFMT_RGB24, 0, 10), SHMBUS_EINVAL);
    assert_int_equal(shmbus_frame_init(&h, SHMBUS_PIXFMT_RGB24, 16385, 10), SHMBUS_EINVAL);
    assert_int_equal(shmbus_frame_init(&h, (shmbus_pixfmt)99, 16, 16), SHMBUS_EINVAL);
    assert_int_equal(shmbus_frame_init_stride(&h, SHMBUS_PIXFMT_RGB24, 16, 16, 47),
                     SHMBUS_EINVAL); /* < 48 */
    assert_int_equal(shmbus_frame_init_stride(&h, SHMBUS_PIXFMT_YUV420P, 16, 16, 64), 0);
    assert_int_equal(h.stride[1], 32);
}

/* A valid 16x8 yuv420p message in buf (header + pixels), as a publisher would write it. */
static uint64_t make_frame(uint8_t *buf)
{
    shmbus_frame_hdr *h = (shmbus_frame_hdr *)buf;
    assert_int_equal(shmbus_frame_init(h, SHMBUS_PIXFMT_YUV420P, 16, 8), 0);
    for (uint64_t i = 0; i < h->payload_size; i++)
        shmbus_frame_plane_mut(h, 0)[i] = (uint8_t)(i * 7);
    h->checksum = shmbus_frame_checksum(shmbus_frame_plane(h, 0), h->payload_size);
    return shmbus_frame_message_size(h);
}

static void test_check_rejects_every_inconsistent_header(void **state)
{
    (void)state;
    _Alignas(64) uint8_t buf[1024];
    uint64_t len = make_frame(buf);
    shmbus_frame_hdr good = *(shmbus_frame_hdr *)buf;
    const shmbus_frame_hdr *out;
    char why[200];
    assert_int_equal(shmbus_frame_check(buf, len, &out, why, sizeof why), 0);
#define BREAKS(stmt, reason)                                                                       \
    do {                                                                                           \
        shmbus_frame_hdr *h = (shmbus_frame_hdr *)buf;                                             \
        *h = good;                                                                                 \
        stmt;                                                                                      \
        assert_int_equal(shmbus_frame_check(buf, len, &out, why, sizeof why), SHMBUS_EINVAL);      \
        assert_null(out);                                                                          \
        if (!strstr(why, reason))                                                                  \
            fail_msg("%s: reason \"%s\" lacks \"%s\"", #stmt, why, reason);                        \
    } while (0)
    BREAKS(h->magic ^= 1, "not a camera frame");
    BREAKS(h->version = 1, "version");
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
    *(shmbus_frame_hdr *)buf = good;
    assert_int_equal(shmbus_frame_check(buf, len - 1, &out, why, sizeof why), SHMBUS_EINVAL);
    assert_int_equal(shmbus_frame_check(buf, 100, &out, why, sizeof why), SHMBUS_EINVAL);
    assert_non_null(strstr(why, "shorter than a frame header"));
}

static void test_checksum_sees_any_single_changed_bit_and_the_length(void **state)
{
    (void)state;
    uint8_t data[203];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 5);
    uint64_t sum = shmbus_frame_checksum(data, sizeof data);
    assert_int_equal(shmbus_frame_checksum(data, sizeof data), sum); /* deterministic */
    for (size_t i = 0; i < sizeof data; i++)
        for (int b = 0; b < 8; b++) {
            data[i] ^= (uint8_t)(1u << b);
            assert_int_not_equal(shmbus_frame_checksum(data, sizeof data), sum);
            data[i] ^= (uint8_t)(1u << b);
        }
    /* two flips of the top bit in the same lane do not cancel */
    data[7] ^= 0x80;
    data[39] ^= 0x80;
    assert_int_not_equal(shmbus_frame_checksum(data, sizeof data), sum);
    data[7] ^= 0x80;
    data[39] ^= 0x80;
    uint8_t zeros[64] = {0};
    assert_int_not_equal(shmbus_frame_checksum(zeros, 63), shmbus_frame_checksum(zeros, 64));
    assert_int_not_equal(shmbus_frame_checksum(zeros, 0), shmbus_frame_checksum(zeros, 1));
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
    shmbus_frame_hdr *rgb = aligned_alloc(64, 64 * 1024), *f = aligned_alloc(64, 64 * 1024);
    assert_int_equal(shmbus_frame_init(rgb, SHMBUS_PIXFMT_RGB24, w, h), 0);
    pattern_render(&p, rgb, 1234);
    for (int fmt = SHMBUS_PIXFMT_GRAY8; fmt < SHMBUS_PIXFMT_COUNT; fmt++) {
        if (fmt == SHMBUS_PIXFMT_GRAY8)
            continue; /* no colour to compare */
        assert_int_equal(shmbus_frame_init(f, (shmbus_pixfmt)fmt, w, h), 0);
        pattern_render(&p, f, 1234);
        /* luma-resolution rows where chroma is constant around: compare row 20 at x = 40 */
        conv_get_rgb_row(rgb, 20, ref);
        conv_get_rgb_row(f, 20, row);
        for (int c = 0; c < 3; c++)
            if (abs(ref[40 * 3 + c] - row[40 * 3 + c]) > 4)
                fail_msg("%s: pixel (40,20) is %d,%d,%d, rgb24 has %d,%d,%d",
                         shmbus_pixfmt_name(fmt), row[120], row[121], row[122], ref[120], ref[121],
                         ref[122]);
    }
    /* the frame number changes the picture */
    uint64_t a = shmbus_frame_checksum(shmbus_frame_plane(rgb, 0), rgb->payload_size);
    pattern_render(&p, rgb, 1235);
    assert_int_not_equal(shmbus_frame_checksum(shmbus_frame_plane(rgb, 0), rgb->payload_size), a);
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
