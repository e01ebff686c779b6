/* A publisher of a topic with shm delivery: its descriptors go into its ring in the registry
 * (the entry index it owns), and a publish wakes the topic's sleeping subscribers through the
 * topic's futex word and those that wait on their pollable fd through a datagram. It never
 * waits for a subscriber: a slow one finds its sequences overwritten and counts them.
 * docs/delivery.md, "Shared-memory delivery". */
#include <unistd.h>

#include "internal.h"

int bus_pub_shm_open(bus_pub *p)
{
    int rc = bus_rings_open(p->d);
    if (rc)
        return rc;
    p->ring = &p->d->rings->ring[p->reg_idx];
    bus_ring_reset(p->ring);
    p->wake_sock = -1;
    p->fd_epoch = atomic_load(&p->d->reg->epoch) - 1; /* not made yet */
    bus_pub_shm_sync(p);
    return 0;
}

/* The live subscribers of p's topic that wait on their fd, read again when the registry's
 * epoch moved (a subscriber that arms its fd bumps it). */
static void fd_subs(bus_pub *p)
{
    struct reg_hdr *r = p->d->reg;
    uint32_t e = atomic_load(&r->epoch);
    if (e == p->fd_epoch)
        return;
    p->fd_epoch = e;
    p->nfd = 0;
    for (unsigned j = 0; j < REG_MAX_SUBS; j++) {
        struct reg_sub *rs = &r->subs[j];
        uint64_t w = atomic_load_explicit(&rs->own, memory_order_acquire);
        if (REG_OWN_STATE(w) == REG_LIVE && rs->topic == p->topic && atomic_load(&rs->fd_armed)) {
            p->fd_sub[p->nfd].idx = j;
            p->fd_sub[p->nfd].id = atomic_load(&rs->sub_id);
            p->nfd++;
        }
    }
    if (p->nfd && p->wake_sock < 0)
        p->wake_sock = bus_wake_socket(); /* -1 again on failure: retried next time */
    if (p->wake_sock < 0)
        p->fd_epoch = e - 1;
}

void bus_pub_shm_send(bus_pub *p, uint64_t seq, const uint8_t wire[BUS_WIRE_SIZE])
{
    struct reg_hdr *r = p->d->reg;
    bus_ring_push(p->ring, p->t->queue_depth, seq, wire);
    bus_wake_topic(r, p->topic);
    fd_subs(p);
    for (unsigned k = 0; k < p->nfd && p->wake_sock >= 0; k++) {
        struct reg_sub *rs = &r->subs[p->fd_sub[k].idx];
        if (atomic_load(&rs->fd_armed))
            bus_wake_fd(p->wake_sock, r, rs, p->fd_sub[k].id);
    }
}

void bus_pub_shm_sync(bus_pub *p)
{
    struct reg_hdr *r = p->d->reg;
    int n = 0;
    for (unsigned j = 0; j < REG_MAX_SUBS; j++) {
        struct reg_sub *rs = &r->subs[j];
        uint64_t w = atomic_load_explicit(&rs->own, memory_order_acquire);
        n += REG_OWN_STATE(w) == REG_LIVE && atomic_load(&rs->attached[p->reg_idx]) == p->id &&
             bus_owner_live(p->d, REG_OWN_UID(w));
    }
    bus_pipes_set(&p->pipes, n);
}

void bus_pub_shm_close(bus_pub *p)
{
    if (p->wake_sock >= 0)
        close(p->wake_sock);
    p->wake_sock = -1;
}
