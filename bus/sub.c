/* Subscribers: dial every publisher of the topic (found in the registry), receive 80-byte
 * descriptors over nng sub0, acquire the blocks they name, and account for every loss:
 * expired (the block was released before we got to it), dropped (a sequence gap: nng
 * dropped descriptors), overflow (we already held max_held messages). */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include <nng/protocol/pubsub0/sub.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Dial the topic's live publishers we have not dialed; drop dialers of departed ones.
 * Called by the discovery thread on every registry change, and at open. */
void bus_sub_sync_peers(bus_sub *s)
{
    struct reg_hdr *r = s->d->reg;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        struct reg_pub *e = &r->pubs[i];
        struct sub_peer *pp = &s->peer[i];
        uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
        uint64_t id = 0;
        char url[REG_ENDPOINT_MAX + 8];
        if (REG_OWN_STATE(w) == REG_LIVE && e->topic == s->topic) {
            id = e->pub_id;
            memcpy(url, "ipc://", 6);
            memcpy(url + 6, e->endpoint, REG_ENDPOINT_MAX);
            url[sizeof url - 1] = 0;
            if (atomic_load_explicit(&e->own, memory_order_acquire) != w)
                continue; /* changed under us: the next round sees it settled */
        }
        if (pp->dial_id == id)
            continue;
        if (pp->dial_id) {
            nng_dialer_close(pp->dialer);
            pp->dial_id = 0;
        }
        if (!id)
            continue;
        /* nng dials in the background and keeps its reasons to itself: look for the usual
         * ones first (no descriptor left, no access to the socket file) to report them. A
         * blocking dial could hang on a stopped publisher, so we do not try one. */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || access(url + 6, R_OK | W_OK) != 0)
            snprintf(s->dial_error, sizeof s->dial_error, "dialing %s: %s", url, strerror(errno));
        if (fd >= 0)
            close(fd);
        int rv = nng_dial(s->sock, url, &pp->dialer, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            snprintf(s->dial_error, sizeof s->dial_error, "dialing %s: %s", url, nng_strerror(rv));
        else
            pp->dial_id = id;
    }
    pthread_mutex_unlock(&s->lock);
}

static int claim_entry(bus_domain *d, bus_sub *s)
{
    uint64_t uid = shmpool_domain_uid(d->pd);
    for (unsigned i = 0; i < REG_MAX_SUBS; i++) {
        struct reg_sub *e = &d->reg->subs[i];
        uint64_t w = 0;
        if (!atomic_compare_exchange_strong(&e->own, &w, REG_OWN(uid, REG_CLAIMED)))
            continue;
        s->reg = e;
        s->reg_idx = i;
        e->topic = s->topic;
        e->sub_id = atomic_fetch_add(&d->reg->next_id, 1);
        e->pid = (uint32_t)getpid();
        e->max_held = s->t->max_held;
        snprintf(e->name, sizeof e->name, "%s", shmpool_domain_pname(d->pd));
        atomic_store(&e->received, 0);
        atomic_store(&e->bytes, 0);
        atomic_store(&e->expired, 0);
        atomic_store(&e->dropped, 0);
        atomic_store(&e->overflow, 0);
        atomic_store(&e->invalid, 0);
        atomic_store(&e->held, 0);
        atomic_store(&e->last_latency_ns, 0);
        for (unsigned k = 0; k < REG_LAT_BUCKETS; k++)
            atomic_store(&e->latency[k], 0);
        return 0;
    }
    return bus_errno(SHMBUS_ELIMIT, "the registry holds %d subscribers at most", REG_MAX_SUBS);
}

static int open_socket(bus_sub *s)
{
    int rv = nng_sub0_open(&s->sock);
    if (rv == 0)
        rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    if (rv == 0)
        rv = nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, (int)s->t->queue_depth);
    if (rv == 0)
        rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 10);
    if (rv == 0)
        rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 200);
    if (rv == 0)
        rv = bus_watch_pipes(s->sock, &s->peers);
    if (rv == 0)
        rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recvfd);
    return rv ? bus_errno(SHMBUS_ETRANSPORT, "subscriber socket: %s", nng_strerror(rv)) : 0;
}

/* Note sequence `seq` of publisher pub_id: counts the gap before it as dropped. Returns
 * false for a sequence already seen (a live copy of a message delivered from history). */
static bool advance(bus_sub *s, struct sub_peer *pp, uint64_t pub_id, uint64_t seq)
{
    pthread_mutex_lock(&s->lock);
    if (pp->seq_id != pub_id) { /* first message of this publisher: no gap before it */
        pp->seq_id = pub_id;
        pp->last_seq = seq - 1;
    }
    bool fresh = seq > pp->last_seq;
    uint64_t gap = fresh ? seq - pp->last_seq - 1 : 0;
    if (fresh)
        pp->last_seq = seq;
    pthread_mutex_unlock(&s->lock);
    if (gap)
        atomic_fetch_add_explicit(&s->reg->dropped, gap, memory_order_relaxed);
    return fresh;
}

/* Could publisher pub_id have sent sequence seq? Decides, for a descriptor we cannot acquire,
 * whether it is a real message we lost (counted by cause) or a forgery (counted invalid and
 * never allowed to move the sequence state, which would hide the real messages after it).
 * A live publisher's registry entry holds the last sequence it published, stored before the
 * descriptor is sent. */
static bool plausible(bus_sub *s, const struct sub_peer *pp, uint64_t pub_id, uint64_t seq,
                      uint64_t owner_uid)
{
    struct reg_pub *e = &s->d->reg->pubs[pub_id & 0xff];
    uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
    if (REG_OWN_STATE(w) == REG_LIVE && e->pub_id == pub_id && atomic_load(&e->own) == w)
        return REG_OWN_UID(w) == owner_uid && seq <= atomic_load(&e->last_seq);
    /* its publisher is gone: only sequences close after the last one we saw from it */
    return pp->seq_id == pub_id && seq > pp->last_seq &&
           seq - pp->last_seq <= (uint64_t)BUS_MAX_HISTORY + s->t->queue_depth;
}

/* Validate a wire message and, if it is new, acquire its block. Returns 0 with *out set, or
 * SHMBUS_EAGAIN after counting why the message was not delivered. */
static int deliver(bus_sub *s, const void *buf, size_t len, bus_msg **out)
{
    struct reg_sub *rs = s->reg;
    shmpool_desc pd;
    unsigned topic;
    uint64_t pub_id;
    if (bus_wire_decode(buf, len, &pd, &topic, &pub_id) != 0 || topic != s->topic ||
        (pub_id & 0xff) >= REG_MAX_PUBS || pd.user == 0 || pd.pool_id != shmpool_pool_id(s->pool)) {
        atomic_fetch_add_explicit(&rs->invalid, 1, memory_order_relaxed);
        return SHMBUS_EAGAIN;
    }
    uint64_t seq = pd.user;
    struct sub_peer *pp = &s->peer[pub_id & 0xff];
    _Atomic uint64_t *lost = NULL;
    shmbus_block *b = NULL;
    if (atomic_load(&s->held) >= (int64_t)s->t->max_held) {
        lost = &rs->overflow;
    } else {
        int rc = shmpool_acquire(s->d->pd, &pd, &b);
        if (rc == SHMBUS_EEXPIRED)
            lost = &rs->expired;
        else if (rc) {
            atomic_fetch_add_explicit(&rs->invalid, 1, memory_order_relaxed);
            return SHMBUS_EAGAIN;
        }
    }
    if (lost) { /* not delivered: a real message we lost, or a forgery? */
        if (!plausible(s, pp, pub_id, seq, pd.owner_uid))
            atomic_fetch_add_explicit(&rs->invalid, 1, memory_order_relaxed);
        else if (advance(s, pp, pub_id, seq))
            atomic_fetch_add_explicit(lost, 1, memory_order_relaxed);
        return SHMBUS_EAGAIN;
    }
    /* The block is real (acquire checked it against its header). The trailer's publisher id
     * must belong to the block's loaner, else the trailer is forged. */
    struct reg_pub *e = &s->d->reg->pubs[pub_id & 0xff];
    uint64_t w = atomic_load(&e->own);
    bool bound = !(REG_OWN_STATE(w) == REG_LIVE && e->pub_id == pub_id) ||
                 REG_OWN_UID(w) == pd.owner_uid;
    if (!bound || !advance(s, pp, pub_id, seq)) {
        if (!bound)
            atomic_fetch_add_explicit(&rs->invalid, 1, memory_order_relaxed);
        shmpool_block_release(b);
        return SHMBUS_EAGAIN;
    }
    bus_msg *m = bus_msg_wrap(b);
    if (!m) {
        shmpool_block_release(b);
        return SHMBUS_ENOMEM;
    }
    m->sub = s;
    m->seq = seq;
    m->pub_id = pub_id;
    atomic_fetch_add(&s->held, 1);
    atomic_fetch_add_explicit(&rs->held, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->received, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->bytes, pd.length, memory_order_relaxed);
    uint64_t now = now_ns(), lat = now > pd.timestamp_ns ? now - pd.timestamp_ns : 0;
    atomic_store_explicit(&rs->last_latency_ns, lat, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->latency[reg_lat_bucket(lat)], 1, memory_order_relaxed);
    *out = m;
    return 0;
}

/* Late join: take the messages the topic's publishers still hold, oldest first. */
static void load_history(bus_sub *s)
{
    struct reg_hdr *r = s->d->reg;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        struct reg_pub *e = &r->pubs[i];
        uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
        if (REG_OWN_STATE(w) != REG_LIVE || e->topic != s->topic)
            continue;
        uint64_t last = atomic_load(&e->hist_next);
        uint64_t k = e->history;
        if (k == 0 || k > BUS_MAX_HISTORY)
            continue; /* a corrupt entry: its history cannot be read safely */
        for (uint64_t seq = last > k ? last - k + 1 : 1; seq && seq <= last; seq++) {
            struct reg_hist *h = &e->hist[seq % k];
            uint8_t wire[BUS_WIRE_SIZE];
            uint64_t v1 = atomic_load(&h->version);
            for (unsigned j = 0; j < BUS_WIRE_SIZE / 8; j++) {
                uint64_t x = atomic_load(&h->w[j]);
                memcpy(wire + j * 8, &x, 8);
            }
            if ((v1 & 1) || v1 != atomic_load(&h->version))
                continue; /* being rewritten: it is about to leave the history anyway */
            bus_msg *m;
            if (deliver(s, wire, sizeof wire, &m) == 0)
                s->pending[s->npending++] = m;
            if (s->npending >= s->t->max_held)
                return;
        }
    }
}

int bus_sub_open(bus_domain *d, const char *topic, bool history, bus_sub **out)
{
    if (!d || !topic || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (shmpool_domain_forked(d->pd))
        return SHMBUS_EFORKED;
    if (d->observer)
        return SHMBUS_EACCES;
    bus_sub *s = calloc(1, sizeof *s);
    if (!s)
        return SHMBUS_ENOMEM;
    s->d = d;
    pthread_mutex_init(&s->lock, NULL);
    int rc = bus_topic_index(d, topic, &s->topic);
    if (rc)
        goto fail_free;
    if ((rc = bus_topic_copy(d, s->topic, &s->tdef)) != 0)
        goto fail_free;
    s->t = &s->tdef;
    if ((rc = bus_topic_pool(d, s->t, &s->pool)) != 0)
        goto fail_free;
    s->pending = calloc(s->t->max_held, sizeof *s->pending);
    if (!s->pending) {
        rc = SHMBUS_ENOMEM;
        goto fail_free;
    }
    if ((rc = claim_entry(d, s)) != 0)
        goto fail_free;
    if ((rc = open_socket(s)) != 0)
        goto fail_entry;
    atomic_store_explicit(&s->reg->own, REG_OWN(shmpool_domain_uid(d->pd), REG_LIVE),
                          memory_order_release);
    bus_sub_sync_peers(s);
    if (history)
        load_history(s);
    pthread_mutex_lock(&d->lock);
    s->next = d->subs;
    d->subs = s;
    d->nsubs++;
    pthread_mutex_unlock(&d->lock);
    bus_wake_discovery(d);
    *out = s;
    return 0;

fail_entry:
    if (s->sock.id)
        nng_close(s->sock);
    atomic_store(&s->reg->own, 0);
fail_free:
    free(s->pending);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

int bus_sub_close(bus_sub *s)
{
    if (!s)
        return SHMBUS_EINVAL;
    bus_domain *d = s->d;
    bool forked = shmpool_domain_forked(d->pd);
    bool leak = false; /* an nng close that hangs still calls back into s->peers */
    int64_t held = atomic_load(&s->held) - (int64_t)(s->npending - s->pending_head);
    if (held > 0 && !forked)
        return bus_errno(SHMBUS_EBUSY, "subscriber on \"%s\": %lld messages not released",
                         s->t->name, (long long)held);
    if (!forked) { /* in a forked child d->lock may be a copy held by a parent's thread */
        pthread_mutex_lock(&d->lock);
        for (bus_sub **pp = &d->subs; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        d->nsubs--;
        pthread_mutex_unlock(&d->lock);
        leak = !bus_nng_close(s->sock, BUS_CLOSE_TIMEOUT_MS);
        while (s->pending_head < s->npending)
            bus_msg_release(s->pending[s->pending_head++]);
        atomic_store_explicit(&s->reg->own, 0, memory_order_release);
        bus_wake_discovery(d);
        pthread_mutex_destroy(&s->lock);
    }
    free(s->pending);
    if (!leak)
        free(s);
    return 0;
}

int bus_sub_recv(bus_sub *s, int timeout_ms, bus_msg **out)
{
    if (!s || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (shmpool_domain_forked(s->d->pd))
        return SHMBUS_EFORKED;
    pthread_mutex_lock(&s->lock);
    if (s->pending_head < s->npending) {
        *out = s->pending[s->pending_head++];
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    pthread_mutex_unlock(&s->lock);
    int rc;
    uint64_t deadline = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    for (;;) {
        nng_msg *nm;
        int rv = nng_recvmsg(s->sock, &nm, NNG_FLAG_NONBLOCK);
        if (rv == 0) {
            rc = deliver(s, nng_msg_body(nm), nng_msg_len(nm), out);
            nng_msg_free(nm);
            if (rc != SHMBUS_EAGAIN)
                return rc;
            continue;
        }
        if (rv != NNG_EAGAIN)
            return bus_errno(bus_nng_status(rv), "receive: %s", nng_strerror(rv));
        int wait_ms = -1;
        if (timeout_ms == 0)
            return SHMBUS_EAGAIN;
        if (timeout_ms > 0) {
            uint64_t now = now_ns();
            if (now >= deadline)
                return SHMBUS_ETIMEDOUT;
            wait_ms = (int)((deadline - now + 999999) / 1000000);
        }
        struct pollfd pfd = {.fd = s->recvfd, .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) < 0)
            return errno == EINTR ? SHMBUS_EINTR : bus_errno(SHMBUS_ESYS, "receive: poll");
    }
}

int bus_sub_fd(bus_sub *s, int *fd)
{
    if (!s || !fd)
        return SHMBUS_EINVAL;
    *fd = s->recvfd;
    return 0;
}

int bus_sub_publishers(bus_sub *s) { return s ? atomic_load(&s->peers) : SHMBUS_EINVAL; }

int bus_sub_wait_publishers(bus_sub *s, int n, int timeout_ms)
{
    if (!s)
        return SHMBUS_EINVAL;
    int rc = bus_wait_peers(&s->peers, n, timeout_ms);
    if (rc == SHMBUS_ETIMEDOUT) {
        pthread_mutex_lock(&s->lock);
        bus_errno(rc, "topic \"%s\": %d of %d publishers connected after %d ms%s%s", s->t->name,
                  atomic_load(&s->peers), n, timeout_ms, s->dial_error[0] ? "; last " : "",
                  s->dial_error);
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

void bus_sub_counters_get(const bus_sub *s, shmbus_sub_counters *c)
{
    struct reg_sub *r = s->reg;
    c->received = atomic_load(&r->received);
    c->expired = atomic_load(&r->expired);
    c->dropped = atomic_load(&r->dropped);
    c->overflow = atomic_load(&r->overflow);
    c->invalid = atomic_load(&r->invalid);
    c->bytes = atomic_load(&r->bytes);
    c->held = atomic_load(&r->held);
    c->last_latency_ns = atomic_load(&r->last_latency_ns);
}
