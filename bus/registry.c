/* The registry segment (registry.h): its initial contents, the latency histogram's buckets,
 * the liveness of an entry's owner, and the epoch futex that wakes the discovery threads. */
#include <limits.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

unsigned reg_lat_bucket(uint64_t ns)
{
    uint64_t us4 = ns / 250; /* quarter microseconds */
    if (us4 < 4)
        return 0;
    unsigned oct = 63u - (unsigned)__builtin_clzll(us4 / 4); /* octave above 1 us */
    unsigned quarter = (unsigned)((us4 >> oct) & 3);          /* the 2 bits below the top */
    unsigned b = 1 + oct * 4 + quarter;
    return b < REG_LAT_BUCKETS ? b : REG_LAT_BUCKETS - 1;
}

uint64_t reg_lat_edge_ns(unsigned b)
{
    if (b == 0)
        return 0;
    unsigned oct = (b - 1) / 4, quarter = (b - 1) % 4;
    return (1000ull << oct) + (250ull << oct) * quarter;
}

int bus_reg_init(void *map, void *ctx)
{
    (void)ctx;
    struct reg_hdr *r = map;
    r->magic = REG_MAGIC;
    r->version = REG_VERSION;
    r->size = (uint32_t)sizeof *r;
    atomic_store(&r->next_id, 1);
    if (getrandom(&r->nonce, sizeof r->nonce, 0) != (ssize_t)sizeof r->nonce)
        r->nonce = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    return 0;
}

unsigned bus_topic_subs(bus_domain *d, unsigned topic, uint64_t need[REG_MAX_SUBS / 64])
{
    unsigned n = 0;
    memset(need, 0, sizeof(uint64_t) * (REG_MAX_SUBS / 64));
    for (unsigned j = 0; j < REG_MAX_SUBS; j++) {
        struct reg_sub *e = &d->reg->subs[j];
        uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
        if (REG_OWN_STATE(w) == REG_LIVE && e->topic == topic &&
            bus_owner_live(d, REG_OWN_UID(w))) {
            need[j / 64] |= 1ull << (j % 64);
            n++;
        }
    }
    return n;
}

bool bus_owner_live(bus_domain *d, uint64_t uid) { return shmpool_participant_live(d->pd, uid); }

void bus_wake_discovery(bus_domain *d)
{
    atomic_fetch_add(&d->reg->epoch, 1);
    syscall(SYS_futex, &d->reg->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

