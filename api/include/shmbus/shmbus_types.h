/* Plain data types shared by every layer and the public API (shmbus.h includes this).
 * Lower layers include them from the public include folder; they contain no
 * pointers and no library state, so changing one is an API change: bump the version
 * (SHMBUS_VERSION_MINOR in shmbus.h, while it is 0.x). */
#ifndef SHMBUS_TYPES_H
#define SHMBUS_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus_errors.h"

/* The longest name of each kind, in chars (shmbus.h, "names"); a buffer for one holds the
 * limit + 1. */
#define SHMBUS_DOMAIN_NAME_MAX 31
#define SHMBUS_POOL_NAME_MAX 31
#define SHMBUS_PARTICIPANT_NAME_MAX 31
#define SHMBUS_TOPIC_NAME_MAX 63
#define SHMBUS_NODE_NAME_MAX 47

/* One size class of a pool. */
typedef struct shmbus_pool_class {
    uint64_t block_size; /* payload bytes per block, 1 .. 1 TiB */
    uint32_t count;      /* blocks, 1 .. (1 << 20) */
} shmbus_pool_class;

/* Counters of one size class. */
typedef struct shmbus_class_stats {
    uint64_t block_size;
    uint32_t total;
    uint32_t used;           /* exact: counted from the state words */
    uint32_t high_water;     /* most blocks in use at once */
    uint64_t loans;          /* successful loans */
    uint64_t frees;          /* blocks returned to the pool */
    uint64_t failed_loans;   /* loans that found no free block (after waiting, if asked) */
    uint64_t reclaims;       /* holds of dead participants released by a sweep */
    uint64_t oldest_hold_ns; /* age of the oldest block in use, 0 if none */
} shmbus_class_stats;

/* One block in use, as the introspection walk reports it. */
typedef struct shmbus_block_state {
    uint16_t cls;
    uint16_t gen;
    uint32_t index;
    uint64_t holders;  /* bit i set: participant slot i holds it */
    uint64_t seq;
    uint64_t owner_uid;
    uint64_t age_ns;   /* since loan */
} shmbus_block_state;

/* One participant (attached process) of a domain. */
typedef struct shmbus_participant_info {
    unsigned slot;
    uint64_t uid;
    int pid;
    uint64_t start_time; /* clock ticks after boot, /proc/PID/stat field 22 */
    bool alive;          /* its liveness lock is held */
    uint64_t held_blocks;
    char name[SHMBUS_PARTICIPANT_NAME_MAX + 1];
} shmbus_participant_info;

/* Result of a consistency walk over every pool of a domain. */
typedef struct shmbus_check_report {
    uint64_t blocks;
    uint64_t used;
    uint64_t orphan_holds;   /* holder bits of free participant slots */
    int64_t imbalance;       /* sum over classes of loans - frees - used */
} shmbus_check_report;

#endif
