/* The reaper works on events: it sleeps while nobody dies, and a peer that joins later and
 * then dies is reclaimed by the reaper alone (nobody loans or sweeps meanwhile). The liveness
 * lock lives in one thread's own file table (the watcher's), so that it goes when that thread
 * dies, not when the last of a killed process's threads does. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static const shmpool_class k_classes[] = {{.block_size = 4096, .count = 4}};

/* Call fn(tid, ctx) for every thread of this process; returns the sum of what it returns. */
static unsigned long long for_each_thread(unsigned long long (*fn)(const char *tid, void *ctx),
                                          void *ctx)
{
    unsigned long long sum = 0;
    DIR *dp = opendir("/proc/self/task");
    assert_non_null(dp);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (de->d_name[0] != '.')
            sum += fn(de->d_name, ctx);
    closedir(dp);
    return sum;
}

/* A thread's voluntary context switches: each sleep-and-wake is one. */
static unsigned long long switches_of(const char *tid, void *ctx)
{
    (void)ctx;
    char path[300], line[256];
    unsigned long long n = 0;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            n = strtoull(line + 24, NULL, 10);
    if (f)
        fclose(f);
    return n;
}

static unsigned long long wakeups(void) { return for_each_thread(switches_of, NULL); }

static void test_reapers_sleep_while_no_participant_dies(void **state)
{
    /* Two participants (each with its reaper and watcher threads), watching each other. */
    shmpool_domain *a = NULL, *b = NULL;
    assert_ok(shmpool_domain_open(TU_DOM(state), NULL, &a));
    assert_ok(shmpool_domain_open(TU_DOM(state), NULL, &b));
    struct timespec settle = {0, 200 * 1000 * 1000}, window = {2, 0};
    nanosleep(&settle, NULL);
    unsigned long long before = wakeups();
    nanosleep(&window, NULL);
    unsigned long long woke = wakeups() - before;
    print_message("    2 participants, 2 s idle: %llu wake-ups in the process\n", woke);
    /* A 10 ms tick would be 2 x 200 = 400 (it was 396); a watcher's 1 s deadline is 2 each;
     * the main thread's own sleep is 1. */
    if (woke > 40)
        fail_msg("%llu wake-ups in 2 s with nobody dying: the reaper polls", woke);
    assert_ok(shmpool_domain_close(b));
    assert_ok(shmpool_domain_close(a));
}

static void test_peer_that_joins_later_and_dies_is_reclaimed_by_the_reaper_alone(void **state)
{
    const char *dom = TU_DOM(state);
    int up[2], down[2];
    proc_pipe(up);
    proc_pipe(down);
    pid_t pid = proc_fork(); /* before this process has threads (sanitizers need that) */
    if (pid == 0) {
        shmpool_domain *cd = NULL;
        shmbus_pool *cp;
        shmbus_block *b[4];
        CHILD_CHECK(proc_hear(down[0], 'g', 20000) == 0); /* joins after the test process */
        CHILD_OK(shmpool_domain_open(dom, NULL, &cd));
        CHILD_OK(shmpool_pool_open(cd, "p", NULL, 0, &cp));
        for (int i = 0; i < 4; i++)
            CHILD_OK(shmpool_loan(cp, 1, 0, &b[i]));
        CHILD_OK(proc_tell(up[1], 'h'));
        pause();
        _exit(0);
    }
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(dom, NULL, &d));
    shmbus_pool *p;
    assert_ok(shmpool_pool_open(d, "p", k_classes, 1, &p));
    assert_int_equal(proc_tell(down[1], 'g'), 0);
    assert_int_equal(proc_hear(up[0], 'h', 20000), 0);
    shmpool_class_stats st;
    assert_int_equal(shmpool_pool_stats(p, &st, 1), 1);
    assert_int_equal(st.used, 4);
    kill(pid, SIGKILL);
    assert_int_equal(proc_wait(pid, 20000), 128 + SIGKILL);
    /* Only look (stats take no hold and sweep nothing): the reaper must do it. */
    for (int i = 0; i < 2000 && st.used; i++) {
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
        assert_int_equal(shmpool_pool_stats(p, &st, 1), 1);
    }
    assert_int_equal(st.used, 0);
    assert_int_equal(st.reclaims, 4);
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    assert_ok(shmpool_domain_close(d));
}

/* 1 if the thread's file table has a description with an OFD write lock (the liveness
 * lock), per /proc/self/task/<tid>/fdinfo; notes in *ctx whether it is the main thread. */
static unsigned long long holds_lock(const char *tid, void *ctx)
{
    char dir[300];
    snprintf(dir, sizeof dir, "/proc/self/task/%s/fdinfo", tid);
    DIR *fp = opendir(dir);
    if (!fp)
        return 0;
    bool has = false;
    struct dirent *fe;
    while ((fe = readdir(fp)) != NULL && !has) {
        char path[600], line[256];
        snprintf(path, sizeof path, "%s/%s", dir, fe->d_name);
        FILE *f = fe->d_name[0] == '.' ? NULL : fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            has |= strstr(line, "OFDLCK") && strstr(line, "WRITE");
        if (f)
            fclose(f);
    }
    closedir(fp);
    if (has && atoi(tid) == getpid())
        *(bool *)ctx = true;
    return has;
}

/* Threads whose file table holds a liveness lock; *main_has: the process's own table does. */
static int lock_holding_tables(bool *main_has)
{
    *main_has = false;
    return (int)for_each_thread(holds_lock, main_has);
}

static void test_liveness_lock_is_held_by_one_thread_s_own_file_table(void **state)
{
    shmpool_domain *d = NULL;
    assert_ok(shmpool_domain_open(TU_DOM(state), NULL, &d));
    bool main_has;
    int n = lock_holding_tables(&main_has);
    print_message("    tables holding a liveness lock: %d (the process's own: %s)\n", n,
                  main_has ? "yes" : "no");
    /* Kernels or sandboxes that refuse unshare(CLONE_FILES) keep it in the process's table;
     * this one allows it (the test runs where the library can do it). The watcher's table
     * holds it (a sanitizer's helper thread may share that table: then 2). */
    assert_true(n >= 1);
    assert_false(main_has);
    assert_ok(shmpool_domain_close(d));
    assert_int_equal(lock_holding_tables(&main_has), 0);
}

int main(void)
{
    tu_apply_filter();
    const struct CMUnitTest tests[] = {
        TU_TEST(test_reapers_sleep_while_no_participant_dies),
        TU_TEST(test_peer_that_joins_later_and_dies_is_reclaimed_by_the_reaper_alone),
        TU_TEST(test_liveness_lock_is_held_by_one_thread_s_own_file_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
