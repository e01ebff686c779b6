/* Bus domain: configuration, the registry segment, topics, the runtime directory of ipc
 * endpoints, and the discovery thread that dials new publishers and clears the registry
 * entries of dead processes. */
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

/* ---- closing nng sockets, bounded --------------------------------------------------------- */

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

void bus_endpoint_path(const bus_domain *d, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/p%llu.ipc", d->rundir, (unsigned long long)id);
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
        if (strcmp(t->name, q->name) != 0)
            continue;
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
            strcmp(t->name, name) == 0)
            return (int)i;
    }
    return -1;
}

int bus_topic_index(bus_domain *d, const char *name, unsigned *idx)
{
    const bus_topic_cfg *c = bus_config_topic(&d->cfg, name);
    int i = lookup_topic(d, name);
    if (i >= 0) { /* a topic this configuration lists must match the running definition */
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
    int rc = shmpool_domain_serialize(d->pd, topic_register_locked, &q);
    if (rc == 0)
        *idx = q.idx;
    return rc;
}

int bus_topic_pool(bus_domain *d, const struct reg_topic *t, shmbus_pool **out)
{
    const bus_pool_cfg *pc = bus_config_pool(&d->cfg, t->pool);
    int rc = pc ? shmpool_pool_open(d->pd, pc->name, pc->classes, pc->nclasses, out)
                : shmpool_pool_open(d->pd, t->pool, NULL, 0, out);
    if (rc == SHMBUS_EINCOMPAT)
        return bus_errno(rc, "pool \"%s\": the running domain has it with other size classes",
                         t->pool);
    if (rc)
        return bus_errno(rc, "pool \"%s\" of topic \"%s\": %s", t->pool, t->name,
                         rc == SHMBUS_ENOENT ? "not defined here nor in the running domain"
                                             : shmbus_status_message(rc));
    return 0;
}

/* ---- runtime directory --------------------------------------------------------------------- */

static int rundir_make_locked(void *arg)
{
    bus_domain *d = arg;
    /* x wherever r; with a group, set-group-ID so that every socket file made in it gets the
     * group too (nng creates them with the creator's group otherwise) */
    unsigned dmode = d->cfg.mode | ((d->cfg.mode & 0444) >> 2) | (d->cfg.gid >= 0 ? S_ISGID : 0);
    if (mkdir(d->rundir, dmode) == 0) {
        if (chmod(d->rundir, dmode) != 0 ||
            (d->cfg.gid >= 0 && chown(d->rundir, (uid_t)-1, (gid_t)d->cfg.gid) != 0))
            return bus_errno(SHMBUS_ESYS, "runtime directory %s", d->rundir);
        return 0;
    }
    if (errno != EEXIST)
        return bus_errno(shmpool_errno_status(errno), "runtime directory %s", d->rundir);
    struct stat st;
    if (lstat(d->rundir, &st) != 0 || !S_ISDIR(st.st_mode))
        return bus_errno(SHMBUS_EACCES, "runtime directory %s exists and is not a directory",
                         d->rundir);
    if (access(d->rundir, W_OK | X_OK) != 0)
        return bus_errno(SHMBUS_EACCES, "runtime directory %s", d->rundir);
    return 0;
}

/* ---- discovery ----------------------------------------------------------------------------- */

/* Free the registry entries of processes that died without closing them. */
static void reap_entries(bus_domain *d)
{
    struct reg_hdr *r = d->reg;
    bool changed = false;
    for (unsigned i = 0; i < REG_MAX_PUBS; i++)
        changed |= bus_pub_reap_entry(d, i); /* dead publishers leave tombstones (pub.c) */
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
        if (rounds++ % 4 == 0)
            reap_entries(d);
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

static int resolve_rundir(bus_domain *d, const bus_domain_opts *o)
{
    const char *base = o->runtime_dir && *o->runtime_dir ? o->runtime_dir
                       : d->cfg.runtime_dir[0]              ? d->cfg.runtime_dir
                                                            : getenv("SHMBUS_RUNTIME_DIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(d->rundir, sizeof d->rundir, "%s/shmbus.%s", base, d->name);
    /* endpoints are "<rundir>/p<20 digits>.ipc" and must fit a unix socket path */
    if (n < 0 || (size_t)n + 26 >= REG_ENDPOINT_MAX)
        return bus_errno(SHMBUS_EINVAL,
                         "runtime directory \"%s/shmbus.%s\" is too long for ipc socket paths "
                         "(at most %d characters)",
                         base, d->name, REG_ENDPOINT_MAX - 27);
    return 0;
}

static int open_pools(bus_domain *d, const char *shm_dir)
{
    for (unsigned i = 0; i < d->cfg.npools; i++) {
        const bus_pool_cfg *pc = &d->cfg.pools[i];
        shmbus_pool *p;
        int rc = shmpool_pool_open(d->pd, pc->name, pc->classes, pc->nclasses, &p);
        if (rc == SHMBUS_EINCOMPAT)
            return bus_errno(rc, "pool \"%s\": the running domain has it with other size "
                                 "classes than this configuration", pc->name);
        if (rc == SHMBUS_ENOSPC) {
            uint64_t need = 0;
            shmpool_pool_size(pc->classes, pc->nclasses, &need);
            return bus_errno(rc, "pool \"%s\" needs %llu bytes of shared memory in %s (all "
                                 "pools of the configuration: %llu)",
                             pc->name, (unsigned long long)need, shm_dir,
                             (unsigned long long)bus_config_memory(&d->cfg));
        }
        if (rc)
            return bus_errno(rc, "pool \"%s\"", pc->name);
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
    if (!opts)
        opts = &none;
    if (!out)
        return SHMBUS_EINVAL;
    *out = NULL;
    bus_set_error("%s", "");
    bus_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    d->observer = opts->observer;
    pthread_mutex_init(&d->lock, NULL);
    int rc = load_config(d, opts);
    if (rc)
        goto fail_free;
    snprintf(d->name, sizeof d->name, "%s", name ? name : d->cfg.domain);
    if ((rc = resolve_rundir(d, opts)) != 0)
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
        else
            bus_errno(rc, "domain \"%s\"", d->name);
        goto fail_free;
    }
    /* Endpoints go where the domain's creator put them, so the last one out removes them. */
    if (shmpool_domain_wipe_dir(d->pd)[0])
        snprintf(d->rundir, sizeof d->rundir, "%s", shmpool_domain_wipe_dir(d->pd));
    void *map;
    tries = 0;
    do /* ... or its registry not made yet */
        rc = shmpool_segment_open(d->pd, "reg", sizeof(struct reg_hdr), reg_init, NULL, &map);
    while (young_retry(d->observer && (rc == SHMBUS_EAGAIN || rc == SHMBUS_ENOENT), &tries));
    if (rc) {
        bus_errno(rc, "registry of domain \"%s\"", d->name);
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
        if ((rc = shmpool_domain_serialize(d->pd, rundir_make_locked, d)) != 0)
            goto fail_reg;
        /* A file's pools are made now, so a full /dev/shm fails at start-up. The embedded
         * default's pool (229 MiB) is made only when a topic first uses it. */
        const char *shm_dir = opts->shm_dir         ? opts->shm_dir
                              : getenv("SHMBUS_SHM_DIR") ? getenv("SHMBUS_SHM_DIR")
                                                         : "/dev/shm";
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
