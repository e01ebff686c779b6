/* Y4M parsing and reading (examples/camera/y4m.c): what is accepted, what each kind of bad
 * input gives, and that reading detects short and mis-sized frames. No shared memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shmbus_frame.h"
#include "y4m.h"

static int parse(const char *s, y4m_info *info, size_t *used, char *err, size_t errlen)
{
    return y4m_parse_header(s, strlen(s), info, used, err, errlen);
}

/* Parse s, expecting status want; returns the error text. */
static const char *expect(const char *s, int want)
{
    static char err[256];
    y4m_info info;
    size_t used;
    int rc = parse(s, &info, &used, err, sizeof err);
    if (rc != want)
        fail_msg("\"%s\": got %d (%s: %s), expected %d (%s)", s, rc, y4m_strerror(rc), err,
                 want, y4m_strerror(want));
    if (rc != Y4M_OK && err[0] == 0)
        fail_msg("\"%s\": error without a reason", s);
    return err;
}

static void test_ffmpeg_header_is_parsed_completely(void **state)
{
    (void)state;
    const char *h = "YUV4MPEG2 W1920 H1080 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG\nFRAME";
    y4m_info info;
    size_t used;
    assert_int_equal(parse(h, &info, &used, NULL, 0), Y4M_OK);
    assert_int_equal(used, strchr(h, '\n') - h + 1);
    assert_int_equal(info.width, 1920);
    assert_int_equal(info.height, 1080);
    assert_true(info.has_fps);
    assert_int_equal(info.fps_num, 30000);
    assert_int_equal(info.fps_den, 1001);
    assert_int_equal(info.interlace, 'p');
    assert_true(info.has_sar);
    assert_int_equal(info.sar_num, 1);
    assert_string_equal(info.colorspace, "420jpeg");
    assert_string_equal(info.extra, "XYSCSS=420JPEG");
    assert_int_equal(info.format, SHMBUS_PIXFMT_YUV420P);
    assert_int_equal(info.frame_size, 1920 * 1080 * 3 / 2);
}

static void test_every_supported_colorspace_maps_to_its_format_and_frame_size(void **state)
{
    (void)state;
    static const struct {
        const char *c;
        shmbus_pixfmt fmt;
        uint64_t size_35x19; /* odd sizes: chroma rounds up */
    } cases[] = {
        {"C420jpeg", SHMBUS_PIXFMT_YUV420P, 35 * 19 + 2 * 18 * 10},
        {"C420paldv", SHMBUS_PIXFMT_YUV420P, 35 * 19 + 2 * 18 * 10},
        {"C420mpeg2", SHMBUS_PIXFMT_YUV420P, 35 * 19 + 2 * 18 * 10},
        {"C420", SHMBUS_PIXFMT_YUV420P, 35 * 19 + 2 * 18 * 10},
        {"", SHMBUS_PIXFMT_YUV420P, 35 * 19 + 2 * 18 * 10}, /* no C: 4:2:0 */
        {"C422", SHMBUS_PIXFMT_YUV422P, 35 * 19 + 2 * 18 * 19},
        {"C444", SHMBUS_PIXFMT_YUV444P, 35 * 19 * 3},
        {"Cmono", SHMBUS_PIXFMT_GRAY8, 35 * 19},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "YUV4MPEG2 W35 H19 %s\n", cases[i].c);
        y4m_info info;
        size_t used;
        char err[256];
        assert_int_equal(parse(h, &info, &used, err, sizeof err), Y4M_OK);
        assert_int_equal(info.format, cases[i].fmt);
        assert_int_equal(info.frame_size, cases[i].size_35x19);
    }
}

static void test_truncated_header_is_reported_as_truncated(void **state)
{
    (void)state;
    expect("", Y4M_ETRUNC);
    expect("YUV4", Y4M_ETRUNC);
    expect("YUV4MPEG2", Y4M_ETRUNC);
    const char *e = expect("YUV4MPEG2 W33 H17", Y4M_ETRUNC);
    assert_non_null(strstr(e, "cut short"));
}

static void test_header_without_newline_in_1024_bytes_is_too_long(void **state)
{
    (void)state;
    char h[2000];
    memcpy(h, "YUV4MPEG2 W16 H16 X", 19);
    memset(h + 19, 'a', sizeof h - 20);
    h[sizeof h - 1] = 0;
    expect(h, Y4M_ELONG);
}

static void test_garbage_is_not_a_y4m_stream(void **state)
{
    (void)state;
    expect("\x89PNG\r\n\x1a\n", Y4M_EMAGIC);
    expect("YUV4MPEG W16 H16\n", Y4M_EMAGIC);
    const char *e = expect("YUV4MPEG2X W16 H16\n", Y4M_EMAGIC);
    assert_non_null(strstr(e, "YUV4MPEG2X"));
    expect("RIFF....WAVE", Y4M_EMAGIC);
    /* a control byte inside a header that starts right */
    e = expect("YUV4MPEG2 W16 H16 \x01\n", Y4M_EPARAM);
    assert_non_null(strstr(e, "0x01"));
    expect("YUV4MPEG2 W16 H16 \xff\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 ?\n", Y4M_EPARAM);
}

static void test_missing_width_or_height_is_named(void **state)
{
    (void)state;
    assert_non_null(strstr(expect("YUV4MPEG2 H17 C444\n", Y4M_ENOSIZE), "W (width)"));
    assert_non_null(strstr(expect("YUV4MPEG2 W17\n", Y4M_ENOSIZE), "H (height)"));
    expect("YUV4MPEG2\n", Y4M_ENOSIZE);
}

static void test_absurd_sizes_are_out_of_range(void **state)
{
    (void)state;
    expect("YUV4MPEG2 W0 H16\n", Y4M_ESIZE);
    expect("YUV4MPEG2 W16 H0\n", Y4M_ESIZE);
    assert_non_null(strstr(expect("YUV4MPEG2 W16385 H16\n", Y4M_ESIZE), "1..16384"));
    expect("YUV4MPEG2 W16 H4294967296\n", Y4M_ESIZE);
    expect("YUV4MPEG2 W99999999999999999999999 H16\n", Y4M_ESIZE);
    expect("YUV4MPEG2 W16384 H16384 C444\n", Y4M_OK); /* the largest: 768 MiB per frame */
}

static void test_malformed_parameters_are_rejected(void **state)
{
    (void)state;
    expect("YUV4MPEG2 W-16 H16\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16x H16\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W H16\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 W16 H16\n", Y4M_EPARAM); /* twice */
    expect("YUV4MPEG2 W16 H16 F30\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 F0:1\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 F30:0\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 Ix\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 Ipp\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 A1\n", Y4M_EPARAM);
    expect("YUV4MPEG2 W16 H16 a1:1\n", Y4M_EPARAM);
}

static void test_unsupported_colorspaces_say_which_are_supported(void **state)
{
    (void)state;
    const char *e = expect("YUV4MPEG2 W16 H16 C420p10\n", Y4M_ECOLOR);
    assert_non_null(strstr(e, "420jpeg"));
    expect("YUV4MPEG2 W16 H16 C411\n", Y4M_ECOLOR);
    expect("YUV4MPEG2 W16 H16 C444alpha\n", Y4M_ECOLOR);
    expect("YUV4MPEG2 W16 H16 C\n", Y4M_ECOLOR);
    expect("YUV4MPEG2 W16 H16 Cwaytoolongcolorspacename\n", Y4M_ECOLOR);
}

static void test_unknown_and_extension_parameters_are_kept_or_skipped(void **state)
{
    (void)state;
    y4m_info info;
    size_t used;
    assert_int_equal(parse("YUV4MPEG2 W16 H16 Z9 XA=1 Q XB=2\n", &info, &used, NULL, 0), Y4M_OK);
    assert_int_equal(info.ignored, 2);
    assert_string_equal(info.extra, "XA=1 XB=2");
    assert_false(info.extra_truncated);
    char h[300];
    snprintf(h, sizeof h, "YUV4MPEG2 W16 H16 X%060d X%060d\n", 1, 2);
    assert_int_equal(parse(h, &info, &used, NULL, 0), Y4M_OK);
    assert_true(info.extra_truncated); /* the second does not fit in 79 bytes */
    assert_int_equal(strlen(info.extra), 61);
}

static void test_header_formatting_reproduces_ffmpeg_headers_byte_for_byte(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "YUV4MPEG2 W1920 H1080 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG\n",
        "YUV4MPEG2 W33 H17 F25:1 Ip A0:0 C444 XYSCSS=444 XCOLORRANGE=LIMITED\n",
        "YUV4MPEG2 W640 H480 F30:1 It A1:1 Cmono\n",
        "YUV4MPEG2 W35 H19\n",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        y4m_info info, back;
        size_t used;
        char out[Y4M_MAX_HEADER];
        assert_int_equal(parse(headers[i], &info, &used, NULL, 0), Y4M_OK);
        int n = y4m_format_header(&info, out, sizeof out);
        assert_int_equal(n, strlen(headers[i]));
        assert_string_equal(out, headers[i]);
        /* and through a frame header, as camera-pub -> frame-sink carry it */
        shmbus_frame_hdr h;
        assert_int_equal(shmbus_frame_init(&h, info.format, info.width, info.height), 0);
        y4m_to_frame(&info, &h);
        assert_int_equal(y4m_from_frame(&h, &back), Y4M_OK);
        assert_int_equal(y4m_format_header(&back, out, sizeof out), n);
        assert_string_equal(out, headers[i]);
    }
    y4m_info info;
    size_t used;
    char small[10];
    assert_int_equal(parse(headers[0], &info, &used, NULL, 0), Y4M_OK);
    assert_int_equal(y4m_format_header(&info, small, sizeof small), -1);
}

static void test_frame_markers(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(y4m_parse_frame_marker("FRAME\nxx", 8, &used), Y4M_OK);
    assert_int_equal(used, 6);
    assert_int_equal(y4m_parse_frame_marker("FRAME Ip XFOO=1\n", 16, &used), Y4M_OK);
    assert_int_equal(used, 16);
    assert_int_equal(y4m_parse_frame_marker("FRAME", 5, &used), Y4M_ETRUNC);
    assert_int_equal(y4m_parse_frame_marker("FRA", 3, &used), Y4M_ETRUNC);
    assert_int_equal(y4m_parse_frame_marker("FRAMEX\n", 7, &used), Y4M_EFRAME);
    assert_int_equal(y4m_parse_frame_marker("\x10\x80\x80\x10\x10\x10", 6, &used), Y4M_EFRAME);
    assert_int_equal(y4m_parse_frame_marker("FRAME \x01\n", 8, &used), Y4M_EFRAME);
}

/* ---- reading from a descriptor ----------------------------------------------------------- */

/* A file holding len bytes of s, open for reading at its start. */
static int file_of(const void *s, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, len, f), len);
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    assert_true(fd >= 0);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* "YUV4MPEG2 W5 H3 C444\n" and n frames of 45 bytes, frame k filled with k; frame_bytes
 * changes the length actually written per frame. */
static size_t make_stream(char *buf, int n, size_t frame_bytes)
{
    size_t o = (size_t)sprintf(buf, "YUV4MPEG2 W5 H3 C444\n");
    for (int k = 0; k < n; k++) {
        o += (size_t)sprintf(buf + o, "FRAME\n");
        memset(buf + o, k + 1, frame_bytes);
        o += frame_bytes;
    }
    return o;
}

static void test_reader_reads_frames_then_a_clean_end(void **state)
{
    (void)state;
    char buf[1024], frame[45];
    int fd = file_of(buf, make_stream(buf, 3, 45));
    y4m_reader r;
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_OK);
    assert_int_equal(r.data_start, strlen("YUV4MPEG2 W5 H3 C444\n"));
    for (int k = 0; k < 3; k++) {
        assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_OK);
        assert_int_equal(frame[0], k + 1);
        assert_int_equal(frame[44], k + 1);
    }
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_EOF);
    assert_int_equal(r.frames, 3);
    close(fd);
}

static void test_reader_detects_a_short_last_frame(void **state)
{
    (void)state;
    char buf[1024], frame[45];
    size_t n = make_stream(buf, 2, 45) - 10; /* the second frame lacks 10 bytes */
    int fd = file_of(buf, n);
    y4m_reader r;
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_OK);
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_OK);
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_ESHORT);
    assert_non_null(strstr(r.err, "35 of its 45 bytes"));
    close(fd);
}

static void test_reader_detects_frames_of_the_wrong_size(void **state)
{
    (void)state;
    char buf[1024], frame[45];
    int fd = file_of(buf, make_stream(buf, 3, 40)); /* 40-byte frames, header says 45 */
    y4m_reader r;
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_OK);
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_OK);
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_EFRAME);
    assert_non_null(strstr(r.err, "not 45 bytes"));
    close(fd);
}

static void test_reader_reports_an_empty_input_and_a_cut_header(void **state)
{
    (void)state;
    y4m_reader r;
    int fd = file_of("", 0);
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_ETRUNC);
    assert_non_null(strstr(r.err, "empty"));
    close(fd);
    fd = file_of("YUV4MPEG2 W5", 12);
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_ETRUNC);
    close(fd);
    fd = file_of("GIF89a......\n", 13);
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_EMAGIC);
    assert_non_null(strstr(r.err, "GIF89a"));
    close(fd);
}

static void test_reader_refuses_a_buffer_smaller_than_a_frame(void **state)
{
    (void)state;
    char buf[1024], frame[45];
    int fd = file_of(buf, make_stream(buf, 1, 45));
    y4m_reader r;
    assert_int_equal(y4m_reader_open(&r, fd, -1), Y4M_OK);
    assert_int_equal(y4m_reader_next(&r, frame, 44), Y4M_ESIZE);
    close(fd);
}

static void test_reader_stops_when_the_cancel_descriptor_is_readable(void **state)
{
    (void)state;
    int in[2], cancel[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(cancel), 0);
    const char *h = "YUV4MPEG2 W5 H3 C444\n";
    assert_int_equal(write(in[1], h, strlen(h)), (ssize_t)strlen(h));
    y4m_reader r;
    assert_int_equal(y4m_reader_open(&r, in[0], cancel[0]), Y4M_OK);
    assert_int_equal(write(cancel[1], "x", 1), 1); /* the writer stays open: read would block */
    char frame[45];
    assert_int_equal(y4m_reader_next(&r, frame, sizeof frame), Y4M_EINTR);
    close(in[0]);
    close(in[1]);
    close(cancel[0]);
    close(cancel[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffmpeg_header_is_parsed_completely),
        cmocka_unit_test(test_every_supported_colorspace_maps_to_its_format_and_frame_size),
        cmocka_unit_test(test_truncated_header_is_reported_as_truncated),
        cmocka_unit_test(test_header_without_newline_in_1024_bytes_is_too_long),
        cmocka_unit_test(test_garbage_is_not_a_y4m_stream),
        cmocka_unit_test(test_missing_width_or_height_is_named),
        cmocka_unit_test(test_absurd_sizes_are_out_of_range),
        cmocka_unit_test(test_malformed_parameters_are_rejected),
        cmocka_unit_test(test_unsupported_colorspaces_say_which_are_supported),
        cmocka_unit_test(test_unknown_and_extension_parameters_are_kept_or_skipped),
        cmocka_unit_test(test_header_formatting_reproduces_ffmpeg_headers_byte_for_byte),
        cmocka_unit_test(test_frame_markers),
        cmocka_unit_test(test_reader_reads_frames_then_a_clean_end),
        cmocka_unit_test(test_reader_detects_a_short_last_frame),
        cmocka_unit_test(test_reader_detects_frames_of_the_wrong_size),
        cmocka_unit_test(test_reader_reports_an_empty_input_and_a_cut_header),
        cmocka_unit_test(test_reader_refuses_a_buffer_smaller_than_a_frame),
        cmocka_unit_test(test_reader_stops_when_the_cancel_descriptor_is_readable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
