/* Helpers shared by the shmbus test programs (see testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

/* ---- status codes ------------------------------------------------------------------------ */

const char *tu_errname(int code)
{
    switch (code) {
#define TU_X_NAME(name, value, msg) \
    case value:                     \
        return #name;
        SHMBUS_ERRORS(TU_X_NAME)
#undef TU_X_NAME
    default:
        return code > 0 ? "(positive: a count, not a status)" : "(unknown code)";
    }
}

const char *tu_errmsg(int code)
{
    switch (code) {
#define TU_X_MSG(name, value, msg) \
    case value:                    \
        return msg;
        SHMBUS_ERRORS(TU_X_MSG)
#undef TU_X_MSG
    default:
        return "(unknown code)";
    }
}

/* ---- shm directory ----------------------------------------------------------------------- */

const char *tu_shm_dir(void)
{
    const char *e = getenv("SHMBUS_SHM_DIR");
    return e && *e ? e : "/dev/shm";
}

static bool has_domain_prefix(const char *file, const char *domain)
{
    size_t n = strlen(domain);
    return strncmp(file, "shmbus.", 7) == 0 && strncmp(file + 7, domain, n) == 0 &&
           file[7 + n] == '.';
}

int tu_count_segments(const char *dir, const char *domain, bool print)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (has_domain_prefix(e->d_name, domain)) {
            n++;
            if (print)
                print_message("    left behind: %s/%s\n", dir, e->d_name);
        }
    }
    closedir(dp);
    return n;
}

bool tu_segment_exists(const char *dir, const char *domain, const char *suffix)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/shmbus.%s.%s", dir, domain, suffix);
    return access(path, F_OK) == 0;
}

int tu_remove_segments(const char *dir, const char *domain)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(dp)) != NULL) {
        if (has_domain_prefix(e->d_name, domain)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) == 0)
                n++;
        }
    }
    closedir(dp);
    return n;
}

int tu_count_entries(const char *dir, bool print)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (print)
            fprintf(stderr, "    entry: %s/%s\n", dir, e->d_name);
    }
    closedir(dp);
    return n;
}

/* ---- fixture ----------------------------------------------------------------------------- */

static unsigned g_test_counter;

void tu_apply_filter(void)
{
    const char *f = getenv("SHMBUS_TEST_FILTER");
    if (f && *f)
        cmocka_set_test_filter(f);
}

int tu_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN); /* a dead child's pipe gives EPIPE, not death */
    tu_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    unsigned n = ++g_test_counter;
    snprintf(f->dom, sizeof f->dom, "t%d_%u", (int)getpid(), n);
    snprintf(f->dom2, sizeof f->dom2, "t%d_%ub", (int)getpid(), n);
    /* A previous run with the same pid may have crashed: start from nothing. */
    tu_remove_segments(tu_shm_dir(), f->dom);
    tu_remove_segments(tu_shm_dir(), f->dom2);
    *state = f;
    return 0;
}

int tu_teardown(void **state)
{
    tu_fixture *f = *state;
    int rc = 0;
    tu_kill_children();
    const char *names[2] = {f->dom, f->dom2};
    for (int i = 0; i < 2; i++) {
        if (tu_count_segments(tu_shm_dir(), names[i], true) != 0) {
            print_message("[  ERROR   ] segments of domain \"%s\" were left in %s\n", names[i],
                          tu_shm_dir());
            tu_remove_segments(tu_shm_dir(), names[i]);
            rc = -1;
        }
    }
    free(f);
    *state = NULL;
    return rc;
}

/* ---- processes --------------------------------------------------------------------------- */

#define TU_MAX_CHILDREN 64
static pid_t g_children[TU_MAX_CHILDREN];

static void remember_child(pid_t pid)
{
    for (int i = 0; i < TU_MAX_CHILDREN; i++) {
        if (g_children[i] == 0) {
            g_children[i] = pid;
            return;
        }
    }
}

void tu_forget_child(pid_t pid)
{
    for (int i = 0; i < TU_MAX_CHILDREN; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
}

pid_t tu_fork(void)
{
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        memset(g_children, 0, sizeof g_children);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(CHILD_FAIL);
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        return 0;
    }
    remember_child(pid);
    return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
    uint64_t deadline = tu_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            tu_forget_child(pid);
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
            return -1;
        }
        if (r < 0 && errno != EINTR) {
            tu_forget_child(pid);
            return -1;
        }
        if (tu_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            tu_forget_child(pid);
            return -1;
        }
        tu_sleep_ms(2);
    }
}

void tu_expect_child_ok(pid_t pid, int timeout_ms, const char *what)
{
    int rc = tu_wait(pid, timeout_ms);
    if (rc == -1)
        fail_msg("%s (pid %d) still ran after %d ms and was killed", what, (int)pid, timeout_ms);
    if (rc > 128)
        fail_msg("%s (pid %d) was killed by signal %d (%s)", what, (int)pid, rc - 128,
                 strsignal(rc - 128));
    if (rc != 0)
        fail_msg("%s (pid %d) exited with status %d", what, (int)pid, rc);
}

void tu_kill_children(void)
{
    for (int i = 0; i < TU_MAX_CHILDREN; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
}

void tu_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
}

int tu_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tu_read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    uint64_t deadline = tu_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (len > 0) {
        uint64_t now = tu_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tu_signal(int fd, char c) { return tu_write_all(fd, &c, 1); }

int tu_await(int fd, char expect, int timeout_ms)
{
    char c;
    if (tu_read_all(fd, &c, 1, timeout_ms) != 0)
        return -1;
    return c == expect ? 0 : -1;
}

/* ---- misc -------------------------------------------------------------------------------- */

uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tu_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int tu_stress_seconds(void)
{
    const char *e = getenv("SHMBUS_STRESS_SECONDS");
    int s = e ? atoi(e) : 0;
    return s > 0 ? s : 3;
}

bool tu_is_root(void) { return geteuid() == 0; }

uint32_t tu_pool_used(const shmbus_pool *p)
{
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    int n = shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES);
    if (n < 0)
        fail_msg("shmpool_pool_stats returned %d (%s)", n, tu_errname(n));
    uint32_t used = 0;
    for (int i = 0; i < n; i++)
        used += st[i].used;
    return used;
}

void tu_class_stats(const shmbus_pool *p, unsigned cls, shmpool_class_stats *out)
{
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    int n = shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES);
    if (n < 0)
        fail_msg("shmpool_pool_stats returned %d (%s)", n, tu_errname(n));
    if ((int)cls >= n)
        fail_msg("class %u requested, pool has %d", cls, n);
    *out = st[cls];
}

struct holders_ctx {
    uint64_t mask;
    unsigned used;
    bool one;
    unsigned cls;
    uint32_t index;
};

static int holders_fn(const shmpool_block_state *st, void *ctx)
{
    struct holders_ctx *h = ctx;
    if (h->one) {
        if (st->cls == h->cls && st->index == h->index) {
            h->mask = st->holders;
            return 1;
        }
        return 0;
    }
    h->mask |= st->holders;
    h->used++;
    return 0;
}

uint64_t tu_pool_holders(const shmbus_pool *p, unsigned *nused)
{
    struct holders_ctx h = {0};
    int rc = shmpool_pool_walk(p, holders_fn, &h);
    if (rc < 0)
        fail_msg("shmpool_pool_walk returned %d (%s)", rc, tu_errname(rc));
    if (nused)
        *nused = h.used;
    return h.mask;
}

uint64_t tu_block_holders(const shmbus_pool *p, unsigned cls, uint32_t index)
{
    struct holders_ctx h = {.one = true, .cls = cls, .index = index};
    int rc = shmpool_pool_walk(p, holders_fn, &h);
    if (rc < 0)
        fail_msg("shmpool_pool_walk returned %d (%s)", rc, tu_errname(rc));
    return h.mask;
}

void tu_assert_consistent(shmpool_domain *d)
{
    shmpool_check_report rep;
    memset(&rep, 0xa5, sizeof rep);
    int rc = shmpool_domain_check(d, &rep);
    if (rc != 0 || rep.orphan_holds != 0 || rep.imbalance != 0)
        fail_msg("domain check: rc %d (%s), blocks %llu, used %llu, orphan holds %llu, "
                 "imbalance %lld",
                 rc, tu_errname(rc), (unsigned long long)rep.blocks,
                 (unsigned long long)rep.used, (unsigned long long)rep.orphan_holds,
                 (long long)rep.imbalance);
}

shmpool_domain *tu_open_domain_at(const char *file, int line, const char *name)
{
    shmpool_domain *d = NULL;
    int rc = shmpool_domain_open(name, NULL, &d);
    if (rc != 0 || !d) {
        print_error("ERROR: shmpool_domain_open(\"%s\") returned %d (%s)\n", name, rc,
                    tu_errname(rc));
        _fail(file, line);
    }
    return d;
}

shmbus_pool *tu_open_pool_at(const char *file, int line, shmpool_domain *d, const char *name,
                             const shmpool_class *classes, unsigned nclasses)
{
    shmbus_pool *p = NULL;
    int rc = shmpool_pool_open(d, name, classes, nclasses, &p);
    if (rc != 0 || !p) {
        print_error("ERROR: shmpool_pool_open(\"%s\", %u classes) returned %d (%s)\n", name,
                    nclasses, rc, tu_errname(rc));
        _fail(file, line);
    }
    return p;
}

shmpool_block_info tu_info(const shmbus_block *b)
{
    shmpool_block_info i;
    memset(&i, 0, sizeof i);
    shmpool_block_get_info(b, &i);
    return i;
}

void tu_write_pattern(shmbus_block *b)
{
    shmpool_block_info in;
    shmpool_block_get_info(b, &in);
    uint64_t cap = shmpool_block_capacity(b), inv = ~in.seq;
    unsigned char *data = shmpool_block_data(b);
    memcpy(data, &in.seq, 8);
    memcpy(data + cap - 8, &inv, 8);
}

bool tu_has_pattern(const shmbus_block *b, uint64_t seq)
{
    uint64_t first, last, cap = shmpool_block_capacity(b);
    const unsigned char *data = shmpool_block_data(b);
    memcpy(&first, data, 8);
    memcpy(&last, data + cap - 8, 8);
    return first == seq && last == ~seq;
}

shmbus_block *tu_loan(shmbus_pool *p, uint64_t size)
{
    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, size, 0, &b));
    assert_non_null(b);
    return b;
}

void tu_opts_no_reaper(shmpool_domain_opts *o)
{
    shmpool_domain_opts_init(o);
    o->no_reaper = true;
}

shmbus_block *tu_loan_described(shmbus_pool *p, uint64_t len, shmpool_desc *desc)
{
    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, len, 0, &b));
    tu_write_pattern(b);
    assert_ok(shmpool_block_describe(b, len, 0, desc));
    return b;
}

void tu_send_desc(int fd, const shmpool_desc *desc)
{
    uint8_t wire[SHMPOOL_DESC_SIZE];
    shmpool_desc_encode(desc, wire);
    assert_int_equal(tu_write_all(fd, wire, sizeof wire), 0);
}

void tu_child_recv_desc(int fd, shmpool_desc *desc)
{
    uint8_t wire[SHMPOOL_DESC_SIZE];
    CHILD_CHECK(tu_read_all(fd, wire, sizeof wire, 20000) == 0);
    CHILD_OK(shmpool_desc_decode(wire, sizeof wire, desc));
}
