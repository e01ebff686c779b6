/* shmbus-bench latency and camera, private to bench_fanout.c (the command's side),
 * bench_fanout_leader.c (the leader, which publishes) and bench_fanout_sub.c (the subscriber
 * processes): the protocol between the processes of a group, over pipes.
 *
 * Every record is small enough (< PIPE_BUF) to be written and read whole:
 *   leader -> subscriber  fo_cmd: PROBE, SYNC, PHASE, FLOOD, QUIT
 *   subscriber -> leader  fo_rec: READY once opened; ACK of a probe, of a sync, of every
 *                         message of a latency phase (with its latency) or of every
 *                         `ack_every`-th of a throughput phase; DONE at the end of a phase
 *                         (its totals; after a flood, when it got a message past the
 *                         flood's last, which the leader keeps sending 1 ms apart until the
 *                         DONE comes); BYE after QUIT, with the close status
 *   leader -> command     up_msg: one RESULT per step, then END
 * Connecting: each subscriber opens both transports and says READY; the leader opens a
 * publisher on each, waits for the subscribers (shmbus), then sends 64-byte probes, 1 ms
 * apart and backing off, until every subscriber acknowledged one; SYNC then makes each read
 * up to the last probe, so every phase starts with empty queues. A phase ends for a
 * subscriber when it got its last message, or after SUB_TIMEOUT_MS without any (what it
 * never saw is counted as missing).
 */
#ifndef SHMBUS_BENCH_FANOUT_PROTO_H
#define SHMBUS_BENCH_FANOUT_PROTO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_fanout_defs.h"

#define PROBE_TIMEOUT_MS 20000
#define SUB_TIMEOUT_MS 10000 /* a subscriber waiting for the next message of its phase */

enum { CMD_PROBE = 1, CMD_SYNC, CMD_PHASE, CMD_FLOOD, CMD_QUIT };
enum { REC_READY = 1, REC_ACK, REC_DONE, REC_BYE };

struct fo_cmd {
    uint32_t op;
    uint32_t transport; /* PROBE, SYNC, PHASE, FLOOD: enum fo_transport */
    uint32_t ack_every; /* PHASE: 1 acks every message with its latency */
    uint32_t pad;
    uint64_t base;      /* PHASE, FLOOD: first sequence number; SYNC: read up to this one */
    uint64_t count;
    uint64_t size;
};

struct fo_rec {
    uint32_t kind;
    int32_t status;
    uint64_t seq;      /* ACK: the message; DONE: the last one seen */
    uint64_t lat_ns;   /* ACK in a latency phase */
    uint64_t received; /* DONE: ... */
    uint64_t missing;
    uint64_t cpu_ns;   /* process CPU time over the phase */
    uint64_t faults;   /* page faults (minor and major) of the process over the phase */
    uint64_t last_ns;  /* DONE of a flood: when the last message of the flood arrived */
    bt_loss loss;      /* counter increments over the phase */
};

_Static_assert(sizeof(struct fo_rec) <= PIPE_BUF, "written whole");

enum { UP_RESULT = 1, UP_END };

struct up_msg {
    int32_t kind;
    int32_t status;
    fo_result r[FO_NTRANSPORTS];
};

_Static_assert(sizeof(struct up_msg) <= PIPE_BUF, "written whole");

/* Pipes: bench_write_all and bench_read_all (bench.h). Every write, and every read but the
 * command's, stops with SHMBUS_EINTR when interrupted (`intr`); the command keeps reading
 * until its leader has cleaned up. */
/* Wait up to timeout_ms for one of fds[0..n) (skip[k]: not that one) to be readable, taking
 * them in turn from *turn; *k is the one. SHMBUS_ETIMEDOUT, SHMBUS_EINTR. */
int fo_poll_any(const int *fds, const bool *skip, int n, int timeout_ms, int *turn, int *k);

/* This process: CPU time (all threads) and page faults so far. */
uint64_t fo_proc_cpu_ns(void);
uint64_t fo_proc_faults(void);

/* Subscriber k of group g, in the forked child: commands from `in`, records to `out`. */
_Noreturn void fo_sub_main(const fo_group *g, int k, int in, int out);

/* The leader of group g, in the forked child: results and the end to `up`. */
_Noreturn void fo_leader_main(const fo_group *g, int up);

#endif
