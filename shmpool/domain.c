/* Domain: the control segment, participants, liveness, crash reclaim and the reaper thread.
 *
 * Liveness token: each participant holds an OFD write lock on one byte of the ctl file
 * (CTL_LIVENESS_LOCK_BASE + slot). The kernel drops it when the owner dies, in any PID
 * namespace, so PIDs are never trusted for liveness. A sweeper takes that same lock with
 * F_OFD_SETLK: getting it proves the owner is gone, and only one sweeper can hold it, so
 * exactly one sweeper reclaims each dead slot. A sweeper that dies mid-reclaim drops the lock
 * and the next one redoes the (idempotent) reclaim. pidfds only make the reaper wake at once.
 *
 * Open, join, leave and wipe are serialised by flock() on the same file (see docs/ownership.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- fork detection ------------------------------------------------------------------- */

static _Atomic unsigned g_fork_epoch;
static pthread_mutex_t g_open_lock = PTHREAD_MUTEX_INITIALIZER; /* guards g_open */
static shmpool_domain *g_open;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) { pthread_mutex_lock(&g_open_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_open_lock); }
static void atfork_child(void)
{
    /* The child must not keep the parent's liveness locks (OFD locks follow the open file
     * description): otherwise the parent's death would go unnoticed while the child lives. */
    atomic_fetch_add(&g_fork_epoch, 1);
    for (shmpool_domain *d = g_open; d; d = d->next_open) {
        if (d->fd >= 0) {
            close(d->fd);
            d->fd = -1;
        }
    }
    pthread_mutex_unlock(&g_open_lock);
}
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

bool pool_forked(const shmpool_domain *d)
{
    return d->fork_epoch != atomic_load_explicit(&g_fork_epoch, memory_order_relaxed);
}

static void open_list_add(shmpool_domain *d)
{
    pthread_mutex_lock(&g_open_lock);
    d->next_open = g_open;
    g_open = d;
    pthread_mutex_unlock(&g_open_lock);
}

static void open_list_remove(shmpool_domain *d)
{
    pthread_mutex_lock(&g_open_lock);
    for (shmpool_domain **pp = &g_open; *pp; pp = &(*pp)->next_open) {
        if (*pp == d) {
            *pp = d->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&g_open_lock);
}

/* ---- small helpers -------------------------------------------------------------------- */

int shmpool_errno_status(int err) { return pool_errno_status(err); }

int pool_errno_status(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        return SHMBUS_EACCES;
    case ENOSPC:
    case EFBIG:
        return SHMBUS_ENOSPC;
    case ENOMEM:
        return SHMBUS_ENOMEM;
    case ENOENT:
        return SHMBUS_ENOENT;
    case EEXIST:
        return SHMBUS_EEXIST;
    case EINTR:
        return SHMBUS_EINTR;
    case EINVAL:
        return SHMBUS_EINVAL;
    default:
        return SHMBUS_ESYS;
    }
}

uint64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Domain names have no '.', so no domain's prefix "shmbus.NAME." covers another's files. */
static bool valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Process start time (clock ticks after boot), field 22 of /proc/PID/stat; 0 if unknown. */
static uint64_t proc_start_time(pid_t pid)
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

static uint64_t self_pidns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int pool_domain_lock_op(shmpool_domain *d, int op)
{
    while (flock(d->fd, op) != 0) {
        if (errno != EINTR)
            return pool_errno_status(errno);
    }
    return 0;
}

/* OFD lock (F_WRLCK) or unlock (F_UNLCK) of a slot's liveness byte, without waiting.
 * Returns 0 on success, SHMBUS_EBUSY if another open file description holds it. */
static int liveness_lock(int fd, unsigned slot, short type)
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
static bool liveness_held(int fd, unsigned slot)
{
    struct flock fl = {.l_type = F_RDLCK,
                       .l_whence = SEEK_SET,
                       .l_start = (off_t)(CTL_LIVENESS_LOCK_BASE + slot),
                       .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return true; /* cannot tell: never declare a peer dead on an error */
    return fl.l_type != F_UNLCK;
}

/* ---- control segment ------------------------------------------------------------------ */

static int init_robust_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc ? SHMBUS_ESYS : 0;
}

/* Map the ctl file through a new open file description of the same inode, never through
 * d->fd. A mapping keeps its file description alive for as long as any process has it
 * mapped, including children forked without exec; if that were d->fd's description, a dead
 * participant's liveness lock would outlive it in such a child. */
static void *ctl_mmap(shmpool_domain *d, size_t size, int prot)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", d->fd);
    int flags = (prot & PROT_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    int fd = open(path, flags);
    if (fd < 0) /* no /proc: the path, which cannot change while we hold the flock */
        fd = open(d->ctl_path, flags | O_NOFOLLOW);
    if (fd < 0)
        return MAP_FAILED;
    struct stat a, b;
    void *m = MAP_FAILED;
    if (fstat(fd, &a) == 0 && fstat(d->fd, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        m = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    else
        errno = ESTALE;
    close(fd);
    return m;
}

/* Size the fresh (empty) ctl file, reserve it, and write the header; magic goes last. */
static int ctl_init(shmpool_domain *d)
{
    size_t size = sizeof(struct ctl_hdr);
    if (ftruncate(d->fd, (off_t)size) != 0)
        return pool_errno_status(errno);
    int err = posix_fallocate(d->fd, 0, (off_t)size);
    if (err) {
        errno = err; /* posix_fallocate returns its error; callers report errno */
        return pool_errno_status(err);
    }
    void *m = ctl_mmap(d, size, PROT_READ | PROT_WRITE);
    if (m == MAP_FAILED)
        return pool_errno_status(errno);
    struct ctl_hdr *c = m;
    memset(c, 0, size);
    c->version = CTL_VERSION;
    c->header_size = (uint32_t)sizeof *c;
    c->total_size = size;
    c->max_participants = SHMPOOL_MAX_PARTICIPANTS;
    c->max_pools = SHMPOOL_MAX_POOLS;
    c->max_nodes = SHMPOOL_MAX_NODES;
    snprintf(c->wipe_dir, sizeof c->wipe_dir, "%s", d->wipe_dir);
    atomic_store(&c->next_uid, 1);
    int rc = init_robust_mutex(&c->nodes_lock);
    for (unsigned i = 0; rc == 0 && i < SHMPOOL_MAX_NODES; i++)
        rc = init_robust_mutex(&c->nodes[i].lock);
    if (rc) {
        munmap(m, size);
        return rc;
    }
    atomic_store_explicit(&c->magic, CTL_MAGIC, memory_order_release);
    d->ctl = c;
    d->ctl_size = size;
    return 0;
}

/* Map an existing ctl file and check magic, version and size. */
static int ctl_map(shmpool_domain *d)
{
    struct stat st;
    if (fstat(d->fd, &st) != 0)
        return pool_errno_status(errno);
    size_t size = sizeof(struct ctl_hdr);
    if ((uint64_t)st.st_size != size) /* size 0: its creator has not sized it yet */
        return st.st_size == 0 && d->observer ? SHMBUS_EAGAIN : SHMBUS_EBADSEG;
    int prot = d->observer ? PROT_READ : PROT_READ | PROT_WRITE;
    void *m = ctl_mmap(d, size, prot);
    if (m == MAP_FAILED)
        return pool_errno_status(errno);
    struct ctl_hdr *c = m;
    if (atomic_load_explicit(&c->magic, memory_order_acquire) != CTL_MAGIC ||
        c->version != CTL_VERSION || c->header_size != sizeof *c || c->total_size != size ||
        c->max_participants != SHMPOOL_MAX_PARTICIPANTS || c->max_pools != SHMPOOL_MAX_POOLS ||
        c->max_nodes != SHMPOOL_MAX_NODES) {
        /* magic 0: being created (its creator writes magic last); an observer may retry */
        bool young = atomic_load(&c->magic) == 0 && d->observer;
        munmap(m, size);
        return young ? SHMBUS_EAGAIN : SHMBUS_EBADSEG;
    }
    d->ctl = c;
    d->ctl_size = size;
    return 0;
}

/* Map every pool in the directory that this process has not mapped yet. */
int pool_map_all(shmpool_domain *d)
{
    int rc = 0;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        if (atomic_load_explicit(&d->ctl->pools[i].state, memory_order_acquire) != DIR_READY)
            continue;
        if (atomic_load_explicit(&d->pools[i], memory_order_acquire))
            continue;
        struct shmbus_pool *p;
        int r = pool_map(d, i, &p);
        if (r && !rc)
            rc = r;
    }
    return rc;
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
    /* Map every pool first: a dead slot's lock must be held as briefly as possible, since no
     * other sweeper can take that slot meanwhile. */
    pool_map_all(d);
    pthread_mutex_lock(&d->sweep_lock);
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (s == d->slot || atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        if (liveness_lock(d->fd, s, F_WRLCK) != 0)
            continue; /* alive, or another sweeper is on it */
        /* We hold the dead owner's token: nobody else reclaims or reuses this slot now. */
        if (atomic_load_explicit(&pt->state, memory_order_acquire) == SLOT_LIVE) {
            reclaim_slot(d, s);
            atomic_store_explicit(&pt->state, SLOT_FREE, memory_order_release);
            atomic_fetch_add(&d->ctl->membership, 1);
            atomic_fetch_add(&d->ctl->reclaimed_participants, 1);
            reclaimed++;
        }
        liveness_lock(d->fd, s, F_UNLCK);
    }
    pthread_mutex_unlock(&d->sweep_lock);
    return reclaimed;
}

static bool any_live(shmpool_domain *d)
{
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        if (!d->observer && s == d->slot && d->bit)
            continue;
        if (atomic_load_explicit(&d->ctl->participants[s].state, memory_order_acquire) ==
                SLOT_LIVE &&
            liveness_held(d->fd, s))
            return true;
    }
    return false;
}

/* Remove every file of the domain. Caller holds the open/close flock. */
static void wipe_domain(shmpool_domain *d)
{
    pool_wipe_files(d);
    unlink(d->ctl_path);
}

static void unmap_all(shmpool_domain *d)
{
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load(&d->pools[i]);
        if (p)
            pool_unmap(p);
        atomic_store(&d->pools[i], NULL);
    }
    if (d->ctl)
        munmap(d->ctl, d->ctl_size);
    d->ctl = NULL;
}

/* Take a free slot: its liveness lock first, then the record, then state LIVE (release). */
static int join(shmpool_domain *d, const char *pname)
{
    struct ctl_hdr *c = d->ctl;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &c->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE)
            continue;
        if (liveness_lock(d->fd, s, F_WRLCK) != 0)
            continue; /* a sweeper is finishing with it */
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_FREE) {
            liveness_lock(d->fd, s, F_UNLCK);
            continue;
        }
        d->slot = s;
        d->bit = 1ull << s;
        d->uid = atomic_fetch_add(&c->next_uid, 1);
        atomic_store_explicit(&pt->pid, (uint32_t)d->pid, memory_order_relaxed);
        atomic_store_explicit(&pt->uid, d->uid, memory_order_relaxed);
        atomic_store_explicit(&pt->start_time, proc_start_time(d->pid), memory_order_relaxed);
        atomic_store_explicit(&pt->pidns, d->pidns, memory_order_relaxed);
        atomic_store_explicit(&pt->join_ns, pool_now_ns(), memory_order_relaxed);
        memset(pt->name, 0, sizeof pt->name);
        snprintf(pt->name, sizeof pt->name, "%s", pname);
        atomic_store_explicit(&pt->state, SLOT_LIVE, memory_order_release);
        atomic_fetch_add(&c->membership, 1);
        return 0;
    }
    return SHMBUS_ELIMIT;
}

static void process_name(char *buf, size_t len)
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
        if (proc_start_time(pid) != atomic_load_explicit(&pt->start_time, memory_order_relaxed)) {
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

static int reaper_start(shmpool_domain *d)
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

static void reaper_stop(shmpool_domain *d)
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

/* ---- open / close --------------------------------------------------------------------- */

void shmpool_domain_opts_init(shmpool_domain_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = 0600;
    o->gid = -1;
}

static int open_observer(shmpool_domain *d)
{
    d->fd = open(d->ctl_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (d->fd < 0)
        return pool_errno_status(errno);
    int rc = ctl_map(d);
    if (rc == 0) {
        memcpy(d->wipe_dir, d->ctl->wipe_dir, sizeof d->ctl->wipe_dir);
        d->wipe_dir[sizeof d->ctl->wipe_dir - 1] = 0;
        rc = pool_map_all(d);
    }
    return rc;
}

/* Open the ctl file under its flock, making sure the path still names the locked inode. */
static int open_locked(shmpool_domain *d, bool *fresh)
{
    for (;;) {
        int fd = open(d->ctl_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, d->mode);
        if (fd < 0)
            return pool_errno_status(errno);
        d->fd = fd;
        int rc = pool_domain_lock_op(d, LOCK_EX);
        struct stat a, b;
        if (rc == 0 && fstat(fd, &a) != 0)
            rc = pool_errno_status(errno);
        if (rc) {
            close(fd);
            d->fd = -1;
            return rc;
        }
        if (stat(d->ctl_path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
            a.st_nlink > 0) {
            *fresh = a.st_size == 0;
            if (*fresh) { /* ours to shape: exact mode (no umask) and group */
                if (fchmod(fd, d->mode) != 0 ||
                    (d->gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)d->gid) != 0)) {
                    rc = pool_errno_status(errno);
                    unlink(d->ctl_path);
                    close(fd);
                    d->fd = -1;
                    return rc;
                }
            }
            return 0;
        }
        close(fd); /* the last one out unlinked it while we waited: start over */
    }
}

static int open_participant(shmpool_domain *d, const char *pname)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        bool fresh;
        int rc = open_locked(d, &fresh);
        if (rc)
            return rc;
        if (fresh) {
            rc = ctl_init(d);
            if (rc) {
                unlink(d->ctl_path);
                goto fail_unlock;
            }
        } else {
            rc = ctl_map(d);
            if (rc == SHMBUS_EBADSEG) {
                /* A creator that died before writing magic leaves zeros: nobody can be in
                 * it, so replace it. Anything else is a foreign or incompatible segment. */
                uint64_t magic = 0;
                if (pread(d->fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
                    magic == 0) {
                    unlink(d->ctl_path);
                    pool_domain_lock_op(d, LOCK_UN);
                    close(d->fd);
                    d->fd = -1;
                    continue;
                }
            }
            if (rc)
                goto fail_unlock;
            shmpool_domain_sweep(d);
            if (!any_live(d)) {
                /* Everyone before us is gone: start clean. */
                wipe_domain(d);
                unmap_all(d);
                pool_domain_lock_op(d, LOCK_UN);
                close(d->fd);
                d->fd = -1;
                continue;
            }
        }
        rc = join(d, pname);
        if (rc)
            goto fail_unmap;
        /* Everyone uses the creator's directory, so that whoever is last removes it. */
        memcpy(d->wipe_dir, d->ctl->wipe_dir, sizeof d->ctl->wipe_dir);
        d->wipe_dir[sizeof d->ctl->wipe_dir - 1] = 0;
        pool_domain_lock_op(d, LOCK_UN);
        return 0;
    fail_unmap:
        if (fresh)
            wipe_domain(d);
        unmap_all(d);
    fail_unlock:
        pool_domain_lock_op(d, LOCK_UN);
        close(d->fd);
        d->fd = -1;
        return rc;
    }
    return SHMBUS_EBUSY;
}

int shmpool_domain_open(const char *name, const shmpool_domain_opts *opts, shmpool_domain **out)
{
    shmpool_domain_opts defaults;
    if (!opts) {
        shmpool_domain_opts_init(&defaults);
        opts = &defaults;
    }
    if (!out || !valid_name(name, SHMPOOL_NAME_MAX))
        return SHMBUS_EINVAL;
    *out = NULL;
    pthread_once(&g_atfork_once, atfork_register);
    shmpool_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    const char *dir = opts->shm_dir ? opts->shm_dir : getenv("SHMBUS_SHM_DIR");
    if (!dir || !*dir)
        dir = "/dev/shm";
    snprintf(d->name, sizeof d->name, "%s", name);
    int rc = SHMBUS_EINVAL;
    if ((size_t)snprintf(d->dir, sizeof d->dir, "%s", dir) >= sizeof d->dir)
        goto fail_free;
    snprintf(d->ctl_path, sizeof d->ctl_path, "%s/shmbus.%s.ctl", d->dir, name);
    if (opts->wipe_dir &&
        (size_t)snprintf(d->wipe_dir, sizeof d->wipe_dir, "%s", opts->wipe_dir) >= sizeof d->wipe_dir)
        goto fail_free;
    d->fd = -1;
    d->slot = SHMPOOL_MAX_PARTICIPANTS; /* not joined yet */
    d->observer = opts->observer;
    d->mode = opts->mode ? opts->mode & 07777 : 0600;
    d->gid = opts->gid;
    d->pid = getpid();
    d->pidns = self_pidns();
    d->fork_epoch = atomic_load(&g_fork_epoch);
    d->sweep_interval_ms = opts->sweep_interval_ms ? opts->sweep_interval_ms : 100;
    pthread_mutex_init(&d->pools_lock, NULL);
    pthread_mutex_init(&d->serial_lock, NULL);
    pthread_mutex_init(&d->sweep_lock, NULL);

    char pname[SHMPOOL_NAME_MAX + 1];
    if (opts->name)
        snprintf(pname, sizeof pname, "%s", opts->name);
    else
        process_name(pname, sizeof pname);

    rc = d->observer ? open_observer(d) : open_participant(d, pname);
    if (rc)
        goto fail_close;
    if (!d->observer && !opts->no_reaper) {
        rc = reaper_start(d);
        if (rc) {
            shmpool_domain_close(d); /* leaves properly, then frees */
            return rc;
        }
    }
    open_list_add(d);
    *out = d;
    return 0;

fail_close:
    unmap_all(d);
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->pools_lock);
    pthread_mutex_destroy(&d->serial_lock);
    pthread_mutex_destroy(&d->sweep_lock);
fail_free:
    free(d);
    return rc;
}

static void domain_free(shmpool_domain *d)
{
    open_list_remove(d);
    unmap_all(d);
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->pools_lock);
    pthread_mutex_destroy(&d->serial_lock);
    pthread_mutex_destroy(&d->sweep_lock);
    free(d);
}

int shmpool_domain_close(shmpool_domain *d)
{
    if (!d)
        return SHMBUS_EINVAL;
    if (pool_forked(d) || d->observer) {
        /* A forked child only drops its copies; the parent still owns the participant. */
        domain_free(d);
        return 0;
    }
    if (shmpool_domain_holds(d))
        return SHMBUS_EBUSY;
    reaper_stop(d);
    pool_domain_lock_op(d, LOCK_EX);
    struct ctl_participant *pt = &d->ctl->participants[d->slot];
    atomic_store_explicit(&pt->state, SLOT_FREE, memory_order_release);
    atomic_fetch_add(&d->ctl->membership, 1);
    liveness_lock(d->fd, d->slot, F_UNLCK);
    d->bit = 0;
    shmpool_domain_sweep(d);
    if (!any_live(d))
        wipe_domain(d);
    pool_domain_lock_op(d, LOCK_UN);
    domain_free(d);
    return 0;
}

int shmpool_domain_serialize(shmpool_domain *d, int (*fn)(void *ctx), void *ctx)
{
    if (!d || !fn || d->observer)
        return SHMBUS_EINVAL;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    pthread_mutex_lock(&d->serial_lock);
    int rc = pool_domain_lock_op(d, LOCK_EX);
    if (rc == 0) {
        rc = fn(ctx);
        pool_domain_lock_op(d, LOCK_UN);
    }
    pthread_mutex_unlock(&d->serial_lock);
    return rc;
}

bool shmpool_participant_live(shmpool_domain *d, uint64_t uid)
{
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE ||
            atomic_load_explicit(&pt->uid, memory_order_relaxed) != uid)
            continue;
        return (!d->observer && s == d->slot && d->bit) || liveness_held(d->fd, s);
    }
    return false;
}

bool shmpool_domain_forked(const shmpool_domain *d) { return pool_forked(d); }

bool shmpool_domain_holds(const shmpool_domain *d)
{
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load(&d->pools[i]);
        if (p && atomic_load(&p->held) > 0)
            return true;
    }
    return false;
}

unsigned shmpool_domain_slot(const shmpool_domain *d) { return d->slot; }
uint64_t shmpool_domain_uid(const shmpool_domain *d) { return d->uid; }
const char *shmpool_domain_name(const shmpool_domain *d) { return d->name; }
const char *shmpool_domain_wipe_dir(const shmpool_domain *d) { return d->wipe_dir; }

const char *shmpool_domain_pname(const shmpool_domain *d)
{
    return d->observer || d->slot >= SHMPOOL_MAX_PARTICIPANTS ? ""
                                                               : d->ctl->participants[d->slot].name;
}

/* ---- leftovers ------------------------------------------------------------------------ */

static const char *shm_dir_of(const char *shm_dir)
{
    const char *dir = shm_dir ? shm_dir : getenv("SHMBUS_SHM_DIR");
    return dir && *dir ? dir : "/dev/shm";
}

int shmpool_domain_list(const char *shm_dir, char (*names)[SHMPOOL_NAME_MAX + 1], unsigned max)
{
    DIR *dir = opendir(shm_dir_of(shm_dir));
    if (!dir)
        return pool_errno_status(errno);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "shmbus.", 7) != 0 || len < 12 ||
            strcmp(e->d_name + len - 4, ".ctl") != 0 || len - 11 > SHMPOOL_NAME_MAX)
            continue;
        if (n < max && names) {
            memcpy(names[n], e->d_name + 7, len - 11);
            names[n][len - 11] = 0;
        }
        n++;
    }
    closedir(dir);
    return (int)n;
}

int shmpool_domain_remove(const char *name, const char *shm_dir)
{
    if (!valid_name(name, SHMPOOL_NAME_MAX))
        return SHMBUS_EINVAL;
    shmpool_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->dir, sizeof d->dir, "%s", shm_dir_of(shm_dir));
    snprintf(d->ctl_path, sizeof d->ctl_path, "%s/shmbus.%s.ctl", d->dir, name);
    d->slot = SHMPOOL_MAX_PARTICIPANTS;
    int rc = 0;
    d->fd = open(d->ctl_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (d->fd < 0) {
        /* No ctl file: remove whatever segments are left of the name. */
        rc = errno == ENOENT ? 0 : pool_errno_status(errno);
        if (rc == 0) {
            int n = pool_wipe_files(d);
            rc = n > 0 ? 0 : n == 0 ? SHMBUS_ENOENT : n;
        }
        free(d);
        return rc;
    }
    if ((rc = pool_domain_lock_op(d, LOCK_EX)) == 0) {
        struct ctl_hdr c;
        bool ours = pread(d->fd, &c, sizeof c, 0) == (ssize_t)sizeof c && c.magic == CTL_MAGIC &&
                    c.version == CTL_VERSION;
        if (ours) {
            memcpy(d->wipe_dir, c.wipe_dir, sizeof c.wipe_dir);
            d->wipe_dir[sizeof c.wipe_dir - 1] = 0;
            for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS && rc == 0; s++)
                if (c.participants[s].state == SLOT_LIVE && liveness_held(d->fd, s))
                    rc = SHMBUS_EBUSY;
        }
        if (rc == 0)
            wipe_domain(d);
        pool_domain_lock_op(d, LOCK_UN);
    }
    close(d->fd);
    free(d);
    return rc;
}

/* ---- introspection -------------------------------------------------------------------- */

int shmpool_domain_pools(shmpool_domain *d, shmbus_pool **out, unsigned max)
{
    if (!d)
        return SHMBUS_EINVAL;
    pool_map_all(d);
    unsigned n = 0;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load_explicit(&d->pools[i], memory_order_acquire);
        if (!p)
            continue;
        if (n < max && out)
            out[n] = p;
        n++;
    }
    return (int)n;
}

static int count_held(const shmpool_block_state *st, void *ctx)
{
    uint64_t *acc = ctx; /* acc[0] = bit, acc[1] = count */
    if (st->holders & acc[0])
        acc[1]++;
    return 0;
}

int shmpool_participants(shmpool_domain *d, shmpool_participant_info *out, unsigned max)
{
    if (!d)
        return SHMBUS_EINVAL;
    pool_map_all(d);
    unsigned n = 0;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        if (n < max && out) {
            shmpool_participant_info *i = &out[n];
            memset(i, 0, sizeof *i);
            i->slot = s;
            i->uid = atomic_load_explicit(&pt->uid, memory_order_relaxed);
            i->pid = (int)atomic_load_explicit(&pt->pid, memory_order_relaxed);
            i->start_time = atomic_load_explicit(&pt->start_time, memory_order_relaxed);
            i->alive = (!d->observer && s == d->slot && d->bit) || liveness_held(d->fd, s);
            memcpy(i->name, pt->name, sizeof i->name - 1);
            uint64_t acc[2] = {1ull << s, 0};
            for (unsigned k = 0; k < SHMPOOL_MAX_POOLS; k++) {
                struct shmbus_pool *p = atomic_load(&d->pools[k]);
                if (p)
                    shmpool_pool_walk(p, count_held, acc);
            }
            i->held_blocks = acc[1];
        }
        n++;
    }
    return (int)n;
}

int shmpool_domain_check(shmpool_domain *d, shmpool_check_report *rep)
{
    if (!d || !rep)
        return SHMBUS_EINVAL;
    memset(rep, 0, sizeof *rep);
    pool_map_all(d);
    uint64_t live = 0;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++)
        if (atomic_load(&d->ctl->participants[s].state) == SLOT_LIVE)
            live |= 1ull << s;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load(&d->pools[i]);
        if (!p)
            continue;
        for (unsigned c = 0; c < p->nclasses; c++) {
            struct pool_class_shm *cs = &p->hdr->classes[c];
            uint64_t used = 0;
            for (uint32_t k = 0; k < cs->count; k++) {
                uint64_t h = STATE_HOLDERS(atomic_load(&pool_bh(p, c, k)->state));
                rep->blocks++;
                if (h) {
                    used++;
                    if (h & ~live)
                        rep->orphan_holds++;
                }
            }
            rep->used += used;
            rep->imbalance +=
                (int64_t)(atomic_load(&cs->loans) - atomic_load(&cs->frees) - used);
        }
    }
    return rep->orphan_holds || rep->imbalance ? SHMBUS_EBADSEG : 0;
}
