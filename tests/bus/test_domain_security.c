/* What other users can make a domain's processes do through the files they share with it.
 *
 * - A member of a domain's group may write its registry. Whatever it writes there, the
 *   owner's processes must not remove files outside the domain's runtime directory (the
 *   reaper once unlinked the endpoint path read from a dead publisher's entry).
 * - A runtime directory made first by another uid (or one that others may write, or a
 *   symbolic link) is refused with EACCES and the reason, not used.
 * - A process whose runtime directory differs from the running domain's is refused
 *   (EINCOMPAT naming both), instead of taking the recorded path from shared memory.
 *
 * The cross-user tests need root: children become numeric uids and groups (no entry in
 * /etc/passwd needed). Without root they skip and say why. Same rules as the other bus tests:
 * children are forked before the test process opens anything; each test has its own domain
 * and runtime directory (iso_setup).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "iso_common.h"
#include "reg_access.h"

/* A child that changes its uid: skip if the sandbox refused that, fail if it failed. */
static void expect_child(pid_t pid)
{
    assert_int_equal(iso_wait_or_skip(pid, "this sandbox does not let a child change its uid"), 0);
}

/* ---- a group member writes paths into the registry ------------------------------------------ */

typedef struct forge_shared {
    char victim[REG_ENDPOINT_MAX - 8]; /* the owner's file that the forged entries name */
    char victim_dir[REG_ENDPOINT_MAX - 8];
    unsigned entries[3]; /* registry entries the member forged */
} forge_shared;

static int member_forger(const ps_env *e, ps_chan *c, void *arg)
{
    forge_shared *sh = arg;
    child_hear(c, 'g');
    const gid_t groups[] = {ISO_GROUP};
    iso_become(ISO_MEMBER, ISO_MEMBER, groups, 1);
    reg_map m = reg_map_open(e->dom);
    struct reg_hdr *r = m.r;
    PS_CHECK(r != NULL, "the member cannot map the registry: %s", strerror(errno));
    /* three dead "publishers": one naming the owner's file, one naming the owner's
     * directory, one whose id points at an entry other than its own */
    unsigned at[3] = {REG_MAX_PUBS - 1, REG_MAX_PUBS - 2, REG_MAX_PUBS - 3};
    const char *paths[3] = {sh->victim, sh->victim_dir, sh->victim};
    for (unsigned i = 0; i < 3; i++) {
        struct reg_pub *p = &r->pubs[at[i]];
        PS_CHECK(atomic_load(&p->own) == 0, "entry %u is in use", at[i]);
        p->topic = 0;
        p->pub_id = i == 2 ? (7ull << 8) | 1 : (7ull << 8) | at[i];
        snprintf(p->endpoint, sizeof p->endpoint, "%s", paths[i]);
        atomic_store(&p->own, REG_OWN(REG_DEAD_UID, REG_LIVE));
        sh->entries[i] = at[i];
    }
    atomic_fetch_add(&r->epoch, 1); /* wake discovery, as a real change would */
    reg_map_close(&m);
    child_tell(c, 'w');
    return 0;
}

static void test_group_member_writing_registry_paths_cannot_make_the_owner_remove_files(
    void **state)
{
    require_root("run a child as a group member's uid");
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_group.json");
    forge_shared *sh = ps_shared(e, sizeof *sh);
    /* the owner's files: in the test's own 0700 directory, where the member cannot reach */
    snprintf(sh->victim, sizeof sh->victim, "%s/owners-file", e->tmpdir);
    snprintf(sh->victim_dir, sizeof sh->victim_dir, "%s/owners-dir", e->tmpdir);
    int fd = open(sh->victim, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mkdir(sh->victim_dir, 0700), 0);
    ps_chan ch;
    pid_t pid;
    const iso_child_fn run[1] = {member_forger};
    iso_fork_children(e, &ch, &pid, 1, run, sh);
    shmbus_domain *d = ps_open_domain(e);
    ps_tell_child(&ch, 'g');
    if (proc_hear(ch.up[0], 'w', PS_CHILD_MS) != 0) {
        expect_child(pid);
        fail_msg("the group member did not forge its entries");
    }
    expect_child(pid);
    ps_chan_close(&ch);

    /* the owner's discovery thread reaps the dead entries: wait until it has */
    reg_map m = reg_map_open(e->dom);
    assert_non_null(m.r);
    bool reaped = reg_wait_pubs_free(m.r, sh->entries, 3, ps_patience(10000));
    reg_map_close(&m);
    char problems[1024] = "";
    if (!reaped)
        note(problems, sizeof problems, "the forged entries of a dead owner were never freed");
    if (access(sh->victim, F_OK) != 0)
        note(problems, sizeof problems, "the owner's file %s was removed", sh->victim);
    if (access(sh->victim_dir, F_OK) != 0)
        note(problems, sizeof problems, "the owner's directory %s was removed",
             sh->victim_dir);
    ps_close_domain(e, d);
    if (access(sh->victim, F_OK) != 0 && !strstr(problems, "file"))
        note(problems, sizeof problems, "the owner's file %s was removed when the domain "
             "closed", sh->victim);
    unlink(sh->victim);
    rmdir(sh->victim_dir);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- runtime directory squatting ------------------------------------------------------------- */

static int squatter(const ps_env *e, ps_chan *c, void *arg)
{
    (void)arg;
    child_hear(c, 'g');
    iso_become(ISO_STRANGER, ISO_STRANGER, NULL, 0);
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    PS_CHECK(mkdir(rd, 0777) == 0 && chmod(rd, 0777) == 0, "mkdir %s: %s", rd, strerror(errno));
    child_tell(c, 'm');
    return 0;
}

/* Open the test's domain and expect EACCES with the runtime directory and `reason` in the
 * detail, and nothing left in the shm directory. */
static void expect_refused_rundir(ps_env *e, const char *reason, char *problems, size_t len)
{
    char rd[256];
    rundir_of(e, rd, sizeof rd);
    shmbus_domain *d = NULL;
    int rc = ps_domain_open(e, &d);
    print_message("    %s: %s \"%s\"\n", reason, shmbus_errname(rc), shmbus_last_error());
    if (rc != SHMBUS_EACCES)
        note(problems, len, "%s: shmbus_domain_open returned %s, expected SHMBUS_EACCES",
             reason, shmbus_errname(rc));
    else if (!strstr(shmbus_last_error(), rd) || !strstr(shmbus_last_error(), reason))
        note(problems, len, "the detail \"%s\" does not name %s and \"%s\"",
             shmbus_last_error(), rd, reason);
    if (d)
        shmbus_domain_close(d);
    char names[512];
    if (leftovers(e->dom, names, sizeof names) != 0)
        note(problems, len, "%s: the refused open left%s", reason, names);
}

static void test_runtime_dir_made_first_by_another_uid_is_refused(void **state)
{
    require_root("run a child as another uid");
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    assert_int_equal(chmod(e->tmpdir, 01777), 0); /* like /tmp: anyone may make entries */
    ps_chan ch;
    pid_t pid;
    const iso_child_fn run[1] = {squatter};
    iso_fork_children(e, &ch, &pid, 1, run, NULL);
    ps_tell_child(&ch, 'g');
    if (proc_hear(ch.up[0], 'm', PS_CHILD_MS) != 0) {
        expect_child(pid);
        fail_msg("the squatter did not make the directory");
    }
    expect_child(pid);
    ps_chan_close(&ch);
    char problems[2048] = "", rd[256];
    char reason[64];
    snprintf(reason, sizeof reason, "belongs to uid %d", ISO_STRANGER);
    expect_refused_rundir(e, reason, problems, sizeof problems);
    rundir_of(e, rd, sizeof rd);
    struct stat st;
    if (lstat(rd, &st) != 0 || st.st_uid != ISO_STRANGER)
        note(problems, sizeof problems, "the squatter's directory was changed");
    rmdir(rd);
    if (problems[0])
        fail_msg("%s", problems);
}

static void test_runtime_dir_others_may_write_or_a_symlink_is_refused(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json"); /* mode 0600: no group shares the domain */
    char rd[256], elsewhere[300], problems[2048] = "";
    rundir_of(e, rd, sizeof rd);
    assert_int_equal(mkdir(rd, 0700), 0);
    assert_int_equal(chmod(rd, 0777), 0);
    expect_refused_rundir(e, "anyone may write it", problems, sizeof problems);
    assert_int_equal(chmod(rd, 0770), 0);
    expect_refused_rundir(e, "may write it (mode 0770)", problems, sizeof problems);
    assert_int_equal(rmdir(rd), 0);
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", e->tmpdir);
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    assert_int_equal(symlink(elsewhere, rd), 0);
    expect_refused_rundir(e, "symbolic link", problems, sizeof problems);
    unlink(rd);
    rmdir(elsewhere);
    /* a directory of ours with the right mode is used */
    assert_int_equal(mkdir(rd, 0700), 0);
    shmbus_domain *d = ps_open_domain(e);
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

/* ---- the runtime directory is this process's own ------------------------------------------- */

static void test_process_with_another_runtime_dir_is_refused_naming_both(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    char other[128], rd[256];
    snprintf(other, sizeof other, "%s/other", e->tmpdir);
    assert_int_equal(mkdir(other, 0700), 0);
    rundir_of(e, rd, sizeof rd);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = e->config;
    o.runtime_dir = other;
    shmbus_domain *d2 = NULL;
    int rc = shmbus_domain_open(e->dom, &o, &d2);
    char err[512];
    snprintf(err, sizeof err, "%s", shmbus_last_error());
    print_message("    %s \"%s\"\n", shmbus_errname(rc), err);
    if (d2)
        shmbus_domain_close(d2);
    ps_close_domain(e, d);
    ps_assert_rc(rc, SHMBUS_EINCOMPAT);
    if (!strstr(err, rd) || !strstr(err, other))
        fail_msg("the detail does not name both directories (%s, %s): \"%s\"", rd, other, err);
    char names[256];
    if (entries(other, "", names, sizeof names) != 0)
        fail_msg("the refused process made%s in its own directory", names);
}

PS_MAIN(ISO_TEST(test_group_member_writing_registry_paths_cannot_make_the_owner_remove_files),
        ISO_TEST(test_runtime_dir_made_first_by_another_uid_is_refused),
        ISO_TEST(test_runtime_dir_others_may_write_or_a_symlink_is_refused),
        ISO_TEST(test_process_with_another_runtime_dir_is_refused_naming_both))
