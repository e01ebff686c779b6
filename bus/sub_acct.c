/* A subscriber's accounting per publisher (struct sub_acct): every descriptor that comes over
 * a publisher's connection is checked against that publisher (its id, topic, the block's
 * owner and sequence tag) and every sequence it published after the subscriber first saw it
 * is counted once: received, expired, dropped, overflow or invalid. Gaps before the first
 * live message are filled from the publisher's history ring; the end of a departed
 * publisher's stream is read from its tombstone. Callers hold s->lock. docs/delivery.md. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SUB_ACCTS_MAX 1024 /* accounts kept per subscriber; the oldest closed ones go first */

enum take { TAKEN, EXPIRED, OVERFLOW, BAD };

#define COUNT(s, a, field, n)                                                                \
    do {                                                                                     \
        (a)->c.field += (n);                                                                 \
        atomic_fetch_add_explicit(&(s)->reg->field, (n), memory_order_relaxed);              \
    } while (0)

/* A descriptor over a's connection that is not a message of a's (forged, replayed, another
 * publisher's or topic's): invalid for the subscriber, outside the pair's identity. */
#define FORGED(s, a)                                                                         \
    do {                                                                                     \
        (a)->c.forged++;                                                                     \
        atomic_fetch_add_explicit(&(s)->reg->invalid, 1, memory_order_relaxed);              \
    } while (0)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sub_acct *bus_acct_new(bus_sub *s, unsigned slot, uint64_t pub_id, uint64_t owner_uid,
                              uint64_t base)
{
    if (s->naccts >= SUB_ACCTS_MAX) {
        struct sub_acct **victim = NULL;
        for (struct sub_acct **pa = &s->accts; *pa; pa = &(*pa)->next)
            if ((*pa)->closed)
                victim = pa;
        if (victim) {
            struct sub_acct *v = *victim;
            *victim = v->next;
            free(v);
            s->naccts--;
        }
    }
    struct sub_acct *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->pub_id = pub_id;
    a->owner_uid = owner_uid;
    a->slot = slot;
    a->base = a->last = a->last_live = base;
    a->c.publisher = pub_id;
    a->c.base = base;
    a->next = s->accts;
    s->accts = a;
    s->naccts++;
    return a;
}

void bus_acct_free_all(bus_sub *s)
{
    while (s->accts) {
        struct sub_acct *a = s->accts;
        s->accts = a->next;
        if (a->departed && !a->closed)
            bus_tomb_release(s->d, a->slot, s->reg_idx);
        free(a);
    }
    s->naccts = 0;
}

struct sub_acct *bus_acct_by_pipe(bus_sub *s, uint32_t pipe_id)
{
    for (struct sub_acct *a = s->accts; a && pipe_id; a = a->next)
        if (a->pipe_id == pipe_id || a->prev_pipe_id == pipe_id)
            return a;
    return NULL;
}

struct sub_acct *bus_acct_by_dialer(bus_sub *s, int dialer_id)
{
    for (struct sub_acct *a = s->accts; a && dialer_id > 0; a = a->next)
        if (a->dialer_id == dialer_id)
            return a;
    return NULL;
}

static struct reg_pub *entry_of(bus_sub *s, const struct sub_acct *a, unsigned *state);

void bus_acct_connected(bus_sub *s, struct sub_acct *a, uint32_t pipe_id)
{
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    a->prev_pipe_id = a->pipe_id;
    a->pipe_id = pipe_id;
    a->pipe_gone = false;
    a->conn_seq = e ? atomic_load(&e->last_seq) : a->last;
}

/* Decode a wire message and check that it is a's: topic, publisher id, pool, the block's
 * owner and the publisher tag of its sequence field. */
static bool wire_of(bus_sub *s, const struct sub_acct *a, const void *buf, size_t len,
                    shmpool_desc *pd, uint64_t *seq)
{
    unsigned topic;
    uint64_t pub_id;
    if (bus_wire_decode(buf, len, pd, &topic, &pub_id) != 0 || topic != s->topic ||
        pub_id != a->pub_id || pd->pool_id != shmpool_pool_id(s->pool) ||
        pd->owner_uid != a->owner_uid || BUS_USER_TAG(pd->user) != BUS_PUB_TAG(a->pub_id))
        return false;
    *seq = BUS_USER_SEQ(pd->user);
    return *seq != 0;
}

/* a's registry entry, if it is still a's publisher's (live or its tombstone), else NULL. */
static struct reg_pub *entry_of(bus_sub *s, const struct sub_acct *a, unsigned *state)
{
    struct reg_pub *e = &s->d->reg->pubs[a->slot];
    uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
    *state = REG_OWN_STATE(w);
    if ((*state == REG_LIVE || *state == REG_CLOSED) && atomic_load(&e->pub_id) == a->pub_id &&
        atomic_load(&e->own) == w)
        return e;
    return NULL;
}

/* Could a's publisher have published seq? Its entry holds the last sequence it published
 * (stored before the descriptor is sent); once the entry is gone, only sequences close after
 * the last one we saw. */
static bool plausible(bus_sub *s, const struct sub_acct *a, uint64_t seq)
{
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    if (e)
        return seq <= atomic_load(&e->last_seq);
    return seq - a->last <= (uint64_t)BUS_MAX_HISTORY + s->queue_depth;
}

static void push(bus_sub *s, bus_msg *m)
{
    s->pending[(s->pending_head + s->npending) % s->pending_cap] = m;
    s->npending++;
}

/* Acquire the block pd names for the user, within max_held. */
static enum take take_block(bus_sub *s, const shmpool_desc *pd, uint64_t seq, uint64_t pub_id)
{
    struct reg_sub *rs = s->reg;
    if (atomic_load(&s->held) >= (int64_t)s->max_held || s->npending >= s->pending_cap)
        return OVERFLOW;
    shmbus_block *b;
    int rc = shmpool_acquire(s->d->pd, pd, &b);
    if (rc == SHMBUS_EEXPIRED)
        return EXPIRED;
    if (rc)
        return BAD;
    bus_msg *m = bus_msg_wrap(b);
    if (!m) {
        shmpool_block_release(b);
        return OVERFLOW; /* no memory to hold it */
    }
    m->sub = s;
    m->seq = seq;
    m->pub_id = pub_id;
    atomic_fetch_add(&s->held, 1);
    atomic_fetch_add_explicit(&rs->held, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->bytes, pd->length, memory_order_relaxed);
    uint64_t now = now_ns(), lat = now > pd->timestamp_ns ? now - pd->timestamp_ns : 0;
    atomic_store_explicit(&rs->last_latency_ns, lat, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->latency[reg_lat_bucket(lat)], 1, memory_order_relaxed);
    push(s, m);
    return TAKEN;
}

/* Sequence q from a's history ring in the registry (EXPIRED if it is no longer there). */
static enum take ring_take(bus_sub *s, const struct sub_acct *a, uint64_t q)
{
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    unsigned k = e ? e->history : 0;
    if (!e || st != REG_LIVE || k < 1 || k > BUS_MAX_HISTORY)
        return EXPIRED;
    struct reg_hist *h = &e->hist[q % k];
    uint8_t wire[BUS_WIRE_SIZE];
    uint64_t v1 = atomic_load(&h->version);
    for (unsigned j = 0; j < BUS_WIRE_SIZE / 8; j++) {
        uint64_t x = atomic_load(&h->w[j]);
        memcpy(wire + j * 8, &x, 8);
    }
    shmpool_desc pd;
    uint64_t seq;
    if ((v1 & 1) || v1 != atomic_load(&h->version) || !wire_of(s, a, wire, sizeof wire, &pd, &seq) ||
        seq != q)
        return EXPIRED; /* being rewritten: it is leaving the history anyway */
    enum take r = take_block(s, &pd, q, a->pub_id);
    return r == BAD ? EXPIRED : r;
}

static void count_take(bus_sub *s, struct sub_acct *a, enum take r)
{
    switch (r) {
    case TAKEN: COUNT(s, a, received, 1); break;
    case EXPIRED: COUNT(s, a, expired, 1); break;
    case OVERFLOW: COUNT(s, a, overflow, 1); break;
    case BAD: COUNT(s, a, invalid, 1); break;
    }
}

/* Count sequences (from, to] that never reached us: expired if published before we were
 * connected (only the history could have had them), else dropped (nng dropped them). */
static void count_missing(bus_sub *s, struct sub_acct *a, uint64_t from, uint64_t to)
{
    uint64_t split = a->conn_seq < from ? from : a->conn_seq > to ? to : a->conn_seq;
    if (split > from)
        COUNT(s, a, expired, split - from);
    if (to > split)
        COUNT(s, a, dropped, to - split);
}

/* Account a's sequences after a->last up to `upto` from its history ring, oldest first;
 * what the ring no longer holds is missing. */
static void catch_up(bus_sub *s, struct sub_acct *a, uint64_t upto)
{
    if (upto <= a->last)
        return;
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    uint64_t k = e && e->history >= 1 && e->history <= BUS_MAX_HISTORY ? e->history : 0;
    uint64_t first = upto >= k ? upto - k + 1 : 1;
    if (first > a->last + 1) {
        count_missing(s, a, a->last, first - 1);
        a->last = first - 1;
    }
    for (uint64_t q = a->last + 1; q <= upto; q++) {
        enum take r = ring_take(s, a, q);
        if (r == EXPIRED)
            count_missing(s, a, q - 1, q);
        else
            count_take(s, a, r);
        a->last = q;
    }
}

/* a's publisher says it had published up to `upto` when we connected: whatever of that did
 * not come before the marker will not come over the connection. */
static void sync_marker(bus_sub *s, struct sub_acct *a, unsigned topic, uint64_t id,
                        uint64_t upto)
{
    if (topic != s->topic || id != a->pub_id || !plausible(s, a, upto) ||
        upto > BUS_SEQ_MAX) {
        FORGED(s, a);
        return;
    }
    if (upto <= a->last)
        return;
    if (!a->started) {
        a->conn_seq = upto; /* these were published before the connection */
        catch_up(s, a, upto);
    } else {
        COUNT(s, a, dropped, upto - a->last); /* nng dropped them */
    }
    a->started = true;
    a->last = upto;
    if (a->last_live < upto)
        a->last_live = upto;
}

void bus_acct_take(bus_sub *s, struct sub_acct *a, const void *buf, size_t len)
{
    shmpool_desc pd;
    uint64_t seq;
    if (!a) { /* over no connection of ours */
        atomic_fetch_add_explicit(&s->reg->invalid, 1, memory_order_relaxed);
        return;
    }
    unsigned topic;
    uint64_t id, upto;
    if (bus_wire_sync_decode(buf, len, &topic, &id, &upto)) {
        sync_marker(s, a, topic, id, upto);
        return;
    }
    if (!wire_of(s, a, buf, len, &pd, &seq) || seq <= a->last_live) { /* forged or replayed */
        FORGED(s, a);
        return;
    }
    if (seq <= a->last) { /* a live copy of a message the catch-up accounted */
        a->last_live = seq;
        return;
    }
    enum take r = take_block(s, &pd, seq, a->pub_id);
    if (r == BAD || (r != TAKEN && !plausible(s, a, seq))) {
        FORGED(s, a);
        return;
    }
    bus_msg *live = r == TAKEN ? s->pending[(s->pending_head + --s->npending) % s->pending_cap]
                               : NULL;
    if (!a->started)
        catch_up(s, a, seq - 1);
    else if (seq - 1 > a->last)
        COUNT(s, a, dropped, seq - 1 - a->last); /* nng dropped them */
    a->started = true;
    a->last = a->last_live = seq;
    if (live)
        push(s, live);
    count_take(s, a, r);
}

/* ---- shm delivery: reading a publisher's ring ------------------------------------------- */

/* The ring's head, if a's entry is still its publisher's, no further than what the entry
 * says it published (a corrupt head must not make us count sequences never published). */
static bool ring_head(bus_sub *s, const struct sub_acct *a, uint64_t *head)
{
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    if (!e)
        return false;
    uint64_t h = bus_ring_head(&s->d->rings->ring[a->slot]), last = atomic_load(&e->last_seq);
    *head = h < last ? h : last;
    return true;
}

bool bus_acct_ring_ready(bus_sub *s, const struct sub_acct *a)
{
    uint64_t head;
    return !a->closed && ring_head(s, a, &head) && head > a->last;
}

bool bus_acct_ring_next(bus_sub *s, struct sub_acct *a)
{
    uint64_t head;
    if (a->closed || !ring_head(s, a, &head) || head <= a->last)
        return false;
    uint64_t depth = s->queue_depth;
    if (head - a->last > depth) { /* overwritten before we read them */
        uint64_t lost = head - depth - a->last;
        COUNT(s, a, dropped, lost);
        a->last += lost;
    }
    uint64_t q = a->last + 1, seq;
    uint8_t wire[BUS_WIRE_SIZE];
    shmpool_desc pd;
    unsigned st;
    enum bus_ring_read r = bus_ring_read(&s->d->rings->ring[a->slot], (unsigned)depth, q, wire);
    if (!entry_of(s, a, &st))
        return false; /* the entry was taken over while we read: its ring is another's */
    a->last = a->last_live = q;
    if (r == BUS_RING_LAPPED)
        COUNT(s, a, dropped, 1);
    else if (r == BUS_RING_BAD || !wire_of(s, a, wire, sizeof wire, &pd, &seq) || seq != q)
        COUNT(s, a, invalid, 1); /* corrupt: sequence q came, not as its descriptor */
    else
        count_take(s, a, take_block(s, &pd, q, a->pub_id));
    return true;
}

void bus_acct_history(bus_sub *s, struct sub_acct *a)
{
    unsigned st;
    struct reg_pub *e = entry_of(s, a, &st);
    uint64_t k = e && e->history >= 1 && e->history <= BUS_MAX_HISTORY ? e->history : 0;
    for (uint64_t q = a->base >= k ? a->base - k + 1 : 1; k && q && q <= a->base; q++) {
        enum take r = ring_take(s, a, q);
        if (r == OVERFLOW)
            return;
        if (r == TAKEN) {
            a->c.history++;
            atomic_fetch_add_explicit(&s->reg->received, 1, memory_order_relaxed);
        }
    }
}

void bus_acct_settle(bus_sub *s)
{
    if (!s->departing)
        return;
    for (struct sub_acct *a = s->accts; a; a = a->next) {
        if (a->closed)
            continue;
        unsigned st;
        struct reg_pub *e = entry_of(s, a, &st);
        if (!a->departed)
            continue;
        if (!a->ring && a->pipe_id && !a->pipe_gone)
            continue; /* its messages may still come */
        if (a->ring && bus_acct_ring_ready(s, a))
            continue; /* its ring holds some still: the next recv reads them */
        if (e && st == REG_LIVE)
            continue; /* not entombed yet */
        if (!e && REG_OWN_STATE(atomic_load(&s->d->reg->pubs[a->slot].own)) == REG_CLAIMED &&
            atomic_load(&s->d->reg->pubs[a->slot].pub_id) == a->pub_id)
            continue; /* a reaper is entombing it */
        if (e) { /* its tombstone: the last sequence it published */
            uint64_t final = atomic_load(&e->last_seq);
            if (final > a->last && final <= BUS_SEQ_MAX)
                COUNT(s, a, dropped, final - a->last); /* never came */
            if (final > a->last)
                a->last = final;
        }
        a->closed = true;
        a->c.closed = true;
        s->departing--;
        bus_tomb_release(s->d, a->slot, s->reg_idx);
    }
}
