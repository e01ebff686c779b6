/* The domain configuration as data: the embedded default, lookups by name and the memory
 * total of the pools. */
#include "config_model.h"

#include <stdio.h>
#include <string.h>

#include "shmpool.h"

_Static_assert(BUS_MAX_POOLS == SHMPOOL_MAX_POOLS && BUS_MAX_CLASSES == SHMPOOL_MAX_CLASSES,
               "a configuration's pools and classes are what the pool layer holds");

#define KiB (1ull << 10)
#define MiB (1ull << 20)

/* ---- the embedded default --------------------------------------------------------------- */

static const shmbus_pool_class default_classes[] = {
    {4 * KiB, 256}, {64 * KiB, 64}, {1 * MiB, 16}, {8 * MiB, 8}, {24 * MiB, 6},
};

void bus_config_default(bus_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->domain, sizeof cfg->domain, "default");
    cfg->mode = 0600;
    cfg->gid = -1;
    cfg->npools = 1;
    bus_pool_cfg *p = &cfg->pools[0];
    snprintf(p->name, sizeof p->name, "default");
    p->nclasses = sizeof default_classes / sizeof default_classes[0];
    memcpy(p->classes, default_classes, sizeof default_classes);
    cfg->has_default_topic = true;
    bus_topic_cfg *t = &cfg->default_topic;
    snprintf(t->pool, sizeof t->pool, "default");
    t->history = 2; /* leaves 24 MiB blocks (4K RGB frames) for loans and readers */
    t->max_message_size = 24 * MiB;
    t->max_held = 4;
    t->full_wait_ms = 100;
    t->queue_depth = 16;
}

/* ---- lookups ---------------------------------------------------------------------------- */

const bus_topic_cfg *bus_config_topic(const bus_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (unsigned i = 0; i < cfg->ntopics && i < BUS_MAX_TOPICS; i++)
        if (strcmp(cfg->topics[i].name, name) == 0)
            return &cfg->topics[i];
    return NULL;
}

const bus_pool_cfg *bus_config_pool(const bus_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (unsigned i = 0; i < cfg->npools && i < BUS_MAX_POOLS; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return &cfg->pools[i];
    return NULL;
}

/* A pool shmpool rejects counts as 0; a config that passed bus_config_parse has none. */
uint64_t bus_config_memory(const bus_config *cfg)
{
    uint64_t total = 0;
    for (unsigned i = 0; cfg && i < cfg->npools && i < BUS_MAX_POOLS; i++) {
        uint64_t sz;
        if (shmpool_pool_size(cfg->pools[i].classes, cfg->pools[i].nclasses, &sz) != 0)
            continue;
        total = sz > UINT64_MAX - total ? UINT64_MAX : total + sz;
    }
    return total;
}
