/* Rates from two snapshots of a domain: what happened between them.
 *
 * A snapshot holds counters since each publisher and subscriber was opened; the difference
 * between two snapshots, over the time between them, gives message rates, bandwidth and the
 * latency percentiles of the messages received in between (from the difference of the
 * latency histograms). Publishers and subscribers are matched by id, so one that appeared
 * in between counts from zero and one that went away counts no more.
 *
 * All functions read the snapshots only; prev may be NULL (then every rate is 0 and the
 * latency is that of the whole histogram, has_latency telling whether there was any).
 */
#ifndef SHMBUS_SNAPDIFF_H
#define SHMBUS_SNAPDIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus.h"

typedef struct sd_rates {
    double rate_hz;       /* messages per second */
    double bandwidth_bps; /* payload bytes per second */
    bool has_latency;     /* some message was received in the interval */
    uint64_t p50_ns, p99_ns;
    uint64_t received;    /* messages received in the interval (all subscribers) */
    uint64_t lost;        /* expired + dropped + overflow in the interval */
} sd_rates;

/* Seconds between the snapshots (0 if prev is NULL or not older). */
double sd_interval_s(const shmbus_snapshot *prev, const shmbus_snapshot *cur);

const shmbus_topic_info *sd_find_topic(const shmbus_snapshot *s, const char *name);

/* A topic: rate and bandwidth of its publishers (when it has none now: of its subscribers'
 * receptions divided by their number), latency over all its subscribers. */
void sd_topic_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                    const shmbus_topic_info *t, sd_rates *out);
/* One subscriber (received messages and bytes) or publisher of topic t in cur. */
void sd_sub_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                  const shmbus_topic_info *t, const shmbus_sub_info *s, sd_rates *out);
void sd_pub_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                  const shmbus_topic_info *t, const shmbus_pub_info *p, sd_rates *out);

/* Who holds the blocks of a pool: one entry per participant slot found in a holder mask. */
typedef struct sd_holder {
    unsigned slot;
    int pid;              /* 0 if the slot is not in the snapshot's participants */
    char name[32];
    bool alive;
    unsigned blocks;      /* blocks of the pool it holds */
    uint64_t oldest_ns;   /* age of the oldest of them */
} sd_holder;

/* Fills up to max holders of pool p (of snapshot s), most blocks first; returns how many
 * there are in all. */
unsigned sd_pool_holders(const shmbus_snapshot *s, const shmbus_pool_info *p, sd_holder *out,
                         unsigned max);


#endif
