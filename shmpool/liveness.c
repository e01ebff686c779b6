/* Participants: slots, liveness tokens, crash reclaim and the reaper thread.
 *
 * Liveness token: each participant holds an OFD write lock on one byte of the ctl file
 * (CTL_LIVENESS_LOCK_BASE + slot). The kernel drops it when the owner dies, in any PID
 * namespace, so PIDs are never trusted for liveness. A sweeper takes a shared lock on the
 * same byte: getting it proves the owner is gone, and while any sweeper holds it no joiner
 * can take the slot. Clearing the dead slot's bits is idempotent (each bit goes with exactly
 * one CAS), so several sweepers may do it at once and one that stalls delays nobody; the
 * slot is freed by one CAS. pidfds only make the reaper wake at once.
 */
#include <errno.h>
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

/* Process start time (clock ticks after boot), field 22 of /proc/PID/stat; 0 if unknown. */
uint64_t pool_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
    if (!p)
        return 0;
    /* after ") " comes field 3; starttime is field 22 */
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

uint64_t pool_self_pidns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

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

/* Release every hold of participant slot s in every pool (mapped by the caller). Idempotent. */
static uint64_t reclaim_slot(shmpool_domain *d, unsigned s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load_explicit(&d->pools[i], memory_order_acquire);
        if (p)
            n += pool_reclaim_bit(p, 1ull << s);
    }
    return n;
}

int shmpool_domain_sweep(shmpool_domain *d)
{
    if (!d || d->observer)
        return SHMBUS_EINVAL;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    int reclaimed = 0;
    pool_map_all(d); /* before any slot lock: nothing below waits for anyone */
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
        uint32_t live = SLOT_LIVE;
        if (atomic_load_explicit(&pt->state, memory_order_acquire) == SLOT_LIVE) {
            reclaim_slot(d, s);
            /* Every bit of the slot is clear now; exactly one sweeper frees the slot. */
            if (atomic_compare_exchange_strong(&pt->state, &live, SLOT_FREE)) {
                atomic_fetch_add(&d->ctl->membership, 1);
                atomic_fetch_add(&d->ctl->reclaimed_participants, 1);
                reclaimed++;
            }
        }
        pool_liveness_lock(d->fd, s, F_UNLCK);
    }
    pthread_mutex_unlock(&d->sweep_lock);
    return reclaimed;
}

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

/* Take a free slot: its liveness lock first, then the record, then state LIVE (release). */
int pool_join(shmpool_domain *d, const char *pname)
{
    struct ctl_hdr *c = d->ctl;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &c->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE)
            continue;
        if (pool_liveness_lock(d->fd, s, F_WRLCK) != 0)
            continue; /* a sweeper is finishing with it */
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE) {
            pool_liveness_lock(d->fd, s, F_UNLCK);
            continue;
        }
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
        atomic_fetch_add(&c->membership, 1);
        return 0;
    }
    return pool_error(SHMBUS_ELIMIT,
                      "domain %s: all %d participant slots are taken (a domain admits at most "
                      "%d processes at a time)",
                      d->name, SHMPOOL_MAX_PARTICIPANTS, SHMPOOL_MAX_PARTICIPANTS);
}

void pool_process_name(char *buf, size_t len)
{
    buf[0] = 0;
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, len - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            buf[strcspn(buf, "\n")] = 0;
        }
    }
    if (!buf[0])
        snprintf(buf, len, "pid%d", (int)getpid());
}

/* ---- reaper thread -------------------------------------------------------------------- */

struct watch {
    int fd;
    unsigned slot;
    uint64_t uid;
};

static int watch_rebuild(shmpool_domain *d, struct watch *w)
{
    int n = 0;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (s == d->slot || atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        if (atomic_load_explicit(&pt->pidns, memory_order_relaxed) != d->pidns)
            continue; /* another PID namespace: its pid means nothing here; periodic sweep */
        pid_t pid = (pid_t)atomic_load_explicit(&pt->pid, memory_order_relaxed);
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
            continue; /* gone already: the periodic sweep finds it */
        /* The pid may have been reused: only watch it if the start time matches. */
        if (pool_proc_start_time(pid) != atomic_load_explicit(&pt->start_time, memory_order_relaxed)) {
            close(fd);
            continue;
        }
        w[n].fd = fd;
        w[n].slot = s;
        w[n].uid = atomic_load_explicit(&pt->uid, memory_order_relaxed);
        n++;
    }
    return n;
}

/* Poll period for new peers: a peer that joins is watched by pidfd within this time. */
#define REAPER_TICK_MS 10

static void *reaper_main(void *arg)
{
    shmpool_domain *d = arg;
    struct watch w[SHMPOOL_MAX_PARTICIPANTS];
    struct pollfd pfd[SHMPOOL_MAX_PARTICIPANTS + 1];
    int nw = 0;
    unsigned seen = ~0u, idle_ms = 0;
    int tick = d->sweep_interval_ms < REAPER_TICK_MS ? (int)d->sweep_interval_ms : REAPER_TICK_MS;
    for (;;) {
        unsigned m = atomic_load(&d->ctl->membership);
        if (m != seen) {
            for (int i = 0; i < nw; i++)
                close(w[i].fd);
            nw = watch_rebuild(d, w);
            seen = m;
        }
        pfd[0] = (struct pollfd){.fd = d->reaper_evfd, .events = POLLIN};
        for (int i = 0; i < nw; i++)
            pfd[i + 1] = (struct pollfd){.fd = w[i].fd, .events = POLLIN};
        int r = poll(pfd, (nfds_t)nw + 1, tick);
        if (r > 0 && (pfd[0].revents & POLLIN))
            break;
        idle_ms += (unsigned)tick;
        /* A watched peer died, or the periodic sweep for peers we cannot watch (other PID
         * namespaces, or dead before we opened their pidfd) is due. */
        if (r > 0 || idle_ms >= d->sweep_interval_ms) {
            idle_ms = 0;
            shmpool_domain_sweep(d);
        }
    }
    for (int i = 0; i < nw; i++)
        close(w[i].fd);
    return NULL;
}

int pool_reaper_start(shmpool_domain *d)
{
    d->reaper_evfd = eventfd(0, EFD_CLOEXEC);
    if (d->reaper_evfd < 0)
        return pool_errno_status(errno);
    if (pthread_create(&d->reaper, NULL, reaper_main, d) != 0) {
        close(d->reaper_evfd);
        return SHMBUS_ESYS;
    }
    d->reaper_on = true;
    return 0;
}

void pool_reaper_stop(shmpool_domain *d)
{
    if (!d->reaper_on)
        return;
    uint64_t one = 1;
    ssize_t w = write(d->reaper_evfd, &one, sizeof one);
    (void)w;
    pthread_join(d->reaper, NULL);
    close(d->reaper_evfd);
    d->reaper_on = false;
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

