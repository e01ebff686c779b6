/* What a process accepts from the shm directory.
 *
 * Nothing a process opens, maps or removes is named by shared memory: every path is built
 * here from the domain's name and the process's own options. Every segment file is checked
 * after open (fstat on the open descriptor, opened with O_NOFOLLOW) before it is mapped:
 * a regular file, owned by the domain's owner (the ctl file's owner), by this process's
 * user, or by a member of the domain's group; writable by no one outside that group.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static bool member_of(gid_t g)
{
    if (getegid() == g)
        return true;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == g)
            return true;
    return false;
}

int pool_check_ctl(shmpool_domain *d, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return pool_error(pool_errno_status(errno), "%s", d->ctl_path);
    if (!S_ISREG(st.st_mode))
        return pool_error(SHMBUS_EBADSEG, "%s: not a regular file", d->ctl_path);
    if (st.st_mode & S_IWOTH)
        return pool_error(SHMBUS_EACCES, "%s: writable by every user (mode %04o): refused",
                          d->ctl_path, (unsigned)(st.st_mode & 07777));
    if ((st.st_mode & S_IWGRP) && d->gid >= 0 && st.st_gid != (gid_t)d->gid)
        return pool_error(SHMBUS_EACCES,
                          "%s: writable by group %u, not the configured group %ld: refused",
                          d->ctl_path, (unsigned)st.st_gid, d->gid);
    /* Someone else's file is the domain only if it is shared with a group we are in: root
     * could open anything, and must not adopt a file a stranger planted (nor, empty, give
     * it a domain a stranger can still write through its own descriptor). */
    if (st.st_uid != geteuid() &&
        (st.st_size == 0 || !member_of(st.st_gid) || (!d->observer && !(st.st_mode & S_IWGRP))))
        return pool_error(SHMBUS_EACCES,
                          "%s: owned by uid %u and not shared with a group of this process: "
                          "refused",
                          d->ctl_path, (unsigned)st.st_uid);
    d->owner_uid = st.st_uid;
    d->owner_gid = st.st_gid;
    d->group_shared = (st.st_mode & S_IWGRP) != 0;
    return 0;
}

int pool_check_segment(const shmpool_domain *d, int fd, const char *path, struct stat *st)
{
    if (fstat(fd, st) != 0)
        return pool_error(pool_errno_status(errno), "%s", path);
    if (!S_ISREG(st->st_mode))
        return pool_error(SHMBUS_EBADSEG, "%s: not a regular file", path);
    unsigned mode = (unsigned)(st->st_mode & 07777);
    if (st->st_mode & S_IWOTH)
        return pool_error(SHMBUS_EACCES, "%s: writable by every user (mode %04o): refused",
                          path, mode);
    bool in_group = st->st_gid == d->owner_gid;
    if ((st->st_mode & S_IWGRP) && !in_group)
        return pool_error(SHMBUS_EACCES,
                          "%s: writable by group %u, outside the domain's group %u: refused",
                          path, (unsigned)st->st_gid, (unsigned)d->owner_gid);
    /* Only a member of a group can give a file to it: a file of the domain's group was made
     * by one of the domain's users. */
    if (st->st_uid != d->owner_uid && st->st_uid != geteuid() && !(d->group_shared && in_group))
        return pool_error(SHMBUS_EACCES,
                          "%s: owned by uid %u, not the domain's owner (uid %u) or its group: "
                          "refused",
                          path, (unsigned)st->st_uid, (unsigned)d->owner_uid);
    return 0;
}
