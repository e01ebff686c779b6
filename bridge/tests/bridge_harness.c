/* The bridge tests' harness (bridge_harness.h). */
#include "bridge_harness.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pixel_pattern.h"

extern char **environ;

static unsigned g_seq; /* tests run one after the other in a program */

uint64_t bh_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bh_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

void bh_path(const bh_env *e, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", e->dir, name);
}

static void host_init(bh_env *e, bh_host *h, char name, const char *domcfg)
{
    h->name = name;
    snprintf(h->dir, sizeof h->dir, "%s/%c", e->dir, name);
    snprintf(h->shm, sizeof h->shm, "%s/shm", h->dir);
    snprintf(h->run, sizeof h->run, "%s/run", h->dir);
    snprintf(h->dom, sizeof h->dom, "br%c%d_%u", name, (int)getpid(), g_seq);
    snprintf(h->domcfg, sizeof h->domcfg, "%s/%s", BRIDGE_TEST_CONFIGS, domcfg);
    snprintf(h->cfg, sizeof h->cfg, "%s/bridge.json", h->dir);
    snprintf(h->stats, sizeof h->stats, "%s/stats.json", h->dir);
    snprintf(h->log, sizeof h->log, "%s/bridge.log", h->dir);
    if (mkdir(h->dir, 0700) || mkdir(h->shm, 0700) || mkdir(h->run, 0700))
        fail_msg("mkdir under %s: %s", h->dir, strerror(errno));
}

static int setup_with(void **state, const char *domcfg)
{
    bh_env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    g_seq++;
    snprintf(e->dir, sizeof e->dir, "/dev/shm/shmbus-bridge-test.XXXXXX");
    if (!mkdtemp(e->dir)) fail_msg("mkdtemp: %s", strerror(errno));
    /* A DDS domain of this test alone: ids 0..229 from the pid and the test's number. */
    e->dds_domain = ((unsigned)getpid() * 7u + g_seq * 13u) % 230u;
    bh_path(e, "cyclone.xml", e->cyclone, sizeof e->cyclone);
    write_file(
        e->cyclone,
        "<CycloneDDS><Domain id=\"any\">\n"
        "<General><Interfaces><NetworkInterface address=\"127.0.0.1\"/></Interfaces>\n"
        "<AllowMulticast>false</AllowMulticast>\n"
        "<MaxMessageSize>65500B</MaxMessageSize><FragmentSize>62000B</FragmentSize></General>\n"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex>\n"
        "<MaxAutoParticipantIndex>20</MaxAutoParticipantIndex>\n"
        "<Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>\n"
        "<Internal><SocketReceiveBufferSize min=\"default\" max=\"64MiB\"/>\n"
        "<Watermarks><WhcHigh>64MB</WhcHigh><WhcHighInit>64MB</WhcHighInit></Watermarks>"
        "</Internal>\n"
        "</Domain></CycloneDDS>\n");
    host_init(e, &e->a, 'a', domcfg);
    host_init(e, &e->b, 'b', domcfg);
    *state = e;
    return 0;
}

int bh_setup(void **state) { return setup_with(state, "host.json"); }
int bh_setup_large(void **state) { return setup_with(state, "host-large.json"); }

static int count_files(const char *dir, bool print)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        if (print) fprintf(stderr, "left behind: %s/%s\n", dir, de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* Remove path and everything below it, following no symbolic link. */
static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p); /* best effort: go on with the rest */
    return 0;
}

static void remove_tree(const char *path) { nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

int bh_teardown(void **state)
{
    bh_env *e = *state;
    bh_host *hosts[] = {&e->a, &e->b};
    int left = 0, unclean = 0;
    for (int i = 0; i < 2; i++) /* the bridges stop cleanly; then any other child is killed */
        if (hosts[i]->bridge > 0) {
            kill(hosts[i]->bridge, SIGCONT);
            int st = bh_stop_bridge(e, hosts[i], SIGTERM);
            if (st != 0) { /* a sanitizer's report at exit, a crash, a hang */
                fprintf(stderr, "host %c: the bridge exited with %d on SIGTERM\n", hosts[i]->name,
                        st);
                bh_print_log(hosts[i]);
                unclean++;
            }
        }
    for (int i = 0; i < e->nchild; i++)
        if (e->child[i] > 0) {
            kill(e->child[i], SIGKILL);
            waitpid(e->child[i], NULL, 0);
        }
    for (int i = 0; i < 2; i++) bh_close(hosts[i]);
    for (int i = 0; i < 2; i++)
        if (count_files(hosts[i]->shm, false)) {
            left += count_files(hosts[i]->shm, true);
            bh_print_log(hosts[i]);
        }
    remove_tree(e->dir);
    free(e);
    if (left) fail_msg("%d files left in the hosts' shm directories", left);
    if (unclean) fail_msg("%d bridges did not exit cleanly", unclean);
    return 0;
}

void bh_write_bridge_config(const bh_env *e, bh_host *h, const char *routes_json)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"shmbus\": {\"domain\": \"%s\", \"config\": \"%s\"},\n"
             " \"dds\": {\"domain_id\": %u, \"cyclone_config\": \"file://%s\"},\n"
             " \"stats\": {\"file\": \"%s\", \"interval_ms\": 100},\n %s}\n",
             h->dom, h->domcfg, e->dds_domain, e->cyclone, h->stats, routes_json);
    write_file(h->cfg, text);
}

pid_t bh_spawn(bh_env *e, const bh_host *h, const char *const *argv, const char *out_path)
{
    char prog[512], env_shm[160], env_run[160], env_uri[200], env_dds[64];
    snprintf(prog, sizeof prog, "%s/%s", BRIDGE_BIN_DIR, argv[0]);
    snprintf(env_shm, sizeof env_shm, "SHMBUS_SHM_DIR=%s", h->shm);
    snprintf(env_run, sizeof env_run, "SHMBUS_RUNTIME_DIR=%s", h->run);
    snprintf(env_uri, sizeof env_uri, "CYCLONEDDS_URI=file://%s", e->cyclone);
    snprintf(env_dds, sizeof env_dds, "SHMBUS_TEST_DDS_DOMAIN=%u", e->dds_domain);
    char *envp[64];
    int n = 0;
    for (char **p = environ; *p && n < 58; p++)
        if (strncmp(*p, "SHMBUS_", 7) && strncmp(*p, "CYCLONEDDS_URI=", 15)) envp[n++] = *p;
    envp[n++] = env_shm;
    envp[n++] = env_run;
    envp[n++] = env_uri;
    envp[n++] = env_dds;
    envp[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    /* The child starts with no signal blocked and default handlers, whatever this process's
     * threads (cmocka, shmbus, the receivers) have set. */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, prog, &fa, &at, (char *const *)argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) fail_msg("spawn %s: %s", prog, strerror(rc));
    if (e->nchild < (int)(sizeof e->child / sizeof e->child[0])) e->child[e->nchild++] = pid;
    return pid;
}

static void forget(bh_env *e, pid_t pid)
{
    for (int i = 0; i < e->nchild; i++)
        if (e->child[i] == pid) e->child[i] = e->child[--e->nchild];
}

int bh_wait(bh_env *e, pid_t pid, int timeout_ms)
{
    uint64_t end = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (bh_now_ns() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            forget(e, pid);
            return -1;
        }
        bh_sleep_ms(10);
    }
    forget(e, pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void bh_start_bridge(bh_env *e, bh_host *h)
{
    unlink(h->stats);
    const char *argv[] = {"shmbus-bridge", "--config", h->cfg, NULL};
    h->bridge = bh_spawn(e, h, argv, NULL);
}

int bh_stop_bridge(bh_env *e, bh_host *h, int sig)
{
    if (h->bridge <= 0) return -1;
    kill(h->bridge, sig);
    int st = bh_wait(e, h->bridge, 15000);
    if (st == -1) {
        fprintf(stderr, "host %c: the bridge did not stop on signal %d in 15 s: killed\n", h->name,
                sig);
        bh_print_log(h);
    }
    h->bridge = 0;
    return st;
}

char *bh_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    for (size_t n; s && (n = fread(s + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (s) s[len] = '\0';
    return s;
}

double bh_json_number(const char *path, const char *key)
{
    char *s = bh_slurp(path);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    double r = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    free(s);
    return r;
}

double bh_stat(const bh_host *h, const char *dir, const char *topic, const char *key)
{
    char *s = bh_slurp(h->stats);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    double r = -1;
    const cJSON *rt;
    cJSON_ArrayForEach(rt, cJSON_GetObjectItemCaseSensitive(j, "routes"))
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(rt, "dir");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rt, "topic");
        if (!cJSON_IsString(d) || !cJSON_IsString(t) || strcmp(d->valuestring, dir) ||
            strcmp(t->valuestring, topic))
            continue;
        const cJSON *v = rt;
        char k[64];
        snprintf(k, sizeof k, "%s", key);
        for (char *part = strtok(k, "."); part && v; part = strtok(NULL, "."))
            v = cJSON_GetObjectItemCaseSensitive(v, part);
        if (cJSON_IsNumber(v)) r = v->valuedouble;
    }
    cJSON_Delete(j);
    return r;
}

void bh_print_log(const bh_host *h)
{
    char *s = bh_slurp(h->log);
    fprintf(stderr, "---- host %c log ----\n%s\n---- host %c stats ----\n", h->name, s ? s : "",
            h->name);
    free(s);
    s = bh_slurp(h->stats);
    fprintf(stderr, "%s\n", s ? s : "(none)");
    free(s);
}

void bh_wait_stat(const bh_host *h, const char *dir, const char *topic, const char *key, double min,
                  int timeout_ms)
{
    uint64_t end = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (bh_stat(h, dir, topic, key) < min) {
        int st;
        bool gone = h->bridge > 0 && waitpid(h->bridge, &st, WNOHANG) == h->bridge;
        if (gone || bh_now_ns() > end) {
            if (gone) fprintf(stderr, "host %c: the bridge exited (status 0x%x)\n", h->name, st);
            bh_print_log(h);
            fail_msg("host %c: %s %s %s stayed below %g", h->name, dir, topic, key, min);
        }
        bh_sleep_ms(20);
    }
}

void bh_expect_stat(const bh_host *h, const char *dir, const char *topic, const char *key,
                    double want)
{
    uint64_t end = bh_now_ns() + 10000000000ull;
    double v;
    while ((v = bh_stat(h, dir, topic, key)) < want && bh_now_ns() < end) bh_sleep_ms(20);
    bh_sleep_ms(150); /* a later stats file would show any count beyond want */
    v = bh_stat(h, dir, topic, key);
    if (v != want) {
        bh_print_log(h);
        fail_msg("host %c: %s %s %s is %g, expected %g", h->name, dir, topic, key, v, want);
    }
}

shmbus_domain *bh_open(bh_host *h, const char *name)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = h->domcfg;
    o.shm_dir = h->shm;
    o.runtime_dir = h->run;
    o.name = name;
    int rc = shmbus_domain_open(h->dom, &o, &h->d);
    if (rc != 0) fail_msg("open %s: %s (%s)", h->dom, shmbus_strerror(rc), shmbus_last_error());
    return h->d;
}

void bh_start_pair(bh_env *e, const char *a_routes, const char *b_routes, const char *topic)
{
    bh_write_bridge_config(e, &e->a, a_routes);
    bh_write_bridge_config(e, &e->b, b_routes);
    bh_start_bridge(e, &e->a);
    bh_start_bridge(e, &e->b);
    bh_wait_stat(&e->a, "out", topic, "matched", 1, 30000);
    bh_wait_stat(&e->b, "in", topic, "matched", 1, 30000);
}

shmbus_sub *bh_open_both_sub_b(bh_env *e, const char *topic)
{
    bh_open(&e->a, "test-a");
    bh_open(&e->b, "test-b");
    shmbus_sub *sub;
    assert_int_equal(shmbus_sub_open(e->b.d, topic, NULL, &sub), 0);
    assert_int_equal(shmbus_sub_wait_publishers(sub, 1, 10000), 0);
    return sub;
}

void bh_close(bh_host *h)
{
    if (h->d) {
        int rc = shmbus_domain_close(h->d);
        if (rc != 0) fprintf(stderr, "close %s: %s\n", h->dom, shmbus_strerror(rc));
        h->d = NULL;
    }
}

/* Blocks of 1 MiB and more: the frames'. (The smaller class also holds the bridge's stats
 * messages, which its stats publisher keeps as its history while it runs.) */
uint32_t bh_pool_used(bh_host *h)
{
    shmbus_pool *p;
    int rc = shmbus_pool_open(h->d, "p", NULL, 0, &p);
    if (rc != 0) fail_msg("pool p of %s: %s", h->dom, shmbus_strerror(rc));
    shmbus_class_stats st[8];
    int n = shmbus_pool_stats(p, st, 8);
    uint32_t used = 0;
    for (int i = 0; i < n; i++)
        if (st[i].block_size >= (1u << 20)) used += st[i].used;
    return used;
}

uint32_t bh_wait_pool_used(bh_host *h, uint32_t max, int timeout_ms)
{
    uint64_t end = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    uint32_t used;
    while ((used = bh_pool_used(h)) > max && bh_now_ns() < end) bh_sleep_ms(20);
    if (used > max) { /* show who holds what */
        shmbus_snapshot *s;
        if (shmbus_snapshot_take(h->d, &s) == 0) {
            for (unsigned i = 0; i < s->nparticipants; i++)
                fprintf(stderr, "host %c: participant slot %u pid %d %s alive %d holds %llu\n",
                        h->name, s->participants[i].slot, s->participants[i].pid,
                        s->participants[i].name, s->participants[i].alive,
                        (unsigned long long)s->participants[i].held_blocks);
            for (unsigned p = 0; p < s->npools; p++)
                for (unsigned b = 0; b < s->pools[p].nheld; b++)
                    fprintf(stderr, "host %c: block %u/%u holders 0x%llx seq %llu\n", h->name,
                            s->pools[p].held[b].cls, s->pools[p].held[b].index,
                            (unsigned long long)s->pools[p].held[b].holders,
                            (unsigned long long)s->pools[p].held[b].seq);
            shmbus_snapshot_free(s);
        }
        bh_print_log(h);
    }
    return used;
}

void bh_publish_frame(shmbus_pub *p, shmbus_pixfmt fmt, uint32_t w, uint32_t h, uint64_t index)
{
    shmbus_frame_hdr g;
    assert_int_equal(shmbus_frame_init(&g, fmt, w, h), 0);
    shmbus_msg *m;
    shmbus_frame_hdr *hdr;
    int rc = shmbus_frame_loan(p, &g, &m, &hdr);
    if (rc != 0) fail_msg("frame loan: %s (%s)", shmbus_strerror(rc), shmbus_last_error());
    uint64_t real = pp_realtime_ns();
    hdr->capture_ns = bh_now_ns();
    hdr->frame_number = index;
    pp_fill(shmbus_frame_plane_mut(hdr, 0), hdr->payload_size, index, real);
    rc = shmbus_frame_publish(p, m, true);
    if (rc != 0) fail_msg("frame publish: %s", shmbus_strerror(rc));
}

bool bh_frame_ok(const shmbus_msg *m, uint64_t *index)
{
    const shmbus_frame_hdr *h;
    if (shmbus_frame_get(m, &h) != 0 || h->nplanes != 1) return false;
    uint64_t real;
    if (!pp_check(shmbus_frame_plane(h, 0), h->payload_size, index, &real)) return false;
    /* capture time: the stamp the pixels carry, as CLOCK_MONOTONIC, within 10 ms */
    uint64_t age = pp_realtime_ns() - real;
    uint64_t mono = bh_now_ns() - age;
    uint64_t diff = mono > h->capture_ns ? mono - h->capture_ns : h->capture_ns - mono;
    if (diff > 10000000ull) {
        fprintf(stderr, "frame %llu: capture time off by %llu us\n", (unsigned long long)*index,
                (unsigned long long)diff / 1000);
        return false;
    }
    return !shmbus_frame_has_checksum(h) || shmbus_frame_checksum_ok(h);
}

void bh_publish_message(shmbus_pub *p, uint64_t index, uint64_t size)
{
    shmbus_msg *m;
    int rc = shmbus_pub_loan(p, size, &m);
    if (rc != 0)
        fail_msg("loan %llu: %s (%s)", (unsigned long long)size, shmbus_strerror(rc),
                 shmbus_last_error());
    uint8_t *b = shmbus_msg_data(m);
    for (uint64_t k = 16; k < size; k++) b[k] = pp_byte(index, k);
    uint64_t sum = shmbus_frame_checksum(b + 16, size - 16);
    memcpy(b, &index, 8);
    memcpy(b + 8, &sum, 8);
    rc = shmbus_pub_publish(p, m, size);
    if (rc != 0) fail_msg("publish: %s", shmbus_strerror(rc));
}

bool bh_message_ok(const shmbus_msg *m, uint64_t *index)
{
    uint64_t len = shmbus_msg_length(m), sum;
    const uint8_t *b = shmbus_msg_data(m);
    if (len < 16) return false;
    memcpy(index, b, 8);
    memcpy(&sum, b + 8, 8);
    return shmbus_frame_checksum(b + 16, len - 16) == sum;
}

static void *receiver_run(void *arg)
{
    bh_receiver *r = arg;
    uint64_t end = bh_now_ns() + (uint64_t)r->timeout_ms * 1000000ull;
    while (atomic_load(&r->got) < r->want && !atomic_load(&r->stop) && bh_now_ns() < end) {
        shmbus_msg *m;
        if (shmbus_sub_recv(r->sub, 50, &m) != 0) continue;
        uint64_t idx = UINT64_MAX;
        bool ok = r->frames ? bh_frame_ok(m, &idx) : bh_message_ok(m, &idx);
        shmbus_msg_release(m);
        unsigned n = atomic_load(&r->got);
        if (n < BH_MAX_RECORDED) r->idx[n] = idx;
        if (!ok) atomic_fetch_add(&r->bad, 1);
        atomic_store(&r->got, n + 1);
    }
    return NULL;
}

void bh_receiver_start(bh_receiver *r, shmbus_sub *sub, bool frames, unsigned want, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->sub = sub;
    r->frames = frames;
    r->want = want;
    r->timeout_ms = timeout_ms;
    assert_int_equal(pthread_create(&r->th, NULL, receiver_run, r), 0);
}

void bh_receiver_join(bh_receiver *r) { pthread_join(r->th, NULL); }

void bh_receiver_window(bh_receiver *r, unsigned sent, unsigned window)
{
    for (int i = 0; i < 30000 && atomic_load(&r->got) + window < sent; i++) bh_sleep_ms(1);
}
