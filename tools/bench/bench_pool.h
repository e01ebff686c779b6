/* shmbus-bench pool, private: the operations it times (bench_pool_ops.c) for the measuring
 * and reporting in bench_pool.c. Names start with bp_.
 *
 * Every batch function does n operation pairs (get then give back) and touches no payload.
 */
#ifndef SHMBUS_BENCH_POOL_H
#define SHMBUS_BENCH_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "shmbus.h"

#define BP_POOL_NAME "bench" /* the shmbus pool every process of a run opens */

/* ---- the naive shared pool (baseline) --------------------------------------------------- */

/* A free-list of block indices under one process-shared pthread mutex, in MAP_SHARED |
 * MAP_ANONYMOUS memory: what one would write without shmbus. A forked child shares it. */
typedef struct bp_naive bp_naive;

int bp_naive_create(uint64_t block_size, uint32_t count, bp_naive **out);
void bp_naive_destroy(bp_naive *np);

/* ---- batch functions (bench_batch_fn) --------------------------------------------------- */

struct bp_loan {
    shmbus_pool *pool;
    uint64_t size;
};

struct bp_acquire {
    shmbus_domain *d; /* a participant other than the block's loaner */
    shmbus_desc desc;
};

int bp_malloc_batch(void *size, unsigned n, uint64_t *retries); /* size_t *: malloc + free */
int bp_naive_batch(void *naive, unsigned n, uint64_t *retries); /* pop + push */
/* shmbus_pool_loan (timeout 0) + shmbus_msg_release. A loan that gets SHMBUS_EFULL is tried
 * again and counted in *retries; 1000 in a row fail with SHMBUS_EFULL. */
int bp_loan_batch(void *loan, unsigned n, uint64_t *retries);
int bp_acquire_batch(void *acquire, unsigned n, uint64_t *retries); /* acquire + release */
int bp_clone_batch(void *msg, unsigned n, uint64_t *retries);       /* clone + release */

/* ---- the second process of a two-process row -------------------------------------------- */

/* What the partner inherits through fork (bench_child arg). */
struct bp_partner_arg {
    const char *domain;
    uint64_t size; /* loans */
};

/* Opens the domain and the pool itself, then loans like bp_loan_batch. arg: bp_partner_arg. */
extern const bench_child bp_loan_partner;
/* Opens the domain itself, then acquires the shmbus_desc it receives as its message.
 * arg: bp_partner_arg. */
extern const bench_child bp_acquire_partner;
/* Uses the inherited naive pool. arg: bp_naive. */
extern const bench_child bp_naive_partner;

#endif
