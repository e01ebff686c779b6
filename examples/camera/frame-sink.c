/* frame-sink: subscribe to camera frames and write them out, reading them in place in shared
 * memory: as a Y4M stream (ffmpeg and ffplay read it back) and/or as PPM snapshots.
 *
 * Y4M output is bit-exact for the formats Y4M has (gray8, yuv420p, yuv422p, yuv444p): the
 * planes go from shared memory to the output with one write per frame. rgb24 frames are
 * converted to 4:4:4 YUV (BT.601 limited range) and yuyv422 frames to planar 4:2:2, because
 * Y4M has no RGB or packed formats.
 *
 * Frames published without a checksum (camera-pub --no-checksum) are written and counted as
 * unchecked, not as errors.
 *
 * Exit status (docs/cli.md): 0 done, 1 bus, system or output error, or frames failed their
 * checksum or were malformed, 2 usage error, 3 no such topic, 4 invalid configuration. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "app.h"
#include "convert.h"
#include "shmbus_frame.h"
#include "shmbus.h"
#include "y4m.h"

static const char usage[] =
    "usage: frame-sink [options] --y4m FILE|- and/or --ppm DIR\n"
    "Write the camera frames of a shmbus topic to a Y4M stream and/or PPM snapshots.\n"
    "\n"
    "  --y4m FILE|-      write a YUV4MPEG2 stream ('-': stdout, e.g. | ffplay -)\n"
    "  --ppm DIR         write snapshots DIR/frame-NNNNNNNN.ppm (P6 RGB; made if missing)\n"
    "  --every N         a snapshot every N frames received (default 30)\n"
    "  --count N         stop after N frames\n"
    "  --delay-ms MS     hold each frame MS ms longer (simulate a slow disk)\n"
    "  --follow          keep waiting when the publishers leave (default: finish)\n"
    "  --history         start with the frames the publishers still hold\n"
    "  --config FILE     domain configuration (JSON); default: the embedded default\n"
    "  --domain NAME     domain name (default: the configuration's)\n"
    "  --topic T         topic (default camera/front)\n"
    "  --name N          participant name shown by tools (default frame-sink)\n"
    "  --summary FILE    write a JSON summary at the end\n"
    "  -q, --quiet       no notes on stderr\n"
    "  -h, --help\n";

typedef struct options {
    app_common c;
    const char *y4m, *ppm;
    uint64_t every;
} options;

typedef struct sink {
    const options *o;
    int y4m_fd;
    bool y4m_started, output_closed;
    shmbus_frame_hdr y4m_geom; /* the stream's geometry, from its first frame */
    uint8_t *row;           /* one converted row */
    size_t row_cap;
    uint64_t received, written, snapshots, mismatched, bad_checksum, invalid, unchecked;
    app_seq seq;
} sink;

static void parse_options(int argc, char **argv, options *o)
{
    enum { O_Y4M = APP_OPT_OWN, O_PPM, O_EVERY };
    static const struct option longopts[] = {
        {"y4m", required_argument, 0, O_Y4M},     {"ppm", required_argument, 0, O_PPM},
        {"every", required_argument, 0, O_EVERY}, APP_LONGOPT_COUNT,
        APP_LONGOPT_DELAY,                        APP_LONGOPT_FOLLOW,
        APP_LONGOPT_HISTORY,                      APP_LONGOPTS_BUS,
        APP_LONGOPT_SUMMARY,                      APP_LONGOPTS_END};
    const char *prog = o->c.prog;
    int opt;
    while ((opt = app_getopt(&o->c, argc, argv, longopts)) != -1) {
        switch (opt) {
        case O_Y4M: o->y4m = optarg; break;
        case O_PPM: o->ppm = optarg; break;
        case O_EVERY:
            if (!app_parse_u64(optarg, &o->every) || o->every == 0)
                app_usage_error(prog, "--every %s: expected a number > 0", optarg);
            break;
        }
    }
    if (!o->y4m && !o->ppm)
        app_usage_error(prog, "nothing to write: give --y4m FILE|- and/or --ppm DIR");
}

/* ---- output ------------------------------------------------------------------------------- */

/* Write iov completely. 0, or -1 with errno (EPIPE: the reader went away). */
static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t k = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

static bool row_buffer(sink *k, size_t bytes)
{
    if (bytes <= k->row_cap)
        return true;
    uint8_t *r = realloc(k->row, bytes);
    if (!r)
        return false;
    k->row = r;
    k->row_cap = bytes;
    return true;
}

static bool same_geometry(const shmbus_frame_hdr *a, const shmbus_frame_hdr *b)
{
    return a->format == b->format && a->width == b->width && a->height == b->height;
}

/* Append frame h to the Y4M stream. 0, or -1 (printed; output_closed on EPIPE). */
static int y4m_write_frame(sink *k, const shmbus_frame_hdr *h)
{
    const char *prog = k->o->c.prog;
    if (!k->y4m_started) {
        shmbus_frame_hdr t = *h;
        t.format = conv_y4m_format((shmbus_pixfmt)h->format);
        if (t.format != h->format) { /* converted: the source's Y4M tags do not apply */
            t.colorspace[0] = t.extra[0] = 0;
            if (!k->o->c.quiet)
                fprintf(stderr, "%s: note: Y4M has no %s: writing it as %s (C%s)\n", prog,
                        shmbus_pixfmt_name((int)h->format), shmbus_pixfmt_name((int)t.format),
                        t.format == SHMBUS_PIXFMT_YUV444P ? "444" : "422");
        }
        y4m_info info;
        char line[Y4M_MAX_HEADER];
        int n;
        if (y4m_from_frame(&t, &info) != Y4M_OK ||
            (n = y4m_format_header(&info, line, sizeof line)) < 0) {
            fprintf(stderr, "%s: cannot describe %s frames in Y4M\n", prog,
                    shmbus_pixfmt_name((int)h->format));
            return -1;
        }
        struct iovec v = {line, (size_t)n};
        if (write_all(k->y4m_fd, &v, 1) != 0)
            goto fail_write;
        k->y4m_geom = *h;
        k->y4m_started = true;
    } else if (!same_geometry(h, &k->y4m_geom)) {
        if (k->mismatched++ == 0)
            fprintf(stderr,
                    "%s: frame %" PRIu64 " is %ux%u %s, the Y4M stream %ux%u %s: "
                    "skipping such frames (a Y4M stream cannot change format)\n",
                    prog, h->frame_number, h->width, h->height, shmbus_pixfmt_name((int)h->format),
                    k->y4m_geom.width, k->y4m_geom.height,
                    shmbus_pixfmt_name((int)k->y4m_geom.format));
        return 0;
    }
    static char marker[] = "FRAME\n";
    struct iovec iov[1 + 3 * 2];
    int n = 0;
    iov[n++] = (struct iovec){marker, sizeof marker - 1};
    if (conv_y4m_format((shmbus_pixfmt)h->format) == h->format) {
        /* straight from shared memory: whole planes, or row by row if the rows are padded */
        bool tight = true;
        for (unsigned p = 0; p < h->nplanes; p++)
            tight &= h->stride[p] == shmbus_frame_row_bytes(h, p);
        if (tight) {
            for (unsigned p = 0; p < h->nplanes; p++)
                iov[n++] = (struct iovec){(void *)shmbus_frame_plane(h, p), h->plane_size[p]};
            if (write_all(k->y4m_fd, iov, n) != 0)
                goto fail_write;
        } else {
            if (write_all(k->y4m_fd, iov, n) != 0)
                goto fail_write;
            for (unsigned p = 0; p < h->nplanes; p++)
                for (uint32_t y = 0; y < shmbus_frame_rows(h, p); y++) {
                    struct iovec r = {
                        (void *)(shmbus_frame_plane(h, p) + (uint64_t)y * h->stride[p]),
                        shmbus_frame_row_bytes(h, p)};
                    if (write_all(k->y4m_fd, &r, 1) != 0)
                        goto fail_write;
                }
        }
    } else {
        /* converted a row at a time, plane by plane */
        if (write_all(k->y4m_fd, iov, n) != 0 || !row_buffer(k, h->width))
            goto fail_write;
        shmbus_frame_hdr t;
        shmbus_frame_init(&t, conv_y4m_format((shmbus_pixfmt)h->format), h->width, h->height);
        for (unsigned p = 0; p < 3; p++)
            for (uint32_t y = 0; y < h->height; y++) {
                conv_y4m_row(h, p, y, k->row);
                struct iovec r = {k->row, shmbus_frame_row_bytes(&t, p)};
                if (write_all(k->y4m_fd, &r, 1) != 0)
                    goto fail_write;
            }
    }
    k->written++;
    return 0;

fail_write:
    if (errno == EPIPE) {
        k->output_closed = true;
        if (!k->o->c.quiet)
            fprintf(stderr, "%s: the Y4M reader closed its end: stopping\n", prog);
    } else {
        fprintf(stderr, "%s: writing %s: %s\n", prog, k->o->y4m, strerror(errno));
    }
    return -1;
}

/* Write frame h as DIR/frame-<number>.ppm (through a temporary name, so a reader never sees
 * half a file). 0, or -1 (printed). */
static int ppm_write(sink *k, const shmbus_frame_hdr *h)
{
    const char *prog = k->o->c.prog;
    char path[4096], tmp[4100];
    snprintf(path, sizeof path, "%s/frame-%08" PRIu64 ".ppm", k->o->ppm, h->frame_number);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || !row_buffer(k, (size_t)h->width * 3)) {
        fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fprintf(f, "P6\n%u %u\n255\n", h->width, h->height);
    for (uint32_t y = 0; y < h->height; y++) {
        conv_get_rgb_row(h, y, k->row);
        fwrite(k->row, 3, h->width, f);
    }
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, path) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    k->snapshots++;
    return 0;
}

/* Check and write one received frame. 0, or -1 to stop (output error, printed). */
static int handle(sink *k, const shmbus_msg *m)
{
    const char *prog = k->o->c.prog;
    const shmbus_frame_hdr *h;
    char why[200];
    k->received++;
    app_seq_note(&k->seq, m);
    if (shmbus_frame_check(shmbus_msg_data(m), shmbus_msg_length(m), &h, why, sizeof why) != 0) {
        if (k->invalid++ < 5)
            fprintf(stderr, "%s: message %" PRIu64 " skipped: %s\n", prog, shmbus_msg_seq(m),
                    why);
        return 0;
    }
    if (!shmbus_frame_has_checksum(h)) {
        k->unchecked++;
    } else if (!shmbus_frame_checksum_ok(h)) {
        if (k->bad_checksum++ < 5)
            fprintf(stderr, "%s: frame %" PRIu64 " skipped: checksum mismatch\n", prog,
                    h->frame_number);
        return 0;
    }
    if (k->y4m_fd >= 0 && y4m_write_frame(k, h) != 0)
        return -1;
    if (k->o->ppm && (k->received - 1) % k->o->every == 0 && ppm_write(k, h) != 0)
        return -1;
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        if (!(*s = c))
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int open_outputs(sink *k)
{
    const options *o = k->o;
    k->y4m_fd = -1;
    if (o->y4m) {
        k->y4m_fd = strcmp(o->y4m, "-") == 0
                        ? STDOUT_FILENO
                        : open(o->y4m, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (k->y4m_fd < 0) {
            fprintf(stderr, "%s: %s: %s\n", o->c.prog, o->y4m, strerror(errno));
            return -1;
        }
    }
    if (o->ppm && make_dirs(o->ppm) != 0) {
        fprintf(stderr, "%s: %s: %s\n", o->c.prog, o->ppm, strerror(errno));
        return -1;
    }
    return 0;
}

static void report(const sink *k, shmbus_sub *s, FILE *json)
{
    shmbus_sub_counters c = {0};
    shmbus_sub_stats(s, &c);
    uint64_t lost = c.expired + c.dropped + c.overflow;
    if (json) {
        fprintf(json, "{\"received\": %" PRIu64 ", \"written\": %" PRIu64 ", \"snapshots\": %"
                PRIu64 ", \"lost\": %" PRIu64 ", \"seq_gaps\": %" PRIu64 ", \"expired\": %"
                PRIu64 ", \"dropped\": %" PRIu64 ", \"overflow\": %" PRIu64
                ", \"checksum_errors\": %" PRIu64 ", \"unchecked\": %" PRIu64
                ", \"invalid\": %" PRIu64 ", \"bus_invalid\": %" PRIu64
                ", \"mismatched\": %" PRIu64 "}\n", k->received, k->written, k->snapshots,
                lost, k->seq.gaps, c.expired, c.dropped, c.overflow, k->bad_checksum,
                k->unchecked, k->invalid, c.invalid, k->mismatched);
        return;
    }
    fprintf(stderr, "%s: received %" PRIu64 " frames, wrote %" PRIu64 " to Y4M and %" PRIu64
            " snapshots; lost %" PRIu64 " (expired %" PRIu64 ", dropped %" PRIu64
            ", overflow %" PRIu64 "), %" PRIu64 " checksum errors, %" PRIu64
            " frames without a checksum\n", k->o->c.prog, k->received, k->written,
            k->snapshots, lost, c.expired, c.dropped, c.overflow, k->bad_checksum,
            k->unchecked);
}

int main(int argc, char **argv)
{
    options o = {.c = {.prog = "frame-sink", .usage = usage, .topic = APP_DEFAULT_TOPIC},
                 .every = 30};
    parse_options(argc, argv, &o);
    if (app_signals_init(o.c.prog) != 0)
        return 1;
    sink k = {.o = &o};
    if (open_outputs(&k) != 0)
        return 1;
    shmbus_domain *d;
    shmbus_sub *s;
    int status = 0, rc;
    if ((status = app_subscribe(&o.c, &d, &s)) != 0)
        return status;
    app_rx rx = {.c = &o.c, .sub = s};
    while (o.c.count == 0 || k.received < o.c.count) {
        shmbus_msg *m;
        rc = app_rx_next(&rx, -1, &m);
        if (rc == APP_RX_END)
            break;
        if (rc) { /* printed */
            status = 1;
            break;
        }
        int hr = handle(&k, m);
        app_rx_release(&rx, m);
        if (hr != 0) {
            status = k.output_closed ? 0 : 1;
            break;
        }
    }
    if (!o.c.quiet)
        report(&k, s, NULL);
    if (o.c.summary) {
        FILE *f = fopen(o.c.summary, "w");
        if (f) {
            report(&k, s, f);
            fclose(f);
        } else {
            fprintf(stderr, "%s: %s: %s\n", o.c.prog, o.c.summary, strerror(errno));
        }
    }
    if (k.y4m_fd > STDOUT_FILENO && close(k.y4m_fd) != 0) {
        fprintf(stderr, "%s: %s: %s\n", o.c.prog, o.y4m, strerror(errno));
        status = 1;
    }
    if (app_unsubscribe(&o.c, s, d) != 0)
        status = 1;
    free(k.row);
    if (status == 0 && (k.bad_checksum || k.invalid))
        status = APP_EXIT_ERROR; /* said in the report */
    return status;
}
