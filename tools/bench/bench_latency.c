/* shmbus-bench latency: publish-to-receive latency and throughput of shmbus next to plain
 * nng pub/sub copying the payload ("nng-copy"), for payloads of 64 B to 24 MiB and 1 or 4
 * subscriber processes. The processes and the two transports are in bench_fanout.c and
 * bench_transport.c; this file picks the counts and prints.
 */
#include <stdio.h>
#include <unistd.h>

#include "bench_fanout.h"
#include "shmbus.h"

#define NSIZES 6
#define NSUBCOUNTS 2

static const uint64_t sizes[NSIZES] = {64, 4096, 65536, 1u << 20, 8u << 20, 24u << 20};
static const int subcounts[NSUBCOUNTS] = {1, 4};
/* Per size: latency samples and throughput messages, sized for about 1.5 minutes in all on a
 * 2-CPU machine (the big nng-copy rows dominate). --quick divides them by QUICK_DIV. */
static const uint32_t lat_counts[NSIZES] = {12000, 12000, 8000, 2000, 400, 150};
static const uint32_t tput_counts[NSIZES] = {100000, 80000, 30000, 3000, 600, 200};
static const uint32_t warmups[NSIZES] = {300, 300, 200, 60, 40, 40};
#define QUICK_DIV 6
#define MIN_LAT 20
#define MIN_TPUT (4 * FO_WINDOW)
#define MIN_WARMUP 30 /* > the blocks of a class, so every block has been mapped once */

/* ---- output ----------------------------------------------------------------------------- */

static void size_name(const fo_result *x, int step, char *buf, size_t len)
{
    (void)step;
    tool_fmt_size_exact(buf, len, x->size);
}

static void ratio_line(const char *what, const fo_result *a, const fo_result *b, bool at_most,
                       double target)
{
    if (!a || !b || b->p50_ns <= 0) {
        printf("  %-58s     n/a\n", what);
        return;
    }
    double q = a->p50_ns / b->p50_ns;
    bool met = at_most ? q <= target : q >= target;
    printf("  %-58s %7.2fx  (target %s %.1fx: %s)\n", what, q, at_most ? "<=" : ">=", target,
           met ? "met" : "MISSED");
}

static void print_table(const fo_run *r)
{
    printf("shmbus-bench latency: publish to receive, %ld CPUs online; latency in us, rate in "
           "msgs/s\n\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("%13s  %-28s  %-28s  %s\n", "", "---------- shmbus ----------",
           "--------- nng-copy ---------", "-- nng/shm --");
    printf("%8s %4s  %8s %8s %10s  %8s %8s %10s  %6s %6s\n", "size", "subs", "p50", "p99",
           "msgs/s", "p50", "p99", "msgs/s", "p50", "rate");
    for (int s = 0; s < NSUBCOUNTS; s++)
        for (int i = 0; i < NSIZES; i++) {
            const fo_result *a = fo_find(r, FO_SHMBUS, s, i), *b = fo_find(r, FO_NNG, s, i);
            if (!a && !b)
                continue;
            char sz[32], c1[40] = "", c2[40] = "", q[20] = "";
            tool_fmt_size_exact(sz, sizeof sz, sizes[i]);
            if (a)
                snprintf(c1, sizeof c1, "%8.1f %8.1f %10.0f", a->p50_ns / 1e3, a->p99_ns / 1e3,
                         a->msgs_per_s);
            if (b)
                snprintf(c2, sizeof c2, "%8.1f %8.1f %10.0f", b->p50_ns / 1e3, b->p99_ns / 1e3,
                         b->msgs_per_s);
            if (a && b)
                snprintf(q, sizeof q, "%5.1fx %5.2fx", b->p50_ns / a->p50_ns,
                         b->msgs_per_s / a->msgs_per_s);
            printf("%8s %4d  %-28s  %-28s  %s\n", sz, subcounts[s], c1, c2, q);
        }
    printf("\nratios (p50):\n");
    for (int s = 0; s < NSUBCOUNTS; s++) {
        char t[96];
        snprintf(t, sizeof t, "shmbus 8 MiB / shmbus 64 B, %d sub%s", subcounts[s],
                 subcounts[s] > 1 ? "s" : "");
        ratio_line(t, fo_find(r, FO_SHMBUS, s, 4), fo_find(r, FO_SHMBUS, s, 0), true, 1.5);
    }
    for (int s = 0; s < NSUBCOUNTS; s++) {
        char t[96];
        snprintf(t, sizeof t, "nng-copy 8 MiB / shmbus 8 MiB, %d sub%s", subcounts[s],
                 subcounts[s] > 1 ? "s" : "");
        ratio_line(t, fo_find(r, FO_NNG, s, 4), fo_find(r, FO_SHMBUS, s, 4), false, 50);
    }
    for (int s = 0; s < NSUBCOUNTS; s++) {
        char t[96];
        snprintf(t, sizeof t, "shmbus 64 B / nng-copy 64 B, %d sub%s", subcounts[s],
                 subcounts[s] > 1 ? "s" : "");
        ratio_line(t, fo_find(r, FO_SHMBUS, s, 0), fo_find(r, FO_NNG, s, 0), true, 1.2);
    }
    if (!fo_print_losses(r, "\nloss (summed over subscribers, warm-up included):\n", 7,
                         size_name))
        printf("\nloss: none (every subscriber got every message; shmbus counted 0 expired, "
               "0 dropped)\n");
    printf("\np50: median of every sample of every subscriber. p99: 99th percentile of the\n"
           "per-message maximum over the subscribers (the slowest one). msgs/s: messages\n"
           "received by every subscriber per second, at most %d in flight. nng/shm p50: how\n"
           "many times longer nng-copy takes; rate: its throughput relative to shmbus.\n",
           FO_WINDOW);
}

static void print_object(jsonw *w, const fo_result *x, int step)
{
    (void)step;
    jsonw_double(w, "p50_us", x->p50_ns / 1e3);
    jsonw_double(w, "p99_us", x->p99_ns / 1e3);
    jsonw_double(w, "msgs_per_s", x->msgs_per_s);
    jsonw_double(w, "max_us", x->max_ns / 1e3);
    jsonw_u64(w, "samples", x->samples);
    jsonw_u64(w, "throughput_msgs", x->tput_msgs);
}

/* ---- the subcommand --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-bench latency [--json] [--count N] [--quick]\n\n"
            "Publish-to-receive latency and throughput, shmbus next to nng-copy, for payloads\n"
            "of 64 B, 4 KiB, 64 KiB, 1 MiB, 8 MiB and 24 MiB, with 1 and 4 subscriber\n"
            "processes (about 1.5 minutes; --quick about 15 s).\n\n"
            "  shmbus    the publisher loans a block, memsets the payload, publishes (which\n"
            "            stamps the time); each subscriber receives, reads the first and last\n"
            "            byte, releases.\n"
            "  nng-copy  plain nng pub0 on ipc:// with sub0 subscribers: nng_msg_alloc, memset\n"
            "            the payload, the send time in its first bytes, nng_sendmsg; each\n"
            "            subscriber nng_recvmsg, reads the first and last byte, frees it.\n"
            "The payload write counts for both, but precedes the timestamp: latency is\n"
            "CLOCK_MONOTONIC at the subscriber's receive minus the time of publishing.\n\n"
            "Every subscriber is a process of its own, connected before anything is timed\n"
            "(probe messages until each got one), then each size gets a warm-up. Latency:\n"
            "one message at a time, the next only when every subscriber has acknowledged\n"
            "the last over a pipe, so no queue builds up. p50 is the median of all samples\n"
            "of all subscribers; p99 is the 99th percentile of each message's slowest\n"
            "subscriber (its maximum over the subscribers). Throughput: back to back with\n"
            "at most %d messages not yet acknowledged by every subscriber; msgs/s counts\n"
            "what the slowest subscriber received. Loss (shmbus expired/dropped counters,\n"
            "sequence gaps for both) is reported, never hidden. Uses about 800 MiB of\n"
            "/dev/shm while it runs (a pool with room for every message in flight).\n\n"
            "  --count N  latency samples and throughput messages per row, every size\n"
            "             (default: %u/%u at 64 B down to %u/%u at 24 MiB)\n"
            "  --quick    about a sixth of the default counts\n"
            "  --json     print only a JSON array, one object per transport, size and\n"
            "             subscriber count: transport, size, subscribers, p50_us, p99_us,\n"
            "             msgs_per_s, and loss counters\n",
            FO_WINDOW, lat_counts[0], tput_counts[0], lat_counts[NSIZES - 1],
            tput_counts[NSIZES - 1]);
}

static uint32_t at_least(uint32_t v, uint32_t min) { return v < min ? min : v; }

int bench_latency(int argc, char **argv)
{
    bench_opts o = {.takes = BENCH_OPT_COUNT | BENCH_OPT_QUICK};
    int status = bench_parse_opts(argc, argv, &o, usage);
    if (status >= 0)
        return status;

    fo_step steps[NSIZES];
    for (int i = 0; i < NSIZES; i++) {
        uint32_t lc = lat_counts[i], tc = tput_counts[i], wu = warmups[i];
        if (o.quick) {
            lc /= QUICK_DIV;
            tc /= QUICK_DIV;
            wu /= 2;
        }
        if (o.count) {
            lc = (uint32_t)o.count;
            tc = (uint32_t)o.count;
        }
        steps[i] = (fo_step){.size = sizes[i], .warmup = at_least(wu, MIN_WARMUP),
                             .lat_count = at_least(lc, o.count ? 1 : MIN_LAT),
                             .tput_count = at_least(tc, MIN_TPUT)};
    }

    static fo_run run; /* large: not on the stack */
    status = fo_run_all(&run, "latency", steps, NSIZES, subcounts, NSUBCOUNTS);
    if (fo_run_measured(&run)) { /* after a failure, what the groups before it measured */
        if (o.json)
            fo_print_json(&run, "msg", print_object);
        else
            print_table(&run);
    }
    return status;
}
