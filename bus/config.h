/* Domain configuration: parse and validate the JSON file that describes a domain (private to
 * bus/; tests and tools reach it through the public API). See docs/config.md. */
#ifndef BUS_CONFIG_H
#define BUS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_names.h"
#include "shmbus_types.h"

#define BUS_MAX_POOLS 16
#define BUS_MAX_TOPICS 64
#define BUS_MAX_CLASSES 8
#define BUS_MAX_HISTORY 64
#define BUS_MAX_HELD 1024        /* a topic's max_held */
#define BUS_MAX_QUEUE_DEPTH 1024 /* a topic's queue_depth */
#define BUS_MAX_WAIT_MS 60000    /* a topic's wait_ms */
#define BUS_ERR_MAX 512

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
    uint32_t queue_depth;      /* descriptors queued per subscriber in nng, 1..1024 */
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

/* Parse and validate JSON text. `source` names it in errors (a file name, "<default>").
 * On error returns SHMBUS_ECONFIG and writes into err (if not NULL) one line:
 *   "<source>:<line>:<col>: syntax error: ..."   for malformed JSON
 *   "<source>: $.topics[2].pool: pool \"big\" is not defined"   for everything else
 * (the JSON path of the offending value, then the reason). */
int bus_config_parse(const char *text, size_t len, const char *source, bus_config *cfg,
                     char *err, size_t errlen);

/* Read and parse a file. A file that cannot be read gives SHMBUS_ENOENT / SHMBUS_EACCES with
 * "<path>: <strerror>" in err. */
int bus_config_load(const char *path, bus_config *cfg, char *err, size_t errlen);

/* Topic and pool lookup by name; NULL if absent. */
const bus_topic_cfg *bus_config_topic(const bus_config *cfg, const char *name);
const bus_pool_cfg *bus_config_pool(const bus_config *cfg, const char *name);

/* "8MiB" -> 8388608. Accepts an integer number of bytes or a string: a non-negative integer
 * (optionally with a fraction, e.g. "1.5MiB") followed by B, KiB, MiB, GiB, TiB (powers of
 * 1024) or kB, MB, GB, TB (powers of 1000), optionally separated by a space. Returns 0 or
 * SHMBUS_EINVAL (with a reason in err). */
int bus_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/* Total bytes of shared memory the pools need (block payloads, aligned, plus headers):
 * what `shmbus config check` and `shmbus doctor` report. */
uint64_t bus_config_memory(const bus_config *cfg);

/* Internal to config.c and config_parse.c: JSON text to a cJSON tree, after a lexical scan for
 * what cJSON accepts or reports poorly. On success *root is the caller's (cJSON_Delete); on
 * error returns SHMBUS_ECONFIG with "<source>:<line>:<col>: syntax error: ..." in err. */
struct cJSON;
int bus_config_syntax(const char *text, size_t len, const char *source, struct cJSON **root,
                      char *err, size_t errlen);

#endif
