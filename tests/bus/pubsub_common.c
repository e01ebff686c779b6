/* Helpers of the multi-process pub/sub tests (see pubsub_common.h). */
#include "pubsub_common.h"

#include "delivery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#ifndef PUBSUB_CONFIG_DIR
#error "PUBSUB_CONFIG_DIR must name tests/bus/pubsub"
#endif

/* ---- shm and runtime directories ------------------------------------------------------------ */

static const char *shm_dir(void)
{
    const char *e = getenv("SHMBUS_SHM_DIR");
    return e && *e ? e : "/dev/shm";
}

static bool is_domain_file(const char *file, const char *dom)
{
    size_t n = strlen(dom);
    return strncmp(file, "shmbus.", 7) == 0 && strncmp(file + 7, dom, n) == 0 &&
           file[7 + n] == '.';
}

/* Count (and, with unlink_them, remove) shmbus.<dom>.* in the shm directory; print names. */
static int domain_segments(const char *dom, bool unlink_them)
{
    DIR *dp = opendir(shm_dir());
    if (!dp)
        return 0;
    int n = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(dp)) != NULL) {
        if (!is_domain_file(de->d_name, dom))
            continue;
        n++;
        snprintf(path, sizeof path, "%s/%s", shm_dir(), de->d_name);
        print_message("    left behind: %s\n", path);
        if (unlink_them)
            unlink(path);
    }
    closedir(dp);
    return n;
}

static void rundir_of(const ps_env *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shmbus.%s", e->tmpdir, e->dom);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- fixture ------------------------------------------------------------------------------- */

static unsigned g_counter;

int ps_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    ps_env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->dom, sizeof e->dom, "b%dx%u", (int)getpid(), ++g_counter);
    snprintf(e->tmpdir, sizeof e->tmpdir, "/tmp/shmbus-ps-XXXXXX");
    if (!mkdtemp(e->tmpdir)) {
        free(e);
        return -1;
    }
    domain_segments(e->dom, true); /* an earlier run with this pid may have crashed */
    *state = e;
    return 0;
}

int ps_teardown(void **state)
{
    ps_env *e = *state;
    int rc = 0;
    proc_kill_children();
    if (e->d && shmbus_domain_close(e->d) != 0)
        print_message("[  ERROR   ] a failed test left domain %s open with pubs, subs or "
                      "messages; its segments are removed by hand\n", e->dom);
    if (domain_segments(e->dom, true) != 0) {
        print_message("[  ERROR   ] segments of domain %s were left in %s\n", e->dom, shm_dir());
        rc = -1;
    }
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    if (access(rd, F_OK) == 0) {
        print_message("[  ERROR   ] runtime directory %s was left\n", rd);
        rc = -1;
    }
    nftw(e->tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (e->shared)
        munmap(e->shared, e->shared_len);
    free(e);
    *state = NULL;
    return rc;
}

void ps_use_config(ps_env *e, const char *file)
{
    char src[512];
    snprintf(src, sizeof src, "%s/%s", PUBSUB_CONFIG_DIR, file);
    if (delivery_config(src, e->tmpdir, e->config, sizeof e->config) != 0)
        fail_msg("cannot make the config of %s for delivery %s (see stderr)", file,
                 delivery_wanted());
}

void ps_nng_only(void)
{
    if (delivery_is_shm()) {
        print_message("    about nng itself: not run with SHMBUS_TEST_DELIVERY=shm\n");
        skip();
    }
}

void *ps_shared(ps_env *e, size_t len)
{
    assert_null(e->shared);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    e->shared = p;
    e->shared_len = len;
    return p;
}

int ps_domain_open(const ps_env *e, shmbus_domain **out)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = e->config[0] ? e->config : NULL;
    o.runtime_dir = e->tmpdir;
    return shmbus_domain_open(e->dom, &o, out);
}

shmbus_domain *ps_open_domain(ps_env *e)
{
    shmbus_domain *d = NULL;
    ps_assert_ok(ps_domain_open(e, &d));
    e->d = d;
    return d;
}

void ps_close_domain(ps_env *e, shmbus_domain *d)
{
    ps_assert_ok(shmbus_domain_close(d));
    if (e->d == d)
        e->d = NULL;
    if (domain_segments(e->dom, false) != 0)
        fail_msg("shared memory of domain %s is left in %s after the last participant closed",
                 e->dom, shm_dir());
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    if (access(rd, F_OK) == 0)
        fail_msg("runtime directory %s is left after the last participant closed", rd);
}

shmbus_class_stats ps_pool_totals(shmbus_domain *d, const char *name)
{
    shmbus_pool *p = NULL;
    ps_assert_ok(shmbus_pool_open(d, name, NULL, 0, &p));
    shmbus_class_stats cs[8], sum = {0};
    int n = shmbus_pool_stats(p, cs, 8);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        sum.total += cs[i].total;
        sum.used += cs[i].used;
        sum.loans += cs[i].loans;
        sum.frees += cs[i].frees;
        sum.failed_loans += cs[i].failed_loans;
        sum.reclaims += cs[i].reclaims;
        if (cs[i].high_water > sum.high_water)
            sum.high_water = cs[i].high_water;
    }
    return sum;
}

/* ---- children ------------------------------------------------------------------------------ */

void ps_kill9(pid_t pid, const char *what)
{
    assert_int_equal(kill(pid, SIGKILL), 0);
    int rc = proc_wait(pid, PS_SAFETY_MS);
    if (rc != 128 + SIGKILL)
        fail_msg("%s (pid %d) ended with %d before it was killed (see its stderr)", what,
                 (int)pid, rc);
}

/* ---- handshakes ---------------------------------------------------------------------------- */

void ps_chan_make(ps_chan *c)
{
    if (pipe(c->down) != 0 || pipe(c->up) != 0)
        fail_msg("pipe: %s", strerror(errno));
}

void ps_chan_child(ps_chan *c)
{
    close(c->down[1]);
    close(c->up[0]);
    c->down[1] = c->up[0] = -1;
}

void ps_chan_parent(ps_chan *c)
{
    close(c->down[0]);
    close(c->up[1]);
    c->down[0] = c->up[1] = -1;
}

void ps_chan_close(ps_chan *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->down[i] >= 0)
            close(c->down[i]);
        if (c->up[i] >= 0)
            close(c->up[i]);
        c->down[i] = c->up[i] = -1;
    }
}

void ps_tell_child(ps_chan *c, char token)
{
    if (proc_tell(c->down[1], token) != 0)
        fail_msg("could not send '%c' to a child: %s", token, strerror(errno));
}

void ps_hear_child(ps_chan *c, char token, int timeout_ms, const char *what)
{
    if (proc_hear(c->up[0], token, timeout_ms) != 0)
        fail_msg("%s: no '%c' within %d ms (the child failed or hangs; see its stderr)", what,
                 token, timeout_ms);
}

/* ---- time and scale ------------------------------------------------------------------------ */

unsigned ps_scaled(unsigned n, unsigned min)
{
    const char *s = getenv("SHMBUS_TEST_SCALE");
    unsigned long pct = s && *s ? strtoul(s, NULL, 10) : 100;
    unsigned long v = (unsigned long)n * pct / 100;
    return v < min ? min : (unsigned)v;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PS_SLOW 5
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PS_SLOW 5
#endif
#endif
#ifndef PS_SLOW
#define PS_SLOW 1
#endif

int ps_patience(int base_ms) { return base_ms * PS_SLOW; }

int ps_wait_counters(_Atomic uint64_t *c, unsigned n, uint64_t v, int timeout_ms)
{
    uint64_t deadline = 0;
    for (unsigned spins = 0;; spins++) {
        bool ok = true;
        for (unsigned i = 0; i < n && ok; i++)
            ok = atomic_load(&c[i]) >= v;
        if (ok)
            return 0;
        if (spins < 64) {
            sched_yield();
            continue;
        }
        uint64_t now = proc_now_ns();
        if (!deadline)
            deadline = now + (uint64_t)timeout_ms * 1000000u;
        else if (now > deadline)
            return -1;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

int ps_wait_counter(_Atomic uint64_t *c, uint64_t v, int timeout_ms)
{
    return ps_wait_counters(c, 1, v, timeout_ms);
}

/* ---- payloads ------------------------------------------------------------------------------ */

uint64_t ps_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t ps_rand_len(uint64_t *s, uint64_t max)
{
    uint64_t r = ps_rand(s);
    uint64_t top = (r & 3) == 0 ? max : (max < 4096 ? max : 4096); /* 1 in 4 may be large */
    return PS_MIN_LEN + (r >> 8) % (top - PS_MIN_LEN + 1);
}

/* 64-bit words mixed into a running hash; the tail bytes one by one. */
static uint64_t checksum(const ps_hdr *h, const uint8_t *body, uint64_t n)
{
    uint64_t x = 0xcbf29ce484222325ull ^ h->seq ^ (h->len << 17) ^ ((uint64_t)h->src << 40) ^
                 h->flags;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, body + i, 8);
        x = (x ^ w) * 0x100000001b3ull;
        x ^= x >> 29;
    }
    for (; i < n; i++)
        x = (x ^ body[i]) * 0x100000001b3ull;
    return x;
}

void ps_fill(void *buf, uint64_t len, uint64_t seq, uint32_t src, uint32_t flags)
{
    ps_hdr h = {.seq = seq, .len = len, .src = src, .flags = flags};
    uint8_t *body = (uint8_t *)buf + sizeof h;
    uint64_t n = len - sizeof h, st = seq * 0x2545f4914f6cdd1dull + src;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = ps_rand(&st);
        memcpy(body + i, &w, 8);
    }
    for (uint64_t w = ps_rand(&st); i < n; i++, w >>= 8)
        body[i] = (uint8_t)w;
    h.sum = checksum(&h, body, n);
    memcpy(buf, &h, sizeof h);
}

int ps_verify(const void *buf, uint64_t len, ps_hdr *out)
{
    ps_hdr h;
    if (len < sizeof h)
        return -1;
    memcpy(&h, buf, sizeof h);
    if (h.len != len)
        return -1;
    if (checksum(&h, (const uint8_t *)buf + sizeof h, len - sizeof h) != h.sum)
        return -1;
    if (out)
        *out = h;
    return 0;
}

int ps_publish(shmbus_pub *p, uint64_t len, uint64_t seq, uint32_t src, uint32_t flags)
{
    shmbus_msg *m;
    int rc = shmbus_pub_loan(p, len, &m);
    if (rc)
        return rc;
    ps_fill(shmbus_msg_data(m), len, seq, src, flags);
    rc = shmbus_pub_publish(p, m, len);
    if (rc && rc != SHMBUS_ETRANSPORT)
        shmbus_msg_release(m);
    return rc;
}

int ps_check_msg(const shmbus_msg *m, ps_hdr *h)
{
    uint64_t len = shmbus_msg_length(m);
    if (ps_verify(shmbus_msg_data(m), len, h) != 0) {
        fprintf(stderr, "child %d: message seq %llu (length %llu): payload is corrupt\n",
                (int)getpid(), (unsigned long long)shmbus_msg_seq(m), (unsigned long long)len);
        return -1;
    }
    if (h->seq != shmbus_msg_seq(m)) {
        fprintf(stderr, "child %d: shmbus_msg_seq is %llu but the payload was written as %llu\n",
                (int)getpid(), (unsigned long long)shmbus_msg_seq(m),
                (unsigned long long)h->seq);
        return -1;
    }
    return 0;
}

/* ---- child side ------------------------------------------------------------------------------ */

shmbus_domain *ps_child_start(const ps_env *e, ps_chan *c)
{
    ps_chan_child(c);
    PS_CHECK(proc_hear(c->down[0], 'g', PS_SAFETY_MS) == 0, "no go token from the test process");
    shmbus_domain *d = NULL;
    PS_OK(ps_domain_open(e, &d));
    return d;
}

shmbus_msg *ps_recv_one(shmbus_sub *s, const char *what)
{
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    for (;;) {
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 500, &m);
        if (rc == 0)
            return m;
        PS_CHECK(rc == SHMBUS_ETIMEDOUT, "%s: recv returned %s (%s)", what, shmbus_errname(rc),
                 shmbus_last_error());
        PS_CHECK(proc_now_ns() < deadline, "%s: nothing arrived within %d ms", what,
                 PS_SAFETY_MS);
    }
}

void ps_expect_seq(shmbus_msg *m, uint64_t want)
{
    ps_hdr h;
    PS_CHECK(ps_check_msg(m, &h) == 0, "message is not intact");
    PS_CHECK(shmbus_msg_seq(m) == want, "expected seq %llu, got %llu", (unsigned long long)want,
             (unsigned long long)shmbus_msg_seq(m));
    PS_OK(shmbus_msg_release(m));
}

shmbus_sub_counters ps_sub_stats(const shmbus_sub *s)
{
    shmbus_sub_counters c;
    PS_OK(shmbus_sub_stats(s, &c));
    return c;
}

void ps_assert_pool_drained(shmbus_domain *d, const char *pool, uint64_t loans)
{
    shmbus_class_stats t = ps_pool_totals(d, pool);
    if (t.used != 0)
        fail_msg("pool %s: %u blocks still in use after every publisher and subscriber left",
                 pool, t.used);
    if (t.loans != t.frees)
        fail_msg("pool %s: %llu loans but %llu frees", pool, (unsigned long long)t.loans,
                 (unsigned long long)t.frees);
    if (loans && t.loans != loans)
        fail_msg("pool %s: %llu loans, expected %llu", pool, (unsigned long long)t.loans,
                 (unsigned long long)loans);
}
