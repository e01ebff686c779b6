/* The discovery thread of a participant: on every registry change (the epoch futex) it dials
 * new publishers for this process's subscribers; every fourth round it clears the entries of
 * processes that died without closing them and restores the runtime directory and this
 * process's endpoints if someone removed them (domain_rundir.c). */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Free the registry entries of processes that died without closing them. */
static void reap_entries(bus_domain *d)
{
    struct reg_hdr *r = d->reg;
    bool changed = false;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++)
        changed |= bus_pub_reap_entry(d, i); /* dead publishers leave tombstones (pub.c) */
    for (unsigned i = 0; i < REG_MAX_SUBS; i++) {
        struct reg_sub *s = &r->subs[i];
        uint64_t w = atomic_load(&s->own);
        if (w && !bus_owner_live(d, REG_OWN_UID(w))) {
            bus_wake_forget(r, i); /* it may have died asleep */
            atomic_store(&s->fd_armed, 0);
            changed |= atomic_compare_exchange_strong(&s->own, &w, 0);
        }
    }
    if (changed)
        bus_wake_discovery(d);
}

static void *discovery_main(void *arg)
{
    bus_domain *d = arg;
    unsigned rounds = 0;
    while (!atomic_load(&d->stopping)) {
        uint32_t e = atomic_load(&d->reg->epoch);
        pthread_mutex_lock(&d->lock);
        for (bus_sub *s = d->subs; s; s = s->next)
            bus_sub_sync_peers(s);
        for (bus_pub *p = d->pubs; p; p = p->next)
            if (p->shm)
                bus_pub_shm_sync(p);
        pthread_mutex_unlock(&d->lock);
        if (rounds++ % 4 == 0) {
            reap_entries(d);
            if (bus_rundir_restore(d)) /* someone removed it: endpoints need it */
                bus_wake_discovery(d);
            bus_endpoints_restore(d);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        if (!atomic_load(&d->stopping))
            syscall(SYS_futex, &d->reg->epoch, FUTEX_WAIT, e, &ts, NULL, 0);
    }
    return NULL;
}

int bus_discovery_start(bus_domain *d)
{
    if (pthread_create(&d->discovery, NULL, discovery_main, d) != 0)
        return bus_errno(SHMBUS_ESYS, "discovery thread");
    d->discovery_on = true;
    return 0;
}

void bus_discovery_stop(bus_domain *d)
{
    atomic_store(&d->stopping, true);
    bus_wake_discovery(d);
    pthread_join(d->discovery, NULL);
}
