/* Helpers shared by the shmbus test programs (see testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
    proc_kill_children();
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

/* ---- misc -------------------------------------------------------------------------------- */

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
    assert_int_equal(proc_write_all(fd, wire, sizeof wire), 0);
}

void tu_child_recv_desc(int fd, shmpool_desc *desc)
{
    uint8_t wire[SHMPOOL_DESC_SIZE];
    CHILD_CHECK(proc_read_all(fd, wire, sizeof wire, 20000) == 0);
    CHILD_OK(shmpool_desc_decode(wire, sizeof wire, desc));
}
