/* Bus domain: opening and closing one, its configuration and pools, the registry segment and
 * the discovery thread (discovery.c). Topics are in topic.c, the runtime directory in
 * domain_rundir.c, the error detail in error.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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
        rc = shmpool_segment_open(d->pd, "reg", sizeof(struct reg_hdr), bus_reg_init, NULL, &map);
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
        if ((rc = bus_discovery_start(d)) != 0)
            goto fail_reg;
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
    if (d->discovery_on && !forked)
        bus_discovery_stop(d);
    bus_rings_close(d);
    shmpool_segment_close(d->reg, sizeof(struct reg_hdr));
    int rc = shmpool_domain_close(d->pd); /* in a forked child: only drops its copies */
    if (!forked)
        pthread_mutex_destroy(&d->lock);
    free(d);
    return rc;
}

const char *bus_domain_name(const bus_domain *d) { return d->name; }
