/* shmbus-bench latency and camera: the leader of a group, the publisher process. It forks the
 * subscribers, connects them on both transports, runs the steps and sends what each measured
 * up to the command. The processes and their protocol: bench_fanout_defs.h and
 * bench_fanout_proto.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_fanout_proto.h"
#include "shmbus.h"

#define OPEN_TIMEOUT_MS 60000 /* a subscriber opening (the first one creates the pools) */
#define ACK_TIMEOUT_MS 3000   /* latency: give up on one subscriber's ack of one message */
#define DONE_TIMEOUT_MS (SUB_TIMEOUT_MS + 5000)
#define MAX_STALLS 10         /* latency acks given up on in one phase before failing */
#define CALIBRATE_MSGS 32     /* timed throughput: the run that measures the rate first */
#define MARK_MS 1             /* flood: the pause between two messages past its end */

/* ---- the leader (publisher) ------------------------------------------------------------- */

struct leader {
    const fo_group *g;
    int n;                /* subscribers */
    int forked;           /* of them forked so far */
    pid_t pid[FO_MAX_SUBS];
    int cmd[FO_MAX_SUBS]; /* to subscriber k */
    int rec[FO_MAX_SUBS]; /* from subscriber k */
    int turn;
    bt_pub *pub[FO_NTRANSPORTS];
    uint64_t seq[FO_NTRANSPORTS]; /* the last message published */
};

static int leader_fail(const char *what, int k, int rc)
{
    if (rc == SHMBUS_EINTR)
        return rc;
    char who[32] = "";
    if (k >= 0)
        snprintf(who, sizeof who, " (subscriber %d)", k + 1);
    fprintf(stderr, "shmbus-bench: %s: %s%s: %s (%s)\n", fo_role, what, who, shmbus_errname(rc),
            rc == SHMBUS_ECLOSED ? "the process is gone" : shmbus_strerror(rc));
    return rc;
}

/* Fork the subscribers; nothing of nng or shmbus is open yet in this process. */
static int spawn_subs(struct leader *L, int up)
{
    for (int k = 0; k < L->n; k++) {
        int down[2], back[2];
        if (pipe(down) != 0)
            return leader_fail("pipe", -1, SHMBUS_ESYS);
        if (pipe(back) != 0) {
            close(down[0]);
            close(down[1]);
            return leader_fail("pipe", -1, SHMBUS_ESYS);
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(up);
            for (int j = 0; j < k; j++) {
                close(L->cmd[j]);
                close(L->rec[j]);
            }
            close(down[1]);
            close(back[0]);
            fo_sub_main(L->g, k, down[0], back[1]);
        }
        close(down[0]);
        close(back[1]);
        if (pid < 0) {
            close(down[1]);
            close(back[0]);
            return leader_fail("fork", -1, SHMBUS_ESYS);
        }
        L->pid[k] = pid;
        L->cmd[k] = down[1];
        L->rec[k] = back[0];
        L->forked = k + 1;
    }
    return 0;
}

/* The next record of subscriber k, waiting up to timeout_ms. */
static int rec_from(struct leader *L, int k, int timeout_ms, struct fo_rec *r)
{
    int turn = 0, j;
    int rc = fo_poll_any(&L->rec[k], NULL, 1, timeout_ms, &turn, &j);
    if (rc == 0)
        rc = bench_read_all(L->rec[k], r, sizeof *r, true);
    return rc;
}

/* The next record of any subscriber not skipped. */
static int rec_any(struct leader *L, const bool *skip, int timeout_ms, int *k, struct fo_rec *r)
{
    int rc = fo_poll_any(L->rec, skip, L->n, timeout_ms, &L->turn, k);
    if (rc == 0)
        rc = bench_read_all(L->rec[*k], r, sizeof *r, true);
    return rc;
}

static int cmd_all(struct leader *L, struct fo_cmd c)
{
    for (int k = 0; k < L->n; k++) {
        int rc = bench_write_all(L->cmd[k], &c, sizeof c, true);
        if (rc)
            return leader_fail("sending a command", k, rc);
    }
    return 0;
}

/* A record of subscriber k that is not the expected kind, or reports a failure. */
static int bad_rec(int k, const struct fo_rec *r, unsigned kind, const char *when)
{
    if (r->status)
        return leader_fail(when, k, r->status);
    fprintf(stderr, "shmbus-bench: %s: %s: subscriber %d sent record %u, expected %u\n",
            fo_role, when, k + 1, r->kind, kind);
    return SHMBUS_EINVAL;
}

static int send_one(struct leader *L, int t, uint64_t size)
{
    return bt_pub_send(L->pub[t], size, &L->seq[t]);
}

/* Make every subscriber read up to the last message published through t. */
static int sync_subs(struct leader *L, int t)
{
    int rc = cmd_all(L, (struct fo_cmd){.op = CMD_SYNC, .transport = (uint32_t)t,
                                        .base = L->seq[t]});
    for (int k = 0; k < L->n && rc == 0; k++) {
        struct fo_rec r;
        if ((rc = rec_from(L, k, DONE_TIMEOUT_MS, &r)) != 0)
            return leader_fail("syncing", k, rc);
        if (r.kind != REC_ACK || r.status)
            return bad_rec(k, &r, REC_ACK, "syncing");
    }
    return rc;
}

/* Probe until every subscriber got a message, then sync every one to the last probe. */
static int connect_subs(struct leader *L, int t)
{
    bool acked[FO_MAX_SUBS] = {false};
    int left = L->n, rc, k;
    if ((rc = cmd_all(L, (struct fo_cmd){.op = CMD_PROBE, .transport = (uint32_t)t})) != 0)
        return rc;
    uint64_t deadline = tool_now_ns() + PROBE_TIMEOUT_MS * 1000000ull;
    for (int wait_ms = 1; left > 0; wait_ms = wait_ms < 64 ? 2 * wait_ms : 100) {
        if (tool_now_ns() > deadline) {
            for (k = 0; k < L->n && acked[k]; k++)
                ;
            return leader_fail("no probe message arrived", k, SHMBUS_ETIMEDOUT);
        }
        if ((rc = send_one(L, t, FO_PROBE_SIZE)) != 0)
            return rc;
        struct fo_rec r;
        while ((rc = rec_any(L, acked, wait_ms, &k, &r)) == 0) {
            if (r.kind != REC_ACK || r.status)
                return bad_rec(k, &r, REC_ACK, "probing");
            acked[k] = true;
            if (--left == 0)
                break;
        }
        if (rc && rc != SHMBUS_ETIMEDOUT)
            return leader_fail("probing", k, rc);
    }
    return sync_subs(L, t);
}

/* Add a DONE record to the step's totals. */
static void add_done(fo_result *res, const struct fo_rec *r, uint64_t *sub_cpu,
                     uint64_t *sub_faults)
{
    res->expired += r->loss.expired;
    res->dropped += r->loss.dropped;
    res->other += r->loss.other;
    res->missing += r->missing;
    if (sub_cpu)
        *sub_cpu += r->cpu_ns;
    if (sub_faults)
        *sub_faults += r->faults;
}

static int await_done(struct leader *L, fo_result *res, const char *when)
{
    for (int k = 0; k < L->n; k++) {
        struct fo_rec r;
        int rc;
        do
            rc = rec_from(L, k, DONE_TIMEOUT_MS, &r);
        while (rc == 0 && r.kind == REC_ACK && r.status == 0); /* late acks */
        if (rc)
            return leader_fail(when, k, rc);
        if (r.kind != REC_DONE || r.status)
            return bad_rec(k, &r, REC_DONE, when);
        add_done(res, &r, NULL, NULL);
    }
    return 0;
}

/* One message at a time through transport t; lat[i * n + k] (if lat) is message i at
 * subscriber k, UINT64_MAX if it never acknowledged it. */
static int latency_phase(struct leader *L, int t, uint64_t size, uint32_t count, uint64_t *lat,
                         fo_result *res)
{
    int rc = cmd_all(L, (struct fo_cmd){.op = CMD_PHASE, .transport = (uint32_t)t,
                                        .ack_every = 1, .base = L->seq[t] + 1, .count = count,
                                        .size = size});
    uint64_t stalls = 0;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        if ((rc = send_one(L, t, size)) != 0)
            break;
        for (int k = 0; k < L->n && rc == 0; k++) {
            struct fo_rec r;
            uint64_t v = UINT64_MAX;
            while ((rc = rec_from(L, k, ACK_TIMEOUT_MS, &r)) == 0) {
                if (r.kind != REC_ACK || r.status)
                    return bad_rec(k, &r, REC_ACK, "latency");
                if (r.seq == L->seq[t]) {
                    v = r.lat_ns;
                    break;
                }
            }
            if (rc == SHMBUS_ETIMEDOUT) {
                rc = 0;
                if (++stalls > MAX_STALLS)
                    return leader_fail("subscriber stopped acknowledging", k, SHMBUS_ETIMEDOUT);
            } else if (rc)
                return leader_fail("latency", k, rc);
            if (lat)
                lat[(uint64_t)i * (uint64_t)L->n + (uint64_t)k] = v;
        }
    }
    res->stalls += stalls;
    return rc ? rc : await_done(L, res, "latency");
}

/* Back to back through transport t, at most FO_WINDOW messages not yet acknowledged by the
 * slowest subscriber. *rate: messages per second received by every subscriber. */
static int throughput_phase(struct leader *L, int t, uint64_t size, uint64_t count,
                            fo_result *res, double *rate)
{
    const uint64_t base = L->seq[t] + 1, end = base + count - 1;
    uint64_t acked[FO_MAX_SUBS], sub_cpu = 0, sub_faults = 0;
    bool done[FO_MAX_SUBS] = {false};
    int ndone = 0, rc, k;
    for (k = 0; k < L->n; k++)
        acked[k] = base - 1;
    rc = cmd_all(L, (struct fo_cmd){.op = CMD_PHASE, .transport = (uint32_t)t,
                                    .ack_every = FO_WINDOW / 2, .base = base, .count = count,
                                    .size = size});
    uint64_t t0 = tool_now_ns(), c0 = fo_proc_cpu_ns(), f0 = fo_proc_faults();
    while (rc == 0 && ndone < L->n) {
        uint64_t low = UINT64_MAX;
        for (k = 0; k < L->n; k++)
            low = acked[k] < low ? acked[k] : low;
        if (L->seq[t] < end && L->seq[t] - low < FO_WINDOW) {
            rc = send_one(L, t, size);
            continue;
        }
        struct fo_rec r;
        if ((rc = rec_any(L, done, SUB_TIMEOUT_MS, &k, &r)) != 0)
            return leader_fail("throughput", k, rc);
        if (r.status || (r.kind != REC_ACK && r.kind != REC_DONE))
            return bad_rec(k, &r, REC_DONE, "throughput");
        if (r.kind == REC_ACK) {
            acked[k] = r.seq > acked[k] ? r.seq : acked[k];
            continue;
        }
        if (L->seq[t] < end) {
            fprintf(stderr, "shmbus-bench: %s: subscriber %d ended the phase at %llu of %llu "
                            "(nothing for %d ms)\n", fo_role, k + 1,
                    (unsigned long long)(r.seq - base + 1), (unsigned long long)count,
                    SUB_TIMEOUT_MS);
            return SHMBUS_ETIMEDOUT;
        }
        done[k] = true;
        acked[k] = end;
        ndone++;
        add_done(res, &r, &sub_cpu, &sub_faults);
    }
    if (rc)
        return rc;
    uint64_t ns = tool_now_ns() - t0, cpu = fo_proc_cpu_ns() - c0;
    *rate = (double)count * 1e9 / (double)ns;
    res->tput_msgs = count;
    res->msgs_per_s = *rate;
    res->pub_cpu_ns = (double)cpu / (double)count;
    res->sub_cpu_ns = (double)sub_cpu / (double)count / L->n;
    res->pub_faults = (double)(fo_proc_faults() - f0) / (double)count;
    res->sub_faults = (double)sub_faults / (double)count / L->n;
    return 0;
}

/* Warm-up and latency of one step through transport t. */
static int step_latency(struct leader *L, int t, const fo_step *st, fo_result *res)
{
    int rc = 0;
    if (st->warmup)
        rc = latency_phase(L, t, st->size, st->warmup, NULL, res);
    if (rc || st->lat_count == 0)
        return rc;
    uint64_t n = (uint64_t)st->lat_count * (uint64_t)L->n;
    uint64_t *lat = malloc(n * sizeof *lat), *worst = malloc(st->lat_count * sizeof *worst);
    if (!lat || !worst)
        rc = leader_fail("malloc", -1, SHMBUS_ENOMEM);
    if (rc == 0)
        rc = latency_phase(L, t, st->size, st->lat_count, lat, res);
    uint64_t m = 0, w = 0;
    for (uint32_t i = 0; rc == 0 && i < st->lat_count; i++) {
        uint64_t mx = 0;
        for (int k = 0; k < L->n; k++) {
            uint64_t v = lat[(uint64_t)i * (uint64_t)L->n + (uint64_t)k];
            if (v != UINT64_MAX) {
                lat[m++] = v;
                mx = v > mx ? v : mx;
            }
        }
        worst[w++] = mx; /* a subscriber that never got it is counted in `missing` */
    }
    if (rc == 0) {
        res->samples = m;
        res->p50_ns = fo_percentile(lat, m, 50);
        res->max_ns = fo_percentile(lat, m, 100);
        res->p99_ns = fo_percentile(worst, w, 99);
        res->p50_slowest_ns = fo_percentile(worst, w, 50);
    }
    free(lat);
    free(worst);
    return rc;
}

/* Throughput of one step through transport t, timed ones calibrated first. The floors have
 * none: they are one message at a time. */
static int step_throughput(struct leader *L, int t, const fo_step *st, fo_result *res)
{
    if (FO_FLOOR_BITS & FO_BIT(t))
        return 0;
    uint64_t count = st->tput_count;
    double rate = 0;
    int rc = 0;
    if (st->seconds > 0) {
        fo_result cal = *res;
        rc = throughput_phase(L, t, st->size, CALIBRATE_MSGS, &cal, &rate);
        res->expired = cal.expired; /* its losses count; its rate is only a guide */
        res->dropped = cal.dropped;
        res->other = cal.other;
        res->missing = cal.missing;
        double c = rate * st->seconds;
        count = c < 2 * CALIBRATE_MSGS ? 2 * CALIBRATE_MSGS : c > 1e8 ? 100000000 : (uint64_t)c;
    }
    if (rc == 0 && count)
        rc = throughput_phase(L, t, st->size, count, res, &rate);
    return rc;
}

/* Unpaced, one subscriber: count messages back to back through t, nothing waited for,
 * then one more every MARK_MS until the subscriber says it got one past the end; then sync
 * it past them. What arrived, per second from the first publish to the last arrival. The
 * losses are the flood's purpose, not the step's: they stay out of the step's counters. */
static int flood_phase(struct leader *L, int t, const fo_step *st, fo_result *res)
{
    const uint64_t base = L->seq[t] + 1, count = st->flood_count;
    int rc = cmd_all(L, (struct fo_cmd){.op = CMD_FLOOD, .transport = (uint32_t)t,
                                        .base = base, .count = count, .size = st->size});
    uint64_t t0 = tool_now_ns();
    for (uint64_t i = 0; i < count && rc == 0; i++)
        rc = send_one(L, t, st->size);
    uint64_t deadline = tool_now_ns() + DONE_TIMEOUT_MS * 1000000ull;
    struct fo_rec r;
    while (rc == 0 && (rc = rec_from(L, 0, MARK_MS, &r)) == SHMBUS_ETIMEDOUT) {
        if (tool_now_ns() > deadline)
            return leader_fail("flood: no end", 0, SHMBUS_ETIMEDOUT);
        rc = send_one(L, t, st->size);
    }
    if (rc)
        return leader_fail("flood", 0, rc);
    if (r.kind != REC_DONE || r.status)
        return bad_rec(0, &r, REC_DONE, "flood");
    res->flood_sent = count;
    res->flood_received = r.received;
    res->flood_per_s = r.last_ns > t0 ? (double)r.received * 1e9 / (double)(r.last_ns - t0) : 0;
    return sync_subs(L, t);
}

static int run_step(struct leader *L, int i, fo_result res[FO_NTRANSPORTS])
{
    const fo_step *st = &L->g->steps[i];
    unsigned mask = st->transports & L->g->transports;
    int order[FO_NTRANSPORTS], n = 0, rc = 0;
    for (int j = 0; j < FO_NTRANSPORTS; j++) { /* the first one rotates from step to step */
        int t = (i + j) % FO_NTRANSPORTS;
        if (mask & FO_BIT(t))
            order[n++] = t;
    }
    for (int t = 0; t < FO_NTRANSPORTS; t++)
        res[t] = (fo_result){.size = st->size, .nsubs = L->n, .transport = t,
                             .ran = (mask & FO_BIT(t)) != 0};
    for (int j = 0; j < n && rc == 0; j++)
        rc = step_latency(L, order[j], st, &res[order[j]]);
    for (int j = 0; j < n && rc == 0; j++)
        rc = step_throughput(L, order[j], st, &res[order[j]]);
    for (int j = 0; j < n && rc == 0; j++)
        if (L->n == 1 && (st->flood & FO_BIT(order[j])) && st->flood_count)
            rc = flood_phase(L, order[j], st, &res[order[j]]);
    return rc;
}

/* Stop the subscribers (QUIT after success; SIGTERM after a failure, so that they stop
 * waiting and close their domains) and reap them; then close the publishers. */
static int leader_finish(struct leader *L, int status)
{
    if (status == 0)
        status = cmd_all(L, (struct fo_cmd){.op = CMD_QUIT});
    for (int k = 0; k < L->forked; k++) {
        if (status == 0) {
            struct fo_rec r;
            int rc = rec_from(L, k, DONE_TIMEOUT_MS, &r);
            if (rc == 0 && (r.kind != REC_BYE || r.status))
                rc = bad_rec(k, &r, REC_BYE, "closing");
            else if (rc)
                leader_fail("closing", k, rc);
            if (rc)
                status = rc;
        } else
            kill(L->pid[k], SIGTERM); /* a child of ours, not yet reaped */
    }
    for (int k = 0; k < L->forked; k++) {
        close(L->cmd[k]);
        close(L->rec[k]);
        int ws = 0;
        while (waitpid(L->pid[k], &ws, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(ws)) {
            fprintf(stderr, "shmbus-bench: subscriber %d killed by signal %d\n", k + 1,
                    WTERMSIG(ws));
            status = status ? status : SHMBUS_ESYS;
        } else if (WEXITSTATUS(ws) != 0 && status == 0)
            status = SHMBUS_ESYS;
    }
    for (int t = FO_NTRANSPORTS - 1; t >= 0; t--)
        if (L->pub[t]) {
            int rc = bt_pub_close(L->pub[t]);
            status = status ? status : rc;
        }
    return status;
}

_Noreturn void fo_leader_main(const fo_group *g, int up)
{
    snprintf(fo_role, sizeof fo_role, "publisher");
    struct leader L = {.g = g, .n = g->nsubs};
    int rc = spawn_subs(&L, up), k, t;
    for (k = 0; k < L.n && rc == 0; k++) {
        struct fo_rec r;
        if ((rc = rec_from(&L, k, OPEN_TIMEOUT_MS, &r)) != 0)
            leader_fail("opening", k, rc);
        else if (r.kind != REC_READY || r.status)
            rc = bad_rec(k, &r, REC_READY, "opening");
    }
    for (t = 0; t < FO_NTRANSPORTS && rc == 0; t++) {
        if (!(g->transports & FO_BIT(t)))
            continue;
        rc = bt_pub_open(g->env, (enum fo_transport)t, g->index, &L.pub[t]);
        if (rc == 0)
            rc = bt_pub_wait(L.pub[t], L.n, OPEN_TIMEOUT_MS);
        if (rc == 0)
            rc = connect_subs(&L, t);
    }
    for (int i = 0; i < g->nsteps && rc == 0; i++) {
        struct up_msg m = {.kind = UP_RESULT};
        if ((rc = run_step(&L, i, m.r)) == 0)
            rc = bench_write_all(up, &m, sizeof m, true);
    }
    rc = leader_finish(&L, rc);
    struct up_msg end = {.kind = UP_END, .status = rc};
    bench_write_all(up, &end, sizeof end, true);
    _exit(rc ? 1 : 0);
}
