/* shmbus-bench-bridge: camera frames (1080p and 4K rgb24) from "host A" to "host B" on one
 * machine over loopback, three ways (bench_paths.h): plain Cyclone DDS, shmbus through two
 * shmbus-bridges, and nng over tcp://127.0.0.1. For each: the highest rate sustained
 * without loss (a rate ladder; a step passes when every frame arrived and the sender kept
 * 95 % of the rate), latency p50/p99 there, and latency at a common rate (30 fps 1080p,
 * 5 fps 4K), after a warm-up step (first touch of buffers and blocks) that is not
 * measured. A separate program so that tools/ does not depend on Cyclone DDS.
 *
 *   shmbus-bench-bridge [--seconds S] [--quick]
 *
 * Each host is a temporary directory under /dev/shm (its SHMBUS_SHM_DIR and
 * SHMBUS_RUNTIME_DIR) with its own domain and bridge; DDS runs on 127.0.0.1 only, on a
 * domain id from the pid. Everything is removed at the end. */
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_paths.h"
#include "shmbus.h"
#include "shmbus_frame.h"

extern char **environ;

typedef struct host {
    char dir[128], shm[160], run[160], dom[32], cfg[200], domcfg[200];
    pid_t bridge;
    shmbus_domain *d;
} host;

static volatile sig_atomic_t g_interrupted; /* SIGINT/SIGTERM: stop after the step, clean up */

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static struct {
    char dir[96], self[PATH_MAX], bindir[PATH_MAX], url[64];
    unsigned dds_domain;
    host a, b;
    shmbus_pub *pub;
    shmbus_sub *sub;
    /* the bridge path's receiver thread */
    pthread_t rx;
    _Atomic bool stop;
    _Atomic uint32_t step;
    _Atomic uint64_t received;
    uint64_t lat[BP_MAX_FRAMES];
} g;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static pid_t spawn(const char *const *argv, const host *h, int out_fd)
{
    char e1[200], e2[200];
    char *envp[256];
    int n = 0;
    for (char **p = environ; *p && n < 250; p++)
        if (strncmp(*p, "SHMBUS_SHM_DIR=", 15) && strncmp(*p, "SHMBUS_RUNTIME_DIR=", 19))
            envp[n++] = *p;
    if (h) {
        snprintf(e1, sizeof e1, "SHMBUS_SHM_DIR=%s", h->shm);
        snprintf(e2, sizeof e2, "SHMBUS_RUNTIME_DIR=%s", h->run);
        envp[n++] = e1;
        envp[n++] = e2;
    }
    envp[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int host_setup(host *h, char name)
{
    snprintf(h->dir, sizeof h->dir, "%s/%c", g.dir, name);
    snprintf(h->shm, sizeof h->shm, "%s/shm", h->dir);
    snprintf(h->run, sizeof h->run, "%s/run", h->dir);
    snprintf(h->dom, sizeof h->dom, "bench%c%d", name, (int)getpid());
    snprintf(h->cfg, sizeof h->cfg, "%s/bridge.json", h->dir);
    snprintf(h->domcfg, sizeof h->domcfg, "%s/domain.json", h->dir);
    if (mkdir(h->dir, 0700) || mkdir(h->shm, 0700) || mkdir(h->run, 0700))
        return perror(h->dir), -1;
    write_file(
        h->domcfg,
        "{\"pools\": [{\"name\": \"p\", \"classes\": [{\"block_size\": \"64KiB\", \"count\": 16},"
        " {\"block_size\": \"8MiB\", \"count\": 12}, {\"block_size\": \"25MiB\", \"count\": 10}]}],"
        " \"default_topic\": {\"pool\": \"p\", \"history\": 6, \"max_held\": 4,"
        " \"queue_depth\": 16, \"on_full\": \"wait\", \"wait_ms\": 1000}}\n");
    char text[1024];
    const char *route = name == 'a' ? "out" : "in";
    snprintf(text, sizeof text,
             "{\"shmbus\": {\"domain\": \"%s\", \"config\": \"%s\"}, \"dds\": {\"domain_id\": %u,"
             " \"cyclone_config\": \"file://%s/cyclone.xml\"}, \"stats\": {\"topic\": \"\","
             " \"file\": \"%s/stats.json\", \"interval_ms\": 100},"
             " \"%s\": [{\"topic\": \"camera/bench\", \"type\": \"image\", \"qos\":"
             " {\"reliability\": \"reliable\", \"depth\": 4, \"max_blocking_ms\": 1000}}]}\n",
             h->dom, h->domcfg, g.dds_domain, g.dir, h->dir, route);
    write_file(h->cfg, text);
    char exe[PATH_MAX + 32];
    snprintf(exe, sizeof exe, "%s/shmbus-bridge", g.bindir);
    const char *argv[] = {exe, "--config", h->cfg, "-q", NULL};
    h->bridge = spawn(argv, h, -1);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = h->domcfg;
    o.shm_dir = h->shm;
    o.runtime_dir = h->run;
    o.name = "bench-bridge";
    int rc = shmbus_domain_open(h->dom, &o, &h->d);
    if (rc) fprintf(stderr, "shmbus-bench-bridge: %s: %s\n", h->dom, shmbus_last_error());
    return h->bridge > 0 && rc == 0 ? 0 : -1;
}

/* Remove path and everything below it, following no symbolic link. */
static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p); /* best effort: go on with the rest */
    return 0;
}

static void remove_tree(const char *path) { nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

static void *bridge_rx(void *arg)
{
    (void)arg;
    while (!atomic_load(&g.stop)) {
        shmbus_msg *m;
        if (shmbus_sub_recv(g.sub, 100, &m) != 0) continue;
        uint64_t now = bp_mono_ns();
        const shmbus_frame_hdr *h;
        if (shmbus_frame_get(m, &h) == 0 && h->payload_size >= 16) {
            uint64_t st;
            memcpy(&st, shmbus_frame_plane(h, 0), 8);
            if (st == atomic_load(&g.step)) {
                uint64_t n = atomic_load(&g.received);
                if (n < BP_MAX_FRAMES) g.lat[n] = now > h->capture_ns ? now - h->capture_ns : 0;
                atomic_store(&g.received, n + 1);
            }
        }
        shmbus_msg_release(m);
    }
    return NULL;
}

static void bridge_send(uint32_t w, uint32_t h, uint32_t step, uint64_t count, double fps,
                        bp_result *r)
{
    atomic_store(&g.received, 0);
    atomic_store(&g.step, step);
    shmbus_frame_hdr geo;
    shmbus_frame_init(&geo, SHMBUS_PIXFMT_RGB24, w, h);
    uint64_t start = bp_mono_ns();
    r->sent = 0;
    for (uint64_t i = 0; i < count; i++) {
        bp_sleep_until(start + (uint64_t)((double)i * 1e9 / fps));
        shmbus_msg *m;
        shmbus_frame_hdr *hdr;
        if (shmbus_frame_loan(g.pub, &geo, &m, &hdr) != 0) continue;
        uint8_t *px = shmbus_frame_plane_mut(hdr, 0);
        memset(px, (int)(i & 0xff), hdr->payload_size);
        uint64_t s = step;
        memcpy(px, &s, 8);
        memcpy(px + 8, &i, 8);
        hdr->frame_number = i;
        hdr->capture_ns = bp_mono_ns();
        if (shmbus_frame_publish(g.pub, m, false) == 0) r->sent++;
    }
    r->achieved_fps = (double)count * 1e9 / (double)(bp_mono_ns() - start);
    uint64_t idle = bp_mono_ns();
    uint64_t last = 0;
    while (atomic_load(&g.received) < count && bp_mono_ns() - idle < 3000000000ull) {
        if (atomic_load(&g.received) != last) last = atomic_load(&g.received), idle = bp_mono_ns();
        bp_sleep_until(bp_mono_ns() + 10000000ull);
    }
    r->received = atomic_load(&g.received);
    uint64_t n = r->received < BP_MAX_FRAMES ? r->received : BP_MAX_FRAMES;
    r->p50_us = bp_percentile(g.lat, n, 50);
    r->p99_us = bp_percentile(g.lat, n, 99);
}

enum { PATH_DDS, PATH_BRIDGE, PATH_NNG, NPATHS };
static const char *const path_names[NPATHS] = {"dds", "bridge", "nng-tcp"};

/* One step of one path: count frames at fps; a reader child for dds and nng. */
static void run_step(int path, uint32_t w, uint32_t h, uint32_t step, uint64_t count, double fps,
                     bp_result *r)
{
    memset(r, 0, sizeof *r);
    if (path == PATH_BRIDGE) {
        bridge_send(w, h, step, count, fps, r);
        return;
    }
    int fds[2];
    if (pipe(fds) != 0) return;
    char s_step[16], s_count[24];
    snprintf(s_step, sizeof s_step, "%u", step);
    snprintf(s_count, sizeof s_count, "%llu", (unsigned long long)count);
    const char *argv[] = {
        g.self, path == PATH_DDS ? "_dds-reader" : "_nng-reader", s_step, s_count, g.url, NULL};
    bp_dds_writer *dw = path == PATH_DDS ? bp_dds_writer_open() : NULL;
    bp_nng_writer *nw = path == PATH_NNG ? bp_nng_writer_open(g.url) : NULL;
    pid_t pid = (dw || nw) ? spawn(argv, NULL, fds[1]) : -1;
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128] = "";
    bool ready = pid > 0 && f && fgets(line, sizeof line, f) && strncmp(line, "ready", 5) == 0;
    if (ready &&
        (dw ? bp_dds_writer_wait_reader(dw, 10000) : bp_nng_writer_wait_reader(nw, 10000)) == 0) {
        bp_sleep_until(bp_mono_ns() + 300000000ull); /* the reader's side of the match */
        if (dw)
            bp_dds_writer_send(dw, w, h, step, count, fps, r);
        else
            bp_nng_writer_send(nw, w, h, step, count, fps, r);
        unsigned long long got = 0;
        if (fgets(line, sizeof line, f) &&
            sscanf(line, "%llu %lf %lf", &got, &r->p50_us, &r->p99_us) == 3)
            r->received = got;
    }
    if (f)
        fclose(f);
    else
        close(fds[0]);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    bp_dds_writer_close(dw);
    bp_nng_writer_close(nw);
}

typedef struct row {
    double best_fps, best_p50, best_p99;
    double at_p50, at_p99; /* at the common rate */
    bool at_ok;
} row;

static void ladder(int path, uint32_t w, uint32_t h, const double *rates, unsigned nrates,
                   double seconds, uint32_t *step, row *out)
{
    memset(out, 0, sizeof *out);
    bp_result warm; /* first touch of buffers and blocks, connections: not measured */
    run_step(path, w, h, ++*step, 5, rates[0], &warm);
    for (unsigned i = 0; i < nrates && !g_interrupted; i++) {
        uint64_t count = (uint64_t)(rates[i] * seconds);
        if (count < 5) count = 5;
        bp_result r;
        run_step(path, w, h, ++*step, count, rates[i], &r);
        bool ok = r.received == count && r.sent == count && r.achieved_fps >= 0.95 * rates[i];
        fprintf(stderr,
                "  %-8s %4ux%-4u %6.1f fps: sent %llu received %llu (%.1f fps) p50 %.1f us p99 "
                "%.1f us%s\n",
                path_names[path], w, h, rates[i], (unsigned long long)r.sent,
                (unsigned long long)r.received, r.achieved_fps, r.p50_us, r.p99_us,
                ok ? "" : "  <- loss or late");
        if (!ok && path == PATH_BRIDGE) /* where the frames went */
            for (int k = 0; k < 2; k++) {
                char f[300], line[2048] = "";
                snprintf(f, sizeof f, "%s/stats.json", k ? g.b.dir : g.a.dir);
                bp_sleep_until(bp_mono_ns() + 200000000ull);
                FILE *fp = fopen(f, "r");
                if (fp && fgets(line, sizeof line, fp))
                    fprintf(stderr, "    bridge %c: %s", "ab"[k], line);
                if (fp) fclose(fp);
            }
        if (i == 0) {
            out->at_p50 = r.p50_us;
            out->at_p99 = r.p99_us;
            out->at_ok = ok;
        }
        if (!ok) break;
        out->best_fps = rates[i];
        out->best_p50 = r.p50_us;
        out->best_p99 = r.p99_us;
    }
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "_dds-reader") == 0)
        return bp_dds_reader_main((uint32_t)atoi(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc >= 5 && strcmp(argv[1], "_nng-reader") == 0)
        return bp_nng_reader_main(argv[4], (uint32_t)atoi(argv[2]), strtoull(argv[3], NULL, 10));
    double seconds = 2;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true, seconds = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            bool help = strcmp(argv[i], "--help") == 0;
            fprintf(help ? stdout : stderr,
                    "usage: shmbus-bench-bridge [--seconds S] [--quick]\n"
                    "  --seconds S  length of each step of the rate ladder (default 2)\n"
                    "  --quick      1 s steps, the first four rates only\n");
            return help ? 0 : 2;
        }
    }
    if (seconds <= 0) seconds = 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ssize_t n = readlink("/proc/self/exe", g.self, sizeof g.self - 1);
    if (n <= 0) return 1;
    g.self[n] = '\0';
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", g.self);
    snprintf(g.bindir, sizeof g.bindir, "%s", dirname(tmp));
    snprintf(g.dir, sizeof g.dir, "/dev/shm/shmbus-bench-bridge.XXXXXX");
    if (!mkdtemp(g.dir)) return perror("mkdtemp"), 1;
    g.dds_domain = (unsigned)getpid() % 230u;
    snprintf(g.url, sizeof g.url, "tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
    char xml[1024], path[160];
    snprintf(
        xml, sizeof xml,
        "<CycloneDDS><Domain id=\"%u\"><General><Interfaces><NetworkInterface "
        "address=\"127.0.0.1\"/>"
        "</Interfaces><AllowMulticast>false</AllowMulticast><MaxMessageSize>65500B</MaxMessageSize>"
        "<FragmentSize>62000B</FragmentSize></General><Discovery><ParticipantIndex>auto"
        "</ParticipantIndex><MaxAutoParticipantIndex>20</MaxAutoParticipantIndex><Peers><Peer "
        "address=\"127.0.0.1\"/></Peers></Discovery><Internal><SocketReceiveBufferSize "
        "min=\"default\" "
        "max=\"64MiB\"/><Watermarks><WhcHigh>64MB</WhcHigh><WhcHighInit>64MB</WhcHighInit></"
        "Watermarks>"
        "</Internal></Domain></CycloneDDS>\n",
        g.dds_domain);
    snprintf(path, sizeof path, "%s/cyclone.xml", g.dir);
    write_file(path, xml);
    char uri[200];
    snprintf(uri, sizeof uri, "file://%s", path);
    setenv("CYCLONEDDS_URI", uri, 1);
    int status = 1, rc = 0;
    const char *what = "host a";
    if ((rc = host_setup(&g.a, 'a')) == 0 && (what = "host b", rc = host_setup(&g.b, 'b')) == 0 &&
        (what = "publisher", rc = shmbus_pub_open(g.a.d, "camera/bench", &g.pub)) == 0 &&
        (what = "subscriber", rc = shmbus_sub_open(g.b.d, "camera/bench", NULL, &g.sub)) == 0 &&
        (what = "host a's bridge", rc = shmbus_pub_wait_subscribers(g.pub, 1, 20000)) == 0 &&
        (what = "host b's bridge", rc = shmbus_sub_wait_publishers(g.sub, 1, 20000)) == 0 &&
        (what = "thread", rc = pthread_create(&g.rx, NULL, bridge_rx, NULL)) == 0) {
        sleep(2); /* the two bridges discover each other */
        static const double r1080[] = {30, 60, 90, 120, 180, 240, 360};
        static const double r4k[] = {5, 10, 15, 20, 30, 45, 60};
        static const struct {
            const char *name;
            uint32_t w, h;
            const double *rates;
        } sizes[] = {{"1080p", 1920, 1080, r1080}, {"4K", 3840, 2160, r4k}};
        unsigned nrates = quick ? 4 : 7;
        row rows[2][NPATHS];
        uint32_t step = 0;
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < NPATHS; p++)
                ladder(p, sizes[s].w, sizes[s].h, sizes[s].rates, nrates, seconds, &step,
                       &rows[s][p]);
        printf("rgb24 frames host A -> host B over loopback (reliable, %.0f s per step)\n",
               seconds);
        printf("                ------ highest rate without loss ------   -- at %s --\n",
               "30 / 5 fps");
        printf(" frame  path          fps     p50 ms     p99 ms             p50 ms   p99 ms\n");
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < NPATHS; p++) {
                const row *r = &rows[s][p];
                printf(" %-5s  %-8s  %7.0f  %9.2f  %9.2f          %9.2f %8.2f%s\n", sizes[s].name,
                       path_names[p], r->best_fps, r->best_p50 / 1e3, r->best_p99 / 1e3,
                       r->at_p50 / 1e3, r->at_p99 / 1e3, r->at_ok ? "" : " (loss)");
            }
        const row *d = &rows[0][PATH_DDS], *b = &rows[0][PATH_BRIDGE];
        if (d->at_p50 > 0)
            printf("bridge / dds at 1080p, 30 fps: p50 %.2fx, p99 %.2fx; highest rate %.2fx "
                   "(target: the bridge adds under 10%%: p50 <= 1.10x)\n",
                   b->at_p50 / d->at_p50, d->at_p99 > 0 ? b->at_p99 / d->at_p99 : 0,
                   d->best_fps > 0 ? b->best_fps / d->best_fps : 0);
        status = 0;
        atomic_store(&g.stop, true);
        pthread_join(g.rx, NULL);
    } else {
        fprintf(stderr, "shmbus-bench-bridge: set-up failed: %s: %d %s\n", what, rc,
                shmbus_last_error());
    }
    if (g.sub) shmbus_sub_close(g.sub);
    if (g.pub) shmbus_pub_close(g.pub);
    host *hosts[] = {&g.a, &g.b};
    for (int i = 0; i < 2; i++) {
        if (hosts[i]->bridge > 0) {
            kill(hosts[i]->bridge, SIGTERM);
            waitpid(hosts[i]->bridge, NULL, 0);
        }
        if (hosts[i]->d) shmbus_domain_close(hosts[i]->d);
    }
    remove_tree(g.dir);
    return status;
}
