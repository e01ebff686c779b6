/* shmbus: zero-copy publish/subscribe for processes on one Linux host.
 *
 * This umbrella header is the whole supported C API (with shmbus_frame.h, the camera frame
 * format). Tools and examples use nothing else. Include it as <shmbus.h> or
 * <shmbus/shmbus.h>; link libshmbus.so (pkg-config shmbus, or CMake shmbus::shmbus). C++:
 * <shmbus/shmbus.hpp> (docs/cpp.md).
 *
 * Conventions
 *   - Every function returning int returns 0 or a negative SHMBUS_E* code (shmbus_errors.h);
 *     shmbus_strerror() names it. Errors that come from the OS keep errno.
 *   - Objects are opaque pointers. `open`/`close` pairs own OS resources; a handle returned
 *     through an out-parameter is owned by the caller until the matching close/release.
 *   - Thread safety is stated per call. Unless said otherwise a call is thread-safe.
 *   - Handles passed in (domain, pool, publisher, subscriber, message, snapshot) must be ones
 *     this library returned and that are still open. Calls returning a status refuse a NULL
 *     handle with SHMBUS_EINVAL; accessors that return a value instead (shmbus_msg_data and
 *     the other shmbus_msg_* getters, shmbus_msg_clone, shmbus_domain_name) require a non-NULL
 *     handle: NULL is a precondition violation they do not check.
 *   - Blocking: besides the waits a call states, shmbus_pub_close and shmbus_sub_close may
 *     block up to 2 s each (the transport socket's close is bounded by that), and
 *     shmbus_domain_close joins the domain's threads.
 *   - Words: an observer is a domain opened with opts.observe (watch only). Counters are the
 *     numbers the *_stats calls copy out (shmbus_sub_stats: shmbus_sub_counters,
 *     shmbus_pool_stats: shmbus_class_stats) and that a snapshot carries.
 *   - A domain opened before fork() cannot be used in the child: calls return
 *     SHMBUS_EFORKED. Open the domain again in the child (or exec).
 *   - No call prints, exits or aborts.
 */
#ifndef SHMBUS_H
#define SHMBUS_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus_info.h"
#include "shmbus_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions. The library is built with GCC or Clang (ELF visibility);
 * other compilers that only read the header see nothing. */
#if defined(__GNUC__) || defined(__clang__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

#define SHMBUS_VERSION_MAJOR 0
#define SHMBUS_VERSION_MINOR 3
#define SHMBUS_VERSION_PATCH 0

/* ---- errors ----------------------------------------------------------------------------- */

/* A sentence for a status code ("permission denied"); never NULL. Thread-safe. The one
 * public name for a status's text (shmbus_errors.h lists the codes). */
SHMBUS_API const char *shmbus_strerror(int status);
/* The code's name ("SHMBUS_EACCES"); never NULL. Thread-safe. */
SHMBUS_API const char *shmbus_errname(int status);

/* ---- names and limits -------------------------------------------------------------------- */

/* Every name given to a call or written in a configuration file follows the rule of its kind,
 * checked the same way everywhere (docs/config.md, "Names"). A name that breaks it is refused,
 * never truncated or changed: SHMBUS_EINVAL from a call (SHMBUS_ECONFIG in a file), with
 * shmbus_last_error() saying what is wrong, e.g.
 * "invalid topic name \"../up\": it starts with '.' (allowed: ...)".
 *   domain       1..31 of A-Z a-z 0-9 _ -
 *   pool         1..31 of A-Z a-z 0-9 . _ -     not starting with '.'
 *   participant  1..31 of A-Z a-z 0-9 . _ - +   not starting with '.'
 *   topic        1..63 of A-Z a-z 0-9 . _ - /   in '/'-separated parts, each not empty and
 *                                               not starting with '.'
 *   node         1..47, as a topic
 * The limits are SHMBUS_DOMAIN_NAME_MAX, SHMBUS_POOL_NAME_MAX, SHMBUS_PARTICIPANT_NAME_MAX,
 * SHMBUS_TOPIC_NAME_MAX and SHMBUS_NODE_NAME_MAX (shmbus_types.h); a name buffer holds the
 * limit + 1 chars. */

/* ---- domain ----------------------------------------------------------------------------- */

typedef struct shmbus_domain shmbus_domain;
typedef struct shmbus_pool shmbus_pool;
typedef struct shmbus_pub shmbus_pub;
typedef struct shmbus_sub shmbus_sub;
/* A handle on a message (a block of shared memory this process holds): a loaned, writable
 * one or a received, read-only one. Handles are counted inside the process (clone/release). */
typedef struct shmbus_msg shmbus_msg;

/* The detail of the last failed call in this thread, e.g.
 * "cam.json: $.topics[1].pool: pool \"big\" is not defined". Every call that returns a status
 * clears it first and sets it when it fails, so after a failure it always describes that
 * call (at least "<call>: <status>"); after a success it is "". Valid until the next shmbus
 * call in this thread. */
SHMBUS_API const char *shmbus_last_error(void);

typedef struct shmbus_domain_opts {
    const char *config_path;  /* JSON file describing the domain (docs/config.md); NULL: the
                                 embedded default (one pool "default", any topic allowed) */
    const char *runtime_dir;  /* where the domain's ipc endpoints go, as <dir>/shmbus.<name>;
                                 NULL: the config's, else $SHMBUS_RUNTIME_DIR, else /tmp */
    const char *shm_dir;      /* NULL: $SHMBUS_SHM_DIR or /dev/shm */
    const char *name;         /* this participant's name in tools (a participant name, see
                                 "names" above); NULL: the process name */
    unsigned sweep_interval_ms; /* dead-peer sweep period of the reaper thread, used only
                                   while a peer is in another PID namespace (others are
                                   watched by pidfd); 0: 100 ms */
    bool observe;             /* open as an observer (monitors): watch only; join nothing,
                                 create nothing, write nothing; SHMBUS_ENOENT if the domain
                                 is not running. Only shmbus_snapshot_take,
                                 shmbus_domain_name and shmbus_domain_close work on it. */
} shmbus_domain_opts;

/* Fill opts with the defaults. */
SHMBUS_API void shmbus_domain_opts_init(shmbus_domain_opts *opts);

/* Open (create if needed) the domain `name` (a domain name, see "names" above; NULL: the
 * config's "domain", else "default") and join it as a participant; opts may be NULL. Creates
 * the config's pools and topics, or checks them against the running domain's. Starts two
 * threads: a reaper that reclaims the blocks of peers that die, and discovery, which connects
 * subscribers to new publishers. If every earlier participant is dead, the domain starts
 * clean. Blocks briefly on the domain's open/close lock. *out is the caller's:
 * shmbus_domain_close(). On error shmbus_last_error() says what and where.
 * Errors: EINVAL (a bad name, see "names"), ECONFIG (bad file), EINCOMPAT (the running domain
 * defines a pool or topic differently, or keeps its endpoints in another runtime directory),
 * EACCES (not allowed by the segments' mode, or a runtime directory that is refused: a
 * symbolic link, owned by another user, or writable by others; docs/config.md), ENOSPC (the
 * shm directory is full), EBADSEG (a segment of another layout version), ELIMIT (48
 * participants already), ESYS (e.g. the runtime directory cannot be made). */
SHMBUS_API int shmbus_domain_open(const char *name, const shmbus_domain_opts *opts,
                                  shmbus_domain **out);

/* Leave the domain and free d. SHMBUS_EBUSY (nothing changed) while publishers or
 * subscribers are open or this process still holds messages from the domain. Stops and joins
 * the domain's threads (reaper, discovery), so it blocks until their current pass ends. The
 * last participant out removes all of the domain's segments and its runtime directory.
 * SHMBUS_EINVAL for NULL. Not thread-safe with other calls on d. */
SHMBUS_API int shmbus_domain_close(shmbus_domain *d);

/* ---- publishers ------------------------------------------------------------------------- */

/* Publish on `topic` (created from the config's default_topic if the config does not list
 * it). Listens on an ipc endpoint recorded in the registry, where subscribers find it.
 * Start order: the subscribers of the topic that are open when this is called get its
 * messages from sequence 1. It waits for them to connect, at most SHMBUS_PUB_OPEN_WAIT_MS
 * (returns as soon as all have, at once if there are none); one that connects later gets the
 * messages it missed from the publisher's history, before the live ones, as soon as it
 * connects, and counts those no longer held as expired (docs/delivery.md).
 * *out is the caller's: shmbus_pub_close(). Thread-safe. */
#define SHMBUS_PUB_OPEN_WAIT_MS 500
SHMBUS_API int shmbus_pub_open(shmbus_domain *d, const char *topic, shmbus_pub **out);

/* Close: releases the publisher's history and leaves its last sequence in the registry until
 * its subscribers have counted what they never got of it. SHMBUS_EBUSY while messages it
 * loaned are neither published nor released. Subscribers keep the messages they hold. May
 * block up to 2 s closing its transport socket (a close that does not finish by then is left
 * to a helper thread). Not thread-safe with other calls on p. */
SHMBUS_API int shmbus_pub_close(shmbus_pub *p);

/* Loan a writable message of `size` bytes (<= the topic's max_message_size) from the topic's
 * pool. When the pool is full the publisher first gives up its own history, oldest first
 * (counted: shmbus_pub_info.hist_released), then the topic's policy applies: fail at once
 * (SHMBUS_EFULL) or wait up to its wait_ms (SHMBUS_ETIMEDOUT). Write the payload in place,
 * then publish or release. Thread-safe. */
SHMBUS_API int shmbus_pub_loan(shmbus_pub *p, uint64_t size, shmbus_msg **out);

/* Publish `length` bytes of a message loaned from p. Consumes the caller's handle (on
 * success and on SHMBUS_ETRANSPORT alike; on other errors the caller still owns it). The
 * publisher keeps the topic's last `history` messages held for slow and late subscribers.
 * Never blocks on subscribers: a subscriber whose queue is full loses the descriptor and
 * counts it. Thread-safe; messages are numbered 1, 2, 3... per publisher. */
SHMBUS_API int shmbus_pub_publish(shmbus_pub *p, shmbus_msg *m, uint64_t length);

/* Subscribers connected now; wait (woken by each connection; timeout_ms < 0: forever) until
 * at least n are. */
SHMBUS_API int shmbus_pub_subscribers(shmbus_pub *p);
SHMBUS_API int shmbus_pub_wait_subscribers(shmbus_pub *p, int n, int timeout_ms);

/* ---- subscribers ------------------------------------------------------------------------ */

typedef struct shmbus_sub_opts {
    bool history; /* deliver first the messages the topic's publishers still hold */
} shmbus_sub_opts;

/* Subscribe to `topic`: connects to every publisher of it, now and later. opts may be NULL.
 * It counts every message of a publisher opened after it from sequence 1, and of a publisher
 * already running every message after the last one published when it opened (those before
 * are delivered only with opts.history, as history). *out is the caller's:
 * shmbus_sub_close(). */
SHMBUS_API int shmbus_sub_open(shmbus_domain *d, const char *topic, const shmbus_sub_opts *opts,
                               shmbus_sub **out);

/* Close. SHMBUS_EBUSY while messages received through it are not released. May block up to
 * 2 s closing its transport socket, as shmbus_pub_close. Not thread-safe with other calls on
 * s. */
SHMBUS_API int shmbus_sub_close(shmbus_sub *s);

/* Receive the next message. timeout_ms < 0 blocks until one comes; 0 returns SHMBUS_EAGAIN
 * at once if none is ready; > 0 waits up to that long (SHMBUS_ETIMEDOUT). A signal handled
 * while waiting ends the wait with SHMBUS_EINTR. *out is one
 * read-only handle: release it. Descriptors whose message is gone ("expired"), beyond the
 * topic's max_held, or malformed, forged or replayed ("invalid": a descriptor must name a
 * block its publisher published, come over that publisher's own connection and not repeat
 * a sequence) are counted (shmbus_sub_stats) and skipped, never returned. A publisher of the
 * topic it cannot connect to (e.g. no file descriptor left) is counted as unreachable, and
 * the next call returns SHMBUS_ETRANSPORT once, naming it, unless it has connected by then;
 * it keeps trying to connect.
 * Thread-safe, but messages are numbered per publisher, so one receiving thread keeps order. */
SHMBUS_API int shmbus_sub_recv(shmbus_sub *s, int timeout_ms, shmbus_msg **out);

/* A file descriptor that polls readable (POLLIN) when a descriptor is waiting; then call
 * shmbus_sub_recv(s, 0, ...) until SHMBUS_EAGAIN. Do not read or close it. After opening with
 * history, drain with recv(s, 0) first: history does not make the fd readable. On a topic
 * with "delivery": "shm" the fd is made by the first call (a subscriber that never calls it
 * costs its publishers nothing); SHMBUS_ELIMIT/ESYS if no socket can be made. */
SHMBUS_API int shmbus_sub_fd(shmbus_sub *s, int *fd);

/* Publishers connected now; wait (on connection events, timeout_ms < 0: forever) until at
 * least n are (SHMBUS_ETIMEDOUT with how many did). */
SHMBUS_API int shmbus_sub_publishers(shmbus_sub *s);
SHMBUS_API int shmbus_sub_wait_publishers(shmbus_sub *s, int n, int timeout_ms);

/* Copy the subscriber's counters (shmbus_sub_counters, in shmbus_info.h). Reads only. */
SHMBUS_API int shmbus_sub_stats(const shmbus_sub *s, shmbus_sub_counters *out);

/* The accounting of one (publisher, subscriber) pair. Every sequence of the publisher after
 * `base` up to `last_seq` is counted exactly once, so that
 *     last_seq - base == received + expired + dropped + overflow + invalid
 * holds at every moment, and once `closed` (the publisher left, and the subscriber read
 * everything that came from it), last_seq is the last sequence it published: every message
 * published after the subscriber joined is accounted. base is 0 when the subscriber was open
 * before the publisher, else the publisher's last sequence when the subscriber first saw it.
 * history counts messages from at or before base delivered by opts.history; forged counts
 * descriptors that came over the publisher's connection but are not its messages (forged,
 * replayed, another publisher's or topic's). Both are outside the identity; the subscriber's
 * own invalid counter includes forged. */
typedef struct shmbus_peer_counters {
    uint64_t publisher;     /* publisher id (shmbus_msg_publisher) */
    uint64_t base;
    uint64_t last_seq;
    uint64_t received, expired, dropped, overflow, invalid;
    uint64_t history, forged;
    bool closed;
} shmbus_peer_counters;

/* The pairs of this subscriber, newest publisher first: copies up to max, returns how many
 * there are (departed publishers included; the 1024 newest are kept). Ends of streams that
 * can be accounted now are accounted first. Thread-safe. */
SHMBUS_API int shmbus_sub_peer_counters(shmbus_sub *s, shmbus_peer_counters *out, unsigned max);

/* ---- pools and messages (below topics: direct use of the shared-memory pools) ------------ */

/* Create the pool `name` with classes (any order), or open it if it exists; with
 * nclasses == 0 only open. An existing pool with other classes: SHMBUS_EINCOMPAT. Creating
 * reserves all its memory now: a full /dev/shm gives SHMBUS_ENOSPC here, never SIGBUS later.
 * The pool is owned by d (valid until shmbus_domain_close). Thread-safe. */
SHMBUS_API int shmbus_pool_open(shmbus_domain *d, const char *name,
                                const shmbus_pool_class *classes, unsigned nclasses,
                                shmbus_pool **out);

/* Loan a writable message of at least `size` bytes from the smallest class that fits.
 * timeout_ms 0: fail at once (SHMBUS_EFULL); > 0: wait that long for a release
 * (SHMBUS_ETIMEDOUT); < 0: wait forever. Waiting sleeps; it does not spin.
 * *out holds one handle: release it, or describe and hand it on. Thread-safe; no lock in
 * shared memory. */
SHMBUS_API int shmbus_pool_loan(shmbus_pool *p, uint64_t size, int timeout_ms,
                                shmbus_msg **out);

/* Counters per size class (up to max); returns the number of classes. Reads only. */
SHMBUS_API int shmbus_pool_stats(const shmbus_pool *p, shmbus_class_stats *out, unsigned max);

/* One more handle on the same message (returns m). Lock-free; never fails. */
SHMBUS_API shmbus_msg *shmbus_msg_clone(shmbus_msg *m);

/* Release one handle. With the last handle in this process the process's hold goes; with
 * the last hold in any process the block returns to its pool. Thread-safe; no lock in
 * shared memory. */
SHMBUS_API int shmbus_msg_release(shmbus_msg *m);

/* The payload: writable for a message this process loaned, read-only for one it received.
 * Valid until the handle is released. */
SHMBUS_API void *shmbus_msg_data(const shmbus_msg *m);
SHMBUS_API uint64_t shmbus_msg_capacity(const shmbus_msg *m);
/* Metadata set when the message was published or described (0 before). */
SHMBUS_API uint64_t shmbus_msg_length(const shmbus_msg *m);
SHMBUS_API uint64_t shmbus_msg_timestamp_ns(const shmbus_msg *m); /* CLOCK_MONOTONIC */
SHMBUS_API uint64_t shmbus_msg_seq(const shmbus_msg *m);       /* 1, 2, ... per publisher */
SHMBUS_API uint64_t shmbus_msg_publisher(const shmbus_msg *m); /* publisher id, 0 if none */

/* ---- descriptors (what crosses a process boundary) ---------------------------------------- */

/* 64 bytes, little-endian, versioned: pool id, class, index, generation, length, sequence,
 * timestamp, owner id. Safe to copy anywhere; it owns nothing. */
#define SHMBUS_DESC_SIZE 64
typedef struct shmbus_desc {
    uint8_t bytes[SHMBUS_DESC_SIZE];
} shmbus_desc;

/* Pool level: record the message's length (<= capacity) and timestamp, and fill *out. Once
 * per loan from shmbus_pool_loan, by the process that loaned it; the message stays held by
 * the caller's handle. (Messages of a publisher are described by shmbus_pub_publish.) */
SHMBUS_API int shmbus_msg_describe(shmbus_msg *m, uint64_t length, shmbus_desc *out);

/* Take a hold on the message a descriptor names (from any process of the domain). Succeeds
 * only while someone still holds exactly that message; SHMBUS_EEXPIRED if it was released
 * (and maybe reused). Forged or corrupt descriptors: SHMBUS_EBADDESC or SHMBUS_ENOENT.
 * *out is one handle, read-only payload. Thread-safe. */
SHMBUS_API int shmbus_domain_acquire(shmbus_domain *d, const shmbus_desc *desc,
                                     shmbus_msg **out);

/* ---- named nodes ---------------------------------------------------------------------------- */

/* Get the message named `name` in pool p (shared by every process that gets it), creating it
 * zero-filled with capacity >= size if nobody holds it; *created says which (may be NULL).
 * It is destroyed when the last process releases it. Its payload is writable by every
 * holder: guard changes with shmbus_node_lock(). */
SHMBUS_API int shmbus_node_get(shmbus_pool *p, const char *name, uint64_t size,
                               shmbus_msg **out, bool *created);
/* Lock the node's robust, process-shared mutex (blocks). SHMBUS_EOWNERDEAD means the lock is
 * now the caller's but its previous holder died holding it: repair the payload. */
SHMBUS_API int shmbus_node_lock(shmbus_msg *node);
/* Unlock the node's mutex, which the calling thread must hold (from shmbus_node_lock).
 * SHMBUS_EINVAL for NULL or when the mutex cannot be unlocked (not held by this thread),
 * SHMBUS_ENOENT if node is not a named node. Never blocks. */
SHMBUS_API int shmbus_node_unlock(shmbus_msg *node);

/* ---- configuration ------------------------------------------------------------------------ */

/* Parse and validate a domain file (NULL: the embedded default) without opening anything.
 * SHMBUS_ECONFIG with shmbus_last_error() = "<file>: <json path>: <reason>" (or
 * "<file>:<line>:<col>: syntax error: ..."); SHMBUS_ENOENT/EACCES if it cannot be read. */
SHMBUS_API int shmbus_config_load(const char *path, shmbus_config_summary *out);

/* A size written as text, in the grammar of configuration files (docs/config.md, "Sizes"):
 * a non-negative number, optionally with a fraction, optionally one space, then nothing
 * (bytes), B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000):
 * "4096", "8MiB", "1.5 MiB", "6MB". The result must be a whole number of bytes that fits in
 * 64 bits. Returns 0 with the bytes in *out, or SHMBUS_EINVAL with *out unchanged and
 * shmbus_last_error() = "bad size \"8KB\": unknown unit \"KB\" (use ...)". */
SHMBUS_API int shmbus_parse_size(const char *text, uint64_t *out);

/* ---- introspection (tools) ---------------------------------------------------------------- */

/* Copy the state of a running domain: topics with their publishers and subscribers and all
 * their counters, pools with per-class usage and the blocks in use with their holders, and
 * participants. Reads only: takes no hold and changes no counter. d may be a participant or
 * an observer (opts.observe). *out is the caller's: shmbus_snapshot_free(). */
SHMBUS_API int shmbus_snapshot_take(shmbus_domain *d, shmbus_snapshot **out);
/* Free a snapshot and everything it points to; NULL does nothing. */
SHMBUS_API void shmbus_snapshot_free(shmbus_snapshot *s);

/* Latency histograms (shmbus_sub_info.latency): the lower edge of a bucket, and the p-th
 * percentile (0 < p <= 100) of a histogram, or of the difference of two taken at different
 * times (pass the element-wise difference). Accurate to the bucket (+-12%). */
SHMBUS_API uint64_t shmbus_latency_edge_ns(unsigned bucket);
SHMBUS_API uint64_t shmbus_latency_percentile_ns(const uint64_t hist[SHMBUS_LAT_BUCKETS],
                                                 double p);

/* The domain's name (as opened: the config's or "default" when NULL was given). Valid until
 * shmbus_domain_close(d); d must not be NULL. Thread-safe; works on an observer too. */
SHMBUS_API const char *shmbus_domain_name(const shmbus_domain *d);

/* Domains that have a control segment in shm_dir (NULL: $SHMBUS_SHM_DIR or /dev/shm): copies
 * up to max names, returns how many there are. Files whose name part is not a valid domain
 * name are not domains and are left out. */
SHMBUS_API int shmbus_domain_list(const char *shm_dir, char (*names)[SHMBUS_DOMAIN_NAME_MAX + 1],
                                  unsigned max);

/* Remove what a domain left behind (its segments and runtime directory) without joining it:
 * for a domain whose processes all died. SHMBUS_EBUSY while any participant is alive. The
 * runtime directory removed is $SHMBUS_RUNTIME_DIR/shmbus.<name> (else /tmp/shmbus.<name>):
 * no path is taken from the domain's shared memory. */
SHMBUS_API int shmbus_domain_remove(const char *name, const char *shm_dir);

#ifdef __cplusplus
}
#endif

#endif
