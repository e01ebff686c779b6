/* The camera programs as users run them: camera-pub, frame-sink and frame-stats started as
 * separate processes (posix_spawn + exec: never a fork that keeps using the bus, which nng
 * forbids) on a domain of their own, with SHMBUS_RUNTIME_DIR in a temporary directory.
 * Every test ends with nothing of its domain left in the shm directory (camtest.h).
 *
 * They run on tests/camera/camera-test.json: 320 KiB blocks and a history of 16 frames, so a
 * subscriber that keeps up on average also rides out a scheduling stall of up to 160 ms at
 * 100 fps on a busy machine. The sample examples/camera/camera.json is checked separately. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "camtest.h"
#include "shmbus.h"

#define TEST_HISTORY 16 /* the history of tests/camera/camera-test.json */

/* ---- Y4M test streams --------------------------------------------------------------------- */

/* Write `header` (with its newline) and n frames of w x h luma plus two cw x ch chroma planes
 * of pseudo-random bytes. Written here, independently of the code under test. */
static void write_y4m(const char *path, const char *header, size_t luma, size_t chroma, int n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(header, fp);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ luma;
    for (int k = 0; k < n; k++) {
        fputs("FRAME\n", fp);
        for (size_t i = 0; i < luma + 2 * chroma; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            fputc((int)(x & 0xff), fp);
        }
    }
    assert_int_equal(fclose(fp), 0);
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = ct_slurp(a, &na), *y = ct_slurp(b, &nb);
    assert_non_null(x);
    if (!y)
        fail_msg("%s was not written", b);
    size_t i = 0;
    while (i < na && i < nb && x[i] == y[i])
        i++;
    free(x);
    free(y);
    if (i != na || na != nb)
        fail_msg("%s (%zu bytes) and %s (%zu bytes) differ from byte %zu on", a, na, b, nb, i);
}

/* Publish a Y4M file with camera-pub --y4m, write it back with frame-sink --y4m. */
static void round_trip(fixture *f, const char *header, size_t luma, size_t chroma, int n)
{
    char in[128], out[128], count[16];
    ct_path(f, "in.y4m", in, sizeof in);
    ct_path(f, "out.y4m", out, sizeof out);
    snprintf(count, sizeof count, "%d", n);
    write_y4m(in, header, luma, chroma, n);
    pid_t sink = ct_spawn(f, "sink", CAMERA_TEST_CONFIG, NULL,
                       (const char *[]){"frame-sink", "--y4m", out, "--count", count, NULL});
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                      (const char *[]){"camera-pub", "--y4m", in, "--fps", "100",
                                       "--wait-subs", "1", "--linger-ms", "200", NULL});
    ct_expect_exit(f, pub, 0, 20000);
    ct_expect_exit(f, sink, 0, 10000);
    assert_same_file(in, out);
    unlink(out);
}

static void test_y4m_444_odd_size_comes_back_bit_exact(void **state)
{
    round_trip(*state, "YUV4MPEG2 W33 H17 F25:1 Ip A1:1 C444 XYSCSS=444\n", 33 * 17, 33 * 17,
               12);
}

static void test_y4m_420_odd_size_comes_back_bit_exact_with_rounded_up_chroma(void **state)
{
    /* chroma of 35x19 is 18x10: (w+1)/2 x (h+1)/2 */
    round_trip(*state, "YUV4MPEG2 W35 H19 F30000:1001 Ip A0:0 C420jpeg XYSCSS=420JPEG\n",
               35 * 19, 18 * 10, 12);
}

static void test_y4m_every_other_colorspace_comes_back_bit_exact(void **state)
{
    fixture *f = *state;
    round_trip(f, "YUV4MPEG2 W36 H20 F24:1 It A1:1 C420mpeg2\n", 36 * 20, 18 * 10, 4);
    round_trip(f, "YUV4MPEG2 W21 H9 F24:1 Ib A1:1 C420paldv\n", 21 * 9, 11 * 5, 4);
    round_trip(f, "YUV4MPEG2 W21 H9 C420\n", 21 * 9, 11 * 5, 4);
    round_trip(f, "YUV4MPEG2 W21 H9\n", 21 * 9, 11 * 5, 4); /* no C at all */
    round_trip(f, "YUV4MPEG2 W21 H9 F15:1 C422\n", 21 * 9, 11 * 9, 4);
    round_trip(f, "YUV4MPEG2 W21 H9 F15:1 Cmono XCOLORRANGE=FULL\n", 21 * 9, 0, 4);
}

/* ---- many subscribers ---------------------------------------------------------------------- */

static void test_three_subscribers_account_for_all_200_frames_and_a_slow_one_loses_some(
    void **state)
{
    fixture *f = *state;
    char sum[6][128], y4m[128];
    const char *names[] = {"a.json", "b.json", "sink.json", "slow.json", "pub.json"};
    for (int i = 0; i < 5; i++)
        ct_path(f, names[i], sum[i], sizeof sum[i]);
    ct_path(f, "sink.y4m", y4m, sizeof y4m);
    pid_t a = ct_spawn(f, "stats-a", CAMERA_TEST_CONFIG, NULL,
                    (const char *[]){"frame-stats", "-q", "--summary", sum[0], NULL});
    pid_t b = ct_spawn(f, "stats-b", CAMERA_TEST_CONFIG, NULL,
                    (const char *[]){"frame-stats", "-q", "--summary", sum[1], NULL});
    pid_t sink = ct_spawn(f, "sink", CAMERA_TEST_CONFIG, NULL,
                       (const char *[]){"frame-sink", "-q", "--y4m", y4m, "--summary", sum[2],
                                        NULL});
    pid_t slow = ct_spawn(f, "slow", CAMERA_TEST_CONFIG, NULL,
                       (const char *[]){"frame-stats", "-q", "--delay-ms", "40", "--summary",
                                        sum[3], "--name", "slow", NULL});
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                      (const char *[]){"camera-pub", "-q", "--size", "320x240", "--fps", "100",
                                       "--count", "200", "--wait-subs", "4", "--summary",
                                       sum[4], NULL});
    ct_expect_exit(f, pub, 0, 30000);
    ct_expect_exit(f, a, 0, 10000);
    ct_expect_exit(f, b, 0, 10000);
    ct_expect_exit(f, sink, 0, 10000);
    ct_expect_exit(f, slow, 0, 10000);

    /* the publisher was not held back: every frame went out, none skipped */
    ASSERT_SUMMARY(f, "pub.json", "sent", ==, 200);
    ASSERT_SUMMARY(f, "pub.json", "skipped", ==, 0);
    fprintf(stderr, "publisher: %.1f fps (target 100)\n", ct_summary(f, "pub.json", "fps"));
    /* Every subscriber accounts for all 200 frames: received or lost, by cause. The ones
     * that keep up lose none on an idle machine; on a loaded one a stall longer than the
     * history (160 ms) may cost them frames, counted like the slow one's: no timing is
     * asserted here. */
    for (int i = 0; i < 4; i++) {
        double got = ct_summary(f, names[i], "received"), lost = ct_summary(f, names[i], "lost");
        fprintf(stderr, "%s: received %.0f, lost %.0f\n", names[i], got, lost);
        assert_true(got > 0);
        if (got + lost != 200)
            fail_msg("%s: received %.0f + lost %.0f != 200", names[i], got, lost);
        assert_true(ct_summary(f, names[i], "seq_gaps") <= lost);
        ASSERT_SUMMARY(f, names[i], "checksum_errors", ==, 0);
    }
    for (int i = 0; i < 2; i++) /* frames arrive in order, from the first on */
        assert_true(ct_summary(f, names[i], "first_frame") + ct_summary(f, names[i], "received") <=
                    ct_summary(f, names[i], "last_frame") + 1);
    /* the sink wrote every frame it received, bit-exact sizes */
    double written = ct_summary(f, "sink.json", "written");
    ASSERT_SUMMARY(f, "sink.json", "received", ==, written);
    struct stat st;
    assert_int_equal(stat(y4m, &st), 0);
    const char *header = "YUV4MPEG2 W320 H240 F100:1 Ip A1:1 C444\n"; /* rgb24 -> 4:4:4 */
    char *h = ct_slurp(y4m, NULL);
    assert_non_null(h);
    assert_int_equal(strncmp(h, header, strlen(header)), 0);
    free(h);
    assert_int_equal(st.st_size, strlen(header) + (size_t)written * (6 + 320 * 240 * 3));
    /* the slow one (40 ms a frame, 8 s for all) cannot keep up with 2 s of frames */
    ASSERT_SUMMARY(f, "slow.json", "lost", >, 0);
}

/* ---- a subscriber killed ------------------------------------------------------------------- */

/* Blocks in use in the pool, and whether any of them has holder bit `slot`. */
static unsigned pool_used(const shmbus_snapshot *s, int slot, bool *held_by_slot)
{
    unsigned used = 0;
    *held_by_slot = false;
    for (unsigned p = 0; p < s->npools; p++) {
        used += s->pools[p].nheld;
        for (unsigned i = 0; slot >= 0 && i < s->pools[p].nheld; i++)
            *held_by_slot |= (s->pools[p].held[i].holders >> slot) & 1;
    }
    return used;
}

static const shmbus_participant_info *participant(const shmbus_snapshot *s, pid_t pid)
{
    for (unsigned i = 0; i < s->nparticipants; i++)
        if (s->participants[i].pid == pid && s->participants[i].alive)
            return &s->participants[i];
    return NULL;
}

static uint64_t received_by(const shmbus_snapshot *s, pid_t pid)
{
    for (unsigned t = 0; t < s->ntopics; t++)
        for (unsigned i = 0; i < s->topics[t].nsubs; i++)
            if (s->topics[t].subs[i].pid == pid)
                return s->topics[t].subs[i].received;
    return 0;
}

static void test_killed_frame_sink_gives_its_blocks_back_and_the_others_go_on(void **state)
{
    fixture *f = *state;
    char sum_a[128], sum_pub[128];
    ct_path(f, "a.json", sum_a, sizeof sum_a);
    ct_path(f, "pub.json", sum_pub, sizeof sum_pub);
    pid_t a = ct_spawn(f, "stats-a", CAMERA_TEST_CONFIG, NULL,
                    (const char *[]){"frame-stats", "-q", "--summary", sum_a, NULL});
    pid_t sink = ct_spawn(f, "sink", CAMERA_TEST_CONFIG, NULL,
                       (const char *[]){"frame-sink", "-q", "--y4m", "/dev/null", "--delay-ms",
                                        "30", NULL});
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                      (const char *[]){"camera-pub", "-q", "--size", "320x240", "--fps", "50",
                                       "--count", "150", "--wait-subs", "2", "--summary",
                                       sum_pub, NULL});
    /* watch the domain without joining it (the children are exec'd: no fork after this) */
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.observe = true;
    shmbus_domain *obs = NULL;
    for (int i = 0; i < 500 && shmbus_domain_open(f->dom, &o, &obs) != 0; i++)
        usleep(10 * 1000);
    assert_non_null(obs);
    int slot = -1;
    shmbus_snapshot *s = NULL;
    for (int i = 0; i < 500; i++, usleep(10 * 1000)) {
        assert_int_equal(shmbus_snapshot_take(obs, &s), 0);
        const shmbus_participant_info *p = participant(s, sink);
        if (p && received_by(s, sink) >= 10)
            slot = (int)p->slot;
        shmbus_snapshot_free(s);
        if (slot >= 0)
            break;
    }
    assert_true(slot >= 0);

    assert_int_equal(kill(sink, SIGKILL), 0);
    ct_expect_exit(f, sink, 128 + SIGKILL, 5000);

    /* the dead process's holds are swept: pool usage goes back to what the living hold */
    bool held = true, alive = true;
    unsigned used = 0;
    for (int i = 0; i < 300 && (held || alive || used > TEST_HISTORY + 2); i++, usleep(10 * 1000)) {
        assert_int_equal(shmbus_snapshot_take(obs, &s), 0);
        used = pool_used(s, slot, &held);
        alive = participant(s, sink) != NULL;
        shmbus_snapshot_free(s);
    }
    if (alive || held)
        fail_msg("3 s after SIGKILL the dead frame-sink is %s", alive ? "still listed alive"
                                                                      : "still holding a block");
    /* the topic's history + what stats-a holds (1) + what the publisher is filling (1) */
    if (used > TEST_HISTORY + 2)
        fail_msg("%u blocks in use after the sweep, expected at most %d", used,
                 TEST_HISTORY + 2);

    ct_expect_exit(f, pub, 0, 20000);
    ct_expect_exit(f, a, 0, 10000);
    ASSERT_SUMMARY(f, "pub.json", "sent", ==, 150);
    ASSERT_SUMMARY(f, "pub.json", "skipped", ==, 0);
    /* the other subscriber went on: it accounts for every frame (lost only by its own stalls,
     * if the machine is that busy: no timing is asserted) */
    double got = ct_summary(f, "a.json", "received"), lost = ct_summary(f, "a.json", "lost");
    assert_true(got > 0);
    if (got + lost != 150)
        fail_msg("a.json: received %.0f + lost %.0f != 150", got, lost);
    ASSERT_SUMMARY(f, "a.json", "checksum_errors", ==, 0);
    assert_int_equal(shmbus_domain_close(obs), 0);
    assert_int_equal(ct_leftovers(f->dom, false), 0);
}

/* ---- the sample configuration ------------------------------------------------------------ */

static void test_sample_config_carries_1080p_rgb_frames_to_three_subscribers(void **state)
{
    (void)state;
    shmbus_config_summary *c = calloc(1, sizeof *c);
    assert_non_null(c);
    if (shmbus_config_load(CAMERA_CONFIG, c) != 0)
        fail_msg("%s: %s", CAMERA_CONFIG, shmbus_last_error());
    const shmbus_topic_def *t = NULL;
    for (unsigned i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i].name, "camera/front") == 0)
            t = &c->topics[i];
    assert_non_null(t);
    const uint64_t msg = 256 + 1920 * 1080 * 3; /* frame header + pixels */
    assert_true(t->max_message_size >= msg);
    for (unsigned i = 0; i < c->npools; i++)
        if (strcmp(c->pools[i].name, t->pool) == 0) {
            /* never full: history + the frame being written + 3 subscribers at max_held */
            uint64_t blocks = 0;
            for (unsigned k = 0; k < c->pools[i].nclasses; k++)
                if (c->pools[i].classes[k].block_size >= msg)
                    blocks += c->pools[i].classes[k].count;
            assert_true(blocks >= t->history + 1 + 3 * t->max_held);
        }
    assert_true(c->has_default_topic);
    free(c);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void test_bad_y4m_input_fails_with_a_clear_error(void **state)
{
    fixture *f = *state;
#define GOOD_444 "YUV4MPEG2 W33 H17 C444\n"
    static const struct {
        const char *name, *header, *message;
        int frames;          /* "FRAME\n" + frame_bytes bytes, so many times */
        size_t frame_bytes;
        bool stdin_;         /* given on stdin as --y4m - */
    } cases[] = {
        {"truncated header", "YUV4MPEG2 W33 H1", "truncated header", 0, 0, false},
        {"empty input", "", "empty input", 0, 0, true},
        {"wrong frame size", GOOD_444, "not 1683 bytes as the header (33x17 C444) says", 3,
         1600, false},
        {"short frame", GOOD_444, "ends after 1000 of its 1683 bytes", 1, 1000, false},
        {"garbage", "\x7f" "ELF\x02\x01\x01 binary garbage\n", "not a YUV4MPEG2 stream", 0,
         0, true},
        {"no width", "YUV4MPEG2 H17 C444\n", "no W (width)", 0, 0, false},
        {"absurd size", "YUV4MPEG2 W1000000 H17\n", "width must be 1..16384", 0, 0, false},
        {"10-bit", "YUV4MPEG2 W16 H16 C420p10\n", "C420p10: colorspace not supported", 0, 0,
         false},
    };
    char in[128];
    ct_path(f, "bad.y4m", in, sizeof in);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *fp = fopen(in, "wb");
        assert_non_null(fp);
        fwrite(cases[i].header, 1, strlen(cases[i].header), fp);
        for (int k = 0; k < cases[i].frames; k++) {
            fputs("FRAME\n", fp);
            for (size_t b = 0; b < cases[i].frame_bytes; b++)
                fputc((int)((b * 13 + (size_t)k) & 0xff), fp);
        }
        fclose(fp);
        pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, cases[i].stdin_ ? in : NULL,
                          (const char *[]){"camera-pub", "-q", "--y4m",
                                           cases[i].stdin_ ? "-" : in, NULL});
        ct_expect_exit(f, pub, 3, 10000);
        char *log = ct_log(f, "pub");
        if (!strstr(log, cases[i].message) || !strstr(log, cases[i].stdin_ ? "stdin" : in))
            fail_msg("%s: stderr lacks \"%s\" or the input's name:\n%s", cases[i].name,
                     cases[i].message, log);
        free(log);
    }
    pid_t pub = ct_spawn(f, "pub", CAMERA_TEST_CONFIG, NULL,
                      (const char *[]){"camera-pub", "--v4l2", "/dev/no-such-camera", NULL});
    ct_expect_exit(f, pub, 3, 10000);
    char *log = ct_log(f, "pub");
    assert_non_null(strstr(log, "/dev/no-such-camera: No such file or directory"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, ct_setup, ct_teardown)
        T(test_y4m_444_odd_size_comes_back_bit_exact),
        T(test_y4m_420_odd_size_comes_back_bit_exact_with_rounded_up_chroma),
        T(test_y4m_every_other_colorspace_comes_back_bit_exact),
        T(test_three_subscribers_account_for_all_200_frames_and_a_slow_one_loses_some),
        T(test_killed_frame_sink_gives_its_blocks_back_and_the_others_go_on),
        T(test_bad_y4m_input_fails_with_a_clear_error),
        cmocka_unit_test(test_sample_config_carries_1080p_rgb_frames_to_three_subscribers),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
