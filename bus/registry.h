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
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define REG_MAGIC 0x3147455242484853ull /* "SHHBREG1" */
#define REG_VERSION 3u
#define REG_MAX_TOPICS BUS_MAX_TOPICS
#define REG_MAX_PUBS 64
#define REG_MAX_SUBS 128
#define REG_LAT_BUCKETS 80 /* quarter octaves from 1 us: 1 us .. ~1000 s */
#define REG_ENDPOINT_MAX 108
#define REG_RING_SLOTS BUS_MAX_QUEUE_DEPTH /* a publisher's descriptor ring holds up to this many */

/* REG_CLOSED (publishers only): the tombstone of a publisher that closed or died. Its
 * last_seq is final and stays readable until every subscriber that counted the publisher has
 * accounted for its end of stream (docs/delivery.md); owner uid 0. */
enum { REG_FREE = 0, REG_CLAIMED = 1, REG_LIVE = 2, REG_CLOSED = 3 };

/* Ownership word of a publisher or subscriber entry: (owner participant uid << 2) | state,
 * 0 when free. One word, so each transition is one CAS or store and exactly one process
 * wins it: claim CAS 0 -> (uid, CLAIMED); the owner stores (uid, LIVE) once the entry is
 * filled and 0 on close; anyone may CAS (uid, *) -> 0 once that uid is dead (participant
 * uids are never reused in a domain, so a stale CAS cannot free a later owner's entry).
 * A publisher entry goes LIVE -> (0, CLOSED) instead of 0 (by its owner on close, by anyone
 * once the owner is dead), and (0, CLOSED) -> 0 by one CAS when no subscriber needs it. */
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
    uint32_t delivery; /* enum bus_delivery */
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
 * while CLAIMED and immutable while LIVE and CLOSED; counters are atomics written by the
 * owner (last_seq: also final once CLOSED). pub_id is atomic because subscribers compare it
 * with entries that may be reclaimed under them. */
struct reg_pub {
    _Atomic uint64_t own;
    _Atomic uint32_t topic; /* atomic: read by processes that may race a reclaim of the entry */
    uint32_t pad;
    _Atomic uint64_t pub_id;    /* domain-unique publisher id: (counter << 8) | entry index */
    uint64_t open_ticket;       /* next_id taken at open: subscribers with a smaller sub_id
                                   existed before it and count it from sequence 1 */
    uint32_t pid;
    uint32_t history;
    char endpoint[REG_ENDPOINT_MAX]; /* ipc socket path, for tools to show; processes
                                        derive it from pub_id (bus_pub_endpoint) */
    char name[32];                   /* process name */
    _Atomic uint64_t published;
    _Atomic uint64_t bytes;
    _Atomic uint64_t last_seq;
    _Atomic uint64_t loan_failures;
    _Atomic uint64_t hist_released; /* history holds given up early for a loan (pool full) */
    _Atomic uint64_t hist_next; /* history slots written so far */
    struct reg_hist hist[BUS_MAX_HISTORY];
    /* Tombstone (CLOSED), written before `own` becomes CLOSED (release): bit j of `need`
     * is subscriber entry j, which may still have to account for this publisher's end; it
     * clears its bit when it has. close_ticket: next_id at close (a subscriber entry whose
     * sub_id is larger is a later occupant and needs nothing). */
    _Atomic uint64_t need[REG_MAX_SUBS / 64];
    _Atomic uint64_t close_ticket;
};

/* A subscriber. Same life cycle as reg_pub. Counters: atomics written by the owner only. */
struct reg_sub {
    _Atomic uint64_t own;
    _Atomic uint32_t topic; /* atomic: read by processes that may race a reclaim of the entry */
    uint32_t pad;
    _Atomic uint64_t sub_id;    /* atomic: tombstones compare it with entries being claimed */
    uint32_t pid;
    uint32_t max_held;
    char name[32];
    _Atomic uint64_t received;
    _Atomic uint64_t bytes;
    _Atomic uint64_t expired;     /* descriptor arrived after its block was released */
    _Atomic uint64_t dropped;     /* sequence gaps: descriptors nng dropped */
    _Atomic uint64_t overflow;    /* dropped because this subscriber held max_held already */
    _Atomic uint64_t invalid;     /* malformed, forged or replayed descriptors */
    _Atomic uint64_t unreachable; /* publishers of its topic it could not connect to */
    _Atomic uint64_t held;        /* messages it holds now */
    _Atomic uint64_t last_latency_ns;
    _Atomic uint64_t latency[REG_LAT_BUCKETS]; /* histogram of publish-to-receive latency */
    /* Wake-up of an shm-delivery subscriber by its pollable fd (ring.c). fd_armed: the owner
     * made its fd (publishers send it a datagram); fd_pending: a datagram was sent and not
     * drained (set by publishers, cleared by the owner). */
    _Atomic uint32_t fd_armed;
    _Atomic uint32_t fd_pending;
    /* attached[i]: the id of the publisher in entry i whose ring this subscriber reads from
     * its base on (0: none). Written by the owner; a publisher counts the subscribers that
     * name it as its subscribers (what shmbus_pub_wait_subscribers waits for). */
    _Atomic uint64_t attached[REG_MAX_PUBS];
};

/* The descriptor ring of the publisher in the same registry entry index (struct reg_rings)
 * (docs/delivery.md). Written only by that publisher (the entry's owner), read by anyone:
 * slot[seq % depth] holds sequence seq's 80-byte wire message under a seqlock whose version
 * is 2*seq - 1 while it is written and 2*seq once complete; `head` is the highest sequence
 * whose slot is complete (stored after the slot, release). Readers check every field. */
struct reg_ring {
    _Atomic uint64_t head;
    uint64_t pad;
    struct reg_hist slot[REG_RING_SLOTS];
};

/* A topic's wake-up word for shm delivery. futex: bumped by every publish (and by a reaper
 * that entombs a publisher); subscribers blocked in recv sleep on it. sleepers: bit j is
 * subscriber entry j, asleep or about to be: set and cleared by its owner with one atomic
 * operation each (so a process killed anywhere leaves no count half done), cleared by a
 * reaper once the owner is dead; a publisher calls FUTEX_WAKE only if a bit is set. */
struct reg_wake {
    _Atomic uint32_t futex;
    uint32_t pad;
    _Atomic uint64_t sleepers[REG_MAX_SUBS / 64];
};

struct reg_hdr {
    uint64_t magic; /* immutable (the aux segment has its own magic too) */
    uint32_t version;
    uint32_t size;
    _Atomic uint32_t epoch;   /* futex word: bumped (and woken) when a publisher or subscriber
                                 comes or goes; discovery threads sleep on it */
    uint32_t pad;
    _Atomic uint64_t next_id; /* publisher and subscriber ids */
    uint64_t nonce;           /* random, at creation: names the subscribers' wake sockets */
    struct reg_topic topics[REG_MAX_TOPICS];
    struct reg_pub pubs[REG_MAX_PUBS];
    struct reg_sub subs[REG_MAX_SUBS];
    struct reg_wake wake[REG_MAX_TOPICS];
};

/* The rings of shm delivery: a second segment, "shmbus.<domain>.rings" (5.8 MB), made when
 * the domain's first shm-delivery publisher or subscriber opens, removed with the domain.
 * rings[i] belongs to the publisher in registry entry i. */
#define REG_RINGS_MAGIC 0x3153474e49524253ull /* "SBRINGS1" */
struct reg_rings {
    uint64_t magic; /* immutable */
    uint32_t version; /* REG_VERSION */
    uint32_t size;
    struct reg_ring ring[REG_MAX_PUBS];
};

/* The layout every process of a domain must agree on (REG_VERSION names it): a change that
 * moves any of these must bump REG_VERSION, and then these figures. */
_Static_assert(sizeof(struct reg_hist) == 88, "registry layout");
_Static_assert(sizeof(struct reg_topic) == 32 + BUS_TOPIC_NAME_MAX + 1 + BUS_NAME_MAX + 1,
               "registry layout");
_Static_assert(sizeof(struct reg_ring) == 16 + 88 * REG_RING_SLOTS, "registry layout");
_Static_assert(sizeof(struct reg_wake) == 8 + REG_MAX_SUBS / 8, "registry layout");
_Static_assert(sizeof(struct reg_pub) == 5888 && offsetof(struct reg_pub, pub_id) == 16 &&
                   offsetof(struct reg_pub, last_seq) == 200 && offsetof(struct reg_pub, hist) == 232 &&
                   offsetof(struct reg_pub, need) == 5864,
               "registry layout");
_Static_assert(sizeof(struct reg_sub) == 1296 && offsetof(struct reg_sub, sub_id) == 16 &&
                   offsetof(struct reg_sub, received) == 64 &&
                   offsetof(struct reg_sub, latency) == 136 &&
                   offsetof(struct reg_sub, fd_armed) == 776 &&
                   offsetof(struct reg_sub, attached) == 784,
               "registry layout");
_Static_assert(sizeof(struct reg_hdr) == 552488 && offsetof(struct reg_hdr, epoch) == 16 &&
                   offsetof(struct reg_hdr, nonce) == 32 && offsetof(struct reg_hdr, topics) == 40 &&
                   offsetof(struct reg_hdr, pubs) == 8232 && offsetof(struct reg_hdr, subs) == 385064 &&
                   offsetof(struct reg_hdr, wake) == 550952,
               "registry layout");
_Static_assert(sizeof(struct reg_rings) == 16 + REG_MAX_PUBS * sizeof(struct reg_ring) &&
                   offsetof(struct reg_rings, ring) == 16,
               "ring segment layout");

/* Latency histogram bucket of a latency in ns, and the lower edge of a bucket in ns. */
unsigned reg_lat_bucket(uint64_t ns);
uint64_t reg_lat_edge_ns(unsigned bucket);

#endif
