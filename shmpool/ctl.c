/* The control segment (shmbus.D.ctl): its file's flock, new descriptions of it, and making
 * or mapping its header (magic written last; magic, version and size checked). Open and
 * close, which use these under the flock, are in domain.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int pool_domain_lock_op(shmpool_domain *d, int op)
{
    while (flock(d->fd, op) != 0) {
        if (errno != EINTR)
            return pool_errno_status(errno);
    }
    return 0;
}

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
int pool_ctl_init(shmpool_domain *d)
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
int pool_ctl_map(shmpool_domain *d)
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
