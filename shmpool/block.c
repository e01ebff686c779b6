/* Blocks: loan, acquire (weak upgrade), clone, release. Lock-free in shared memory; the
 * state-word release and the reclaim of a dead holder's bit are state.c's.
 *
 * The block's 64-bit state word (generation | holder mask) is the only truth; one CAS
 * decides each transition (docs/ownership.md has the argument for each):
 *   loan     (g, 0)        -> (g, me)
 *   acquire  (g, h != 0)   -> (g, h | me)    only if g is the descriptor's generation
 *   release  (g, h)        -> (g, h & ~me)   or (g + 1, 0) when the mask empties
 * After an acquire the header's sequence and owner are compared with the descriptor's, which
 * catches a generation that wrapped (65 536 reuses) while a descriptor sat in a queue.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t *stripe(struct shmbus_pool *p, const struct shmbus_block *b)
{
    return &p->stripes[(b->index * 7u + b->cls) % POOL_STRIPES];
}

/* ---- loan ----------------------------------------------------------------------------- */

static struct shmbus_block *try_loan(struct shmbus_pool *p, unsigned cls)
{
    shmpool_domain *d = p->dom;
    struct pool_class_shm *cs = &p->hdr->classes[cls];
    uint32_t n = p->geom[cls].count;
    uint32_t start = atomic_fetch_add_explicit(&cs->cursor, 1, memory_order_relaxed) % n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = start + i < n ? start + i : start + i - n;
        struct pool_block_hdr *bh = pool_bh(p, cls, k);
        uint64_t w = atomic_load_explicit(&bh->state, memory_order_relaxed);
        bool won = false;
        /* A failed CAS may only mean the block was loaned and freed again meanwhile (a new
         * generation): try again while it is still free. */
        while (!STATE_HOLDERS(w) && !won)
            won = atomic_compare_exchange_weak_explicit(&bh->state, &w,
                                                        STATE_MAKE(STATE_GEN(w), d->bit),
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed);
        if (!won)
            continue;
        /* Ours. Write the header before any descriptor can name this block. */
        uint64_t seq = atomic_fetch_add_explicit(&p->hdr->next_seq, 1, memory_order_relaxed) + 1;
        atomic_store_explicit(&bh->seq, seq, memory_order_relaxed);
        atomic_store_explicit(&bh->owner_uid, d->uid, memory_order_relaxed);
        atomic_store_explicit(&bh->length, 0, memory_order_relaxed);
        atomic_store_explicit(&bh->timestamp_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&bh->user, 0, memory_order_relaxed);
        atomic_store_explicit(&bh->loan_ns, pool_now_ns(), memory_order_relaxed);
        atomic_fetch_add_explicit(&cs->loans, 1, memory_order_relaxed);
        /* used_hint drifts if a process dies between a state CAS and its counter update;
         * it only feeds high_water, which is clamped to the class size. */
        uint64_t used = atomic_fetch_add_explicit(&cs->used_hint, 1, memory_order_relaxed) + 1;
        if (used > n)
            used = n;
        uint64_t hw = atomic_load_explicit(&cs->high_water, memory_order_relaxed);
        while (used > hw && !atomic_compare_exchange_weak(&cs->high_water, &hw, used))
            ;
        struct shmbus_block *b = &p->rec[cls][k];
        pthread_mutex_t *m = stripe(p, b);
        pthread_mutex_lock(m);
        b->held = true;
        atomic_store_explicit(&b->writable, true, memory_order_relaxed);
        atomic_store_explicit(&b->refs, 1, memory_order_relaxed);
        pthread_mutex_unlock(m);
        atomic_fetch_add(&p->held, 1);
        return b;
    }
    return NULL;
}

static int futex_sleep(_Atomic uint32_t *word, uint32_t expect, uint64_t max_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(max_ns / 1000000000ull),
                          .tv_nsec = (long)(max_ns % 1000000000ull)};
    long r = syscall(SYS_futex, word, FUTEX_WAIT, expect, &ts, NULL, 0);
    return r == 0 || errno == EAGAIN || errno == ETIMEDOUT ? 0 : (errno == EINTR ? 0 : -1);
}

int shmpool_loan(shmbus_pool *p, uint64_t size, int timeout_ms, shmbus_block **out)
{
    if (!p || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    shmpool_domain *d = p->dom;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    if (d->observer)
        return SHMBUS_EACCES;
    if (atomic_load_explicit(&p->broken, memory_order_relaxed))
        return pool_error(SHMBUS_EBADSEG, "pool \"%s\": its segment shrank", p->name);
    unsigned cls = 0;
    while (cls < p->nclasses && p->geom[cls].block_size < size)
        cls++;
    if (cls == p->nclasses)
        return SHMBUS_ETOOBIG;
    int rc = pool_make_writable(p);
    if (rc)
        return rc;
    struct pool_class_shm *cs = &p->hdr->classes[cls];
    uint64_t deadline = timeout_ms > 0 ? pool_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    bool swept = false;
    for (;;) {
        uint32_t seq = atomic_load_explicit(&cs->free_seq, memory_order_acquire);
        if ((*out = try_loan(p, cls)) != NULL)
            return 0;
        if (!swept) { /* exhausted: a dead participant may be sitting on blocks */
            swept = true;
            if (shmpool_domain_sweep(d) > 0)
                continue;
        }
        uint64_t now = pool_now_ns();
        if (timeout_ms == 0 || (timeout_ms > 0 && now >= deadline)) {
            atomic_fetch_add_explicit(&cs->failed_loans, 1, memory_order_relaxed);
            return timeout_ms == 0 ? SHMBUS_EFULL : SHMBUS_ETIMEDOUT;
        }
        if (!(seq & FREE_SLEEPER) &&
            !atomic_compare_exchange_strong(&cs->free_seq, &seq, seq | FREE_SLEEPER))
            continue; /* something was freed meanwhile */
        /* Sleep at most 100 ms at a time: a peer that dies holding blocks wakes nobody. */
        uint64_t nap = 100000000ull;
        if (timeout_ms > 0 && deadline - now < nap)
            nap = deadline - now;
        futex_sleep(&cs->free_seq, seq | FREE_SLEEPER, nap);
        swept = false;
    }
}

/* ---- handles -------------------------------------------------------------------------- */

shmbus_block *shmpool_block_clone(shmbus_block *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

int shmpool_block_release(shmbus_block *b)
{
    if (!b)
        return SHMBUS_EINVAL;
    struct shmbus_pool *p = b->pool;
    if (pool_forked(p->dom))
        return SHMBUS_EFORKED;
    uint32_t r = atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel);
    if (r != 1)
        return 0;
    /* Last handle: drop the process's hold, unless another thread re-acquired meanwhile. */
    pthread_mutex_t *m = stripe(p, b);
    pthread_mutex_lock(m);
    if (atomic_load_explicit(&b->refs, memory_order_relaxed) == 0 && b->held) {
        b->held = false;
        atomic_store_explicit(&b->writable, false, memory_order_relaxed);
        pool_release_bit(p, b->cls, b->index, p->dom->bit);
        atomic_fetch_sub(&p->held, 1);
    }
    pthread_mutex_unlock(m);
    return 0;
}

void *shmpool_block_data(const shmbus_block *b)
{
    const struct shmbus_pool *p = b->pool;
    uint64_t off = (uint64_t)b->index * p->geom[b->cls].stride;
    uint8_t *w = atomic_load_explicit(&p->wmap, memory_order_acquire);
    if (w && atomic_load_explicit(&b->writable, memory_order_relaxed))
        return w + p->data_off[b->cls] + off;
    return p->data[b->cls] + off;
}

shmpool_domain *shmpool_block_domain(const shmbus_block *b) { return b->pool->dom; }

uint64_t shmpool_block_capacity(const shmbus_block *b)
{
    return b->pool->geom[b->cls].block_size;
}

void shmpool_block_get_info(const shmbus_block *b, shmpool_block_info *i)
{
    struct pool_block_hdr *bh = pool_bh(b->pool, b->cls, b->index);
    i->pool_id = b->pool->pool_id;
    i->cls = b->cls;
    i->index = b->index;
    i->gen = STATE_GEN(atomic_load_explicit(&bh->state, memory_order_relaxed));
    i->length = atomic_load_explicit(&bh->length, memory_order_relaxed);
    if (i->length > b->pool->geom[b->cls].block_size) /* a bad writer: never past the block */
        i->length = b->pool->geom[b->cls].block_size;
    i->seq = atomic_load_explicit(&bh->seq, memory_order_relaxed);
    i->timestamp_ns = atomic_load_explicit(&bh->timestamp_ns, memory_order_relaxed);
    i->owner_uid = atomic_load_explicit(&bh->owner_uid, memory_order_relaxed);
    i->user = atomic_load_explicit(&bh->user, memory_order_relaxed);
}

int shmpool_block_describe(shmbus_block *b, uint64_t length, uint64_t user, shmpool_desc *out)
{
    if (!b || !out)
        return SHMBUS_EINVAL;
    struct shmbus_pool *p = b->pool;
    if (pool_forked(p->dom))
        return SHMBUS_EFORKED;
    struct pool_block_hdr *bh = pool_bh(p, b->cls, b->index);
    if (length > shmpool_block_capacity(b) ||
        atomic_load_explicit(&bh->owner_uid, memory_order_relaxed) != p->dom->uid ||
        atomic_load_explicit(&bh->timestamp_ns, memory_order_relaxed) != 0)
        return SHMBUS_EINVAL;
    uint64_t now = pool_now_ns();
    atomic_store_explicit(&bh->length, length, memory_order_relaxed);
    atomic_store_explicit(&bh->user, user, memory_order_relaxed);
    /* Release: the payload and header writes above are visible to whoever reads this. (The
     * descriptor itself then travels through a socket, a full barrier anyway.) */
    atomic_store_explicit(&bh->timestamp_ns, now, memory_order_release);
    /* Described: from now on readers may be looking, so this process's handles read only. */
    atomic_store_explicit(&b->writable, false, memory_order_relaxed);
    shmpool_block_info i;
    shmpool_block_get_info(b, &i);
    *out = (shmpool_desc){.pool_id = i.pool_id,
                          .cls = i.cls,
                          .gen = i.gen,
                          .index = i.index,
                          .length = i.length,
                          .seq = i.seq,
                          .timestamp_ns = i.timestamp_ns,
                          .owner_uid = i.owner_uid,
                          .user = i.user};
    return 0;
}

/* ---- acquire -------------------------------------------------------------------------- */

/* Take one more handle on (cls, index) if it is exactly the block named by gen and seq (and
 * owner, when given). The caller validated cls and index. */
int pool_acquire_exact(struct shmbus_pool *p, unsigned cls, uint32_t index, uint16_t gen,
                       uint64_t seq, const uint64_t *owner_uid, shmbus_block **out)
{
    shmpool_domain *d = p->dom;
    struct shmbus_block *b = &p->rec[cls][index];
    struct pool_block_hdr *bh = pool_bh(p, cls, index);

    /* Fast path: this process already holds it; a handle count > 0 pins the hold. */
    uint32_t r = atomic_load_explicit(&b->refs, memory_order_relaxed);
    bool have = false;
    while (r > 0 && !have)
        have = atomic_compare_exchange_weak_explicit(&b->refs, &r, r + 1, memory_order_acq_rel,
                                                     memory_order_relaxed);
    if (!have) {
        pthread_mutex_t *m = stripe(p, b);
        pthread_mutex_lock(m);
        if (b->held) {
            atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
        } else {
            uint64_t w = atomic_load_explicit(&bh->state, memory_order_relaxed);
            for (;;) {
                /* Our bit without a local hold: we are loaning this block right now on another
                 * thread, so the descriptor is from an earlier life of it. */
                if (STATE_GEN(w) != gen || STATE_HOLDERS(w) == 0 || (STATE_HOLDERS(w) & d->bit)) {
                    pthread_mutex_unlock(m);
                    return SHMBUS_EEXPIRED;
                }
                if (atomic_compare_exchange_weak_explicit(&bh->state, &w, w | d->bit,
                                                          memory_order_acq_rel,
                                                          memory_order_relaxed))
                    break;
            }
            b->held = true;
            atomic_store_explicit(&b->refs, 1, memory_order_relaxed);
            atomic_fetch_add(&p->held, 1);
        }
        pthread_mutex_unlock(m);
    }
    /* We hold it now, so the header is stable: is it the block the descriptor names? The
     * acquire load pairs with the describer's release store of the timestamp. */
    (void)atomic_load_explicit(&bh->timestamp_ns, memory_order_acquire);
    uint64_t w = atomic_load_explicit(&bh->state, memory_order_relaxed);
    if (STATE_GEN(w) != gen || atomic_load_explicit(&bh->seq, memory_order_relaxed) != seq ||
        (owner_uid && atomic_load_explicit(&bh->owner_uid, memory_order_relaxed) != *owner_uid)) {
        shmpool_block_release(b);
        return SHMBUS_EEXPIRED;
    }
    *out = b;
    return 0;
}

static struct shmbus_pool *pool_by_id(shmpool_domain *d, uint32_t id)
{
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
            struct shmbus_pool *p = atomic_load_explicit(&d->pools[i], memory_order_acquire);
            if (p && p->pool_id == id)
                return p;
        }
        if (pass == 0)
            pool_map_all(d); /* a pool created since we last looked */
    }
    return NULL;
}

int shmpool_acquire(shmpool_domain *d, const shmpool_desc *desc, shmbus_block **out)
{
    if (!d || !desc || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    if (d->observer)
        return SHMBUS_EACCES;
    struct shmbus_pool *p = pool_by_id(d, desc->pool_id);
    if (!p)
        return SHMBUS_ENOENT;
    if (atomic_load_explicit(&p->broken, memory_order_relaxed))
        return pool_error(SHMBUS_EBADSEG, "pool \"%s\": its segment shrank", p->name);
    if (desc->cls >= p->nclasses)
        return SHMBUS_EBADDESC;
    const struct pool_geom *g = &p->geom[desc->cls];
    if (desc->index >= g->count || desc->length > g->block_size || desc->seq == 0)
        return SHMBUS_EBADDESC;
    int rc = pool_acquire_exact(p, desc->cls, desc->index, desc->gen, desc->seq,
                                &desc->owner_uid, out);
    if (rc == 0) {
        /* Length, time and user must match what the loaner described. */
        shmpool_block_info i;
        shmpool_block_get_info(*out, &i);
        if (i.length != desc->length || i.timestamp_ns != desc->timestamp_ns ||
            i.user != desc->user) {
            shmpool_block_release(*out);
            *out = NULL;
            return SHMBUS_EBADDESC;
        }
    }
    return rc;
}
