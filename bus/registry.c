/* The registry segment (registry.h): its initial contents, the latency histogram's buckets,
 * the liveness of an entry's owner, and the epoch futex that wakes the discovery threads. */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
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
    return 0;
}

bool bus_owner_live(bus_domain *d, uint64_t uid) { return shmpool_participant_live(d->pd, uid); }

void bus_wake_discovery(bus_domain *d)
{
    atomic_fetch_add(&d->reg->epoch, 1);
    syscall(SYS_futex, &d->reg->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

