/* The public facade: api/shmbus.h forwarded to the bus layer. The objects are the bus's own
 * (struct shmbus_domain, ...), so nothing is copied or wrapped here. */
#include "shmbus.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "shmpool.h"

_Static_assert(SHMBUS_DOMAIN_NAME_MAX == BUS_NAME_MAX && SHMBUS_POOL_NAME_MAX == BUS_NAME_MAX &&
                   SHMBUS_PARTICIPANT_NAME_MAX == BUS_NAME_MAX &&
                   SHMBUS_TOPIC_NAME_MAX == BUS_TOPIC_NAME_MAX &&
                   SHMBUS_NODE_NAME_MAX == BUS_NODE_NAME_MAX &&
                   SHMBUS_NODE_NAME_MAX == SHMPOOL_NODE_NAME_MAX &&
                   SHMBUS_DOMAIN_NAME_MAX == SHMPOOL_NAME_MAX,
               "the public name limits are the layers' limits");
_Static_assert(SHMBUS_MAX_POOLS == BUS_MAX_POOLS && SHMBUS_MAX_TOPICS == BUS_MAX_TOPICS &&
                   SHMBUS_MAX_CLASSES == BUS_MAX_CLASSES,
               "the public summary's arrays hold what a configuration may have");

/* Every entry point that returns a status starts with no error detail (so that
 * shmbus_last_error() always describes the last call) and leaves one on every failure: the
 * layer's, else the call's name and the status. */
static int done(const char *call, int rc)
{
    if (rc < 0 && !bus_last_error()[0])
        bus_set_error("%s: %s", call, bus_strerror(rc));
    return rc;
}
#define CALL(expr) (bus_clear_error(), done(__func__, (expr)))
#define CHECKED_NAME(kind, name, expr) \
    (bus_clear_error(), done(__func__, bus_name_check(kind, name) ? SHMBUS_EINVAL : (expr)))

SHMBUS_API const char *shmbus_strerror(int status) { return bus_strerror(status); }
SHMBUS_API const char *shmbus_errname(int status) { return bus_errname(status); }
SHMBUS_API const char *shmbus_last_error(void) { return bus_last_error(); }

SHMBUS_API void shmbus_domain_opts_init(shmbus_domain_opts *o)
{
    *o = (shmbus_domain_opts){0};
}

SHMBUS_API int shmbus_domain_open(const char *name, const shmbus_domain_opts *opts,
                                  shmbus_domain **out)
{
    bus_domain_opts bo = {0};
    if (opts) {
        bo.config_path = opts->config_path;
        bo.runtime_dir = opts->runtime_dir;
        bo.shm_dir = opts->shm_dir;
        bo.name = opts->name;
        bo.sweep_interval_ms = opts->sweep_interval_ms;
        bo.observer = opts->observe;
    }
    return CALL(bus_domain_open(name, &bo, out));
}

SHMBUS_API int shmbus_domain_close(shmbus_domain *d) { return CALL(bus_domain_close(d)); }

/* ---- publishers and subscribers ------------------------------------------------------------ */

SHMBUS_API int shmbus_pub_open(shmbus_domain *d, const char *topic, shmbus_pub **out)
{
    return CHECKED_NAME(BUS_NAME_TOPIC, topic, bus_pub_open(d, topic, out));
}
SHMBUS_API int shmbus_pub_close(shmbus_pub *p) { return CALL(bus_pub_close(p)); }
SHMBUS_API int shmbus_pub_loan(shmbus_pub *p, uint64_t size, shmbus_msg **out)
{
    return CALL(bus_pub_loan(p, size, out));
}
SHMBUS_API int shmbus_pub_publish(shmbus_pub *p, shmbus_msg *m, uint64_t length)
{
    return CALL(bus_pub_publish(p, m, length));
}
SHMBUS_API int shmbus_pub_subscribers(shmbus_pub *p) { return CALL(bus_pub_subscribers(p)); }
SHMBUS_API int shmbus_pub_wait_subscribers(shmbus_pub *p, int n, int timeout_ms)
{
    return CALL(bus_pub_wait_subscribers(p, n, timeout_ms));
}

SHMBUS_API int shmbus_sub_open(shmbus_domain *d, const char *topic, const shmbus_sub_opts *opts,
                               shmbus_sub **out)
{
    return CHECKED_NAME(BUS_NAME_TOPIC, topic, bus_sub_open(d, topic, opts && opts->history, out));
}
SHMBUS_API int shmbus_sub_close(shmbus_sub *s) { return CALL(bus_sub_close(s)); }
SHMBUS_API int shmbus_sub_recv(shmbus_sub *s, int timeout_ms, shmbus_msg **out)
{
    return CALL(bus_sub_recv(s, timeout_ms, out));
}
SHMBUS_API int shmbus_sub_fd(shmbus_sub *s, int *fd) { return CALL(bus_sub_fd(s, fd)); }
SHMBUS_API int shmbus_sub_publishers(shmbus_sub *s) { return CALL(bus_sub_publishers(s)); }
SHMBUS_API int shmbus_sub_wait_publishers(shmbus_sub *s, int n, int timeout_ms)
{
    return CALL(bus_sub_wait_publishers(s, n, timeout_ms));
}

SHMBUS_API int shmbus_sub_stats(const shmbus_sub *s, shmbus_sub_counters *out)
{
    bus_clear_error();
    if (!s || !out)
        return done(__func__, SHMBUS_EINVAL);
    bus_sub_counters_get(s, out);
    return 0;
}

_Static_assert(SHMBUS_PUB_OPEN_WAIT_MS == BUS_OPEN_WAIT_MS, "one start-order bound");

SHMBUS_API int shmbus_sub_peer_counters(shmbus_sub *s, shmbus_peer_counters *out, unsigned max)
{
    bus_clear_error();
    if (!s || (!out && max))
        return done(__func__, SHMBUS_EINVAL);
    bus_peer_counters *b = max ? calloc(max, sizeof *b) : NULL;
    if (max && !b)
        return done(__func__, SHMBUS_ENOMEM);
    int n = bus_sub_peer_counters(s, b, max);
    for (int i = 0; i < n && (unsigned)i < max; i++)
        out[i] = (shmbus_peer_counters){
            .publisher = b[i].publisher, .base = b[i].base, .last_seq = b[i].last_seq,
            .received = b[i].received, .expired = b[i].expired, .dropped = b[i].dropped,
            .overflow = b[i].overflow, .invalid = b[i].invalid, .history = b[i].history,
            .forged = b[i].forged, .closed = b[i].closed};
    free(b);
    return n;
}

/* ---- pools, messages, nodes ----------------------------------------------------------------- */

SHMBUS_API int shmbus_pool_open(shmbus_domain *d, const char *name,
                                const shmbus_pool_class *classes, unsigned nclasses,
                                shmbus_pool **out)
{
    int rc = CHECKED_NAME(BUS_NAME_POOL, name, bus_pool_open(d, name, classes, nclasses, out));
    if (rc == SHMBUS_ENOENT && nclasses == 0)
        bus_set_error("pool \"%s\" does not exist in domain \"%s\" (give its classes to create "
                      "it)", name, bus_domain_name(d));
    else if (rc == SHMBUS_EINCOMPAT)
        bus_pool_conflict(d, name, classes, nclasses);
    return rc;
}
SHMBUS_API int shmbus_pool_loan(shmbus_pool *p, uint64_t size, int timeout_ms, shmbus_msg **out)
{
    return CALL(bus_pool_loan(p, size, timeout_ms, out));
}
SHMBUS_API int shmbus_pool_stats(const shmbus_pool *p, shmbus_class_stats *out, unsigned max)
{
    return CALL(bus_pool_stats(p, out, max));
}

SHMBUS_API shmbus_msg *shmbus_msg_clone(shmbus_msg *m) { return bus_msg_clone(m); }
SHMBUS_API int shmbus_msg_release(shmbus_msg *m) { return CALL(bus_msg_release(m)); }
SHMBUS_API void *shmbus_msg_data(const shmbus_msg *m) { return bus_msg_data(m); }
SHMBUS_API uint64_t shmbus_msg_capacity(const shmbus_msg *m) { return bus_msg_capacity(m); }
SHMBUS_API uint64_t shmbus_msg_length(const shmbus_msg *m) { return bus_msg_length(m); }
SHMBUS_API uint64_t shmbus_msg_timestamp_ns(const shmbus_msg *m) { return bus_msg_timestamp_ns(m); }
SHMBUS_API uint64_t shmbus_msg_seq(const shmbus_msg *m) { return bus_msg_seq(m); }
SHMBUS_API uint64_t shmbus_msg_publisher(const shmbus_msg *m) { return bus_msg_publisher(m); }

SHMBUS_API int shmbus_msg_describe(shmbus_msg *m, uint64_t length, shmbus_desc *out)
{
    return CALL(out ? bus_msg_describe(m, length, out->bytes) : SHMBUS_EINVAL);
}
SHMBUS_API int shmbus_domain_acquire(shmbus_domain *d, const shmbus_desc *desc, shmbus_msg **out)
{
    return CALL(desc ? bus_acquire(d, desc->bytes, out) : SHMBUS_EINVAL);
}

SHMBUS_API int shmbus_node_get(shmbus_pool *p, const char *name, uint64_t size, shmbus_msg **out,
                               bool *created)
{
    return CHECKED_NAME(BUS_NAME_NODE, name, bus_node_get(p, name, size, out, created));
}
SHMBUS_API int shmbus_node_lock(shmbus_msg *node) { return CALL(bus_node_lock(node)); }
SHMBUS_API int shmbus_node_unlock(shmbus_msg *node) { return CALL(bus_node_unlock(node)); }

/* ---- configuration and introspection ------------------------------------------------------------ */

SHMBUS_API int shmbus_config_load(const char *path, shmbus_config_summary *out)
{
    bus_clear_error();
    if (!out)
        return done(__func__, SHMBUS_EINVAL);
    bus_config c;
    char err[BUS_ERR_MAX];
    int rc = 0;
    if (path)
        rc = bus_config_load(path, &c, err, sizeof err);
    else
        bus_config_default(&c);
    if (rc) {
        bus_set_error("%s", err);
        return rc;
    }
    bus_config_summarize(&c, out);
    return 0;
}

SHMBUS_API int shmbus_parse_size(const char *text, uint64_t *out)
{
    bus_clear_error();
    char why[160], quoted[200];
    int rc = bus_parse_size(text, out, why, sizeof why);
    if (rc && text)
        bus_set_error("bad size %s: %s", bus_name_quote(quoted, sizeof quoted, text), why);
    else if (rc)
        bus_set_error("%s: %s", __func__, why);
    return rc;
}

SHMBUS_API int shmbus_snapshot_take(shmbus_domain *d, shmbus_snapshot **out)
{
    return CALL(bus_snapshot_take(d, out));
}
SHMBUS_API void shmbus_snapshot_free(shmbus_snapshot *s) { bus_snapshot_free(s); }
SHMBUS_API uint64_t shmbus_latency_edge_ns(unsigned bucket) { return bus_latency_edge_ns(bucket); }
SHMBUS_API uint64_t shmbus_latency_percentile_ns(const uint64_t hist[SHMBUS_LAT_BUCKETS], double p)
{
    return bus_latency_percentile_ns(hist, p);
}
SHMBUS_API const char *shmbus_domain_name(const shmbus_domain *d) { return bus_domain_name(d); }

/* Domains with a control segment in shm_dir; names that are not valid domain names (files
 * someone else put there) are left out. */
SHMBUS_API int shmbus_domain_list(const char *shm_dir, char (*names)[SHMBUS_DOMAIN_NAME_MAX + 1],
                                  unsigned max)
{
    bus_clear_error();
    for (;;) {
        int n = shmpool_domain_list(shm_dir, NULL, 0);
        if (n <= 0)
            return done(__func__, n);
        char(*all)[SHMPOOL_NAME_MAX + 1] = calloc((size_t)n + 8, sizeof *all);
        if (!all)
            return done(__func__, SHMBUS_ENOMEM);
        int m = shmpool_domain_list(shm_dir, all, (unsigned)n + 8);
        if (m > n + 8) { /* more appeared meanwhile: look again */
            free(all);
            continue;
        }
        unsigned k = 0;
        for (int i = 0; i < m; i++) {
            if (!bus_name_valid(BUS_NAME_DOMAIN, all[i], NULL, 0))
                continue;
            if (names && k < max)
                memcpy(names[k], all[i], sizeof names[k]);
            k++;
        }
        free(all);
        return m < 0 ? done(__func__, m) : (int)k;
    }
}

static int remove_with_detail(const char *name, const char *shm_dir, const char *rundir)
{
    int rc = shmpool_domain_remove(name, shm_dir, rundir);
    if (rc < 0 && shmpool_last_error()[0])
        bus_set_error("%s", shmpool_last_error());
    return rc;
}

SHMBUS_API int shmbus_domain_remove(const char *name, const char *shm_dir)
{
    /* The runtime directory as a process without a configuration file derives it; nothing
     * in the domain's shared memory names it. */
    const char *base = getenv("SHMBUS_RUNTIME_DIR");
    char rundir[PATH_MAX];
    snprintf(rundir, sizeof rundir, "%s/shmbus.%s", base && *base ? base : "/tmp",
             name ? name : "");
    return CHECKED_NAME(BUS_NAME_DOMAIN, name, remove_with_detail(name, shm_dir, rundir));
}
