/* Kill-to-reclaim accounting of shmbus-chaos: each kill's times, their distribution, and with
 * a reaper trace ($SHMBUS_REAPER_TRACE, see shmpool's reaper) the split of each reclaim into
 * death, wake-up, slot lock, pool walk and the controller noticing. */
#ifndef CHAOS_RECLAIM_H
#define CHAOS_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define RECLAIM_MAX_KILLS 65536

struct kill_rec {
    pid_t pid;
    uint64_t kill_ns; /* SIGKILL sent */
    uint64_t dead_ns; /* waitpid (polled) reaped it: it has fully exited */
    uint64_t seen_ns; /* the controller saw its slot gone (0: never) */
    /* from the trace, 0 if absent: the first sweeper's wake-up and slot lock; the winning
     * sweeper's end of its walk */
    uint64_t woke_ns, locked_ns, done_ns;
    uint64_t reclaimed_ns; /* done_ns if traced, else seen_ns (reclaim_settle) */
    bool joined;           /* it had a participant slot in the last snapshot before the kill */
};

struct reclaim_log {
    struct kill_rec k[RECLAIM_MAX_KILLS];
    unsigned n;
};

/* Fill woke/locked/done from a reaper trace file. */
void reclaim_read_trace(struct reclaim_log *log, const char *path);
/* One line per measured span (those the trace has, too): p50, p99, max in ms; to f. */
void reclaim_report(const struct reclaim_log *log, FILE *f);
/* Set each kill's reclaim time: when the winning sweeper freed its slot (from the trace), or
 * else when the controller saw it gone; a worker killed before it joined (no slot in the
 * last snapshot, no trace line) had nothing to reclaim and is left out (counted in
 * *unjoined). Returns the largest kill-to-reclaim in ms; a kill never reclaimed counts as
 * `never_ms`. */
double reclaim_settle(struct reclaim_log *log, double never_ms, unsigned *unjoined);
/* Kill-to-reclaim: percentile p (0..100) in ms (after reclaim_settle). */
double reclaim_percentile_ms(const struct reclaim_log *log, double p);

#endif
