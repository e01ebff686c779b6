/* Domain: open and close (joining, leaving, the last one out wiping the files), and the
 * domain's accessors. The control segment itself is ctl.c's; participants, liveness and
 * reclaim are liveness.c's; introspection and leftovers introspect.c's.
 *
 * Open, join, leave and wipe are serialised by flock() on the same file (see docs/ownership.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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
        rc = pool_ctl_map(d);
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
            rc = pool_ctl_init(d);
            if (rc) {
                pool_unlink_segment(d, d->ctl_path);
                goto fail_unlock;
            }
        } else {
            rc = pool_ctl_map(d);
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
    pool_fork_register();
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
    d->fork_epoch = pool_fork_epoch();
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
    pool_open_list_add(d);
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
    pool_open_list_remove(d);
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
const char *shmpool_domain_recorded_dir(const shmpool_domain *d) { return d->recorded_dir; }

const char *shmpool_domain_pname(const shmpool_domain *d)
{
    return d->observer || d->slot >= SHMPOOL_MAX_PARTICIPANTS ? ""
                                                               : d->ctl->participants[d->slot].name;
}
