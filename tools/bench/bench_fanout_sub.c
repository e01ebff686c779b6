/* shmbus-bench latency and camera: a subscriber process, and what every process of a group
 * uses to wait on its pipes (bench_fanout_proto.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_fanout_proto.h"
#include "shmbus.h"

/* ---- pipes ------------------------------------------------------------------------------ */

int fo_poll_any(const int *fds, const bool *skip, int n, int timeout_ms, int *turn, int *k)
{
    struct pollfd pf[FO_MAX_SUBS];
    int idx[FO_MAX_SUBS], m = 0;
    for (int i = 0; i < n; i++) {
        int j = (*turn + i) % n;
        if (skip && skip[j])
            continue;
        pf[m] = (struct pollfd){.fd = fds[j], .events = POLLIN};
        idx[m++] = j;
    }
    uint64_t deadline = tool_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        uint64_t now = tool_now_ns();
        int wait = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        int r = poll(pf, (nfds_t)m, wait);
        if (r < 0 && errno != EINTR)
            return SHMBUS_ESYS;
        for (int i = 0; r > 0 && i < m; i++)
            if (pf[i].revents) {
                *k = idx[i];
                *turn = idx[i] + 1;
                return 0;
            }
        if (r == 0 && wait == 0)
            return SHMBUS_ETIMEDOUT;
    }
}

uint64_t fo_proc_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

uint64_t fo_proc_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- a subscriber process --------------------------------------------------------------- */

struct subproc {
    bt_sub *s[FO_NTRANSPORTS];
    uint64_t seen[FO_NTRANSPORTS]; /* the last probe got through each transport */
    int out;
};

static int sub_send(int out, struct fo_rec r)
{
    return bench_write_all(out, &r, sizeof r, true);
}

/* PROBE: acknowledge the first message, whatever it is. SYNC: read up to c->base, unless
 * the last probe this subscriber got is there already. */
static int sub_probe(struct subproc *sp, const struct fo_cmd *c)
{
    bt_sub *s = sp->s[c->transport];
    uint64_t *seen = &sp->seen[c->transport];
    bt_rx rx = {0, 0, 0};
    int rc = 0;
    if (c->op == CMD_PROBE) {
        if ((rc = bt_sub_recv(s, PROBE_TIMEOUT_MS + 5000, &rx)) == 0)
            *seen = rx.seq;
    } else
        while (rc == 0 && *seen < c->base)
            if ((rc = bt_sub_recv(s, SUB_TIMEOUT_MS, &rx)) == 0)
                *seen = rx.seq;
    int wrc = sub_send(sp->out, (struct fo_rec){.kind = REC_ACK, .status = rc, .seq = *seen});
    return rc ? rc : wrc;
}

static int sub_phase(struct subproc *sp, const struct fo_cmd *c)
{
    bt_sub *s = sp->s[c->transport];
    const uint64_t base = c->base, end = base + c->count - 1, every = c->ack_every;
    uint64_t last = base - 1, next_ack = base - 1 + every;
    struct fo_rec done = {.kind = REC_DONE};
    bt_loss l0, l1;
    bt_sub_loss(s, &l0);
    uint64_t cpu0 = fo_proc_cpu_ns(), f0 = fo_proc_faults();
    int rc = 0;
    while (rc == 0 && last < end) {
        bt_rx rx;
        rc = bt_sub_recv(s, SUB_TIMEOUT_MS, &rx);
        if (rc == SHMBUS_ETIMEDOUT) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        if (rx.seq <= last || rx.seq > end || rx.len != c->size) {
            fprintf(stderr, "shmbus-bench: %s: got message %llu of %llu bytes, expected %llu.."
                            "%llu of %llu bytes\n", fo_role, (unsigned long long)rx.seq,
                    (unsigned long long)rx.len, (unsigned long long)(last + 1),
                    (unsigned long long)end, (unsigned long long)c->size);
            rc = SHMBUS_EINVAL;
            break;
        }
        done.missing += rx.seq - last - 1;
        done.received++;
        last = rx.seq;
        if (every == 1)
            rc = sub_send(sp->out,
                          (struct fo_rec){.kind = REC_ACK, .seq = last, .lat_ns = rx.lat_ns});
        else if (last >= next_ack && last < end) {
            rc = sub_send(sp->out, (struct fo_rec){.kind = REC_ACK, .seq = last});
            next_ack = base - 1 + ((last - base + 1) / every + 1) * every;
        }
    }
    done.missing += end - last;
    done.cpu_ns = fo_proc_cpu_ns() - cpu0;
    done.faults = fo_proc_faults() - f0;
    bt_sub_loss(s, &l1);
    done.loss = (bt_loss){l1.expired - l0.expired, l1.dropped - l0.dropped, l1.other - l0.other};
    done.status = rc;
    done.seq = last;
    int wrc = sub_send(sp->out, done);
    return rc ? rc : wrc;
}

/* FLOOD: count what arrives of c->base .. c->base + count - 1, until a message past it. */
static int sub_flood(struct subproc *sp, const struct fo_cmd *c)
{
    bt_sub *s = sp->s[c->transport];
    uint64_t *seen = &sp->seen[c->transport];
    const uint64_t end = c->base + c->count - 1;
    struct fo_rec done = {.kind = REC_DONE};
    bt_loss l0, l1;
    bt_sub_loss(s, &l0);
    int rc = 0;
    for (;;) {
        bt_rx rx;
        if ((rc = bt_sub_recv(s, SUB_TIMEOUT_MS, &rx)) != 0)
            break;
        if (rx.seq <= *seen || rx.len != c->size) {
            fprintf(stderr, "shmbus-bench: %s: flood: got message %llu of %llu bytes after "
                            "%llu\n", fo_role, (unsigned long long)rx.seq,
                    (unsigned long long)rx.len, (unsigned long long)*seen);
            rc = SHMBUS_EINVAL;
            break;
        }
        *seen = rx.seq;
        if (rx.seq > end)
            break;
        if (rx.seq >= c->base) {
            done.received++;
            done.last_ns = tool_now_ns();
        }
    }
    bt_sub_loss(s, &l1);
    done.loss = (bt_loss){l1.expired - l0.expired, l1.dropped - l0.dropped, l1.other - l0.other};
    done.missing = c->count - done.received;
    done.status = rc;
    done.seq = *seen;
    int wrc = sub_send(sp->out, done);
    return rc ? rc : wrc;
}

_Noreturn void fo_sub_main(const fo_group *g, int k, int in, int out)
{
    snprintf(fo_role, sizeof fo_role, "subscriber %d", k + 1);
    struct subproc sp = {.out = out};
    int rc = 0, crc = 0;
    for (int t = 0; t < FO_NTRANSPORTS && rc == 0; t++)
        if (g->transports & FO_BIT(t))
            rc = bt_sub_open(g->env, (enum fo_transport)t, g->index, k, &sp.s[t]);
    if (sub_send(out, (struct fo_rec){.kind = REC_READY, .status = rc}) == 0 && rc == 0)
        for (;;) {
            struct fo_cmd c;
            if (bench_read_all(in, &c, sizeof c, true) != 0 || c.op == CMD_QUIT)
                break; /* told to, or the leader is gone, or interrupted */
            if (c.transport >= FO_NTRANSPORTS || !sp.s[c.transport])
                rc = SHMBUS_EINVAL;
            else if (c.op == CMD_FLOOD)
                rc = sub_flood(&sp, &c);
            else
                rc = c.op == CMD_PHASE ? sub_phase(&sp, &c) : sub_probe(&sp, &c);
            if (rc)
                break;
        }
    for (int t = FO_NTRANSPORTS - 1; t >= 0; t--)
        if (sp.s[t]) {
            int r = bt_sub_close(sp.s[t]);
            crc = crc ? crc : r;
        }
    sub_send(out, (struct fo_rec){.kind = REC_BYE, .status = rc ? rc : crc});
    _exit(rc || crc ? 1 : 0);
}
