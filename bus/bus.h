/* bus: domains with a registry, topics, publishers and subscribers; descriptors travel over nng
 * pub/sub or through rings in shared memory (a topic's "delivery").
 * The layer's API, used by the public facade (api/shmbus.c) and tests. The objects carry
 * the public tags (struct shmbus_domain, ...), so the facade passes them through unchanged.
 * Contracts (ownership, blocking, threads) are stated in api/shmbus.h. */
#ifndef BUS_H
#define BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shmbus_info.h"
#include "shmbus_types.h"

typedef struct shmbus_domain bus_domain;
typedef struct shmbus_pub bus_pub;
typedef struct shmbus_sub bus_sub;
typedef struct shmbus_msg bus_msg;
typedef struct shmbus_pool bus_pool;

#define BUS_WIRE_SIZE 80 /* 64-byte pool descriptor + 16-byte bus trailer */
#define BUS_OPEN_WAIT_MS 500 /* a new publisher waits this long at most for the topic's
                                registered subscribers to connect (api/shmbus.h) */

typedef struct bus_domain_opts {
    const char *config_path;  /* NULL: the embedded default */
    const bus_config *config; /* used instead of config_path when set */
    const char *runtime_dir;  /* overrides the config's runtime_dir */
    const char *shm_dir;
    const char *name;         /* participant name */
    unsigned sweep_interval_ms;
    bool observer;            /* read-only: for the monitor; no pubs, subs or loans */
} bus_domain_opts;

/* The sentence and the name of a status code (shmbus_errors.h); never NULL. */
const char *bus_strerror(int status);
const char *bus_errname(int status);
/* Write a reason into a caller's buffer (if it has one: why may be NULL or whylen 0) and
 * return SHMBUS_EINVAL: for calls that say why an input is refused in the caller's buffer. */
int bus_refuse(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((__format__(printf, 3, 4)));

/* Thread-local detail of the last error in this thread ("" if none). */
const char *bus_last_error(void);
void bus_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bus_clear_error(void);
/* A name given to an entry point: 0, or SHMBUS_EINVAL with the reason as the error detail. */
int bus_name_check(enum bus_name_kind kind, const char *s);

int bus_domain_open(const char *name, const bus_domain_opts *opts, bus_domain **out);
int bus_domain_close(bus_domain *d);
const char *bus_domain_name(const bus_domain *d);

int bus_pool_open(bus_domain *d, const char *name, const shmbus_pool_class *classes,
                  unsigned n, bus_pool **out);
/* SHMBUS_EINCOMPAT, with a detail naming both definitions of pool `name`: these classes and
 * the running domain's. */
int bus_pool_conflict(bus_domain *d, const char *name, const shmbus_pool_class *classes,
                      unsigned n);
int bus_pool_loan(bus_pool *p, uint64_t size, int timeout_ms, bus_msg **out);
int bus_pool_stats(const bus_pool *p, shmbus_class_stats *out, unsigned max);
int bus_acquire(bus_domain *d, const uint8_t *desc, bus_msg **out);
int bus_node_get(bus_pool *p, const char *name, uint64_t size, bus_msg **out, bool *created);

int bus_pub_open(bus_domain *d, const char *topic, bus_pub **out);
int bus_pub_close(bus_pub *p);
int bus_pub_loan(bus_pub *p, uint64_t size, bus_msg **out);
int bus_pub_publish(bus_pub *p, bus_msg *m, uint64_t length);
int bus_pub_subscribers(bus_pub *p);
int bus_pub_wait_subscribers(bus_pub *p, int n, int timeout_ms);

int bus_sub_open(bus_domain *d, const char *topic, bool history, bus_sub **out);
int bus_sub_close(bus_sub *s);
int bus_sub_recv(bus_sub *s, int timeout_ms, bus_msg **out);
int bus_sub_fd(bus_sub *s, int *fd);
int bus_sub_publishers(bus_sub *s);
int bus_sub_wait_publishers(bus_sub *s, int n, int timeout_ms);

void bus_sub_counters_get(const bus_sub *s, shmbus_sub_counters *c);

/* One (publisher, subscriber) pair's accounting; see shmbus_peer_counters in api/shmbus.h. */
typedef struct bus_peer_counters {
    uint64_t publisher;
    uint64_t base;
    uint64_t last_seq;
    uint64_t received, expired, dropped, overflow, invalid;
    uint64_t history, forged;
    bool closed;
} bus_peer_counters;
int bus_sub_peer_counters(bus_sub *s, bus_peer_counters *out, unsigned max);

bus_msg *bus_msg_clone(bus_msg *m);
int bus_msg_release(bus_msg *m);
void *bus_msg_data(const bus_msg *m);
uint64_t bus_msg_capacity(const bus_msg *m);
uint64_t bus_msg_length(const bus_msg *m);
uint64_t bus_msg_timestamp_ns(const bus_msg *m);
uint64_t bus_msg_seq(const bus_msg *m);
uint64_t bus_msg_publisher(const bus_msg *m);
int bus_msg_describe(bus_msg *m, uint64_t length, uint8_t out[64]);
int bus_node_lock(bus_msg *m);
int bus_node_unlock(bus_msg *m);

/* snapshot.c: read-only views for tools */
void bus_config_summarize(const bus_config *c, shmbus_config_summary *out);
int bus_snapshot_take(bus_domain *d, shmbus_snapshot **out);
void bus_snapshot_free(shmbus_snapshot *s);
uint64_t bus_latency_edge_ns(unsigned bucket);
uint64_t bus_latency_percentile_ns(const uint64_t *hist, double p);

#endif
