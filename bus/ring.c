/* Shared-memory delivery's primitives (registry.h: reg_ring, reg_wake, the wake fields of
 * reg_sub): a publisher's descriptor ring, the topic's futex word that blocked subscribers
 * sleep on, and the datagram wake-up of a subscriber that waits on its pollable fd. No lock:
 * every word has one writer or is changed by a single atomic operation, so a process that
 * dies at any instruction leaves nothing another process waits for (docs/delivery.md). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define WORDS (BUS_WIRE_SIZE / 8)

/* ---- the ring segment ------------------------------------------------------------------- */

static int rings_init(void *map, void *ctx)
{
    (void)ctx;
    struct reg_rings *r = map;
    r->magic = REG_RINGS_MAGIC;
    r->version = REG_VERSION;
    r->size = (uint32_t)sizeof *r;
    return 0;
}

int bus_rings_open(bus_domain *d)
{
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    if (!d->rings) {
        void *map;
        rc = shmpool_segment_open(d->pd, "rings", sizeof(struct reg_rings), rings_init, NULL, &map);
        if (rc)
            bus_errno(rc, "the rings of domain \"%s\"%s%s", d->name,
                      shmpool_last_error()[0] ? ": " : "", shmpool_last_error());
        else if (((struct reg_rings *)map)->magic != REG_RINGS_MAGIC ||
                 ((struct reg_rings *)map)->version != REG_VERSION ||
                 ((struct reg_rings *)map)->size != sizeof(struct reg_rings)) {
            shmpool_segment_close(map, sizeof(struct reg_rings));
            rc = bus_errno(SHMBUS_EBADSEG, "the rings of domain \"%s\": wrong layout version",
                           d->name);
        } else
            d->rings = map;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void bus_rings_close(bus_domain *d)
{
    if (d->rings)
        shmpool_segment_close(d->rings, sizeof(struct reg_rings));
    d->rings = NULL;
}

/* ---- the ring --------------------------------------------------------------------------- */

void bus_ring_reset(struct reg_ring *r)
{
    atomic_store(&r->head, 0);
    for (unsigned i = 0; i < REG_RING_SLOTS; i++)
        atomic_store(&r->slot[i].version, 0);
}

/* Sequentially consistent accesses throughout (as the history ring's): no fences, which
 * TSan cannot see, and the order head-after-slot that readers rely on. */
void bus_ring_push(struct reg_ring *r, unsigned depth, uint64_t seq,
                   const uint8_t wire[BUS_WIRE_SIZE])
{
    struct reg_hist *h = &r->slot[seq % depth];
    atomic_store(&h->version, 2 * seq - 1); /* odd: being written */
    for (unsigned i = 0; i < WORDS; i++) {
        uint64_t w;
        memcpy(&w, wire + i * 8, 8);
        atomic_store(&h->w[i], w);
    }
    atomic_store(&h->version, 2 * seq);
    atomic_store(&r->head, seq);
}

uint64_t bus_ring_head(const struct reg_ring *r) { return atomic_load(&r->head); }

enum bus_ring_read bus_ring_read(const struct reg_ring *r, unsigned depth, uint64_t q,
                                 uint8_t wire[BUS_WIRE_SIZE])
{
    const struct reg_hist *h = &r->slot[q % depth];
    uint64_t v1 = atomic_load(&h->version);
    if (v1 != 2 * q)
        return v1 > 2 * q ? BUS_RING_LAPPED : BUS_RING_BAD;
    for (unsigned i = 0; i < WORDS; i++) {
        uint64_t w = atomic_load(&h->w[i]);
        memcpy(wire + i * 8, &w, 8);
    }
    /* rewritten while we copied: by the publisher's next lap (or by a forger, whose words
     * the caller validates anyway) */
    return atomic_load(&h->version) == v1 ? BUS_RING_OK : BUS_RING_LAPPED;
}

/* ---- the topic's futex word ------------------------------------------------------------- */

static struct reg_wake *wake_of(struct reg_hdr *reg, unsigned topic)
{
    return &reg->wake[topic % REG_MAX_TOPICS];
}

void bus_wake_topic(struct reg_hdr *reg, unsigned topic)
{
    struct reg_wake *w = wake_of(reg, topic);
    atomic_fetch_add(&w->futex, 1);
    uint64_t any = 0;
    for (unsigned k = 0; k < REG_MAX_SUBS / 64; k++)
        any |= atomic_load(&w->sleepers[k]);
    if (any)
        syscall(SYS_futex, &w->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The futex value is read before the bit is set, the rings after: a publish the caller
 * does not see in the rings either changed the value already or sees the bit. */
uint32_t bus_wake_prepare(struct reg_hdr *reg, unsigned topic, unsigned sub_idx)
{
    struct reg_wake *w = wake_of(reg, topic);
    uint32_t v = atomic_load(&w->futex);
    atomic_fetch_or(&w->sleepers[sub_idx / 64 % (REG_MAX_SUBS / 64)], 1ull << (sub_idx % 64));
    return v;
}

bool bus_wake_wait(struct reg_hdr *reg, unsigned topic, uint32_t v, int wait_ms)
{
    struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (long)(wait_ms % 1000) * 1000000};
    return syscall(SYS_futex, &wake_of(reg, topic)->futex, FUTEX_WAIT, v,
                   wait_ms < 0 ? NULL : &ts, NULL, 0) != 0 && errno == EINTR;
}

void bus_wake_done(struct reg_hdr *reg, unsigned topic, unsigned sub_idx)
{
    atomic_fetch_and(&wake_of(reg, topic)->sleepers[sub_idx / 64 % (REG_MAX_SUBS / 64)],
                     ~(1ull << (sub_idx % 64)));
}

void bus_wake_forget(struct reg_hdr *reg, unsigned sub_idx)
{
    uint64_t bit = 1ull << (sub_idx % 64);
    for (unsigned t = 0; t < REG_MAX_TOPICS; t++) { /* its entry's topic may be corrupt */
        _Atomic uint64_t *word = &reg->wake[t].sleepers[sub_idx / 64 % (REG_MAX_SUBS / 64)];
        if (atomic_load(word) & bit)
            atomic_fetch_and(word, ~bit);
    }
}

/* ---- the pollable fd: a datagram socket in the abstract namespace ------------------------ */

/* The wake socket's address of subscriber sub_id: derived from the registry's nonce and the
 * id, so a publisher sends only to names of this domain's form, whatever the registry says. */
socklen_t bus_wake_addr(const struct reg_hdr *reg, uint64_t sub_id, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "shmbus-wake/%016llx/%llu",
                     (unsigned long long)reg->nonce, (unsigned long long)sub_id);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int bus_wake_socket(void)
{
    return socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Make subscriber entry rs's fd readable, unless a datagram is on its way already. */
void bus_wake_fd(int sock, const struct reg_hdr *reg, struct reg_sub *rs, uint64_t sub_id)
{
    if (atomic_exchange(&rs->fd_pending, 1))
        return;
    struct sockaddr_un a;
    socklen_t len = bus_wake_addr(reg, sub_id, &a);
    /* a full or vanished socket: the subscriber is readable already, or gone */
    (void)sendto(sock, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, len);
}

void bus_wake_fd_drain(int fd, struct reg_sub *rs, bool always)
{
    if (!atomic_exchange(&rs->fd_pending, 0) && !always)
        return;
    char buf[16];
    while (recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL) >= 0 || errno == EINTR)
        ;
}
