/* shmbus-bench latency and camera: a subscriber process, what every process of a group uses
 * to wait on its pipes (bench_fanout_proto.h), and the environment they all inherit.
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

_Noreturn void fo_sub_main(const fo_group *g, int k, int in, int out)
{
    snprintf(fo_role, sizeof fo_role, "subscriber %d", k + 1);
    struct subproc sp = {.out = out};
    int rc = 0, crc = 0;
    for (int t = 0; t < FO_NTRANSPORTS && rc == 0; t++)
        rc = bt_sub_open(g->env, (enum fo_transport)t, g->index, k, &sp.s[t]);
    if (sub_send(out, (struct fo_rec){.kind = REC_READY, .status = rc}) == 0 && rc == 0)
        for (;;) {
            struct fo_cmd c;
            if (bench_read_all(in, &c, sizeof c, true) != 0 || c.op == CMD_QUIT)
                break; /* told to, or the leader is gone, or interrupted */
            if (c.transport >= FO_NTRANSPORTS)
                rc = SHMBUS_EINVAL;
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

/* ---- the environment --------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double fo_percentile(uint64_t *v, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    uint64_t rank = (uint64_t)(p / 100.0 * (double)n + 0.999999);
    return (double)v[rank == 0 ? 0 : rank > n ? n - 1 : rank - 1];
}

int fo_env_create(fo_env *env, const uint64_t *sizes, unsigned n, int max_subs)
{
    uint64_t cls[FO_MAX_CLASSES];
    unsigned nc = 0;
    if (n + 1 > FO_MAX_CLASSES)
        return bench_error("too many sizes", SHMBUS_EINVAL);
    cls[nc++] = FO_PROBE_SIZE;
    for (unsigned i = 0; i < n; i++)
        cls[nc++] = sizes[i];
    qsort(cls, nc, sizeof cls[0], cmp_u64);
    unsigned w = 0;
    for (unsigned i = 0; i < nc; i++)
        if (w == 0 || cls[i] != cls[w - 1])
            cls[w++] = cls[i];
    nc = w;

    memset(env, 0, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/shmbus-bench.XXXXXX");
    if (!mkdtemp(env->dir)) {
        perror("shmbus-bench: mkdtemp");
        env->dir[0] = 0;
        return 1;
    }
    snprintf(env->config, sizeof env->config, "%s/domain.json", env->dir);
    snprintf(env->url, sizeof env->url, "ipc://%s/copy.ipc", env->dir);
    snprintf(env->domain, sizeof env->domain, "bench%d", (int)getpid());
    env->max_size = cls[nc - 1];

    FILE *f = fopen(env->config, "w");
    if (!f) {
        perror("shmbus-bench: writing the domain config");
        return 1;
    }
    /* Every block a message can be in at once: the publisher's history, its loan, one per
     * subscriber, and slack. */
    unsigned count = FO_HISTORY + (unsigned)max_subs + 4;
    fprintf(f, "{\n  \"pools\": [{\"name\": \"%s\", \"classes\": [\n", FO_POOL);
    for (unsigned i = 0; i < nc; i++)
        fprintf(f, "    {\"block_size\": %llu, \"count\": %u}%s\n", (unsigned long long)cls[i],
                count, i + 1 < nc ? "," : "");
    fprintf(f, "  ]}],\n  \"topics\": [{\"name\": \"%s\", \"pool\": \"%s\", \"history\": %d, "
               "\"max_message_size\": %llu,\n              \"max_held\": %d, \"on_full\": "
               "\"wait\", \"wait_ms\": 10000, \"queue_depth\": %d}]\n}\n",
            FO_TOPIC, FO_POOL, FO_HISTORY, (unsigned long long)env->max_size, FO_HISTORY,
            FO_QUEUE_DEPTH);
    if (fclose(f) != 0) {
        perror("shmbus-bench: writing the domain config");
        return 1;
    }
    shmbus_config_summary sum;
    int rc = shmbus_config_load(env->config, &sum);
    return rc ? bench_error("shmbus_config_load (the bench's own config)", rc) : 0;
}

void fo_env_destroy(const fo_env *env)
{
    if (!env->dir[0])
        return;
    unlink(env->config);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/copy.ipc", env->dir);
    unlink(sock); /* nng removes it when it closes the listener; a crash would not */
    if (rmdir(env->dir) != 0)
        fprintf(stderr, "shmbus-bench: %s is not empty after the run: left in place\n",
                env->dir);
}
