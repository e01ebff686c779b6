/* Publishers: loan from the topic's pool, publish a descriptor over nng pub0, keep the last K
 * messages held (keep-last history) so late or slow subscribers can still acquire them, and
 * leave a tombstone with the final sequence when they go (docs/delivery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include <nng/protocol/pubsub0/pub.h>

/* ---- registry entry: claim, tombstone, reap ------------------------------------------------ */

/* Turn entry e, which this process owns as `w`, into a tombstone. */
static void entomb(bus_domain *d, struct reg_pub *e, uint64_t w)
{
    uint64_t need[REG_MAX_SUBS / 64];
    unsigned n = bus_topic_subs(d, e->topic, need);
    for (unsigned k = 0; k < REG_MAX_SUBS / 64; k++)
        atomic_store(&e->need[k], need[k]);
    atomic_store(&e->close_ticket, atomic_load(&d->reg->next_id));
    uint64_t tomb = REG_OWN(0, REG_CLOSED);
    if (atomic_compare_exchange_strong(&e->own, &w, tomb) && n == 0)
        atomic_compare_exchange_strong(&e->own, &tomb, 0);
}

/* Drop the need bits of subscriber entries that can no longer use tombstone e (closed, dead,
 * or reused by a later subscriber); free it when none is left. Returns whether it changed. */
static bool tomb_settle(bus_domain *d, struct reg_pub *e, uint64_t w)
{
    uint64_t ticket = atomic_load(&e->close_ticket);
    bool any = false, changed = false;
    for (unsigned j = 0; j < REG_MAX_SUBS; j++) {
        uint64_t bit = 1ull << (j % 64);
        if (!(atomic_load(&e->need[j / 64]) & bit))
            continue;
        struct reg_sub *s = &d->reg->subs[j];
        uint64_t sw = atomic_load_explicit(&s->own, memory_order_acquire);
        if (REG_OWN_STATE(sw) == REG_LIVE && atomic_load(&s->sub_id) < ticket &&
            bus_owner_live(d, REG_OWN_UID(sw))) {
            any = true;
            continue;
        }
        atomic_fetch_and(&e->need[j / 64], ~bit);
        changed = true;
    }
    if (!any && atomic_compare_exchange_strong(&e->own, &w, 0))
        changed = true;
    return changed;
}

void bus_tomb_release(bus_domain *d, unsigned slot, unsigned sub_idx)
{
    if (slot >= REG_MAX_PUBS || sub_idx >= REG_MAX_SUBS)
        return;
    struct reg_pub *e = &d->reg->pubs[slot];
    uint64_t w = REG_OWN(0, REG_CLOSED);
    if (atomic_load(&e->own) != w)
        return;
    atomic_fetch_and(&e->need[sub_idx / 64], ~(1ull << (sub_idx % 64)));
    for (unsigned k = 0; k < REG_MAX_SUBS / 64; k++)
        if (atomic_load(&e->need[k]))
            return;
    atomic_compare_exchange_strong(&e->own, &w, 0);
}

bool bus_pub_reap_entry(bus_domain *d, unsigned i)
{
    struct reg_pub *e = &d->reg->pubs[i];
    uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
    if (!w)
        return false;
    if (REG_OWN_STATE(w) == REG_CLOSED)
        return tomb_settle(d, e, w);
    if (bus_owner_live(d, REG_OWN_UID(w)))
        return false;
    if (REG_OWN_STATE(w) != REG_LIVE)
        return atomic_compare_exchange_strong(&e->own, &w, 0);
    uint64_t id = atomic_load(&e->pub_id);
    /* one reaper wins the entry (as CLAIMED, so that a reaper dying here frees it) */
    uint64_t mine = REG_OWN(shmpool_domain_uid(d->pd), REG_CLAIMED);
    if (!atomic_compare_exchange_strong(&e->own, &w, mine))
        return false;
    bus_endpoint_remove(d, i, id); /* a dead listener cannot remove its socket file */
    entomb(d, e, mine);
    bus_wake_topic(d->reg, e->topic); /* shm subscribers asleep account its end */
    return true;
}

/* A free entry, else one a settled or (as a last resort) the oldest tombstone leaves. */
static struct reg_pub *claim_slot(bus_domain *d, uint64_t uid, unsigned *idx)
{
    for (int pass = 0; pass < 3; pass++) {
        for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
            uint64_t w = 0;
            if (atomic_compare_exchange_strong(&d->reg->pubs[i].own, &w,
                                               REG_OWN(uid, REG_CLAIMED))) {
                *idx = i;
                return &d->reg->pubs[i];
            }
        }
        unsigned oldest = REG_MAX_PUBS;
        uint64_t oldest_ticket = UINT64_MAX;
        for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
            struct reg_pub *e = &d->reg->pubs[i];
            if (pass == 0)
                bus_pub_reap_entry(d, i);
            else if (atomic_load(&e->own) == REG_OWN(0, REG_CLOSED) &&
                     atomic_load(&e->close_ticket) < oldest_ticket) {
                oldest = i;
                oldest_ticket = atomic_load(&e->close_ticket);
            }
        }
        if (oldest < REG_MAX_PUBS) { /* its subscribers close their count without the end */
            uint64_t w = REG_OWN(0, REG_CLOSED);
            atomic_compare_exchange_strong(&d->reg->pubs[oldest].own, &w, 0);
        }
    }
    return NULL;
}

static int claim_entry(bus_domain *d, unsigned topic, bus_pub *p)
{
    uint64_t uid = shmpool_domain_uid(d->pd);
    unsigned i;
    struct reg_pub *e = claim_slot(d, uid, &i);
    if (!e)
        return bus_errno(SHMBUS_ELIMIT, "the registry holds %d publishers at most", REG_MAX_PUBS);
    p->reg = e;
    p->reg_idx = i;
    uint64_t ticket = atomic_fetch_add(&d->reg->next_id, 1);
    p->id = (ticket << 8) | i;
    e->topic = topic;
    atomic_store(&e->pub_id, p->id);
    e->open_ticket = ticket;
    e->pid = (uint32_t)getpid();
    e->history = p->history;
    bus_endpoint_path(d, p->id, e->endpoint, sizeof e->endpoint);
    snprintf(e->name, sizeof e->name, "%s", shmpool_domain_pname(d->pd));
    atomic_store(&e->published, 0);
    atomic_store(&e->bytes, 0);
    atomic_store(&e->last_seq, 0);
    atomic_store(&e->loan_failures, 0);
    atomic_store(&e->hist_released, 0);
    atomic_store(&e->hist_next, 0);
    for (unsigned k = 0; k < BUS_MAX_HISTORY; k++)
        atomic_store(&e->hist[k].version, 0);
    for (unsigned k = 0; k < REG_MAX_SUBS / 64; k++)
        atomic_store(&e->need[k], 0);
    atomic_store(&e->close_ticket, 0);
    return 0;
}

/* ---- open / close --------------------------------------------------------------------------- */

/* A subscriber connected: tell it (and, harmlessly, the others) the last sequence published
 * before its connection, so that it catches up on what it missed at once (docs/delivery.md).
 * nng runs this after adding the pipe to the socket, holding no lock of the socket. */
static void pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe;
    bus_pub *p = arg;
    bool add = ev == NNG_PIPE_EV_ADD_POST;
    if (add) {
        uint8_t wire[BUS_WIRE_SIZE];
        pthread_mutex_lock(&p->lock);
        if (p->seq) {
            bus_wire_sync_encode(p->topic, p->id, p->seq, wire);
            nng_send(p->sock, wire, sizeof wire, NNG_FLAG_NONBLOCK);
        }
        pthread_mutex_unlock(&p->lock);
    }
    bus_pipes_note(&p->pipes, add ? 1 : -1);
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
        rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_POST, pipe_event, p);
    if (rv == 0)
        rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pipe_event, p);
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
        return SHMBUS_EFORKED; /* nng would abort the process (docs/decisions.md) */
    if (d->observer)
        return SHMBUS_EACCES;
    bus_pub *p = calloc(1, sizeof *p);
    if (!p)
        return SHMBUS_ENOMEM;
    p->d = d;
    int rc = bus_pipes_init(&p->pipes);
    if (rc) {
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    if ((rc = bus_topic_index(d, topic, &p->topic)) != 0)
        goto fail_free;
    if ((rc = bus_topic_copy(d, p->topic, &p->tdef)) != 0)
        goto fail_free;
    p->t = &p->tdef;
    p->history = p->t->history;
    if (p->history < 1 || p->history > BUS_MAX_HISTORY) {
        rc = bus_errno(SHMBUS_EBADSEG, "topic \"%s\": history %u in the registry is out of "
                       "range 1..%d", topic, p->history, BUS_MAX_HISTORY);
        goto fail_free;
    }
    if ((rc = bus_topic_pool(d, p->t, &p->pool)) != 0)
        goto fail_free;
    if ((rc = claim_entry(d, p->topic, p)) != 0)
        goto fail_free;
    p->shm = p->t->delivery == BUS_DELIVERY_SHM;
    if (p->shm ? (rc = bus_pub_shm_open(p)) != 0 : (rc = listen_on(p)) != 0)
        goto fail_entry;
    atomic_store_explicit(&p->reg->own, REG_OWN(shmpool_domain_uid(d->pd), REG_LIVE),
                          memory_order_release);
    bus_wake_discovery(d);
    pthread_mutex_lock(&d->lock);
    d->npubs++;
    p->next = d->pubs;
    d->pubs = p;
    pthread_mutex_unlock(&d->lock);
    /* Start order: the subscribers registered now get this publisher's messages from
     * sequence 1. Give them a bounded time to connect; one that connects later catches up
     * from the history, and what it cannot get it counts. */
    uint64_t need[REG_MAX_SUBS / 64];
    unsigned n = bus_topic_subs(d, p->topic, need); /* shm: until they read its ring */
    if (n)
        bus_pipes_wait(&p->pipes, (int)n, BUS_OPEN_WAIT_MS);
    *out = p;
    return 0;

fail_entry:
    if (p->sock.id)
        nng_close(p->sock);
    atomic_store(&p->reg->own, 0);
fail_free:
    pthread_mutex_destroy(&p->lock);
    bus_pipes_destroy(&p->pipes);
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
    bool leak = false; /* an nng close that hangs still calls back into p->pipes */
    if (p->shm)
        bus_pub_shm_close(p); /* its own descriptor only: right in a forked child too */
    else if (!forked) {
        leak = !bus_nng_close(p->sock, BUS_CLOSE_TIMEOUT_MS); /* removes its socket file */
        if (leak) { /* derived, never read from the registry, which others may write */
            char path[REG_ENDPOINT_MAX];
            bus_endpoint_path(d, p->id, path, sizeof path);
            unlink(path);
        }
    }
    if (!forked) {
        for (unsigned i = 0; i < BUS_MAX_HISTORY; i++)
            if (p->hist[i])
                shmpool_block_release(p->hist[i]);
        entomb(d, p->reg, atomic_load(&p->reg->own));
        if (p->shm)
            bus_wake_topic(d->reg, p->topic); /* its subscribers asleep account its end */
        bus_wake_discovery(d);
        /* in a forked child d->lock may be a copy held by a parent's thread */
        pthread_mutex_lock(&d->lock);
        d->npubs--;
        for (bus_pub **pp = &d->pubs; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        pthread_mutex_unlock(&d->lock);
    }
    if (!leak) { /* else nng may still call pipe_event, which takes p->lock */
        if (!forked) {
            pthread_mutex_destroy(&p->lock);
            bus_pipes_destroy(&p->pipes);
        }
        free(p);
    }
    return 0;
}

/* ---- loan and publish ----------------------------------------------------------------------- */

static bool history_held(bus_pub *p)
{
    pthread_mutex_lock(&p->lock);
    bool any = p->hist_n > 0;
    pthread_mutex_unlock(&p->lock);
    return any;
}

/* Give up the hold on the oldest message of the history (the pool is full). */
static bool history_give_way(bus_pub *p)
{
    shmbus_block *b = NULL;
    pthread_mutex_lock(&p->lock);
    uint64_t first = p->seq >= p->history ? p->seq - p->history + 1 : 1;
    for (uint64_t q = first; q && q <= p->seq && !b; q++) {
        b = p->hist[q % p->history];
        p->hist[q % p->history] = NULL;
    }
    if (b)
        p->hist_n--;
    pthread_mutex_unlock(&p->lock);
    if (!b)
        return false;
    atomic_fetch_add_explicit(&p->reg->hist_released, 1, memory_order_relaxed);
    shmpool_block_release(b);
    return true;
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
    /* A full pool takes this publisher's own history first, oldest first, then the topic's
     * policy (fail or wait) applies. */
    int rc;
    for (;;) {
        bool give = history_held(p);
        rc = shmpool_loan(p->pool, size, give ? 0 : p->t->full_wait_ms, &b);
        if (rc != SHMBUS_EFULL || !give)
            break;
        history_give_way(p);
    }
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
    struct reg_hist *h = &p->reg->hist[seq % p->history];
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
    int rc = seq > BUS_SEQ_MAX ? bus_errno(SHMBUS_ELIMIT, "publisher sequence exhausted")
                               : shmpool_block_describe(m->blk, length,
                                                        BUS_USER(BUS_PUB_TAG(p->id), seq), &pd);
    if (rc) {
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    p->seq = seq;
    bus_wire_encode(&pd, p->topic, p->id, wire);
    /* Keep-last K: this message replaces the one K back, whose hold goes. */
    unsigned slot = (unsigned)(seq % p->history);
    if (p->hist[slot])
        shmpool_block_release(p->hist[slot]);
    else
        p->hist_n++;
    p->hist[slot] = shmpool_block_clone(m->blk);
    history_note(p, seq, wire);
    /* Before sending: subscribers accept a lost descriptor as real only up to last_seq. */
    atomic_store(&p->reg->last_seq, seq);
    int rv = 0;
    if (p->shm)
        bus_pub_shm_send(p, seq, wire);
    else
        rv = nng_send(p->sock, wire, sizeof wire, NNG_FLAG_NONBLOCK);
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

int bus_pub_subscribers(bus_pub *p) { return p ? bus_pipes_count(&p->pipes) : SHMBUS_EINVAL; }

int bus_pub_wait_subscribers(bus_pub *p, int n, int timeout_ms)
{
    return p ? bus_pipes_wait(&p->pipes, n, timeout_ms) : SHMBUS_EINVAL;
}
