/* Participants: slots, liveness tokens and crash reclaim (the reaper thread that calls it on
 * events is in reaper.c).
 *
 * Liveness token: each participant holds an OFD write lock on one byte of the ctl file
 * (CTL_LIVENESS_LOCK_BASE + slot), through a description only its reaper thread's private
 * file table refers to (reaper.c). The kernel drops it when that thread dies, which happens
 * only when the process dies (or execs), in any PID namespace, so PIDs are never trusted for
 * liveness. A sweeper takes a shared lock on the
 * same byte: getting it proves the owner is gone, and while any sweeper holds it no joiner
 * can take the slot. Clearing the dead slot's bits is idempotent (each bit goes with exactly
 * one CAS), so several sweepers may do it at once and one that stalls delays nobody; the
 * slot is freed by one CAS.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* OFD lock (F_WRLCK) or unlock (F_UNLCK) of a slot's liveness byte, without waiting.
 * Returns 0 on success, SHMBUS_EBUSY if another open file description holds it. */
int pool_liveness_lock(int fd, unsigned slot, short type)
{
    struct flock fl = {.l_type = type,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)(CTL_LIVENESS_LOCK_BASE + slot),
                       .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    return (errno == EAGAIN || errno == EACCES) ? SHMBUS_EBUSY : pool_errno_status(errno);
}

/* Is the slot's liveness lock held by someone (works on read-only fds too)? */
bool pool_liveness_held(int fd, unsigned slot)
{
    struct flock fl = {.l_type = F_RDLCK,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)(CTL_LIVENESS_LOCK_BASE + slot),
                       .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return true; /* cannot tell: never declare a peer dead on an error */
    return fl.l_type != F_UNLCK;
}

/* Release every hold of participant slot s in every pool (mapped by the caller). Idempotent.
 * With a trace, t[i] is when pool i was done. */
static uint64_t reclaim_slot(shmpool_domain *d, unsigned s, uint64_t *t)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load_explicit(&d->pools[i], memory_order_acquire);
        if (p && !atomic_load_explicit(&p->broken, memory_order_relaxed))
            n += pool_reclaim_bit(p, 1ull << s);
        if (t)
            t[i] = p ? pool_now_ns() : 0;
    }
    return n;
}

/* A join or leave: bump the count and wake every reaper's membership watcher. */
void pool_membership_changed(shmpool_domain *d)
{
    atomic_fetch_add(&d->ctl->membership, 1);
    syscall(SYS_futex, &d->ctl->membership, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int pool_sweep(shmpool_domain *d, uint64_t woke_ns)
{
    if (!d || d->observer)
        return SHMBUS_EINVAL;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    int reclaimed = 0;
    pool_map_all(d); /* before any slot lock: nothing below waits for anyone */
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load_explicit(&d->pools[i], memory_order_acquire);
        if (p)
            pool_check_size(p); /* a shrunk segment is marked broken, never walked */
    }
    pthread_mutex_lock(&d->sweep_lock);
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (s == d->slot || atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        /* A shared lock on the slot's token: granted only when its owner (who holds it
         * exclusively) is dead, and it keeps any joiner (who needs it exclusively) out of the
         * slot until we are done. Several sweepers may clear the dead slot's bits at once
         * (each bit is released by exactly one CAS), so one that is stopped or preempted
         * mid-way delays nobody's reclaim; it only delays the slot's reuse. */
        if (pool_liveness_lock(d->fd, s, F_RDLCK) != 0)
            continue; /* alive */
        uint64_t t_locked = pool_now_ns(), t_pools[SHMPOOL_MAX_POOLS];
        uint32_t live = SLOT_LIVE;
        if (atomic_load_explicit(&pt->state, memory_order_acquire) == SLOT_LIVE) {
            uint32_t dead_pid = atomic_load_explicit(&pt->pid, memory_order_relaxed);
            reclaim_slot(d, s, d->trace_fd >= 0 ? t_pools : NULL);
            /* Every bit of the slot is clear now; exactly one sweeper frees the slot. */
            bool won = atomic_compare_exchange_strong(&pt->state, &live, SLOT_FREE);
            if (won) {
                atomic_fetch_add(&d->ctl->reclaimed_participants, 1);
                pool_membership_changed(d);
                reclaimed++;
            }
            if (d->trace_fd >= 0)
                pool_trace_reclaim(d, s, dead_pid, woke_ns ? woke_ns : t_locked, t_locked,
                                   t_pools, won);
        }
        pool_liveness_lock(d->fd, s, F_UNLCK);
    }
    pthread_mutex_unlock(&d->sweep_lock);
    return reclaimed;
}

int shmpool_domain_sweep(shmpool_domain *d) { return pool_sweep(d, 0); }

bool pool_any_live(shmpool_domain *d)
{
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        if (!d->observer && s == d->slot && d->bit)
            continue;
        if (atomic_load_explicit(&d->ctl->participants[s].state, memory_order_acquire) ==
                SLOT_LIVE &&
            pool_liveness_held(d->fd, s))
            return true;
    }
    return false;
}

/* Take a free slot: its liveness lock first, then the record, then state LIVE (release).
 * The lock is taken through a description of its own (d->token_fd), which the reaper thread
 * later takes over (reaper.c): then the lock goes as soon as that one thread dies. */
int pool_join(shmpool_domain *d, const char *pname)
{
    struct ctl_hdr *c = d->ctl;
    int x = pool_ctl_reopen(d, O_RDWR);
    if (x < 0)
        return pool_error(pool_errno_status(errno), "%s: reopen for the liveness lock",
                          d->ctl_path);
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &c->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE)
            continue;
        if (pool_liveness_lock(x, s, F_WRLCK) != 0)
            continue; /* a sweeper is finishing with it */
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE) {
            pool_liveness_lock(x, s, F_UNLCK);
            continue;
        }
        d->token_fd = x;
        atomic_store_explicit(&pt->token_tid, 0, memory_order_relaxed);
        d->slot = s;
        d->bit = 1ull << s;
        d->uid = atomic_fetch_add(&c->next_uid, 1);
        atomic_store_explicit(&pt->pid, (uint32_t)d->pid, memory_order_relaxed);
        atomic_store_explicit(&pt->uid, d->uid, memory_order_relaxed);
        atomic_store_explicit(&pt->start_time, pool_proc_start_time(d->pid), memory_order_relaxed);
        atomic_store_explicit(&pt->pidns, d->pidns, memory_order_relaxed);
        atomic_store_explicit(&pt->join_ns, pool_now_ns(), memory_order_relaxed);
        memset(pt->name, 0, sizeof pt->name);
        snprintf(pt->name, sizeof pt->name, "%s", pname);
        atomic_store_explicit(&pt->state, SLOT_LIVE, memory_order_release);
        pool_membership_changed(d);
        return 0;
    }
    close(x);
    return pool_error(SHMBUS_ELIMIT,
                      "domain %s: all %d participant slots are taken (a domain admits at most "
                      "%d processes at a time)",
                      d->name, SHMPOOL_MAX_PARTICIPANTS, SHMPOOL_MAX_PARTICIPANTS);
}

bool shmpool_participant_live(shmpool_domain *d, uint64_t uid)
{
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE ||
            atomic_load_explicit(&pt->uid, memory_order_relaxed) != uid)
            continue;
        return (!d->observer && s == d->slot && d->bit) || pool_liveness_held(d->fd, s);
    }
    return false;
}

