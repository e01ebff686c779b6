/* A subscriber of a topic with shm delivery: it reads each publisher's ring in the registry
 * (round robin, one descriptor at a time, accounted by sub_acct.c), sleeps in recv on the
 * topic's futex word, and, only once the user asks for its fd, gets a datagram socket that
 * publishers make readable. docs/delivery.md, "Shared-memory delivery". */
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* The longest a blocked recv sleeps before it looks again: a word someone else corrupted
 * (a wrong sleepers count) delays a wake-up by this much at most. */
#define SHM_SLEEP_SLICE_MS 1000

void bus_sub_shm_attach(bus_sub *s, struct sub_acct *a)
{
    a->ring = true;
    a->started = true; /* base is exact: the ring has every sequence after it, or says so */
    atomic_store(&s->reg->attached[a->slot % REG_MAX_PUBS], a->pub_id);
    bus_pipes_note(&s->pipes, 1);
    bus_wake_discovery(s->d); /* its publisher counts it from now on */
}

void bus_sub_shm_depart(bus_sub *s, struct sub_acct *a)
{
    uint64_t id = a->pub_id;
    atomic_compare_exchange_strong(&s->reg->attached[a->slot % REG_MAX_PUBS], &id, 0);
    bus_pipes_note(&s->pipes, -1);
}

/* The account after the one read last, round robin over the open ring accounts. */
static bool read_next(bus_sub *s)
{
    struct sub_acct *start = s->accts;
    for (struct sub_acct *a = s->accts; a; a = a->next)
        if (a->pub_id == s->rr_pub) {
            start = a->next ? a->next : s->accts;
            break;
        }
    struct sub_acct *a = start;
    for (unsigned n = 0; a && n < s->naccts; n++) {
        if (a->ring && bus_acct_ring_next(s, a)) {
            s->rr_pub = a->pub_id;
            return true;
        }
        a = a->next ? a->next : s->accts;
    }
    return false;
}

bool bus_sub_shm_read(bus_sub *s)
{
    if (s->recvfd >= 0)
        bus_wake_fd_drain(s->recvfd, s->reg, false); /* before looking: a later publish wakes */
    pthread_mutex_lock(&s->lock);
    bool got = read_next(s);
    pthread_mutex_unlock(&s->lock);
    if (!got && s->recvfd >= 0) { /* a stranger's datagram, too, must not keep it readable */
        bus_wake_fd_drain(s->recvfd, s->reg, true);
        pthread_mutex_lock(&s->lock);
        got = read_next(s);
        pthread_mutex_unlock(&s->lock);
    }
    return got;
}

static bool anything(bus_sub *s)
{
    bool any = false;
    pthread_mutex_lock(&s->lock);
    for (const struct sub_acct *a = s->accts; a && !any; a = a->next)
        any = a->ring && bus_acct_ring_ready(s, a);
    pthread_mutex_unlock(&s->lock);
    return any;
}

int bus_sub_shm_wait(bus_sub *s, int wait_ms)
{
    struct reg_hdr *r = s->d->reg;
    uint32_t v = bus_wake_prepare(r, s->topic, s->reg_idx);
    bool intr = false;
    if (!anything(s)) /* else it was published before we counted ourselves asleep */
        intr = bus_wake_wait(r, s->topic, v,
                             wait_ms < 0 || wait_ms > SHM_SLEEP_SLICE_MS ? SHM_SLEEP_SLICE_MS
                                                                         : wait_ms);
    bus_wake_done(r, s->topic, s->reg_idx);
    return intr ? SHMBUS_EINTR : 0;
}

int bus_sub_shm_fd(bus_sub *s, int *fd)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    bool armed = false;
    if (s->recvfd < 0) {
        struct sockaddr_un a;
        socklen_t len = bus_wake_addr(s->d->reg, s->sub_id, &a);
        int sock = bus_wake_socket();
        if (sock < 0 || bind(sock, (struct sockaddr *)&a, len) != 0) {
            rc = bus_errno(errno == EMFILE || errno == ENFILE ? SHMBUS_ELIMIT : SHMBUS_ESYS,
                           "topic \"%s\": the subscriber's wake socket", s->t->name);
            if (sock >= 0)
                close(sock);
        } else {
            s->recvfd = sock;
            armed = true;
            atomic_store(&s->reg->fd_pending, 0);
            atomic_store(&s->reg->fd_armed, 1);
        }
    }
    *fd = s->recvfd;
    pthread_mutex_unlock(&s->lock);
    if (armed) {
        /* Publishers read the armed subscribers again when the epoch moves; what one
         * published before it saw the move, we see now: make the fd readable for it. */
        bus_wake_discovery(s->d);
        if (anything(s))
            bus_wake_fd(*fd, s->d->reg, s->reg, s->sub_id);
    }
    return rc;
}

void bus_sub_shm_close(bus_sub *s)
{
    atomic_store(&s->reg->fd_armed, 0);
    if (s->recvfd >= 0)
        close(s->recvfd);
    s->recvfd = -1;
}
