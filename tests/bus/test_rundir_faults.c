/* Trouble with the runtime directory: socket paths that would not fit a unix socket
 * address, a directory that cannot be made or written, one on a full file system, and one
 * removed under a running domain (which the running processes make again, listening again
 * on their endpoints). Each gives a clear error (a status code and a shmbus_last_error()
 * that says what) or keeps working, never a crash or a hang, and leaves nothing behind.
 *
 * Same rules as test_isolation.c: children are forked before the test process opens anything
 * and the test process never uses nng itself; every test has its own domain "iso<pid>x<n>",
 * a runtime directory under its own mkdtemp directory, and ends with nothing named
 * shmbus.<domain>.* in the shm directory. Tests that need root (a private tmpfs, another uid)
 * skip without it and say why.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "iso_common.h"

/* ---- socket paths too long ------------------------------------------------------------------- */

/* mkdir -p <tmpdir>/<x...x> of total length len; returns it in buf. */
static void long_dir(const ps_env *e, size_t len, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s/", e->tmpdir);
    size_t n = strlen(buf);
    PS_CHECK(len < buflen && len > n + 1, "bad length %zu", len);
    for (; n < len; n++)
        buf[n] = (n % 40 == 39) ? '/' : 'x';
    if (buf[len - 1] == '/')
        buf[len - 1] = 'y';
    buf[len] = 0;
    for (char *s = buf + strlen(e->tmpdir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = 0;
        mkdir(buf, 0700);
        *s = '/';
    }
    PS_CHECK(mkdir(buf, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

/* Publish one message from one process to itself through the domain opened with base. */
static void round_trip(const ps_env *e, const char *base)
{
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    PS_OK(iso_open_with(e, e->config, base, NULL, &d));
    PS_OK(shmbus_pub_open(d, "t", &p));
    PS_OK(shmbus_sub_open(d, "t", NULL, &s));
    PS_OK(shmbus_sub_wait_publishers(s, 1, WAIT_MS));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, WAIT_MS));
    PS_OK(ps_publish(p, 256, 1, 0, 0));
    ps_expect_seq(ps_recv_one(s, "round trip"), 1);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
}

static int long_path_child(const ps_env *e)
{
    char base[512], names[512];
    shmbus_domain *d = NULL;
    long_dir(e, 150, base, sizeof base);
    PS_RC(iso_open_with(e, e->config, base, NULL, &d), SHMBUS_EINVAL);
    char err[512];
    snprintf(err, sizeof err, "%s", shmbus_last_error());
    printf("    runtime_dir of %zu characters: \"%s\"\n", strlen(base), err);
    fflush(stdout);
    PS_CHECK(strstr(err, "too long"), "the message does not say the path is too long: \"%s\"",
             err);
    PS_CHECK(leftovers(e->dom, names, sizeof names) == 0, "left in shm:%s", names);
    PS_CHECK(entries(base, "", names, sizeof names) == 0, "left in %s:%s", base, names);
    /* The same directory from the environment. */
    setenv("SHMBUS_RUNTIME_DIR", base, 1);
    PS_RC(iso_open_with(e, e->config, NULL, NULL, &d), SHMBUS_EINVAL);
    PS_CHECK(strstr(shmbus_last_error(), "too long"), "from $SHMBUS_RUNTIME_DIR: \"%s\"",
             shmbus_last_error());
    unsetenv("SHMBUS_RUNTIME_DIR");
    PS_CHECK(leftovers(e->dom, names, sizeof names) == 0, "left in shm:%s", names);

    /* The limit the message states holds exactly: at it everything works, one over fails. */
    const char *at = strstr(err, "at most ");
    if (!at) {
        printf("    (the message states no limit: boundary not checked)\n");
        fflush(stdout);
        return 0;
    }
    int max = atoi(at + 8);
    size_t overhead = strlen("/shmbus.") + strlen(e->dom);
    PS_CHECK(max > (int)(overhead + strlen(e->tmpdir) + 2), "stated limit %d", max);
    long_dir(e, (size_t)max - overhead, base, sizeof base);
    round_trip(e, base);
    PS_CHECK(leftovers(e->dom, names, sizeof names) == 0, "left in shm:%s", names);
    long_dir(e, (size_t)max - overhead + 1, base, sizeof base);
    PS_RC(iso_open_with(e, e->config, base, NULL, &d), SHMBUS_EINVAL);
    printf("    runtime directory of exactly %d characters works, %d is refused\n", max,
           max + 1);
    fflush(stdout);
    return 0;
}

static void test_runtime_dir_too_long_for_socket_paths_is_einval_saying_so(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    pid_t pid = proc_fork();
    if (pid == 0)
        _exit(long_path_child(e));
    proc_expect_ok(pid, PS_CHILD_MS, "child with long runtime directories");
}

/* ---- runtime directory not writable ---------------------------------------------------------- */

typedef struct rodir_case {
    char base[256];  /* runtime_dir given */
    char what[96];
    int rc;
    char err[512];
    int left;        /* segments left */
} rodir_case;

static int rodir_child(const ps_env *e, rodir_case *cases, unsigned n)
{
    iso_become(ISO_MEMBER, ISO_MEMBER, NULL, 0);
    PS_CHECK(access(e->config, R_OK) == 0, "%s is not readable", e->config);
    for (unsigned i = 0; i < n; i++) {
        shmbus_domain *d = NULL;
        cases[i].rc = iso_open_with(e, e->config, cases[i].base, NULL, &d);
        snprintf(cases[i].err, sizeof cases[i].err, "%s", shmbus_last_error());
        if (d)
            shmbus_domain_close(d);
        cases[i].left = leftovers(e->dom, NULL, 0);
    }
    return 0;
}

static void test_runtime_dir_that_cannot_be_made_or_written_gives_a_clear_error(void **state)
{
    require_root("run a child as another uid");
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    assert_int_equal(chmod(e->tmpdir, 0755), 0);
    rodir_case *c = ps_shared(e, 3 * sizeof *c);
    /* 0: the parent may not be written (0500); 1: shmbus.<dom> exists there but is 0500;
     * 2: the parent does not exist. All belong to the child's uid: only the modes refuse. */
    snprintf(c[0].what, sizeof c[0].what, "parent directory mode 0500");
    snprintf(c[0].base, sizeof c[0].base, "%s/ro", e->tmpdir);
    snprintf(c[1].what, sizeof c[1].what, "runtime directory exists with mode 0500");
    snprintf(c[1].base, sizeof c[1].base, "%s/rw", e->tmpdir);
    snprintf(c[2].what, sizeof c[2].what, "parent directory missing");
    snprintf(c[2].base, sizeof c[2].base, "%s/missing", e->tmpdir);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/shmbus.%s", c[1].base, e->dom);
    assert_int_equal(mkdir(c[0].base, 0500), 0);
    assert_int_equal(mkdir(c[1].base, 0700), 0);
    assert_int_equal(mkdir(sub, 0500), 0);
    assert_int_equal(chown(c[0].base, ISO_MEMBER, ISO_MEMBER), 0);
    assert_int_equal(chown(c[1].base, ISO_MEMBER, ISO_MEMBER), 0);
    assert_int_equal(chown(sub, ISO_MEMBER, ISO_MEMBER), 0);
    pid_t pid = proc_fork();
    if (pid == 0)
        _exit(rodir_child(e, c, 3));
    int rc = iso_wait_or_skip(pid, "this sandbox does not let a child change its uid");
    assert_int_equal(rc, 0);
    char problems[2048] = "";
    for (unsigned i = 0; i < 3; i++) {
        print_message("    %s: %s \"%s\"\n", c[i].what, shmbus_errname(c[i].rc), c[i].err);
        if (c[i].rc >= 0)
            note(problems, sizeof problems, "%s: shmbus_domain_open returned %d", c[i].what,
                 c[i].rc);
        else if (!strstr(c[i].err, c[i].base))
            note(problems, sizeof problems, "%s: the message does not name the directory: "
                 "\"%s\"", c[i].what, c[i].err);
        if (i < 2 && c[i].rc != SHMBUS_EACCES)
            note(problems, sizeof problems, "%s: %s, expected SHMBUS_EACCES", c[i].what,
                 shmbus_errname(c[i].rc));
        if (c[i].left)
            note(problems, sizeof problems, "%s: %d segments left", c[i].what, c[i].left);
    }
    rmdir(sub);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- runtime directory on a full file system ------------------------------------------------- */

typedef struct rdfull_result {
    int rc;
    char err[512];
    int left;      /* segments left in the shm directory */
} rdfull_result;

/* mkdir of the runtime directory fails with ENOSPC (a tmpfs with no inode left): the error
 * names the directory in use and nothing about the shm directory being too small. */
static void test_runtime_dir_on_a_full_file_system_is_named_not_the_shm_dir(void **state)
{
    require_root("mount a private tmpfs");
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    rdfull_result *r = ps_shared(e, sizeof *r);
    char full[128], rd[256];
    snprintf(full, sizeof full, "%s/full", e->tmpdir);
    snprintf(rd, sizeof rd, "%s/shmbus.%s", full, e->dom);
    assert_int_equal(mkdir(full, 0700), 0);
    pid_t pid = proc_fork();
    if (pid == 0) {
        iso_mount_private_tmpfs(full, "size=64k,nr_inodes=1,mode=0700");
        shmbus_domain *d = NULL;
        r->rc = iso_open_with(e, e->config, full, NULL, &d);
        snprintf(r->err, sizeof r->err, "%s", shmbus_last_error());
        if (d)
            shmbus_domain_close(d);
        r->left = leftovers(e->dom, NULL, 0);
        umount(full);
        _exit(0);
    }
    assert_int_equal(iso_wait_or_skip(pid, "cannot mount a private tmpfs here"), 0);
    print_message("    %s (%s): \"%s\"\n", shmbus_errname(r->rc), shmbus_strerror(r->rc),
                  r->err);
    char problems[1024] = "";
    if (r->rc >= 0)
        note(problems, sizeof problems, "shmbus_domain_open returned %d", r->rc);
    if (!strstr(r->err, rd))
        note(problems, sizeof problems, "the detail does not name the runtime directory %s", rd);
    if (!strstr(r->err, strerror(ENOSPC)))
        note(problems, sizeof problems, "the detail does not give the cause (%s)",
             strerror(ENOSPC));
    if (strstr(r->err, "/dev/shm") || strstr(shmbus_strerror(r->rc), "/dev/shm") ||
        strstr(shmbus_strerror(r->rc), "shared memory"))
        note(problems, sizeof problems, "the error blames the shared memory directory");
    if (r->left)
        note(problems, sizeof problems, "%d segments left", r->left);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- runtime directory removed under a running domain ---------------------------------------- */

typedef struct rm_shared {
    _Atomic uint64_t got;       /* messages the subscriber took intact */
    _Atomic uint64_t from_new;  /* of them, from the publisher opened after the removal */
    _Atomic int stop;
    int second_rc, new_rc;      /* a second publisher in the running process; a new process */
    char second_err[300], new_err[300];
    int new_sub_rc;             /* a subscriber in the new process ... */
    _Atomic uint64_t new_sub_old; /* ... and the messages it got from the first publisher */
} rm_shared;

static int rm_publisher(const ps_env *e, ps_chan *c, void *arg)
{
    rm_shared *sh = arg;
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *p = NULL, *p2 = NULL;
    PS_OK(shmbus_pub_open(d, "t", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
    child_tell(c, 'r');
    bool second = false;
    for (uint64_t k = 1; !atomic_load(&sh->stop); k++) {
        PS_OK(ps_publish(p, 512, k, 1, 0));
        PS_CHECK(ps_wait_counter(&sh->got, k - (k > 4 ? 4 : k), PS_SAFETY_MS) == 0,
                 "the subscriber stalled");
        if (!second && proc_hear(c->down[0], 's', 1) == 0) { /* after the removal */
            second = true;
            sh->second_rc = shmbus_pub_open(d, "t2", &p2);
            snprintf(sh->second_err, sizeof sh->second_err, "%s", shmbus_last_error());
            child_tell(c, 's');
        }
    }
    if (p2)
        PS_OK(shmbus_pub_close(p2));
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int rm_subscriber(const ps_env *e, ps_chan *c, void *arg)
{
    rm_shared *sh = arg;
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s = NULL;
    PS_OK(shmbus_sub_open(d, "t", NULL, &s));
    while (!atomic_load(&sh->stop)) {
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        if (rc == SHMBUS_ETIMEDOUT)
            continue;
        PS_OK(rc);
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message not intact");
        if (h.src == 2)
            atomic_fetch_add(&sh->from_new, 1);
        else
            atomic_fetch_add(&sh->got, 1);
        PS_OK(shmbus_msg_release(m));
    }
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Opened after the removal: a new process, a new publisher on "t". */
static int rm_newcomer(const ps_env *e, ps_chan *c, void *arg)
{
    rm_shared *sh = arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    int rc = sh->new_rc = ps_domain_open(e, &d);
    if (rc == 0)
        rc = sh->new_rc = shmbus_pub_open(d, "t", &p);
    snprintf(sh->new_err, sizeof sh->new_err, "%s", rc ? shmbus_last_error() : "");
    if (rc == 0) /* the first publisher's socket file went with the directory */
        sh->new_sub_rc = shmbus_sub_open(d, "t", NULL, &s);
    child_tell(c, 'o');
    if (rc == 0) {
        PS_OK(shmbus_pub_wait_subscribers(p, 1, PS_SAFETY_MS));
        for (uint64_t k = 1; k <= 10; k++) {
            PS_OK(ps_publish(p, 512, k, 2, 0));
            PS_CHECK(ps_wait_counter(&sh->from_new, k > 4 ? k - 4 : 0, PS_SAFETY_MS) == 0,
                     "the subscriber stalled on the newcomer's messages");
        }
    }
    for (uint64_t until = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
         s && atomic_load(&sh->new_sub_old) < 10 && proc_now_ns() < until;) {
        shmbus_msg *m = NULL;
        if (shmbus_sub_recv(s, 20, &m) != 0)
            continue;
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "message not intact");
        if (h.src == 1)
            atomic_fetch_add(&sh->new_sub_old, 1);
        PS_OK(shmbus_msg_release(m));
    }
    child_tell(c, 'n');
    child_hear(c, 'q');
    if (s)
        PS_OK(shmbus_sub_close(s));
    if (p)
        PS_OK(shmbus_pub_close(p));
    if (d)
        PS_OK(shmbus_domain_close(d));
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removed under a running domain: the running processes make the directory again and listen
 * again on their publishers' endpoints, so that a second publisher in a running process, a
 * new process, and a new subscriber of a publisher that ran before all work. */
static void test_runtime_dir_removed_under_a_running_domain_breaks_nothing_running(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    rm_shared *sh = ps_shared(e, sizeof *sh);
    enum { PUB, SUB, NEW, N };
    ps_chan ch[N];
    pid_t pid[N];
    const iso_child_fn run[N] = {[PUB] = rm_publisher, [SUB] = rm_subscriber, [NEW] = rm_newcomer};
    iso_fork_children(e, ch, pid, N, run, sh);
    shmbus_domain *d = ps_open_domain(e);
    ps_tell_child(&ch[SUB], 'g');
    ps_tell_child(&ch[PUB], 'g');
    ps_hear_child(&ch[PUB], 'r', PS_CHILD_MS, "publisher connected");
    if (ps_wait_counter(&sh->got, 20, PS_CHILD_MS) != 0)
        fail_msg("the stream did not get going");

    char rd[256];
    rundir_of(e, rd, sizeof rd);
    assert_int_equal(nftw(rd, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
    assert_int_equal(access(rd, F_OK), -1);
    uint64_t at = atomic_load(&sh->got);
    char problems[2048] = "";
    if (ps_wait_counter(&sh->got, at + 50, ps_patience(5000)) != 0)
        note(problems, sizeof problems, "the running pair stopped after the runtime directory "
             "was removed (%llu messages before, %llu after)", (unsigned long long)at,
             (unsigned long long)atomic_load(&sh->got));

    /* the running domain makes the directory again (a hang guard, not a timing check) */
    bool back = false;
    uint64_t gone = proc_now_ns();
    for (int waited = 0; !back && waited < ps_patience(10000); waited += 10) {
        back = access(rd, F_OK) == 0;
        if (!back)
            proc_sleep_ms(10);
    }
    if (back)
        print_message("    runtime directory made again after %.0f ms\n",
                      (double)(proc_now_ns() - gone) / 1e6);
    else
        note(problems, sizeof problems, "the running domain did not make its runtime "
             "directory again");
    ps_tell_child(&ch[PUB], 's');
    ps_hear_child(&ch[PUB], 's', PS_CHILD_MS, "publisher tried a second publisher");
    print_message("    second publisher in the running process after the removal: %s%s%s%s\n",
                  shmbus_errname(sh->second_rc), sh->second_err[0] ? " \"" : "",
                  sh->second_err, sh->second_err[0] ? "\"" : "");
    if (sh->second_rc != 0)
        note(problems, sizeof problems, "a second publisher in the running process failed: "
             "%s \"%s\"", shmbus_errname(sh->second_rc), sh->second_err);

    ps_tell_child(&ch[NEW], 'g');
    ps_hear_child(&ch[NEW], 'o', PS_CHILD_MS, "new process opened");
    bool recreated = access(rd, F_OK) == 0;
    print_message("    new process after the removal: %s%s%s%s; runtime directory %s\n",
                  shmbus_errname(sh->new_rc), sh->new_err[0] ? " \"" : "", sh->new_err,
                  sh->new_err[0] ? "\"" : "", recreated ? "recreated" : "still missing");
    if (sh->new_rc == 0) {
        if (ps_wait_counter(&sh->from_new, 10, ps_patience(5000)) != 0)
            note(problems, sizeof problems, "the subscriber got %llu of 10 messages of the "
                 "publisher opened after the removal",
                 (unsigned long long)atomic_load(&sh->from_new));
    } else if (!sh->new_err[0]) {
        note(problems, sizeof problems, "the new publisher failed with %s and no message",
             shmbus_errname(sh->new_rc));
    }
    ps_hear_child(&ch[NEW], 'n', PS_CHILD_MS, "new process's subscriber");
    if (sh->new_sub_rc != 0 || atomic_load(&sh->new_sub_old) < 10)
        note(problems, sizeof problems, "a subscriber opened after the removal got %llu of 10 "
             "messages of the publisher that ran before it (%s)",
             (unsigned long long)atomic_load(&sh->new_sub_old), shmbus_errname(sh->new_sub_rc));
    at = atomic_load(&sh->got);
    if (ps_wait_counter(&sh->got, at + 20, ps_patience(5000)) != 0)
        note(problems, sizeof problems, "the first pair stopped once the newcomer came");

    atomic_store(&sh->stop, 1);
    ps_tell_child(&ch[NEW], 'q');
    proc_expect_ok(pid[PUB], PS_CHILD_MS, "publisher");
    proc_expect_ok(pid[SUB], PS_CHILD_MS, "subscriber");
    proc_expect_ok(pid[NEW], PS_CHILD_MS, "new process");
    for (unsigned i = 0; i < N; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d); /* nothing left in shm, no runtime directory */
    if (problems[0])
        fail_msg("%s", problems);
}

PS_MAIN(
    ISO_TEST(test_runtime_dir_too_long_for_socket_paths_is_einval_saying_so),
    ISO_TEST(test_runtime_dir_that_cannot_be_made_or_written_gives_a_clear_error),
    ISO_TEST(test_runtime_dir_on_a_full_file_system_is_named_not_the_shm_dir),
    ISO_TEST(test_runtime_dir_removed_under_a_running_domain_breaks_nothing_running))
