/* shmbus echo, hz, bw: subscribe to a topic and print its messages, its rate or its
 * bandwidth. These join the domain as a participant (a real subscriber, counted like any
 * other); they never start a domain that is not running. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Join (waiting for the topic, and with --wait for the domain), subscribe; CLI_OK, or
 * CLI_STOPPED if a signal ended a wait, or the exit code (having printed why). */
static int open_sub(const cli_common *c, const char *pname, const char *topic, bool history,
                    bool wait, shmbus_domain **d, shmbus_sub **s)
{
    tool_catch_signals(); /* before the join: a signal never leaves a half-open domain */
    int ec = cli_join(c, pname, false, wait, topic, d);
    if (ec)
        return ec;
    char dom[TOOL_NAME_MAX];
    snprintf(dom, sizeof dom, "%s", shmbus_domain_name(*d));
    shmbus_sub_opts so = {.history = history};
    int rc = shmbus_sub_open(*d, topic, &so, s);
    if (rc) {
        tool_error(c->prog, rc, "topic \"%s\" in domain \"%s\"", topic, dom);
        shmbus_domain_close(*d);
        return cli_exit_for(rc);
    }
    return CLI_OK;
}

/* The subscriber's counters on stderr: what it received and what it lost, by cause. */
static void print_counters(const cli_common *c, shmbus_sub *s)
{
    shmbus_sub_counters k;
    if (shmbus_sub_stats(s, &k) == 0)
        fprintf(stderr, "%s: received %" PRIu64 ", expired %" PRIu64 ", dropped %" PRIu64
                        ", overflow %" PRIu64 ", invalid %" PRIu64 "\n", c->prog, k.received,
                k.expired, k.dropped, k.overflow, k.invalid);
}

static int close_sub(const cli_common *c, shmbus_domain *d, shmbus_sub *s, int ec)
{
    char dom[TOOL_NAME_MAX];
    snprintf(dom, sizeof dom, "%s", shmbus_domain_name(d));
    int rc = shmbus_sub_close(s);
    if (rc == 0)
        rc = shmbus_domain_close(d);
    if (rc) {
        tool_error(c->prog, rc, "closing domain \"%s\"", dom);
        return ec ? ec : CLI_ERROR;
    }
    return ec;
}

/* A wait in recv that is not an error: come back and look at the clock and the signals. */
static bool recv_idle(int rc)
{
    return rc == SHMBUS_ETIMEDOUT || rc == SHMBUS_EAGAIN || rc == SHMBUS_EINTR;
}

/* ---- echo --------------------------------------------------------------------------------- */

#define WAIT_HELP                                                                          \
    "  --wait          wait for the domain to start (default: exit 3 if it is not running)\n"

static const char echo_usage[] =
    "usage: shmbus echo TOPIC [--count N] [--duration S] [--bytes N] [--history] [--wait]\n"
    "                   [--domain NAME] [--config FILE]\n"
    "\n"
    "Subscribe and print one line per message: its sequence number, size, latency from\n"
    "publish to receive (CLOCK_MONOTONIC) and its first bytes in hex. A topic the domain\n"
    "does not have yet is waited for. At the end, the subscriber's counters go to stderr:\n"
    "received, expired, dropped, overflow, invalid.\n"
    "\n"
    "  --count N       stop after N messages\n"
    "  --duration S    stop after S seconds\n"
    "  --bytes N       bytes shown in hex (default 16, 0: none)\n"
    "  --history       first the messages the publishers still hold\n" WAIT_HELP CLI_COMMON_HELP;

enum { OPT_COUNT = CLI_OPT_FIRST_OWN, OPT_DURATION, OPT_BYTES, OPT_HISTORY, OPT_WINDOW,
       OPT_WAIT };

typedef struct stream_opts {
    const cli_common *c;
    uint64_t count;    /* 0: no limit */
    double duration;   /* 0: no limit */
    uint64_t bytes;
    bool history, wait;
    double window;
} stream_opts;

static bool stream_opt(int opt, const char *arg, void *ctx)
{
    stream_opts *o = ctx;
    switch (opt) {
    case OPT_COUNT:
        if (tool_parse_uint(arg, UINT64_MAX, &o->count) && o->count > 0)
            return true;
        fprintf(stderr, "%s: --count: expected a positive integer, got \"%s\"\n", o->c->prog, arg);
        return false;
    case OPT_DURATION:
        if (cli_parse_seconds(arg, &o->duration))
            return true;
        fprintf(stderr, "%s: --duration: expected seconds > 0, got \"%s\"\n", o->c->prog, arg);
        return false;
    case OPT_WINDOW:
        if (cli_parse_seconds(arg, &o->window))
            return true;
        fprintf(stderr, "%s: --window: expected seconds > 0, got \"%s\"\n", o->c->prog, arg);
        return false;
    case OPT_BYTES:
        if (tool_parse_uint(arg, 1u << 20, &o->bytes))
            return true;
        fprintf(stderr, "%s: --bytes: expected 0..1048576, got \"%s\"\n", o->c->prog, arg);
        return false;
    case OPT_HISTORY:
        o->history = true;
        return true;
    case OPT_WAIT:
        o->wait = true;
        return true;
    }
    return false;
}

static const struct option echo_opts[] = {
    CLI_COMMON_LONGOPTS,
    {"count", required_argument, NULL, OPT_COUNT},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"bytes", required_argument, NULL, OPT_BYTES},
    {"history", no_argument, NULL, OPT_HISTORY},
    {"wait", no_argument, NULL, OPT_WAIT},
    {0},
};

static void print_message(const shmbus_msg *m, uint64_t nbytes)
{
    uint64_t now = tool_now_ns(), ts = shmbus_msg_timestamp_ns(m);
    uint64_t len = shmbus_msg_length(m);
    double lat_us = now > ts ? (double)(now - ts) / 1e3 : 0;
    printf("seq %" PRIu64 "  size %" PRIu64 "  latency %.1f us", shmbus_msg_seq(m), len, lat_us);
    const unsigned char *p = shmbus_msg_data(m);
    uint64_t n = len < nbytes ? len : nbytes;
    if (n)
        printf(" ");
    for (uint64_t i = 0; i < n; i++)
        printf(" %02x", p[i]);
    printf("%s\n", n < len && n ? " ..." : "");
    fflush(stdout);
}

int cli_echo(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus echo"};
    stream_opts o = {.c = &c, .bytes = 16};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", echo_opts, echo_usage, stream_opt, &o, &ec))
        return ec;
    if (optind >= argc)
        return cli_usage_error(&c, "missing TOPIC");
    if (optind + 1 < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind + 1]);
    shmbus_domain *d;
    shmbus_sub *s;
    if ((ec = open_sub(&c, "shmbus-echo", argv[optind], o.history, o.wait, &d, &s)) != CLI_OK)
        return ec == CLI_STOPPED ? CLI_OK : ec;
    uint64_t start = tool_now_ns(), got = 0;
    uint64_t end = o.duration > 0 ? start + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
    while (!tool_stop_requested() && (o.count == 0 || got < o.count) && tool_now_ns() < end) {
        shmbus_msg *m;
        int rc = shmbus_sub_recv(s, 200, &m);
        if (recv_idle(rc))
            continue;
        if (rc) {
            tool_error(c.prog, rc, "receive");
            ec = CLI_ERROR;
            break;
        }
        print_message(m, o.bytes);
        shmbus_msg_release(m);
        got++;
        if (ferror(stdout))
            break; /* the reader went away (EPIPE) */
    }
    print_counters(&c, s);
    return close_sub(&c, d, s, ec);
}

/* ---- hz and bw ---------------------------------------------------------------------------- */

static const char hz_usage[] =
    "usage: shmbus hz TOPIC [--window S] [--count N] [--duration S] [--wait]\n"
    "                 [--domain NAME] [--config FILE]\n"
    "\n"
    "Subscribe and print, every second, the message rate over the last S seconds with the\n"
    "shortest, longest and standard deviation of the periods between messages. A topic the\n"
    "domain does not have yet is waited for.\n"
    "\n"
    "  --window S      seconds the rate is taken over (default 5)\n"
    "  --count N       stop after N reports\n"
    "  --duration S    stop after S seconds\n" WAIT_HELP CLI_COMMON_HELP;

static const char bw_usage[] =
    "usage: shmbus bw TOPIC [--window S] [--count N] [--duration S] [--wait]\n"
    "                 [--domain NAME] [--config FILE]\n"
    "\n"
    "Subscribe and print, every second, the bandwidth (payload bytes per second) over the\n"
    "last S seconds with the mean, smallest and largest message size. A topic the domain\n"
    "does not have yet is waited for.\n"
    "\n"
    "  --window S      seconds the bandwidth is taken over (default 5)\n"
    "  --count N       stop after N reports\n"
    "  --duration S    stop after S seconds\n" WAIT_HELP CLI_COMMON_HELP;

static const struct option rate_opts[] = {
    CLI_COMMON_LONGOPTS,
    {"window", required_argument, NULL, OPT_WINDOW},
    {"count", required_argument, NULL, OPT_COUNT},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"wait", no_argument, NULL, OPT_WAIT},
    {0},
};

/* Receive times and sizes of the messages in the window, oldest first (a ring). */
typedef struct window {
    uint64_t *t, *size;
    size_t cap, head, n;
} window;

#define WINDOW_MAX (1u << 22) /* messages kept: 4 Mi, 64 MiB, far beyond any real rate */

static void window_push(window *w, uint64_t t, uint64_t size)
{
    if (w->n == w->cap) {
        if (w->cap >= WINDOW_MAX) { /* full: forget the oldest */
            w->head = (w->head + 1) % w->cap;
            w->n--;
        } else {
            size_t cap = w->cap ? w->cap * 2 : 1024;
            uint64_t *nt = malloc(cap * sizeof *nt), *ns = malloc(cap * sizeof *ns);
            if (!nt || !ns) {
                free(nt);
                free(ns);
                return; /* out of memory: this message goes uncounted */
            }
            for (size_t i = 0; i < w->n; i++) {
                nt[i] = w->t[(w->head + i) % w->cap];
                ns[i] = w->size[(w->head + i) % w->cap];
            }
            free(w->t);
            free(w->size);
            w->t = nt;
            w->size = ns;
            w->cap = cap;
            w->head = 0;
        }
    }
    size_t i = (w->head + w->n) % w->cap;
    w->t[i] = t;
    w->size[i] = size;
    w->n++;
}

static void window_trim(window *w, uint64_t oldest)
{
    while (w->n && w->t[w->head] < oldest) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
}

#define AT(w, k, arr) ((w)->arr[((w)->head + (k)) % (w)->cap])

static void report_hz(const window *w, double span_s)
{
    char a[32], b[32], c[32];
    if (w->n < 2) {
        printf("rate 0 Hz  (%zu msgs in the last %.1f s)\n", w->n, span_s);
        return;
    }
    uint64_t first = AT(w, 0, t), last = AT(w, w->n - 1, t);
    double hz = (double)(w->n - 1) / ((double)(last - first) / 1e9);
    uint64_t mn = UINT64_MAX, mx = 0;
    double sum = 0, sum2 = 0;
    for (size_t k = 1; k < w->n; k++) {
        uint64_t p = AT(w, k, t) - AT(w, k - 1, t);
        mn = p < mn ? p : mn;
        mx = p > mx ? p : mx;
        sum += (double)p;
        sum2 += (double)p * (double)p;
    }
    double np = (double)(w->n - 1), mean = sum / np;
    double sd = sqrt(fmax(0, sum2 / np - mean * mean));
    printf("rate %.2f Hz  min %s  max %s  std dev %s  (%zu msgs in the last %.1f s)\n", hz,
           tool_fmt_ns(a, sizeof a, mn), tool_fmt_ns(b, sizeof b, mx),
           tool_fmt_ns(c, sizeof c, (uint64_t)sd), w->n, span_s);
}

static void report_bw(const window *w, double span_s)
{
    char a[32], b[32], c[32], e[32];
    uint64_t total = 0, mn = UINT64_MAX, mx = 0;
    for (size_t k = 0; k < w->n; k++) {
        uint64_t s = AT(w, k, size);
        total += s;
        mn = s < mn ? s : mn;
        mx = s > mx ? s : mx;
    }
    if (!w->n) {
        printf("bandwidth 0 B/s  (0 msgs in the last %.1f s)\n", span_s);
        return;
    }
    printf("bandwidth %s  mean %s  min %s  max %s  (%zu msgs in the last %.1f s)\n",
           tool_fmt_bw(a, sizeof a, (double)total / span_s, false),
           tool_fmt_size(b, sizeof b, total / w->n), tool_fmt_size(c, sizeof c, mn),
           tool_fmt_size(e, sizeof e, mx), w->n, span_s);
}

static int rate_main(int argc, char **argv, bool bw)
{
    cli_common c = {.prog = bw ? "shmbus bw" : "shmbus hz"};
    stream_opts o = {.c = &c, .window = 5};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", rate_opts, bw ? bw_usage : hz_usage, stream_opt, &o, &ec))
        return ec;
    if (optind >= argc)
        return cli_usage_error(&c, "missing TOPIC");
    if (optind + 1 < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind + 1]);
    shmbus_domain *d;
    shmbus_sub *s;
    if ((ec = open_sub(&c, bw ? "shmbus-bw" : "shmbus-hz", argv[optind], false, o.wait, &d,
                       &s)))
        return ec == CLI_STOPPED ? CLI_OK : ec;
    window w = {0};
    uint64_t start = tool_now_ns(), next = start + 1000000000ull, reports = 0;
    uint64_t win_ns = (uint64_t)(o.window * 1e9);
    uint64_t end = o.duration > 0 ? start + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
    while (!tool_stop_requested() && (o.count == 0 || reports < o.count)) {
        uint64_t now = tool_now_ns();
        if (now >= next || now >= end) {
            uint64_t oldest = now > win_ns ? now - win_ns : 0;
            window_trim(&w, oldest);
            double span = (double)(now - (start > oldest ? start : oldest)) / 1e9;
            if (bw)
                report_bw(&w, span);
            else
                report_hz(&w, span);
            if (fflush(stdout) != 0)
                break; /* the reader went away (EPIPE) */
            reports++;
            next += 1000000000ull;
            if (now >= end)
                break;
            continue;
        }
        uint64_t wait = ((next < end ? next : end) - now) / 1000000 + 1;
        shmbus_msg *m;
        int rc = shmbus_sub_recv(s, (int)(wait < 200 ? wait : 200), &m);
        if (recv_idle(rc))
            continue;
        if (rc) {
            tool_error(c.prog, rc, "receive");
            ec = CLI_ERROR;
            break;
        }
        window_push(&w, tool_now_ns(), shmbus_msg_length(m));
        shmbus_msg_release(m);
    }
    free(w.t);
    free(w.size);
    return close_sub(&c, d, s, ec);
}

int cli_hz(int argc, char **argv) { return rate_main(argc, argv, false); }
int cli_bw(int argc, char **argv) { return rate_main(argc, argv, true); }
