/* Block state-word operations that clear a holder's bit: one block's release, and the
 * reclaim of one participant's bit across a whole pool. The only transition here is
 *   release  (g, h)  -> (g, h & ~me)   or (g + 1, 0) when the mask empties,
 * and a block that becomes free bumps its class's free_seq (waking sleeping loaners).
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static void note_free(struct shmbus_pool *p, unsigned cls)
{
    struct pool_class_shm *cs = &p->hdr->classes[cls];
    atomic_fetch_add_explicit(&cs->frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&cs->used_hint, 1, memory_order_relaxed);
    uint32_t old = atomic_load_explicit(&cs->free_seq, memory_order_relaxed);
    while (!atomic_compare_exchange_weak(&cs->free_seq, &old, (old + 1) & ~FREE_SLEEPER))
        ;
    if (old & FREE_SLEEPER)
        syscall(SYS_futex, &cs->free_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Clear `bit` from one block if it is set. Returns 1 if it was. */
uint64_t pool_release_bit(struct shmbus_pool *p, unsigned cls, uint32_t index, uint64_t bit)
{
    struct pool_block_hdr *bh = pool_bh(p, cls, index);
    uint64_t w = atomic_load_explicit(&bh->state, memory_order_relaxed);
    for (;;) {
        uint64_t h = STATE_HOLDERS(w);
        if (!(h & bit))
            return 0;
        uint64_t nh = h & ~bit;
        uint64_t nw = nh ? STATE_MAKE(STATE_GEN(w), nh) : STATE_MAKE(STATE_GEN(w) + 1, 0);
        if (atomic_compare_exchange_weak_explicit(&bh->state, &w, nw, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (!nh)
                note_free(p, cls);
            return 1;
        }
    }
}

uint64_t pool_reclaim_bit(struct shmbus_pool *p, uint64_t bit)
{
    uint64_t n = 0;
    for (unsigned c = 0; c < p->nclasses; c++) {
        uint64_t nc = 0;
        for (uint32_t k = 0; k < p->geom[c].count; k++)
            nc += pool_release_bit(p, c, k, bit);
        if (nc)
            atomic_fetch_add(&p->hdr->classes[c].reclaims, nc);
        n += nc;
    }
    return n;
}
