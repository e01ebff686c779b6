/* Domain configuration, the loader: read a file (or a pipe) whole and parse it
 * (config_parse.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r */
#endif
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmbus_errors.h"

/* Largest config file bus_config_load reads: far above any real domain (16 pools, 64 topics). */
#define CONFIG_FILE_MAX (1u << 20)

static int load_fail(int rc, char *err, size_t errlen, const char *path, const char *reason)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path, reason);
    return rc;
}

static int load_errno(int e, char *err, size_t errlen, const char *path)
{
    char buf[128];
    const char *msg = strerror_r(e, buf, sizeof buf);
    int rc = e == ENOENT || e == ENOTDIR ? SHMBUS_ENOENT
             : e == EACCES || e == EPERM ? SHMBUS_EACCES
             : e == ENOMEM               ? SHMBUS_ENOMEM
                                         : SHMBUS_ESYS;
    load_fail(rc, err, errlen, path, msg);
    errno = e;
    return rc;
}

int bus_config_load(const char *path, bus_config *cfg, char *err, size_t errlen)
{
    if (!path || !cfg)
        return load_fail(SHMBUS_EINVAL, err, errlen, path ? path : "(null)", "invalid argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return load_errno(errno, err, errlen, path);
    /* Read until end of file, not st_size: pipes and /dev/stdin work too. */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        rc = load_errno(ENOMEM, err, errlen, path);
        goto out_close;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CONFIG_FILE_MAX) {
                rc = load_fail(SHMBUS_ECONFIG, err, errlen, path, "file is larger than 1 MiB");
                goto out_free;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = load_errno(ENOMEM, err, errlen, path);
                goto out_free;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = load_errno(errno, err, errlen, path);
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = bus_config_parse(buf, len, path, cfg, err, errlen);
out_free:
    free(buf);
out_close: {
    int e = errno;
    close(fd);
    errno = e;
}
    return rc;
}
