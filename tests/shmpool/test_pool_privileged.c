/* shmpool tests that need root: file permissions between users, ENOSPC on a small tmpfs,
 * and participants in different PID namespaces. Each one skips (saying why) when it runs
 * without root or when the kernel refuses the namespace it needs.
 *
 * Privileges are changed only in forked children; the test process stays as it was. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "childutil.h"
#include "testutil.h"

#define CHILD_SKIP 77 /* a child's exit status: the environment does not allow the test */

static void require_root(void)
{
    if (!tu_is_root()) {
        print_message("    skipped: needs root (running as uid %d)\n", (int)geteuid());
        skip();
    }
}

/* In a child: become uid/gid with no supplementary groups, or exit CHILD_SKIP. */
static void child_become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        fprintf(stderr, "child: cannot drop to uid %d gid %d: %s\n", (int)uid, (int)gid,
                strerror(errno));
        _exit(CHILD_SKIP);
    }
    CHILD_CHECK(geteuid() == uid && getegid() == gid);
}

/* Wait for a child that may report CHILD_SKIP; skip() the test then. */
static void expect_child_ok_or_skip(pid_t pid, const char *what, const char *skip_reason)
{
    int rc = proc_wait(pid, 30000);
    if (rc == CHILD_SKIP) {
        print_message("    skipped: %s\n", skip_reason);
        skip();
    }
    if (rc != 0)
        fail_msg("%s (pid %d) ended with status %d", what, (int)pid, rc);
}

static unsigned file_mode(const char *dom, const char *suffix, gid_t *gid)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/shmbus.%s.%s", tu_shm_dir(), dom, suffix);
    assert_int_equal(stat(path, &sb), 0);
    if (gid)
        *gid = sb.st_gid;
    return sb.st_mode & 07777;
}

/* ---- permissions ------------------------------------------------------------------------- */

static void test_domain_created_0600_by_root_cannot_be_opened_by_another_uid(void **state)
{
    require_root();
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_fork(&ch);
    if (pid == 0) {
        CHILD_CHECK(proc_hear(ch.to_child[0], 'g', 20000) == 0);
        child_become(65534, 65534);
        int rc[2];
        shmpool_domain *d = NULL;
        rc[0] = shmpool_domain_open(dom, NULL, &d);
        shmpool_domain_opts o;
        shmpool_domain_opts_init(&o);
        o.observer = true; /* not even reading */
        rc[1] = shmpool_domain_open(dom, &o, &d);
        CHILD_CHECK(proc_write_all(ch.to_parent[1], rc, sizeof rc) == 0);
        _exit(0);
    }
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.mode = 0600;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 2}}, 1);
    assert_int_equal(file_mode(dom, "ctl", NULL), 0600);
    assert_int_equal(file_mode(dom, "pool.p", NULL), 0600);
    int before = tu_count_segments(tu_shm_dir(), dom, false);

    assert_int_equal(proc_tell(ch.to_child[1], 'g'), 0);
    int rc[2];
    int got = proc_read_all(ch.to_parent[0], rc, sizeof rc, 20000);
    expect_child_ok_or_skip(pid, "unprivileged child", "cannot change uid in this sandbox");
    assert_int_equal(got, 0);
    for (int i = 0; i < 2; i++) {
        print_message("    uid 65534 %s: %d (%s): \"%s\"\n", i ? "observing" : "joining", rc[i],
                      tu_errname(rc[i]), tu_errmsg(rc[i]));
        assert_rc(rc[i], SHMBUS_EACCES);
        assert_non_null(strstr(tu_errmsg(rc[i]), "permission denied"));
    }
    /* the refused attempts changed nothing */
    assert_int_equal(tu_count_segments(tu_shm_dir(), dom, false), before);
    shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
    assert_int_equal(shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS), 1);
    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, 1, 0, &b));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

static void test_domain_created_0660_with_a_group_admits_that_group_only(void **state)
{
    require_root();
    const char *dom = TU_DOM(state);
    int go[2];
    proc_pipe(go);
    pid_t member = proc_fork();
    if (member == 0) { /* uid 65533 in group 65534: may join, loan and write */
        CHILD_CHECK(proc_hear(go[0], 'g', 20000) == 0);
        child_become(65533, 65534);
        shmpool_domain_opts o;
        shmpool_domain_opts_init(&o);
        o.no_reaper = true;
        shmpool_domain *d = NULL;
        shmbus_pool *p = NULL;
        shmbus_block *b = NULL;
        CHILD_OK(shmpool_domain_open(dom, &o, &d));
        CHILD_OK(shmpool_pool_open(d, "p", NULL, 0, &p));
        CHILD_OK(shmpool_loan(p, 1, 0, &b));
        memset(shmpool_block_data(b), 1, shmpool_block_capacity(b));
        CHILD_OK(shmpool_block_release(b));
        CHILD_OK(shmpool_domain_close(d));
        _exit(0);
    }
    pid_t stranger = proc_fork();
    if (stranger == 0) { /* uid 65533 in group 65533: refused */
        CHILD_CHECK(proc_hear(go[0], 'g', 20000) == 0);
        child_become(65533, 65533);
        shmpool_domain *d = NULL;
        CHILD_RC(shmpool_domain_open(dom, NULL, &d), SHMBUS_EACCES);
        _exit(0);
    }
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.mode = 0660;
    o.gid = 65534;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 2}}, 1);
    gid_t gid;
    assert_int_equal(file_mode(dom, "ctl", &gid), 0660);
    assert_int_equal(gid, 65534);
    assert_int_equal(file_mode(dom, "pool.p", &gid), 0660);
    assert_int_equal(gid, 65534);
    assert_int_equal(proc_tell(go[1], 'g'), 0);
    assert_int_equal(proc_tell(go[1], 'g'), 0);
    expect_child_ok_or_skip(member, "group member child", "cannot change uid in this sandbox");
    expect_child_ok_or_skip(stranger, "stranger child", "cannot change uid in this sandbox");
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.loans, 1);
    assert_int_equal(st.used, 0);
    assert_ok(shmpool_domain_close(d));
}

/* A file another uid planted where the domain's segment belongs: refused, naming its owner,
 * and left in place (root could open, adopt or remove anything: it does none of that). */
static void test_segments_planted_by_another_uid_are_refused_naming_the_owner(void **state)
{
    require_root();
    const char *dom = TU_DOM(state), *dom2 = TU_DOM2(state);
    const char *planted[] = {"pool.p", "aux"};
    pid_t pid = proc_fork();
    if (pid == 0) {
        child_become(65534, 65534);
        char path[512];
        for (unsigned i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/shmbus.%s.%s", tu_shm_dir(), dom, planted[i]);
            int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
            CHILD_CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
            close(fd);
        }
        snprintf(path, sizeof path, "%s/shmbus.%s.ctl", tu_shm_dir(), dom2);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644); /* empty: "being created" */
        CHILD_CHECK(fd >= 0);
        close(fd);
        _exit(0);
    }
    expect_child_ok_or_skip(pid, "planting child", "cannot change uid in this sandbox");

    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, NULL, &d));
    void *map;
    assert_rc(shmpool_segment_open(d, "aux", 64, NULL, NULL, &map), SHMBUS_EACCES);
    if (!strstr(shmpool_last_error(), "owned by uid 65534"))
        fail_msg("error detail \"%s\" does not name the owner", shmpool_last_error());
    shmbus_pool *p;
    int rc = shmpool_pool_open(d, "p", (shmpool_class[]){{256, 2}}, 1, &p);
    assert_true(rc == SHMBUS_EEXIST || rc == SHMBUS_EACCES);
    assert_ok(shmpool_domain_close(d));
    /* An empty ctl file of a stranger is not adopted as a fresh domain. */
    assert_rc(shmpool_domain_open(dom2, NULL, &d), SHMBUS_EACCES);
    if (!strstr(shmpool_last_error(), "owned by uid 65534"))
        fail_msg("error detail \"%s\" does not name the owner", shmpool_last_error());

    /* Every planted file is still there, still the stranger's. */
    char path[512];
    struct stat st;
    for (unsigned i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/shmbus.%s.%s", tu_shm_dir(), dom, planted[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, 65534);
        assert_int_equal(st.st_mode & 07777, 0644);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/shmbus.%s.ctl", tu_shm_dir(), dom2);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_mode & 07777, 0644);
    unlink(path);
}

/* ---- ENOSPC ------------------------------------------------------------------------------ */

static bool dir_has(const char *dir, const char *dom, const char *suffix)
{
    return tu_segment_exists(dir, dom, suffix);
}

static void test_pool_larger_than_a_small_tmpfs_fails_with_enospc_and_leaves_nothing(void **state)
{
    require_root();
    const char *dom = TU_DOM(state);
    char dir[] = "/tmp/shmbus-enospc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t pid = proc_fork();
    if (pid == 0) {
        /* a private mount namespace, so the 4 MiB tmpfs exists for this child only */
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=1777") != 0) {
            fprintf(stderr, "child: cannot mount a private tmpfs: %s\n", strerror(errno));
            _exit(CHILD_SKIP);
        }
        shmpool_domain_opts o;
        shmpool_domain_opts_init(&o);
        o.shm_dir = dir;
        shmpool_domain *d = NULL;
        shmbus_pool *p = NULL;
        CHILD_OK(shmpool_domain_open(dom, &o, &d));
        int open_files = tu_count_entries(dir, false);
        CHILD_RC(shmpool_pool_open(d, "big", (shmpool_class[]){{16u << 20, 1}}, 1, &p),
                 SHMBUS_ENOSPC);
        CHILD_CHECK(!dir_has(dir, dom, "pool.big"));
        if (tu_count_entries(dir, false) != open_files) {
            tu_count_entries(dir, true); /* name what was left */
            CHILD_CHECK(!"the failed pool left a file behind");
        }
        /* the failed pool is not half-registered: it is still missing, not broken */
        CHILD_RC(shmpool_pool_open(d, "big", NULL, 0, &p), SHMBUS_ENOENT);
        /* what fits still works, and its pages are really there (no SIGBUS) */
        CHILD_OK(shmpool_pool_open(d, "small", (shmpool_class[]){{65536, 4}}, 1, &p));
        shmbus_block *b[4];
        for (int i = 0; i < 4; i++) {
            CHILD_OK(shmpool_loan(p, 65536, 0, &b[i]));
            memset(shmpool_block_data(b[i]), 0x5a, shmpool_block_capacity(b[i]));
        }
        for (int i = 0; i < 4; i++)
            CHILD_OK(shmpool_block_release(b[i]));
        CHILD_OK(shmpool_domain_close(d));
        int left = tu_count_entries(dir, true);
        umount(dir);
        CHILD_CHECK(left == 0);
        _exit(0);
    }
    int rc = proc_wait(pid, 30000);
    rmdir(dir);
    if (rc == CHILD_SKIP) {
        print_message("    skipped: cannot mount a private tmpfs here\n");
        skip();
    }
    if (rc != 0)
        fail_msg("ENOSPC child ended with status %d", rc);
}

/* ---- PID namespaces ---------------------------------------------------------------------- */

struct find_block {
    unsigned cls;
    uint32_t index;
    uint64_t holders;
};

static int find_block_fn(const shmpool_block_state *st, void *ctx)
{
    struct find_block *f = ctx;
    if (st->cls == f->cls && st->index == f->index) {
        f->holders = st->holders;
        return 1;
    }
    return 0;
}

static void test_participants_in_different_pid_namespaces_never_reclaim_each_other(void **state)
{
    require_root();
    const char *dom = TU_DOM(state);
    int to_g[2], from_g[2];
    proc_pipe(to_g);
    proc_pipe(from_g);
    pid_t pid = proc_fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWPID) != 0) {
            fprintf(stderr, "child: unshare(CLONE_NEWPID): %s\n", strerror(errno));
            _exit(CHILD_SKIP);
        }
        pid_t g = fork();
        CHILD_CHECK(g >= 0);
        if (g == 0) { /* pid 1 of a new namespace: the parent's pid means nothing here */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            CHILD_CHECK(getpid() == 1);
            shmpool_desc desc;
            tu_child_recv_desc(to_g[0], &desc);
            shmpool_domain_opts o;
            shmpool_domain_opts_init(&o);
            o.sweep_interval_ms = 10; /* sweep often */
            shmpool_domain *d = NULL;
            shmbus_pool *p = NULL;
            shmbus_block *r = NULL, *own = NULL;
            CHILD_OK(shmpool_domain_open(dom, &o, &d));
            CHILD_OK(shmpool_pool_open(d, "p", NULL, 0, &p));
            CHILD_OK(shmpool_acquire(d, &desc, &r));
            CHILD_CHECK(tu_has_pattern(r, desc.seq));
            CHILD_OK(shmpool_loan(p, 1, 0, &own));
            tu_write_pattern(own);
            uint32_t slot = shmpool_domain_slot(d);
            CHILD_CHECK(proc_write_all(from_g[1], &slot, sizeof slot) == 0);
            for (int round = 0; round < 2; round++) {
                CHILD_CHECK(proc_hear(to_g[0], 'x', 20000) == 0);
                CHILD_RC(shmpool_domain_sweep(d), 0); /* the parent is alive: nothing to do */
                /* the parent's block: still held by both of us */
                struct find_block f = {.cls = desc.cls, .index = desc.index};
                CHILD_CHECK(shmpool_pool_walk(p, find_block_fn, &f) >= 0);
                CHILD_CHECK((f.holders & (1ull << slot)) && __builtin_popcountll(f.holders) == 2);
                CHILD_CHECK(tu_has_pattern(r, desc.seq));
                CHILD_CHECK(proc_tell(from_g[1], 'r') == 0);
            }
            CHILD_CHECK(proc_hear(to_g[0], 'q', 20000) == 0);
            CHILD_OK(shmpool_block_release(r));
            CHILD_OK(shmpool_block_release(own));
            CHILD_OK(shmpool_domain_close(d));
            _exit(0);
        }
        int status;
        CHILD_CHECK(waitpid(g, &status, 0) == g);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    close(to_g[0]);
    close(from_g[1]);
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.sweep_interval_ms = 10;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    shmbus_pool *p = tu_open_pool(d, "p", (shmpool_class[]){{256, 4}}, 1);
    shmpool_desc desc;
    shmbus_block *mine = tu_loan_described(p, 1, &desc);
    tu_send_desc(to_g[1], &desc);
    uint32_t g_slot;
    if (proc_read_all(from_g[0], &g_slot, sizeof g_slot, 20000) != 0) {
        expect_child_ok_or_skip(pid, "namespace child", "cannot create a PID namespace here");
        fail_msg("the namespace child did not report");
    }
    uint64_t me = 1ull << shmpool_domain_slot(d), g = 1ull << g_slot;

    for (int round = 0; round < 2; round++) {
        proc_sleep_ms(300); /* ~30 periodic sweeps in each process */
        assert_int_equal(shmpool_domain_sweep(d), 0);
        assert_int_equal(proc_tell(to_g[1], 'x'), 0);
        assert_int_equal(proc_hear(from_g[0], 'r', 20000), 0);
        assert_int_equal(tu_pool_used(p), 2);
        assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me | g);
        assert_int_equal(tu_pool_holders(p, NULL), me | g);
        shmpool_participant_info pi[SHMPOOL_MAX_PARTICIPANTS];
        int n = shmpool_participants(d, pi, SHMPOOL_MAX_PARTICIPANTS);
        assert_int_equal(n, 2);
        for (int i = 0; i < n; i++)
            assert_true(pi[i].alive);
        shmpool_class_stats st;
        tu_class_stats(p, 0, &st);
        assert_int_equal(st.reclaims, 0);
        if (round == 0)
            print_message("    participant in the other namespace: slot %u, pid as recorded %d\n",
                          g_slot, pi[0].slot == g_slot ? pi[0].pid : pi[1].pid);
    }
    assert_int_equal(proc_tell(to_g[1], 'q'), 0);
    expect_child_ok_or_skip(pid, "namespace child", "cannot create a PID namespace here");
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), me);
    assert_ok(shmpool_block_release(mine));
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_domain_created_0600_by_root_cannot_be_opened_by_another_uid),
        TU_TEST(test_domain_created_0660_with_a_group_admits_that_group_only),
        TU_TEST(test_segments_planted_by_another_uid_are_refused_naming_the_owner),
        TU_TEST(test_pool_larger_than_a_small_tmpfs_fails_with_enospc_and_leaves_nothing),
        TU_TEST(test_participants_in_different_pid_namespaces_never_reclaim_each_other),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
