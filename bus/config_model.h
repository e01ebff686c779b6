/* The domain configuration as data (private to bus/): its types and limits, the embedded
 * default, lookups by name and the memory total. Parsing a file into one is config_parse.h's;
 * the rest of bus/ includes config.h. See docs/config.md. */
#ifndef BUS_CONFIG_MODEL_H
#define BUS_CONFIG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_names.h"
#include "shmbus_types.h"

#define BUS_MAX_POOLS 16  /* = SHMPOOL_MAX_POOLS, SHMBUS_MAX_POOLS (asserted) */
#define BUS_MAX_TOPICS 64 /* = SHMBUS_MAX_TOPICS (asserted) */
#define BUS_MAX_CLASSES 8 /* = SHMPOOL_MAX_CLASSES, SHMBUS_MAX_CLASSES (asserted) */
#define BUS_MAX_HISTORY 64
#define BUS_MAX_HELD 1024        /* a topic's max_held */
#define BUS_MAX_QUEUE_DEPTH 1024 /* a topic's queue_depth */
#define BUS_MAX_WAIT_MS 60000    /* a topic's wait_ms */
/* How a topic's descriptors travel (docs/delivery.md): over nng ipc sockets, or through
 * rings in the domain's registry with a futex (and, for the pollable fd, a datagram) wake-up. */
enum bus_delivery { BUS_DELIVERY_NNG = 0, BUS_DELIVERY_SHM = 1 };
#define BUS_ERR_MAX 512           /* an error message of the bus, a config's included */

typedef struct bus_pool_cfg {
    char name[BUS_NAME_MAX + 1];
    unsigned nclasses;
    shmbus_pool_class classes[BUS_MAX_CLASSES]; /* sorted by block_size, no duplicates */
} bus_pool_cfg;

typedef struct bus_topic_cfg {
    char name[BUS_TOPIC_NAME_MAX + 1];
    char pool[BUS_NAME_MAX + 1];
    uint32_t history;          /* keep-last K held by each publisher, 1..BUS_MAX_HISTORY */
    uint64_t max_message_size; /* bytes, <= the pool's largest block */
    uint32_t max_held;         /* messages one subscriber may hold at once, >= 1 */
    int32_t full_wait_ms;      /* pool full: 0 fail at once, > 0 wait up to this long */
    uint32_t queue_depth;      /* descriptors queued per subscriber, 1..1024 */
    uint32_t delivery;         /* enum bus_delivery */
} bus_topic_cfg;

typedef struct bus_config {
    char domain[BUS_NAME_MAX + 1];    /* "default" unless the file says otherwise */
    unsigned mode;                    /* segments and sockets; default 0600 */
    long gid;                         /* -1: the creator's group */
    char group[64];                   /* as written in the file ("" if none) */
    char runtime_dir[256];            /* "" : $SHMBUS_RUNTIME_DIR or /tmp/shmbus.<domain> */
    unsigned npools;
    bus_pool_cfg pools[BUS_MAX_POOLS];
    unsigned ntopics;
    bus_topic_cfg topics[BUS_MAX_TOPICS];
    bool has_default_topic;          /* topics not listed are created from this template */
    bus_topic_cfg default_topic;     /* name empty */
} bus_config;

/* The embedded default used when a program runs with no file: one pool "default" with
 * classes for messages from 64 B to 24 MiB, and a default topic template on it. */
void bus_config_default(bus_config *cfg);

/* Topic and pool lookup by name; NULL if absent. */
const bus_topic_cfg *bus_config_topic(const bus_config *cfg, const char *name);
const bus_pool_cfg *bus_config_pool(const bus_config *cfg, const char *name);

/* Total bytes of shared memory the pools need (block payloads, aligned, plus headers):
 * what `shmbus config check` and `shmbus doctor` report. */
uint64_t bus_config_memory(const bus_config *cfg);

#endif
