/* The public facade: thin forwarding from api/shmbus.h to the layers below. */
#include "shmbus.h"

#include <stdlib.h>

#include "shmpool.h"

struct shmbus_domain {
    shmpool_domain *pool; /* membership, pools, reclaim */
};

SHMBUS_API const char *shmbus_strerror(int status)
{
    switch (status) {
#define X(name, value, msg) \
    case value:             \
        return msg;
        SHMBUS_ERRORS(X)
#undef X
    default:
        return "unknown shmbus status";
    }
}

SHMBUS_API const char *shmbus_errname(int status)
{
    switch (status) {
#define X(name, value, msg) \
    case value:             \
        return #name;
        SHMBUS_ERRORS(X)
#undef X
    default:
        return "SHMBUS_E?";
    }
}

SHMBUS_API void shmbus_domain_opts_init(shmbus_domain_opts *o)
{
    *o = (shmbus_domain_opts){.mode = 0600, .gid = -1};
}

SHMBUS_API int shmbus_domain_open(const char *name, const shmbus_domain_opts *opts,
                                  shmbus_domain **out)
{
    if (!out)
        return SHMBUS_EINVAL;
    *out = NULL;
    shmpool_domain_opts po;
    shmpool_domain_opts_init(&po);
    if (opts) {
        po.mode = opts->mode;
        po.gid = opts->gid;
        po.shm_dir = opts->shm_dir;
        po.name = opts->name;
        po.sweep_interval_ms = opts->sweep_interval_ms;
    }
    shmbus_domain *d = calloc(1, sizeof *d);
    if (!d)
        return SHMBUS_ENOMEM;
    int rc = shmpool_domain_open(name, &po, &d->pool);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

SHMBUS_API int shmbus_domain_close(shmbus_domain *d)
{
    if (!d)
        return SHMBUS_EINVAL;
    int rc = shmpool_domain_close(d->pool);
    if (rc == 0)
        free(d);
    return rc;
}

SHMBUS_API int shmbus_pool_open(shmbus_domain *d, const char *name,
                                const shmbus_pool_class *classes, unsigned nclasses,
                                shmbus_pool **out)
{
    return d ? shmpool_pool_open(d->pool, name, classes, nclasses, out) : SHMBUS_EINVAL;
}

SHMBUS_API int shmbus_pool_loan(shmbus_pool *p, uint64_t size, int timeout_ms, shmbus_msg **out)
{
    return shmpool_loan(p, size, timeout_ms, out);
}

SHMBUS_API int shmbus_pool_stats(const shmbus_pool *p, shmbus_class_stats *out, unsigned max)
{
    return shmpool_pool_stats(p, out, max);
}

SHMBUS_API shmbus_msg *shmbus_msg_clone(shmbus_msg *m) { return shmpool_block_clone(m); }
SHMBUS_API int shmbus_msg_release(shmbus_msg *m) { return shmpool_block_release(m); }
SHMBUS_API void *shmbus_msg_data(const shmbus_msg *m) { return shmpool_block_data(m); }
SHMBUS_API uint64_t shmbus_msg_capacity(const shmbus_msg *m) { return shmpool_block_capacity(m); }

SHMBUS_API uint64_t shmbus_msg_length(const shmbus_msg *m)
{
    shmpool_block_info i;
    shmpool_block_get_info(m, &i);
    return i.length;
}

SHMBUS_API uint64_t shmbus_msg_timestamp_ns(const shmbus_msg *m)
{
    shmpool_block_info i;
    shmpool_block_get_info(m, &i);
    return i.timestamp_ns;
}

SHMBUS_API int shmbus_msg_describe(shmbus_msg *m, uint64_t length, shmbus_desc *out)
{
    shmpool_desc d;
    int rc = out ? shmpool_block_describe(m, length, 0, &d) : SHMBUS_EINVAL;
    if (rc == 0)
        shmpool_desc_encode(&d, out->bytes);
    return rc;
}

SHMBUS_API int shmbus_domain_acquire(shmbus_domain *d, const shmbus_desc *desc, shmbus_msg **out)
{
    if (!d || !desc)
        return SHMBUS_EINVAL;
    shmpool_desc pd;
    int rc = shmpool_desc_decode(desc->bytes, sizeof desc->bytes, &pd);
    return rc ? rc : shmpool_acquire(d->pool, &pd, out);
}

SHMBUS_API int shmbus_node_get(shmbus_pool *p, const char *name, uint64_t size, shmbus_msg **out,
                               bool *created)
{
    return shmpool_node_get(p, name, size, out, created);
}

SHMBUS_API int shmbus_node_lock(shmbus_msg *node) { return shmpool_node_lock(node); }
SHMBUS_API int shmbus_node_unlock(shmbus_msg *node) { return shmpool_node_unlock(node); }
