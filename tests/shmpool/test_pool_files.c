/* What a process opens, maps and removes: never a path from shared memory, never a file it
 * has not checked; and what it may write: only blocks it loaned itself.
 *
 * The files attacks need no second user (the other-uid cases are in test_pool_privileged.c):
 * a path written all over the control segment must not make the last participant out remove
 * it; a segment writable by every user, or a symlink or FIFO where a segment belongs, is
 * refused with an error naming the file; a planted file is never removed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testutil.h"

static const shmpool_class k_classes[] = {{.block_size = 4096, .count = 8}};

static shmpool_domain *open_dom(const char *dom, const char *wipe_dir)
{
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.wipe_dir = wipe_dir;
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, &o, &d));
    return d;
}

static void seg_path(const char *dom, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shmbus.%s.%s", tu_shm_dir(), dom, suffix);
}

static void make_victim(char *dir, size_t dlen, char *file, size_t flen)
{
    snprintf(dir, dlen, "/tmp/shmbus-victim-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(file, flen, "%s/precious", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("do not remove\n", f);
    fclose(f);
}

/* A Unix socket at path, like the bus's ipc endpoints. */
static void make_socket(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    close(s);
}

static void remove_victim(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- no path from shared memory ----------------------------------------------------------- */

/* Where the control segment once kept the creator's directory of domain files, which every
 * later participant adopted and the last one out emptied and removed. */
#define OLD_WIPE_DIR_OFFSET 64

static void write_path_into_ctl(const char *dom, const char *path)
{
    char ctl[256], rec[256] = {0};
    seg_path(dom, "ctl", ctl, sizeof ctl);
    int fd = open(ctl, O_RDWR);
    assert_true(fd >= 0);
    snprintf(rec, sizeof rec, "%s", path);
    assert_int_equal(pwrite(fd, rec, strlen(rec) + 1, OLD_WIPE_DIR_OFFSET),
                     (ssize_t)strlen(rec) + 1);
    close(fd);
}

static void test_path_written_into_the_control_segment_is_never_removed(void **state)
{
    const char *dom = TU_DOM(state);
    char victim[64], precious[128], sock[160], wipe[128];
    make_victim(victim, sizeof victim, precious, sizeof precious);
    snprintf(sock, sizeof sock, "%s/p1.ipc", victim);
    make_socket(sock); /* exactly what a wipe removes from a domain's own directory */
    snprintf(wipe, sizeof wipe, "/tmp/shmbus-own-%s", dom);
    assert_int_equal(mkdir(wipe, 0700), 0);

    /* A same-uid writer puts the victim's path into the live control segment; a participant
     * joins afterwards and is the last one out. */
    shmpool_domain *d = open_dom(dom, wipe);
    write_path_into_ctl(dom, victim);
    shmpool_domain *d2 = open_dom(dom, wipe);
    assert_ok(shmpool_domain_close(d));
    assert_ok(shmpool_domain_close(d2));
    assert_int_equal(access(precious, F_OK), 0);
    assert_int_equal(access(sock, F_OK), 0);
    assert_int_equal(access(wipe, F_OK), -1); /* its own directory went with the domain */

    /* Leftovers of a crashed domain, removed by name: no path read either. */
    int go[2];
    proc_pipe(go);
    pid_t pid = proc_fork();
    if (pid == 0) {
        shmpool_domain *cd = NULL;
        CHILD_OK(shmpool_domain_open(dom, NULL, &cd));
        CHILD_OK(proc_tell(go[1], 'o'));
        pause(); /* killed holding the domain */
        _exit(0);
    }
    assert_int_equal(proc_hear(go[0], 'o', 20000), 0);
    write_path_into_ctl(dom, victim);
    kill(pid, SIGKILL);
    assert_int_equal(proc_wait(pid, 20000), 128 + SIGKILL);
    assert_ok(shmpool_domain_remove(dom, NULL, NULL));
    assert_int_equal(access(precious, F_OK), 0);
    assert_int_equal(access(sock, F_OK), 0);
    assert_int_equal(tu_count_segments(tu_shm_dir(), dom, true), 0);
    close(go[0]);
    close(go[1]);
    remove_victim(victim);
}

static void test_own_wipe_dir_loses_only_its_sockets_and_never_follows_a_symlink(void **state)
{
    const char *dom = TU_DOM(state);
    char victim[64], precious[128], wipe[128], sock[192], keep[192];
    make_victim(victim, sizeof victim, precious, sizeof precious);
    /* The configured directory is a symlink to the victim: left alone. */
    snprintf(wipe, sizeof wipe, "/tmp/shmbus-link-%s", dom);
    assert_int_equal(symlink(victim, wipe), 0);
    snprintf(sock, sizeof sock, "%s/p2.ipc", victim);
    make_socket(sock);
    assert_ok(shmpool_domain_close(open_dom(dom, wipe)));
    assert_int_equal(access(sock, F_OK), 0);
    assert_int_equal(access(precious, F_OK), 0);
    unlink(wipe);

    /* A real directory of its own: its sockets go; a regular file stays, and so does it. */
    snprintf(wipe, sizeof wipe, "/tmp/shmbus-own-%s", dom);
    assert_int_equal(mkdir(wipe, 0700), 0);
    snprintf(sock, sizeof sock, "%s/p3.ipc", wipe);
    make_socket(sock);
    snprintf(keep, sizeof keep, "%s/notes.txt", wipe);
    FILE *f = fopen(keep, "w");
    assert_non_null(f);
    fclose(f);
    assert_ok(shmpool_domain_close(open_dom(dom, wipe)));
    assert_int_equal(access(sock, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
    remove_victim(wipe);
    remove_victim(victim);
}

/* ---- checked segment files ---------------------------------------------------------------- */

static void test_segment_writable_by_every_user_is_refused_naming_the_file(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = open_dom(dom, NULL);
    shmbus_pool *p;
    assert_ok(shmpool_pool_open(d, "p", k_classes, 1, &p));
    char path[256];
    seg_path(dom, "pool.p", path, sizeof path);
    assert_int_equal(chmod(path, 0666), 0);
    /* A second participant maps the pool afresh: refused. */
    shmpool_domain *d2 = open_dom(dom, NULL);
    shmbus_pool *p2;
    assert_rc(shmpool_pool_open(d2, "p", NULL, 0, &p2), SHMBUS_EACCES);
    assert_non_null(strstr(shmpool_last_error(), path));
    assert_non_null(strstr(shmpool_last_error(), "writable by every user"));
    assert_ok(shmpool_domain_close(d2));

    /* The control segment likewise: nobody joins a domain every user can write. */
    char ctl[256];
    seg_path(dom, "ctl", ctl, sizeof ctl);
    assert_int_equal(chmod(ctl, 0606), 0);
    shmpool_domain *d3 = NULL;
    assert_rc(shmpool_domain_open(dom, NULL, &d3), SHMBUS_EACCES);
    assert_non_null(strstr(shmpool_last_error(), "writable by every user"));
    assert_int_equal(chmod(ctl, 0600), 0);
    assert_ok(shmpool_domain_close(d));
}

static void test_symlink_or_fifo_where_a_segment_belongs_is_refused_and_left_alone(void **state)
{
    const char *dom = TU_DOM(state);
    char victim[64], precious[128], path[256];
    make_victim(victim, sizeof victim, precious, sizeof precious);
    /* A symlink named like the pool's segment, planted before the pool is made. */
    seg_path(dom, "pool.p", path, sizeof path);
    assert_int_equal(symlink(precious, path), 0);
    shmpool_domain *d = open_dom(dom, NULL);
    shmbus_pool *p;
    int rc = shmpool_pool_open(d, "p", k_classes, 1, &p);
    assert_true(rc == SHMBUS_EEXIST || rc == SHMBUS_EBADSEG);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(unlink(path), 0);

    /* A FIFO where the registry-like auxiliary segment belongs: refused, no hang. */
    seg_path(dom, "aux", path, sizeof path);
    assert_int_equal(mkfifo(path, 0600), 0);
    void *map;
    assert_rc(shmpool_segment_open(d, "aux", 64, NULL, NULL, &map), SHMBUS_EBADSEG);
    assert_non_null(strstr(shmpool_last_error(), "not a regular file"));
    assert_ok(shmpool_domain_close(d));
    /* The last one out removed the domain's files, not the FIFO (not a segment). */
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(access(precious, F_OK), 0);
    remove_victim(victim);
}

/* ---- read-only payloads ------------------------------------------------------------------- */

/* A process that loans from the pool and also acquires a block another process published:
 * the acquired payload is read-only, although the same pool is writable for its own loans. */
static void test_acquired_block_is_read_only_in_a_process_that_also_loans(void **state)
{
    const char *dom = TU_DOM(state);
    int to_child[2];
    proc_pipe(to_child);
    shmpool_domain *d = open_dom(dom, NULL);
    shmbus_pool *p;
    assert_ok(shmpool_pool_open(d, "p", k_classes, 1, &p));
    shmbus_block *b;
    assert_ok(shmpool_loan(p, 100, 0, &b));
    memset(shmpool_block_data(b), 0x5a, 100);
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(b, 100, 7, &desc));
    /* Described: the loaner's own handle now reads only too. */
    pid_t pid = proc_fork();
    if (pid == 0) {
        close(to_child[1]);
        shmpool_domain *cd = NULL;
        CHILD_OK(shmpool_domain_open(dom, NULL, &cd));
        shmbus_pool *cp;
        CHILD_OK(shmpool_pool_open(cd, "p", NULL, 0, &cp));
        shmbus_block *mine, *got;
        CHILD_OK(shmpool_loan(cp, 100, 0, &mine)); /* this process loans from the pool ... */
        memset(shmpool_block_data(mine), 1, 100);  /* ... and may write its own block */
        shmpool_desc cd_desc;
        CHILD_OK(proc_read_all(to_child[0], &cd_desc, sizeof cd_desc, 20000));
        CHILD_OK(shmpool_acquire(cd, &cd_desc, &got));
        volatile uint8_t *data = shmpool_block_data(got);
        CHILD_CHECK(data[0] == 0x5a);
        data[1] = 0; /* must fault: SIGSEGV */
        _exit(3);
    }
    close(to_child[0]);
    assert_int_equal(proc_write_all(to_child[1], &desc, sizeof desc), 0);
    int rc = proc_wait(pid, 30000);
    if (rc != 128 + SIGSEGV)
        fail_msg("the writer into an acquired block ended with %d, expected SIGSEGV (%d)", rc,
                 128 + SIGSEGV);
    const uint8_t *data = shmpool_block_data(b);
    for (unsigned i = 0; i < 100; i++)
        assert_int_equal(data[i], 0x5a);
    close(to_child[1]);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_sweep(d) >= 0 ? 0 : -1);
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    tu_apply_filter();
    const struct CMUnitTest tests[] = {
        TU_TEST(test_path_written_into_the_control_segment_is_never_removed),
        TU_TEST(test_own_wipe_dir_loses_only_its_sockets_and_never_follows_a_symlink),
        TU_TEST(test_segment_writable_by_every_user_is_refused_naming_the_file),
        TU_TEST(test_symlink_or_fifo_where_a_segment_belongs_is_refused_and_left_alone),
        TU_TEST(test_acquired_block_is_read_only_in_a_process_that_also_loans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
