/* The public frame format in real messages: shmbus_frame_loan / shmbus_frame_publish /
 * shmbus_frame_get through a real domain (one process: publisher and subscriber side by side),
 * the optional checksum, and the errors for bad geometry and for messages that are no frames. */
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

#define WAIT_MS 10000 /* a safety deadline, never a pass condition */

typedef struct fixture {
    char dir[64];
    shmbus_domain *d;
    shmbus_pub *p;
    shmbus_sub *s;
} fixture;

static void ok(int rc)
{
    if (rc != 0)
        fail_msg("%s: %s", shmbus_errname(rc), shmbus_last_error());
}

static int setup(void **state)
{
    static unsigned n;
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/shmbus-frame.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char name[32];
    snprintf(name, sizeof name, "fm%dx%u", (int)getpid(), n++);
    shmbus_domain_opts o = {.runtime_dir = f->dir, .config_path = FRAME_TEST_CONFIG};
    ok(shmbus_domain_open(name, &o, &f->d));
    ok(shmbus_pub_open(f->d, "cam", &f->p));
    ok(shmbus_sub_open(f->d, "cam", NULL, &f->s));
    ok(shmbus_sub_wait_publishers(f->s, 1, WAIT_MS));
    ok(shmbus_pub_wait_subscribers(f->p, 1, WAIT_MS));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ok(shmbus_sub_close(f->s));
    ok(shmbus_pub_close(f->p));
    ok(shmbus_domain_close(f->d));
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Loan a 33x17 yuv420p frame, fill its pixels with a pattern of `seed`, publish it. */
static void send_frame(fixture *f, uint8_t seed, bool checksum)
{
    shmbus_frame_hdr g, *h;
    shmbus_msg *m;
    ok(shmbus_frame_init(&g, SHMBUS_PIXFMT_YUV420P, 33, 17));
    ok(shmbus_frame_loan(f->p, &g, &m, &h));
    assert_ptr_equal(h, shmbus_msg_data(m));
    assert_int_equal(h->payload_size, g.payload_size);
    for (uint64_t i = 0; i < h->payload_size; i++)
        shmbus_frame_plane_mut(h, 0)[i] = (uint8_t)(i * 7 + seed);
    h->frame_number = seed;
    ok(shmbus_frame_publish(f->p, m, checksum));
}

static const shmbus_frame_hdr *recv_frame(fixture *f, shmbus_msg **m)
{
    const shmbus_frame_hdr *h;
    ok(shmbus_sub_recv(f->s, WAIT_MS, m));
    ok(shmbus_frame_get(*m, &h));
    assert_int_equal(shmbus_msg_length(*m), shmbus_frame_message_size(h));
    return h;
}

static void test_a_frame_crosses_intact_with_and_without_its_checksum(void **state)
{
    fixture *f = *state;
    for (int checksum = 1; checksum >= 0; checksum--) {
        send_frame(f, (uint8_t)(40 + checksum), checksum);
        shmbus_msg *m;
        const shmbus_frame_hdr *h = recv_frame(f, &m);
        assert_int_equal(h->format, SHMBUS_PIXFMT_YUV420P);
        assert_int_equal(h->width, 33);
        assert_int_equal(h->height, 17);
        assert_int_equal(h->frame_number, 40 + checksum);
        assert_int_equal(shmbus_frame_has_checksum(h), checksum);
        assert_true(shmbus_frame_checksum_ok(h));
        for (uint64_t i = 0; i < h->payload_size; i++)
            assert_int_equal(shmbus_frame_plane(h, 0)[i], (uint8_t)(i * 7 + 40 + checksum));
        ok(shmbus_msg_release(m));
    }
}

static void test_a_changed_pixel_fails_the_checksum(void **state)
{
    (void)state;
    uint8_t buf[SHMBUS_FRAME_HEADER_SIZE + 64];
    shmbus_frame_hdr *h = (shmbus_frame_hdr *)buf;
    ok(shmbus_frame_init(h, SHMBUS_PIXFMT_GRAY8, 8, 8));
    memset(shmbus_frame_plane_mut(h, 0), 9, h->payload_size);
    h->checksum = shmbus_frame_checksum(shmbus_frame_plane(h, 0), h->payload_size);
    h->flags |= SHMBUS_FRAME_FLAG_CHECKSUM;
    assert_true(shmbus_frame_checksum_ok(h));
    shmbus_frame_plane_mut(h, 0)[63] ^= 1;
    assert_false(shmbus_frame_checksum_ok(h));
    h->flags &= ~SHMBUS_FRAME_FLAG_CHECKSUM; /* no checksum: nothing to fail */
    assert_true(shmbus_frame_checksum_ok(h));
}

static void test_bad_geometry_is_refused_before_a_loan(void **state)
{
    fixture *f = *state;
    shmbus_frame_hdr g, *h;
    shmbus_msg *m;
    ok(shmbus_frame_init(&g, SHMBUS_PIXFMT_RGB24, 16, 16));
    g.stride[0] = 3; /* shorter than a row */
    assert_int_equal(shmbus_frame_loan(f->p, &g, &m, &h), SHMBUS_EINVAL);
    assert_null(m);
    assert_non_null(strstr(shmbus_last_error(), "frame geometry"));
    assert_non_null(strstr(shmbus_last_error(), "stride"));
    ok(shmbus_frame_init(&g, SHMBUS_PIXFMT_RGB24, 16, 16));
    g.payload_size = UINT64_MAX - 100; /* message size would wrap */
    assert_int_equal(shmbus_frame_loan(f->p, &g, &m, &h), SHMBUS_EINVAL);
}

static void test_a_message_that_is_no_frame_is_refused_with_the_reason(void **state)
{
    fixture *f = *state;
    shmbus_msg *m;
    ok(shmbus_pub_loan(f->p, 300, &m));
    memset(shmbus_msg_data(m), 0xab, 300);
    ok(shmbus_pub_publish(f->p, m, 300));
    ok(shmbus_sub_recv(f->s, WAIT_MS, &m));
    const shmbus_frame_hdr *h = (const shmbus_frame_hdr *)1;
    assert_int_equal(shmbus_frame_get(m, &h), SHMBUS_EINVAL);
    assert_null(h);
    assert_non_null(strstr(shmbus_last_error(), "not a camera frame"));
    ok(shmbus_msg_release(m));
    /* a real frame whose published length is cut short */
    shmbus_frame_hdr g, *w;
    ok(shmbus_frame_init(&g, SHMBUS_PIXFMT_GRAY8, 64, 64));
    ok(shmbus_frame_loan(f->p, &g, &m, &w));
    ok(shmbus_pub_publish(f->p, m, shmbus_frame_message_size(&g) - 1));
    ok(shmbus_sub_recv(f->s, WAIT_MS, &m));
    assert_int_equal(shmbus_frame_get(m, &h), SHMBUS_EINVAL);
    assert_non_null(strstr(shmbus_last_error(), "not inside"));
    ok(shmbus_msg_release(m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_frame_crosses_intact_with_and_without_its_checksum,
                                        setup, teardown),
        cmocka_unit_test(test_a_changed_pixel_fails_the_checksum),
        cmocka_unit_test_setup_teardown(test_bad_geometry_is_refused_before_a_loan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_message_that_is_no_frame_is_refused_with_the_reason,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
