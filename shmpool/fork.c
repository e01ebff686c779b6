/* The fork epoch: how a process tells that it is a forked child of the one that opened a
 * domain. The atfork handler bumps the epoch and closes, in the child, the descriptors of
 * every open domain that carry the parent's liveness locks. */
#include <unistd.h>

#include "internal.h"

static _Atomic unsigned g_fork_epoch;
static pthread_mutex_t g_open_lock = PTHREAD_MUTEX_INITIALIZER; /* guards g_open */
static shmpool_domain *g_open;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) { pthread_mutex_lock(&g_open_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_open_lock); }
static void atfork_child(void)
{
    /* The child must not keep the parent's liveness locks (OFD locks follow the open file
     * description): otherwise the parent's death would go unnoticed while the child lives. */
    atomic_fetch_add(&g_fork_epoch, 1);
    for (shmpool_domain *d = g_open; d; d = d->next_open) {
        if (d->fd >= 0) {
            close(d->fd);
            d->fd = -1;
        }
        if (d->token_fd >= 0) { /* the liveness lock's description, if not handed over */
            close(d->token_fd);
            d->token_fd = -1;
        }
    }
    pthread_mutex_unlock(&g_open_lock);
}
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

void pool_fork_register(void) { pthread_once(&g_atfork_once, atfork_register); }

unsigned pool_fork_epoch(void) { return atomic_load(&g_fork_epoch); }

bool pool_forked(const shmpool_domain *d)
{
    return d->fork_epoch != atomic_load_explicit(&g_fork_epoch, memory_order_relaxed);
}

void pool_open_list_add(shmpool_domain *d)
{
    pthread_mutex_lock(&g_open_lock);
    d->next_open = g_open;
    g_open = d;
    pthread_mutex_unlock(&g_open_lock);
}

void pool_open_list_remove(shmpool_domain *d)
{
    pthread_mutex_lock(&g_open_lock);
    for (shmpool_domain **pp = &g_open; *pp; pp = &(*pp)->next_open) {
        if (*pp == d) {
            *pp = d->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&g_open_lock);
}
