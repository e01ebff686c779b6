/* The reclaim trace (diagnostics).
 *
 * With $SHMBUS_REAPER_TRACE naming a file, every reclaim of a dead slot by this
 * process appends one line to it (O_APPEND, one write): who swept, which slot and pid, and
 * CLOCK_MONOTONIC times of the wake-up, the slot lock, each pool walked and the end.
 * shmbus-chaos uses it to split kill-to-reclaim into its parts.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

void pool_trace_open(shmpool_domain *d)
{
    const char *trace = getenv("SHMBUS_REAPER_TRACE");
    d->trace_fd = trace && *trace ? open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
                                                   O_NOFOLLOW | O_NONBLOCK, 0600)
                                  : -1;
}

void pool_trace_reclaim(shmpool_domain *d, unsigned slot, uint32_t dead_pid, uint64_t woke_ns,
                        uint64_t locked_ns, const uint64_t *pool_ns, bool won)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "reclaim sweeper=%d slot=%u dead=%u woke=%llu locked=%llu pools=",
                     (int)getpid(), slot, dead_pid, (unsigned long long)woke_ns,
                     (unsigned long long)locked_ns);
    uint64_t done = locked_ns;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS && n > 0 && (size_t)n < sizeof line; i++) {
        if (!pool_ns[i])
            continue;
        n += snprintf(line + n, sizeof line - (size_t)n, "%llu,", (unsigned long long)pool_ns[i]);
        done = pool_ns[i];
    }
    if (n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " done=%llu won=%d\n",
                      (unsigned long long)done, won ? 1 : 0);
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(d->trace_fd, line, (size_t)n);
        (void)w; /* a diagnostic: a failed write changes nothing */
    }
}
