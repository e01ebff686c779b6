/* shmbus-chaos: publishers and subscribers at full speed while processes are SIGKILLed,
 * restarted, and SIGSTOPped; then proves that no payload was corrupted, no block leaked and
 * every kill was reclaimed within 1 s. See docs/reliability.md.
 *
 * Workers are this program re-executed with --role (exec, not fork: nng must never be used in
 * a child forked after its parent used it). Each worker counts into its own record of a
 * shared counters file, so the counts of a killed worker survive it. The controller joins the
 * domain without publishing or subscribing, which keeps the domain alive to the end so it can
 * check every pool, and watches kills through snapshots.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "reclaim.h"
#include "shmbus.h"

#define MAX_WORKERS 32
#define TOPIC "chaos"
#define MSG_MAGIC 0x534f414843ull /* "CHAOS" */

enum role { ROLE_PUB, ROLE_SUB, ROLE_PUBSUB };

/* One worker slot in the counters file; written only by the worker living in it. */
struct counters {
    _Atomic uint64_t published, received, expired, dropped, overflow, mismatches, failures;
    _Atomic uint64_t unaccounted; /* pairs whose counters did not add up (accounting_ok) */
    _Atomic int pid;
    uint64_t pad[8];
};

struct msg_head {
    uint64_t magic, seq, len, sum;
};

static volatile sig_atomic_t g_stop;
static void on_term(int sig) { (void)sig; g_stop = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Payload bytes after the header: a function of (seq, position) so the receiver can check
 * them without being told. The checksum covers them too. */
static void fill(uint8_t *p, uint64_t len, uint64_t seq)
{
    struct msg_head *h = (struct msg_head *)p;
    uint64_t s = seq * 0x9e3779b97f4a7c15ull + 1;
    for (uint64_t i = sizeof *h; i < len; i += 8) {
        uint64_t v = rnd(&s);
        memcpy(p + i, &v, len - i < 8 ? len - i : 8);
    }
    h->magic = MSG_MAGIC;
    h->seq = seq;
    h->len = len;
    h->sum = fnv(p + sizeof *h, len - sizeof *h);
}

static bool check(const uint8_t *p, uint64_t len)
{
    const struct msg_head *h = (const struct msg_head *)p;
    return len >= sizeof *h && h->magic == MSG_MAGIC && h->len == len &&
           h->sum == fnv(p + sizeof *h, len - sizeof *h);
}

/* ---- worker ----------------------------------------------------------------------------- */

/* Does every (publisher, sub) pair account for each message once: last_seq - base ==
 * received + expired + dropped + overflow + invalid (shmbus_sub_peer_counters)? */
static bool accounting_ok(shmbus_sub *sub)
{
    shmbus_peer_counters pc[64];
    int n = shmbus_sub_peer_counters(sub, pc, 64);
    if (n < 0)
        return false;
    for (int i = 0; i < n && i < 64; i++) {
        const shmbus_peer_counters *p = &pc[i];
        uint64_t counted = p->received + p->expired + p->dropped + p->overflow + p->invalid;
        if (p->last_seq < p->base || p->last_seq - p->base != counted) {
            fprintf(stderr, "chaos worker %d: publisher %" PRIu64 ": %" PRIu64
                    " messages after its base, %" PRIu64 " counted\n", (int)getpid(),
                    p->publisher, p->last_seq - p->base, counted);
            return false;
        }
    }
    return true;
}

static int worker(enum role role, const char *domain, const char *config, struct counters *c,
                  uint64_t seed)
{
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    atomic_store(&c->pid, (int)getpid());
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = config;
    o.name = role == ROLE_PUB ? "chaos-pub" : role == ROLE_SUB ? "chaos-sub" : "chaos-pubsub";
    shmbus_domain *d;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    int rc = shmbus_domain_open(domain, &o, &d);
    if (rc == 0 && role != ROLE_PUB)
        rc = shmbus_sub_open(d, TOPIC, NULL, &sub);
    if (rc == 0 && role != ROLE_SUB)
        rc = shmbus_pub_open(d, TOPIC, &pub);
    if (rc) {
        fprintf(stderr, "chaos worker: %s (%s)\n", shmbus_strerror(rc), shmbus_last_error());
        atomic_fetch_add(&c->failures, 1);
        return 1;
    }
    uint64_t s = seed | 1, seq = 0;
    while (!g_stop) {
        if (pub) {
            uint64_t r = rnd(&s);
            uint64_t len = sizeof(struct msg_head) + (r % 8 == 0 ? r % (900 * 1024) : r % 3000);
            shmbus_msg *m;
            rc = shmbus_pub_loan(pub, len, &m);
            if (rc == 0) {
                fill(shmbus_msg_data(m), len, ++seq);
                if (shmbus_pub_publish(pub, m, len) == 0)
                    atomic_fetch_add(&c->published, 1);
            } else if (rc != SHMBUS_EFULL && rc != SHMBUS_ETIMEDOUT) {
                atomic_fetch_add(&c->failures, 1);
            }
        }
        if (sub) {
            shmbus_msg *m;
            while (shmbus_sub_recv(sub, pub ? 0 : 20, &m) == 0) {
                atomic_fetch_add(&c->received, 1);
                if (!check(shmbus_msg_data(m), shmbus_msg_length(m)))
                    atomic_fetch_add(&c->mismatches, 1);
                shmbus_msg_release(m);
                if (pub)
                    break;
            }
            shmbus_sub_counters st;
            shmbus_sub_stats(sub, &st);
            atomic_store(&c->expired, st.expired);
            atomic_store(&c->dropped, st.dropped);
            atomic_store(&c->overflow, st.overflow);
            if (rnd(&s) % 16 == 0 && !accounting_ok(sub))
                atomic_fetch_add(&c->unaccounted, 1);
        }
        if (pub && rnd(&s) % 64 == 0)
            usleep(200); /* let subscribers breathe now and then */
    }
    if (sub && !accounting_ok(sub))
        atomic_fetch_add(&c->unaccounted, 1);
    if (pub)
        shmbus_pub_close(pub);
    if (sub)
        shmbus_sub_close(sub);
    return shmbus_domain_close(d) ? 1 : 0;
}

/* ---- controller ------------------------------------------------------------------------- */

struct opts {
    double seconds;
    int pubs, subs;
    uint64_t seed;
    const char *delivery; /* the topic's "delivery": "nng" or "shm" */
    bool json;
    bool verbose; /* one line per kill and its reclaim time, on stderr */
};

struct slot {
    enum role role;
    pid_t pid;
    bool stopped;
    uint64_t cont_at;
};


static const char *g_self, *g_domain, *g_config;
static struct reclaim_log g_log;
static char g_counters_path[256];

static pid_t spawn(enum role role, int idx, uint64_t seed)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char r[8], i[16], s[32];
    snprintf(r, sizeof r, "%d", (int)role);
    snprintf(i, sizeof i, "%d", idx);
    snprintf(s, sizeof s, "%" PRIu64, seed);
    execl(g_self, g_self, "--role", r, "--index", i, "--worker-seed", s, "--domain", g_domain,
          "--config", g_config, "--counters", g_counters_path, (char *)NULL);
    _exit(127);
}

/* The participant slot of a pid, from a snapshot; -1 if it has none. */
static int slot_of(const shmbus_snapshot *s, pid_t pid)
{
    for (unsigned i = 0; i < s->nparticipants; i++)
        if (s->participants[i].pid == pid)
            return (int)s->participants[i].slot;
    return -1;
}

/* A killed participant leaves the table only after a sweeper cleared its bit from every
 * block (the slot is freed last), so its absence means all its holds are reclaimed. */
static bool reclaimed(const shmbus_snapshot *s, pid_t pid) { return slot_of(s, pid) < 0; }

static int write_config(const char *path, const char *delivery)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n"
               "  \"pools\": [{\"name\": \"chaos\", \"classes\": [\n"
               "    {\"block_size\": \"4KiB\", \"count\": 256},\n"
               "    {\"block_size\": \"1MiB\", \"count\": 48}]}],\n"
               "  \"topics\": [{\"name\": \"" TOPIC "\", \"pool\": \"chaos\", \"history\": 4,\n"
               "    \"max_held\": 4, \"queue_depth\": 64, \"on_full\": \"wait\", \"wait_ms\": 20,\n"
               "    \"delivery\": \"%s\"}]\n"
               "}\n",
            delivery);
    return fclose(f);
}

static int controller(const struct opts *o)
{
    int nworkers = o->pubs + o->subs + 1;
    if (nworkers > MAX_WORKERS) {
        fprintf(stderr, "shmbus-chaos: at most %d workers\n", MAX_WORKERS - 1);
        return 2;
    }
    char tmp[] = "/tmp/shmbus-chaos-XXXXXX", cfg[300], dom[32];
    if (!mkdtemp(tmp))
        return perror("mkdtemp"), 1;
    snprintf(cfg, sizeof cfg, "%s/chaos.json", tmp);
    snprintf(g_counters_path, sizeof g_counters_path, "%s/counters", tmp);
    snprintf(dom, sizeof dom, "chaos%d", (int)getpid());
    g_domain = dom;
    g_config = cfg;
    setenv("SHMBUS_RUNTIME_DIR", tmp, 1);
    char trace[300];
    snprintf(trace, sizeof trace, "%s/reaper.trace", tmp);
    /* Every participant appends its reclaims (shmpool's reaper): a reclaim's time is when its
     * winning sweeper freed the slot, not when this loop, starved on a busy machine, looked. */
    setenv("SHMBUS_REAPER_TRACE", trace, 1);
    int fd = open(g_counters_path, O_RDWR | O_CREAT, 0600);
    size_t csize = sizeof(struct counters) * MAX_WORKERS;
    if (write_config(cfg, o->delivery) || fd < 0 || ftruncate(fd, (off_t)csize))
        return perror("chaos setup"), 1;
    struct counters *cnt = mmap(NULL, csize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (cnt == MAP_FAILED)
        return perror("mmap"), 1;

    shmbus_domain_opts dopts;
    shmbus_domain_opts_init(&dopts);
    dopts.config_path = cfg;
    dopts.name = "chaos-controller";
    shmbus_domain *d;
    int rc = shmbus_domain_open(dom, &dopts, &d);
    if (rc) {
        fprintf(stderr, "shmbus-chaos: %s (%s)\n", shmbus_strerror(rc), shmbus_last_error());
        return 1;
    }
    struct slot w[MAX_WORKERS] = {0};
    uint64_t seed = o->seed ? o->seed : 1;
    /* worker 0 publishes and subscribes in one process; then publishers, then subscribers */
    for (int i = 0; i < nworkers; i++) {
        w[i].role = i == 0 ? ROLE_PUBSUB : i <= o->pubs ? ROLE_PUB : ROLE_SUB;
        w[i].pid = spawn(w[i].role, i, rnd(&seed));
    }
    unsigned pk[256]; /* kills not yet seen reclaimed: indices into g_log */
    unsigned zombies[256]; /* killed, not yet reaped (never waited for: the loop goes on) */
    int npk = 0, nz = 0, kills = 0, stops = 0;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(o->seconds * 1e9), next_act = t0 + 200000000;
    while (now_ns() < end || npk > 0) {
        for (int z = 0; z < nz; z++) {
            struct kill_rec *kr = &g_log.k[zombies[z]];
            if (waitpid(kr->pid, NULL, WNOHANG) == kr->pid) {
                kr->dead_ns = now_ns();
                zombies[z--] = zombies[--nz];
            }
        }
        uint64_t now = now_ns();
        shmbus_snapshot *s = NULL;
        if (shmbus_snapshot_take(d, &s) == 0) {
            uint64_t seen = now_ns(); /* after the snapshot: an upper bound */
            for (int k = 0; k < npk; k++) {
                struct kill_rec *kr = &g_log.k[pk[k]];
                if (reclaimed(s, kr->pid)) {
                    kr->seen_ns = seen;
                    if (o->verbose)
                        fprintf(stderr, "kill of pid %d seen reclaimed after %.1f ms\n",
                                (int)kr->pid, (double)(seen - kr->kill_ns) / 1e6);
                    pk[k--] = pk[--npk];
                } else if (seen - kr->kill_ns > 5000000000ull) {
                    /* never seen reclaimed: stop waiting (without a traced reclaim it counts
                     * as 5 s, a violation) */
                    pk[k--] = pk[--npk];
                }
            }
        }
        for (int i = 0; i < nworkers; i++) {
            if (w[i].stopped && now >= w[i].cont_at) {
                kill(w[i].pid, SIGCONT);
                w[i].stopped = false;
            }
        }
        if (now < end && now >= next_act && s) {
            int i = (int)(rnd(&seed) % (uint64_t)nworkers);
            if (rnd(&seed) % 3 == 0 && !w[i].stopped) { /* a stuck reader or writer */
                kill(w[i].pid, SIGSTOP);
                w[i].stopped = true;
                w[i].cont_at = now + 100000000ull + rnd(&seed) % 700000000ull;
                stops++;
            } else if (npk < 256 && nz < 256 && g_log.n < RECLAIM_MAX_KILLS) {
                if (w[i].stopped)
                    kill(w[i].pid, SIGCONT);
                /* The time before the kill: a sweeper may wake before kill() returns here. */
                g_log.k[g_log.n] = (struct kill_rec){
                    .pid = w[i].pid, .kill_ns = now_ns(), .joined = slot_of(s, w[i].pid) >= 0};
                kill(w[i].pid, SIGKILL);
                zombies[nz++] = g_log.n;
                pk[npk++] = g_log.n++;
                w[i].stopped = false;
                w[i].pid = spawn(w[i].role, i, rnd(&seed));
                kills++;
            }
            next_act = now + 50000000ull + rnd(&seed) % 250000000ull;
        }
        shmbus_snapshot_free(s);
        usleep(1000);
    }
    for (int z = 0; z < nz; z++)
        waitpid(g_log.k[zombies[z]].pid, NULL, 0);
    int bad_exits = 0;
    for (int i = 0; i < nworkers; i++) {
        if (w[i].stopped)
            kill(w[i].pid, SIGCONT);
        kill(w[i].pid, SIGTERM);
    }
    for (int i = 0; i < nworkers; i++) {
        int st;
        waitpid(w[i].pid, &st, 0);
        bad_exits += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }

    /* Everyone but the controller has left: every block must be free. */
    uint64_t in_use = 0;
    shmbus_snapshot *s;
    if (shmbus_snapshot_take(d, &s) == 0) {
        for (unsigned p = 0; p < s->npools; p++)
            for (unsigned k = 0; k < s->pools[p].nclasses; k++)
                in_use += s->pools[p].classes[k].used;
        shmbus_snapshot_free(s);
    }
    shmbus_domain_close(d);
    char probe[300];
    snprintf(probe, sizeof probe, "/dev/shm/shmbus.%s.ctl", dom);
    bool leftovers = access(probe, F_OK) == 0 || access(tmp, F_OK) != 0;
    snprintf(probe, sizeof probe, "%s/shmbus.%s", tmp, dom);
    leftovers |= access(probe, F_OK) == 0;

    uint64_t tot[8] = {0};
    for (int i = 0; i < nworkers; i++) {
        tot[0] += atomic_load(&cnt[i].published);
        tot[1] += atomic_load(&cnt[i].received);
        tot[2] += atomic_load(&cnt[i].expired);
        tot[3] += atomic_load(&cnt[i].dropped);
        tot[4] += atomic_load(&cnt[i].overflow);
        tot[5] += atomic_load(&cnt[i].mismatches);
        tot[6] += atomic_load(&cnt[i].failures);
        tot[7] += atomic_load(&cnt[i].unaccounted);
    }
    munmap(cnt, csize);
    reclaim_read_trace(&g_log, trace);
    unlink(trace);
    unsigned unjoined;
    double max_reclaim_ms = reclaim_settle(&g_log, 5000, &unjoined);
    unlink(g_counters_path);
    unlink(cfg);
    rmdir(tmp);
    bool ok = tot[5] == 0 && in_use == 0 && max_reclaim_ms <= 1000 && !leftovers &&
              bad_exits == 0 && tot[6] == 0 && tot[7] == 0 && tot[1] > 0;
    if (o->json)
        printf("{\"published\": %" PRIu64 ", \"received\": %" PRIu64 ", \"expired\": %" PRIu64
               ", \"dropped\": %" PRIu64 ", \"overflow\": %" PRIu64
               ", \"payload_mismatches\": %" PRIu64 ", \"blocks_in_use_after\": %" PRIu64
               ", \"max_reclaim_ms\": %.1f, \"reclaim_p50_ms\": %.2f, \"reclaim_p99_ms\": %.2f"
               ", \"kills\": %d, \"stops\": %d, \"worker_failures\": %" PRIu64
               ", \"unaccounted\": %" PRIu64 ", \"bad_exits\": %d, \"leftovers\": %s"
               ", \"seed\": %" PRIu64 ", \"delivery\": \"%s\", \"ok\": %s}\n",
               tot[0], tot[1], tot[2], tot[3], tot[4], tot[5], in_use, max_reclaim_ms,
               reclaim_percentile_ms(&g_log, 50), reclaim_percentile_ms(&g_log, 99), kills,
               stops, tot[6], tot[7], bad_exits, leftovers ? "true" : "false", o->seed,
               o->delivery, ok ? "true" : "false");
    fprintf(o->json ? stderr : stdout,
            "shmbus-chaos %s: %.0f s, %d publishers + %d subscribers + 1 both, delivery %s, "
            "seed %" PRIu64 ": published %" PRIu64 ", received %" PRIu64 ", expired %" PRIu64 ", dropped %" PRIu64
            ", overflow %" PRIu64 ", payload mismatches %" PRIu64 ", blocks in use after %" PRIu64
            ", kills %d (max reclaim %.1f ms), stops %d, worker failures %" PRIu64
            ", pairs not adding up %" PRIu64 ", bad exits %d%s\n",
            ok ? "OK" : "FAILED", o->seconds, o->pubs, o->subs, o->delivery, o->seed, tot[0], tot[1], tot[2],
            tot[3], tot[4], tot[5], in_use, kills, max_reclaim_ms, stops, tot[6], tot[7],
            bad_exits,
            leftovers ? ", LEFTOVERS in /dev/shm or the runtime dir" : "");
    reclaim_report(&g_log, o->json ? stderr : stdout);
    fprintf(o->json ? stderr : stdout, "  killed before joining (nothing to reclaim): %u\n",
            unjoined);
    return ok ? 0 : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-chaos [--seconds S] [--publishers P] [--subscribers N] [--seed X] "
               "[--delivery nng|shm] [--json] [--verbose]\n"
               "Runs P publisher and N subscriber processes (plus one that does both) on a\n"
               "private domain at full speed with checksummed payloads of random sizes, SIGKILLs\n"
               "and restarts them and SIGSTOPs/SIGCONTs them at random, then checks: no payload\n"
               "mismatch, every (publisher, subscriber) pair's counters add up, no block in use\n"
               "after all left, every kill reclaimed within 1 s, nothing\n"
               "left in /dev/shm. Exit 0 if all hold, 1 if not, 2 on bad usage. Prints the\n"
               "kill-to-reclaim distribution, split by the participants' reaper trace into death,\n"
               "sweeper wake-up, slot lock, pool walk and this controller noticing.\n"
               "--delivery: how the topic's descriptors travel (\"delivery\" in docs/config.md).\n"
               "Defaults: --seconds 30 --publishers 2 --subscribers 3 --seed 1 --delivery nng\n");
}

int main(int argc, char **argv)
{
    g_self = "/proc/self/exe";
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        g_self = self;
    }
    struct opts o = {.seconds = 30, .pubs = 2, .subs = 3, .seed = 1, .delivery = "nng"};
    int role = -1, idx = 0;
    uint64_t wseed = 1;
    const char *counters = NULL, *domain = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout), 0;
        if (!strcmp(a, "--json") || !strcmp(a, "--verbose")) {
            *(a[2] == 'j' ? &o.json : &o.verbose) = true;
            continue;
        }
        if (!v)
            return usage(stderr), 2;
        i++;
        if (!strcmp(a, "--seconds"))
            o.seconds = atof(v);
        else if (!strcmp(a, "--publishers"))
            o.pubs = atoi(v);
        else if (!strcmp(a, "--subscribers"))
            o.subs = atoi(v);
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--delivery"))
            o.delivery = v;
        else if (!strcmp(a, "--role"))
            role = atoi(v);
        else if (!strcmp(a, "--index"))
            idx = atoi(v);
        else if (!strcmp(a, "--worker-seed"))
            wseed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--counters"))
            counters = v;
        else if (!strcmp(a, "--domain"))
            domain = v;
        else if (!strcmp(a, "--config"))
            config = v;
        else
            return usage(stderr), 2;
    }
    if (role >= 0) {
        int fd = counters ? open(counters, O_RDWR) : -1;
        struct counters *c = fd >= 0 ? mmap(NULL, sizeof *c * MAX_WORKERS, PROT_READ | PROT_WRITE,
                                            MAP_SHARED, fd, 0)
                                     : MAP_FAILED;
        if (c == MAP_FAILED || idx < 0 || idx >= MAX_WORKERS || !domain || !config)
            return 2;
        return worker((enum role)role, domain, config, &c[idx], wseed);
    }
    if (strcmp(o.delivery, "nng") != 0 && strcmp(o.delivery, "shm") != 0) {
        fprintf(stderr, "shmbus-chaos: --delivery takes nng or shm, not \"%s\"\n", o.delivery);
        return 2;
    }
    if (o.seconds <= 0 || o.pubs < 0 || o.subs < 0 || o.pubs + o.subs < 1)
        return usage(stderr), 2;
    return controller(&o);
}
