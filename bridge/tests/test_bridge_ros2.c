/* ROS 2 compatibility without ROS 2: ros2-image-peer, built only from the ROS 2 message IDL
 * and Cyclone DDS (it does not link shmbus), reads the images a bridge sends on
 * rt/camera/front as sensor_msgs::msg::dds_::Image_ and checks every field and pixel; and the
 * images it publishes come out of the bridge as frames on the local bus. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_harness.h"

#define TOPIC "camera/front"

static void test_ros2_subscriber_checks_every_field_of_what_the_bridge_sends(void **state)
{
    bh_env *e = *state;
    static const struct {
        shmbus_pixfmt fmt;
        const char *encoding;
    } cases[] = {{SHMBUS_PIXFMT_RGB24, "rgb8"},
                 {SHMBUS_PIXFMT_GRAY8, "mono8"},
                 {SHMBUS_PIXFMT_YUYV422, "yuv422_yuy2"}};
    enum { N = 15 };
    bh_write_bridge_config(e, &e->a,
                           "\"out\": [{\"topic\": \"camera/front\", \"type\": \"image\", "
                           "\"frame_id\": \"front_optical\", \"qos\": {\"reliability\": "
                           "\"reliable\", \"max_blocking_ms\": 2000}}]");
    bh_start_bridge(e, &e->a);
    bh_open(&e->a, "test-a");
    shmbus_pub *pub;
    assert_int_equal(shmbus_pub_open(e->a.d, TOPIC, &pub), 0);
    assert_int_equal(shmbus_pub_wait_subscribers(pub, 1, 10000), 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char out[160], count[8];
        bh_path(e, "peer-sub.json", out, sizeof out);
        snprintf(count, sizeof count, "%d", N);
        const char *argv[] = {"ros2-image-peer",
                              "sub",
                              "--topic",
                              "rt/camera/front",
                              "--count",
                              count,
                              "--width",
                              "320",
                              "--height",
                              "240",
                              "--encoding",
                              cases[c].encoding,
                              "--frame-id",
                              "front_optical",
                              "--reliable",
                              "--timeout",
                              "60",
                              NULL};
        pid_t peer = bh_spawn(e, &e->a, argv, out);
        bh_wait_stat(&e->a, "out", TOPIC, "matched", 1, 30000);
        bh_sleep_ms(300);
        for (unsigned i = 0; i < N; i++) {
            bh_publish_frame(pub, cases[c].fmt, 320, 240, i);
            bh_sleep_ms(20);
        }
        int rc = bh_wait(e, peer, 60000);
        char *summary = bh_slurp(out);
        if (rc != 0) {
            bh_print_log(&e->a);
            fail_msg("%s: ros2-image-peer exited %d: %s", cases[c].encoding, rc, summary);
        }
        /* the stamp is the capture time, to well within a millisecond */
        double err = bh_json_number(out, "max_stamp_error_us");
        if (!(err < 1000))
            fail_msg("%s: stamp off by %.1f us: %s", cases[c].encoding, err, summary);
        free(summary);
        /* the peer has left: wait until the writer sees no reader before the next case */
        for (int i = 0; i < 500 && bh_stat(&e->a, "out", TOPIC, "matched") != 0; i++)
            bh_sleep_ms(20);
    }
    bh_expect_stat(&e->a, "out", TOPIC, "forwarded", 3 * N);
    assert_int_equal(shmbus_pub_close(pub), 0);
}

static void test_images_from_a_ros2_publisher_become_frames_on_the_local_bus(void **state)
{
    bh_env *e = *state;
    static const struct {
        shmbus_pixfmt fmt;
        const char *encoding;
        unsigned bpp;
    } cases[] = {{SHMBUS_PIXFMT_RGB24, "rgb8", 3},
                 {SHMBUS_PIXFMT_GRAY8, "mono8", 1},
                 {SHMBUS_PIXFMT_YUYV422, "yuv422_yuy2", 2}};
    enum { N = 10 };
    bh_write_bridge_config(e, &e->b,
                           "\"in\": [{\"topic\": \"camera/front\", \"type\": \"image\", "
                           "\"qos\": {\"reliability\": \"reliable\"}}]");
    bh_start_bridge(e, &e->b);
    bh_open(&e->b, "test-b");
    shmbus_sub *sub;
    assert_int_equal(shmbus_sub_open(e->b.d, TOPIC, NULL, &sub), 0);
    assert_int_equal(shmbus_sub_wait_publishers(sub, 1, 10000), 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char count[8];
        snprintf(count, sizeof count, "%d", N);
        const char *argv[] = {"ros2-image-peer", "pub", "--topic",    "rt/camera/front",
                              "--count",         count, "--width",    "160",
                              "--height",        "120", "--encoding", cases[c].encoding,
                              "--reliable",      NULL};
        pid_t peer = bh_spawn(e, &e->b, argv, NULL);
        for (unsigned i = 0; i < N; i++) {
            shmbus_msg *m;
            int rc = shmbus_sub_recv(sub, 20000, &m);
            if (rc != 0) {
                bh_print_log(&e->b);
                fail_msg("%s: frame %u: %s", cases[c].encoding, i, shmbus_strerror(rc));
            }
            const shmbus_frame_hdr *h;
            assert_int_equal(shmbus_frame_get(m, &h), 0);
            assert_int_equal(h->format, cases[c].fmt);
            assert_int_equal(h->width, 160);
            assert_int_equal(h->height, 120);
            assert_int_equal(h->stride[0], 160 * cases[c].bpp);
            uint64_t idx;
            assert_true(bh_frame_ok(m, &idx)); /* pixels and capture time from the stamp */
            assert_int_equal(idx, i);
            shmbus_msg_release(m);
        }
        assert_int_equal(bh_wait(e, peer, 30000), 0);
    }
    bh_expect_stat(&e->b, "in", TOPIC, "forwarded", 3 * N);
    assert_int_equal(shmbus_sub_close(sub), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BH_TEST(test_ros2_subscriber_checks_every_field_of_what_the_bridge_sends),
        BH_TEST(test_images_from_a_ros2_publisher_become_frames_on_the_local_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
