/* camera-pub: publish camera frames on a shmbus topic, written in place in shared memory.
 *
 * Each frame: loan a block from the topic's pool, write the frame header and the pixels
 * straight into it (the test pattern is drawn there, a Y4M frame is read() there, a V4L2
 * frame is copied there from the driver's buffer, or read() there with --v4l2-read),
 * checksum the pixels (unless --no-checksum), publish. Subscribers in other processes read the
 * same memory.
 *
 * Exit status (docs/cli.md): 0 done (count reached, end of input, or stopped by a signal),
 * 1 bus or system error, 2 usage error, 3 the input cannot be used (no such file or device,
 * a bad Y4M stream), 4 invalid configuration. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "shmbus_frame.h"
#include "shmbus.h"
#include "source.h"

static const char usage[] =
    "usage: camera-pub [options]\n"
    "Publish camera frames on a shmbus topic, zero-copy.\n"
    "\n"
    "Source (one; default: the built-in test pattern):\n"
    "  --size WxH           test pattern size (default 1280x720)\n"
    "  --format FMT         rgb24|gray8|yuv420p|yuv422p|yuv444p|yuyv422 (default rgb24;\n"
    "                       for --v4l2: the device's first of yuyv422, rgb24, yuv420p, ...)\n"
    "  --y4m FILE|-         a YUV4MPEG2 stream (ffmpeg -f yuv4mpegpipe), '-' for stdin\n"
    "  --loop               start a Y4M file over at its end\n"
    "  --v4l2 DEVICE        a V4L2 camera, e.g. /dev/video0 (mmap streaming, one copy)\n"
    "  --v4l2-read          use read() instead: frames land in shared memory directly\n"
    "\n"
    "Pacing and length:\n"
    "  --fps N              frames per second: 30, 29.97 or 30000/1001 (default 30; Y4M:\n"
    "                       the stream's F; 0: as fast as possible). Absolute deadlines.\n"
    "  --count N            stop after N frames (default: until the input ends or a signal)\n"
    "  --wait-subs N        before the first frame, wait until N subscribers are connected\n"
    "  --wait-timeout S     ...for at most S seconds (default 30)\n"
    "  --linger-ms MS       after the last frame, wait MS before leaving so subscribers can\n"
    "                       take the frames still in flight (default 500)\n"
    "  --no-checksum        publish frames without the pixel checksum (saves about 1 ms per\n"
    "                       8 MB; subscribers count them as unchecked)\n"
    "\n"
    "Bus:\n"
    "  --config FILE        domain configuration (JSON); default: the embedded default\n"
    "  --domain NAME        domain name (default: the configuration's)\n"
    "  --topic T            topic (default camera/front)\n"
    "  --name N             participant name shown by tools (default camera-pub)\n"
    "\n"
    "Output:\n"
    "  --summary FILE       write a JSON summary at the end\n"
    "  -q, --quiet          no status line every second\n"
    "  -h, --help\n";

typedef struct options {
    app_common c;
    source_opts src;
    bool size_given;
    uint64_t wait_subs, wait_timeout_s, linger_ms;
    bool no_checksum;
} options;

typedef struct stats {
    uint64_t sent, skipped, late, bytes;
    uint64_t t_first, t_last; /* first and last publish */
} stats;

/* Frames per second between the first and the last publish. */
static double stats_fps(const stats *st)
{
    return st->sent > 1 && st->t_last > st->t_first
               ? (double)(st->sent - 1) * 1e9 / (double)(st->t_last - st->t_first)
               : 0.0;
}

static void parse_options(int argc, char **argv, options *o)
{
    enum { O_SIZE = APP_OPT_OWN, O_FORMAT, O_Y4M, O_LOOP, O_V4L2, O_V4L2_READ, O_FPS, O_WAIT,
           O_WAIT_TIMEOUT, O_LINGER, O_NO_CHECKSUM };
    static const struct option longopts[] = {
        {"size", required_argument, 0, O_SIZE},       {"format", required_argument, 0, O_FORMAT},
        {"y4m", required_argument, 0, O_Y4M},         {"loop", no_argument, 0, O_LOOP},
        {"v4l2", required_argument, 0, O_V4L2},       {"v4l2-read", no_argument, 0, O_V4L2_READ},
        {"fps", required_argument, 0, O_FPS},         APP_LONGOPT_COUNT,
        {"wait-subs", required_argument, 0, O_WAIT},
        {"wait-timeout", required_argument, 0, O_WAIT_TIMEOUT},
        {"linger-ms", required_argument, 0, O_LINGER},
        {"no-checksum", no_argument, 0, O_NO_CHECKSUM}, APP_LONGOPTS_BUS,
        APP_LONGOPT_SUMMARY,                          APP_LONGOPTS_END};
    const char *prog = o->c.prog;
    int opt;
    while ((opt = app_getopt(&o->c, argc, argv, longopts)) != -1) {
        switch (opt) {
        case O_SIZE:
            if (!app_parse_size(optarg, &o->src.width, &o->src.height))
                app_usage_error(prog, "--size %s: expected WxH, e.g. 1920x1080", optarg);
            o->size_given = true;
            break;
        case O_FORMAT:
            if ((o->src.format = shmbus_pixfmt_parse(optarg)) == SHMBUS_PIXFMT_NONE)
                app_usage_error(prog, "--format %s: expected %s", optarg, shmbus_pixfmt_list());
            break;
        case O_Y4M: o->src.kind = SRC_Y4M; o->src.input = optarg; break;
        case O_V4L2: o->src.kind = SRC_V4L2; o->src.input = optarg; break;
        case O_LOOP: o->src.loop = true; break;
        case O_V4L2_READ: o->src.v4l2_read = true; break;
        case O_FPS:
            if (!app_parse_fps(optarg, &o->src.fps_num, &o->src.fps_den))
                app_usage_error(prog, "--fps %s: expected a rate like 30, 29.97 or 30000/1001",
                                optarg);
            o->src.fps_given = true;
            break;
        case O_WAIT:
            if (!app_parse_u64(optarg, &o->wait_subs) || o->wait_subs > 1000)
                app_usage_error(prog, "--wait-subs %s: expected a number", optarg);
            break;
        case O_WAIT_TIMEOUT:
            if (!app_parse_u64(optarg, &o->wait_timeout_s))
                app_usage_error(prog, "--wait-timeout %s: expected seconds", optarg);
            break;
        case O_NO_CHECKSUM: o->no_checksum = true; break;
        case O_LINGER:
            if (!app_parse_u64(optarg, &o->linger_ms) || o->linger_ms > 600000)
                app_usage_error(prog, "--linger-ms %s: expected milliseconds", optarg);
            break;
        }
    }
    if (o->src.loop && o->src.kind != SRC_Y4M)
        app_usage_error(prog, "--loop goes with --y4m");
    if (o->src.v4l2_read && o->src.kind != SRC_V4L2)
        app_usage_error(prog, "--v4l2-read goes with --v4l2");
    if (o->src.kind == SRC_Y4M && o->size_given)
        app_usage_error(prog, "--size does not apply to --y4m: frames keep the stream's size");
    if (o->src.kind == SRC_Y4M && o->src.format != SHMBUS_PIXFMT_NONE)
        app_usage_error(prog, "--format does not apply to --y4m: frames keep the stream's "
                        "format (its C parameter)");
}

/* ---- publishing --------------------------------------------------------------------------- */

static int wait_for_subscribers(const options *o, shmbus_pub *p)
{
    uint64_t deadline = app_now_ns() + o->wait_timeout_s * 1000000000ull;
    if (!o->c.quiet)
        fprintf(stderr, "%s: waiting for %" PRIu64 " subscriber(s)\n", o->c.prog, o->wait_subs);
    while (!app_stopping()) {
        if (shmbus_pub_wait_subscribers(p, (int)o->wait_subs, 100) == 0)
            return 0;
        if (app_now_ns() > deadline) {
            fprintf(stderr, "%s: only %d of %" PRIu64 " subscribers connected in %" PRIu64
                    " s\n", o->c.prog, shmbus_pub_subscribers(p), o->wait_subs,
                    o->wait_timeout_s);
            return 1;
        }
    }
    return 0;
}

/* The publishing loop. Returns the exit status. */
static int run(const options *o, source *s, shmbus_pub *p, stats *st)
{
    const char *prog = o->c.prog;
    uint64_t msg_size = shmbus_frame_message_size(&s->geom);
    uint32_t num = s->geom.fps_num, den = s->geom.fps_den;
    if (o->src.fps_given) {
        num = o->src.fps_num;
        den = o->src.fps_den;
    } else if (!(s->geom.flags & SHMBUS_FRAME_FLAG_HAS_FPS) || o->src.kind == SRC_PATTERN) {
        num = 30;
        den = 1;
    }
    bool paced = num > 0 && o->src.kind != SRC_V4L2; /* a camera paces itself */
    uint64_t period = paced ? 1000000000ull * den / num : 0;
    if (o->src.kind == SRC_PATTERN && num > 0) { /* a stream keeps its own F: --fps only paces */
        s->geom.flags |= SHMBUS_FRAME_FLAG_HAS_FPS;
        s->geom.fps_num = num;
        s->geom.fps_den = den;
    }
    uint64_t t0 = app_now_ns(), k = 0, next_report = t0 + 1000000000ull, last_sent = 0;
    int status = 0;
    for (uint64_t n = 0; !app_stopping() && (o->c.count == 0 || n < o->c.count); n++, k++) {
        uint64_t deadline = t0 + k * period;
        if (paced && o->src.kind == SRC_Y4M && !app_sleep_until(deadline))
            break;
        shmbus_msg *m;
        int rc = shmbus_pub_loan(p, msg_size, &m);
        if (rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT) {
            /* every block is held: drop this frame, as a camera would, and go on */
            if (st->skipped++ == 0 || st->skipped % 100 == 0)
                app_fail(prog, "frame skipped (pool full)", rc);
            if (paced && o->src.kind == SRC_PATTERN && !app_sleep_until(deadline))
                break;
            continue;
        }
        if (rc) {
            app_fail(prog, "loan", rc);
            if (rc == SHMBUS_ETOOBIG)
                fprintf(stderr,
                        "%s: a %ux%u %s frame needs %" PRIu64 " bytes: raise the "
                        "topic's max_message_size (and the pool's block size) in the "
                        "configuration\n",
                        prog, s->geom.width, s->geom.height,
                        shmbus_pixfmt_name((int)s->geom.format), msg_size);
            status = 1;
            break;
        }
        shmbus_frame_hdr *h = shmbus_msg_data(m);
        *h = s->geom;
        h->frame_number = n;
        uint64_t capture_ns;
        int fill = source_fill(s, h, n, &capture_ns);
        if (fill != FILL_OK) {
            shmbus_msg_release(m);
            status = fill == FILL_BAD_INPUT ? 3 : 0;
            break;
        }
        if (!o->no_checksum) {
            h->checksum = shmbus_frame_checksum(shmbus_frame_plane(h, 0), h->payload_size);
            h->flags |= SHMBUS_FRAME_FLAG_CHECKSUM;
        }
        if (o->src.kind == SRC_PATTERN) {
            /* drawn ahead of time; "captured" at its deadline, so latency is the bus's */
            if (paced && !app_sleep_until(deadline)) {
                shmbus_msg_release(m);
                break;
            }
            capture_ns = app_now_ns();
        }
        h->capture_ns = capture_ns;
        rc = shmbus_pub_publish(p, m, msg_size);
        if (rc) {
            app_fail(prog, "publish", rc);
            if (rc != SHMBUS_ETRANSPORT)
                shmbus_msg_release(m);
            status = 1;
            break;
        }
        uint64_t now = app_now_ns();
        if (st->sent++ == 0)
            st->t_first = now;
        st->t_last = now;
        st->bytes += msg_size;
        if (paced && now > deadline + period) {
            /* late by more than a frame: the next ones go out at once until the schedule is
             * met again, so the average rate holds; only far behind (a stopped process, a
             * pool that stayed full) does a new schedule start */
            st->late++;
            if (now > deadline + 10 * period)
                t0 = now - k * period;
        }
        if (now >= next_report) {
            if (!o->c.quiet)
                fprintf(stderr, "%s: frame %" PRIu64 ", %" PRIu64 " fps, %d subscriber(s), %"
                        PRIu64 " skipped\n", prog, n, st->sent - last_sent,
                        shmbus_pub_subscribers(p), st->skipped);
            last_sent = st->sent;
            next_report += 1000000000ull;
            if (next_report < now)
                next_report = now + 1000000000ull;
        }
    }
    return status;
}

/* The topic's pool as the configuration describes it, for frames of msg_size bytes. */
typedef struct pool_plan {
    bool found;
    char name[32];
    uint64_t pool_bytes;  /* shared memory the pool occupies */
    uint64_t block_size;  /* the class a frame is loaned from */
    uint64_t blocks;      /* blocks in that class */
    uint64_t blocks_fit;  /* blocks in every class a frame fits */
    unsigned history;     /* frames the publisher keeps held */
} pool_plan;

static pool_plan plan_pool(const options *o, uint64_t msg_size)
{
    pool_plan pp = {0};
    shmbus_config_summary *cs = calloc(1, sizeof *cs);
    if (!cs || shmbus_config_load(o->c.config, cs) != 0) {
        free(cs);
        return pp;
    }
    const shmbus_topic_def *t = cs->has_default_topic ? &cs->default_topic : NULL;
    for (unsigned i = 0; i < cs->ntopics; i++)
        if (strcmp(cs->topics[i].name, o->c.topic) == 0)
            t = &cs->topics[i];
    for (unsigned i = 0; t && i < cs->npools; i++) {
        const shmbus_pool_def *pd = &cs->pools[i];
        if (strcmp(pd->name, t->pool) != 0)
            continue;
        pp.found = true;
        snprintf(pp.name, sizeof pp.name, "%s", pd->name);
        pp.pool_bytes = pd->bytes;
        pp.history = t->history;
        for (unsigned c = 0; c < pd->nclasses; c++) {
            if (pd->classes[c].block_size < msg_size)
                continue;
            pp.blocks_fit += pd->classes[c].count;
            if (!pp.block_size || pd->classes[c].block_size < pp.block_size) {
                pp.block_size = pd->classes[c].block_size;
                pp.blocks = pd->classes[c].count;
            }
        }
    }
    free(cs);
    return pp;
}

/* A pool whose frame-sized blocks the publisher's own history can hold entirely would stall
 * after `history` frames: say so now rather than skip every frame after that. */
static int check_pool(const options *o, uint64_t msg_size)
{
    pool_plan pp = plan_pool(o, msg_size);
    if (!pp.found || pp.blocks_fit == 0 || pp.blocks_fit > pp.history)
        return 0; /* unknown here, too small (the loan will say), or fine */
    fprintf(stderr, "%s: pool \"%s\" has %" PRIu64 " block(s) large enough for a %" PRIu64
            "-byte frame, and topic \"%s\" keeps its last %u frames held: no block would be "
            "free for frame %u. Give it a configuration with more blocks of that size "
            "(docs/camera.md, \"Sizing the pool\").\n", o->c.prog, pp.name,
            pp.blocks_fit, msg_size, o->c.topic, pp.history, pp.history + 1);
    return 1;
}

/* What the summary says about memory: the topic's pool and how much of it was in use. */
static void pool_summary(const options *o, shmbus_domain *d, uint64_t msg_size, FILE *f)
{
    pool_plan pp = plan_pool(o, msg_size);
    if (!pp.found)
        return;
    unsigned peak = 0;
    shmbus_pool *pool;
    shmbus_class_stats cls[SHMBUS_MAX_CLASSES];
    if (shmbus_pool_open(d, pp.name, NULL, 0, &pool) == 0) {
        int nc = shmbus_pool_stats(pool, cls, SHMBUS_MAX_CLASSES);
        for (int c = 0; c < nc; c++)
            if (cls[c].block_size == pp.block_size)
                peak = cls[c].high_water;
    }
    fprintf(f, ",\n  \"pool\": \"%s\", \"pool_bytes\": %" PRIu64 ", \"block_size\": %" PRIu64
            ", \"blocks\": %" PRIu64 ", \"peak_blocks\": %u, \"history\": %u", pp.name,
            pp.pool_bytes, pp.block_size, pp.blocks, peak, pp.history);
}

static void write_summary(const options *o, const source *s, const stats *st, shmbus_domain *d,
                          int subscribers)
{
    FILE *f = fopen(o->c.summary, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", o->c.prog, o->c.summary, strerror(errno));
        return;
    }
    double secs = (double)(st->t_last - st->t_first) / 1e9;
    uint64_t msg_size = shmbus_frame_message_size(&s->geom);
    fprintf(f,
            "{\"sent\": %" PRIu64 ", \"skipped\": %" PRIu64 ", \"late\": %" PRIu64
            ", \"duration_s\": %.3f, \"fps\": %.2f,\n  \"width\": %u, \"height\": %u, "
            "\"format\": \"%s\", \"frame_bytes\": %" PRIu64 ", \"message_bytes\": %" PRIu64
            ", \"subscribers\": %d, \"checksum\": %s",
            st->sent, st->skipped, st->late, secs, stats_fps(st), s->geom.width, s->geom.height,
            shmbus_pixfmt_name((int)s->geom.format), s->geom.payload_size, msg_size, subscribers,
            o->no_checksum ? "false" : "true");
    pool_summary(o, d, msg_size, f);
    fprintf(f, "}\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    options o = {.c = {.prog = "camera-pub", .usage = usage, .topic = APP_DEFAULT_TOPIC},
                 .src = {.prog = "camera-pub", .width = 1280, .height = 720},
                 .wait_timeout_s = 30, .linger_ms = 500};
    parse_options(argc, argv, &o);
    if (app_signals_init(o.c.prog) != 0)
        return 1;
    source s;
    int status = source_open(&s, &o.src); /* before the bus: bad input fails fast */
    if (status != 0 || app_stopping()) {
        source_close(&s);
        return status;
    }
    if (check_pool(&o, shmbus_frame_message_size(&s.geom)) != 0) {
        source_close(&s);
        return 1;
    }
    shmbus_domain *d;
    shmbus_pub *p = NULL;
    int rc = app_open_domain(&o.c, &d);
    if (rc) {
        source_close(&s);
        return app_exit_for_open(rc);
    }
    if ((rc = shmbus_pub_open(d, o.c.topic, &p)) != 0) {
        char what[160];
        snprintf(what, sizeof what, "publishing on \"%s\" in domain \"%s\"", o.c.topic,
                 shmbus_domain_name(d));
        app_fail(o.c.prog, what, rc);
        status = rc == SHMBUS_ENOENT ? APP_EXIT_NOTFOUND : APP_EXIT_ERROR;
        goto out_domain;
    }
    if (!o.c.quiet)
        fprintf(stderr,
                "%s: publishing %ux%u %s frames (%" PRIu64 " bytes) on \"%s\" in "
                "domain \"%s\"\n",
                o.c.prog, s.geom.width, s.geom.height, shmbus_pixfmt_name((int)s.geom.format),
                shmbus_frame_message_size(&s.geom), o.c.topic, shmbus_domain_name(d));
    stats st = {0};
    if (o.wait_subs && (status = wait_for_subscribers(&o, p)) != 0)
        goto out_pub;
    status = run(&o, &s, p, &st);
    if (!app_stopping() && o.linger_ms) /* let subscribers take the last frames */
        app_sleep_until(app_now_ns() + o.linger_ms * 1000000ull);
    fprintf(stderr, "%s: sent %" PRIu64 " frames in %.2f s (%.2f fps), %" PRIu64
            " skipped, %" PRIu64 " late\n", o.c.prog, st.sent,
            (double)(st.t_last - st.t_first) / 1e9, stats_fps(&st), st.skipped, st.late);
    if (o.c.summary)
        write_summary(&o, &s, &st, d, shmbus_pub_subscribers(p));
out_pub:
    if ((rc = shmbus_pub_close(p)) != 0) {
        app_fail(o.c.prog, "closing the publisher", rc);
        status = 1;
    }
out_domain:
    if ((rc = shmbus_domain_close(d)) != 0) {
        app_fail(o.c.prog, "closing the domain", rc);
        status = 1;
    }
    source_close(&s);
    return status;
}
