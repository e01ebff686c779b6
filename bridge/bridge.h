/* shmbus-bridge internals: one running bridge, its routes and their counters.
 *
 * Threads: main (start, stats, stop), one per route. A route's thread is the only writer of
 * its counters (atomics, read by main for the stats); everything else in a route is set up
 * before its thread starts and only read afterwards. */
#ifndef BRIDGE_BRIDGE_H
#define BRIDGE_BRIDGE_H

#include <dds/dds.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridge_config.h"
#include "shmbus.h"

/* Per route. received: messages taken from the local bus (out) or DDS samples taken (in);
 * forwarded: written to DDS (out) or published on the local bus (in); looped: out, messages
 * the bridge itself published (taken in), never sent back. Drops by cause. */
typedef struct route_counters {
    _Atomic uint64_t received, forwarded, looped;
    _Atomic uint64_t busy;      /* out: the DDS writer could not take it in time */
    _Atomic uint64_t too_large; /* out: > max_sample_size; in: > the topic's max message */
    _Atomic uint64_t refused;   /* a pixel format / encoding with no mapping */
    _Atomic uint64_t invalid;   /* malformed: frame header (out), Image fields (in) */
    _Atomic uint64_t pool_full; /* in: no block to loan */
    _Atomic uint64_t errors;    /* any other failure of a write or publish */
} route_counters;

struct bridge;

typedef struct route {
    const bridge_route *cfg;
    struct bridge *b;
    shmbus_sub *sub; /* out */
    shmbus_pub *pub; /* in */
    dds_entity_t topic;
    dds_entity_t writer;  /* out */
    dds_entity_t reader;  /* in */
    dds_entity_t waitset; /* in: the reader's data and the bridge's stop guard */
    uint64_t frames_in;   /* in: frame_number of the next frame published */
    pthread_t thread;
    bool started;
    route_counters c;
} route;

typedef struct bridge {
    bridge_config cfg;
    shmbus_domain *dom;
    dds_entity_t domain; /* from dds_create_domain, or 0 ($CYCLONEDDS_URI) */
    dds_entity_t participant;
    dds_entity_t stop_guard; /* triggered on stop: wakes the in routes' waitsets */
    shmbus_pub *stats_pub;
    uint64_t own_pubs[BRIDGE_MAX_ROUTES + 1]; /* ids of this process's publishers */
    unsigned nown;
    unsigned nroutes;
    route routes[BRIDGE_MAX_ROUTES];
    atomic_bool stop;
    bool quiet;
} bridge;

/* dds_session.c: the DDS participant and each route's topic, writer or reader, with QoS. */
int dds_session_open(bridge *b, char *err, size_t errlen);
int dds_session_route(bridge *b, route *r, char *err, size_t errlen);
void dds_session_close(bridge *b);
/* Readers (in) or writers (out) the route is matched with now. */
uint32_t dds_session_matched(const route *r);

/* route_out.c / route_in.c: a route's thread body. */
void *route_out_run(void *arg);
void *route_in_run(void *arg);

/* stats.c: the bridge's counters as one JSON object (malloc'ed, caller frees). */
char *bridge_stats_json(const bridge *b);

/* One line on stderr, "shmbus-bridge: <topic>: ...", for the first drop of each cause and
 * then at powers of two, so a flood does not flood the log. */
void bridge_note(const route *r, uint64_t count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void counter_add(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

#endif
