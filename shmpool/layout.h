/* Shared-memory layout of shmpool (private to shmpool/).
 *
 * Everything here lives in POSIX shared memory, mapped at a different address in every
 * process: it holds sizes, offsets and indices, never pointers (docs/design.md, invariant 4).
 * Each struct says which fields never change after creation and which atomic guards the rest.
 * Changing anything here means bumping the matching *_VERSION.
 *
 * Segments of domain D (in the shm directory, /dev/shm by default):
 *   shmbus.D.ctl          control: participants, pool directory, named nodes
 *   shmbus.D.pool.P       one per pool: class table, block headers, then payloads
 *   shmbus.D.<tag>        auxiliary segments of the layers above (segment.c)
 */
#ifndef SHMPOOL_LAYOUT_H
#define SHMPOOL_LAYOUT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shmpool.h"

#define CTL_MAGIC 0x4c5443534d424853ull  /* "SHMBSCTL" */
#define CTL_VERSION 2u /* 2: the token thread's tid in the participant record */
#define POOL_MAGIC 0x4c4f4f504d424853ull /* "SHMBPOOL" */
#define POOL_VERSION 1u

/* OFD lock byte of participant slot s in the ctl file: held by the slot's owner while it
 * lives (the liveness token), and by the one sweeper reclaiming it after it died. */
#define CTL_LIVENESS_LOCK_BASE (1ull << 40)

/* ---- block state word: the only truth about a block ---------------------------------- */
/* bits 0..47 holder mask (bit s = participant slot s), bits 48..63 generation. Free iff the
 * mask is 0. The generation moves on exactly when the mask becomes empty. */
#define STATE_MASK_BITS 48
#define STATE_MASK ((1ull << STATE_MASK_BITS) - 1)
#define STATE_GEN(w) ((uint16_t)((w) >> STATE_MASK_BITS))
#define STATE_HOLDERS(w) ((w) & STATE_MASK)
#define STATE_MAKE(gen, holders) (((uint64_t)(uint16_t)(gen) << STATE_MASK_BITS) | (holders))

/* One block's header: its own cache line, in the pool's control area (payloads live apart,
 * in the data area, so a sweep touches only these lines and readers can map payloads
 * read-only). */
struct pool_block_hdr {
    _Atomic uint64_t state;        /* gen|holders, CAS only */
    /* Written by the loaner after its loan CAS and before any descriptor names the block;
     * immutable while the block is held. Relaxed atomics: readers compare them after their
     * acquire CAS and treat any mismatch as "expired". */
    _Atomic uint64_t seq;          /* pool-unique loan number (never 0 once loaned) */
    _Atomic uint64_t owner_uid;    /* participant uid of the loaner */
    _Atomic uint64_t length;       /* published length (describe) */
    _Atomic uint64_t timestamp_ns; /* CLOCK_MONOTONIC at describe */
    _Atomic uint64_t user;         /* layer above's field (bus: topic sequence) */
    _Atomic uint64_t loan_ns;      /* CLOCK_MONOTONIC at loan (age of holds) */
    uint64_t reserved;
};
_Static_assert(sizeof(struct pool_block_hdr) == 64, "block header is one cache line");
_Static_assert(offsetof(struct pool_block_hdr, state) == 0 &&
                   offsetof(struct pool_block_hdr, seq) == 8 &&
                   offsetof(struct pool_block_hdr, owner_uid) == 16 &&
                   offsetof(struct pool_block_hdr, length) == 24 &&
                   offsetof(struct pool_block_hdr, timestamp_ns) == 32 &&
                   offsetof(struct pool_block_hdr, loan_ns) == 48,
               "block header offsets");

/* Per size class, in the pool header. */
struct pool_class_shm {
    /* immutable after creation (and re-derived and checked by every process that maps) */
    uint64_t block_size;
    uint64_t stride;      /* payload bytes between blocks: block_size rounded to align */
    uint64_t hdr_offset;  /* first block header, from the segment start */
    uint64_t data_offset; /* first payload, from the segment start */
    uint32_t count;
    uint32_t align;
    /* hints and counters: atomics, any process; none is needed for correctness */
    _Atomic uint32_t cursor;     /* next-fit start of the free-block scan */
    _Atomic uint32_t free_seq;   /* futex word: bumped after every block that becomes free */
    _Atomic uint32_t waiters;    /* loaners sleeping on free_seq (a dead one only costs wakes) */
    uint32_t pad0;
    _Atomic uint64_t loans;
    _Atomic uint64_t frees;
    _Atomic uint64_t failed_loans;
    _Atomic uint64_t reclaims;
    _Atomic uint64_t used_hint;  /* loans - frees as counted; only feeds high_water */
    _Atomic uint64_t high_water;
    uint64_t pad1[3];
};
_Static_assert(sizeof(struct pool_class_shm) == 128, "class record is two cache lines");
_Static_assert(offsetof(struct pool_class_shm, count) == 32 &&
                   offsetof(struct pool_class_shm, cursor) == 40 &&
                   offsetof(struct pool_class_shm, free_seq) == 44 &&
                   offsetof(struct pool_class_shm, loans) == 56,
               "class record offsets");

/* Top bit of a class's free_seq: a loaner may be sleeping on it. The next free clears it and
 * wakes everyone, so a sleeper that died leaves at most one needless wake behind. */
#define FREE_SLEEPER 0x80000000u

struct pool_seg_hdr {
    /* immutable after creation; magic is written last, so a half-made segment reads 0 */
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t pool_id;
    uint32_t nclasses;
    char name[SHMPOOL_NAME_MAX + 1];
    _Atomic uint64_t next_seq; /* source of block seq numbers */
    uint64_t pad[7];
    struct pool_class_shm classes[SHMPOOL_MAX_CLASSES];
};
_Static_assert(sizeof(struct pool_seg_hdr) == 128 + 128 * SHMPOOL_MAX_CLASSES, "pool header size");
_Static_assert(alignof(struct pool_seg_hdr) <= 64, "pool header alignment");
_Static_assert(offsetof(struct pool_seg_hdr, magic) == 0 &&
                   offsetof(struct pool_seg_hdr, version) == 8 &&
                   offsetof(struct pool_seg_hdr, header_size) == 12 &&
                   offsetof(struct pool_seg_hdr, total_size) == 16 &&
                   offsetof(struct pool_seg_hdr, name) == 32 &&
                   offsetof(struct pool_seg_hdr, next_seq) == 64 &&
                   offsetof(struct pool_seg_hdr, classes) == 128,
               "pool header offsets");

/* ---- control segment ------------------------------------------------------------------ */

enum { SLOT_FREE = 0, SLOT_LIVE = 1 };

/* Guard: `state` (release store by the owner under the domain's open/close flock, CAS by
 * nobody). The other fields are written by the joiner before it stores SLOT_LIVE and read
 * after an acquire load of SLOT_LIVE. Whether the owner is alive is never stored: it is the
 * OFD lock at CTL_LIVENESS_LOCK_BASE + slot, which the kernel drops when the owner dies. */
struct ctl_participant {
    _Atomic uint32_t state;
    _Atomic uint32_t pid;
    _Atomic uint64_t uid;        /* domain-unique participant id */
    _Atomic uint64_t start_time; /* /proc/PID/stat starttime */
    _Atomic uint64_t pidns;      /* inode of its PID namespace */
    _Atomic uint64_t join_ns;
    char name[SHMPOOL_NAME_MAX + 1];
    /* The thread whose death drops the liveness lock (its reaper), 0 while the process's
     * file table holds it; stored by the owner after state LIVE, then membership bumped. */
    _Atomic uint32_t token_tid;
    uint32_t pad0;
    uint64_t pad[2];
};
_Static_assert(sizeof(struct ctl_participant) == 96, "participant record size");
_Static_assert(offsetof(struct ctl_participant, pid) == 4 &&
                   offsetof(struct ctl_participant, uid) == 8 &&
                   offsetof(struct ctl_participant, start_time) == 16 &&
                   offsetof(struct ctl_participant, pidns) == 24 &&
                   offsetof(struct ctl_participant, join_ns) == 32 &&
                   offsetof(struct ctl_participant, name) == 40 &&
                   offsetof(struct ctl_participant, token_tid) == 72,
               "participant record offsets");

enum { DIR_EMPTY = 0, DIR_READY = 1 };

/* Pool directory entry. Written only under the domain's open/close flock; `state` is stored
 * last with release, readers acquire it. Immutable once READY until the domain is wiped. */
struct ctl_pool_entry {
    _Atomic uint32_t state;
    uint32_t pool_id;
    uint32_t nclasses;
    uint32_t pad;
    uint64_t total_size;
    char name[SHMPOOL_NAME_MAX + 1];
    shmpool_class classes[SHMPOOL_MAX_CLASSES]; /* sorted by block_size */
};
_Static_assert(sizeof(shmpool_class) == 16, "class entry size");
_Static_assert(sizeof(struct ctl_pool_entry) == 56 + 16 * SHMPOOL_MAX_CLASSES,
               "pool directory entry size");
_Static_assert(offsetof(struct ctl_pool_entry, pool_id) == 4 &&
                   offsetof(struct ctl_pool_entry, total_size) == 16 &&
                   offsetof(struct ctl_pool_entry, name) == 24 &&
                   offsetof(struct ctl_pool_entry, classes) == 56,
               "pool directory entry offsets");

/* Named node. `lock` (robust, process-shared) guards the node's payload for its users.
 * The table fields are guarded by ctl_hdr.nodes_lock. An entry whose block no longer holds
 * (pool_id, cls, index, gen, seq) is stale and may be reused. */
struct ctl_node {
    pthread_mutex_t lock;
    uint32_t used;
    uint32_t pool_id;
    uint16_t cls;
    uint16_t gen;
    uint32_t index;
    uint64_t seq;
    char name[SHMPOOL_NODE_NAME_MAX + 1];
};
/* pthread_mutex_t is 40 bytes on x86-64 glibc, 48 on arm64: the offsets count from it. */
#define CTL_MUTEX_SIZE sizeof(pthread_mutex_t)
_Static_assert(CTL_MUTEX_SIZE % 8 == 0, "mutex keeps the next field 8-aligned");
_Static_assert(sizeof(struct ctl_node) == CTL_MUTEX_SIZE + 72, "node entry size");
_Static_assert(offsetof(struct ctl_node, used) == CTL_MUTEX_SIZE &&
                   offsetof(struct ctl_node, index) == CTL_MUTEX_SIZE + 12 &&
                   offsetof(struct ctl_node, seq) == CTL_MUTEX_SIZE + 16 &&
                   offsetof(struct ctl_node, name) == CTL_MUTEX_SIZE + 24,
               "node entry offsets");

struct ctl_hdr {
    /* immutable after creation; magic is written last */
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t max_participants;
    uint32_t max_pools;
    uint32_t max_nodes;
    uint32_t pad;
    /* atomics */
    _Atomic uint64_t next_uid;       /* participant uids */
    _Atomic uint32_t membership;     /* bumped on every join and leave (reaper rescans) */
    _Atomic uint32_t pad1;
    _Atomic uint64_t reclaimed_participants;
    char recorded_dir[256];          /* immutable: the creator's wipe_dir option, so that the
                                        layer above can refuse a process that would put its
                                        files elsewhere. Compared only: never opened or
                                        removed (nothing names a file from shared memory) */
    pthread_mutex_t nodes_lock;      /* robust, process-shared: named node table */
    struct ctl_participant participants[SHMPOOL_MAX_PARTICIPANTS];
    struct ctl_pool_entry pools[SHMPOOL_MAX_POOLS];
    struct ctl_node nodes[SHMPOOL_MAX_NODES];
};
_Static_assert(offsetof(struct ctl_hdr, magic) == 0 && offsetof(struct ctl_hdr, version) == 8 &&
                   offsetof(struct ctl_hdr, header_size) == 12 &&
                   offsetof(struct ctl_hdr, total_size) == 16 &&
                   offsetof(struct ctl_hdr, max_participants) == 24 &&
                   offsetof(struct ctl_hdr, next_uid) == 40 &&
                   offsetof(struct ctl_hdr, membership) == 48 &&
                   offsetof(struct ctl_hdr, reclaimed_participants) == 56 &&
                   offsetof(struct ctl_hdr, recorded_dir) == 64 &&
                   offsetof(struct ctl_hdr, nodes_lock) == 320,
               "ctl header offsets");
_Static_assert(offsetof(struct ctl_hdr, participants) == 320 + CTL_MUTEX_SIZE &&
                   offsetof(struct ctl_hdr, pools) ==
                       320 + CTL_MUTEX_SIZE + 96 * SHMPOOL_MAX_PARTICIPANTS &&
                   offsetof(struct ctl_hdr, nodes) ==
                       offsetof(struct ctl_hdr, pools) +
                           sizeof(struct ctl_pool_entry) * SHMPOOL_MAX_POOLS,
               "ctl tables offsets");
_Static_assert(sizeof(struct ctl_hdr) ==
                   offsetof(struct ctl_hdr, nodes) + sizeof(struct ctl_node) * SHMPOOL_MAX_NODES,
               "ctl segment size");

/* ---- auxiliary segments --------------------------------------------------------------- */

#define AUX_MAGIC 0x32585541424d4853ull /* "SHMBAUX2" */
#define AUX_VERSION 2u /* 2: version and header size in the header */

/* Header of an auxiliary segment; the caller's data starts 64 bytes in. All immutable after
 * creation; `magic` is written after init() returns, so a zero magic means its creator died
 * half-way. */
struct aux_hdr {
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t size; /* the caller's part, after this header */
    char tag[40];
};
_Static_assert(sizeof(struct aux_hdr) == 64, "aux header is one cache line");
_Static_assert(offsetof(struct aux_hdr, version) == 8 && offsetof(struct aux_hdr, size) == 16 &&
                   offsetof(struct aux_hdr, tag) == 24,
               "aux header offsets");

#endif
