/* Domain: the control segment, fork detection, open and close. Participants, liveness and
 * reclaim are in liveness.c; introspection and leftovers in introspect.c.
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
        if (d->token_fd >= 0) { /* the liveness lock's description, if not handed over */
            close(d->token_fd);
            d->token_fd = -1;
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
bool pool_valid_name(const char *s, size_t max)
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

int pool_domain_lock_op(shmpool_domain *d, int op)
{
    while (flock(d->fd, op) != 0) {
        if (errno != EINTR)
            return pool_errno_status(errno);
    }
    return 0;
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

/* A new open file description of the ctl file (the inode d->fd names), or -1 (errno set). */
int pool_ctl_reopen(shmpool_domain *d, int flags)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", d->fd);
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) /* no /proc: the path, which cannot change while we hold the flock */
        fd = open(d->ctl_path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat a, b;
    if (fstat(fd, &a) == 0 && fstat(d->fd, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        return fd;
    close(fd);
    errno = ESTALE;
    return -1;
}

/* Map the ctl file through a new open file description of the same inode, never through
 * d->fd. A mapping keeps its file description alive for as long as any process has it
 * mapped, including children forked without exec; if that were d->fd's description, a dead
 * participant's liveness lock would outlive it in such a child. */
static void *ctl_mmap(shmpool_domain *d, size_t size, int prot)
{
    int fd = pool_ctl_reopen(d, prot & PROT_WRITE ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return MAP_FAILED;
    void *m = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
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
    snprintf(c->recorded_dir, sizeof c->recorded_dir, "%s", d->wipe_dir);
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
    pool_guard(c, size, PROT_READ | PROT_WRITE, &d->broken);
    snprintf(d->recorded_dir, sizeof d->recorded_dir, "%s", d->wipe_dir);
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
        return st.st_size == 0 && d->observer
                   ? SHMBUS_EAGAIN
                   : pool_error(SHMBUS_EBADSEG, "%s: %llu bytes, expected %zu", d->ctl_path,
                                (unsigned long long)st.st_size, size);
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
        return young ? SHMBUS_EAGAIN
                     : pool_error(SHMBUS_EBADSEG, "%s: wrong magic, layout version or size",
                                  d->ctl_path);
    }
    d->ctl = c;
    d->ctl_size = size;
    pool_guard(c, size, prot, &d->broken);
    /* a private, terminated copy: only ever compared (shmpool_domain_recorded_dir) */
    memcpy(d->recorded_dir, c->recorded_dir, sizeof d->recorded_dir);
    d->recorded_dir[sizeof d->recorded_dir - 1] = 0;
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

/* Remove every file of the domain. Caller holds the open/close flock. */
void pool_wipe_domain(shmpool_domain *d)
{
    pool_wipe_files(d);
    pool_unlink_segment(d, d->ctl_path);
}

static void unmap_all(shmpool_domain *d)
{
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load(&d->pools[i]);
        if (p)
            pool_unmap(p);
        atomic_store(&d->pools[i], NULL);
    }
    if (d->ctl) {
        pool_unguard(d->ctl);
        munmap(d->ctl, d->ctl_size);
    }
    d->ctl = NULL;
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
    d->fd = open(d->ctl_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (d->fd < 0)
        return pool_error(pool_errno_status(errno), "%s", d->ctl_path);
    int rc = pool_check_ctl(d, d->fd);
    if (rc == 0)
        rc = ctl_map(d);
    if (rc == 0)
        rc = pool_map_all(d);
    return rc;
}

/* Open the ctl file under its flock, making sure the path still names the locked inode. */
static int open_locked(shmpool_domain *d, bool *fresh)
{
    for (;;) {
        int fd = open(d->ctl_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                      d->mode);
        if (fd < 0)
            return pool_error(pool_errno_status(errno), "%s", d->ctl_path);
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
            if (*fresh && a.st_uid != geteuid()) { /* a stranger's empty file: not ours */
                close(fd);
                d->fd = -1;
                return pool_error(SHMBUS_EACCES,
                                  "%s: an empty file owned by uid %u, not this process's: "
                                  "refused",
                                  d->ctl_path, (unsigned)a.st_uid);
            }
            if (*fresh) { /* ours to shape: exact mode (no umask) and group */
                if (fchmod(fd, d->mode) != 0 ||
                    (d->gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)d->gid) != 0)) {
                    rc = pool_errno_status(errno);
                    pool_unlink_segment(d, d->ctl_path);
                    close(fd);
                    d->fd = -1;
                    return rc;
                }
            }
            if ((rc = pool_check_ctl(d, fd)) != 0) {
                close(fd);
                d->fd = -1;
            }
            return rc;
        }
        close(fd); /* the last one out unlinked it while we waited: start over */
    }
}

static int open_participant(shmpool_domain *d, const char *pname)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        bool fresh = false;
        int rc = open_locked(d, &fresh);
        if (rc)
            return rc;
        if (fresh) {
            rc = ctl_init(d);
            if (rc) {
                pool_unlink_segment(d, d->ctl_path);
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
                    pool_unlink_segment(d, d->ctl_path);
                    pool_domain_lock_op(d, LOCK_UN);
                    close(d->fd);
                    d->fd = -1;
                    continue;
                }
            }
            if (rc)
                goto fail_unlock;
            shmpool_domain_sweep(d);
            if (!pool_any_live(d)) {
                /* Everyone before us is gone: start clean. */
                pool_wipe_domain(d);
                unmap_all(d);
                pool_domain_lock_op(d, LOCK_UN);
                close(d->fd);
                d->fd = -1;
                continue;
            }
        }
        rc = pool_join(d, pname);
        if (rc)
            goto fail_unmap;
        pool_domain_lock_op(d, LOCK_UN);
        return 0;
    fail_unmap:
        if (fresh)
            pool_wipe_domain(d);
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
    if (!out || !pool_valid_name(name, SHMPOOL_NAME_MAX))
        return SHMBUS_EINVAL;
    *out = NULL;
    pool_clear_error();
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
    d->token_fd = -1;
    d->owner_uid = geteuid(); /* until the ctl file says whose the domain is */
    d->owner_gid = getegid();
    d->slot = SHMPOOL_MAX_PARTICIPANTS; /* not joined yet */
    d->observer = opts->observer;
    d->mode = opts->mode ? opts->mode & 07777 : 0600;
    d->gid = opts->gid;
    d->pid = getpid();
    d->pidns = pool_self_pidns();
    d->fork_epoch = atomic_load(&g_fork_epoch);
    d->sweep_interval_ms = opts->sweep_interval_ms ? opts->sweep_interval_ms : 100;
    d->trace_fd = -1;
    pthread_mutex_init(&d->pools_lock, NULL);
    pthread_mutex_init(&d->serial_lock, NULL);
    pthread_mutex_init(&d->sweep_lock, NULL);

    char pname[SHMPOOL_NAME_MAX + 1];
    if (opts->name)
        snprintf(pname, sizeof pname, "%s", opts->name);
    else
        pool_process_name(pname, sizeof pname);

    if (!d->observer)
        pool_trace_open(d); /* before joining: the sweep on open is traced too */
    rc = d->observer ? open_observer(d) : open_participant(d, pname);
    if (rc)
        goto fail_close;
    if (!d->observer && !opts->no_reaper) {
        rc = pool_reaper_start(d);
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
    if (d->trace_fd >= 0)
        close(d->trace_fd);
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
    if (d->token_fd >= 0)
        close(d->token_fd);
    if (d->trace_fd >= 0)
        close(d->trace_fd);
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
    /* Under the flock, so that no joiner can take the slot between its lock going away
     * (with the reaper thread, which holds it) and its state saying FREE. */
    pool_domain_lock_op(d, LOCK_EX);
    struct ctl_participant *pt = &d->ctl->participants[d->slot];
    atomic_store_explicit(&pt->state, SLOT_FREE, memory_order_release);
    pool_membership_changed(d);
    pool_reaper_stop(d);
    pool_token_release(d);
    d->bit = 0;
    shmpool_domain_sweep(d);
    if (!pool_any_live(d))
        pool_wipe_domain(d);
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
const char *shmpool_domain_recorded_dir(const shmpool_domain *d) { return d->recorded_dir; }

const char *shmpool_domain_pname(const shmpool_domain *d)
{
    return d->observer || d->slot >= SHMPOOL_MAX_PARTICIPANTS ? ""
                                                               : d->ctl->participants[d->slot].name;
}
