/* shmbus-bench latency: publish-to-receive latency and throughput of shmbus on both delivery
 * paths (nng: "shmbus"; shared memory: "shmbus-shm", and its pollable-fd path
 * "shmbus-shm-fd") next to plain nng pub/sub copying the payload ("nng-copy"), for payloads
 * of 64 B to 24 MiB and 1 or 4 subscriber processes, and the floors of this machine measured
 * in the same run, interleaved with them ("futex", "unix-socket"). The processes and
 * transports are in bench_fanout*.c, bench_transport.c and bench_floor.c; this file picks
 * the counts and runs them, bench_latency_report.c prints and plots.
 */
#include <stdio.h>
#include <unistd.h>

#include "bench_latency.h"
#include "shmbus.h"

const uint64_t lat_sizes[LAT_NSIZES] = {64, 4096, 65536, 1u << 20, 8u << 20, 24u << 20};
const int lat_subcounts[LAT_NGROUPS] = {1, 4};
/* The transports of each group: the pollable-fd path and the unix-socket floor with 1
 * subscriber; the futex floor with both, so that shmbus-shm with 4 subscribers has a floor
 * of the same shape (one wake, 4 receiver processes). */
static const unsigned group_masks[LAT_NGROUPS] = {
    FO_CLASSIC | FO_SHM_BITS | FO_FLOOR_BITS, FO_CLASSIC | FO_BIT(FO_SHM) | FO_BIT(FO_FUTEX)};
/* Per size: latency samples and throughput messages, sized for about 4 minutes in all on a
 * 2-CPU machine (the big nng-copy rows dominate). --quick divides them by QUICK_DIV. */
static const uint32_t lat_counts[LAT_NSIZES] = {12000, 12000, 8000, 2000, 400, 150};
static const uint32_t tput_counts[LAT_NSIZES] = {100000, 80000, 30000, 3000, 600, 200};
static const uint32_t warmups[LAT_NSIZES] = {300, 300, 200, 60, 40, 40};
#define FLOOD_COUNT 200000 /* unpaced, 64 B, shmbus and shmbus-shm, 1 subscriber */
#define QUICK_DIV 6
#define MIN_LAT 20
#define MIN_TPUT (4 * FO_WINDOW)
#define MIN_WARMUP 30 /* > the blocks of a class, so every block has been mapped once */
#define MIN_FLOOD 20000 /* below this the flood is over before the subscriber is scheduled */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-bench latency [--json] [--count N] [--quick] [--plot FILE.png]\n\n"
            "Publish-to-receive latency and throughput of shmbus on both delivery paths next\n"
            "to nng-copy, for payloads of 64 B, 4 KiB, 64 KiB, 1 MiB, 8 MiB and 24 MiB, with\n"
            "1 and 4 subscriber processes, and the floors of this machine, measured in the\n"
            "same run (about 4 minutes on 2 CPUs; --quick under a minute).\n\n"
            "  shmbus         the publisher loans a block, memsets the payload, publishes\n"
            "                 (which stamps the time); each subscriber blocks in\n"
            "                 shmbus_sub_recv, reads the first and last byte, releases. A\n"
            "                 topic with \"delivery\": \"nng\" (descriptors over nng ipc).\n"
            "  shmbus-shm     the same on a topic with \"delivery\": \"shm\" (descriptors\n"
            "                 through shared memory, a futex wake).\n"
            "  shmbus-shm-fd  the same, the subscriber waiting in poll() on shmbus_sub_fd,\n"
            "                 then shmbus_sub_recv with timeout 0 (1 subscriber, up to 1 MiB).\n"
            "  nng-copy       plain nng pub0 on ipc:// with sub0 subscribers: nng_msg_alloc,\n"
            "                 memset the payload, the send time in its first bytes,\n"
            "                 nng_sendmsg; each subscriber nng_recvmsg, reads the first and\n"
            "                 last byte, frees it.\n"
            "  futex          floor, every size, 1 and 4 receivers: payload and stamp in a\n"
            "                 MAP_SHARED memfd mapping, one FUTEX_WAKE of every receiver on\n"
            "                 a word there; each receiver in FUTEX_WAIT, reads the first and\n"
            "                 last byte.\n"
            "  unix-socket    floor, 64 B, 1 receiver: one way over an AF_UNIX stream socket\n"
            "                 pair; the receiver blocked in read().\n"
            "The payload write counts for all, but precedes the timestamp: latency is\n"
            "CLOCK_MONOTONIC at the subscriber's receive minus the time of publishing.\n\n"
            "Every subscriber is a process of its own, connected before anything is timed\n"
            "(probe messages until each got one), then each size gets a warm-up. Latency:\n"
            "one message at a time, the next only when every subscriber has acknowledged\n"
            "the last over a pipe (the floors too, in the same processes, interleaved with\n"
            "the rest at each size), so no queue builds up. p50 is the median of all\n"
            "samples of all subscribers; p50 slowest and p99 are over each message's\n"
            "slowest subscriber (its maximum over the subscribers). Throughput (not for\n"
            "the floors): back to back with at most %d messages not yet\n"
            "acknowledged by every subscriber; msgs/s counts what the slowest subscriber\n"
            "received. Unpaced (64 B, 1 subscriber, shmbus and shmbus-shm): %d messages\n"
            "back to back, nothing waited for; msgs/s counts what arrived, from the first\n"
            "publish to the last arrival. Loss (shmbus expired/dropped counters, sequence\n"
            "gaps for all) is reported, never hidden. The ratios and targets at the end\n"
            "compare rows of this run; a missed target is printed, not an error. Uses\n"
            "about 1.6 GiB of /dev/shm while it runs (two domains, each with a pool with\n"
            "room for every message in flight).\n\n"
            "  --count N       latency samples and throughput messages per row, every size\n"
            "                  (default: %u/%u at 64 B down to %u/%u at 24 MiB)\n"
            "  --quick         about a sixth of the default counts\n"
            "  --plot FILE.png also draw p50 against the payload size, log-log, a line per\n"
            "                  transport and subscriber count (needs gnuplot: Debian\n"
            "                  package gnuplot-nox)\n"
            "  --json          print only a JSON array, one object per transport, size and\n"
            "                  subscriber count: transport, size, subscribers, p50_us,\n"
            "                  p50_slowest_us, p99_us, max_us, msgs_per_s, unpaced_* (where\n"
            "                  measured), and loss counters\n",
            FO_WINDOW, FLOOD_COUNT, lat_counts[0], tput_counts[0], lat_counts[LAT_NSIZES - 1],
            tput_counts[LAT_NSIZES - 1]);
}

static uint32_t at_least(uint32_t v, uint32_t min) { return v < min ? min : v; }

int bench_latency(int argc, char **argv)
{
    bench_opts o = {.takes = BENCH_OPT_COUNT | BENCH_OPT_QUICK | BENCH_OPT_PLOT};
    int status = bench_parse_opts(argc, argv, &o, usage);
    if (status >= 0)
        return status;
    if (o.plot && bench_plot_check(o.plot) != 0)
        return 1; /* before minutes of measuring */
    status = 0;

    fo_step steps[LAT_NSIZES];
    uint32_t flood = FLOOD_COUNT;
    for (int i = 0; i < LAT_NSIZES; i++) {
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
        steps[i] = (fo_step){.size = lat_sizes[i], .warmup = at_least(wu, MIN_WARMUP),
                             .lat_count = at_least(lc, o.count ? 1 : MIN_LAT),
                             .tput_count = at_least(tc, MIN_TPUT),
                             .transports = FO_CLASSIC | FO_BIT(FO_SHM) | FO_BIT(FO_FUTEX)};
        if (lat_sizes[i] <= LAT_FD_MAX_SIZE)
            steps[i].transports |= FO_BIT(FO_SHM_FD);
        if (lat_sizes[i] == 64)
            steps[i].transports |= FO_BIT(FO_UNIX);
    }
    if (o.quick)
        flood /= QUICK_DIV;
    if (o.count)
        flood = (uint32_t)o.count;
    steps[0].flood = FO_BIT(FO_SHMBUS) | FO_BIT(FO_SHM);
    steps[0].flood_count = at_least(flood, MIN_FLOOD);

    static fo_run r; /* large: not on the stack */
    status = fo_run_all(&r, "latency", steps, LAT_NSIZES, lat_subcounts, group_masks,
                        LAT_NGROUPS);
    if (fo_run_measured(&r)) { /* after a failure, what the groups before it measured */
        if (o.json)
            lat_print_json(&r);
        else
            lat_print_table(&r);
        if (o.plot && !tool_stop_requested() && lat_plot(&r, o.plot) != 0)
            status = status ? status : 1;
    }
    return status;
}
