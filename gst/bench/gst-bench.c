/* shmbus-gst-bench: 1080p and 4K RGB frames through GStreamer, shmbus against GStreamer's own
 * shared-memory transport, in one run (docs/gstreamer.md, "Benchmark"):
 *
 *   shmbus:  videotestsrc ! shmbussink            ->  S x  shmbussrc ! fakesink
 *   shm:     videotestsrc ! shmsink (gst-plugins-bad) ->  S x  shmsrc ! fakesink
 *
 * Every pipeline is its own process (this program run as "pub" or "sub"). Each measures from
 * its first frame to its last: frames, wall time, and its CPU time (getrusage). The publisher
 * renders as fast as it can (sync=false, videotestsrc pattern=black: a cheap fill of every
 * byte, the "camera wrote it" cost). shmbus never waits for subscribers, so a subscriber that
 * falls behind loses frames (counted); shmsink waits for its clients, so nothing is lost but
 * the slowest client paces everyone.
 *
 * Each figure is the median of three runs, the two transports' runs alternating.
 *
 * usage: shmbus-gst-bench [--frames-1080p N] [--frames-4k N]   (GST_PLUGIN_PATH must find
 *        gstshmbus: GST_PLUGIN_PATH=build/lib/gstreamer-1.0 from the build tree) */
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gst/gst.h>

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- one pipeline (child process) ------------------------------------------------------- */

typedef struct counter {
    guint64 frames;
    double t0, t1, cpu0;
} counter;

static GstPadProbeReturn count_frame(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    (void)pad, (void)info;
    counter *c = data;
    if (c->frames++ == 0) {
        c->t0 = now_s();
        c->cpu0 = cpu_s();
    }
    c->t1 = now_s();
    return GST_PAD_PROBE_OK;
}

static int clients;

static void client_connected(GstElement *e, gint id, gpointer data)
{
    (void)e, (void)id, (void)data;
    g_atomic_int_inc(&clients);
}

/* Run `desc` until EOS or an error (an shmsrc whose shmsink left ends with one); count the
 * frames that reach the element named "last"; print "frames wall_s cpu_s lost". */
static int run_pipeline(const char *desc, int clients_to_wait)
{
    GError *err = NULL;
    GstElement *pipe = gst_parse_launch(desc, &err);
    if (!pipe) {
        fprintf(stderr, "%s: %s\n", desc, err ? err->message : "cannot parse");
        return 1;
    }
    counter c = {0};
    GstElement *last = gst_bin_get_by_name(GST_BIN(pipe), "last");
    GstPad *pad = gst_element_get_static_pad(last, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_frame, &c, NULL);
    gst_object_unref(pad);
    if (clients_to_wait > 0) { /* shmsink: start when every shmsrc is connected */
        g_signal_connect(last, "client-connected", G_CALLBACK(client_connected), NULL);
        gst_element_set_state(pipe, GST_STATE_PAUSED);
        for (int i = 0; i < 30000 && g_atomic_int_get(&clients) < clients_to_wait; i++)
            g_usleep(1000);
    }
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 110 * GST_SECOND,
                                               GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    double cpu = cpu_s() - c.cpu0;
    guint64 lost = 0;
    GstStructure *stats = NULL;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(last), "stats") == NULL) {
        GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "first");
        if (src && g_object_class_find_property(G_OBJECT_GET_CLASS(src), "stats")) {
            g_object_get(src, "stats", &stats, NULL);
            gst_structure_get_uint64(stats, "lost", &lost);
            gst_structure_free(stats);
        }
        if (src)
            gst_object_unref(src);
    }
    if (m)
        gst_message_unref(m);
    gst_object_unref(bus);
    gst_object_unref(last);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    printf("%llu %.6f %.6f %llu\n", (unsigned long long)c.frames, c.t1 - c.t0, cpu,
           (unsigned long long)lost);
    return 0;
}

/* ---- the runs ------------------------------------------------------------------------------ */

typedef struct result {
    double fps_pub, fps_sub, us_pub, us_sub, lost_pct;
} result;

static pid_t spawn_self(const char *out, char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "shmbus-gst-bench: spawn: %s\n", strerror(rc));
        exit(1);
    }
    return pid;
}

static int read_result(const char *path, double v[4])
{
    FILE *fp = fopen(path, "r");
    int n = fp ? fscanf(fp, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]) : 0;
    if (fp)
        fclose(fp);
    return n == 4 ? 0 : -1;
}

/* A child that has not ended by the deadline (a stalled run on a busy machine) is killed
 * and the run counts as failed. */
static int wait_ok(pid_t pid, double deadline)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
}

/* One configuration: publisher and subs subscribers of transport tr ("shmbus" or "shm"). */
static int run(const char *dir, const char *tr, int w, int h, int frames, int subs, result *r)
{
    char pub_desc[1024], sub_desc[1024], caps[160], sock[256], cfg[256], out[16][300];
    snprintf(caps, sizeof caps, "video/x-raw,format=RGB,width=%d,height=%d,framerate=0/1", w, h);
    snprintf(sock, sizeof sock, "%s/shm.sock", dir);
    snprintf(cfg, sizeof cfg, "%s/bench.json", dir);
    size_t frame = (size_t)w * (size_t)h * 3;
    bool shmbus = strcmp(tr, "shmbus") == 0;
    if (shmbus) {
        FILE *fp = fopen(cfg, "w");
        fprintf(fp, "{\"domain\": \"gstbench%d\", \"pools\": [{\"name\": \"frames\", "
                    "\"block_size\": %zu, \"count\": %d}], \"default_topic\": {\"pool\": "
                    "\"frames\", \"history\": 4, \"max_held\": 2, \"queue_depth\": 64, "
                    "\"max_message_size\": %zu}}\n",
                (int)getpid(), frame + 4096, 8 + 2 * subs, frame + 4096);
        fclose(fp);
        snprintf(pub_desc, sizeof pub_desc, "videotestsrc num-buffers=%d pattern=black ! %s ! "
                 "shmbussink name=last config=%s topic=bench sync=false wait-subscribers=%d",
                 frames, caps, cfg, subs);
        snprintf(sub_desc, sizeof sub_desc, "shmbussrc name=first config=%s topic=bench "
                 "eos-on-idle=true ! fakesink name=last sync=false enable-last-sample=false", cfg);
    } else {
        snprintf(pub_desc, sizeof pub_desc, "videotestsrc num-buffers=%d pattern=black ! %s ! "
                 "shmsink name=last socket-path=%s shm-size=%zu wait-for-connection=true "
                 "sync=false", frames, caps, sock, frame * 8 + (1u << 20));
        snprintf(sub_desc, sizeof sub_desc, "shmsrc socket-path=%s is-live=true ! %s ! "
                 "fakesink name=last sync=false enable-last-sample=false", sock, caps);
    }
    char nsubs[16];
    snprintf(nsubs, sizeof nsubs, "%d", shmbus ? 0 : subs);
    pid_t sub[16], pub;
    snprintf(out[0], sizeof out[0], "%s/pub.out", dir);
    char *pargv[] = {"shmbus-gst-bench", "pub", nsubs, pub_desc, NULL};
    if (!shmbus) { /* shmsink makes the socket the clients connect to */
        pub = spawn_self(out[0], pargv);
        for (int i = 0; i < 5000 && access(sock, F_OK) != 0; i++)
            usleep(1000);
    }
    for (int i = 0; i < subs; i++) {
        snprintf(out[i + 1], sizeof out[0], "%s/sub%d.out", dir, i);
        char *sargv[] = {"shmbus-gst-bench", "sub", "0", sub_desc, NULL};
        sub[i] = spawn_self(out[i + 1], sargv);
    }
    if (shmbus)
        pub = spawn_self(out[0], pargv);
    double deadline = now_s() + 120;
    int bad = wait_ok(pub, deadline);
    for (int i = 0; i < subs; i++)
        bad |= wait_ok(sub[i], deadline);
    unlink(sock);
    unlink(cfg);
    double p[4], s[4];
    if (bad || read_result(out[0], p) != 0)
        return -1;
    r->fps_pub = p[1] > 0 ? (p[0] - 1) / p[1] : 0;
    r->us_pub = p[2] * 1e6 / p[0];
    r->fps_sub = 1e18;
    r->us_sub = 0;
    double lost = 0;
    for (int i = 0; i < subs; i++) {
        if (read_result(out[i + 1], s) != 0)
            return -1;
        double fps = s[1] > 0 ? (s[0] - 1) / s[1] : 0;
        r->fps_sub = fps < r->fps_sub ? fps : r->fps_sub;
        r->us_sub += s[2] * 1e6 / (s[0] ? s[0] : 1) / subs;
        lost += shmbus ? s[3] : (double)frames - s[0];
    }
    r->lost_pct = 100.0 * lost / ((double)frames * subs);
    return 0;
}

/* A run that failed or stalled is tried once more. */
static int run_twice(const char *dir, const char *tr, int w, int h, int frames, int subs,
                     result *r)
{
    if (run(dir, tr, w, h, frames, subs, r) == 0)
        return 0;
    fprintf(stderr, "shmbus-gst-bench: %s %dx%d, %d subscribers: a pipeline failed or "
                    "stalled, once more\n", tr, w, h, subs);
    return run(dir, tr, w, h, frames, subs, r);
}

static const char usage[] =
    "usage: shmbus-gst-bench [--frames-1080p N] [--frames-4k N]\n"
    "\n"
    "1080p and 4K RGB frames through videotestsrc ! shmbussink -> shmbussrc ! fakesink and\n"
    "through shmsink -> shmsrc, with 1 and 4 subscriber pipelines (each its own process);\n"
    "prints fps, CPU per frame and losses, each the median of three runs.\n"
    "GST_PLUGIN_PATH must find gstshmbus (build/lib/gstreamer-1.0).\n"
    "\n"
    "  --frames-1080p N   frames per 1080p run (default 600)\n"
    "  --frames-4k N      frames per 4K run (default 150)\n"
    "  --help             this text\n";

#define REPEAT 3 /* each cell is the median of three runs */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median of each figure over REPEAT runs. */
static void median(const result r[REPEAT], result *out)
{
    double *in = (double *)r, *o = (double *)out;
    const size_t nf = sizeof(result) / sizeof(double);
    for (size_t f = 0; f < nf; f++) {
        double v[REPEAT];
        for (int k = 0; k < REPEAT; k++)
            v[k] = in[k * nf + f];
        qsort(v, REPEAT, sizeof v[0], cmp_double);
        o[f] = v[REPEAT / 2];
    }
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (argc == 4 && (strcmp(argv[1], "pub") == 0 || strcmp(argv[1], "sub") == 0))
        return run_pipeline(argv[3], atoi(argv[2]));
    int n1080 = 600, n4k = 150;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("%s", usage);
            return 0;
        }
        int *n = strcmp(argv[i], "--frames-1080p") == 0 ? &n1080
                 : strcmp(argv[i], "--frames-4k") == 0  ? &n4k
                                                        : NULL;
        if (!n || i + 1 >= argc || (*n = atoi(argv[++i])) < 2) {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!gst_element_factory_find("shmbussink") || !gst_element_factory_find("shmsink")) {
        fprintf(stderr, "shmbus-gst-bench: needs shmbussink (GST_PLUGIN_PATH=build/lib/"
                        "gstreamer-1.0) and shmsink (gstreamer1.0-plugins-bad)\n");
        return 2;
    }
    char dir[] = "/tmp/gstbench.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    setenv("SHMBUS_RUNTIME_DIR", dir, 1);
    static const struct {
        const char *name;
        int w, h;
    } sizes[] = {{"1080p", 1920, 1080}, {"4K", 3840, 2160}};
    printf("           -------------- shmbus --------------  ---------------- shm ---------------\n");
    printf(" frame subs  pub fps  sub fps  pub us  sub us lost  pub fps  sub fps  pub us  sub us lost\n");
    for (int subs = 1; subs <= 4; subs += 3)
        for (size_t s = 0; s < 2; s++) {
            result ra[REPEAT], rb[REPEAT], a, b;
            int n = s ? n4k : n1080;
            for (int k = 0; k < REPEAT; k++) /* alternating, so both see the same load */
                if (run_twice(dir, "shmbus", sizes[s].w, sizes[s].h, n, subs, &ra[k]) ||
                    run_twice(dir, "shm", sizes[s].w, sizes[s].h, n, subs, &rb[k])) {
                    fprintf(stderr, "shmbus-gst-bench: a pipeline failed (%s, %d subscribers)\n",
                            sizes[s].name, subs);
                    return 1;
                }
            median(ra, &a);
            median(rb, &b);
            printf("%6s %4d %8.1f %8.1f %7.0f %7.0f %3.0f%% %8.1f %8.1f %7.0f %7.0f %3.0f%%\n",
                   sizes[s].name, subs, a.fps_pub, a.fps_sub, a.us_pub, a.us_sub, a.lost_pct,
                   b.fps_pub, b.fps_sub, b.us_pub, b.us_sub, b.lost_pct);
            fflush(stdout);
        }
    rmdir(dir);
    return 0;
}
