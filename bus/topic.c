/* Topics: registering a topic's definition in the registry (or checking it against the one
 * there), a checked process-local copy of an entry, and the pool a topic uses. Every registry
 * entry is checked before use: another process of the domain may have written it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int topic_differs(const struct reg_topic *t, const bus_topic_cfg *c)
{
    return strcmp(t->pool, c->pool) || t->history != c->history ||
           t->max_message_size != c->max_message_size || t->max_held != c->max_held ||
           t->full_wait_ms != c->full_wait_ms || t->queue_depth != c->queue_depth ||
           t->delivery != c->delivery;
}

static const char *delivery_name(uint32_t d) { return d == BUS_DELIVERY_SHM ? "shm" : "nng"; }

static int incompatible(const struct reg_topic *t, const bus_topic_cfg *c)
{
    return bus_errno(SHMBUS_EINCOMPAT,
                     "topic \"%s\": this configuration defines it (pool %s, history %u, "
                     "max_message_size %llu, max_held %u, wait %d ms, queue %u, delivery %s) "
                     "unlike the running domain (pool %s, history %u, max_message_size %llu, "
                     "max_held %u, wait %d ms, queue %u, delivery %s)",
                     t->name, c->pool, c->history, (unsigned long long)c->max_message_size,
                     c->max_held, c->full_wait_ms, c->queue_depth, delivery_name(c->delivery),
                     t->pool, t->history, (unsigned long long)t->max_message_size, t->max_held,
                     t->full_wait_ms, t->queue_depth, delivery_name(t->delivery));
}

struct topic_req {
    bus_domain *d;
    const bus_topic_cfg *cfg;
    const char *name;
    unsigned idx;
};

/* Is registry topic t the topic `name` (a valid name, so the bounded compare is exact)? */
static bool topic_named(const struct reg_topic *t, const char *name)
{
    return strncmp(t->name, name, sizeof t->name) == 0;
}

/* A topic entry of the registry (or a copy of one), before anything of it is used: every
 * field another process could have written is checked. 0, or EBADSEG saying what is wrong. */
static int topic_check(bus_domain *d, unsigned i, const struct reg_topic *t)
{
    char what[160] = "";
    if (!memchr(t->name, 0, sizeof t->name) || !bus_name_valid(BUS_NAME_TOPIC, t->name, NULL, 0))
        snprintf(what, sizeof what, "its name is not a valid topic name");
    else if (!memchr(t->pool, 0, sizeof t->pool) ||
             !bus_name_valid(BUS_NAME_POOL, t->pool, NULL, 0))
        snprintf(what, sizeof what, "its pool name is not a valid pool name");
    else if (t->history < 1 || t->history > BUS_MAX_HISTORY)
        snprintf(what, sizeof what, "history %u is not in 1..%d", t->history, BUS_MAX_HISTORY);
    else if (t->max_held < 1 || t->max_held > BUS_MAX_HELD)
        snprintf(what, sizeof what, "max_held %u is not in 1..%d", t->max_held, BUS_MAX_HELD);
    else if (t->queue_depth < 1 || t->queue_depth > BUS_MAX_QUEUE_DEPTH)
        snprintf(what, sizeof what, "queue_depth %u is not in 1..%d", t->queue_depth,
                 BUS_MAX_QUEUE_DEPTH);
    else if (t->full_wait_ms < 0 || t->full_wait_ms > BUS_MAX_WAIT_MS)
        snprintf(what, sizeof what, "wait %d ms is not in 0..%d", t->full_wait_ms,
                 BUS_MAX_WAIT_MS);
    else if (t->delivery != BUS_DELIVERY_NNG && t->delivery != BUS_DELIVERY_SHM)
        snprintf(what, sizeof what, "delivery %u is neither nng (0) nor shm (1)", t->delivery);
    else if (t->max_message_size == 0)
        snprintf(what, sizeof what, "max_message_size is 0");
    if (!what[0])
        return 0;
    return bus_errno(SHMBUS_EBADSEG, "registry of domain \"%s\": topic entry %u is corrupt: %s",
                     d->name, i, what);
}

int bus_topic_copy(bus_domain *d, unsigned idx, struct reg_topic *out)
{
    if (idx >= REG_MAX_TOPICS)
        return bus_errno(SHMBUS_EBADSEG, "topic entry %u is out of range", idx);
    memcpy(out, &d->reg->topics[idx], sizeof *out);
    return topic_check(d, idx, out); /* the copy: later writes to the registry cannot reach it */
}

/* Find or add a topic. Runs under the domain lock. */
static int topic_register_locked(void *arg)
{
    struct topic_req *q = arg;
    struct reg_hdr *r = q->d->reg;
    int free_idx = -1;
    for (unsigned i = 0; i < REG_MAX_TOPICS; i++) {
        struct reg_topic *t = &r->topics[i];
        if (atomic_load(&t->state) != REG_LIVE) {
            if (free_idx < 0)
                free_idx = (int)i;
            continue;
        }
        if (!topic_named(t, q->name))
            continue;
        int rc = topic_check(q->d, i, t);
        if (rc)
            return rc;
        if (topic_differs(t, q->cfg))
            return incompatible(t, q->cfg);
        q->idx = i;
        return 0;
    }
    if (free_idx < 0)
        return bus_errno(SHMBUS_ELIMIT, "topic \"%s\": the registry holds %d topics at most",
                         q->name, REG_MAX_TOPICS);
    struct reg_topic *t = &r->topics[free_idx];
    snprintf(t->name, sizeof t->name, "%s", q->name);
    snprintf(t->pool, sizeof t->pool, "%s", q->cfg->pool);
    t->history = q->cfg->history;
    t->max_message_size = q->cfg->max_message_size;
    t->max_held = q->cfg->max_held;
    t->full_wait_ms = q->cfg->full_wait_ms;
    t->queue_depth = q->cfg->queue_depth;
    t->delivery = q->cfg->delivery;
    atomic_store_explicit(&t->state, REG_LIVE, memory_order_release);
    q->idx = (unsigned)free_idx;
    return 0;
}

static int lookup_topic(bus_domain *d, const char *name)
{
    for (unsigned i = 0; i < REG_MAX_TOPICS; i++) {
        struct reg_topic *t = &d->reg->topics[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) == REG_LIVE &&
            topic_named(t, name))
            return (int)i;
    }
    return -1;
}

int bus_topic_index(bus_domain *d, const char *name, unsigned *idx)
{
    int rc = bus_name_check(BUS_NAME_TOPIC, name);
    if (rc)
        return rc;
    const bus_topic_cfg *c = bus_config_topic(&d->cfg, name);
    int i = lookup_topic(d, name);
    if (i >= 0) { /* a topic this configuration lists must match the running definition */
        if ((rc = topic_check(d, (unsigned)i, &d->reg->topics[i])) != 0)
            return rc;
        if (c && topic_differs(&d->reg->topics[i], c))
            return incompatible(&d->reg->topics[i], c);
        *idx = (unsigned)i;
        return 0;
    }
    bus_topic_cfg tmpl;
    if (!c) {
        if (!d->cfg.has_default_topic)
            return bus_errno(SHMBUS_ENOENT,
                             "topic \"%s\" is not in the configuration, which has no "
                             "default_topic", name);
        tmpl = d->cfg.default_topic;
        snprintf(tmpl.name, sizeof tmpl.name, "%s", name);
        c = &tmpl;
    }
    if (d->observer)
        return bus_errno(SHMBUS_ENOENT, "topic \"%s\" does not exist", name);
    struct topic_req q = {.d = d, .cfg = c, .name = name};
    rc = shmpool_domain_serialize(d->pd, topic_register_locked, &q);
    if (rc == 0)
        *idx = q.idx;
    return rc;
}

/* "4 KiB x 32, 8 MiB x 8" */
static void classes_text(char *buf, size_t len, const shmbus_pool_class *c, unsigned n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t o = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < n && o < len; i++) {
        uint64_t v = c[i].block_size;
        unsigned u = 0;
        while (u < 4 && v >= 1024 && v % 1024 == 0) {
            v /= 1024;
            u++;
        }
        int k = snprintf(buf + o, len - o, "%s%llu %s x %u", i ? ", " : "", (unsigned long long)v,
                         unit[u], c[i].count);
        o += k > 0 ? (size_t)k : 0;
    }
}

/* EINCOMPAT naming both definitions of a pool: this configuration's and the running one's. */
int bus_pool_conflict(bus_domain *d, const char *name, const shmbus_pool_class *classes,
                      unsigned n)
{
    char ours[256], theirs[256] = "classes that cannot be read";
    shmbus_pool_class run[BUS_MAX_CLASSES];
    shmbus_class_stats st[BUS_MAX_CLASSES];
    shmbus_pool *p;
    int k;
    classes_text(ours, sizeof ours, classes, n);
    if (shmpool_pool_open(d->pd, name, NULL, 0, &p) == 0 &&
        (k = shmpool_pool_stats(p, st, BUS_MAX_CLASSES)) > 0) {
        for (int i = 0; i < k; i++)
            run[i] = (shmbus_pool_class){.block_size = st[i].block_size, .count = st[i].total};
        classes_text(theirs, sizeof theirs, run, (unsigned)k);
    }
    return bus_errno(SHMBUS_EINCOMPAT, "pool \"%s\": defined here as (%s), but the running "
                     "domain has it as (%s)", name, ours, theirs);
}

int bus_topic_pool(bus_domain *d, const struct reg_topic *t, shmbus_pool **out)
{
    const bus_pool_cfg *pc = bus_config_pool(&d->cfg, t->pool);
    int rc = pc ? shmpool_pool_open(d->pd, pc->name, pc->classes, pc->nclasses, out)
                : shmpool_pool_open(d->pd, t->pool, NULL, 0, out);
    if (rc == SHMBUS_EINCOMPAT && pc)
        return bus_pool_conflict(d, pc->name, pc->classes, pc->nclasses);
    if (rc)
        return bus_errno(rc, "pool \"%s\" of topic \"%s\": %s", t->pool, t->name,
                         rc == SHMBUS_ENOENT ? "not defined here nor in the running domain"
                                             : bus_strerror(rc));
    return 0;
}

