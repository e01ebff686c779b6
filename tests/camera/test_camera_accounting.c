/* What the camera programs' summaries account for, with real processes (camtest.h):
 *
 *   - the identity, per subscriber: every frame published after it joined is received or
 *     counted lost by cause: sent = received + invalid + expired + dropped + overflow
 *     (frame-stats' "received" counts valid frames, its "invalid" the rest);
 *   - frames published with --no-checksum are counted as unchecked, not as errors.
 *
 * The subscribers start first and camera-pub waits for them (--wait-subs), so every frame it
 * sends comes after they joined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "camtest.h"

/* sent of pub.json = received + invalid + expired + dropped + overflow of `sub` */
static void assert_identity(fixture *f, const char *sub)
{
    double sent = ct_summary(f, "pub.json", "sent");
    double got = ct_summary(f, sub, "received") + ct_summary(f, sub, "invalid");
    double lost = ct_summary(f, sub, "expired") + ct_summary(f, sub, "dropped") +
                  ct_summary(f, sub, "overflow");
    if (got + lost != sent)
        fail_msg("%s: received+invalid %.0f + expired+dropped+overflow %.0f != sent %.0f", sub,
                 got, lost, sent);
}

static void test_every_frame_sent_is_received_or_counted_lost_by_each_subscriber(void **state)
{
    fixture *f = *state;
    char sum[3][128];
    const char *names[] = {"fast.json", "slow.json", "pub.json"};
    for (int i = 0; i < 3; i++)
        ct_path(f, names[i], sum[i], sizeof sum[i]);
    pid_t fast = ct_spawn(f, "fast", CAMERA_TEST_CONFIG, NULL,
                          (const char *[]){"frame-stats", "-q", "--summary", sum[0], NULL});
    /* slower than the publisher: it falls behind the history and loses frames, counted */
    pid_t slow = ct_spawn(f, "slow", CAMERA_TEST_CONFIG, NULL,
                          (const char *[]){"frame-stats", "-q", "--delay-ms", "30", "--summary",
                                           sum[1], "--name", "slow", NULL});
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                         (const char *[]){"camera-pub", "-q", "--size", "160x120", "--fps",
                                          "200", "--count", "300", "--wait-subs", "2",
                                          "--summary", sum[2], NULL});
    ct_expect_exit(f, pub, 0, 60000);
    ct_expect_exit(f, fast, 0, 20000);
    ct_expect_exit(f, slow, 0, 20000);
    ASSERT_SUMMARY(f, "pub.json", "sent", ==, 300);
    assert_identity(f, "fast.json");
    assert_identity(f, "slow.json");
    ASSERT_SUMMARY(f, "slow.json", "lost", >, 0); /* the slow one did lose some */
    ASSERT_SUMMARY(f, "slow.json", "checksum_errors", ==, 0);
}

static void test_frames_without_checksum_are_counted_unchecked_not_errors(void **state)
{
    fixture *f = *state;
    char sum[3][128], dir[128];
    const char *names[] = {"stats.json", "sink.json", "pub.json"};
    for (int i = 0; i < 3; i++)
        ct_path(f, names[i], sum[i], sizeof sum[i]);
    ct_path(f, "ppm", dir, sizeof dir);
    pid_t stats = ct_spawn(f, "stats", CAMERA_TEST_CONFIG, NULL,
                           (const char *[]){"frame-stats", "-q", "--summary", sum[0], NULL});
    pid_t sink = ct_spawn(f, "sink", CAMERA_TEST_CONFIG, NULL,
                          (const char *[]){"frame-sink", "-q", "--ppm", dir, "--every", "10",
                                           "--summary", sum[1], NULL});
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                         (const char *[]){"camera-pub", "-q", "--no-checksum", "--size",
                                          "160x120", "--fps", "50", "--count", "40",
                                          "--wait-subs", "2", "--summary", sum[2], NULL});
    ct_expect_exit(f, pub, 0, 30000);
    ct_expect_exit(f, stats, 0, 20000); /* unchecked is no failure */
    ct_expect_exit(f, sink, 0, 20000);
    ASSERT_SUMMARY(f, "pub.json", "sent", ==, 40);
    double got = ct_summary(f, "stats.json", "received");
    assert_true(got > 0);
    ASSERT_SUMMARY(f, "stats.json", "unchecked", ==, got);
    ASSERT_SUMMARY(f, "stats.json", "checksum_errors", ==, 0);
    ASSERT_SUMMARY(f, "stats.json", "invalid", ==, 0);
    ASSERT_SUMMARY(f, "sink.json", "unchecked", ==, ct_summary(f, "sink.json", "received"));
    ASSERT_SUMMARY(f, "sink.json", "checksum_errors", ==, 0);
    assert_true(ct_summary(f, "sink.json", "snapshots") > 0); /* unchecked frames are used */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_every_frame_sent_is_received_or_counted_lost_by_each_subscriber, ct_setup,
            ct_teardown),
        cmocka_unit_test_setup_teardown(
            test_frames_without_checksum_are_counted_unchecked_not_errors, ct_setup,
            ct_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
