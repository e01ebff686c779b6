/* shmbus-bench latency and camera, private: the types, limits and declarations the fan-out's
 * files share. The fan-out: one publisher process fanning messages out to N subscriber
 * processes, through shmbus (either delivery path) or through plain nng pub/sub copying the
 * payload.
 * Names start with fo_ (the command's side, bench_fanout.c; the leader, bench_fanout_leader.c;
 * the subscribers and the environment, bench_fanout_sub.c) and bt_ (the two transports,
 * bench_transport.c).
 *
 * Processes. The calling process (the bench command) never touches nng nor opens a domain:
 * nng aborts a forked child that uses it after its parent did. For each group (a subscriber
 * count) it forks a leader, the publisher, which forks its N subscribers before it opens
 * anything; every process then opens its own domain and its own nng socket, so that both
 * transports run in the same processes, one after the other. The processes talk over pipes:
 * commands down to each subscriber, records (ready, acks with latencies, phase totals) up to
 * the leader, results up to the command.
 *
 * A step measures one payload size on each of its transports, interleaved so that a machine
 * whose load changes treats them alike: warm-up and latency (one message at a time, the next
 * only after every subscriber acknowledged the last) on one after the other, then throughput
 * (back to back, at most FO_WINDOW messages not yet acknowledged by the slowest subscriber)
 * on one after the other, then, if the step asks, an unpaced flood (back to back, nothing
 * waited for; what arrived is counted). Which transport goes first rotates from step to step.
 */
#ifndef SHMBUS_BENCH_FANOUT_DEFS_H
#define SHMBUS_BENCH_FANOUT_DEFS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "jsonw.h"
#include "shmbus.h"

#define FO_MAX_SUBS 8
#define FO_MAX_CLASSES SHMBUS_MAX_CLASSES /* the pool of a run: a class per step, and probes */
#define FO_MAX_STEPS (FO_MAX_CLASSES - 1) /* payload sizes of a run */
#define FO_MAX_GROUPS 4                    /* subscriber counts of a run */
#define FO_TOPIC "bench"        /* shmbus: the nng delivery path */
#define FO_TOPIC_SHM "bench-shm" /* shmbus-shm: "delivery": "shm", receivers block in recv */
#define FO_TOPIC_FD "bench-fd"   /* shmbus-shm-fd: the same, receivers poll shmbus_sub_fd */
#define FO_POOL "bench"
#define FO_HISTORY 16     /* messages each publisher keeps held: no window may exceed it */
#define FO_QUEUE_DEPTH 64 /* descriptors (shmbus) or messages (nng) queued per subscriber */
#define FO_WINDOW 8       /* throughput: messages in flight; <= FO_HISTORY, <= FO_QUEUE_DEPTH */
#define FO_PROBE_SIZE 64  /* the messages that prove every subscriber is connected */

/* The transports a group can run. */
enum fo_transport {
    FO_SHMBUS, /* "shmbus": topic FO_TOPIC, nng delivery */
    FO_NNG,    /* "nng-copy" */
    FO_SHM,    /* "shmbus-shm": topic FO_TOPIC_SHM, shm delivery, blocking recv */
    FO_SHM_FD, /* "shmbus-shm-fd": topic FO_TOPIC_FD, poll on shmbus_sub_fd */
    FO_FUTEX,  /* "futex": floor, one FUTEX_WAKE for every subscriber (bench_floor.c) */
    FO_UNIX,   /* "unix-socket": floor, 64 B and one subscriber only (bench_floor.c) */
    FO_NTRANSPORTS
};
#define FO_BIT(t) (1u << (t))
#define FO_CLASSIC (FO_BIT(FO_SHMBUS) | FO_BIT(FO_NNG)) /* what camera compares */
#define FO_SHM_BITS (FO_BIT(FO_SHM) | FO_BIT(FO_SHM_FD)) /* the ones on the shm domain */
#define FO_FLOOR_BITS (FO_BIT(FO_FUTEX) | FO_BIT(FO_UNIX)) /* latency phases only */
#define FO_RECV_SLICE_MS 100 /* a receive waits in slices this long to notice a stop */

/* "shmbus", "nng-copy", "shmbus-shm", "shmbus-shm-fd", "futex", "unix-socket"
 * (bench_transport.c) */
extern const char *const fo_transport_names[FO_NTRANSPORTS];

/* Where a run lives: a mkdtemp directory holding the domains' config files, their runtime
 * directory and the nng baseline's ipc socket. Inherited by every process through fork.
 * The shmbus transport's topic is on one domain, the shm-delivery ones on another with a
 * config of its own, so that a run without them (camera) does not map their pool. */
typedef struct fo_env {
    char dir[64];
    char config[96];     /* FO_TOPIC */
    char config_shm[96]; /* FO_TOPIC_SHM and FO_TOPIC_FD; "" if no step uses them */
    char url[112];       /* ipc://<dir>/copy.ipc */
    char domain[24];     /* base name; group k uses "<domain>-<k>", its shm domain
                          * "<domain>s-<k>" */
    uint64_t max_size;
    /* The floors (bench_floor.c): the futex's shared mapping (NULL if no step uses it),
     * its payload at floor_head, up to floor_max bytes; the unix socket pair ([0] the
     * sender's end, [1] the receiver's; -1 if unused). */
    void *floor_map;
    size_t floor_len, floor_head;
    uint64_t floor_max;
    int usock[2];
} fo_env;

/* The domain of group `group` on the shm config (shm) or the other one; buf of 32. */
void fo_domain_name(const fo_env *env, int group, bool shm, char *buf, size_t len);

struct fo_step;
/* Make the directory and write the configs: each has one pool with a class per size of the
 * steps that use its topics through a transport of `mask` (and FO_PROBE_SIZE), holding
 * enough blocks for FO_HISTORY per publisher of that size + max_subs + slack, and its
 * topics. Prints what failed; 0 or 1. */
int fo_env_create(fo_env *env, const struct fo_step *steps, int nsteps, int max_subs,
                  unsigned mask);
/* Remove what fo_env_create made; warns about anything else left in the directory. */
void fo_env_destroy(fo_env *env);

/* One payload size of a group. Counts of 0 skip the phase. With seconds > 0 the throughput
 * phase runs about that long instead of tput_count messages (its count comes from the rate
 * of a short calibration run). */
typedef struct fo_step {
    uint64_t size;
    uint32_t warmup;
    uint32_t lat_count;
    uint32_t tput_count;
    double seconds;
    unsigned transports;  /* FO_BIT()s: the transports measured at this size */
    unsigned flood;       /* FO_BIT()s: of them, the ones that get an unpaced flood too */
    uint32_t flood_count; /* messages of a flood */
} fo_step;

typedef struct fo_group {
    const fo_env *env;
    int nsubs;
    int index;            /* domain "<env.domain>-<index>" */
    unsigned transports;  /* FO_BIT()s: the ones this group runs (and the steps ask for) */
    const fo_step *steps;
    int nsteps;
    bool progress; /* a status line on stderr */
    const char *label;
} fo_group;

/* What a step measured. Latencies in ns; loss summed over subscribers and over every phase
 * of the step (warm-up included). */
typedef struct fo_result {
    uint64_t size;
    int32_t nsubs;
    int32_t transport;
    int32_t ran;           /* 0: the transport was not measured at this step */
    int32_t pad;
    uint64_t samples;      /* latency samples: messages x subscribers, missing ones excluded */
    double p50_ns;         /* over every sample of every subscriber */
    double p50_slowest_ns; /* over the per-message maximum across subscribers (slowest) */
    double p99_ns;         /* over the per-message maximum across subscribers (slowest) */
    double max_ns;         /* the largest sample */
    uint64_t tput_msgs;    /* messages of the throughput phase */
    double msgs_per_s;     /* received by every subscriber, first send to last receive */
    double pub_cpu_ns;     /* publisher process CPU time per message, throughput phase */
    double sub_cpu_ns;     /* subscriber process CPU time per message, mean over them */
    double pub_faults;     /* page faults of the publisher process per message, throughput */
    double sub_faults;     /* page faults of a subscriber process per message, mean */
    uint64_t expired;      /* shmbus counters: block gone before the subscriber got to it */
    uint64_t dropped;      /* shmbus counters: descriptor never arrived */
    uint64_t other;        /* shmbus counters: overflow (max_held) and invalid */
    uint64_t missing;      /* sequence numbers a subscriber never saw (all causes) */
    uint64_t stalls;       /* latency messages some subscriber did not acknowledge in time */
    uint64_t flood_sent;   /* unpaced flood (1 subscriber): messages published */
    uint64_t flood_received; /* of them, received by the subscriber */
    double flood_per_s;    /* received per second, first publish to last receive */
} fo_result;

/* Run a group: fork the leader, collect the results of step i into out[i][transport], reap
 * everything and check that the domain left nothing in shared memory. 0, or 1 after
 * printing what failed (*done says how many steps finished). */
int fo_run_group(const fo_group *g, fo_result (*out)[FO_NTRANSPORTS], int *done);

/* What a run measured: res[g][i][t] is step i of group g through transport t, for the
 * done[g] steps group g finished. */
typedef struct fo_run {
    fo_result res[FO_MAX_GROUPS][FO_MAX_STEPS][FO_NTRANSPORTS];
    int done[FO_MAX_GROUPS];
} fo_run;

/* A whole run: fo_env_create for the steps, then one group after the other with
 * subcounts[g] subscribers (the last count the largest) on the transports masks[g],
 * labelled "<what>: N subscribers", until one fails; then fo_env_destroy. 0, or 1 after
 * printing what failed. Large: make r static. */
int fo_run_all(fo_run *r, const char *what, const fo_step *steps, int nsteps,
               const int *subcounts, const unsigned *masks, int ngroups);
/* Whether any group finished a step: what to print, even after a failure. */
bool fo_run_measured(const fo_run *r);
/* Step i of group g through transport t, or NULL if the group did not get that far or did
 * not measure t at that step. */
const fo_result *fo_find(const fo_run *r, int t, int g, int i);
/* Messages some subscriber lost or did not acknowledge, every cause summed. */
uint64_t fo_lost(const fo_result *x);
/* Writes the name of step `step` (whose result x is) into buf. */
typedef void (*fo_step_name)(const fo_result *x, int step, char *buf, size_t len);
/* A line for every result of r that lost anything (fo_lost), group by group, step by step,
 * transport by transport: the transport, the step's name (right-aligned in `width`), the
 * subscriber count and the counters; `heading` before the first. Whether there was one. */
bool fo_print_losses(const fo_run *r, const char *heading, int width, fo_step_name name);
/* The results of r, in the same order, as a JSON array on stdout (jsonw). Each object has
 * transport, size and subscribers, then what `object` writes, then the CPU time and page
 * faults of publisher and subscriber per `unit` ("pub_cpu_us_per_<unit>", ...) and the
 * losses (expired, dropped, other_lost, missing, unacknowledged). */
void fo_print_json(const fo_run *r, const char *unit,
                   void (*object)(jsonw *w, const fo_result *x, int step));

/* Percentile p (0..100] of v[0..n), nearest rank; sorts v. 0 if n is 0. */
double fo_percentile(uint64_t *v, uint64_t n, double p);

/* ---- transports (bench_transport.c) ----------------------------------------------------- */

typedef struct bt_pub bt_pub;
typedef struct bt_sub bt_sub;

/* One message as a subscriber got it; the message itself was released already. */
typedef struct bt_rx {
    uint64_t seq;    /* 1, 2, ... per publisher */
    uint64_t lat_ns; /* receive time minus publish time, CLOCK_MONOTONIC */
    uint64_t len;
} bt_rx;

/* shmbus loss counters of a subscriber (all 0 for the nng baseline, which counts none). */
typedef struct bt_loss {
    uint64_t expired, dropped, other;
} bt_loss;

/* This process in messages: "publisher", "subscriber 2" (set after each fork). */
extern char fo_role[32];

/* Every bt_ call returns 0 or a negative SHMBUS_E* code, having printed on stderr what
 * failed, prefixed with fo_role. */
int bt_pub_open(const fo_env *env, enum fo_transport t, int group, bt_pub **out);
/* shmbus*: wait until n subscribers are connected; nng: nothing (the probes tell). */
int bt_pub_wait(bt_pub *p, int n, int timeout_ms);
/* Loan or allocate `size` bytes, fill every byte with the low byte of the sequence number
 * (the camera writing its frame), and publish. nng: the sequence number and the send time
 * overwrite the first 16 bytes just before nng_sendmsg. *seq: the message's number. */
int bt_pub_send(bt_pub *p, uint64_t size, uint64_t *seq);
int bt_pub_close(bt_pub *p);

int bt_sub_open(const fo_env *env, enum fo_transport t, int group, int k, bt_sub **out);
/* Receive one message, read its first and last byte, release it. SHMBUS_ETIMEDOUT after
 * timeout_ms, SHMBUS_EINTR once bench_interrupted is set. */
int bt_sub_recv(bt_sub *s, int timeout_ms, bt_rx *rx);
void bt_sub_loss(bt_sub *s, bt_loss *out);
int bt_sub_close(bt_sub *s);

/* ---- floors (bench_floor.c), the transports FO_FUTEX and FO_UNIX ------------------------ */

/* In fo_env_create, before anything forks: the futex's mapping with room for futex_size
 * bytes (0: none), the socket pair if unix_socket. 0, or 1 after printing what failed. */
int bf_env_create(fo_env *env, uint64_t futex_size, bool unix_socket);
void bf_env_destroy(fo_env *env);
/* Publish message `seq` of `size` bytes through floor t (the unix socket: 64 B only). */
int bf_send(const fo_env *env, int t, uint64_t seq, uint64_t size);
/* The sequence number of the message floor t holds (the futex's, which a group before may
 * have left; 0 for the socket): where a group's publisher and receivers start, so that its
 * first message changes the word. Only while nothing is sent. */
uint64_t bf_last(const fo_env *env, int t);
/* The next message through floor t after *last (the last sequence number received, which
 * it advances), waiting up to ms: 0, SHMBUS_ETIMEDOUT, or an error. */
int bf_recv(const fo_env *env, int t, uint64_t *last, int ms, bt_rx *rx);

#endif
