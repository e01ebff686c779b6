/* In-process state of shmpool (private to shmpool/). Nothing here lives in shared memory. */
#ifndef SHMPOOL_INTERNAL_H
#define SHMPOOL_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "layout.h"
#include "shmpool.h"

#define POOL_STRIPES 64

/* One per block per mapped pool: the in-process half of the two-level count.
 * `refs` is the handle count (atomic; clone is a lock-free increment). `held` says whether
 * this process's bit is set in the block's state word; it and the 0<->1 transitions of refs
 * that change it are guarded by the pool's stripe lock for the block, so one thread's last
 * release cannot clear the bit that another thread's acquire just relied on. */
struct shmbus_block {
    _Atomic uint32_t refs;
    bool held;     /* guarded by stripe lock */
    /* The payload is handed out writable: set by this process's loan (until it describes
     * the block) and by a named node; cleared when the process's hold drops. */
    _Atomic bool writable;
    uint8_t cls;   /* immutable */
    uint32_t index; /* immutable */
    struct shmbus_pool *pool; /* immutable */
};

/* A class's geometry as this process derived and checked it at map time. Shared memory's
 * copy is never read again: a bad writer there changes nothing a process indexes with. */
struct pool_geom {
    uint64_t block_size;
    uint64_t stride;
    uint32_t count;
};

struct shmbus_pool {
    shmpool_domain *dom;
    struct pool_seg_hdr *hdr; /* whole segment: control area RW (RO for observers), payload
                                 area always RO (what received blocks point into) */
    size_t map_size;
    size_t data_start;        /* page-aligned start of the payload area */
    int fd;                   /* the segment, for the writable mapping and size checks */
    uint8_t *_Atomic wmap;    /* second mapping of the payload area, RW: made on the first
                                 loan or node; only blocks this process may write point here */
    uint32_t pool_id;
    unsigned nclasses;
    char name[SHMPOOL_NAME_MAX + 1];
    struct pool_geom geom[SHMPOOL_MAX_CLASSES];
    struct pool_block_hdr *bh[SHMPOOL_MAX_CLASSES]; /* first header of each class */
    uint8_t *data[SHMPOOL_MAX_CLASSES];             /* first payload of each class (RO) */
    size_t data_off[SHMPOOL_MAX_CLASSES];           /* ... from data_start */
    struct shmbus_block *rec[SHMPOOL_MAX_CLASSES];  /* local records, one per block */
    _Atomic int64_t held;     /* blocks this process holds (close returns EBUSY while > 0) */
    _Atomic bool broken;      /* the segment shrank under us (guard.c): calls give EBADSEG */
    pthread_mutex_t stripes[POOL_STRIPES];
    pthread_mutex_t protect_lock; /* serialises making wmap */
};

struct shmpool_domain {
    char name[SHMPOOL_NAME_MAX + 1];
    char dir[PATH_MAX / 2];
    char ctl_path[PATH_MAX];
    int fd;                   /* ctl file: flock (open/close), sweepers' OFD locks */
    int token_fd;             /* ctl file, own description: this participant's liveness
                                 lock, until the reaper thread takes it over (then -1) */
    struct ctl_hdr *ctl;
    size_t ctl_size;
    bool observer;
    uid_t owner_uid;          /* owner and group of the ctl file: the domain's (trust.c) */
    gid_t owner_gid;
    bool group_shared;        /* the ctl file is group-writable: the group's files count */
    _Atomic bool broken;      /* the ctl segment shrank under us (guard.c) */
    unsigned mode;
    long gid;
    unsigned slot;
    uint64_t bit;             /* 1 << slot */
    uint64_t uid;
    unsigned fork_epoch;      /* the fork epoch at open (fork.c); differs in a forked child */
    pid_t pid;
    uint64_t pidns;
    pthread_mutex_t pools_lock; /* guards mapping pools into `pools`; never held while
                                   waiting for another process (the flock) */
    pthread_mutex_t serial_lock; /* with the flock: creation of shared objects, one thread
                                    of this process at a time (threads share d->fd, and so
                                    its flock) */
    pthread_mutex_t sweep_lock; /* one sweep at a time in this process: the threads share
                                   one open file description, whose OFD locks don't exclude
                                   each other */
    struct shmbus_pool *_Atomic pools[SHMPOOL_MAX_POOLS]; /* by directory index */
    /* reaper (reaper.c) */
    bool reaper_on;
    bool watcher_on;
    _Atomic bool reaper_stop;
    pthread_t reaper;
    pthread_t watcher;        /* sleeps on the ctl's membership futex */
    int reaper_evfd;          /* wakes the reaper: stop, or the membership moved */
    int trace_fd;             /* $SHMBUS_REAPER_TRACE (trace.c), or -1 */
    sem_t handover;           /* the watcher took over the liveness lock (or could not) */
    pid_t token_tid;          /* the watcher's tid if it holds the lock, else 0 */
    unsigned sweep_interval_ms;
    char wipe_dir[256]; /* this process's own option: removed with the domain ("" for none) */
    char recorded_dir[256]; /* the creator's, copied from the ctl segment: compared only */
    struct shmpool_domain *next_open; /* list of open domains, for the atfork handler */
};

/* The header of block `index` of class `cls`. */
static inline struct pool_block_hdr *pool_bh(const struct shmbus_pool *p, unsigned cls,
                                             uint32_t index)
{
    return &p->bh[cls][index];
}

/* Declarations by file, from the bottom up: a file calls only the files listed above it
 * (and itself). domain.c, segment.c, node.c, introspect.c and desc.c stand on top: they
 * define only the public functions of shmpool.h.
 */

/* sys.c */
int pool_errno_status(int err);
uint64_t pool_now_ns(void);
bool pool_valid_name(const char *s, size_t max);
uint64_t pool_proc_start_time(pid_t pid);
uint64_t pool_self_pidns(void);
void pool_process_name(char *buf, size_t len);

/* error.c */
int pool_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pool_clear_error(void);

/* fork.c */
void pool_fork_register(void);
unsigned pool_fork_epoch(void);
bool pool_forked(const shmpool_domain *d);
void pool_open_list_add(shmpool_domain *d);
void pool_open_list_remove(shmpool_domain *d);

/* guard.c */
void pool_guard(void *base, size_t len, int prot, _Atomic bool *broken);
void pool_unguard(void *base);

/* trust.c */
int pool_check_ctl(shmpool_domain *d, int fd);
int pool_check_segment(const shmpool_domain *d, int fd, const char *path, struct stat *st);

/* files.c */
int pool_shape_file(const shmpool_domain *d, int fd, uint64_t size);
int pool_unlink_segment(const shmpool_domain *d, const char *path);
int pool_wipe_files(const shmpool_domain *d);
void pool_wipe_domain(shmpool_domain *d);

/* ctl.c */
int pool_domain_lock_op(shmpool_domain *d, int op);
int pool_ctl_reopen(shmpool_domain *d, int flags);
int pool_ctl_init(shmpool_domain *d);
int pool_ctl_map(shmpool_domain *d);

/* trace.c */
void pool_trace_open(shmpool_domain *d);
void pool_trace_reclaim(shmpool_domain *d, unsigned slot, uint32_t dead_pid, uint64_t woke_ns,
                        uint64_t locked_ns, const uint64_t *pool_ns, bool won);

/* pool.c */
int pool_map_all(shmpool_domain *d);
void pool_unmap(struct shmbus_pool *p);
int pool_make_writable(struct shmbus_pool *p);
bool pool_check_size(struct shmbus_pool *p);

/* state.c */
uint64_t pool_release_bit(struct shmbus_pool *p, unsigned cls, uint32_t index, uint64_t bit);
uint64_t pool_reclaim_bit(struct shmbus_pool *p, uint64_t bit);

/* liveness.c */
int pool_liveness_lock(int fd, unsigned slot, short type);
bool pool_liveness_held(int fd, unsigned slot);
bool pool_any_live(shmpool_domain *d);
int pool_join(shmpool_domain *d, const char *pname);
void pool_membership_changed(shmpool_domain *d);
int pool_sweep(shmpool_domain *d, uint64_t woke_ns);

/* reaper.c */
int pool_reaper_start(shmpool_domain *d);
void pool_reaper_stop(shmpool_domain *d);
void pool_token_release(shmpool_domain *d);

/* block.c */
int pool_acquire_exact(struct shmbus_pool *p, unsigned cls, uint32_t index, uint16_t gen,
                       uint64_t seq, const uint64_t *owner_uid, shmbus_block **out);

#endif
