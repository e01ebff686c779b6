/* Helpers for tests with children that join the same domain (on top of testutil.h).
 *
 * The usual child: tu_child_start() makes a pipe each way and forks; the child waits for the
 * parent's 'g' (sent once the parent has made the domain and its pool "p") and joins them.
 * Functions named tu_child_* run in the child (tu_child_fork and tu_child_start in both): no
 * cmocka there, a failure is _exit(CHILD_FAIL). The others run in the parent and assert.
 */
#ifndef SHMBUS_CHILDUTIL_H
#define SHMBUS_CHILDUTIL_H

#include "testutil.h"

/* A forked child, the two pipes to talk with it, and (in the child, after tu_child_start)
 * the domain and pool it joined. */
typedef struct tu_child {
    pid_t pid;
    int to_child[2];  /* the parent writes [1], the child reads [0] */
    int to_parent[2]; /* the child writes [1], the parent reads [0] */
    shmpool_domain *d;
    shmbus_pool *p;
} tu_child;

/* Make both pipes and fork: 0 in the child, the child's pid in the parent. */
pid_t tu_child_fork(tu_child *c);
/* Parent: close the four pipe ends. */
void tu_child_close_pipes(tu_child *c);
/* tu_child_fork, and in the child: wait (20 s at most) for the parent's 'g', then open dom
 * (with or without its reaper) into c->d and the pool "p" that the parent made into c->p. */
pid_t tu_child_start(tu_child *c, const char *dom, bool reaper);

/* Child: open dom, with or without the reaper. */
shmpool_domain *tu_child_open(const char *dom, bool reaper);
/* Child: open the existing pool "p" (n == 0) or make it with classes c. */
shmbus_pool *tu_child_pool(shmpool_domain *d, const shmpool_class *c, unsigned n);
/* Child: loan `size` bytes without waiting and write the pattern. */
shmbus_block *tu_child_loan(shmbus_pool *p, uint64_t size);
/* Child: block forever (until SIGKILL, or the parent's death via PDEATHSIG). */
void tu_child_park(void) __attribute__((noreturn));

/* Anonymous shared memory that parent and children see alike. */
void *tu_shared_map(size_t len);
/* The parent's domain with the reaper off (tests that sweep by hand). */
shmpool_domain *tu_open_no_reaper(const char *dom);
/* Time in ms from t0 until the pool has exactly `used` blocks in use, all held only by
 * `mask`; polls every millisecond; fails the test after give_up_ms. */
double tu_wait_for_reclaim(const shmbus_pool *p, uint32_t used, uint64_t mask, uint64_t t0,
                           unsigned give_up_ms);
/* shmpool_participants() into pi (SHMPOOL_MAX_PARTICIPANTS entries), asserting success. */
int tu_count_participants(shmpool_domain *d, shmpool_participant_info *pi);
/* Sum of the reclaims counters over the pool's classes. */
uint64_t tu_class_reclaims(const shmbus_pool *p);

#endif
