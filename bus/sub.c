/* Subscribers: dial every publisher of the topic (found in the registry), receive 80-byte
 * descriptors over nng sub0, and hand each, with the publisher whose connection it came
 * over, to the accounting in sub_acct.c, which acquires the blocks and counts every loss. */
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

/* ---- connections ------------------------------------------------------------------------- */

/* The account of the publisher a connection goes to: known by the connection, else by the
 * dialer that made it (a message can come before nng's callback for its pipe ran). */
static struct sub_acct *acct_of_pipe(bus_sub *s, nng_pipe pipe)
{
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    struct sub_acct *a = bus_acct_by_pipe(s, id);
    if (!a && (a = bus_acct_by_dialer(s, nng_dialer_id(nng_pipe_dialer(pipe)))) != NULL) {
        if (!a->pipe_id || a->pipe_gone) /* else it replaces one still counted */
            bus_pipes_note(&s->pipes, 1); /* connected from here on, whoever saw it first */
        bus_acct_connected(s, a, id);
    }
    return a;
}

/* nng's pipe callbacks: bind a new connection to the publisher its dialer was made for (a
 * connection no dialer of ours made is closed), note a connection that closed. */
static void pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    bus_sub *s = arg;
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    pthread_mutex_lock(&s->lock);
    struct sub_acct *a = ev == NNG_PIPE_EV_ADD_POST ? acct_of_pipe(s, pipe)
                                                    : bus_acct_by_pipe(s, id);
    bool reject = ev == NNG_PIPE_EV_ADD_POST && !a;
    if (ev == NNG_PIPE_EV_REM_POST && a && a->pipe_id == id && !a->pipe_gone) {
        a->pipe_gone = true;
        bus_pipes_note(&s->pipes, -1);
    }
    pthread_mutex_unlock(&s->lock);
    if (reject)
        nng_pipe_close(pipe);
}

/* Count publisher `id` unreachable (once) and have the next recv report it. A failed dial
 * counts only when it fails again on a later round with the publisher still registered: a
 * publisher that is closing has removed its socket file before its entry says so. */
static void unreachable(bus_sub *s, struct sub_peer *pp, uint64_t id, const char *url,
                        const char *why, bool again)
{
    if (!again && pp->failed_id != id) {
        pp->failed_id = id;
        return;
    }
    pthread_mutex_lock(&s->lock);
    snprintf(s->dial_error, sizeof s->dial_error, "dialing %s: %s", url, why);
    if (pp->unreachable_id != id) {
        pp->unreachable_id = id;
        atomic_fetch_add_explicit(&s->reg->unreachable, 1, memory_order_relaxed);
        s->error = SHMBUS_ETRANSPORT;
        s->error_pub = id;
        snprintf(s->error_text, sizeof s->error_text,
                 "topic \"%s\": cannot reach publisher %llu at %s: %s", s->t->name,
                 (unsigned long long)id, url, why);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Dial publisher pp->acct. nng dials in the background and keeps its reasons to itself: look
 * for the usual ones first (no descriptor left, no access to the socket file) to report them;
 * the next sync tries again. A blocking dial could hang on a stopped publisher. */
static void dial(bus_sub *s, struct sub_peer *pp, uint64_t id, const char *url)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || access(url + 6, R_OK | W_OK) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        unreachable(s, pp, id, url, strerror(err), false);
        return;
    }
    close(fd);
    nng_dialer dl;
    int rv = nng_dialer_create(&dl, s->sock, url);
    if (rv == 0) {
        pthread_mutex_lock(&s->lock);
        pp->acct->dialer_id = nng_dialer_id(dl);
        pthread_mutex_unlock(&s->lock);
        rv = nng_dialer_start(dl, NNG_FLAG_NONBLOCK);
        if (rv != 0) {
            pthread_mutex_lock(&s->lock);
            pp->acct->dialer_id = 0;
            pthread_mutex_unlock(&s->lock);
            nng_dialer_close(dl);
        }
    }
    if (rv != 0) {
        unreachable(s, pp, id, url, nng_strerror(rv), false);
        return;
    }
    pp->dial_id = id;
    pp->dialer = dl;
}

static bool connected(bus_sub *s, const struct sub_peer *pp)
{
    pthread_mutex_lock(&s->lock);
    bool c = pp->acct->pipe_id && !pp->acct->pipe_gone;
    pthread_mutex_unlock(&s->lock);
    return c;
}

/* Dialed and not connected yet: nng may be failing to connect for want of a descriptor, and
 * it does not say so. */
static void recheck(bus_sub *s, struct sub_peer *pp, uint64_t id, const char *url)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        unreachable(s, pp, id, url, strerror(errno), true);
    else
        close(fd);
}

/* The publisher counted in pp left: close our dialer; its end is accounted once its
 * connection is gone and its messages are read (bus_acct_settle). */
static void depart(bus_sub *s, struct sub_peer *pp)
{
    pthread_mutex_lock(&s->lock);
    pp->acct->departed = true;
    pp->acct->dialer_id = 0;
    s->departing++;
    if (s->shm)
        bus_sub_shm_depart(s, pp->acct);
    pthread_mutex_unlock(&s->lock);
    if (pp->dial_id && !s->shm)
        nng_dialer_close(pp->dialer);
    pp->dial_id = 0;
    pp->acct = NULL;
}

static bool known(bus_sub *s, uint64_t pub_id)
{
    for (struct sub_acct *a = s->accts; a; a = a->next)
        if (a->pub_id == pub_id)
            return true;
    return false;
}

/* A tombstone of a publisher we never saw: if we existed before it opened, all it published
 * was ours to count (and never came); else it is nothing to us. */
static void unseen_tomb(bus_sub *s, unsigned slot, uint64_t id, uint64_t ticket)
{
    struct reg_pub *e = &s->d->reg->pubs[slot];
    if (!(atomic_load(&e->need[s->reg_idx / 64]) & (1ull << (s->reg_idx % 64))))
        return;
    pthread_mutex_lock(&s->lock);
    bool seen = known(s, id); /* then its end is accounted by bus_acct_settle */
    struct sub_acct *a = !seen && s->sub_id < ticket ? bus_acct_new(s, slot, id, 0, 0) : NULL;
    if (a) {
        a->departed = true;
        s->departing++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!seen && !a)
        bus_tomb_release(s->d, slot, s->reg_idx);
}

/* Dial the topic's live publishers we have not dialed; let go of departed ones. Called by the
 * discovery thread on every registry change, and at open; never twice at once for one s. */
void bus_sub_sync_peers(bus_sub *s)
{
    struct reg_hdr *r = s->d->reg;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        struct reg_pub *e = &r->pubs[i];
        struct sub_peer *pp = &s->peer[i];
        uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
        unsigned st = REG_OWN_STATE(w);
        uint64_t id = 0, last = 0, ticket = 0;
        char url[REG_ENDPOINT_MAX + 8];
        if ((st == REG_LIVE || st == REG_CLOSED) && e->topic == s->topic) {
            id = atomic_load(&e->pub_id);
            last = atomic_load(&e->last_seq);
            ticket = e->open_ticket;
            memcpy(url, "ipc://", 6);
            if (atomic_load_explicit(&e->own, memory_order_acquire) != w ||
                bus_pub_endpoint(s->d, i, id, url + 6, sizeof url - 6) != 0)
                continue; /* changed under us (the next round sees it settled), or corrupt */
        }
        uint64_t live = st == REG_LIVE ? id : 0;
        if (pp->acct && pp->acct->pub_id != live)
            depart(s, pp);
        if (st == REG_CLOSED && id)
            unseen_tomb(s, i, id, ticket);
        if (!live)
            continue;
        if (!pp->acct) {
            pthread_mutex_lock(&s->lock);
            /* start order: a subscriber older than the publisher counts it from seq 1 */
            pp->acct = bus_acct_new(s, i, id, REG_OWN_UID(w), s->sub_id < ticket ? 0 : last);
            if (pp->acct && s->shm) {
                bus_sub_shm_attach(s, pp->acct);
                pp->dial_id = id; /* nothing to dial: its ring is read from here on */
            }
            pthread_mutex_unlock(&s->lock);
            if (!pp->acct) {
                unreachable(s, pp, id, url, "out of memory", true);
                continue;
            }
        }
        if (!pp->dial_id)
            dial(s, pp, id, url);
        else if (!s->shm && !connected(s, pp) && pp->unreachable_id != id)
            recheck(s, pp, id, url);
    }
}

/* ---- open / close ------------------------------------------------------------------------- */

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
        s->sub_id = atomic_fetch_add(&d->reg->next_id, 1);
        atomic_store(&e->sub_id, s->sub_id);
        e->pid = (uint32_t)getpid();
        e->max_held = s->max_held;
        snprintf(e->name, sizeof e->name, "%s", shmpool_domain_pname(d->pd));
        atomic_store(&e->received, 0);
        atomic_store(&e->bytes, 0);
        atomic_store(&e->expired, 0);
        atomic_store(&e->dropped, 0);
        atomic_store(&e->overflow, 0);
        atomic_store(&e->invalid, 0);
        atomic_store(&e->unreachable, 0);
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
        rv = nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, (int)s->queue_depth);
    if (rv == 0)
        rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 10);
    if (rv == 0)
        rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 200);
    if (rv == 0)
        rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, pipe_event, s);
    if (rv == 0)
        rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_event, s);
    if (rv == 0)
        rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recvfd);
    return rv ? bus_errno(SHMBUS_ETRANSPORT, "subscriber socket: %s", nng_strerror(rv)) : 0;
}

/* The topic's geometry, read once from the registry and checked. */
static int read_topic(bus_sub *s, const char *topic)
{
    int rc = bus_topic_copy(s->d, s->topic, &s->tdef);
    if (rc)
        return rc;
    s->t = &s->tdef;
    s->max_held = s->t->max_held;
    s->queue_depth = s->t->queue_depth;
    if (s->max_held < 1 || s->max_held > (1u << 20) || s->queue_depth < 1 ||
        s->queue_depth > (1u << 20))
        return bus_errno(SHMBUS_EBADSEG, "topic \"%s\": max_held %u or queue_depth %u in the "
                         "registry is out of range", topic, s->max_held, s->queue_depth);
    s->pending_cap = s->max_held + 1;
    s->pending = calloc(s->pending_cap, sizeof *s->pending);
    return s->pending ? 0 : SHMBUS_ENOMEM;
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
    int rc = bus_pipes_init(&s->pipes);
    if (rc) {
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    if ((rc = bus_topic_index(d, topic, &s->topic)) != 0 || (rc = read_topic(s, topic)) != 0 ||
        (rc = bus_topic_pool(d, s->t, &s->pool)) != 0 || (rc = claim_entry(d, s)) != 0)
        goto fail_free;
    s->shm = s->t->delivery == BUS_DELIVERY_SHM;
    s->recvfd = -1;
    atomic_store(&s->reg->fd_armed, 0);
    atomic_store(&s->reg->fd_pending, 0);
    for (unsigned i = 0; i < REG_MAX_PUBS; i++)
        atomic_store(&s->reg->attached[i], 0);
    if (s->shm ? (rc = bus_rings_open(d)) != 0 : (rc = open_socket(s)) != 0)
        goto fail_entry;
    atomic_store_explicit(&s->reg->own, REG_OWN(shmpool_domain_uid(d->pd), REG_LIVE),
                          memory_order_release);
    bus_sub_sync_peers(s);
    if (history) {
        pthread_mutex_lock(&s->lock);
        for (struct sub_acct *a = s->accts; a; a = a->next)
            bus_acct_history(s, a);
        pthread_mutex_unlock(&s->lock);
    }
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
    bus_acct_free_all(s);
    free(s->pending);
    pthread_mutex_destroy(&s->lock);
    bus_pipes_destroy(&s->pipes);
    free(s);
    return rc;
}

int bus_sub_close(bus_sub *s)
{
    if (!s)
        return SHMBUS_EINVAL;
    bus_domain *d = s->d;
    bool forked = shmpool_domain_forked(d->pd);
    bool leak = false; /* an nng close that hangs still calls back into s */
    int64_t held = atomic_load(&s->held) - (int64_t)s->npending;
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
        if (s->shm)
            bus_sub_shm_close(s);
        else
            leak = !bus_nng_close(s->sock, BUS_CLOSE_TIMEOUT_MS);
        while (s->npending) {
            bus_msg *m = s->pending[s->pending_head];
            s->pending_head = (s->pending_head + 1) % s->pending_cap;
            s->npending--;
            bus_msg_release(m);
        }
        atomic_store_explicit(&s->reg->own, 0, memory_order_release);
        for (unsigned i = 0; i < REG_MAX_PUBS; i++)
            bus_tomb_release(d, i, s->reg_idx);
        bus_wake_discovery(d);
    }
    if (leak)
        return 0;
    bus_acct_free_all(s);
    if (!forked) {
        pthread_mutex_destroy(&s->lock);
        bus_pipes_destroy(&s->pipes);
    }
    free(s->pending);
    free(s);
    return 0;
}

/* ---- receive ------------------------------------------------------------------------------ */

/* Is publisher pub_id connected now? */
static bool reached(bus_sub *s, uint64_t pub_id)
{
    for (const struct sub_acct *a = s->accts; a; a = a->next)
        if (a->pub_id == pub_id)
            return a->pipe_id && !a->pipe_gone;
    return false;
}

/* A message delivered and not returned yet, or an error to report: 0 / error with *out set,
 * SHMBUS_EAGAIN if neither. */
static int take_pending(bus_sub *s, bus_msg **out)
{
    int rc = SHMBUS_EAGAIN;
    pthread_mutex_lock(&s->lock);
    if (s->error && reached(s, s->error_pub))
        s->error = 0; /* it connected after all: nothing to report any more */
    if (s->error) {
        rc = bus_errno(s->error, "%s", s->error_text);
        s->error = 0;
    } else if (s->npending) {
        *out = s->pending[s->pending_head];
        s->pending_head = (s->pending_head + 1) % s->pending_cap;
        s->npending--;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Nothing is queued: account what only shows now (catch-up after connecting, ends of
 * streams). */
static void settle(bus_sub *s)
{
    pthread_mutex_lock(&s->lock);
    bus_acct_settle(s);
    pthread_mutex_unlock(&s->lock);
}

int bus_sub_recv(bus_sub *s, int timeout_ms, bus_msg **out)
{
    if (!s || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    if (shmpool_domain_forked(s->d->pd))
        return SHMBUS_EFORKED;
    uint64_t deadline = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    for (;;) {
        int rc = take_pending(s, out);
        if (rc != SHMBUS_EAGAIN)
            return rc;
        if (s->shm && bus_sub_shm_read(s))
            continue;
        nng_msg *nm;
        int rv = s->shm ? NNG_EAGAIN : nng_recvmsg(s->sock, &nm, NNG_FLAG_NONBLOCK);
        if (rv == 0) {
            pthread_mutex_lock(&s->lock);
            bus_acct_take(s, acct_of_pipe(s, nng_msg_get_pipe(nm)), nng_msg_body(nm),
                          nng_msg_len(nm));
            pthread_mutex_unlock(&s->lock);
            nng_msg_free(nm);
            continue;
        }
        if (rv != NNG_EAGAIN)
            return bus_errno(bus_nng_status(rv), "receive: %s", nng_strerror(rv));
        settle(s);
        if ((rc = take_pending(s, out)) != SHMBUS_EAGAIN)
            return rc;
        int wait_ms = -1;
        if (timeout_ms == 0)
            return SHMBUS_EAGAIN;
        if (timeout_ms > 0) {
            uint64_t now = now_ns();
            if (now >= deadline)
                return SHMBUS_ETIMEDOUT;
            wait_ms = (int)((deadline - now + 999999) / 1000000);
        }
        if (s->shm) {
            if (bus_sub_shm_wait(s, wait_ms) == SHMBUS_EINTR)
                return SHMBUS_EINTR;
            continue;
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
    if (s->shm)
        return bus_sub_shm_fd(s, fd);
    *fd = s->recvfd;
    return 0;
}

int bus_sub_publishers(bus_sub *s) { return s ? bus_pipes_count(&s->pipes) : SHMBUS_EINVAL; }

int bus_sub_wait_publishers(bus_sub *s, int n, int timeout_ms)
{
    if (!s)
        return SHMBUS_EINVAL;
    int rc = bus_pipes_wait(&s->pipes, n, timeout_ms);
    if (rc == SHMBUS_ETIMEDOUT) {
        pthread_mutex_lock(&s->lock);
        bus_errno(rc, "topic \"%s\": %d of %d publishers connected after %d ms%s%s", s->t->name,
                  bus_pipes_count(&s->pipes), n, timeout_ms, s->dial_error[0] ? "; last " : "",
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
    c->unreachable = atomic_load(&r->unreachable);
    c->bytes = atomic_load(&r->bytes);
    c->held = atomic_load(&r->held);
    c->last_latency_ns = atomic_load(&r->last_latency_ns);
}

int bus_sub_peer_counters(bus_sub *s, bus_peer_counters *out, unsigned max)
{
    if (!s || (!out && max))
        return SHMBUS_EINVAL;
    struct pollfd pfd = {.fd = s->recvfd, .events = POLLIN};
    if (s->shm || poll(&pfd, 1, 0) == 0) /* nothing queued: what is still open can be settled */
        settle(s);
    pthread_mutex_lock(&s->lock);
    unsigned n = 0;
    for (const struct sub_acct *a = s->accts; a; a = a->next, n++)
        if (n < max) {
            out[n] = a->c;
            out[n].last_seq = a->last;
        }
    pthread_mutex_unlock(&s->lock);
    return (int)n;
}
