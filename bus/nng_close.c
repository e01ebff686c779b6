/* nng sockets: their status codes as SHMBUS_E*, and a close that cannot hang its caller. */
#include <stdlib.h>
#include <time.h>

#include "internal.h"

int bus_nng_status(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case NNG_ETIMEDOUT:
        return SHMBUS_ETIMEDOUT;
    case NNG_EAGAIN:
        return SHMBUS_EAGAIN;
    case NNG_ENOMEM:
        return SHMBUS_ENOMEM;
    case NNG_EPERM:
        return SHMBUS_EACCES;
    case NNG_ECLOSED:
        return SHMBUS_ECLOSED;
    case NNG_EINTR:
        return SHMBUS_EINTR;
    default:
        return SHMBUS_ETRANSPORT;
    }
}

/* nng 1.5.2 (Debian 12) can block forever in nng_close while a pipe winds down (upstream's
 * socket-close deadlocks, fixed after 1.5.2; seen here when a peer had just been SIGSTOPped).
 * A close must not hang the process that asked for it, so the close runs in a helper thread
 * and we wait for it a bounded time. If it does not finish, the helper is left to it and the
 * caller must keep alive whatever the socket's callbacks point to. */
struct nng_closer {
    nng_socket sock;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    _Atomic int refs; /* the waiter and the helper; the last one frees */
};

static void closer_unref(struct nng_closer *k)
{
    if (atomic_fetch_sub(&k->refs, 1) == 1) {
        pthread_mutex_destroy(&k->m);
        pthread_cond_destroy(&k->c);
        free(k);
    }
}

static void *closer_main(void *arg)
{
    struct nng_closer *k = arg;
    nng_close(k->sock);
    pthread_mutex_lock(&k->m);
    k->done = true;
    pthread_cond_signal(&k->c);
    pthread_mutex_unlock(&k->m);
    closer_unref(k);
    return NULL;
}

bool bus_nng_close(nng_socket sock, int timeout_ms)
{
    struct nng_closer *k = calloc(1, sizeof *k);
    pthread_attr_t a;
    pthread_t t;
    if (!k || pthread_attr_init(&a) != 0) {
        free(k);
        nng_close(sock); /* no memory for a helper: close inline */
        return true;
    }
    k->sock = sock;
    pthread_mutex_init(&k->m, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->c, &ca);
    pthread_condattr_destroy(&ca);
    atomic_store(&k->refs, 2);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, closer_main, k) != 0) {
        pthread_attr_destroy(&a);
        atomic_store(&k->refs, 1);
        closer_unref(k);
        nng_close(sock);
        return true;
    }
    pthread_attr_destroy(&a);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&k->m);
    while (!k->done && pthread_cond_timedwait(&k->c, &k->m, &until) == 0)
        ;
    bool done = k->done;
    pthread_mutex_unlock(&k->m);
    closer_unref(k);
    return done;
}
