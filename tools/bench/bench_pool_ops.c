/* shmbus-bench pool: the operations it times, and the second process of its two-process
 * rows. Only api/shmbus.h; the baseline pool is plain pthread and mmap.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench_pool.h"

/* ---- the naive shared pool -------------------------------------------------------------- */

/* Lives at the start of its MAP_SHARED|MAP_ANONYMOUS mapping, payloads after it.
 * `lock` guards `top` and `free`; the other fields never change after creation. */
struct bp_naive {
    pthread_mutex_t lock; /* process-shared */
    uint32_t top;         /* free[0..top) are free block indices */
    uint32_t count;
    uint64_t block_size;
    uint64_t data_offset; /* payloads, from the start of the mapping */
    size_t map_len;
    uint32_t free[];
};

static void *volatile sink; /* keeps malloc and the pointer arithmetic from being optimised out */

int bp_naive_create(uint64_t size, uint32_t count, bp_naive **out)
{
    size_t head = sizeof(bp_naive) + count * sizeof(uint32_t);
    head = (head + 4095) & ~(size_t)4095;
    size_t len = head + (size_t)(count * size);
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return SHMBUS_ESYS;
    bp_naive *np = m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int err = pthread_mutex_init(&np->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (err) {
        munmap(m, len);
        return SHMBUS_ESYS;
    }
    np->count = count;
    np->block_size = size;
    np->data_offset = head;
    np->map_len = len;
    for (uint32_t i = 0; i < count; i++)
        np->free[i] = count - 1 - i;
    np->top = count;
    *out = np;
    return 0;
}

void bp_naive_destroy(bp_naive *np)
{
    pthread_mutex_destroy(&np->lock);
    munmap(np, np->map_len);
}

int bp_naive_batch(void *ctx, unsigned n, uint64_t *retries)
{
    (void)retries;
    bp_naive *np = ctx;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_mutex_lock(&np->lock) != 0)
            return SHMBUS_ESYS;
        if (np->top == 0) {
            pthread_mutex_unlock(&np->lock);
            return SHMBUS_EFULL;
        }
        uint32_t k = np->free[--np->top];
        pthread_mutex_unlock(&np->lock);
        sink = (char *)np + np->data_offset + k * np->block_size;
        if (pthread_mutex_lock(&np->lock) != 0)
            return SHMBUS_ESYS;
        np->free[np->top++] = k;
        pthread_mutex_unlock(&np->lock);
    }
    return 0;
}

/* ---- shmbus and malloc ------------------------------------------------------------------ */

int bp_malloc_batch(void *ctx, unsigned n, uint64_t *retries)
{
    (void)retries;
    size_t size = *(const size_t *)ctx;
    for (unsigned i = 0; i < n; i++) {
        void *p = malloc(size);
        if (!p)
            return SHMBUS_ENOMEM;
        sink = p;
        free(p);
    }
    return 0;
}

/* With two loaners that each hold at most one block, a full class can only be a spurious
 * SHMBUS_EFULL: retry it. MAX_FULL in a row is a real one (a leak). */
#define MAX_FULL 1000

int bp_loan_batch(void *ctx, unsigned n, uint64_t *retries)
{
    struct bp_loan *c = ctx;
    unsigned full = 0;
    for (unsigned i = 0; i < n;) {
        shmbus_msg *m;
        int rc = shmbus_pool_loan(c->pool, c->size, 0, &m);
        if (rc == SHMBUS_EFULL && ++full < MAX_FULL) {
            ++*retries;
            continue;
        }
        if (rc == 0)
            rc = shmbus_msg_release(m);
        if (rc)
            return rc;
        full = 0;
        i++;
    }
    return 0;
}

int bp_acquire_batch(void *ctx, unsigned n, uint64_t *retries)
{
    (void)retries;
    struct bp_acquire *c = ctx;
    for (unsigned i = 0; i < n; i++) {
        shmbus_msg *m;
        int rc = shmbus_domain_acquire(c->d, &c->desc, &m);
        if (rc == 0)
            rc = shmbus_msg_release(m);
        if (rc)
            return rc;
    }
    return 0;
}

int bp_clone_batch(void *ctx, unsigned n, uint64_t *retries)
{
    (void)retries;
    shmbus_msg *m = ctx;
    for (unsigned i = 0; i < n; i++) {
        int rc = shmbus_msg_release(shmbus_msg_clone(m));
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the second process ----------------------------------------------------------------- */

struct partner {
    shmbus_domain *d;
    struct bp_loan loan;
    struct bp_acquire acquire;
};

static int partner_open(const struct bp_partner_arg *a, struct partner **out)
{
    struct partner *p = calloc(1, sizeof *p);
    if (!p)
        return SHMBUS_ENOMEM;
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.name = "bench-partner";
    int rc = shmbus_domain_open(a->domain, &o, &p->d);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int partner_close(void *ctx)
{
    struct partner *p = ctx;
    int rc = shmbus_domain_close(p->d);
    free(p);
    return rc;
}

static int partner_loan_setup(const void *arg, const void *msg, size_t len, void **ctx)
{
    (void)msg;
    (void)len;
    const struct bp_partner_arg *a = arg;
    struct partner *p;
    int rc = partner_open(a, &p);
    if (rc)
        return rc;
    rc = shmbus_pool_open(p->d, BP_POOL_NAME, NULL, 0, &p->loan.pool); /* open only */
    if (rc) {
        partner_close(p);
        return rc;
    }
    p->loan.size = a->size;
    *ctx = p;
    return 0;
}

static int partner_loan_batch(void *ctx, unsigned n, uint64_t *retries)
{
    return bp_loan_batch(&((struct partner *)ctx)->loan, n, retries);
}

static int partner_acquire_setup(const void *arg, const void *msg, size_t len, void **ctx)
{
    if (len != sizeof(shmbus_desc))
        return SHMBUS_EINVAL;
    struct partner *p;
    int rc = partner_open(arg, &p);
    if (rc)
        return rc;
    p->acquire.d = p->d;
    memcpy(&p->acquire.desc, msg, sizeof p->acquire.desc);
    *ctx = p;
    return 0;
}

static int partner_acquire_batch(void *ctx, unsigned n, uint64_t *retries)
{
    return bp_acquire_batch(&((struct partner *)ctx)->acquire, n, retries);
}

static int partner_naive_setup(const void *arg, const void *msg, size_t len, void **ctx)
{
    (void)msg;
    (void)len;
    *ctx = (void *)arg; /* the MAP_SHARED pool, inherited */
    return 0;
}

const bench_child bp_loan_partner = {partner_loan_setup, partner_loan_batch, partner_close};
const bench_child bp_acquire_partner = {partner_acquire_setup, partner_acquire_batch,
                                        partner_close};
const bench_child bp_naive_partner = {partner_naive_setup, bp_naive_batch, NULL};
