/* frame-stats: subscribe to camera frames and report, once a second, the frame rate, the
 * latency from capture to receipt (p50/p99), the frames lost and the frames that fail their
 * checksum. With --delay-ms it is a deliberately slow subscriber: it holds each frame that
 * long, falls behind, and loses frames (counted) without slowing anyone else.
 *
 * Lost frames are counted two ways: the library's counters (shmbus_sub_stats: expired,
 * dropped, overflow: every message the topic sent that this subscriber did not get) and the
 * gaps in shmbus_msg_seq per publisher, which see everything but the frames after the last
 * one received.
 *
 * Frames published without a checksum (camera-pub --no-checksum) are counted as unchecked,
 * not as errors.
 *
 * Exit status (docs/cli.md): 0 done, 1 bus or system error, or frames failed their checksum
 * or were malformed, 2 usage error, 3 no such topic, 4 invalid configuration. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "shmbus_frame.h"
#include "shmbus.h"

static const char usage[] =
    "usage: frame-stats [options]\n"
    "Report rate, latency, losses and checksum errors of the camera frames on a topic\n"
    "(frames without a checksum are counted as unchecked).\n"
    "\n"
    "  --delay-ms MS     hold each frame MS ms (a slow subscriber, on purpose)\n"
    "  --count N         stop after N frames\n"
    "  --duration S      stop after S seconds\n"
    "  --follow          keep waiting when the publishers leave (default: finish)\n"
    "  --history         start with the frames the publishers still hold\n"
    "  --summary FILE    write a JSON summary at the end\n"
    "  --config FILE     domain configuration (JSON); default: the embedded default\n"
    "  --domain NAME     domain name (default: the configuration's)\n"
    "  --topic T         topic (default camera/front)\n"
    "  --name N          participant name shown by tools (default frame-stats)\n"
    "  -q, --quiet       no report every second, only the final one\n"
    "  -h, --help\n";

typedef struct options {
    app_common c;
    uint64_t duration_s;
} options;

/* ---- latency histogram: 32 buckets per power of two (about 3 % wide), in nanoseconds ------ */

#define SUB 32
#define NBUCKETS (60 * SUB)

typedef struct hist {
    uint64_t n, max;
    uint64_t b[NBUCKETS];
} hist;

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
    unsigned i = (e - 4) * SUB + (unsigned)((v >> (e - 5)) & (SUB - 1));
    return i < NBUCKETS ? i : NBUCKETS - 1;
}

/* The middle of bucket i. */
static uint64_t bucket_value(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned e = i / SUB + 4, m = i % SUB;
    uint64_t lo = ((uint64_t)(SUB + m)) << (e - 5);
    return lo + (1ull << (e - 5)) / 2;
}

static void hist_add(hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.999999), seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++)
        if ((seen += h->b[i]) >= want)
            return bucket_value(i) < h->max ? bucket_value(i) : h->max;
    return h->max;
}

/* ---- the subscriber ------------------------------------------------------------------------ */

typedef struct stats {
    hist capture, bus;       /* whole run */
    hist capture_s;          /* this second */
    uint64_t received, bad_checksum, invalid, unchecked;
    uint64_t first_frame, last_frame;
    uint64_t t_first, t_last;
    app_seq seq;
} stats;

static void parse_options(int argc, char **argv, options *o)
{
    enum { O_DURATION = APP_OPT_OWN };
    static const struct option longopts[] = {
        APP_LONGOPT_DELAY,  APP_LONGOPT_COUNT,   {"duration", required_argument, 0, O_DURATION},
        APP_LONGOPT_FOLLOW, APP_LONGOPT_HISTORY, APP_LONGOPT_SUMMARY,
        APP_LONGOPTS_BUS,   APP_LONGOPTS_END};
    int opt;
    while ((opt = app_getopt(&o->c, argc, argv, longopts)) != -1) {
        switch (opt) {
        case O_DURATION:
            if (!app_parse_u64(optarg, &o->duration_s) || o->duration_s > 10000000)
                app_usage_error(o->c.prog, "--duration %s: expected seconds", optarg);
            break;
        }
    }
}

static void handle(const options *o, stats *st, const shmbus_msg *m)
{
    uint64_t now = app_now_ns();
    const shmbus_frame_hdr *h;
    char why[200];
    app_seq_note(&st->seq, m);
    if (shmbus_frame_check(shmbus_msg_data(m), shmbus_msg_length(m), &h, why, sizeof why) != 0) {
        if (st->invalid++ < 5)
            fprintf(stderr, "%s: message %" PRIu64 " is not a valid frame: %s\n", o->c.prog,
                    shmbus_msg_seq(m), why);
        return;
    }
    st->received++;
    uint64_t lat = now > h->capture_ns ? now - h->capture_ns : 0;
    uint64_t pub = shmbus_msg_timestamp_ns(m);
    hist_add(&st->capture, lat);
    hist_add(&st->capture_s, lat);
    hist_add(&st->bus, now > pub ? now - pub : 0);
    if (st->received == 1) {
        st->first_frame = h->frame_number;
        st->t_first = now;
    }
    st->last_frame = h->frame_number;
    st->t_last = now;
    if (!shmbus_frame_has_checksum(h))
        st->unchecked++;
    else if (!shmbus_frame_checksum_ok(h) && st->bad_checksum++ < 5)
        fprintf(stderr, "%s: frame %" PRIu64 ": checksum mismatch\n", o->c.prog,
                h->frame_number);
}

static uint64_t lost_of(const shmbus_sub_counters *c)
{
    return c->expired + c->dropped + c->overflow;
}

static void report_second(const options *o, stats *st, shmbus_sub *s, uint64_t secs,
                          uint64_t *prev_received, uint64_t *prev_lost)
{
    shmbus_sub_counters c = {0};
    shmbus_sub_stats(s, &c);
    uint64_t got = st->received - *prev_received, lost = lost_of(&c) - *prev_lost;
    printf("%s: [%4" PRIu64 " s] %3" PRIu64 " fps | latency p50 %7.3f ms p99 %7.3f ms | "
           "lost %" PRIu64 " (total %" PRIu64 ": expired %" PRIu64 ", dropped %" PRIu64
           ", overflow %" PRIu64 ") | checksum errors %" PRIu64 "\n",
           o->c.name ? o->c.name : o->c.prog, secs, got, hist_pct(&st->capture_s, 50) / 1e6,
           hist_pct(&st->capture_s, 99) / 1e6, lost, lost_of(&c), c.expired, c.dropped,
           c.overflow, st->bad_checksum);
    fflush(stdout);
    memset(&st->capture_s, 0, sizeof st->capture_s);
    *prev_received = st->received;
    *prev_lost = lost_of(&c);
}

static void summary(const options *o, const stats *st, shmbus_sub *s, FILE *f)
{
    shmbus_sub_counters c = {0};
    shmbus_sub_stats(s, &c);
    double secs = st->received > 1 ? (double)(st->t_last - st->t_first) / 1e9 : 0;
    if (f) {
        fprintf(f, "{\"received\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"seq_gaps\": %" PRIu64
                ", \"expired\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"overflow\": %" PRIu64
                ", \"invalid\": %" PRIu64 ", \"checksum_errors\": %" PRIu64 ", \"unchecked\": %" PRIu64
                ",\n  \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"bus_p50_us\": "
                "%.1f, \"bus_p99_us\": %.1f, \"fps\": %.2f, \"duration_s\": %.3f, "
                "\"first_frame\": %" PRIu64 ", \"last_frame\": %" PRIu64
                ", \"delay_ms\": %" PRIu64 "}\n",
                st->received, lost_of(&c), st->seq.gaps, c.expired, c.dropped, c.overflow,
                st->invalid + c.invalid, st->bad_checksum, st->unchecked,
                hist_pct(&st->capture, 50) / 1e3,
                hist_pct(&st->capture, 99) / 1e3, st->capture.max / 1e3,
                hist_pct(&st->bus, 50) / 1e3, hist_pct(&st->bus, 99) / 1e3,
                secs > 0 ? (double)(st->received - 1) / secs : 0.0, secs, st->first_frame,
                st->last_frame, o->c.delay_ms);
        return;
    }
    fprintf(stderr, "%s: received %" PRIu64 " frames (%.2f fps), lost %" PRIu64 " (expired %"
            PRIu64 ", dropped %" PRIu64 ", overflow %" PRIu64 "; sequence gaps %" PRIu64
            "), latency p50 %.3f ms p99 %.3f ms max %.3f ms, %" PRIu64 " checksum errors, %"
            PRIu64 " frames without a checksum\n",
            o->c.name ? o->c.name : o->c.prog, st->received,
            secs > 0 ? (double)(st->received - 1) / secs : 0.0, lost_of(&c), c.expired,
            c.dropped, c.overflow, st->seq.gaps, hist_pct(&st->capture, 50) / 1e6,
            hist_pct(&st->capture, 99) / 1e6, st->capture.max / 1e6, st->bad_checksum,
            st->unchecked);
}

int main(int argc, char **argv)
{
    options o = {.c = {.prog = "frame-stats", .usage = usage, .topic = APP_DEFAULT_TOPIC}};
    parse_options(argc, argv, &o);
    if (app_signals_init(o.c.prog) != 0)
        return 1;
    stats *st = calloc(1, sizeof *st);
    if (!st) {
        fprintf(stderr, "%s: out of memory\n", o.c.prog);
        return 1;
    }
    shmbus_domain *d;
    shmbus_sub *s;
    int rc, status = 0;
    if ((status = app_subscribe(&o.c, &d, &s)) != 0) {
        free(st);
        return status;
    }
    uint64_t t0 = app_now_ns(), next = t0 + 1000000000ull, secs = 0;
    uint64_t end = o.duration_s ? t0 + o.duration_s * 1000000000ull : UINT64_MAX;
    uint64_t prev_received = 0, prev_lost = 0;
    app_rx rx = {.c = &o.c, .sub = s};
    while (o.c.count == 0 || st->received < o.c.count) {
        uint64_t now = app_now_ns();
        if (now >= end)
            break;
        if (now >= next) {
            secs++;
            if (!o.c.quiet)
                report_second(&o, st, s, secs, &prev_received, &prev_lost);
            next += 1000000000ull;
            continue;
        }
        uint64_t until = next < end ? next : end;
        shmbus_msg *m;
        rc = app_rx_next(&rx, (int)((until - now + 999999) / 1000000), &m);
        if (rc == SHMBUS_ETIMEDOUT)
            continue;
        if (rc == APP_RX_END)
            break;
        if (rc) { /* printed */
            status = 1;
            break;
        }
        handle(&o, st, m);
        app_rx_release(&rx, m); /* after --delay-ms: slow on purpose */
    }
    summary(&o, st, s, NULL);
    if (o.c.summary) {
        FILE *f = fopen(o.c.summary, "w");
        if (f) {
            summary(&o, st, s, f);
            fclose(f);
        } else {
            fprintf(stderr, "%s: %s: %s\n", o.c.prog, o.c.summary, strerror(errno));
            status = 1;
        }
    }
    if (app_unsubscribe(&o.c, s, d) != 0)
        status = 1;
    if (status == 0 && (st->bad_checksum || st->invalid))
        status = APP_EXIT_ERROR; /* said in the summary line */
    free(st);
    return status;
}
