/* shmbus: zero-copy publish/subscribe for processes on one Linux host.
 *
 * This umbrella header is the whole supported API. Tools and examples use nothing else.
 *
 * Conventions
 *   - Every function returning int returns 0 or a negative SHMBUS_E* code (shmbus_errors.h);
 *     shmbus_strerror() names it. Errors that come from the OS keep errno.
 *   - Objects are opaque pointers. `open`/`close` pairs own OS resources; a handle returned
 *     through an out-parameter is owned by the caller until the matching close/release.
 *   - Thread safety is stated per call. Unless said otherwise a call is thread-safe.
 *   - A domain opened before fork() cannot be used in the child: calls return
 *     SHMBUS_EFORKED. Open the domain again in the child (or exec).
 *   - No call prints, exits or aborts.
 */
#ifndef SHMBUS_H
#define SHMBUS_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMBUS_API __attribute__((visibility("default")))

#define SHMBUS_VERSION_MAJOR 0
#define SHMBUS_VERSION_MINOR 1

/* ---- errors ----------------------------------------------------------------------------- */

/* A sentence for a status code ("permission denied"); never NULL. Thread-safe. */
SHMBUS_API const char *shmbus_strerror(int status);
/* The code's name ("SHMBUS_EACCES"); never NULL. Thread-safe. */
SHMBUS_API const char *shmbus_errname(int status);

/* ---- domain ----------------------------------------------------------------------------- */

typedef struct shmbus_domain shmbus_domain;
typedef struct shmbus_pool shmbus_pool;
/* A handle on a block of shared memory this process holds: a loaned (writable) message or
 * a received (read-only) one. Handles are reference-counted inside the process. */
typedef struct shmbus_block shmbus_msg;

typedef struct shmbus_domain_opts {
    unsigned mode;            /* mode of created segments; 0: 0600 */
    long gid;                 /* group of created segments; -1: the creator's */
    const char *shm_dir;      /* NULL: $SHMBUS_SHM_DIR or /dev/shm */
    const char *name;         /* this participant's name in tools; NULL: the process name */
    unsigned sweep_interval_ms; /* dead-peer sweep period of the reaper thread; 0: 100 ms */
} shmbus_domain_opts;

/* Fill opts with the defaults. */
SHMBUS_API void shmbus_domain_opts_init(shmbus_domain_opts *opts);

/* Open (create if needed) the domain `name` ([A-Za-z0-9._-], at most 31 characters) and join
 * it as a participant; opts may be NULL. Starts a reaper thread that reclaims the blocks of
 * peers that die. If every earlier participant is dead, the domain starts clean.
 * Blocks briefly on the domain's open/close lock. *out is the caller's: shmbus_domain_close().
 * Errors: EINVAL, EACCES (not allowed by the segments' mode), ENOSPC, EBADSEG (a segment of
 * another layout version), ELIMIT (48 participants already), ESYS. */
SHMBUS_API int shmbus_domain_open(const char *name, const shmbus_domain_opts *opts,
                                  shmbus_domain **out);

/* Leave the domain and free d. SHMBUS_EBUSY (nothing changed) while this process still holds
 * messages from the domain. The last participant out removes all of the domain's segments.
 * Not thread-safe with other calls on d. */
SHMBUS_API int shmbus_domain_close(shmbus_domain *d);

/* ---- pools and messages ------------------------------------------------------------------ */

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
 * *out holds one handle: release it, or describe and hand it on. Lock-free; thread-safe. */
SHMBUS_API int shmbus_pool_loan(shmbus_pool *p, uint64_t size, int timeout_ms,
                                shmbus_msg **out);

/* Counters per size class (up to max); returns the number of classes. Reads only. */
SHMBUS_API int shmbus_pool_stats(const shmbus_pool *p, shmbus_class_stats *out, unsigned max);

/* One more handle on the same message (returns m). Lock-free; never fails. */
SHMBUS_API shmbus_msg *shmbus_msg_clone(shmbus_msg *m);

/* Release one handle. With the last handle in this process the process's hold goes; with
 * the last hold in any process the block returns to its pool. Lock-free; thread-safe. */
SHMBUS_API int shmbus_msg_release(shmbus_msg *m);

/* The payload: writable for a message this process loaned, read-only for one it received.
 * Valid until the handle is released. */
SHMBUS_API void *shmbus_msg_data(const shmbus_msg *m);
SHMBUS_API uint64_t shmbus_msg_capacity(const shmbus_msg *m);
/* Metadata set when the message was described/published (0 before). */
SHMBUS_API uint64_t shmbus_msg_length(const shmbus_msg *m);
SHMBUS_API uint64_t shmbus_msg_timestamp_ns(const shmbus_msg *m); /* CLOCK_MONOTONIC */

/* ---- descriptors (what crosses a process boundary) ---------------------------------------- */

/* 64 bytes, little-endian, versioned: pool id, class, index, generation, length, sequence,
 * timestamp, owner id. Safe to copy anywhere; it owns nothing. */
#define SHMBUS_DESC_SIZE 64
typedef struct shmbus_desc {
    uint8_t bytes[SHMBUS_DESC_SIZE];
} shmbus_desc;

/* Record the message's length (<= capacity) and timestamp, and fill *out. Once per loan, by
 * the process that loaned it; the message stays held by the caller's handle. */
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
SHMBUS_API int shmbus_node_unlock(shmbus_msg *node);

#ifdef __cplusplus
}
#endif

#endif
