/* The domain registry (private to bus/): topics, publishers with their endpoints and
 * history, subscribers with their counters. One auxiliary shmpool segment per domain,
 * "shmbus.<domain>.reg", removed with the domain.
 *
 * Shared memory: offsets and indices only, never pointers. Guards are stated per field.
 * The monitor reads all of it without writing (docs/monitor.md).
 */
#ifndef BUS_REGISTRY_H
#define BUS_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"

#define REG_MAGIC 0x3147455242484853ull /* "SHHBREG1" */
#define REG_VERSION 1u
#define REG_MAX_TOPICS BUS_MAX_TOPICS
#define REG_MAX_PUBS 64
#define REG_MAX_SUBS 128
#define REG_LAT_BUCKETS 80 /* quarter octaves from 1 us: 1 us .. ~1000 s */
#define REG_ENDPOINT_MAX 108

enum { REG_FREE = 0, REG_CLAIMED = 1, REG_LIVE = 2 };

/* Ownership word of a publisher or subscriber entry: (owner participant uid << 2) | state,
 * 0 when free. One word, so each transition is one CAS or store and exactly one process
 * wins it: claim CAS 0 -> (uid, CLAIMED); the owner stores (uid, LIVE) once the entry is
 * filled and 0 on close; anyone may CAS (uid, *) -> 0 once that uid is dead (participant
 * uids are never reused in a domain, so a stale CAS cannot free a later owner's entry). */
#define REG_OWN(uid, st) (((uint64_t)(uid) << 2) | (uint64_t)(st))
#define REG_OWN_UID(w) ((w) >> 2)
#define REG_OWN_STATE(w) ((unsigned)((w) & 3u))

/* A topic's definition. Written once under the domain lock (shmpool_domain_serialize) with
 * `state` stored last (release); immutable afterwards until the domain is wiped. Any process
 * of the domain can write the segment, so readers trust none of it: names are compared
 * bounded, and a publisher or subscriber uses a copy checked field by field
 * (bus_topic_copy; EBADSEG if corrupt), never the entry itself. */
struct reg_topic {
    _Atomic uint32_t state;
    uint32_t history;
    uint32_t max_held;
    int32_t full_wait_ms;
    uint32_t queue_depth;
    uint32_t pad;
    uint64_t max_message_size;
    char name[BUS_TOPIC_NAME_MAX + 1];
    char pool[BUS_NAME_MAX + 1];
};

/* A history slot: one descriptor, read by late joiners under a seqlock (`version` odd while
 * the publisher writes). A torn read is harmless anyway: acquiring validates every field
 * against the block header and fails with "expired". */
struct reg_hist {
    _Atomic uint64_t version;
    _Atomic uint64_t w[10]; /* the 80-byte wire message */
};

/* A publisher. `own` (see REG_OWN) guards it: identity fields are written by the owner
 * while CLAIMED and immutable while LIVE; counters are atomics written by the owner. */
struct reg_pub {
    _Atomic uint64_t own;
    uint32_t topic;
    uint32_t pad;
    uint64_t pub_id;            /* domain-unique publisher id: (counter << 8) | entry index */
    uint32_t pid;
    uint32_t history;
    char endpoint[REG_ENDPOINT_MAX]; /* ipc socket path, for tools to show; processes
                                        derive it from pub_id (bus_pub_endpoint) */
    char name[32];                   /* process name */
    _Atomic uint64_t published;
    _Atomic uint64_t bytes;
    _Atomic uint64_t last_seq;
    _Atomic uint64_t loan_failures;
    _Atomic uint64_t hist_next; /* history slots written so far */
    struct reg_hist hist[BUS_MAX_HISTORY];
};

/* A subscriber. Same life cycle as reg_pub. Counters: atomics written by the owner only. */
struct reg_sub {
    _Atomic uint64_t own;
    uint32_t topic;
    uint32_t pad;
    uint64_t sub_id;
    uint32_t pid;
    uint32_t max_held;
    char name[32];
    _Atomic uint64_t received;
    _Atomic uint64_t bytes;
    _Atomic uint64_t expired;     /* descriptor arrived after its block was released */
    _Atomic uint64_t dropped;     /* sequence gaps: descriptors nng dropped */
    _Atomic uint64_t overflow;    /* dropped because this subscriber held max_held already */
    _Atomic uint64_t invalid;     /* malformed or forged descriptors */
    _Atomic uint64_t held;        /* messages it holds now */
    _Atomic uint64_t last_latency_ns;
    _Atomic uint64_t latency[REG_LAT_BUCKETS]; /* histogram of publish-to-receive latency */
};

struct reg_hdr {
    uint64_t magic; /* immutable (the aux segment has its own magic too) */
    uint32_t version;
    uint32_t size;
    _Atomic uint32_t epoch;   /* futex word: bumped (and woken) when a publisher or subscriber
                                 comes or goes; discovery threads sleep on it */
    uint32_t pad;
    _Atomic uint64_t next_id; /* publisher and subscriber ids */
    struct reg_topic topics[REG_MAX_TOPICS];
    struct reg_pub pubs[REG_MAX_PUBS];
    struct reg_sub subs[REG_MAX_SUBS];
};

/* Latency histogram bucket of a latency in ns, and the lower edge of a bucket in ns. */
unsigned reg_lat_bucket(uint64_t ns);
uint64_t reg_lat_edge_ns(unsigned bucket);

#endif
