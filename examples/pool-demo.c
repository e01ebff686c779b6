/* pool-demo: shmbus below topics. One publisher process writes 1080p RGB frames into pooled shared
 * memory and hands 64-byte descriptors to three subscriber processes over pipes; each
 * subscriber reads the frame in place, checks it and releases it. The publisher keeps its
 * last HISTORY frames held, so a subscriber that falls further behind gets "expired".
 *
 * Uses only api/shmbus.h: pools, messages and 64-byte descriptors, the layer the topics are
 * built on, for programs that carry descriptors over their own channels.
 *
 * Every exit path closes the domain: errors go to one cleanup, SIGINT/SIGTERM stop the
 * publishing loop (the subscribers ignore them and end when their pipe closes), so nothing
 * stays in /dev/shm.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus.h"

#define W 1920
#define H 1080
#define FRAME (W * H * 3)
#define HISTORY 4
#define SUBS 3

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over every 64th byte: cheap but real */
    for (size_t i = 0; i < n; i += 64)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

struct frame_head {
    uint64_t number;
    uint64_t sum; /* checksum of the pixels after this header */
};

struct sub_result {
    uint64_t received, expired, bad;
    uint64_t lat_us[2]; /* p50, p99 */
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char usage[] =
    "usage: pool-demo [FRAMES]\n"
    "\n"
    "Publish FRAMES (default 150) 1920x1080 RGB frames at 30 fps from a pool to three\n"
    "subscriber processes over pipes, 64-byte descriptors only; the third is slow on purpose.\n"
    "Exit codes: 0 ok, 1 error or a check failed, 2 usage error.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "pool-demo: %s: %s (%s)\n", what, shmbus_strerror(rc), shmbus_last_error());
    return 1;
}

static void subscriber(const char *domain, int id, int in, int out, unsigned delay_us)
{
    signal(SIGINT, SIG_IGN); /* a Ctrl-C reaches the whole group: the parent decides */
    signal(SIGTERM, SIG_IGN);
    shmbus_domain *d;
    char name[32];
    snprintf(name, sizeof name, "demo-sub%d", id);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.name = name;
    int rc = shmbus_domain_open(domain, &o, &d);
    if (rc)
        _exit(die("subscriber open", rc));
    struct sub_result r = {0};
    uint64_t *lat = calloc(100000, sizeof *lat);
    shmbus_desc desc;
    while (read(in, &desc, sizeof desc) == (ssize_t)sizeof desc) {
        shmbus_msg *m;
        rc = shmbus_domain_acquire(d, &desc, &m);
        if (rc == SHMBUS_EEXPIRED) {
            r.expired++;
            continue;
        }
        if (rc) {
            die("acquire", rc);
            shmbus_domain_close(d);
            _exit(1);
        }
        const uint8_t *px = shmbus_msg_data(m);
        const struct frame_head *fh = (const void *)px;
        if (r.received < 100000)
            lat[r.received] = (now_ns() - shmbus_msg_timestamp_ns(m)) / 1000;
        if (checksum(px + sizeof *fh, FRAME - sizeof *fh) != fh->sum)
            r.bad++;
        r.received++;
        if (delay_us)
            usleep(delay_us); /* a slow consumer: keeps the frame while it works */
        shmbus_msg_release(m);
    }
    size_t n = r.received < 100000 ? r.received : 100000;
    qsort(lat, n, sizeof *lat, cmp_u64);
    if (n) {
        r.lat_us[0] = lat[n / 2];
        r.lat_us[1] = lat[n * 99 / 100];
    }
    free(lat);
    bool written = write(out, &r, sizeof r) == (ssize_t)sizeof r;
    rc = shmbus_domain_close(d);
    _exit(written && rc == 0 ? 0 : 1);
}

int main(int argc, char **argv)
{
    int frames = 150;
    if (argc > 1) {
        char *end;
        long v = strtol(argv[1], &end, 10);
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (argc > 2 || *end || end == argv[1] || v < 1 || v > 1000000) {
            fprintf(stderr, "pool-demo: expected a number of frames (1..1000000)\n%s", usage);
            return 2;
        }
        frames = (int)v;
    }
    int fps = 30;
    char domain[32];
    snprintf(domain, sizeof domain, "demo%d", (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Fork the subscribers before this process touches the domain. */
    int to_sub[SUBS][2], from_sub[SUBS][2];
    pid_t pids[SUBS];
    unsigned delays[SUBS] = {0, 0, 150000}; /* the third one is slow: 150 ms per frame */
    for (int i = 0; i < SUBS; i++) {
        if (pipe(to_sub[i]) || pipe(from_sub[i]))
            return perror("pipe"), 1;
        pids[i] = fork();
        if (pids[i] == 0) {
            for (int j = 0; j <= i; j++)
                close(to_sub[j][1]);
            subscriber(domain, i, to_sub[i][0], from_sub[i][1], delays[i]);
        }
        close(to_sub[i][0]);
        close(from_sub[i][1]);
    }

    shmbus_domain *d = NULL;
    shmbus_pool *pool;
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.name = "demo-pub";
    shmbus_msg *history[HISTORY] = {0};
    uint64_t t0 = now_ns(), sent = 0, full = 0;
    int failed = 0;
    int rc = shmbus_domain_open(domain, &o, &d);
    if (rc) {
        failed = die("open domain", rc);
        d = NULL;
        goto out;
    }
    shmbus_pool_class cls = {.block_size = FRAME, .count = 8};
    if ((rc = shmbus_pool_open(d, "frames", &cls, 1, &pool))) {
        failed = die("open pool", rc);
        goto out;
    }
    for (int f = 0; f < frames && !stop; f++) {
        shmbus_msg *m;
        rc = shmbus_pool_loan(pool, FRAME, 100, &m);
        if (rc) {
            full++;
            continue;
        }
        uint8_t *px = shmbus_msg_data(m);
        struct frame_head *fh = (void *)px;
        for (int y = 0; y < H; y++) /* a moving gradient; the header overlays row 0 */
            memset(px + (size_t)y * W * 3, (uint8_t)(y + f * 4), (size_t)W * 3);
        fh->number = (uint64_t)f;
        fh->sum = checksum(px + sizeof *fh, FRAME - sizeof *fh);
        shmbus_desc desc;
        if ((rc = shmbus_msg_describe(m, FRAME, &desc))) {
            shmbus_msg_release(m);
            failed = die("describe", rc);
            break;
        }
        if (history[f % HISTORY])
            shmbus_msg_release(history[f % HISTORY]);
        history[f % HISTORY] = m; /* keep-last HISTORY */
        for (int i = 0; i < SUBS; i++)
            if (write(to_sub[i][1], &desc, sizeof desc) != (ssize_t)sizeof desc)
                fprintf(stderr, "subscriber %d gone\n", i);
        sent++;
        uint64_t next = t0 + (uint64_t)(f + 1) * 1000000000ull / (uint64_t)fps;
        uint64_t now = now_ns();
        if (next > now)
            usleep((useconds_t)((next - now) / 1000));
    }
out:
    for (int i = 0; i < SUBS; i++)
        close(to_sub[i][1]); /* the subscribers finish what they have and report */
    struct sub_result res[SUBS];
    for (int i = 0; i < SUBS; i++) {
        if (read(from_sub[i][0], &res[i], sizeof res[i]) != (ssize_t)sizeof res[i])
            memset(&res[i], 0, sizeof res[i]);
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < HISTORY; i++)
        if (history[i])
            shmbus_msg_release(history[i]);
    if (failed || stop) {
        if (d && (rc = shmbus_domain_close(d)) != 0)
            die("close", rc);
        if (stop && !failed)
            fprintf(stderr, "pool-demo: stopped after %" PRIu64 " frames\n", sent);
        return failed;
    }
    shmbus_class_stats st;
    shmbus_pool_stats(pool, &st, 1);

    double secs = (double)(now_ns() - t0) / 1e9;
    printf("shmbus pool demo: %" PRIu64 " frames of %dx%d RGB (%.1f MB) in %.1f s, "
           "%" PRIu64 " loans failed\n",
           sent, W, H, FRAME / 1e6, secs, full);
    printf("%-10s %9s %8s %9s %8s %8s\n", "subscriber", "received", "expired", "bad", "p50_us",
           "p99_us");
    for (int i = 0; i < SUBS; i++)
        printf("sub%-7d %9" PRIu64 " %8" PRIu64 " %9" PRIu64 " %8" PRIu64 " %8" PRIu64 "%s\n", i,
               res[i].received, res[i].expired, res[i].bad, res[i].lat_us[0], res[i].lat_us[1],
               delays[i] ? "  (slow on purpose)" : "");
    printf("shared memory: %u blocks x %.1f MB = %.1f MB, high water %u blocks; bytes sent per "
           "frame: %d (descriptors) instead of %.1f MB copied to %d processes\n",
           st.total, FRAME / 1e6, st.total * (FRAME / 1e6), st.high_water,
           SUBS * SHMBUS_DESC_SIZE, SUBS * FRAME / 1e6, SUBS);
    printf("blocks in use at the end: %u\n", st.used);
    rc = shmbus_domain_close(d);
    if (rc)
        return die("close", rc);
    int bad = st.used != 0;
    for (int i = 0; i < SUBS; i++)
        bad |= res[i].bad != 0 || (delays[i] == 0 && res[i].received + res[i].expired != sent);
    return bad;
}
