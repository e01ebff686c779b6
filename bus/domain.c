/* Bus domain: configuration, the registry segment, topics (every registry entry checked
 * before use), and the discovery thread that dials new publishers, clears the registry
 * entries of dead processes and restores the runtime directory (domain_rundir.c). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- errors with context ---------------------------------------------------------------- */

static _Thread_local char t_error[BUS_ERR_MAX];

const char *bus_last_error(void) { return t_error; }

void bus_clear_error(void) { t_error[0] = '\0'; }

int bus_name_check(enum bus_name_kind kind, const char *s)
{
    if (bus_name_valid(kind, s, t_error, sizeof t_error))
        return 0;
    return SHMBUS_EINVAL;
}

void bus_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_error, sizeof t_error, fmt, ap);
    va_end(ap);
}

/* Record a detail for status rc (keeping errno's text for OS errors) and return rc. */
int bus_errno(int rc, const char *fmt, ...)
{
    int saved = errno;
    char what[BUS_ERR_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == SHMBUS_ESYS || rc == SHMBUS_EACCES || rc == SHMBUS_ENOSPC)
        bus_set_error("%s: %s", what, strerror(saved));
    else
        bus_set_error("%s", what);
    errno = saved;
    return rc;
}

/* ---- registry ------------------------------------------------------------------------------ */

unsigned reg_lat_bucket(uint64_t ns)
{
    uint64_t us4 = ns / 250; /* quarter microseconds */
    if (us4 < 4)
        return 0;
    unsigned oct = 63u - (unsigned)__builtin_clzll(us4 / 4); /* octave above 1 us */
    unsigned quarter = (unsigned)((us4 >> oct) & 3);          /* the 2 bits below the top */
    unsigned b = 1 + oct * 4 + quarter;
    return b < REG_LAT_BUCKETS ? b : REG_LAT_BUCKETS - 1;
}

uint64_t reg_lat_edge_ns(unsigned b)
{
    if (b == 0)
        return 0;
    unsigned oct = (b - 1) / 4, quarter = (b - 1) % 4;
    return (1000ull << oct) + (250ull << oct) * quarter;
}

static int reg_init(void *map, void *ctx)
{
    (void)ctx;
    struct reg_hdr *r = map;
    r->magic = REG_MAGIC;
    r->version = REG_VERSION;
    r->size = (uint32_t)sizeof *r;
    atomic_store(&r->next_id, 1);
    return 0;
}

bool bus_owner_live(bus_domain *d, uint64_t uid) { return shmpool_participant_live(d->pd, uid); }

void bus_wake_discovery(bus_domain *d)
{
    atomic_fetch_add(&d->reg->epoch, 1);
    syscall(SYS_futex, &d->reg->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int topic_differs(const struct reg_topic *t, const bus_topic_cfg *c)
{
    return strcmp(t->pool, c->pool) || t->history != c->history ||
           t->max_message_size != c->max_message_size || t->max_held != c->max_held ||
           t->full_wait_ms != c->full_wait_ms || t->queue_depth != c->queue_depth;
}

static int incompatible(const struct reg_topic *t, const bus_topic_cfg *c)
{
    return bus_errno(SHMBUS_EINCOMPAT,
                     "topic \"%s\": this configuration defines it (pool %s, history %u, "
                     "max_message_size %llu, max_held %u, wait %d ms, queue %u) unlike the "
                     "running domain (pool %s, history %u, max_message_size %llu, max_held %u, "
                     "wait %d ms, queue %u)",
                     t->name, c->pool, c->history, (unsigned long long)c->max_message_size,
                     c->max_held, c->full_wait_ms, c->queue_depth, t->pool, t->history,
                     (unsigned long long)t->max_message_size, t->max_held, t->full_wait_ms,
                     t->queue_depth);
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
                                             : shmbus_status_message(rc));
    return 0;
}

/* ---- discovery ----------------------------------------------------------------------------- */

/* Free the registry entries of processes that died without closing them. */
static void reap_entries(bus_domain *d)
{
    struct reg_hdr *r = d->reg;
    bool changed = false;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++) {
        struct reg_pub *p = &r->pubs[i];
        uint64_t w = atomic_load(&p->own);
        if (!w || bus_owner_live(d, REG_OWN_UID(w)))
            continue;
        uint64_t id = p->pub_id;
        if (atomic_compare_exchange_strong(&p->own, &w, 0)) {
            if (REG_OWN_STATE(w) == REG_LIVE) /* a dead listener cannot remove its socket */
                bus_endpoint_remove(d, i, id);
            changed = true;
        }
    }
    for (unsigned i = 0; i < REG_MAX_SUBS; i++) {
        struct reg_sub *s = &r->subs[i];
        uint64_t w = atomic_load(&s->own);
        if (w && !bus_owner_live(d, REG_OWN_UID(w)))
            changed |= atomic_compare_exchange_strong(&s->own, &w, 0);
    }
    if (changed)
        bus_wake_discovery(d);
}

static void *discovery_main(void *arg)
{
    bus_domain *d = arg;
    unsigned rounds = 0;
    while (!atomic_load(&d->stopping)) {
        uint32_t e = atomic_load(&d->reg->epoch);
        pthread_mutex_lock(&d->lock);
        for (bus_sub *s = d->subs; s; s = s->next)
            bus_sub_sync_peers(s);
        pthread_mutex_unlock(&d->lock);
        if (rounds++ % 4 == 0) {
            reap_entries(d);
            if (bus_rundir_restore(d)) /* someone removed it: endpoints need it */
                bus_wake_discovery(d);
            bus_endpoints_restore(d);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        if (!atomic_load(&d->stopping))
            syscall(SYS_futex, &d->reg->epoch, FUTEX_WAIT, e, &ts, NULL, 0);
    }
    return NULL;
}

/* ---- open / close -------------------------------------------------------------------------- */

static int load_config(bus_domain *d, const bus_domain_opts *o)
{
    char err[BUS_ERR_MAX];
    if (o->config) {
        d->cfg = *o->config;
        return 0;
    }
    if (!o->config_path) {
        bus_config_default(&d->cfg);
        return 0;
    }
    int rc = bus_config_load(o->config_path, &d->cfg, err, sizeof err);
    if (rc)
        bus_set_error("%s", err);
    return rc;
}

static int open_pools(bus_domain *d, const char *shm_dir)
{
    for (unsigned i = 0; i < d->cfg.npools; i++) {
        const bus_pool_cfg *pc = &d->cfg.pools[i];
        shmbus_pool *p;
        int rc = shmpool_pool_open(d->pd, pc->name, pc->classes, pc->nclasses, &p);
        if (rc == SHMBUS_EINCOMPAT)
            return bus_pool_conflict(d, pc->name, pc->classes, pc->nclasses);
        if (rc == SHMBUS_ENOSPC) {
            uint64_t need = 0;
            shmpool_pool_size(pc->classes, pc->nclasses, &need);
            return bus_errno(rc, "pool \"%s\" needs %llu bytes of shared memory in %s (all "
                                 "pools of the configuration: %llu)",
                             pc->name, (unsigned long long)need, shm_dir,
                             (unsigned long long)bus_config_memory(&d->cfg));
        }
        if (rc)
            return bus_errno(rc, "pool \"%s\"%s%s", pc->name,
                             shmpool_last_error()[0] ? ": " : "", shmpool_last_error());
    }
    return 0;
}

/* Retry a domain its creator is still making? Sleeps 10 ms per try, 1 s in all. */
static bool young_retry(bool young, int *tries)
{
    if (!young || ++*tries > 100)
        return false;
    struct timespec ms10 = {0, 10 * 1000 * 1000};
    nanosleep(&ms10, NULL);
    return true;
}

int bus_domain_open(const char *name, const bus_domain_opts *opts, bus_domain **out)
{
    bus_domain_opts none = {0};
    int rc;
    if (!opts)
        opts = &none;
    if (!out)
        return SHMBUS_EINVAL;
    *out = NULL;
    bus_clear_error();
    if ((name && (rc = bus_name_check(BUS_NAME_DOMAIN, name)) != 0) ||
        (opts->name && (rc = bus_name_check(BUS_NAME_PARTICIPANT, opts->name)) != 0))
        return rc;
    bus_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    d->observer = opts->observer;
    pthread_mutex_init(&d->lock, NULL);
    if ((rc = load_config(d, opts)) != 0)
        goto fail_free;
    snprintf(d->name, sizeof d->name, "%s", name ? name : d->cfg.domain);
    if ((rc = bus_rundir_resolve(d, opts->runtime_dir)) != 0)
        goto fail_free;
    const char *shm_dir = opts->shm_dir ? opts->shm_dir : getenv("SHMBUS_SHM_DIR");
    if (!shm_dir || !*shm_dir)
        shm_dir = "/dev/shm";

    if (!d->observer &&
        ((rc = bus_domain_owner(d, shm_dir)) != 0 || (rc = bus_rundir_precheck(d)) != 0))
        goto fail_free;

    shmpool_domain_opts po;
    shmpool_domain_opts_init(&po);
    po.mode = d->cfg.mode;
    po.gid = d->cfg.gid;
    po.shm_dir = opts->shm_dir;
    po.name = opts->name;
    po.observer = opts->observer;
    po.sweep_interval_ms = opts->sweep_interval_ms;
    po.wipe_dir = d->rundir;
    int tries = 0;
    do /* an observer may find the domain half made by its creator: wait for it */
        rc = shmpool_domain_open(d->name, &po, &d->pd);
    while (young_retry(rc == SHMBUS_EAGAIN, &tries));
    if (rc) {
        if (rc == SHMBUS_ENOENT && d->observer)
            bus_errno(rc, "no domain \"%s\" is running", d->name);
        else /* shmpool's detail names the file, check or limit that refused */
            bus_errno(rc, "domain \"%s\"%s%s", d->name, shmpool_last_error()[0] ? ": " : "",
                      shmpool_last_error());
        goto fail_free;
    }
    void *map;
    tries = 0;
    do /* ... or its registry not made yet */
        rc = shmpool_segment_open(d->pd, "reg", sizeof(struct reg_hdr), reg_init, NULL, &map);
    while (young_retry(d->observer && (rc == SHMBUS_EAGAIN || rc == SHMBUS_ENOENT), &tries));
    if (rc) {
        bus_errno(rc, "registry of domain \"%s\"%s%s", d->name,
                  shmpool_last_error()[0] ? ": " : "", shmpool_last_error());
        goto fail_pool;
    }
    d->reg = map;
    if (d->reg->magic != REG_MAGIC || d->reg->version != REG_VERSION ||
        d->reg->size != sizeof(struct reg_hdr)) {
        rc = bus_errno(SHMBUS_EBADSEG, "registry of domain \"%s\": wrong layout version",
                       d->name);
        goto fail_reg;
    }
    if (!d->observer) {
        if ((rc = bus_domain_owner(d, shm_dir)) != 0 || (rc = bus_rundir_make(d)) != 0)
            goto fail_reg;
        /* A file's pools are made now, so a full /dev/shm fails at start-up. The embedded
         * default's pool (229 MiB) is made only when a topic first uses it. */
        if ((opts->config_path || opts->config) && (rc = open_pools(d, shm_dir)) != 0)
            goto fail_reg;
        for (unsigned i = 0; i < d->cfg.ntopics; i++) {
            unsigned idx;
            if ((rc = bus_topic_index(d, d->cfg.topics[i].name, &idx)) != 0)
                goto fail_reg;
        }
        if (pthread_create(&d->discovery, NULL, discovery_main, d) != 0) {
            rc = bus_errno(SHMBUS_ESYS, "discovery thread");
            goto fail_reg;
        }
        d->discovery_on = true;
    }
    *out = d;
    return 0;

fail_reg:
    shmpool_segment_close(d->reg, sizeof(struct reg_hdr));
fail_pool:
    shmpool_domain_close(d->pd);
fail_free:
    pthread_mutex_destroy(&d->lock);
    free(d);
    return rc;
}

int bus_domain_close(bus_domain *d)
{
    if (!d)
        return SHMBUS_EINVAL;
    bool forked = shmpool_domain_forked(d->pd);
    int busy = 0;
    if (!forked) { /* in a forked child d->lock may be a copy held by a parent's thread */
        pthread_mutex_lock(&d->lock);
        busy = d->npubs + d->nsubs;
        pthread_mutex_unlock(&d->lock);
    }
    if (busy)
        return bus_errno(SHMBUS_EBUSY, "domain \"%s\": %d publishers/subscribers still open",
                         d->name, busy);
    if (!forked && !d->observer && shmpool_domain_holds(d->pd))
        return bus_errno(SHMBUS_EBUSY, "domain \"%s\": messages still held by this process",
                         d->name);
    if (d->discovery_on && !forked) {
        atomic_store(&d->stopping, true);
        bus_wake_discovery(d);
        pthread_join(d->discovery, NULL);
    }
    shmpool_segment_close(d->reg, sizeof(struct reg_hdr));
    int rc = shmpool_domain_close(d->pd); /* in a forked child: only drops its copies */
    if (!forked)
        pthread_mutex_destroy(&d->lock);
    free(d);
    return rc;
}

const bus_config *bus_domain_config(const bus_domain *d) { return &d->cfg; }
const char *bus_domain_name(const bus_domain *d) { return d->name; }
