/* Read-only views of a domain for tools: the configuration summary and the snapshot of a
 * running domain. Reading takes no hold and writes nothing to shared memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

_Static_assert(REG_LAT_BUCKETS == SHMBUS_LAT_BUCKETS, "the snapshot copies the registry's histogram");

_Static_assert((int)SHMBUS_DELIVERY_NNG == (int)BUS_DELIVERY_NNG &&
                   (int)SHMBUS_DELIVERY_SHM == (int)BUS_DELIVERY_SHM,
               "the snapshot copies the delivery kind");

static void topic_def(shmbus_topic_def *o, const char *name, const char *pool, uint32_t history,
                      uint32_t max_held, uint32_t queue_depth, int32_t wait_ms, uint64_t max_size,
                      uint32_t delivery)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->pool, sizeof o->pool, "%s", pool);
    o->history = history;
    o->max_held = max_held;
    o->queue_depth = queue_depth;
    o->full_wait_ms = wait_ms;
    o->max_message_size = max_size;
    o->delivery = delivery;
}

static void topic_cfg_def(shmbus_topic_def *o, const bus_topic_cfg *t)
{
    topic_def(o, t->name, t->pool, t->history, t->max_held, t->queue_depth, t->full_wait_ms,
              t->max_message_size, t->delivery);
}

void bus_config_summarize(const bus_config *c, shmbus_config_summary *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->domain, sizeof o->domain, "%s", c->domain);
    o->mode = c->mode;
    o->gid = c->gid;
    snprintf(o->runtime_dir, sizeof o->runtime_dir, "%s", c->runtime_dir);
    o->npools = c->npools;
    for (unsigned i = 0; i < c->npools; i++) {
        shmbus_pool_def *p = &o->pools[i];
        snprintf(p->name, sizeof p->name, "%s", c->pools[i].name);
        p->nclasses = c->pools[i].nclasses;
        memcpy(p->classes, c->pools[i].classes, p->nclasses * sizeof p->classes[0]);
        shmpool_pool_size(p->classes, p->nclasses, &p->bytes);
    }
    o->ntopics = c->ntopics;
    for (unsigned i = 0; i < c->ntopics; i++)
        topic_cfg_def(&o->topics[i], &c->topics[i]);
    o->has_default_topic = c->has_default_topic;
    if (c->has_default_topic)
        topic_cfg_def(&o->default_topic, &c->default_topic);
    o->total_bytes = bus_config_memory(c);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct held_acc {
    shmbus_block_state *v;
    unsigned n, cap;
};

static int collect_held(const shmbus_block_state *st, void *ctx)
{
    struct held_acc *a = ctx;
    if (a->n == a->cap) {
        unsigned cap = a->cap ? a->cap * 2 : 16;
        shmbus_block_state *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return 1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *st;
    return 0;
}

/* A name read from shared memory, for tools that print it one per line: at most n - 1
 * bytes, and every byte outside printable ASCII shown as '?'. */
static void copy_name(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; i + 1 < n && src[i]; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = 0;
}

static int snap_topics(bus_domain *d, shmbus_snapshot *s)
{
    struct reg_hdr *r = d->reg;
    s->topics = calloc(REG_MAX_TOPICS, sizeof *s->topics);
    if (!s->topics)
        return SHMBUS_ENOMEM;
    for (unsigned i = 0; i < REG_MAX_TOPICS; i++) {
        struct reg_topic *t = &r->topics[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) != REG_LIVE)
            continue;
        char name[sizeof t->name], pool[sizeof t->pool];
        copy_name(name, sizeof name, t->name);
        copy_name(pool, sizeof pool, t->pool);
        if (!memchr(t->name, 0, sizeof t->name) ||
            !bus_name_valid(BUS_NAME_TOPIC, name, NULL, 0))
            continue; /* not a topic any process could have made: a corrupt entry */
        shmbus_topic_info *ti = &s->topics[s->ntopics++];
        topic_def(&ti->def, name, pool, t->history, t->max_held, t->queue_depth,
                  t->full_wait_ms, t->max_message_size, t->delivery);
        ti->pubs = calloc(REG_MAX_PUBS, sizeof *ti->pubs);
        ti->subs = calloc(REG_MAX_SUBS, sizeof *ti->subs);
        if (!ti->pubs || !ti->subs)
            return SHMBUS_ENOMEM;
        for (unsigned k = 0; k < REG_MAX_PUBS; k++) {
            struct reg_pub *e = &r->pubs[k];
            uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
            if (REG_OWN_STATE(w) != REG_LIVE || e->topic != i)
                continue;
            shmbus_pub_info *pi = &ti->pubs[ti->npubs++];
            pi->id = e->pub_id;
            pi->pid = (int)e->pid;
            copy_name(pi->name, sizeof pi->name, e->name);
            pi->alive = bus_owner_live(d, REG_OWN_UID(w));
            pi->published = atomic_load(&e->published);
            pi->bytes = atomic_load(&e->bytes);
            pi->last_seq = atomic_load(&e->last_seq);
            pi->loan_failures = atomic_load(&e->loan_failures);
            pi->hist_released = atomic_load(&e->hist_released);
        }
        for (unsigned k = 0; k < REG_MAX_SUBS; k++) {
            struct reg_sub *e = &r->subs[k];
            uint64_t w = atomic_load_explicit(&e->own, memory_order_acquire);
            if (REG_OWN_STATE(w) != REG_LIVE || e->topic != i)
                continue;
            shmbus_sub_info *si = &ti->subs[ti->nsubs++];
            si->id = e->sub_id;
            si->pid = (int)e->pid;
            copy_name(si->name, sizeof si->name, e->name);
            si->alive = bus_owner_live(d, REG_OWN_UID(w));
            si->received = atomic_load(&e->received);
            si->expired = atomic_load(&e->expired);
            si->dropped = atomic_load(&e->dropped);
            si->overflow = atomic_load(&e->overflow);
            si->invalid = atomic_load(&e->invalid);
            si->unreachable = atomic_load(&e->unreachable);
            si->bytes = atomic_load(&e->bytes);
            si->held = atomic_load(&e->held);
            si->max_held = e->max_held;
            si->last_latency_ns = atomic_load(&e->last_latency_ns);
            for (unsigned b = 0; b < REG_LAT_BUCKETS; b++)
                si->latency[b] = atomic_load_explicit(&e->latency[b], memory_order_relaxed);
        }
    }
    return 0;
}

static int snap_pools(bus_domain *d, shmbus_snapshot *s)
{
    shmbus_pool *pools[SHMPOOL_MAX_POOLS];
    int n = shmpool_domain_pools(d->pd, pools, SHMPOOL_MAX_POOLS);
    if (n < 0)
        return n;
    s->pools = calloc((size_t)n + 1, sizeof *s->pools);
    if (!s->pools)
        return SHMBUS_ENOMEM;
    for (int i = 0; i < n; i++) {
        shmbus_pool_info *pi = &s->pools[s->npools++];
        copy_name(pi->name, sizeof pi->name, shmpool_pool_name(pools[i]));
        int nc = shmpool_pool_stats(pools[i], pi->classes, SHMBUS_MAX_CLASSES);
        pi->nclasses = nc > 0 ? (unsigned)nc : 0;
        struct held_acc a = {0};
        shmpool_pool_walk(pools[i], collect_held, &a);
        pi->held = a.v;
        pi->nheld = a.n;
    }
    return 0;
}

int bus_snapshot_take(bus_domain *d, shmbus_snapshot **out)
{
    if (!d || !out)
        return SHMBUS_EINVAL;
    *out = NULL;
    shmbus_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return SHMBUS_ENOMEM;
    snprintf(s->domain, sizeof s->domain, "%s", d->name);
    s->taken_ns = now_ns();
    int rc = snap_topics(d, s);
    if (rc == 0)
        rc = snap_pools(d, s);
    if (rc == 0) {
        s->participants = calloc(SHMPOOL_MAX_PARTICIPANTS, sizeof *s->participants);
        int n = s->participants
                    ? shmpool_participants(d->pd, s->participants, SHMPOOL_MAX_PARTICIPANTS)
                    : SHMBUS_ENOMEM;
        if (n < 0)
            rc = n;
        else
            s->nparticipants = n < SHMPOOL_MAX_PARTICIPANTS ? (unsigned)n
                                                            : SHMPOOL_MAX_PARTICIPANTS;
        for (unsigned i = 0; i < s->nparticipants; i++) {
            shmbus_participant_info *p = &s->participants[i];
            char name[sizeof p->name]; /* written by the participant, in shared memory */
            copy_name(name, sizeof name, p->name);
            memcpy(p->name, name, sizeof name);
            s->alive += p->alive;
        }
    }
    if (rc) {
        bus_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bus_snapshot_free(shmbus_snapshot *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->ntopics; i++) {
        free(s->topics[i].pubs);
        free(s->topics[i].subs);
    }
    free(s->topics);
    for (unsigned i = 0; i < s->npools; i++)
        free(s->pools[i].held);
    free(s->pools);
    free(s->participants);
    free(s);
}

uint64_t bus_latency_edge_ns(unsigned bucket) { return reg_lat_edge_ns(bucket); }

uint64_t bus_latency_percentile_ns(const uint64_t *hist, double p)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < REG_LAT_BUCKETS; b++)
        total += hist[b];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)((double)total * p / 100.0 + 0.5), acc = 0;
    if (want == 0)
        want = 1;
    for (unsigned b = 0; b < REG_LAT_BUCKETS; b++) {
        acc += hist[b];
        if (acc >= want) /* the bucket's middle: within 12% of any value in it */
            return (reg_lat_edge_ns(b) + reg_lat_edge_ns(b + 1)) / 2;
    }
    return reg_lat_edge_ns(REG_LAT_BUCKETS - 1);
}
