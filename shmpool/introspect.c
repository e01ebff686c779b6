/* Introspection (reads only) and the removal of what dead domains left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

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

int shmpool_domain_remove(const char *name, const char *shm_dir, const char *wipe_dir)
{
    if (!pool_valid_name(name, SHMPOOL_NAME_MAX))
        return SHMBUS_EINVAL;
    shmpool_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    pool_clear_error();
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->dir, sizeof d->dir, "%s", shm_dir_of(shm_dir));
    snprintf(d->ctl_path, sizeof d->ctl_path, "%s/shmbus.%s.ctl", d->dir, name);
    if (wipe_dir && (size_t)snprintf(d->wipe_dir, sizeof d->wipe_dir, "%s", wipe_dir) >=
                        sizeof d->wipe_dir) {
        free(d);
        return SHMBUS_EINVAL;
    }
    d->slot = SHMPOOL_MAX_PARTICIPANTS;
    d->trace_fd = -1;
    d->owner_uid = geteuid();
    d->owner_gid = getegid();
    d->gid = -1;
    int rc = 0;
    d->fd = open(d->ctl_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (d->fd < 0) {
        /* No ctl file: remove whatever segments are left of the name. */
        rc = errno == ENOENT ? 0 : pool_errno_status(errno);
        if (rc == 0) {
            bool had_dir = d->wipe_dir[0] && access(d->wipe_dir, F_OK) == 0;
            int n = pool_wipe_files(d);
            rc = n > 0 || had_dir ? 0 : n == 0 ? SHMBUS_ENOENT : n;
        }
        free(d);
        return rc;
    }
    if ((rc = pool_check_ctl(d, d->fd)) == 0 && (rc = pool_domain_lock_op(d, LOCK_EX)) == 0) {
        struct ctl_hdr c;
        bool ours = pread(d->fd, &c, sizeof c, 0) == (ssize_t)sizeof c && c.magic == CTL_MAGIC &&
                    c.version == CTL_VERSION;
        for (unsigned s = 0; ours && s < SHMPOOL_MAX_PARTICIPANTS && rc == 0; s++)
            if (c.participants[s].state == SLOT_LIVE && pool_liveness_held(d->fd, s))
                rc = pool_error(SHMBUS_EBUSY, "domain %s: participant %u (pid %u) is alive",
                                name, s, (unsigned)c.participants[s].pid);
        if (rc == 0)
            pool_wipe_domain(d);
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
            i->alive = (!d->observer && s == d->slot && d->bit) || pool_liveness_held(d->fd, s);
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
            for (uint32_t k = 0; k < p->geom[c].count; k++) {
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
