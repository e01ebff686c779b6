/* In-process objects of the bus layer (private to bus/). */
#ifndef BUS_INTERNAL_H
#define BUS_INTERNAL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "bus.h"
#include "registry.h"
#include "shmpool.h"

struct shmbus_domain {
    shmpool_domain *pd;
    struct reg_hdr *reg;
    bus_config cfg;
    char name[BUS_NAME_MAX + 1];
    char rundir[256];             /* derived from this process's configuration (domain_rundir.c) */
    uid_t owner_uid;              /* owner and group of the domain's control segment */
    gid_t owner_gid;
    bool group_shared;            /* the group may write the domain's segments */
    bool observer;
    pthread_mutex_t lock;         /* guards subs, pubs, npubs, nsubs */
    struct shmbus_sub *subs;      /* this process's open subscribers (discovery dials for them) */
    struct shmbus_pub *pubs;      /* its open publishers (discovery restores their endpoints) */
    int npubs, nsubs;
    pthread_t discovery;
    bool discovery_on;
    _Atomic bool stopping;
};

/* A message handle. `refs` counts the handles (clone/release); the last release drops the
 * one pool handle in `blk` and, for a received message, the subscriber's held count. */
struct shmbus_msg {
    shmbus_block *blk;
    struct shmbus_sub *sub; /* received through it: counts against its max_held */
    struct shmbus_pub *pub; /* loaned from it and not published yet */
    _Atomic uint32_t refs;
    uint64_t seq;           /* topic sequence (publisher's numbering) */
    uint64_t pub_id;
};

struct shmbus_pub {
    bus_domain *d;
    unsigned topic;
    const struct reg_topic *t;  /* &tdef */
    struct reg_topic tdef;      /* the topic's definition, copied and checked at open */
    struct reg_pub *reg;
    unsigned reg_idx;
    uint64_t id;
    shmbus_pool *pool;
    nng_socket sock;
    _Atomic int peers;          /* connected subscriber pipes */
    _Atomic int loans;          /* loaned, neither published nor released */
    pthread_mutex_t lock;       /* guards seq, hist, hist_n */
    uint64_t seq;
    shmbus_block *hist[BUS_MAX_HISTORY]; /* keep-last K: hist[seq % K] */
    unsigned hist_n;
    struct shmbus_pub *next; /* in d->pubs, guarded by d->lock */
};

/* What a subscriber knows of one publisher slot of the registry. */
struct sub_peer {
    uint64_t dial_id;  /* publisher id dialed in this registry slot (0: none) */
    nng_dialer dialer;
    uint64_t seq_id;   /* publisher whose sequence last_seq follows (0: none yet) */
    uint64_t last_seq; /* highest topic sequence seen from seq_id */
};

struct shmbus_sub {
    bus_domain *d;
    unsigned topic;
    const struct reg_topic *t;  /* &tdef */
    struct reg_topic tdef;      /* the topic's definition, copied and checked at open */
    shmbus_pool *pool;
    struct reg_sub *reg;
    unsigned reg_idx;
    nng_socket sock;
    int recvfd;
    _Atomic int peers;     /* connected publisher pipes */
    _Atomic int64_t held;  /* messages the user holds */
    pthread_mutex_t lock;  /* guards peer, pending, dial_error */
    struct sub_peer peer[REG_MAX_PUBS];
    char dial_error[160]; /* why the last dial failed ("" if none), for wait_publishers */
    bus_msg **pending;     /* history to deliver before live messages */
    unsigned npending, pending_head;
    struct shmbus_sub *next; /* in d->subs, guarded by d->lock */
};

/* domain.c */
int bus_errno(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool bus_owner_live(bus_domain *d, uint64_t uid);
void bus_wake_discovery(bus_domain *d);
int bus_topic_index(bus_domain *d, const char *name, unsigned *idx);
/* A process-local copy of topic entry idx, checked (EBADSEG saying what is wrong): what a
 * publisher or subscriber uses, so that later writes to the registry cannot change it. */
int bus_topic_copy(bus_domain *d, unsigned idx, struct reg_topic *out);
int bus_topic_pool(bus_domain *d, const struct reg_topic *t, shmbus_pool **out);
int bus_nng_status(int nng_rv);
/* nng_close, but give up waiting after timeout_ms (see domain.c). Returns whether it closed;
 * if not, memory the socket's callbacks use must stay allocated. */
bool bus_nng_close(nng_socket sock, int timeout_ms);
#define BUS_CLOSE_TIMEOUT_MS 2000

/* domain_rundir.c: the runtime directory and the endpoints in it */
/* d->rundir from runtime_dir (NULL: the config's, $SHMBUS_RUNTIME_DIR, /tmp); EINVAL if too
 * long for socket paths. */
int bus_rundir_resolve(bus_domain *d, const char *runtime_dir);
/* Record the owner and group of the domain: its control segment's in shm_dir, or, before
 * there is one, this process's with its configuration's group and mode. */
int bus_domain_owner(bus_domain *d, const char *shm_dir);
/* Before joining: refuse a runtime directory that is there and not to be trusted, before
 * anything is made (a failed open would otherwise clean up in it). */
int bus_rundir_precheck(bus_domain *d);
/* Make the directory or check the one there (owner, mode, no symlink): EACCES with the reason
 * if it is refused; EINCOMPAT if the running domain keeps its endpoints elsewhere. */
int bus_rundir_make(bus_domain *d);
/* Make the directory again if it was removed; whether it was. */
bool bus_rundir_restore(bus_domain *d);
/* "<rundir>/p<id>.ipc" */
void bus_endpoint_path(const bus_domain *d, uint64_t id, char *buf, size_t len);
/* The endpoint of the publisher in registry entry idx with id pub_id (read from the
 * registry): EBADSEG if the id is not one of that entry's. */
int bus_pub_endpoint(const bus_domain *d, unsigned idx, uint64_t pub_id, char *buf, size_t len);
/* Listen again on the endpoint of each publisher of this process whose socket file is gone
 * (its runtime directory was removed under it), so that new subscribers reach it. */
void bus_endpoints_restore(bus_domain *d);
/* Remove the socket file of a dead publisher (only a socket, only in the directory). */
void bus_endpoint_remove(const bus_domain *d, unsigned idx, uint64_t pub_id);

/* msg.c */
bus_msg *bus_msg_wrap(shmbus_block *blk);
void bus_wire_encode(const shmpool_desc *pd, unsigned topic, uint64_t pub_id, uint8_t out[BUS_WIRE_SIZE]);
int bus_wire_decode(const void *buf, size_t len, shmpool_desc *pd, unsigned *topic, uint64_t *pub_id);

/* pub.c */
int bus_watch_pipes(nng_socket sock, _Atomic int *peers);
int bus_wait_peers(_Atomic int *peers, int n, int timeout_ms);

/* sub.c */
void bus_sub_sync_peers(bus_sub *s);

#endif
