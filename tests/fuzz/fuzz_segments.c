/* libFuzzer harness: a participant's calls on a domain whose live segments a bad writer of
 * the same uid changed.
 *
 * A resident participant keeps the domain up: a pool of two classes, one described block it
 * holds. Each input is a list of writes into the control or the pool segment (or a
 * truncation of one). Then a second participant joins afresh (map-time validation), opens
 * the pool, loans, describes, acquires the resident's block, reads it, takes a named node,
 * walks, sweeps, checks, and leaves; an observer looks too. Every call must return 0, a count
 * or a SHMBUS_E* code: a crash, a hang (libFuzzer's -timeout) or any other status is a bug.
 * (The multi-process version, with a publisher and a subscriber: test_pool_corruption.)
 * Afterwards the segments get their original bytes and sizes back; if the input made the
 * newcomer wipe the domain (it found nobody alive), the resident starts a new one.
 *
 * Input records, 13 bytes each: op (bits 0-1: 0 ctl, 1 pool, 2 pool header area, 3 truncate;
 * bits 2-3: width 1, 2, 4 or 8 bytes; bit 4: truncate the pool instead of ctl), offset (u32,
 * modulo the segment's size), value (u64). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmpool.h"

enum { SEG_CTL, SEG_POOL, NSEG };

struct seg {
    char path[256];
    uint8_t *orig; /* the segment as the resident left it */
    size_t size;
    ino_t ino;
};

static char g_name[32];
static shmpool_domain *g_dom;
static shmbus_block *g_held;
static shmpool_desc g_desc;
static struct seg g_seg[NSEG];

/* A status (0 or SHMBUS_E*) or a count (> 0): anything below the last code is a bug. */
static void check(long rc)
{
    if (rc < SHMBUS_EINTR)
        abort();
}

static void snapshot(void)
{
    const char *dir = getenv("SHMBUS_SHM_DIR");
    dir = dir && *dir ? dir : "/dev/shm";
    snprintf(g_seg[SEG_CTL].path, sizeof g_seg[SEG_CTL].path, "%s/shmbus.%s.ctl", dir, g_name);
    snprintf(g_seg[SEG_POOL].path, sizeof g_seg[SEG_POOL].path, "%s/shmbus.%s.pool.p", dir,
             g_name);
    for (int i = 0; i < NSEG; i++) {
        struct seg *s = &g_seg[i];
        int fd = open(s->path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0)
            abort();
        free(s->orig);
        s->size = (size_t)st.st_size;
        s->ino = st.st_ino;
        s->orig = malloc(s->size);
        if (!s->orig || pread(fd, s->orig, s->size, 0) != (ssize_t)s->size)
            abort();
        close(fd);
    }
}

static void resident_up(void)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.no_reaper = true;
    shmpool_class cls[] = {{64, 8}, {4096, 4}};
    shmbus_pool *p;
    if (shmpool_domain_open(g_name, &o, &g_dom) || shmpool_pool_open(g_dom, "p", cls, 2, &p) ||
        shmpool_loan(p, 64, 0, &g_held) ||
        shmpool_block_describe(g_held, 48, 7, &g_desc))
        abort();
    snapshot();
}

static void resident_down(void)
{
    if (g_held)
        shmpool_block_release(g_held);
    g_held = NULL;
    if (g_dom)
        shmpool_domain_close(g_dom);
    g_dom = NULL;
    for (int i = 0; i < NSEG; i++) /* whatever the newcomer left under our name */
        unlink(g_seg[i].path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_name, sizeof g_name, "fuzzseg%d", (int)getpid());
    resident_up();
    atexit(resident_down);
    return 0;
}

/* Put every segment back as it was; false if one is gone or replaced. */
static bool restore(void)
{
    for (int i = 0; i < NSEG; i++) {
        struct seg *s = &g_seg[i];
        int fd = open(s->path, O_RDWR | O_NOFOLLOW);
        struct stat st;
        bool ok = fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == s->ino &&
                  ftruncate(fd, (off_t)s->size) == 0 &&
                  pwrite(fd, s->orig, s->size, 0) == (ssize_t)s->size;
        if (fd >= 0)
            close(fd);
        if (!ok)
            return false;
    }
    return true;
}

static void mutate(const uint8_t *data, size_t size)
{
    for (size_t at = 0; at + 13 <= size; at += 13) {
        uint8_t op = data[at];
        uint32_t off;
        uint64_t v;
        memcpy(&off, data + at + 1, 4);
        memcpy(&v, data + at + 5, 8);
        int kind = op & 3;
        size_t width = (size_t)1 << ((op >> 2) & 3);
        struct seg *s = &g_seg[kind == SEG_CTL || (kind == 3 && !(op & 16)) ? SEG_CTL : SEG_POOL];
        int fd = open(s->path, O_RDWR | O_NOFOLLOW);
        if (fd < 0)
            return;
        if (kind == 3) {
            if (ftruncate(fd, (off_t)(off % (s->size + 1))) != 0)
                abort();
        } else {
            size_t span = kind == 2 ? 8192 : s->size; /* header, class table, block headers */
            size_t o = (off % (span < s->size ? span : s->size)) & ~(width - 1);
            if (o + width <= s->size && pwrite(fd, &v, width, (off_t)o) != (ssize_t)width)
                abort();
        }
        close(fd);
    }
}

static int count_block(const shmpool_block_state *st, void *ctx)
{
    (void)st;
    ++*(unsigned *)ctx;
    return 0;
}

/* A newcomer's calls, each of which must come back with a status. */
static void newcomer(bool observer)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.no_reaper = true;
    o.observer = observer;
    shmpool_domain *d = NULL;
    int rc = shmpool_domain_open(g_name, &o, &d);
    check(rc);
    if (rc)
        return;
    shmpool_participant_info parts[SHMPOOL_MAX_PARTICIPANTS];
    check(shmpool_participants(d, parts, SHMPOOL_MAX_PARTICIPANTS));
    shmbus_pool *p = NULL;
    rc = shmpool_pool_open(d, "p", NULL, 0, &p);
    check(rc);
    shmbus_block *mine = NULL, *got = NULL, *node = NULL;
    if (rc == 0) {
        shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
        check(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES));
        unsigned n = 0;
        check(shmpool_pool_walk(p, count_block, &n));
        if (!observer) {
            rc = shmpool_loan(p, 100, 0, &mine);
            check(rc);
            shmpool_desc desc;
            if (rc == 0) {
                memset(shmpool_block_data(mine), 0xab, 100);
                check(shmpool_block_describe(mine, 100, 1, &desc));
            }
            rc = shmpool_acquire(d, &g_desc, &got);
            check(rc);
            if (rc == 0) {
                const volatile uint8_t *b = shmpool_block_data(got);
                shmpool_block_info info;
                shmpool_block_get_info(got, &info);
                uint8_t sum = 0;
                for (uint64_t i = 0; i < info.length; i++)
                    sum ^= b[i];
                (void)sum;
            }
            bool created;
            rc = shmpool_node_get(p, "n", 64, &node, &created);
            check(rc);
            /* no shmpool_node_lock here: it blocks while the lock looks held, by contract, and
             * a writer of the segment can make it look held by a live thread (as it could
             * by holding it); docs/reliability.md */
        }
    }
    if (!observer) {
        check(shmpool_domain_sweep(d));
        shmpool_check_report rep;
        check(shmpool_domain_check(d, &rep));
    }
    shmbus_block *hs[] = {mine, got, node};
    for (int i = 0; i < 3; i++)
        if (hs[i])
            check(shmpool_block_release(hs[i]));
    check(shmpool_domain_close(d));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mutate(data, size);
    newcomer(false);
    newcomer(true);
    if (!restore()) { /* the newcomer found nobody alive and wiped the domain */
        resident_down();
        resident_up();
    }
    return 0;
}
