/* Connected pipes of an nng socket: counted by nng's pipe callbacks, waited for on a condition
 * variable that every change signals (no polling). */
#include <errno.h>
#include <time.h>

#include "internal.h"

int bus_pipes_init(struct bus_pipes *pp)
{
    pthread_condattr_t ca;
    pp->n = 0;
    if (pthread_condattr_init(&ca) != 0)
        return SHMBUS_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rv = pthread_cond_init(&pp->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rv != 0)
        return SHMBUS_ENOMEM;
    if (pthread_mutex_init(&pp->lock, NULL) != 0) {
        pthread_cond_destroy(&pp->cond);
        return SHMBUS_ENOMEM;
    }
    return 0;
}

void bus_pipes_destroy(struct bus_pipes *pp)
{
    pthread_cond_destroy(&pp->cond);
    pthread_mutex_destroy(&pp->lock);
}

void bus_pipes_note(struct bus_pipes *pp, int delta)
{
    pthread_mutex_lock(&pp->lock);
    pp->n += delta;
    pthread_cond_broadcast(&pp->cond);
    pthread_mutex_unlock(&pp->lock);
}

void bus_pipes_set(struct bus_pipes *pp, int n)
{
    pthread_mutex_lock(&pp->lock);
    if (pp->n != n) {
        pp->n = n;
        pthread_cond_broadcast(&pp->cond);
    }
    pthread_mutex_unlock(&pp->lock);
}

int bus_pipes_count(struct bus_pipes *pp)
{
    pthread_mutex_lock(&pp->lock);
    int n = pp->n;
    pthread_mutex_unlock(&pp->lock);
    return n;
}

int bus_pipes_wait(struct bus_pipes *pp, int n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    int rc = 0;
    pthread_mutex_lock(&pp->lock);
    while (pp->n < n && rc == 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&pp->cond, &pp->lock);
        else if (timeout_ms == 0 ||
                 pthread_cond_timedwait(&pp->cond, &pp->lock, &until) == ETIMEDOUT)
            rc = pp->n < n ? SHMBUS_ETIMEDOUT : 0;
    }
    pthread_mutex_unlock(&pp->lock);
    return rc;
}
