/* The domain's files: shaping a new segment file (mode, group, size, reservation) and
 * removing files that are the domain's own, up to wiping the whole domain. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Give a freshly created segment file its exact mode (no umask), its group and its size, and
 * reserve every page so that a full tmpfs fails here and not with SIGBUS on first touch. */
int pool_shape_file(const shmpool_domain *d, int fd, uint64_t size)
{
    if (fchmod(fd, d->mode) != 0 || (d->gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)d->gid) != 0))
        return pool_errno_status(errno);
    if (ftruncate(fd, (off_t)size) != 0)
        return pool_errno_status(errno);
    int err = posix_fallocate(fd, 0, (off_t)size);
    if (err)
        errno = err; /* posix_fallocate returns its error; callers report errno */
    return err ? pool_errno_status(err) : 0;
}

/* May this process remove the file it found at `st`? A regular file of the domain (trust.c's
 * rule), or one of this user's own. Anything else under a domain's name is left alone. */
static bool removable(const shmpool_domain *d, const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return false;
    return st->st_uid == geteuid() || st->st_uid == d->owner_uid ||
           (d->group_shared && st->st_gid == d->owner_gid);
}

/* Unlink dir/name if it is the domain's own regular file. Returns 1 if it removed it. */
static int unlink_checked(const shmpool_domain *d, int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !removable(d, &st))
        return 0;
    return unlinkat(dirfd, name, 0) == 0;
}

int pool_unlink_segment(const shmpool_domain *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    int n = unlink_checked(d, dfd, slash + 1);
    close(dfd);
    return n;
}

/* Empty and remove this process's own directory of domain files (its wipe_dir option, never
 * a path read from shared memory): only if it is a real directory (not a symlink) owned by
 * this user or the domain's owner, and in it only the sockets owned by them. */
static void wipe_dir(const shmpool_domain *d)
{
    int fd = open(d->wipe_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    DIR *dir = NULL;
    if (fstat(fd, &st) != 0 || (st.st_uid != geteuid() && st.st_uid != d->owner_uid) ||
        (dir = fdopendir(fd)) == NULL) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        struct stat es;
        if (fstatat(fd, e->d_name, &es, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(es.st_mode) &&
            (es.st_uid == geteuid() || es.st_uid == d->owner_uid))
            unlinkat(fd, e->d_name, 0);
    }
    closedir(dir);
    rmdir(d->wipe_dir); /* only if nothing else is left in it */
}

/* Remove every file of the domain but the ctl file (its caller removes that last).
 * Returns how many segment files it removed, or an error. */
int pool_wipe_files(const shmpool_domain *d)
{
    char prefix[SHMPOOL_NAME_MAX + 16], ctl[SHMPOOL_NAME_MAX + 16];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", d->name);
    snprintf(ctl, sizeof ctl, "shmbus.%s.ctl", d->name);
    if (d->wipe_dir[0])
        wipe_dir(d);
    int fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        int rc = pool_errno_status(errno);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strcmp(e->d_name, ctl) != 0)
            n += unlink_checked(d, fd, e->d_name);
    closedir(dir);
    return n;
}

/* Remove every file of the domain. Caller holds the open/close flock. */
void pool_wipe_domain(shmpool_domain *d)
{
    pool_wipe_files(d);
    pool_unlink_segment(d, d->ctl_path);
}
