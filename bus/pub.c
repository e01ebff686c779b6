/* Publishers: loan from the topic's pool, publish a descriptor over nng pub0, keep the last K
 * messages held (keep-last history) so late or slow subscribers can still acquire them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include <nng/protocol/pubsub0/pub.h>

static void pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe;
    _Atomic int *peers = arg;
    atomic_fetch_add(peers, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

/* Count connected pipes of a socket into *peers. */
int bus_watch_pipes(nng_socket sock, _Atomic int *peers)
{
    int rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, pipe_event, peers);
    if (rv == 0)
        rv = nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, pipe_event, peers);
    return rv;
}

/* Wait until *peers >= n; sleeps in 1 ms steps. */
int bus_wait_peers(_Atomic int *peers, int n, int timeout_ms)
{
    struct timespec ms = {0, 1000000};
    for (int waited = 0; atomic_load(peers) < n; waited++) {
        if (timeout_ms >= 0 && waited >= timeout_ms)
            return SHMBUS_ETIMEDOUT;
        nanosleep(&ms, NULL);
    }
    return 0;
}

static int claim_entry(bus_domain *d, unsigned topic, bus_pub *p)
{
    uint64_t uid = shmpool_domain_uid(d->pd);
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        struct reg_pub *e = &d->reg->pubs[i];
        uint64_t w = 0;
        if (!atomic_compare_exchange_strong(&e->own, &w, REG_OWN(uid, REG_CLAIMED)))
            continue;
        p->reg = e;
        p->reg_idx = i;
        p->id = (atomic_fetch_add(&d->reg->next_id, 1) << 8) | i;
        e->topic = topic;
        e->pub_id = p->id;
        e->pid = (uint32_t)getpid();
        e->history = p->t->history;
        bus_endpoint_path(d, p->id, e->endpoint, sizeof e->endpoint);
        snprintf(e->name, sizeof e->name, "%s", shmpool_domain_pname(d->pd));
        atomic_store(&e->published, 0);
        atomic_store(&e->bytes, 0);
        atomic_store(&e->last_seq, 0);
        atomic_store(&e->loan_failures, 0);
        atomic_store(&e->hist_next, 0);
        for (unsigned k = 0; k < BUS_MAX_HISTORY; k++)
            atomic_store(&e->hist[k].version, 0);
        return 0;
    }
    return bus_errno(SHMBUS_ELIMIT, "the registry holds %d publishers at most", REG_MAX_PUBS);
}

static int listen_on(bus_pub *p)
{
    const bus_domain *d = p->d;
    char path[REG_ENDPOINT_MAX], url[REG_ENDPOINT_MAX + 8];
    bus_endpoint_path(d, p->id, path, sizeof path); /* not the registry's: others write it */
    snprintf(url, sizeof url, "ipc://%s", path);
    nng_listener l;
    int rv = nng_pub0_open(&p->sock);
    if (rv == 0)
        rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, (int)p->t->queue_depth);
    if (rv == 0)
        rv = bus_watch_pipes(p->sock, &p->peers);
    if (rv == 0)
        rv = nng_listener_create(&l, p->sock, url);
    if (rv == 0)
        rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)d->cfg.mode);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    /* the directory's set-group-ID bit gives the socket file its group; make sure of it */
    if (rv == 0 && d->cfg.gid >= 0 && chown(path, (uid_t)-1, (gid_t)d->cfg.gid) != 0)
        return bus_errno(SHMBUS_EACCES, "giving %s to group %ld", path, d->cfg.gid);
    if (rv)
        return bus_errno(rv == NNG_EPERM ? SHMBUS_EACCES : SHMBUS_ETRANSPORT,
                         "listening on %s: %s", url, nng_strerror(rv));
    return 0;
}

int bus_pub_open(bus_domain *d, const char *topic, bus_pub **out)
{
    if (!d || !topic || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (shmpool_domain_forked(d->pd))
        return SHMBUS_EFORKED; /* nng would abort the process: see DESIGN, Transport */
    if (d->observer)
        return SHMBUS_EACCES;
    bus_pub *p = calloc(1, sizeof *p);
    if (!p)
        return SHMBUS_ENOMEM;
    p->d = d;
    pthread_mutex_init(&p->lock, NULL);
    int rc = bus_topic_index(d, topic, &p->topic);
    if (rc)
        goto fail_free;
    if ((rc = bus_topic_copy(d, p->topic, &p->tdef)) != 0)
        goto fail_free;
    p->t = &p->tdef;
    if ((rc = bus_topic_pool(d, p->t, &p->pool)) != 0)
        goto fail_free;
    if ((rc = claim_entry(d, p->topic, p)) != 0)
        goto fail_free;
    if ((rc = listen_on(p)) != 0)
        goto fail_entry;
    atomic_store_explicit(&p->reg->own, REG_OWN(shmpool_domain_uid(d->pd), REG_LIVE),
                          memory_order_release);
    bus_wake_discovery(d);
    pthread_mutex_lock(&d->lock);
    d->npubs++;
    p->next = d->pubs;
    d->pubs = p;
    pthread_mutex_unlock(&d->lock);
    *out = p;
    return 0;

fail_entry:
    if (p->sock.id)
        nng_close(p->sock);
    atomic_store(&p->reg->own, 0);
fail_free:
    pthread_mutex_destroy(&p->lock);
    free(p);
    return rc;
}

int bus_pub_close(bus_pub *p)
{
    if (!p)
        return SHMBUS_EINVAL;
    bus_domain *d = p->d;
    bool forked = shmpool_domain_forked(d->pd);
    if (atomic_load(&p->loans) > 0 && !forked)
        return bus_errno(SHMBUS_EBUSY, "publisher on \"%s\": %d loaned messages not published "
                                       "or released", p->t->name, atomic_load(&p->loans));
    bool leak = false; /* an nng close that hangs still calls back into p->peers */
    if (!forked) {
        leak = !bus_nng_close(p->sock, BUS_CLOSE_TIMEOUT_MS); /* removes its socket file */
        if (leak) { /* derived, never read from the registry, which others may write */
            char path[REG_ENDPOINT_MAX];
            bus_endpoint_path(d, p->id, path, sizeof path);
            unlink(path);
        }
        for (unsigned i = 0; i < BUS_MAX_HISTORY; i++)
            if (p->hist[i])
                shmpool_block_release(p->hist[i]);
        atomic_store_explicit(&p->reg->own, 0, memory_order_release);
        bus_wake_discovery(d);
    }
    if (!forked) { /* in a forked child d->lock may be a copy held by a parent's thread */
        pthread_mutex_lock(&d->lock);
        d->npubs--;
        for (bus_pub **pp = &d->pubs; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_destroy(&p->lock);
    }
    if (!leak)
        free(p);
    return 0;
}

int bus_pub_loan(bus_pub *p, uint64_t size, bus_msg **out)
{
    if (!p || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (size > p->t->max_message_size)
        return bus_errno(SHMBUS_ETOOBIG, "topic \"%s\": %llu bytes is over its "
                                         "max_message_size of %llu",
                         p->t->name, (unsigned long long)size,
                         (unsigned long long)p->t->max_message_size);
    shmbus_block *b;
    int rc = shmpool_loan(p->pool, size, p->t->full_wait_ms, &b);
    if (rc) {
        if (rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT)
            atomic_fetch_add_explicit(&p->reg->loan_failures, 1, memory_order_relaxed);
        return rc;
    }
    bus_msg *m = bus_msg_wrap(b);
    if (!m) {
        shmpool_block_release(b);
        return SHMBUS_ENOMEM;
    }
    m->pub = p;
    m->pub_id = p->id;
    atomic_fetch_add(&p->loans, 1);
    *out = m;
    return 0;
}

/* Publish the wire message in the registry's history ring for late joiners: a seqlock with
 * sequentially consistent accesses (K stores per publish; no fences, which TSan cannot see). */
static void history_note(bus_pub *p, uint64_t seq, const uint8_t wire[BUS_WIRE_SIZE])
{
    struct reg_hist *h = &p->reg->hist[seq % p->t->history];
    uint64_t v = atomic_load(&h->version);
    atomic_store(&h->version, v + 1); /* odd: being written */
    for (unsigned i = 0; i < BUS_WIRE_SIZE / 8; i++) {
        uint64_t w;
        memcpy(&w, wire + i * 8, 8);
        atomic_store(&h->w[i], w);
    }
    atomic_store(&h->version, v + 2);
    atomic_store(&p->reg->hist_next, seq);
}

int bus_pub_publish(bus_pub *p, bus_msg *m, uint64_t length)
{
    if (!p || !m || m->pub != p)
        return SHMBUS_EINVAL;
    if (shmpool_domain_forked(p->d->pd))
        return SHMBUS_EFORKED;
    if (length > shmpool_block_capacity(m->blk))
        return bus_errno(SHMBUS_EINVAL, "publish: length %llu is over the message's capacity",
                         (unsigned long long)length);
    uint8_t wire[BUS_WIRE_SIZE];
    shmpool_desc pd;
    pthread_mutex_lock(&p->lock);
    uint64_t seq = p->seq + 1;
    int rc = shmpool_block_describe(m->blk, length, seq, &pd);
    if (rc) {
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    p->seq = seq;
    bus_wire_encode(&pd, p->topic, p->id, wire);
    /* Keep-last K: this message replaces the one K back, whose hold goes. */
    unsigned slot = (unsigned)(seq % p->t->history);
    if (p->hist[slot])
        shmpool_block_release(p->hist[slot]);
    p->hist[slot] = shmpool_block_clone(m->blk);
    history_note(p, seq, wire);
    /* Before sending: subscribers accept a lost descriptor as real only up to last_seq. */
    atomic_store(&p->reg->last_seq, seq);
    int rv = nng_send(p->sock, wire, sizeof wire, NNG_FLAG_NONBLOCK);
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_add_explicit(&p->reg->published, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->reg->bytes, length, memory_order_relaxed);
    /* The caller's handle is consumed; any clones of it stay valid as plain handles. */
    m->pub = NULL;
    atomic_fetch_sub(&p->loans, 1);
    bus_msg_release(m);
    if (rv && rv != NNG_EAGAIN)
        return bus_errno(SHMBUS_ETRANSPORT, "publish: %s", nng_strerror(rv));
    return 0;
}

int bus_pub_subscribers(bus_pub *p) { return p ? atomic_load(&p->peers) : SHMBUS_EINVAL; }

int bus_pub_wait_subscribers(bus_pub *p, int n, int timeout_ms)
{
    return p ? bus_wait_peers(&p->peers, n, timeout_ms) : SHMBUS_EINVAL;
}

uint64_t bus_pub_id(const bus_pub *p) { return p->id; }
