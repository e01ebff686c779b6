/* shmpool: crash-safe, cross-process, reference-counted block pools in POSIX shared memory.
 *
 * This is the lowest layer of shmbus. It knows nothing of nng or JSON. The bus layer and the
 * public facade (api/shmbus.h) build on it; tests use it directly.
 *
 * Objects
 *   shmpool_domain  one process's membership ("participant") in a named domain. Opening one
 *                   maps the domain's control segment and takes a participant slot; closing it
 *                   gives the slot back, and the last participant out removes every segment.
 *   shmbus_pool     a shared segment of fixed-size blocks in 1..SHMPOOL_MAX_CLASSES size
 *                   classes. Owned by its domain: closed when the domain closes.
 *   shmbus_block    a handle on a block this process holds. Handles are counted in the
 *                   process (clone/release); the process's hold in shared memory is taken on
 *                   the first handle and dropped with the last.
 *
 * Shared memory is lock-free: every change to a block is one CAS on its state word, and no
 * lock in shared memory guards a block (robust mutexes guard only the named-node table).
 * In the process, an uncontended stripe mutex guards the 0<->1 transitions of the handle
 * count (see docs/ownership.md).
 *
 * Threads: every call is thread-safe unless it says otherwise. Processes: a domain opened
 * before fork() is unusable in the child (calls return SHMBUS_EFORKED); open it again there.
 *
 * Ownership protocol and its proofs: docs/ownership.md.
 */
#ifndef SHMPOOL_H
#define SHMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus_types.h"

#define SHMPOOL_NAME_MAX 31          /* domain, pool and participant names */
#define SHMPOOL_NODE_NAME_MAX 47     /* named nodes */
#define SHMPOOL_MAX_CLASSES 8        /* size classes per pool */
#define SHMPOOL_MAX_POOLS 16         /* pools per domain */
#define SHMPOOL_MAX_PARTICIPANTS 48  /* holder bits in a block's 64-bit state word */
#define SHMPOOL_MAX_NODES 64         /* named nodes per domain */
#define SHMPOOL_MAX_BLOCKS (1u << 20) /* blocks per class */
#define SHMPOOL_MAX_BLOCK_SIZE (1ull << 40) /* bytes of a block */
#define SHMPOOL_DESC_SIZE 64         /* bytes of an encoded descriptor */

typedef struct shmpool_domain shmpool_domain;
typedef struct shmbus_pool shmbus_pool;
typedef struct shmbus_block shmbus_block;

/* The plain data types have public names (shmbus_types.h); these are the layer's aliases. */
typedef shmbus_pool_class shmpool_class;
typedef shmbus_class_stats shmpool_class_stats;
typedef shmbus_block_state shmpool_block_state;
typedef shmbus_participant_info shmpool_participant_info;
typedef shmbus_check_report shmpool_check_report;

/* ---- domain ---------------------------------------------------------------------------- */

typedef struct shmpool_domain_opts {
    unsigned mode;            /* file mode of every segment it creates; 0 means 0600 */
    long gid;                 /* group of created segments; -1 (or 0 with mode 0) keeps it */
    const char *shm_dir;      /* NULL: $SHMBUS_SHM_DIR if set, else /dev/shm */
    const char *name;         /* participant name shown by tools; NULL: the process's comm */
    bool observer;            /* read-only: no participant slot, no holds, no reaper */
    bool no_reaper;           /* do not start the background reaper thread */
    unsigned sweep_interval_ms; /* reaper's periodic sweep, which runs only while a live peer
                                   cannot be watched by pidfd (another PID namespace); 0 means
                                   100 ms */
    const char *wipe_dir;     /* a directory of the domain's own files (the bus's ipc
                                 endpoints): its sockets are removed, then it, when this
                                 process is the domain's last participant out */
} shmpool_domain_opts;

/* Initialise opts with the defaults above. */
void shmpool_domain_opts_init(shmpool_domain_opts *opts);

/* Open (creating if needed) the domain `name` ([A-Za-z0-9_-], no '.') and join it as a participant.
 * opts may be NULL for the defaults. If every earlier participant is dead, the domain is
 * wiped and starts clean. Blocks briefly on the domain's open/close file lock.
 * On success *out is owned by the caller: close it with shmpool_domain_close().
 * Errors: EINVAL (bad name), EACCES, ENOSPC, EBADSEG, ELIMIT (participant table full),
 * ESYS (errno kept); for an observer also ENOENT (no such domain) and EAGAIN (its creator is
 * still initialising it: try again shortly). */
int shmpool_domain_open(const char *name, const shmpool_domain_opts *opts, shmpool_domain **out);

/* Leave the domain. Returns SHMBUS_EBUSY (and changes nothing) while this process still holds
 * handles from its pools. The last live participant out unlinks every segment of the domain.
 * Not thread-safe against other calls on the same domain. */
int shmpool_domain_close(shmpool_domain *d);

/* Reclaim the holds of dead participants now. Returns the number of participants reclaimed
 * (>= 0) or an error. Exactly one sweeper wins each dead slot. The reaper thread calls this
 * when a peer dies (pidfd) and every sweep interval; a loan that finds its pool empty too. */
int shmpool_domain_sweep(shmpool_domain *d);

/* Run fn(ctx) holding the domain's open/close lock (in this process and across processes):
 * what the layer above uses to create shared objects exactly once. Returns fn's result. */
int shmpool_domain_serialize(shmpool_domain *d, int (*fn)(void *ctx), void *ctx);

/* Detail of the last error a shmpool call reported in this thread ("" if it gave none):
 * which file, limit or check refused. */
const char *shmpool_last_error(void);

/* The SHMBUS_E* status for an errno value. */
int shmpool_errno_status(int err);

/* Does this process still hold blocks of the domain (so that closing it gives EBUSY)? */
bool shmpool_domain_holds(const shmpool_domain *d);

/* Is the participant with this uid attached and alive? */
bool shmpool_participant_live(shmpool_domain *d, uint64_t uid);

/* True in a child forked after the domain was opened (the domain is unusable there). */
bool shmpool_domain_forked(const shmpool_domain *d);

/* An auxiliary segment of the domain, "shmbus.<domain>.<tag>": created (size bytes,
 * zero-filled, reserved up front, the domain's mode and group) by the first caller, which
 * runs init(map, ctx) on it before anyone else can see it; later callers map the same
 * segment. Removed with the domain. *map is RW (RO for observers); unmap it with
 * shmpool_segment_close(map, size) before closing the domain.
 * Errors: EINVAL (tag empty, of 40 characters or more, or with a '/'), EBADSEG (exists with
 * another size), ENOSPC, EACCES, ENOENT (observer, absent). */
int shmpool_segment_open(shmpool_domain *d, const char *tag, size_t size,
                         int (*init)(void *map, void *ctx), void *ctx, void **map);
void shmpool_segment_close(void *map, size_t size);

/* The domain creator's wipe_dir as recorded in the ctl segment, for comparison only (a bad
 * writer may have changed it): nothing opens or removes it. */
const char *shmpool_domain_recorded_dir(const shmpool_domain *d);

/* Names of the domains with a ctl file in shm_dir (NULL: default): fills up to max, returns
 * how many there are, or an error. */
int shmpool_domain_list(const char *shm_dir, char (*names)[SHMPOOL_NAME_MAX + 1], unsigned max);

/* Remove what a domain left behind (its segments, and wipe_dir if not NULL: the caller's own
 * idea of the domain's directory of files, emptied as a domain's last participant does),
 * without joining it. SHMBUS_EBUSY while a live participant uses it. */
int shmpool_domain_remove(const char *name, const char *shm_dir, const char *wipe_dir);

/* This participant's slot (0..47) and its domain-unique id (never reused within a domain). */
unsigned shmpool_domain_slot(const shmpool_domain *d);
uint64_t shmpool_domain_uid(const shmpool_domain *d);
const char *shmpool_domain_name(const shmpool_domain *d);
/* This participant's name as tools show it. */
const char *shmpool_domain_pname(const shmpool_domain *d);

/* ---- pools ----------------------------------------------------------------------------- */


/* Create the pool `name` with the given classes, or open it if it exists. With nclasses == 0
 * only opens an existing pool. An existing pool must have exactly the same classes (any order
 * given here; they are kept sorted by block size), else SHMBUS_EINCOMPAT.
 * Creating reserves the whole segment up front (posix_fallocate): a full /dev/shm fails here
 * with SHMBUS_ENOSPC, never later with SIGBUS, and leaves nothing behind.
 * The pool belongs to the domain: *out stays valid until shmpool_domain_close(). */
int shmpool_pool_open(shmpool_domain *d, const char *name, const shmpool_class *classes,
                      unsigned nclasses, shmbus_pool **out);

/* Bytes of shared memory a pool with these classes (any order) occupies: payloads rounded to
 * their alignment, block headers, pool header. Returns 0 or EINVAL (bad or duplicate class). */
int shmpool_pool_size(const shmpool_class *classes, unsigned nclasses, uint64_t *total);

/* The pool's name and id (random per creation; descriptors of an earlier incarnation of the
 * pool are rejected because their id differs). */
const char *shmpool_pool_name(const shmbus_pool *p);
uint32_t shmpool_pool_id(const shmbus_pool *p);

/* ---- blocks ---------------------------------------------------------------------------- */

/* Loan a free block of the smallest class whose block_size >= size, held by this process
 * with one handle. timeout_ms: 0 fails at once with SHMBUS_EFULL when that class has no free
 * block, > 0 waits up to that long (sleeping on a futex, woken by any release), < 0 waits
 * forever. Before failing or sleeping it reclaims dead participants' holds.
 * Errors: ETOOBIG (no class is large enough), EFULL, ETIMEDOUT, EFORKED, EINTR.
 * The block's payload is writable until it is described (see shmpool_block_describe). */
int shmpool_loan(shmbus_pool *p, uint64_t size, int timeout_ms, shmbus_block **out);

/* One more handle on the same hold (the origin design's use count: docs/design.md). Never
 * fails; lock-free. Returns b. Each handle is released once. */
shmbus_block *shmpool_block_clone(shmbus_block *b);

/* Release one handle. The last handle of this process drops its hold; the last hold in any
 * process frees the block (its generation moves on) and wakes loaners waiting for it.
 * Returns 0, or EFORKED (nothing is touched in a forked child). */
int shmpool_block_release(shmbus_block *b);

/* Payload. Writable memory only for a block this process loaned and has not described yet,
 * and for named nodes; every other block, in particular one acquired from a descriptor (also
 * in a process that loans from the same pool), is in a read-only mapping: writing faults. */
void *shmpool_block_data(const shmbus_block *b);
shmpool_domain *shmpool_block_domain(const shmbus_block *b);
uint64_t shmpool_block_capacity(const shmbus_block *b);

/* Metadata written by the loaner (immutable while the block is held). */
typedef struct shmpool_block_info {
    uint32_t pool_id;
    uint16_t cls;
    uint16_t gen;
    uint32_t index;
    uint64_t length;        /* bytes published */
    uint64_t seq;           /* pool-unique loan number */
    uint64_t timestamp_ns;  /* CLOCK_MONOTONIC at describe time */
    uint64_t owner_uid;     /* participant uid of the loaner */
    uint64_t user;          /* free for the layer above (the bus: topic sequence) */
} shmpool_block_info;
void shmpool_block_get_info(const shmbus_block *b, shmpool_block_info *info);

/* ---- descriptors ----------------------------------------------------------------------- */

/* The record that names a held block; 64 bytes once encoded, little-endian on the wire. */
typedef struct shmpool_desc {
    uint32_t pool_id;
    uint16_t cls;
    uint16_t gen;
    uint32_t index;
    uint64_t length;
    uint64_t seq;
    uint64_t timestamp_ns;
    uint64_t owner_uid;
    uint64_t user;
} shmpool_desc;

/* Record length (<= capacity), timestamp (now) and `user` in the block header and fill *out.
 * Only the loaner may describe its block, once per loan; afterwards the header is immutable
 * for as long as the block is held. Errors: EINVAL (length > capacity, not the loaner). */
int shmpool_block_describe(shmbus_block *b, uint64_t length, uint64_t user, shmpool_desc *out);

/* Take a hold on the block a descriptor names (weak upgrade): succeeds only while some
 * participant still holds exactly that generation and the header's sequence and owner match.
 * Otherwise SHMBUS_EEXPIRED. SHMBUS_EBADDESC: a class or index out of range, a length beyond
 * the block, sequence 0, or a held block whose length, timestamp or user field differ from
 * the descriptor's (a forged descriptor). SHMBUS_ENOENT: a pool id this domain does not
 * have. On success *out is one new handle (release it). */
int shmpool_acquire(shmpool_domain *d, const shmpool_desc *desc, shmbus_block **out);

/* Wire format: magic "SHMD", version, size, then the fields, all little-endian. */
void shmpool_desc_encode(const shmpool_desc *desc, uint8_t out[SHMPOOL_DESC_SIZE]);
/* Checks magic, version, size and reserved bytes: EBADDESC on any mismatch or len != 64. */
int shmpool_desc_decode(const void *buf, size_t len, shmpool_desc *out);

/* ---- named nodes (get-or-create a block by name: the origin design, docs/design.md) ----- */

/* Get the block named `name` in pool p, or create it with capacity >= size (zero-filled) if
 * no participant holds it. *created says which. The node lives while any process holds it and
 * is destroyed (its block freed) when the last one releases it. Release with
 * shmpool_block_release(). Errors: EFULL, ETOOBIG, ELIMIT (node table full), EINVAL. */
int shmpool_node_get(shmbus_pool *p, const char *name, uint64_t size, shmbus_block **out,
                     bool *created);

/* Lock / unlock the node's robust process-shared mutex, which guards modification of its
 * payload. shmpool_node_lock blocks; it returns SHMBUS_EOWNERDEAD when the previous holder
 * died holding it: the caller then holds the lock and should repair the payload. */
int shmpool_node_lock(shmbus_block *node);
int shmpool_node_unlock(shmbus_block *node);

/* ---- introspection (reads only: takes no hold, changes nothing) ------------------------- */


/* Fills up to max entries; returns the number of classes or an error. */
int shmpool_pool_stats(const shmbus_pool *p, shmpool_class_stats *out, unsigned max);


/* Calls fn for every block in use (holders != 0). fn returns non-zero to stop. */
int shmpool_pool_walk(const shmbus_pool *p,
                      int (*fn)(const shmpool_block_state *st, void *ctx), void *ctx);


/* Fills up to max entries with the participants in the table (live ones and dead ones not
 * yet reclaimed); returns how many were found or an error. */
int shmpool_participants(shmpool_domain *d, shmpool_participant_info *out, unsigned max);

/* Consistency walk over every pool of the domain, for tests and `shmbus doctor`:
 * bad counts the blocks whose holders include a slot that is not a participant, or whose
 * counters disagree (loans - frees != used). Returns 0 if consistent, SHMBUS_EBADSEG if not. */
int shmpool_domain_check(shmpool_domain *d, shmpool_check_report *rep);

/* Pools of the domain, in directory order: fills up to max pointers, returns the count. */
int shmpool_domain_pools(shmpool_domain *d, shmbus_pool **out, unsigned max);

#endif
