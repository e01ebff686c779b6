/* The reaper: reclaims dead peers as soon as they die, and sleeps while nobody does.
 *
 * Two threads per participant, both asleep until something happens:
 *   reaper   poll() on one pidfd per peer in its PID namespace and on an eventfd. A pidfd
 *            that fires means a sweep now. The periodic sweep runs only while some live peer
 *            cannot be watched: one in another PID namespace, whose pid means nothing here.
 *   watcher  FUTEX_WAIT on the ctl's membership word, which every join and leave bumps and
 *            wakes; it tells the reaper (eventfd) to watch the new set. It re-checks every
 *            second even unwoken (a joiner that died between bumping and waking).
 *
 * The watcher also carries the participant's liveness token. It unshares its file table,
 * keeps in it only the ctl description that holds the liveness lock (and the eventfd), and
 * the process's own table lets go of that description: the lock then goes when this one
 * thread dies. A SIGKILLed process's threads die one by one as each gets a CPU, and on a
 * busy host the last of a dozen can take hundreds of milliseconds; the watcher is one of the
 * first (it sleeps in a futex the kill wakes). Peers watch it with a thread pidfd
 * (PIDFD_THREAD, Linux 6.9), readable when it has exited, after its table let go of the lock;
 * on older kernels, or if the thread cannot unshare, the lock stays in the process's table
 * and peers watch the process's pidfd. No thread of a process that got SIGKILL runs user
 * code again, so reclaiming once its token thread is gone is as safe as once all are.
 *
 * Both threads ask for real-time priority (maybe_realtime below): asleep they cost nothing,
 * and awake they must not wait behind a busy host's runnable threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for one thread */
#endif

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

/* Is tid a thread of process pid (so that its pidfd watches that process's token)? */
static bool thread_of(pid_t tid, pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d", (int)pid, (int)tid);
    return pid > 0 && access(path, F_OK) == 0;
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
        pid_t tid = (pid_t)atomic_load_explicit(&pt->token_tid, memory_order_relaxed);
        int fd = tid > 0 && thread_of(tid, pid) ? (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD)
                                                 : -1;
        if (fd < 0) /* no token thread (or an older kernel): the whole process */
            fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
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

/* The reaper and the watcher ask for SCHED_FIFO priority 1 ($SHMBUS_REAPER_RTPRIO=N: N,
 * 0: not at all). Both sleep until a peer dies or joins and then work for microseconds, so
 * they cannot starve anyone, but at normal priority on a busy host a killed peer's watcher
 * may wait hundreds of milliseconds for a CPU to die on, and the survivors' reapers as long
 * to wake (docs/reliability.md). Without CAP_SYS_NICE (or RLIMIT_RTPRIO) the request is
 * refused and they run as any thread. */
static void maybe_realtime(void)
{
    const char *v = getenv("SHMBUS_REAPER_RTPRIO");
    int prio = v && *v ? atoi(v) : 1;
    if (prio >= 1 && prio <= 99) {
        struct sched_param sp = {.sched_priority = prio};
        pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    }
}

static void *reaper_main(void *arg)
{
    shmpool_domain *d = arg;
    maybe_realtime();
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

/* Close every descriptor of this thread's (private) table but the `n` in keep. */
static void close_all_but(int *keep, unsigned n)
{
    for (unsigned i = 1; i < n; i++) /* n <= 4: insertion sort */
        for (unsigned j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned from = 0;
    for (unsigned i = 0; i < n; i++) {
        if (keep[i] < 0)
            continue;
        if ((unsigned)keep[i] > from)
            syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0u, 0);
}

/* In the watcher, before anything else: give this thread a file table of its own holding the
 * liveness lock's description (see the top of this file). d->token_tid says whether it did. */
static void take_token(shmpool_domain *d)
{
    d->token_tid = 0;
    if (d->token_fd >= 0 && unshare(CLONE_FILES) == 0) {
        int keep[] = {d->token_fd, d->reaper_evfd};
        close_all_but(keep, 2); /* also the copies of every other descriptor it got */
        d->token_tid = gettid();
    }
    sem_post(&d->handover);
}

static void *watcher_main(void *arg)
{
    shmpool_domain *d = arg;
    maybe_realtime();
    take_token(d);
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
    atomic_store(&d->reaper_stop, false);
    if (pthread_create(&d->reaper, NULL, reaper_main, d) != 0) {
        close(d->reaper_evfd);
        return SHMBUS_ESYS;
    }
    d->reaper_on = true;
    sem_init(&d->handover, 0, 0);
    if (pthread_create(&d->watcher, NULL, watcher_main, d) != 0) {
        sem_destroy(&d->handover);
        pool_reaper_stop(d);
        return SHMBUS_ESYS;
    }
    d->watcher_on = true;
    while (sem_wait(&d->handover) != 0)
        ; /* EINTR */
    sem_destroy(&d->handover);
    if (d->token_tid) {
        /* The watcher's table holds the lock now: ours lets go of the description, and peers
         * are told to watch that thread. */
        close(d->token_fd);
        d->token_fd = -1;
        atomic_store_explicit(&d->ctl->participants[d->slot].token_tid, (uint32_t)d->token_tid,
                              memory_order_relaxed);
        pool_membership_changed(d);
    }
    return 0;
}

/* Let go of the liveness lock, if this process's table still holds it (no watcher took it). */
void pool_token_release(shmpool_domain *d)
{
    if (d->token_fd >= 0) {
        pool_liveness_lock(d->token_fd, d->slot, F_UNLCK);
        close(d->token_fd);
        d->token_fd = -1;
    }
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
}
