/* Isolation between the processes of a domain: who may join it (file modes and groups across
 * real uids) and what a subscriber may touch (payloads mapped read-only). What is left of a
 * domain whose processes all crashed is test_dead_domain.c's.
 *
 * Same rules as test_pubsub.c: every child is forked before the test process opens anything,
 * the test process never uses nng itself (no publisher or subscriber of its own), children
 * report through their exit status and a line on stderr, and the test process asserts at the
 * end that nothing named shmbus.<domain>.* is left in the shm directory. Each test has its own
 * domain "iso<pid>x<n>" and a runtime directory under its own mkdtemp directory.
 *
 * The permission test needs root: its children become other uids and groups, numeric ids
 * that need no entry in /etc/passwd or /etc/group. Without root it skips and says why.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "delivery.h"
#include "iso_common.h"

/* ---- fixture and helpers --------------------------------------------------------------------- */

/* Poll until pool `pool` has no block in use; the last totals. */
static shmbus_class_stats wait_pool_empty(shmbus_domain *d, const char *pool, int timeout_ms)
{
    uint64_t deadline = proc_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        shmbus_class_stats t = ps_pool_totals(d, pool);
        if (t.used == 0 || proc_now_ns() > deadline)
            return t;
        proc_sleep_ms(5);
    }
}

/* ---- mode 0660 and a group: members in, everyone else out ------------------------------------ */

#define GRP_N 8 /* messages each way: no more than the topics' history, so none can expire */

typedef struct grp_shared {
    _Atomic unsigned r2m, m2r; /* intact messages that arrived, each way */
    int member_rc;             /* the member's shmbus_domain_open */
    char member_err[512], root_err[512];
    int stranger_rc, stranger_observe_rc, stranger_connect_errno, stranger_opendir_errno;
    char stranger_err[256], stranger_observe_err[256];
    char sock[108]; /* a publisher's socket file, for the stranger to try */
} grp_shared;

/* Publish GRP_N messages on p and take GRP_N from s (another process's publisher); count the
 * intact ones in *got and note what went wrong in err. */
static void grp_exchange(shmbus_pub *p, shmbus_sub *s, uint32_t src, _Atomic unsigned *got,
                         char *err, size_t errlen)
{
    if (shmbus_pub_wait_subscribers(p, 1, WAIT_MS) != 0)
        note(err, errlen, "its publisher got no subscriber within %d ms", WAIT_MS);
    else
        for (uint64_t k = 1; k <= GRP_N; k++) {
            int rc = ps_publish(p, 512, k, src, 0);
            if (rc) {
                note(err, errlen, "publishing message %llu: %s (%s)", (unsigned long long)k,
                     shmbus_errname(rc), shmbus_last_error());
                break;
            }
        }
    if (shmbus_sub_wait_publishers(s, 1, WAIT_MS) != 0) {
        note(err, errlen, "its subscriber connected to no publisher within %d ms", WAIT_MS);
        return;
    }
    for (uint64_t k = 1; k <= GRP_N; k++) {
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, WAIT_MS, &m);
        if (rc) {
            note(err, errlen, "receiving message %llu: %s (%s)", (unsigned long long)k,
                 shmbus_errname(rc), shmbus_last_error());
            return;
        }
        ps_hdr h;
        bool ok = ps_check_msg(m, &h) == 0 && h.seq == k && h.src != src;
        shmbus_msg_release(m);
        if (!ok) {
            note(err, errlen, "message %llu is not intact or not in order", (unsigned long long)k);
            return;
        }
        atomic_fetch_add(got, 1);
    }
    if (ps_check_accounting(s, false) != 1) /* the identity of its one pair (stderr: why) */
        note(err, errlen, "its subscriber's counters do not add up to what was published");
}

/* Both sides, once their publisher and subscriber are open: say ready, exchange on 'x', say
 * done, close on 'q'. */
static int grp_run(ps_chan *c, shmbus_domain *d, shmbus_pub *p, shmbus_sub *s, uint32_t src,
                   _Atomic unsigned *got, char *err, size_t errlen)
{
    child_tell(c, 'r');
    child_hear(c, 'x');
    grp_exchange(p, s, src, got, err, errlen);
    child_tell(c, 'd');
    child_hear(c, 'q');
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* root: publishes on r2m, subscribes to m2r. */
static int grp_root(const ps_env *e, ps_chan *c, void *arg)
{
    grp_shared *sh = arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_pub_open(d, "r2m", &p));
    PS_OK(shmbus_sub_open(d, "m2r", NULL, &s));
    return grp_run(c, d, p, s, 1, &sh->m2r, sh->root_err, sizeof sh->root_err);
}

/* uid ISO_MEMBER, in group G: publishes on m2r, subscribes to r2m. */
static int grp_member(const ps_env *e, ps_chan *c, void *arg)
{
    grp_shared *sh = arg;
    iso_become(ISO_MEMBER, ISO_MEMBER, (const gid_t[]){ISO_GROUP}, 1);
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    int rc = sh->member_rc = ps_domain_open(e, &d);
    const char *what = "shmbus_domain_open";
    if (rc == 0 && (rc = shmbus_pub_open(d, "m2r", &p)) != 0)
        what = "shmbus_pub_open(m2r)";
    else if (rc == 0 && (rc = shmbus_sub_open(d, "r2m", NULL, &s)) != 0)
        what = "shmbus_sub_open(r2m)";
    if (rc) {
        note(sh->member_err, sizeof sh->member_err, "%s: %s (%s)", what, shmbus_errname(rc),
             shmbus_last_error());
        _exit(PS_FAIL);
    }
    return grp_run(c, d, p, s, 2, &sh->r2m, sh->member_err, sizeof sh->member_err);
}

/* uid ISO_STRANGER, not in G: tries to join, to watch, to connect to a publisher's socket
 * and to list the runtime directory. */
static int grp_stranger(const ps_env *e, ps_chan *c, void *arg)
{
    grp_shared *sh = arg;
    iso_become(ISO_STRANGER, ISO_STRANGER, NULL, 0);
    child_hear(c, 'g');
    /* Else EACCES could come from the configuration file rather than the domain. */
    PS_CHECK(access(e->config, R_OK) == 0, "%s is not readable here: %s", e->config,
             strerror(errno));
    shmbus_domain *d = NULL;
    sh->stranger_rc = ps_domain_open(e, &d);
    snprintf(sh->stranger_err, sizeof sh->stranger_err, "%s", shmbus_last_error());
    if (d)
        shmbus_domain_close(d);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = e->config;
    o.runtime_dir = e->tmpdir;
    o.observe = true;
    d = NULL;
    sh->stranger_observe_rc = shmbus_domain_open(e->dom, &o, &d);
    snprintf(sh->stranger_observe_err, sizeof sh->stranger_observe_err, "%s",
             shmbus_last_error());
    if (d)
        shmbus_domain_close(d);

    if (sh->sock[0]) { /* nng delivery: a publisher's socket file */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        PS_CHECK(fd >= 0, "socket: %s", strerror(errno));
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", sh->sock);
        sh->stranger_connect_errno =
            connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
        close(fd);
    }
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    DIR *dp = opendir(rd);
    sh->stranger_opendir_errno = dp ? 0 : errno;
    if (dp)
        closedir(dp);
    return 0;
}

/* Check type, permission bits and group of path; note what differs. */
static void check_node(const char *path, mode_t type, unsigned mode, char *pr, size_t len)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        note(pr, len, "%s: %s", path, strerror(errno));
        return;
    }
    if ((st.st_mode & S_IFMT) != type)
        note(pr, len, "%s is of type %o, expected %o", path, st.st_mode & S_IFMT, type);
    if ((st.st_mode & 0777) != mode)
        note(pr, len, "%s has mode %04o, expected %04o", path, st.st_mode & 0777, mode);
    if (st.st_gid != ISO_GROUP)
        note(pr, len, "%s has group %u, expected %u", path, (unsigned)st.st_gid, ISO_GROUP);
}

/* Every segment 0660 and group G; the runtime directory 0770 and G; every socket in it
 * 0660 and G. Returns how many sockets; a socket path goes to sock. */
static int check_domain_files(const ps_env *e, char *sock, size_t socklen, char *pr,
                              size_t len)
{
    char prefix[64], path[512];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", e->dom);
    DIR *dp = opendir(shm_dir());
    assert_non_null(dp);
    struct dirent *de;
    int nseg = 0;
    while ((de = readdir(dp)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(path, sizeof path, "%s/%s", shm_dir(), de->d_name);
            check_node(path, S_IFREG, 0660, pr, len);
            nseg++;
        }
    closedir(dp);
    if (nseg < 3)
        note(pr, len, "only %d segments (expected ctl, reg and pool.frames at least)", nseg);

    char rd[256];
    rundir_of(e, rd, sizeof rd);
    check_node(rd, S_IFDIR, 0770, pr, len);
    int nsock = 0;
    if ((dp = opendir(rd)) == NULL) {
        note(pr, len, "%s: %s", rd, strerror(errno));
        return 0;
    }
    while ((de = readdir(dp)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", rd, de->d_name);
        check_node(path, S_IFSOCK, 0660, pr, len);
        if (nsock++ == 0 && strlen(path) < socklen)
            memcpy(sock, path, strlen(path) + 1);
    }
    closedir(dp);
    return nsock;
}

/* Library bug (open as of this writing): segments and the runtime directory get group G, but
 * the publishers' socket files keep the group of the process that listens (bus/pub.c
 * listen_on() sets only NNG_OPT_IPC_PERMISSIONS; bus/domain.c rundir_make_locked() makes the
 * directory without S_ISGID), so a member of G that is neither the owner nor in the owner's
 * group cannot connect to a publisher of another uid: root -> member fails. */
static void test_group_member_uid_publishes_and_subscribes_and_other_uids_are_refused(
    void **state)
{
    require_root("run children as other uids and groups");
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_group.json");
    assert_int_equal(chmod(e->tmpdir, 0755), 0); /* others must reach <tmpdir>/shmbus.<dom> */
    grp_shared *sh = ps_shared(e, sizeof *sh);
    enum { ROOT, MEMBER, STRANGER, N };
    ps_chan ch[N];
    pid_t pid[N];
    const iso_child_fn run[N] = {
        [ROOT] = grp_root,
        [MEMBER] = grp_member,
        [STRANGER] = grp_stranger,
    };
    iso_fork_children(e, ch, pid, N, run, sh);

    shmbus_domain *d = ps_open_domain(e); /* root creates it: 0660, group G */
    ps_tell_child(&ch[ROOT], 'g');
    ps_hear_child(&ch[ROOT], 'r', PS_CHILD_MS, "root child opened its publisher and subscriber");
    ps_tell_child(&ch[MEMBER], 'g');
    if (proc_hear(ch[MEMBER].up[0], 'r', PS_CHILD_MS) != 0) {
        int rc = proc_wait(pid[MEMBER], PS_CHILD_MS);
        if (rc == CHILD_SKIP) {
            print_message("    skipped: this sandbox does not let a child change its uid\n");
            skip();
        }
        fail_msg("uid %d in group %d could not join the domain (status %d): member_rc %s: %s",
                 ISO_MEMBER, ISO_GROUP, rc, shmbus_errname(sh->member_rc), sh->member_err);
    }

    /* Both publishers listen now: every file the domain made belongs to G. */
    char problems[4096] = "";
    int nsock = check_domain_files(e, sh->sock, sizeof sh->sock, problems, sizeof problems);
    /* nng delivery: a socket file per publisher; shm: none (the rings are a segment, checked
     * with the others above) */
    int want_sock = delivery_is_shm() ? 0 : 2;
    if (nsock != want_sock)
        note(problems, sizeof problems, "%d entries in the runtime directory, expected %d (the "
             "publishers' sockets on the nng delivery path, none on shm)", nsock, want_sock);
    int before = leftovers(e->dom, NULL, 0);

    ps_tell_child(&ch[STRANGER], 'g');
    int rc = proc_wait(pid[STRANGER], PS_CHILD_MS);
    if (rc == CHILD_SKIP) {
        print_message("    skipped: this sandbox does not let a child change its uid\n");
        skip();
    }
    assert_int_equal(rc, 0);
    print_message("    uid %d (not in the group): join %s \"%s\"; observe %s \"%s\"; connect to "
                  "a publisher's socket: %s; list the runtime directory: %s\n",
                  ISO_STRANGER, shmbus_errname(sh->stranger_rc), sh->stranger_err,
                  shmbus_errname(sh->stranger_observe_rc), sh->stranger_observe_err,
                  sh->sock[0] ? strerror(sh->stranger_connect_errno) : "(no socket file)",
                  strerror(sh->stranger_opendir_errno));
    if (sh->stranger_rc != SHMBUS_EACCES || !strcasestr(sh->stranger_err, "permission denied"))
        note(problems, sizeof problems, "a uid outside the group opening the domain got %s "
             "(\"%s\"), expected SHMBUS_EACCES saying \"permission denied\"",
             shmbus_errname(sh->stranger_rc), sh->stranger_err);
    if (sh->stranger_observe_rc != SHMBUS_EACCES)
        note(problems, sizeof problems, "a uid outside the group observing the domain got %s "
             "(\"%s\"), expected SHMBUS_EACCES", shmbus_errname(sh->stranger_observe_rc),
             sh->stranger_observe_err);
    if (sh->sock[0] && sh->stranger_connect_errno != EACCES)
        note(problems, sizeof problems, "a uid outside the group connecting to %s got \"%s\", "
             "expected EACCES", sh->sock, strerror(sh->stranger_connect_errno));
    if (sh->stranger_opendir_errno != EACCES)
        note(problems, sizeof problems, "a uid outside the group listing the runtime "
             "directory got \"%s\", expected EACCES", strerror(sh->stranger_opendir_errno));
    /* The refused attempts changed nothing. */
    assert_int_equal(leftovers(e->dom, NULL, 0), before);
    shmbus_snapshot *snap = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &snap));
    unsigned nparts = snap->nparticipants;
    shmbus_snapshot_free(snap);
    if (nparts != 3)
        note(problems, sizeof problems, "%u participants after the stranger's attempts, "
             "expected 3 (test process, root child, member)", nparts);

    ps_tell_child(&ch[ROOT], 'x');
    ps_tell_child(&ch[MEMBER], 'x');
    ps_hear_child(&ch[ROOT], 'd', PS_CHILD_MS, "root child exchanged");
    ps_hear_child(&ch[MEMBER], 'd', PS_CHILD_MS, "member child exchanged");
    ps_tell_child(&ch[ROOT], 'q');
    ps_tell_child(&ch[MEMBER], 'q');
    proc_expect_ok(pid[ROOT], PS_CHILD_MS, "root child");
    proc_expect_ok(pid[MEMBER], PS_CHILD_MS, "member child");
    print_message("    root -> member: %u of %d intact%s%s\n", atomic_load(&sh->r2m), GRP_N,
                  sh->member_err[0] ? "; member: " : "", sh->member_err);
    print_message("    member -> root: %u of %d intact%s%s\n", atomic_load(&sh->m2r), GRP_N,
                  sh->root_err[0] ? "; root: " : "", sh->root_err);
    if (atomic_load(&sh->r2m) != GRP_N)
        note(problems, sizeof problems, "the group member (uid %d) received %u of %d messages "
             "from root's publisher (%s)", ISO_MEMBER, atomic_load(&sh->r2m), GRP_N,
             sh->member_err);
    if (atomic_load(&sh->m2r) != GRP_N)
        note(problems, sizeof problems, "root received %u of %d messages from the group "
             "member's publisher (%s)", atomic_load(&sh->m2r), GRP_N, sh->root_err);
    for (unsigned i = 0; i < N; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- subscribers cannot write into payloads -------------------------------------------------- */

#define RO_HELD 3 /* frames both subscribers hold when one of them scribbles */
#define RO_N 40   /* frames in all */
#define RO_LEN 3000
#define RO_WROTE 42 /* the scribbler's status if its write went through */

typedef struct ro_shared {
    _Atomic uint64_t good; /* frames the intact subscriber has checked */
} ro_shared;

static int ro_publisher(const ps_env *e, ps_chan *c, void *arg)
{
    ro_shared *sh = arg;
    child_hear(c, 'g');
    shmbus_domain *d = NULL;
    shmbus_pub *p = NULL;
    PS_OK(ps_domain_open(e, &d));
    PS_OK(shmbus_pub_open(d, "t", &p));
    PS_OK(shmbus_pub_wait_subscribers(p, 2, PS_SAFETY_MS));
    for (uint64_t k = 1; k <= RO_HELD; k++)
        PS_OK(ps_publish(p, RO_LEN, k, 7, 0));
    child_tell(c, 'p');
    child_hear(c, 'c'); /* the scribbler is dead now */
    for (uint64_t k = RO_HELD + 1; k <= RO_N; k++) {
        PS_OK(ps_publish(p, RO_LEN, k, 7, k == RO_N ? PS_FLAG_FINAL : 0));
        PS_CHECK(ps_wait_counter(&sh->good, k, PS_SAFETY_MS) == 0,
                 "the intact subscriber stalled at %llu",
                 (unsigned long long)atomic_load(&sh->good));
    }
    child_tell(c, 'd');
    child_hear(c, 'q');
    PS_OK(shmbus_pub_close(p));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Take RO_HELD frames and keep them; tell 'h'. */
static void ro_take(const ps_env *e, ps_chan *c, shmbus_domain **d, shmbus_sub **s,
                    shmbus_msg **held)
{
    child_hear(c, 'g');
    PS_OK(ps_domain_open(e, d));
    PS_OK(shmbus_sub_open(*d, "t", NULL, s));
    for (unsigned k = 0; k < RO_HELD; k++) {
        held[k] = ps_recv_one(*s, "held frame");
        ps_hdr h;
        PS_CHECK(ps_check_msg(held[k], &h) == 0 && h.seq == k + 1, "frame %u is not intact", k + 1);
    }
    child_tell(c, 'h');
}

/* Only subscribes, never loans: writes into the frames it holds, on 'w'. */
static int ro_scribbler(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    shmbus_domain *d;
    shmbus_sub *s;
    shmbus_msg *held[RO_HELD];
    ro_take(e, c, &d, &s, held);
    child_hear(c, 'w');
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    for (unsigned k = 0; k < RO_HELD; k++) {
        volatile uint8_t *b = (uint8_t *)shmbus_msg_data(held[k]); /* const cast away */
        b[PS_MIN_LEN + 100] ^= 0xff;
        b[0] ^= 0xff;
    }
    fprintf(stderr, "child %d: wrote into %d received frames without a fault\n", (int)getpid(),
            RO_HELD);
    _exit(RO_WROTE);
}

/* Holds the same frames; checks them on 'v' (after the scribbler died), then the rest. */
static int ro_reader(const ps_env *e, ps_chan *c, void *arg)
{
    ro_shared *sh = arg;
    shmbus_domain *d;
    shmbus_sub *s;
    shmbus_msg *held[RO_HELD];
    ro_take(e, c, &d, &s, held);
    child_hear(c, 'v');
    for (unsigned k = 0; k < RO_HELD; k++) {
        ps_hdr h;
        PS_CHECK(ps_check_msg(held[k], &h) == 0,
                 "frame %u changed while this subscriber held it: another process's write "
                 "reached it", k + 1);
        PS_OK(shmbus_msg_release(held[k]));
    }
    atomic_store(&sh->good, RO_HELD);
    child_tell(c, 'v');
    for (uint64_t k = RO_HELD + 1; k <= RO_N; k++) {
        ps_expect_seq(ps_recv_one(s, "frame after the scribbler died"), k);
        atomic_store(&sh->good, k);
    }
    shmbus_sub_counters st = ps_sub_stats(s);
    PS_CHECK(st.received == RO_N && st.expired + st.dropped + st.overflow + st.invalid == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) == 1, "the accounting identity of its one publisher");
    child_tell(c, 'd');
    child_hear(c, 'q');
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_subscriber_writing_into_a_received_payload_faults_and_harms_no_one(
    void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    ro_shared *sh = ps_shared(e, sizeof *sh);
    enum { PUB, SCRIBBLER, READER, N };
    ps_chan ch[N];
    pid_t pid[N];
    const iso_child_fn run[N] = {
        [PUB] = ro_publisher,
        [SCRIBBLER] = ro_scribbler,
        [READER] = ro_reader,
    };
    iso_fork_children(e, ch, pid, N, run, sh);
    shmbus_domain *d = ps_open_domain(e);
    for (unsigned i = 0; i < N; i++)
        ps_tell_child(&ch[i], 'g');
    ps_hear_child(&ch[PUB], 'p', PS_CHILD_MS, "publisher published the first frames");
    ps_hear_child(&ch[SCRIBBLER], 'h', PS_CHILD_MS, "scribbler holds frames");
    ps_hear_child(&ch[READER], 'h', PS_CHILD_MS, "reader holds frames");

    ps_tell_child(&ch[SCRIBBLER], 'w');
    int rc = proc_wait(pid[SCRIBBLER], PS_CHILD_MS);
    char problems[1024] = "";
    if (rc == RO_WROTE)
        note(problems, sizeof problems, "a process that only subscribes wrote into a received "
                                        "payload without a fault: payloads are mapped writable");
    else if (rc != 128 + SIGSEGV)
        fail_msg("the scribbler ended with status %d, expected SIGSEGV (%d)", rc, 128 + SIGSEGV);

    ps_tell_child(&ch[READER], 'v');
    if (proc_hear(ch[READER].up[0], 'v', PS_CHILD_MS) != 0)
        fail_msg("%s%sthe other subscriber's copy of the frames is not intact (status %d; see "
                 "its stderr)", problems, problems[0] ? "; " : "", proc_wait(pid[READER], 1000));
    ps_tell_child(&ch[PUB], 'c');
    ps_hear_child(&ch[PUB], 'd', PS_CHILD_MS, "publisher went on after the scribbler died");
    ps_hear_child(&ch[READER], 'd', PS_CHILD_MS, "reader took every frame");
    ps_tell_child(&ch[PUB], 'q');
    ps_tell_child(&ch[READER], 'q');
    proc_expect_ok(pid[PUB], PS_CHILD_MS, "publisher");
    proc_expect_ok(pid[READER], PS_CHILD_MS, "reader");
    for (unsigned i = 0; i < N; i++)
        ps_chan_close(&ch[i]);

    shmbus_class_stats t = wait_pool_empty(d, "frames", ps_patience(2000));
    print_message("    after the scribbler's SIGSEGV: %u blocks in use, %llu loans, %llu frees, "
                  "%llu holds reclaimed\n", t.used, (unsigned long long)t.loans,
                  (unsigned long long)t.frees, (unsigned long long)t.reclaims);
    if (t.reclaims < RO_HELD)
        note(problems, sizeof problems, "%llu holds reclaimed, expected the dead scribbler's %d",
             (unsigned long long)t.reclaims, RO_HELD);
    ps_assert_pool_drained(d, "frames", RO_N);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

PS_MAIN(
    ISO_TEST(test_group_member_uid_publishes_and_subscribes_and_other_uids_are_refused),
    ISO_TEST(test_subscriber_writing_into_a_received_payload_faults_and_harms_no_one))
