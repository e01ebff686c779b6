/* In-process objects of the bus layer (private to bus/). */
#ifndef BUS_INTERNAL_H
#define BUS_INTERNAL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bus.h"
#include "registry.h"
#include "shmpool.h"

struct shmbus_domain {
    shmpool_domain *pd;
    struct reg_hdr *reg;
    struct reg_rings *rings;      /* shm delivery's, made on first use (ring.c); set once under
                                     lock, before any publisher or subscriber uses it */
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

/* Connected pipes of a socket (pipes.c). `lock` guards n; `cond` is signalled on every
 * change. */
struct bus_pipes {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
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
    unsigned history;           /* tdef's, checked again (1..BUS_MAX_HISTORY) */
    struct reg_pub *reg;
    unsigned reg_idx;
    uint64_t id;
    shmbus_pool *pool;
    nng_socket sock;
    struct bus_pipes pipes;     /* connected subscriber pipes (shm delivery: live subscribers) */
    bool shm;                   /* tdef.delivery is shm: ring, no socket (pub_shm.c) */
    struct reg_ring *ring;      /* shm: its ring in the registry */
    _Atomic int loans;          /* loaned, neither published nor released */
    pthread_mutex_t lock;       /* guards seq, hist, hist_n */
    uint64_t seq;
    shmbus_block *hist[BUS_MAX_HISTORY]; /* keep-last K: hist[seq % K] */
    unsigned hist_n;            /* non-NULL entries of hist */
    int wake_sock;              /* shm: datagram socket for fd wake-ups (-1 until needed) */
    uint32_t fd_epoch;          /* shm, guarded by lock: registry epoch fd_sub was made at */
    unsigned nfd;               /* shm, guarded by lock: subscribers waiting on their fd */
    struct { unsigned idx; uint64_t id; } fd_sub[REG_MAX_SUBS];
    struct shmbus_pub *next;    /* in d->pubs, guarded by d->lock */
};

/* The sequence field of a block the bus publishes: the low 48 bits are the publisher's
 * sequence, the high 16 bits the low 16 bits of its id (entry index and counter), so that a
 * block is tied to the publisher that published it (shmpool checks the field on acquire). */
#define BUS_SEQ_BITS 48
#define BUS_SEQ_MAX ((1ull << BUS_SEQ_BITS) - 1)
#define BUS_USER(pub_id, seq) (((uint64_t)(pub_id) << BUS_SEQ_BITS) | (seq))
#define BUS_USER_SEQ(u) ((u) & BUS_SEQ_MAX)
#define BUS_USER_TAG(u) ((u) >> BUS_SEQ_BITS)
#define BUS_PUB_TAG(pub_id) ((pub_id) & 0xffffu)

/* What a subscriber knows of one publisher it counts (sub_acct.c): one per publisher it has
 * seen, in s->accts, guarded by s->lock. Sequences <= base are not this subscriber's
 * (published before it first saw the publisher); every sequence in (base, last] is
 * accounted for exactly once, by one counter. */
struct sub_acct {
    struct sub_acct *next;
    uint64_t pub_id;
    uint64_t owner_uid;     /* participant that loans the publisher's blocks */
    unsigned slot;          /* its registry entry */
    int dialer_id;          /* our dialer to it (0: closed) */
    uint32_t pipe_id;       /* our connection to it (0: none yet) */
    uint32_t prev_pipe_id;  /* the one before, if nng reconnected: its messages still count */
    bool pipe_gone;         /* that connection closed: nothing more comes from it */
    bool departed;          /* its entry is no longer LIVE */
    bool started;           /* the gap before its first live message is accounted */
    bool closed;            /* its end of stream is accounted: final */
    bool ring;              /* shm delivery: read from its ring, not over a connection */
    uint64_t base, last, last_live; /* last_live: highest sequence that came over the pipe */
    uint64_t conn_seq;      /* its last sequence when we connected: a message missed up to
                               there could only come from the history (else expired); one
                               missed after it, nng dropped (dropped) */
    bus_peer_counters c;
};

/* A publisher entry a subscriber dials (by registry slot). Touched only by
 * bus_sub_sync_peers, whose calls never overlap for one subscriber. */
struct sub_peer {
    uint64_t dial_id;  /* publisher id dialed in this registry slot (0: none) */
    nng_dialer dialer;
    struct sub_acct *acct;
    uint64_t unreachable_id; /* publisher counted unreachable (once) */
    uint64_t failed_id;      /* publisher whose last dial failed (counted if it fails again) */
};

struct shmbus_sub {
    bus_domain *d;
    unsigned topic;
    const struct reg_topic *t;  /* &tdef */
    struct reg_topic tdef;      /* the topic's definition, copied and checked at open */
    unsigned max_held, queue_depth; /* tdef's, checked again */
    shmbus_pool *pool;
    struct reg_sub *reg;
    unsigned reg_idx;
    uint64_t sub_id;
    bool shm;               /* tdef.delivery is shm: rings, no socket (sub_shm.c) */
    nng_socket sock;
    int recvfd;             /* nng: the socket's; shm: the wake socket (-1 until asked for) */
    uint64_t rr_pub;        /* shm, guarded by lock: the publisher read last (round robin) */
    struct bus_pipes pipes; /* connected publisher pipes (shm delivery: rings attached) */
    _Atomic int64_t held;   /* messages the user holds */
    struct sub_peer peer[REG_MAX_PUBS];
    pthread_mutex_t lock;   /* guards accts, naccts, departing, pending*, dial_error, error */
    struct sub_acct *accts; /* newest first */
    unsigned naccts;
    unsigned departing;     /* accts departed but not closed */
    char dial_error[160];   /* why the last dial failed ("" if none), for wait_publishers */
    int error;              /* reported by the next recv (0: none), unless error_pub */
    uint64_t error_pub;     /* (the publisher it is about) is connected by then */
    char error_text[200];
    bus_msg **pending;      /* delivered, to return before reading the socket again */
    unsigned pending_cap, pending_head, npending;
    struct shmbus_sub *next; /* in d->subs, guarded by d->lock */
};

/* error.c: record a detail for status rc (keeping errno's text for OS errors); returns rc */
int bus_errno(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* registry.c */
int bus_reg_init(void *map, void *ctx); /* a new registry segment's header */
bool bus_owner_live(bus_domain *d, uint64_t uid);
/* Bump the registry's epoch and wake every discovery thread of the domain. */
void bus_wake_discovery(bus_domain *d);

/* discovery.c: this participant's discovery thread */
int bus_discovery_start(bus_domain *d);
void bus_discovery_stop(bus_domain *d);

/* topic.c */
int bus_topic_index(bus_domain *d, const char *name, unsigned *idx);
/* A process-local copy of topic entry idx, checked (EBADSEG saying what is wrong): what a
 * publisher or subscriber uses, so that later writes to the registry cannot change it. */
int bus_topic_copy(bus_domain *d, unsigned idx, struct reg_topic *out);
int bus_topic_pool(bus_domain *d, const struct reg_topic *t, shmbus_pool **out);

/* nng_close.c */
int bus_nng_status(int nng_rv);
/* nng_close, but give up waiting after timeout_ms (see nng_close.c). Returns whether it closed;
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
/* A publisher's sync marker, sent when a subscriber connects: "I have published up to
 * `last`" (what came before it over that connection is all that will). */
void bus_wire_sync_encode(unsigned topic, uint64_t pub_id, uint64_t last,
                          uint8_t out[BUS_WIRE_SIZE]);
bool bus_wire_sync_decode(const void *buf, size_t len, unsigned *topic, uint64_t *pub_id,
                          uint64_t *last);

/* pipes.c */
int bus_pipes_init(struct bus_pipes *pp);
void bus_pipes_destroy(struct bus_pipes *pp);
void bus_pipes_note(struct bus_pipes *pp, int delta);
void bus_pipes_set(struct bus_pipes *pp, int n);
int bus_pipes_count(struct bus_pipes *pp);
/* Wait until n pipes are connected: 0, or SHMBUS_ETIMEDOUT (timeout_ms < 0: forever). */
int bus_pipes_wait(struct bus_pipes *pp, int n, int timeout_ms);

/* registry.c: live subscribers of a topic, as a bit set over subscriber entries; how many. */
unsigned bus_topic_subs(bus_domain *d, unsigned topic, uint64_t need[REG_MAX_SUBS / 64]);

/* ring.c: shm delivery's ring, futex word and fd wake-up (registry.h) */
enum bus_ring_read { BUS_RING_OK, BUS_RING_LAPPED, BUS_RING_BAD };
/* Map the domain's ring segment (made by the first caller of the domain) if not yet. */
int bus_rings_open(bus_domain *d);
void bus_rings_close(bus_domain *d);
void bus_ring_reset(struct reg_ring *r);
/* Publish seq's wire message (only the ring's publisher, one thread at a time). */
void bus_ring_push(struct reg_ring *r, unsigned depth, uint64_t seq,
                   const uint8_t wire[BUS_WIRE_SIZE]);
uint64_t bus_ring_head(const struct reg_ring *r);
/* Sequence q's slot: OK (copied, to be validated), LAPPED (overwritten by a later sequence)
 * or BAD (holds no sequence q: corrupt). */
enum bus_ring_read bus_ring_read(const struct reg_ring *r, unsigned depth, uint64_t q,
                                 uint8_t wire[BUS_WIRE_SIZE]);
/* Bump the topic's futex word and wake its sleepers, if any. */
void bus_wake_topic(struct reg_hdr *reg, unsigned topic);
/* A subscriber about to sleep: counts it asleep, returns the word's value to wait on (look
 * for work after this, then bus_wake_wait, then bus_wake_done). */
uint32_t bus_wake_prepare(struct reg_hdr *reg, unsigned topic, unsigned sub_idx);
/* Whether a signal interrupted the sleep. */
bool bus_wake_wait(struct reg_hdr *reg, unsigned topic, uint32_t v, int wait_ms);
void bus_wake_done(struct reg_hdr *reg, unsigned topic, unsigned sub_idx);
/* Subscriber entry sub_idx's owner died: it sleeps no more, on any topic. */
void bus_wake_forget(struct reg_hdr *reg, unsigned sub_idx);
struct sockaddr_un;
socklen_t bus_wake_addr(const struct reg_hdr *reg, uint64_t sub_id, struct sockaddr_un *a);
int bus_wake_socket(void);
void bus_wake_fd(int sock, const struct reg_hdr *reg, struct reg_sub *rs, uint64_t sub_id);
/* Before looking at the rings: take the datagrams that made fd readable (if a publisher sent
 * one, or always: one syscall, for when nothing was found). */
void bus_wake_fd_drain(int fd, struct reg_sub *rs, bool always);

/* pub_shm.c: a publisher of an shm-delivery topic */
int bus_pub_shm_open(bus_pub *p);
/* Under p->lock: put seq's wire message in the ring and wake the subscribers. */
void bus_pub_shm_send(bus_pub *p, uint64_t seq, const uint8_t wire[BUS_WIRE_SIZE]);
/* Its subscriber count (the live subscribers of its topic); by the discovery thread. */
void bus_pub_shm_sync(bus_pub *p);
void bus_pub_shm_close(bus_pub *p);

/* pub.c: a registry entry of a dead owner becomes a tombstone or free; a tombstone no
 * subscriber needs becomes free. For the domain's reaper. Returns whether it changed. */
bool bus_pub_reap_entry(bus_domain *d, unsigned i);

/* sub.c */
void bus_sub_sync_peers(bus_sub *s);

/* sub_shm.c: a subscriber of an shm-delivery topic (callers do not hold s->lock) */
/* Start reading the ring of a's publisher. Caller holds s->lock. */
void bus_sub_shm_attach(bus_sub *s, struct sub_acct *a);
/* a's publisher left. Caller holds s->lock. */
void bus_sub_shm_depart(bus_sub *s, struct sub_acct *a);
/* Account the next descriptor of some ring (round robin); whether there was one. */
bool bus_sub_shm_read(bus_sub *s);
/* Sleep until a publisher of the topic publishes (or a publisher is reaped), at most
 * wait_ms (< 0: forever). */
int bus_sub_shm_wait(bus_sub *s, int wait_ms); /* 0 or SHMBUS_EINTR */
int bus_sub_shm_fd(bus_sub *s, int *fd);
void bus_sub_shm_close(bus_sub *s);

/* sub_acct.c (callers hold s->lock unless said otherwise) */
struct sub_acct *bus_acct_new(bus_sub *s, unsigned slot, uint64_t pub_id, uint64_t owner_uid,
                              uint64_t base);
struct sub_acct *bus_acct_by_pipe(bus_sub *s, uint32_t pipe_id);
struct sub_acct *bus_acct_by_dialer(bus_sub *s, int dialer_id);
/* a's publisher is connected by pipe_id now. */
void bus_acct_connected(bus_sub *s, struct sub_acct *a, uint32_t pipe_id);
/* A wire message that came over a's connection (a NULL: over no known one). */
void bus_acct_take(bus_sub *s, struct sub_acct *a, const void *buf, size_t len);
/* Deliver a's messages still held in its history ring, up to base, as history. */
void bus_acct_history(bus_sub *s, struct sub_acct *a);
/* Account the end of stream of departed publishers whose messages all came in; call only
 * when the socket has nothing queued. */
void bus_acct_settle(bus_sub *s);
/* shm delivery: account the next descriptor in a's ring (round robin is the caller's);
 * whether one was there. */
bool bus_acct_ring_next(bus_sub *s, struct sub_acct *a);
/* Does a's ring hold a descriptor not accounted yet? */
bool bus_acct_ring_ready(bus_sub *s, const struct sub_acct *a);
/* Clear this subscriber's need bit in the tombstone of entry slot (frees it if last). */
void bus_tomb_release(bus_domain *d, unsigned slot, unsigned sub_idx);
void bus_acct_free_all(bus_sub *s);

#endif
