/* The runtime directory of a domain, <runtime_dir>/shmbus.<domain>, and the ipc endpoints in
 * it. Every path here is derived from this process's own configuration and the domain's name;
 * nothing read from shared memory names a file (a publisher's id only picks p<id>.ipc inside
 * the directory). Before using the directory, and before removing anything in it, we lstat
 * it: a directory someone else owns or may write is refused, not used. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* "p" + 20 digits + ".ipc" after the directory and a '/' */
#define ENDPOINT_NAME_MAX 26

int bus_rundir_resolve(bus_domain *d, const char *runtime_dir)
{
    const char *base = runtime_dir && *runtime_dir ? runtime_dir
                       : d->cfg.runtime_dir[0]     ? d->cfg.runtime_dir
                                                   : getenv("SHMBUS_RUNTIME_DIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(d->rundir, sizeof d->rundir, "%s/shmbus.%s", base, d->name);
    /* endpoints are "<rundir>/p<20 digits>.ipc" and must fit a unix socket path */
    if (n < 0 || (size_t)n + ENDPOINT_NAME_MAX >= REG_ENDPOINT_MAX)
        return bus_errno(SHMBUS_EINVAL,
                         "runtime directory \"%s/shmbus.%s\" is too long for ipc socket paths "
                         "(at most %d characters)",
                         base, d->name, REG_ENDPOINT_MAX - ENDPOINT_NAME_MAX - 1);
    return 0;
}

int bus_domain_owner(bus_domain *d, const char *shm_dir)
{
    char ctl[PATH_MAX];
    struct stat st;
    snprintf(ctl, sizeof ctl, "%s/shmbus.%s.ctl", shm_dir, d->name);
    if (lstat(ctl, &st) == 0) {
        d->owner_uid = st.st_uid;
        d->owner_gid = st.st_gid;
        d->group_shared = (st.st_mode & S_IWGRP) != 0;
        return 0;
    }
    if (errno != ENOENT)
        return bus_errno(shmpool_errno_status(errno), "control segment %s", ctl);
    /* not made yet: this process will make it, with its configuration's mode and group */
    d->owner_uid = geteuid();
    d->owner_gid = d->cfg.gid >= 0 ? (gid_t)d->cfg.gid : getegid();
    d->group_shared = (d->cfg.mode & S_IWGRP) != 0;
    return 0;
}

/* May this process trust what st describes (a file in the domain's runtime directory, or the
 * directory itself)? Its owner must be us or the domain's owner, or, in a domain shared with
 * a group, a member who gave it the domain's group; nobody outside may write it. */
static bool trusted(const bus_domain *d, const struct stat *st, char *why, size_t len)
{
    bool member_file = d->group_shared && st->st_gid == d->owner_gid && !S_ISDIR(st->st_mode);
    if (st->st_uid != geteuid() && st->st_uid != d->owner_uid && !member_file) {
        snprintf(why, len, "it belongs to uid %u, not to this process (uid %u) nor to the "
                 "domain's owner (uid %u)", (unsigned)st->st_uid, (unsigned)geteuid(),
                 (unsigned)d->owner_uid);
        return false;
    }
    if (st->st_mode & S_IWOTH) {
        snprintf(why, len, "anyone may write it (mode %04o)", (unsigned)(st->st_mode & 07777));
        return false;
    }
    if ((st->st_mode & S_IWGRP) && !(d->group_shared && st->st_gid == d->owner_gid)) {
        snprintf(why, len, "group %u may write it (mode %04o), and the domain is not shared "
                 "with that group", (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777));
        return false;
    }
    return true;
}

/* Check the existing runtime directory (lstat: a symbolic link is refused too). */
static int rundir_check(bus_domain *d)
{
    struct stat st;
    char why[200];
    if (lstat(d->rundir, &st) != 0)
        return bus_errno(shmpool_errno_status(errno), "runtime directory %s", d->rundir);
    if (!S_ISDIR(st.st_mode) || !trusted(d, &st, why, sizeof why)) {
        bus_set_error("runtime directory %s is refused: %s; remove it or choose another "
                      "runtime_dir", d->rundir,
                      S_ISLNK(st.st_mode)   ? "it is a symbolic link"
                      : !S_ISDIR(st.st_mode) ? "it is not a directory"
                                             : why);
        return SHMBUS_EACCES;
    }
    if (access(d->rundir, W_OK | X_OK) != 0)
        return bus_errno(SHMBUS_EACCES, "runtime directory %s", d->rundir);
    return 0;
}

int bus_rundir_precheck(bus_domain *d)
{
    struct stat st;
    if (lstat(d->rundir, &st) != 0 && errno == ENOENT)
        return 0;
    return rundir_check(d);
}

/* Make the runtime directory, or check the one there. Runs under the domain lock. */
static int rundir_make_locked(void *arg)
{
    bus_domain *d = arg;
    /* x wherever r; with a group, set-group-ID so that every socket file made in it gets the
     * group too (nng creates them with the creator's group otherwise) */
    unsigned dmode = d->cfg.mode | ((d->cfg.mode & 0444) >> 2) | (d->cfg.gid >= 0 ? S_ISGID : 0);
    if (mkdir(d->rundir, dmode) == 0) {
        if (chmod(d->rundir, dmode) != 0 ||
            (d->cfg.gid >= 0 && chown(d->rundir, (uid_t)-1, (gid_t)d->cfg.gid) != 0))
            return bus_errno(SHMBUS_ESYS, "runtime directory %s", d->rundir);
        return 0;
    }
    if (errno == ENOSPC) /* the directory's file system is full, not the shm directory */
        return bus_errno(SHMBUS_ESYS, "cannot make the runtime directory %s", d->rundir);
    if (errno != EEXIST)
        return bus_errno(shmpool_errno_status(errno), "cannot make the runtime directory %s",
                         d->rundir);
    return rundir_check(d);
}

int bus_rundir_make(bus_domain *d)
{
    /* Every process of a domain must put its endpoints in the same place, where the domain's
     * creator recorded it. The record is only compared, never used as a path. */
    const char *recorded = shmpool_domain_recorded_dir(d->pd);
    if (recorded[0] && strcmp(recorded, d->rundir) != 0)
        return bus_errno(SHMBUS_EINCOMPAT, "domain \"%s\" runs with its runtime directory in "
                         "%s; this process would use %s: give it the same runtime_dir (or "
                         "$SHMBUS_RUNTIME_DIR)", d->name, recorded, d->rundir);
    return shmpool_domain_serialize(d->pd, rundir_make_locked, d);
}

bool bus_rundir_restore(bus_domain *d)
{
    struct stat st;
    if (lstat(d->rundir, &st) == 0 || errno != ENOENT)
        return false;
    return shmpool_domain_serialize(d->pd, rundir_make_locked, d) == 0;
}

void bus_endpoint_path(const bus_domain *d, uint64_t id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/p%llu.ipc", d->rundir, (unsigned long long)id);
    if (n < 0 || (size_t)n >= len) /* not after bus_rundir_resolve: it checked the length */
        buf[0] = '\0';
}

int bus_pub_endpoint(const bus_domain *d, unsigned idx, uint64_t pub_id, char *buf, size_t len)
{
    if (idx >= REG_MAX_PUBS || (pub_id & 0xff) != idx || pub_id >> 8 == 0)
        return bus_errno(SHMBUS_EBADSEG, "registry of domain \"%s\": publisher entry %u has id "
                         "%llu, which is not one of its ids", d->name, idx,
                         (unsigned long long)pub_id);
    bus_endpoint_path(d, pub_id, buf, len);
    return 0;
}

void bus_endpoints_restore(bus_domain *d)
{
    pthread_mutex_lock(&d->lock);
    for (bus_pub *p = d->pubs; p; p = p->next) {
        char path[REG_ENDPOINT_MAX], url[REG_ENDPOINT_MAX + 8];
        struct stat st;
        bus_endpoint_path(d, p->id, path, sizeof path);
        if (!path[0] || lstat(path, &st) == 0 || errno != ENOENT)
            continue;
        snprintf(url, sizeof url, "ipc://%s", path);
        nng_listener l;
        if (nng_listener_create(&l, p->sock, url) != 0)
            continue;
        if (nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)d->cfg.mode) != 0 ||
            nng_listener_start(l, 0) != 0) {
            nng_listener_close(l);
            continue;
        }
        if (d->cfg.gid >= 0 && chown(path, (uid_t)-1, (gid_t)d->cfg.gid) != 0)
            nng_listener_close(l); /* the group could not reach it: do not pretend */
    }
    pthread_mutex_unlock(&d->lock);
}

void bus_endpoint_remove(const bus_domain *d, unsigned idx, uint64_t pub_id)
{
    char path[REG_ENDPOINT_MAX], why[200];
    struct stat st;
    if (bus_pub_endpoint(d, idx, pub_id, path, sizeof path) != 0)
        return;
    /* relative to the directory we opened and checked, so that nothing put in the
     * directory's place since then redirects the unlink */
    int dfd = open(d->rundir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return;
    const char *name = strrchr(path, '/') + 1;
    if (fstat(dfd, &st) == 0 && trusted(d, &st, why, sizeof why) &&
        fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
        unlinkat(dfd, name, 0);
    close(dfd);
}
