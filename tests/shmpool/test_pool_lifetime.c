/* Pool and domain lifetime in one process: reopening, bad names and classes, closing with
 * live handles, the last one out removing every segment, where segments go, and segments
 * with a wrong magic, version or size. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layout.h" /* segment header offsets, for the corrupted-segment test only */
#include "childutil.h"
#include "testutil.h"

/* ---- pool and domain lifetime ------------------------------------------------------------ */

static void test_reopening_a_pool_with_different_classes_is_incompatible(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_domain *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 4}, {1024, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 2), *q = NULL;

    shmpool_class same_reversed[] = {{1024, 2}, {64, 4}};
    q = tu_open_pool(d, "p", same_reversed, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));
    /* the same classes in memory that held something else: only the fields count, not the
     * padding bytes between them */
    shmpool_class reused[2];
    memset(reused, 0xff, sizeof reused);
    reused[0].block_size = 64;
    reused[0].count = 4;
    reused[1].block_size = 1024;
    reused[1].count = 2;
    q = tu_open_pool(d, "p", reused, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));
    q = tu_open_pool(d2, "p", c, 2);
    assert_int_equal(shmpool_pool_id(q), shmpool_pool_id(p));

    shmpool_class fewer[] = {{64, 4}};
    shmpool_class more_blocks[] = {{64, 5}, {1024, 2}};
    shmpool_class other_size[] = {{128, 4}, {1024, 2}};
    shmpool_class extra[] = {{64, 4}, {1024, 2}, {4096, 1}};
    shmpool_domain *ds[] = {d, d2};
    for (int i = 0; i < 2; i++) {
        q = NULL;
        assert_rc(shmpool_pool_open(ds[i], "p", fewer, 1, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", more_blocks, 2, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", other_size, 2, &q), SHMBUS_EINCOMPAT);
        assert_rc(shmpool_pool_open(ds[i], "p", extra, 3, &q), SHMBUS_EINCOMPAT);
    }
    /* the original pool is untouched */
    shmpool_class_stats st[SHMPOOL_MAX_CLASSES];
    assert_int_equal(shmpool_pool_stats(p, st, SHMPOOL_MAX_CLASSES), 2);
    assert_int_equal(st[0].total, 4);
    assert_int_equal(st[1].total, 2);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d));
}

static void test_opening_a_missing_pool_without_classes_is_enoent(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmbus_pool *p = NULL;
    assert_rc(shmpool_pool_open(d, "nope", NULL, 0, &p), SHMBUS_ENOENT);
    assert_false(tu_segment_exists(tu_shm_dir(), TU_DOM(state), "pool.nope"));
    shmpool_class c[] = {{64, 1}};
    shmbus_pool *made = tu_open_pool(d, "nope", c, 1);
    shmbus_pool *again = tu_open_pool(d, "nope", NULL, 0);
    assert_int_equal(shmpool_pool_id(again), shmpool_pool_id(made));
    assert_string_equal(shmpool_pool_name(again), "nope");
    assert_ok(shmpool_domain_close(d));
}

static void test_bad_names_and_classes_are_einval(void **state)
{
    char long32[33], ok31[32], long48[49], ok47[48];
    memset(long32, 'a', 32);
    long32[32] = 0;
    memset(long48, 'n', 48);
    long48[48] = 0;
    memset(ok47, 'n', 47);
    ok47[47] = 0;
    /* a valid 31-character domain name that is still unique to this test */
    snprintf(ok31, sizeof ok31, "%s", TU_DOM(state));
    memset(ok31 + strlen(ok31), 'x', 31 - strlen(ok31));
    ok31[31] = 0;

    shmpool_domain *d = NULL;
    const char *bad_domains[] = {NULL, "", long32, "a/b", "/x", "a.b", ".."};
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        d = NULL;
        assert_rc(shmpool_domain_open(bad_domains[i], NULL, &d), SHMBUS_EINVAL);
    }
    d = tu_open_domain(ok31);
    assert_string_equal(shmpool_domain_name(d), ok31);
    shmpool_class c[] = {{64, 2}};
    shmbus_pool *p = NULL;
    char pool32[33];
    memcpy(pool32, long32, sizeof pool32);
    const char *bad_pools[] = {NULL, "", pool32, "p/q"};
    for (size_t i = 0; i < sizeof bad_pools / sizeof bad_pools[0]; i++)
        assert_rc(shmpool_pool_open(d, bad_pools[i], c, 1, &p), SHMBUS_EINVAL);
    p = tu_open_pool(d, ok31, c, 1); /* 31 characters is a valid pool name too */

    shmpool_class zero_size[] = {{0, 2}};
    shmpool_class zero_count[] = {{64, 0}};
    shmpool_class too_many_blocks[] = {{64, SHMPOOL_MAX_BLOCKS + 1}};
    shmpool_class too_large[] = {{(1ull << 40) + 1, 1}};
    shmpool_class nine[SHMPOOL_MAX_CLASSES + 1];
    for (unsigned i = 0; i < SHMPOOL_MAX_CLASSES + 1; i++)
        nine[i] = (shmpool_class){64u << i, 1};
    shmbus_pool *q = NULL;
    assert_rc(shmpool_pool_open(d, "q", zero_size, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", zero_count, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", too_many_blocks, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", too_large, 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", nine, SHMPOOL_MAX_CLASSES + 1, &q), SHMBUS_EINVAL);
    assert_rc(shmpool_pool_open(d, "q", NULL, 1, &q), SHMBUS_EINVAL);
    assert_false(tu_segment_exists(tu_shm_dir(), ok31, "pool.q"));

    shmbus_block *n = NULL;
    bool created;
    assert_rc(shmpool_node_get(p, NULL, 8, &n, &created), SHMBUS_EINVAL);
    assert_rc(shmpool_node_get(p, "", 8, &n, &created), SHMBUS_EINVAL);
    assert_rc(shmpool_node_get(p, long48, 8, &n, &created), SHMBUS_EINVAL);
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_node_get(p, ok47, 8, &n, &created));
    assert_true(created);
    assert_ok(shmpool_block_release(n));

    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_segments(tu_shm_dir(), ok31, true), 0);
}

static void test_closing_a_domain_with_live_handles_is_ebusy_until_they_are_released(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = tu_loan(p, 16);
    memcpy(shmpool_block_data(b), "still here", 11);
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY);

    /* nothing changed: the domain, the pool and the block still work */
    shmbus_block *b2 = tu_loan(p, 16);
    assert_ok(shmpool_block_release(b2));
    assert_string_equal((const char *)shmpool_block_data(b), "still here");
    assert_int_equal(tu_pool_used(p), 1);
    assert_true(tu_segment_exists(tu_shm_dir(), TU_DOM(state), "ctl"));

    shmpool_block_clone(b);
    assert_ok(shmpool_block_release(b));
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY); /* one handle is left */
    assert_ok(shmpool_block_release(b));

    /* a named node is a handle too */
    shmbus_block *node = NULL;
    bool created = false;
    assert_ok(shmpool_node_get(p, "aaa", 16, &node, &created));
    assert_rc(shmpool_domain_close(d), SHMBUS_EBUSY);
    assert_ok(shmpool_block_release(node));

    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_segments(tu_shm_dir(), TU_DOM(state), true), 0);
}

static void test_last_participant_out_removes_every_segment(void **state)
{
    const char *dir = tu_shm_dir(), *dom = TU_DOM(state);
    shmpool_domain *d1 = tu_open_domain(dom);
    shmpool_domain *d2 = tu_open_domain(dom);
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d1, "p", c, 1);
    shmbus_pool *q2 = tu_open_pool(d2, "q", c, 1);
    /* the names the leftover checks rely on */
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_true(tu_segment_exists(dir, dom, "pool.q"));
    int before = tu_count_segments(dir, dom, false);

    assert_ok(shmpool_domain_close(d1));
    assert_int_equal(tu_count_segments(dir, dom, false), before);
    shmbus_pool *p2 = tu_open_pool(d2, "p", NULL, 0); /* d2 still sees d1's pool */
    shmbus_block *b = tu_loan(p2, 1);
    assert_ok(shmpool_block_release(b));
    b = tu_loan(q2, 1);
    assert_ok(shmpool_block_release(b));

    assert_ok(shmpool_domain_close(d2));
    assert_int_equal(tu_count_segments(dir, dom, true), 0);
}

static void test_shm_dir_option_and_environment_place_every_segment(void **state)
{
    const char *dom = TU_DOM(state);
    char dir[] = "/tmp/shmbus-test-XXXXXX";
    assert_non_null(mkdtemp(dir));

    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.shm_dir = dir;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d, "p", c, 1);
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_int_equal(tu_count_segments("/dev/shm", dom, true), 0);
    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_entries(dir, true), 0);

    char *old = getenv("SHMBUS_SHM_DIR") ? strdup(getenv("SHMBUS_SHM_DIR")) : NULL;
    setenv("SHMBUS_SHM_DIR", dir, 1);
    int rc = shmpool_domain_open(dom, NULL, &d);
    if (old) {
        setenv("SHMBUS_SHM_DIR", old, 1);
        free(old);
    } else {
        unsetenv("SHMBUS_SHM_DIR");
    }
    assert_ok(rc);
    tu_open_pool(d, "p", c, 1);
    assert_true(tu_segment_exists(dir, dom, "ctl"));
    assert_true(tu_segment_exists(dir, dom, "pool.p"));
    assert_ok(shmpool_domain_close(d));
    assert_int_equal(tu_count_entries(dir, true), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* Overwrite len bytes at off of a file; returns what was there before in saved. */
static void patch_file(const char *path, off_t off, const void *bytes, size_t len, void *saved)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (saved)
        assert_int_equal(pread(fd, saved, len, off), (ssize_t)len);
    assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
    close(fd);
}

static void test_opening_a_segment_with_wrong_magic_version_or_size_is_ebadseg(void **state)
{
    const char *dom = TU_DOM(state);
    char ctl[512], pool[512];
    snprintf(ctl, sizeof ctl, "%s/shmbus.%s.ctl", tu_shm_dir(), dom);
    snprintf(pool, sizeof pool, "%s/shmbus.%s.pool.p", tu_shm_dir(), dom);
    shmpool_domain *d1 = tu_open_domain(dom), *d2 = NULL;
    shmpool_class c[] = {{64, 2}};
    tu_open_pool(d1, "p", c, 1);
    shmbus_pool *q = NULL;
    uint8_t junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, saved[8];

    /* pool: wrong magic */
    patch_file(pool, 0, junk, 8, saved);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_rc(shmpool_pool_open(d2, "p", c, 1, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    patch_file(pool, 0, saved, 8, NULL);

    /* pool: wrong layout version */
    uint32_t v = POOL_VERSION + 1;
    patch_file(pool, offsetof(struct pool_seg_hdr, version), &v, 4, saved);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    patch_file(pool, offsetof(struct pool_seg_hdr, version), saved, 4, NULL);

    /* pool: wrong size (grown: shrinking would pull pages from under d1's mapping) */
    struct stat sb;
    assert_int_equal(stat(pool, &sb), 0);
    assert_int_equal(truncate(pool, sb.st_size + 4096), 0);
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &q), SHMBUS_EBADSEG);
    assert_ok(shmpool_domain_close(d2));
    assert_int_equal(truncate(pool, sb.st_size), 0);

    /* control segment: wrong magic, while d1 is a live participant */
    patch_file(ctl, 0, junk, 8, saved);
    d2 = NULL;
    assert_rc(shmpool_domain_open(dom, NULL, &d2), SHMBUS_EBADSEG);
    patch_file(ctl, 0, saved, 8, NULL);
    /* control segment: wrong layout version */
    v = CTL_VERSION + 1;
    patch_file(ctl, offsetof(struct ctl_hdr, version), &v, 4, saved);
    assert_rc(shmpool_domain_open(dom, NULL, &d2), SHMBUS_EBADSEG);
    patch_file(ctl, offsetof(struct ctl_hdr, version), saved, 4, NULL);

    /* repaired, everything works again */
    assert_ok(shmpool_domain_open(dom, NULL, &d2));
    q = tu_open_pool(d2, "p", NULL, 0);
    shmbus_block *b = tu_loan(q, 1);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

/* An auxiliary segment carries magic, layout version, header size and size like the others:
 * a mismatch in any of them is EBADSEG for the next process that opens it. */
static void test_auxiliary_segment_with_wrong_magic_version_or_size_is_ebadseg(void **state)
{
    const char *dom = TU_DOM(state);
    char aux[512];
    snprintf(aux, sizeof aux, "%s/shmbus.%s.aux", tu_shm_dir(), dom);
    shmpool_domain *d1 = tu_open_domain(dom), *d2 = tu_open_domain(dom);
    void *m1 = NULL, *m2 = NULL;
    assert_ok(shmpool_segment_open(d1, "aux", 64, NULL, NULL, &m1));
    uint8_t junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, saved[8];
    const struct {
        off_t off;
        size_t len;
    } fields[] = {{offsetof(struct aux_hdr, magic), 8},
                  {offsetof(struct aux_hdr, version), 4},
                  {offsetof(struct aux_hdr, header_size), 4},
                  {offsetof(struct aux_hdr, size), 8}};
    for (unsigned i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        patch_file(aux, fields[i].off, junk, fields[i].len, saved);
        assert_rc(shmpool_segment_open(d2, "aux", 64, NULL, NULL, &m2), SHMBUS_EBADSEG);
        patch_file(aux, fields[i].off, saved, fields[i].len, NULL);
    }
    /* a size that does not match the file is refused before the header is read */
    assert_rc(shmpool_segment_open(d2, "aux", 128, NULL, NULL, &m2), SHMBUS_EBADSEG);
    assert_ok(shmpool_segment_open(d2, "aux", 64, NULL, NULL, &m2));
    shmpool_segment_close(m2, 64);
    shmpool_segment_close(m1, 64);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

/* The tag is kept in the segment's header: one that would not fit is refused up front. */
static void test_auxiliary_segment_tag_longer_than_its_header_holds_is_einval(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = tu_open_domain(dom);
    char tag[sizeof((struct aux_hdr *)0)->tag + 1];
    memset(tag, 'a', sizeof tag - 1);
    tag[sizeof tag - 1] = 0; /* 40 characters: no room for the terminator */
    void *m = NULL, *again = NULL;
    assert_rc(shmpool_segment_open(d, tag, 64, NULL, NULL, &m), SHMBUS_EINVAL);
    tag[sizeof tag - 2] = 0; /* 39 characters: fits */
    assert_ok(shmpool_segment_open(d, tag, 64, NULL, NULL, &m));
    assert_ok(shmpool_segment_open(d, tag, 64, NULL, NULL, &again)); /* and is found again */
    shmpool_segment_close(again, 64);
    shmpool_segment_close(m, 64);
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_reopening_a_pool_with_different_classes_is_incompatible),
        TU_TEST(test_opening_a_missing_pool_without_classes_is_enoent),
        TU_TEST(test_bad_names_and_classes_are_einval),
        TU_TEST(test_closing_a_domain_with_live_handles_is_ebusy_until_they_are_released),
        TU_TEST(test_last_participant_out_removes_every_segment),
        TU_TEST(test_shm_dir_option_and_environment_place_every_segment),
        TU_TEST(test_opening_a_segment_with_wrong_magic_version_or_size_is_ebadseg),
        TU_TEST(test_auxiliary_segment_with_wrong_magic_version_or_size_is_ebadseg),
        TU_TEST(test_auxiliary_segment_tag_longer_than_its_header_holds_is_einval),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
