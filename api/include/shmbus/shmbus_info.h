/* Plain data types of the public API that describe a domain: its configuration and the
 * read-only snapshot tools take of a running one (shmbus.h includes this).
 *
 * They sit with shmbus_types.h in the public include folder, the vocabulary every layer may
 * fill: the bus layer fills them, the API returns them. They are plain types (no functions,
 * no library state), so the lower layers include them without depending on the library. No
 * pointers into shared memory: a snapshot is a private copy. */
#ifndef SHMBUS_INFO_H
#define SHMBUS_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus_types.h"

#define SHMBUS_MAX_POOLS 16
#define SHMBUS_MAX_TOPICS 64
#define SHMBUS_MAX_CLASSES 8
#define SHMBUS_LAT_BUCKETS 80 /* latency histogram: quarter octaves from 1 us */

/* ---- configuration ------------------------------------------------------------------------ */

typedef struct shmbus_topic_def {
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    char pool[SHMBUS_POOL_NAME_MAX + 1];
    uint32_t history;          /* keep-last K per publisher */
    uint32_t max_held;         /* messages one subscriber may hold */
    uint32_t queue_depth;      /* descriptors queued per subscriber */
    int32_t full_wait_ms;      /* pool full: 0 fail at once, > 0 wait this long */
    uint64_t max_message_size;
    uint32_t delivery;         /* SHMBUS_DELIVERY_NNG or SHMBUS_DELIVERY_SHM (docs/delivery.md) */
} shmbus_topic_def;

/* How a topic's descriptors travel: nng ipc sockets, or rings in shared memory. */
enum { SHMBUS_DELIVERY_NNG = 0, SHMBUS_DELIVERY_SHM = 1 };

typedef struct shmbus_pool_def {
    char name[SHMBUS_POOL_NAME_MAX + 1];
    unsigned nclasses;
    shmbus_pool_class classes[SHMBUS_MAX_CLASSES];
    uint64_t bytes;            /* shared memory it occupies */
} shmbus_pool_def;

typedef struct shmbus_config_summary {
    char domain[SHMBUS_DOMAIN_NAME_MAX + 1];
    unsigned mode;
    long gid;                  /* -1: none */
    char runtime_dir[256];     /* "" : default */
    unsigned npools;
    shmbus_pool_def pools[SHMBUS_MAX_POOLS];
    unsigned ntopics;
    shmbus_topic_def topics[SHMBUS_MAX_TOPICS];
    bool has_default_topic;
    shmbus_topic_def default_topic; /* template for unlisted topics (name "") */
    uint64_t total_bytes;      /* shared memory all pools need */
} shmbus_config_summary;

/* ---- one subscriber's counters (copied out by shmbus_sub_stats) -------------------------- */

typedef struct shmbus_sub_counters {
    uint64_t received;        /* messages delivered */
    uint64_t expired;         /* arrived after their block was released (fell behind history) */
    uint64_t dropped;         /* never arrived: nng dropped them (sequence gaps) */
    uint64_t overflow;        /* skipped because this subscriber held max_held already */
    uint64_t invalid;         /* malformed, forged or replayed descriptors */
    uint64_t bytes;
    uint64_t held;            /* messages held now */
    uint64_t last_latency_ns; /* publish to receive, of the last message */
    uint64_t unreachable;     /* publishers of its topic it could not connect to */
} shmbus_sub_counters;

/* ---- snapshot of a running domain ------------------------------------------------------------ */

typedef struct shmbus_pub_info {
    uint64_t id;
    int pid;
    char name[SHMBUS_PARTICIPANT_NAME_MAX + 1]; /* process name */
    bool alive;
    uint64_t published, bytes, last_seq, loan_failures;
    uint64_t hist_released;    /* history holds it gave up early because the pool was full */
} shmbus_pub_info;

typedef struct shmbus_sub_info {
    uint64_t id;
    int pid;
    char name[SHMBUS_PARTICIPANT_NAME_MAX + 1];
    bool alive;
    uint64_t received, expired, dropped, overflow, invalid, bytes, held, max_held;
    uint64_t last_latency_ns;
    uint64_t latency[SHMBUS_LAT_BUCKETS]; /* counts per bucket, see shmbus_latency_edge_ns */
    uint64_t unreachable;      /* publishers of its topic it could not connect to */
} shmbus_sub_info;

typedef struct shmbus_topic_info {
    shmbus_topic_def def;
    unsigned npubs, nsubs;
    shmbus_pub_info *pubs;
    shmbus_sub_info *subs;
} shmbus_topic_info;

typedef struct shmbus_pool_info {
    char name[SHMBUS_POOL_NAME_MAX + 1];
    unsigned nclasses;
    shmbus_class_stats classes[SHMBUS_MAX_CLASSES];
    unsigned nheld;            /* blocks in use, listed with their holders */
    shmbus_block_state *held;
} shmbus_pool_info;

typedef struct shmbus_snapshot {
    char domain[SHMBUS_DOMAIN_NAME_MAX + 1];
    uint64_t taken_ns;         /* CLOCK_MONOTONIC */
    unsigned ntopics;
    shmbus_topic_info *topics;
    unsigned npools;
    shmbus_pool_info *pools;
    unsigned nparticipants;
    shmbus_participant_info *participants;
    unsigned alive;            /* participants alive (0: the domain is gone) */
} shmbus_snapshot;

#endif
