/* shmbus-bench latency and camera: the environment every process of a run inherits (a temp
 * directory, the domains' configs, the nng baseline's socket), and percentiles. See
 * bench_fanout_defs.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_fanout_defs.h"
#include "shmbus.h"

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

void fo_domain_name(const fo_env *env, int group, bool shm, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s-%d", env->domain, shm ? "s" : "", group);
}

/* A pool class: a block size and how many publishers (topics) of the config publish it. */
struct cls {
    uint64_t size;
    unsigned pubs;
};

static int cmp_cls(const void *a, const void *b)
{
    return cmp_u64(&((const struct cls *)a)->size, &((const struct cls *)b)->size);
}

/* The classes of the steps' sizes published through any transport of `mask`, counting the
 * publishers of each, plus the probes (every publisher of the config sends them). */
static unsigned classes_of(const fo_step *steps, int nsteps, unsigned mask, struct cls *out)
{
    unsigned n = 0, all = 0;
    for (int i = 0; i < nsteps; i++)
        all |= steps[i].transports & mask;
    for (int i = -1; i < nsteps; i++) {
        uint64_t size = i < 0 ? FO_PROBE_SIZE : steps[i].size;
        unsigned bits = (i < 0 ? all : steps[i].transports) & mask, pubs = 0;
        for (unsigned t = 0; t < FO_NTRANSPORTS; t++)
            pubs += (bits >> t) & 1u;
        if (pubs == 0)
            continue;
        unsigned j = 0;
        while (j < n && out[j].size != size)
            j++;
        if (j == n)
            out[n++] = (struct cls){size, 0};
        out[j].pubs = pubs > out[j].pubs ? pubs : out[j].pubs;
    }
    qsort(out, n, sizeof *out, cmp_cls);
    return n;
}

static int write_config(const char *path, const struct cls *cls, unsigned nc, int max_subs,
                        bool shm, uint64_t *max_size)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("shmbus-bench: writing a domain config");
        return 1;
    }
    /* Every block a message can be in at once: each publisher's history, its loan, one per
     * subscriber, and slack. */
    fprintf(f, "{\n  \"pools\": [{\"name\": \"%s\", \"classes\": [\n", FO_POOL);
    for (unsigned i = 0; i < nc; i++)
        fprintf(f, "    {\"block_size\": %llu, \"count\": %u}%s\n",
                (unsigned long long)cls[i].size,
                cls[i].pubs * FO_HISTORY + (unsigned)max_subs + 4, i + 1 < nc ? "," : "");
    *max_size = cls[nc - 1].size;
    fprintf(f, "  ]}],\n  \"topics\": [");
    const char *topics[2] = {shm ? FO_TOPIC_SHM : FO_TOPIC, shm ? FO_TOPIC_FD : NULL};
    for (int i = 0; i < 2 && topics[i]; i++)
        fprintf(f, "%s{\"name\": \"%s\", \"pool\": \"%s\", \"history\": %d, "
                   "\"max_message_size\": %llu,\n              \"max_held\": %d, \"on_full\": "
                   "\"wait\", \"wait_ms\": 10000, \"queue_depth\": %d%s}",
                i ? ",\n             " : "", topics[i], FO_POOL, FO_HISTORY,
                (unsigned long long)*max_size, FO_HISTORY, FO_QUEUE_DEPTH,
                shm ? ", \"delivery\": \"shm\"" : "");
    fprintf(f, "]\n}\n");
    if (fclose(f) != 0) {
        perror("shmbus-bench: writing a domain config");
        return 1;
    }
    shmbus_config_summary sum;
    int rc = shmbus_config_load(path, &sum);
    return rc ? bench_error("shmbus_config_load (the bench's own config)", rc) : 0;
}

int fo_env_create(fo_env *env, const fo_step *steps, int nsteps, int max_subs, unsigned mask)
{
    struct cls cls[FO_MAX_STEPS + 1], shm_cls[FO_MAX_STEPS + 1];
    if (nsteps < 1 || nsteps + 1 > FO_MAX_CLASSES)
        return bench_error("too many sizes", SHMBUS_EINVAL);
    unsigned nc = classes_of(steps, nsteps, mask & FO_BIT(FO_SHMBUS), cls);
    unsigned nshm = classes_of(steps, nsteps, mask & FO_SHM_BITS, shm_cls);

    memset(env, 0, sizeof *env);
    env->usock[0] = env->usock[1] = -1;
    uint64_t futex_size = 0;
    bool unix_socket = false;
    for (int i = 0; i < nsteps; i++) {
        unsigned bits = steps[i].transports & mask;
        if ((bits & FO_BIT(FO_FUTEX)) && steps[i].size > futex_size)
            futex_size = steps[i].size;
        unix_socket |= (bits & FO_BIT(FO_UNIX)) != 0;
    }
    if ((futex_size || unix_socket) && futex_size < FO_PROBE_SIZE)
        futex_size = futex_size ? FO_PROBE_SIZE : 0; /* the probes go through it too */
    if (bf_env_create(env, futex_size, unix_socket) != 0)
        return 1;
    snprintf(env->dir, sizeof env->dir, "/tmp/shmbus-bench.XXXXXX");
    if (!mkdtemp(env->dir)) {
        perror("shmbus-bench: mkdtemp");
        env->dir[0] = 0;
        return 1;
    }
    snprintf(env->config, sizeof env->config, "%s/domain.json", env->dir);
    snprintf(env->url, sizeof env->url, "ipc://%s/copy.ipc", env->dir);
    snprintf(env->domain, sizeof env->domain, "bench%d", (int)getpid());
    if (nc == 0) /* the nng-copy baseline alone still needs the classic config's topic */
        cls[nc++] = (struct cls){FO_PROBE_SIZE, 1};
    int rc = write_config(env->config, cls, nc, max_subs, false, &env->max_size);
    if (rc == 0 && nshm) {
        uint64_t m;
        snprintf(env->config_shm, sizeof env->config_shm, "%s/domain-shm.json", env->dir);
        rc = write_config(env->config_shm, shm_cls, nshm, max_subs, true, &m);
        env->max_size = m > env->max_size ? m : env->max_size;
    }
    return rc;
}

void fo_env_destroy(fo_env *env)
{
    bf_env_destroy(env);
    if (!env->dir[0])
        return;
    unlink(env->config);
    if (env->config_shm[0])
        unlink(env->config_shm);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/copy.ipc", env->dir);
    unlink(sock); /* nng removes it when it closes the listener; a crash would not */
    if (rmdir(env->dir) != 0)
        fprintf(stderr, "shmbus-bench: %s is not empty after the run: left in place\n",
                env->dir);
}
