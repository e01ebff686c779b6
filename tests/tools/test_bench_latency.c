/* shmbus-bench latency, run as a program with small counts: every row it promises is in its
 * JSON (each transport at each size and subscriber count it measures, the floors, the
 * unpaced throughput), and --plot draws a PNG through gnuplot, or says at once that gnuplot
 * is missing.
 *
 * Registered twice: without arguments (the rows, and --plot without gnuplot), and with
 * "plot" (a PNG; exits 77, skipped, where gnuplot is not installed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tooltest.h"

#define BENCH SHMBUS_BENCH
#define RUN_MS 480000 /* a hang guard only: the short run takes well under a minute */
#define COUNT "10"    /* latency samples and throughput messages per row */

static tt_result r; /* big buffers: not on the stack */

/* A row the JSON must have. */
struct want {
    const char *transport;
    double size;
    int subs;
    bool unpaced; /* with unpaced_* throughput keys */
};

static const double sizes[] = {64, 4096, 65536, 1 << 20, 8 << 20, 24 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static int wanted(struct want *w)
{
    int n = 0;
    static const char *const every[] = {"shmbus", "nng-copy", "shmbus-shm"};
    for (size_t t = 0; t < sizeof every / sizeof every[0]; t++)
        for (int subs = 1; subs <= 4; subs += 3)
            for (size_t i = 0; i < NSIZES; i++)
                w[n++] = (struct want){every[t], sizes[i], subs,
                                       t != 1 && subs == 1 && i == 0}; /* not nng-copy */
    for (size_t i = 0; i < NSIZES && sizes[i] <= (1 << 20); i++) /* the fd path: 1 sub */
        w[n++] = (struct want){"shmbus-shm-fd", sizes[i], 1, false};
    for (int subs = 1; subs <= 4; subs += 3) /* the futex floor: the shapes of shmbus-shm */
        for (size_t i = 0; i < NSIZES; i++)
            w[n++] = (struct want){"futex", sizes[i], subs, false};
    w[n++] = (struct want){"unix-socket", 64, 1, false};
    return n;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("row without a number \"%s\": %s", key, cJSON_PrintUnformatted(o));
    return v->valuedouble;
}

static void test_latency_json_has_a_row_for_every_transport_size_and_subscriber_count(
    void **state)
{
    (void)state;
    TT_RUN(&r, RUN_MS, BENCH, "latency", "--count", COUNT, "--json");
    tt_assert_exit(&r, 0);
    cJSON *rows = cJSON_Parse(r.out);
    if (!cJSON_IsArray(rows))
        fail_msg("not a JSON array:\n%s", r.out);
    struct want w[64];
    int n = wanted(w);
    int seen[64] = {0};
    const cJSON *o;
    cJSON_ArrayForEach(o, rows)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "transport");
        assert_true(cJSON_IsString(t));
        int k = 0;
        while (k < n && !(strcmp(w[k].transport, t->valuestring) == 0 &&
                          w[k].size == num(o, "size") && w[k].subs == num(o, "subscribers")))
            k++;
        if (k == n)
            fail_msg("a row nobody asked for: %s", cJSON_PrintUnformatted(o));
        seen[k]++;
        /* measured: samples, a median, nothing lost */
        assert_true(num(o, "samples") >= 10);
        assert_true(num(o, "p50_us") > 0);
        assert_true(num(o, "p50_slowest_us") >= num(o, "p50_us") ||
                    num(o, "subscribers") == 1);
        assert_true(num(o, "p99_us") >= num(o, "p50_slowest_us"));
        assert_true(num(o, "missing") == 0);
        bool unpaced = cJSON_GetObjectItemCaseSensitive(o, "unpaced_msgs_per_s") != NULL;
        if (unpaced != w[k].unpaced)
            fail_msg("unpaced throughput %s in %s", unpaced ? "unexpected" : "missing",
                     cJSON_PrintUnformatted(o));
        if (unpaced) {
            assert_true(num(o, "unpaced_sent") >= 20000);
            assert_true(num(o, "unpaced_received") > 0);
            assert_true(num(o, "unpaced_received") <= num(o, "unpaced_sent"));
            assert_true(num(o, "unpaced_msgs_per_s") > 0);
        }
    }
    for (int k = 0; k < n; k++)
        if (seen[k] != 1)
            fail_msg("%d rows for %s, %.0f B, %d subscribers; expected 1", seen[k],
                     w[k].transport, w[k].size, w[k].subs);
    cJSON_Delete(rows);
}

static void test_plot_without_gnuplot_fails_at_once_and_says_so(void **state)
{
    tt_env *e = TT_ENV(state);
    char png[320];
    snprintf(png, sizeof png, "%s/latency.png", e->rundir);
    char *path = strdup(getenv("PATH") ? getenv("PATH") : "");
    setenv("PATH", e->rundir, 1); /* a directory without gnuplot */
    TT_RUN(&r, 10000, BENCH, "latency", "--plot", png);
    setenv("PATH", path, 1);
    free(path);
    tt_assert_exit(&r, 1);
    tt_assert_contains(r.err, "needs gnuplot");
    tt_assert_contains(r.err, "gnuplot-nox");
    assert_int_equal(r.out[0], 0); /* nothing measured */
    assert_int_equal(access(png, F_OK), -1);
}

static void test_plot_draws_a_png_of_the_run(void **state)
{
    tt_env *e = TT_ENV(state);
    char png[320];
    snprintf(png, sizeof png, "%s/latency.png", e->rundir);
    TT_RUN(&r, RUN_MS, BENCH, "latency", "--count", COUNT, "--plot", png);
    tt_assert_exit(&r, 0);
    /* the table ends with every ratio computed and checked: 6 of the nng path, 6 targets of
     * the shm path, none short of a row ("n/a"); next to them the shm path against the
     * futex floor of the same shape (64 B with 4 subscribers, 24 MiB with 1 and 4) */
    tt_assert_contains(r.out, "targets of the shm delivery path");
    if (tt_count(r.out, "(target ") != 12 || strstr(r.out, " n/a"))
        fail_msg("expected 12 ratios checked against targets in:\n%s", r.out);
    if (tt_count(r.out, "(the floor of the same shape)") != 3)
        fail_msg("expected 3 ratios against the floor of the same shape in:\n%s", r.out);
    tt_assert_contains(r.out, "shmbus-shm 64 B, 4 subs (slowest) / futex 64 B, 4 subs (slowest)");
    tt_assert_contains(r.out, "shmbus-shm 24 MiB, 1 sub / futex 24 MiB, 1 sub");
    tt_assert_contains(r.out,
                       "shmbus-shm 24 MiB, 4 subs (slowest) / futex 24 MiB, 4 subs (slowest)");
    tt_assert_contains(r.out, "4 subscribers, one message at a time, one wake for all");
    FILE *f = fopen(png, "rb");
    if (!f)
        fail_msg("no %s after the run; stderr:\n%s", png, r.err);
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    assert_int_equal(got, 8);
    assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);
    struct stat st;
    assert_int_equal(stat(png, &st), 0);
    assert_true(st.st_size > 10000); /* axes, legend and lines, not an empty canvas */
}

static bool have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char dir[4096];
    for (const char *p = path; p && *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/gnuplot", (int)n, p);
        if (n && access(dir, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plot") == 0) {
        if (!have_gnuplot()) {
            printf("gnuplot not installed (Debian package gnuplot-nox): skipped\n");
            return 77;
        }
        const struct CMUnitTest plot[] = {TT_TEST(test_plot_draws_a_png_of_the_run)};
        return cmocka_run_group_tests(plot, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        TT_TEST(test_latency_json_has_a_row_for_every_transport_size_and_subscriber_count),
        TT_TEST(test_plot_without_gnuplot_fails_at_once_and_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
