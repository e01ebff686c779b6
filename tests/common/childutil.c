/* See childutil.h. */
#include "childutil.h"

#include <sys/mman.h>

pid_t tu_child_fork(tu_child *c)
{
    proc_pipe(c->to_child);
    proc_pipe(c->to_parent);
    c->pid = proc_fork();
    return c->pid;
}

void tu_child_close_pipes(tu_child *c)
{
    close(c->to_child[0]);
    close(c->to_child[1]);
    close(c->to_parent[0]);
    close(c->to_parent[1]);
}

pid_t tu_child_start(tu_child *c, const char *dom, bool reaper)
{
    c->d = NULL;
    c->p = NULL;
    if (tu_child_fork(c) == 0) {
        CHILD_CHECK(proc_hear(c->to_child[0], 'g', 20000) == 0);
        c->d = tu_child_open(dom, reaper);
        c->p = tu_child_pool(c->d, NULL, 0);
    }
    return c->pid;
}

shmpool_domain *tu_child_open(const char *dom, bool reaper)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.no_reaper = !reaper;
    shmpool_domain *d = NULL;
    CHILD_OK(shmpool_domain_open(dom, &o, &d));
    return d;
}

shmbus_pool *tu_child_pool(shmpool_domain *d, const shmpool_class *c, unsigned n)
{
    shmbus_pool *p = NULL;
    CHILD_OK(shmpool_pool_open(d, "p", c, n, &p));
    return p;
}

shmbus_block *tu_child_loan(shmbus_pool *p, uint64_t size)
{
    shmbus_block *b = NULL;
    CHILD_OK(shmpool_loan(p, size, 0, &b));
    tu_write_pattern(b);
    return b;
}

void tu_child_park(void)
{
    for (;;)
        pause();
}

void *tu_shared_map(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    return m;
}

shmpool_domain *tu_open_no_reaper(const char *dom)
{
    shmpool_domain_opts o;
    tu_opts_no_reaper(&o);
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    return d;
}

double tu_wait_for_reclaim(const shmbus_pool *p, uint32_t used, uint64_t mask, uint64_t t0,
                           unsigned give_up_ms)
{
    for (;;) {
        unsigned n;
        uint64_t holders = tu_pool_holders(p, &n);
        if (tu_pool_used(p) == used && n == used && holders == mask)
            return (double)(proc_now_ns() - t0) / 1e6;
        if (proc_now_ns() - t0 > (uint64_t)give_up_ms * 1000000u)
            fail_msg("after %u ms: %u blocks used (want %u), holders %#llx (want %#llx)",
                     give_up_ms, tu_pool_used(p), used, (unsigned long long)holders,
                     (unsigned long long)mask);
        proc_sleep_ms(1);
    }
}

int tu_count_participants(shmpool_domain *d, shmpool_participant_info *pi)
{
    int n = shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS);
    assert_true(n >= 0);
    return n;
}

uint64_t tu_class_reclaims(const shmbus_pool *p)
{
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    int n = shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES);
    assert_true(n > 0);
    uint64_t r = 0;
    for (int i = 0; i < n; i++)
        r += st[i].reclaims;
    return r;
}
