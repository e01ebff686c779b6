/* In-process state of shmpool (private to shmpool/). Nothing here lives in shared memory. */
#ifndef SHMPOOL_INTERNAL_H
#define SHMPOOL_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
    uint8_t cls;   /* immutable */
    uint32_t index; /* immutable */
    struct shmbus_pool *pool; /* immutable */
};

struct shmbus_pool {
    shmpool_domain *dom;
    struct pool_seg_hdr *hdr; /* whole segment; control area RW (RO for observers) */
    size_t map_size;
    size_t data_start;        /* page-aligned start of the payload area */
    _Atomic bool data_writable; /* payload area upgraded to RW (first loan, or a node) */
    uint32_t pool_id;
    unsigned nclasses;
    char name[SHMPOOL_NAME_MAX + 1];
    struct pool_block_hdr *bh[SHMPOOL_MAX_CLASSES]; /* first header of each class */
    uint8_t *data[SHMPOOL_MAX_CLASSES];             /* first payload of each class */
    struct shmbus_block *rec[SHMPOOL_MAX_CLASSES];  /* local records, one per block */
    _Atomic int64_t held;     /* blocks this process holds (close returns EBUSY while > 0) */
    pthread_mutex_t stripes[POOL_STRIPES];
    pthread_mutex_t protect_lock; /* serialises the RW upgrade of the payload area */
};

struct shmpool_domain {
    char name[SHMPOOL_NAME_MAX + 1];
    char dir[PATH_MAX / 2];
    char ctl_path[PATH_MAX];
    int fd;                   /* ctl file: flock (open/close), OFD liveness locks */
    struct ctl_hdr *ctl;
    size_t ctl_size;
    bool observer;
    unsigned mode;
    long gid;
    unsigned slot;
    uint64_t bit;             /* 1 << slot */
    uint64_t uid;
    unsigned fork_epoch;      /* g_fork_epoch at open; differs in a forked child */
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
    /* reaper */
    bool reaper_on;
    pthread_t reaper;
    int reaper_evfd;
    unsigned sweep_interval_ms;
    char wipe_dir[256]; /* removed with the domain's segments ("" for none) */
    struct shmpool_domain *next_open; /* list of open domains, for the atfork handler */
};

/* domain.c */
bool pool_forked(const shmpool_domain *d);
bool pool_valid_name(const char *s, size_t max);
void pool_wipe_domain(shmpool_domain *d);
int pool_errno_status(int err);
uint64_t pool_now_ns(void);
int pool_map_all(shmpool_domain *d);
int pool_domain_lock_op(shmpool_domain *d, int op);

/* liveness.c */
uint64_t pool_proc_start_time(pid_t pid);
uint64_t pool_self_pidns(void);
int pool_liveness_lock(int fd, unsigned slot, short type);
bool pool_liveness_held(int fd, unsigned slot);
bool pool_any_live(shmpool_domain *d);
int pool_join(shmpool_domain *d, const char *pname);
void pool_process_name(char *buf, size_t len);
int pool_reaper_start(shmpool_domain *d);
void pool_reaper_stop(shmpool_domain *d);

/* pool.c */
int pool_map(shmpool_domain *d, unsigned dir_index, struct shmbus_pool **out);
void pool_unmap(struct shmbus_pool *p);
int pool_create(shmpool_domain *d, unsigned dir_index, const char *name,
                const shmpool_class *classes, unsigned nclasses);
int pool_layout(const shmpool_class *classes, unsigned nclasses, struct pool_class_shm *out,
                uint64_t *total);
int pool_make_writable(struct shmbus_pool *p);
int pool_seg_path(const shmpool_domain *d, const char *pool, char *buf, size_t len);

/* segment.c */
int pool_wipe_files(const shmpool_domain *d);
int pool_shape_file(const shmpool_domain *d, int fd, uint64_t size);

/* block.c */
static inline struct pool_block_hdr *pool_bh(const struct shmbus_pool *p, unsigned cls,
                                             uint32_t index)
{
    return &p->bh[cls][index];
}
uint64_t pool_release_bit(struct shmbus_pool *p, unsigned cls, uint32_t index, uint64_t bit);
uint64_t pool_reclaim_bit(struct shmbus_pool *p, uint64_t bit);
int pool_acquire_exact(struct shmbus_pool *p, unsigned cls, uint32_t index, uint16_t gen,
                       uint64_t seq, const uint64_t *owner_uid, shmbus_block **out);

#endif
