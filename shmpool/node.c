/* Named nodes: get-or-create a block by name, as in the origin design's shared-memory smart
 * pointer (docs/design.md). The table lives in the ctl segment, guarded by a robust
 * process-shared mutex; each node has its own robust mutex for its users. A node needs no
 * explicit removal: when its last holder releases it, its block is freed and the entry goes
 * stale (its generation moved on). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Lock a robust mutex in shared memory. timeout_ms < 0 waits as long as it takes; the
 * table's own lock, held only briefly, gets a deadline: a lock word a bad writer spoiled
 * must not hang every participant. */
static int robust_lock(pthread_mutex_t *m, int timeout_ms)
{
    int r;
    if (timeout_ms < 0) {
        r = pthread_mutex_lock(m);
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now); /* the clock of pthread_mutex_timedlock */
        uint64_t ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec +
                      (uint64_t)timeout_ms * 1000000ull;
        struct timespec until = {.tv_sec = (time_t)(ns / 1000000000ull),
                                 .tv_nsec = (long)(ns % 1000000000ull)};
        r = pthread_mutex_timedlock(m, &until);
    }
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return SHMBUS_EOWNERDEAD;
    }
    if (r == ETIMEDOUT)
        return pool_error(SHMBUS_ETIMEDOUT, "named node table: its lock was not released "
                                            "within %d ms", timeout_ms);
    return r ? pool_error(SHMBUS_ESYS, "named node lock: %s", strerror(r)) : 0;
}

/* Does the entry still name a held block? Only reads; caller holds nodes_lock. */
static bool entry_live(shmpool_domain *d, const struct ctl_node *e)
{
    if (!e->used)
        return false;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct shmbus_pool *p = atomic_load(&d->pools[i]);
        if (!p || p->pool_id != e->pool_id)
            continue;
        if (e->cls >= p->nclasses || e->index >= p->geom[e->cls].count)
            return false;
        struct pool_block_hdr *bh = pool_bh(p, e->cls, e->index);
        uint64_t w = atomic_load(&bh->state);
        return STATE_HOLDERS(w) && STATE_GEN(w) == e->gen && atomic_load(&bh->seq) == e->seq;
    }
    return false;
}

int shmpool_node_get(shmbus_pool *p, const char *name, uint64_t size, shmbus_block **out,
                     bool *created)
{
    if (!p || !name || !*name || strlen(name) > SHMPOOL_NODE_NAME_MAX || !out)
        return SHMBUS_EINVAL;
    shmpool_domain *d = p->dom;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    if (d->observer)
        return SHMBUS_EACCES;
    int rc = pool_make_writable(p); /* every user of a node may modify it */
    if (rc)
        return rc;
    pool_map_all(d);
    struct ctl_hdr *c = d->ctl;
    rc = robust_lock(&c->nodes_lock, 2000);
    if (rc == SHMBUS_EOWNERDEAD)
        rc = 0; /* entries are written with `used` last: a dead writer left no half entry */
    if (rc)
        return rc;
    int free_slot = -1;
    for (unsigned i = 0; i < SHMPOOL_MAX_NODES; i++) {
        struct ctl_node *e = &c->nodes[i];
        if (e->used && e->pool_id == p->pool_id && strncmp(e->name, name, sizeof e->name) == 0) {
            if (e->cls < p->nclasses && e->index < p->geom[e->cls].count &&
                pool_acquire_exact(p, e->cls, e->index, e->gen, e->seq, NULL, out) == 0) {
                atomic_store(&(*out)->writable, true); /* every user of a node may write it */
                pthread_mutex_unlock(&c->nodes_lock);
                if (created)
                    *created = false;
                return 0;
            }
            e->used = 0; /* its last holder released it: the node is gone */
        }
        if (free_slot < 0 && !entry_live(d, e))
            free_slot = (int)i;
    }
    if (free_slot < 0) {
        rc = SHMBUS_ELIMIT;
        goto out;
    }
    shmbus_block *b;
    rc = shmpool_loan(p, size, 0, &b);
    if (rc)
        goto out;
    memset(shmpool_block_data(b), 0, shmpool_block_capacity(b));
    shmpool_block_info info;
    shmpool_block_get_info(b, &info);
    struct ctl_node *e = &c->nodes[free_slot];
    e->used = 0;
    e->pool_id = p->pool_id;
    e->cls = info.cls;
    e->gen = info.gen;
    e->index = info.index;
    e->seq = info.seq;
    memset(e->name, 0, sizeof e->name);
    strncpy(e->name, name, sizeof e->name - 1);
    e->used = 1;
    *out = b;
    if (created)
        *created = true;
out:
    pthread_mutex_unlock(&c->nodes_lock);
    return rc;
}

static struct ctl_node *node_entry(shmbus_block *b)
{
    shmpool_domain *d = b->pool->dom;
    shmpool_block_info info;
    shmpool_block_get_info(b, &info);
    for (unsigned i = 0; i < SHMPOOL_MAX_NODES; i++) {
        struct ctl_node *e = &d->ctl->nodes[i];
        if (e->used && e->pool_id == info.pool_id && e->cls == info.cls &&
            e->index == info.index && e->gen == info.gen && e->seq == info.seq)
            return e;
    }
    return NULL;
}

int shmpool_node_lock(shmbus_block *node)
{
    if (!node)
        return SHMBUS_EINVAL;
    if (pool_forked(node->pool->dom))
        return SHMBUS_EFORKED;
    struct ctl_node *e = node_entry(node);
    return e ? robust_lock(&e->lock, -1) : SHMBUS_ENOENT;
}

int shmpool_node_unlock(shmbus_block *node)
{
    if (!node)
        return SHMBUS_EINVAL;
    struct ctl_node *e = node_entry(node);
    if (!e)
        return SHMBUS_ENOENT;
    return pthread_mutex_unlock(&e->lock) ? SHMBUS_EINVAL : 0;
}
