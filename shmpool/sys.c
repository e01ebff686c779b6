/* System helpers with no state of their own: errno to status codes, the monotonic clock,
 * the name rule, and what /proc says about a process. Everything else in shmpool/ may call
 * these; they call nothing of shmpool/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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
