/* The reaper: reclaims dead peers as soon as they die, and sleeps while nobody does.
 *
 * Two threads per participant, both asleep until something happens:
 *   reaper   poll() on one pidfd per peer in its PID namespace (readable once that process
 *            has exited, after the kernel dropped its liveness lock) and on an eventfd. A
 *            pidfd that fires means a sweep now. The periodic sweep runs only while some live
 *            peer cannot be watched: one in another PID namespace, whose pid means nothing
 *            here.
 *   watcher  FUTEX_WAIT on the ctl's membership word, which every join and leave bumps and
 *            wakes; it tells the reaper (eventfd) to watch the new set. It re-checks every
 *            second even unwoken (a joiner that died between bumping and waking).
 *
 * Diagnostics: with $SHMBUS_REAPER_TRACE naming a file, every reclaim of a dead slot by this
 * process appends one line to it (O_APPEND, one write): who swept, which slot and pid, and
 * CLOCK_MONOTONIC times of the wake-up, the slot lock, each pool walked and the end.
 * shmbus-chaos --trace uses it to split kill-to-reclaim into its parts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- trace ------------------------------------------------------------------------------ */

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

/* ---- watch list ------------------------------------------------------------------------- */

struct watch {
    int fd;     /* -1 once it fired (a pidfd stays readable) */
    unsigned slot;
    uint64_t uid;
};

struct watch_set {
    struct watch w[SHMPOOL_MAX_PARTICIPANTS];
    int n;
    bool blind;   /* a live peer that no pidfd can watch: sweep periodically */
    bool suspect; /* a live peer whose process is gone already: sweep now */
};

static void watch_clear(struct watch_set *ws)
{
    for (int i = 0; i < ws->n; i++)
        if (ws->w[i].fd >= 0)
            close(ws->w[i].fd);
    ws->n = 0;
}

static void watch_rebuild(shmpool_domain *d, struct watch_set *ws)
{
    watch_clear(ws);
    ws->blind = ws->suspect = false;
    for (unsigned s = 0; s < SHMPOOL_MAX_PARTICIPANTS; s++) {
        struct ctl_participant *pt = &d->ctl->participants[s];
        if (s == d->slot || atomic_load_explicit(&pt->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        if (atomic_load_explicit(&pt->pidns, memory_order_relaxed) != d->pidns) {
            ws->blind = true; /* another PID namespace: its pid means nothing here */
            continue;
        }
        pid_t pid = (pid_t)atomic_load_explicit(&pt->pid, memory_order_relaxed);
        int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
        if (fd < 0) {
            ws->suspect = true; /* gone already (or a pid a bad writer made up) */
            continue;
        }
        /* The pid may have been reused: watch it only if the start time matches. */
        if (pool_proc_start_time(pid) !=
            atomic_load_explicit(&pt->start_time, memory_order_relaxed)) {
            close(fd);
            ws->suspect = true;
            continue;
        }
        ws->w[ws->n++] = (struct watch){
            .fd = fd, .slot = s, .uid = atomic_load_explicit(&pt->uid, memory_order_relaxed)};
    }
}

/* Is the watched participant still in its slot (not yet reclaimed by anyone)? */
static bool still_there(shmpool_domain *d, const struct watch *w)
{
    struct ctl_participant *pt = &d->ctl->participants[w->slot];
    return atomic_load_explicit(&pt->state, memory_order_acquire) == SLOT_LIVE &&
           atomic_load_explicit(&pt->uid, memory_order_relaxed) == w->uid;
}

/* ---- threads ---------------------------------------------------------------------------- */

/* Retry period while a peer whose pidfd fired is still in its slot (its lock not yet free). */
#define RETRY_MS 5

static void *reaper_main(void *arg)
{
    shmpool_domain *d = arg;
    struct watch_set ws = {.n = 0};
    struct pollfd pfd[SHMPOOL_MAX_PARTICIPANTS + 1];
    int idx[SHMPOOL_MAX_PARTICIPANTS + 1];
    uint32_t seen = ~0u;
    bool pending = false;
    while (!atomic_load(&d->reaper_stop)) {
        uint32_t m = atomic_load(&d->ctl->membership);
        if (m != seen) {
            seen = m;
            watch_rebuild(d, &ws);
            if (ws.suspect)
                pool_sweep(d, pool_now_ns());
        }
        int np = 0;
        pfd[np++] = (struct pollfd){.fd = d->reaper_evfd, .events = POLLIN};
        for (int i = 0; i < ws.n; i++) {
            if (ws.w[i].fd < 0)
                continue;
            idx[np] = i;
            pfd[np++] = (struct pollfd){.fd = ws.w[i].fd, .events = POLLIN};
        }
        int timeout = pending                  ? RETRY_MS
                      : ws.blind || ws.suspect ? (int)d->sweep_interval_ms
                                               : -1;
        int r = poll(pfd, (nfds_t)np, timeout);
        uint64_t woke = pool_now_ns();
        if (r < 0)
            continue; /* EINTR */
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(d->reaper_evfd, &v, sizeof v); /* stop, or membership moved */
            (void)rd;
            continue;
        }
        bool fired = false;
        for (int k = 1; k < np; k++)
            fired |= (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        if (r == 0 || fired)
            pool_sweep(d, woke);
        /* Stop polling what fired (it stays readable); while one of them is still in its
         * slot (its lock not free yet), sweep again on a short timer. */
        for (int k = 1; k < np; k++) {
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                close(ws.w[idx[k]].fd);
                ws.w[idx[k]].fd = -1;
            }
        }
        pending = false;
        for (int i = 0; i < ws.n; i++)
            pending |= ws.w[i].fd < 0 && still_there(d, &ws.w[i]);
    }
    watch_clear(&ws);
    return NULL;
}

static void *watcher_main(void *arg)
{
    shmpool_domain *d = arg;
    uint32_t seen = atomic_load(&d->ctl->membership);
    while (!atomic_load(&d->reaper_stop)) {
        struct timespec second = {1, 0}; /* deadline: a joiner may die before it wakes us */
        syscall(SYS_futex, &d->ctl->membership, FUTEX_WAIT, seen, &second, NULL, 0);
        uint32_t m = atomic_load(&d->ctl->membership);
        if (m != seen) {
            seen = m;
            uint64_t one = 1;
            ssize_t w = write(d->reaper_evfd, &one, sizeof one);
            (void)w; /* the counter cannot overflow in practice; the reaper reads it */
        }
    }
    return NULL;
}

int pool_reaper_start(shmpool_domain *d)
{
    d->reaper_evfd = eventfd(0, EFD_CLOEXEC);
    if (d->reaper_evfd < 0)
        return pool_errno_status(errno);
    const char *trace = getenv("SHMBUS_REAPER_TRACE");
    if (trace && *trace)
        d->trace_fd = open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    atomic_store(&d->reaper_stop, false);
    if (pthread_create(&d->reaper, NULL, reaper_main, d) != 0) {
        close(d->reaper_evfd);
        return SHMBUS_ESYS;
    }
    d->reaper_on = true;
    if (pthread_create(&d->watcher, NULL, watcher_main, d) != 0) {
        pool_reaper_stop(d);
        return SHMBUS_ESYS;
    }
    d->watcher_on = true;
    return 0;
}

void pool_reaper_stop(shmpool_domain *d)
{
    if (!d->reaper_on)
        return;
    atomic_store(&d->reaper_stop, true);
    uint64_t one = 1;
    ssize_t w = write(d->reaper_evfd, &one, sizeof one);
    (void)w;
    pthread_join(d->reaper, NULL);
    if (d->watcher_on) {
        /* Wakes every watcher on the word; the others see no change and sleep again. */
        syscall(SYS_futex, &d->ctl->membership, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        pthread_join(d->watcher, NULL);
        d->watcher_on = false;
    }
    close(d->reaper_evfd);
    d->reaper_on = false;
    if (d->trace_fd >= 0)
        close(d->trace_fd);
    d->trace_fd = -1;
}
