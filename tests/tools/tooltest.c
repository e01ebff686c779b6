/* Helpers for the tests of the tools (see tooltest.h). */
#include "tooltest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tt_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- children ---------------------------------------------------------------------------- */

#define MAX_CHILDREN 32
static pid_t g_children[MAX_CHILDREN];

static void remember(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!g_children[i]) {
            g_children[i] = pid;
            return;
        }
}

static void forget(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
}

static int status_code(int ws)
{
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : -1;
}

/* In the child: die with the test, default signal handlers (cmocka's must not run here). */
static void child_prepare(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    signal(SIGFPE, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
}

static void append(char *buf, size_t cap, size_t *used, int fd, bool *open)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            *open = false;
        return;
    }
    size_t room = cap - 1 - *used;
    size_t k = (size_t)n < room ? (size_t)n : room;
    memcpy(buf + *used, tmp, k);
    *used += k;
    buf[*used] = 0;
}

void tt_run(tt_result *r, int timeout_ms, const char *const *argv)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_prepare();
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    size_t no = 0, ne = 0;
    r->out[0] = r->err[0] = 0;
    bool oo = true, eo = true, killed = false, exited = false;
    int ws = 0;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    /* Until the program has exited and its pipes are drained. A daemon it started (tmux's
     * server) may keep the pipes open: once the program is gone, take what is there. */
    while (!exited || oo || eo) {
        struct pollfd p[2] = {{.fd = oo ? po[0] : -1, .events = POLLIN},
                              {.fd = eo ? pe[0] : -1, .events = POLLIN}};
        int n = poll(p, 2, exited ? 0 : 20);
        if (n > 0 && p[0].revents)
            append(r->out, sizeof r->out, &no, po[0], &oo);
        if (n > 0 && p[1].revents)
            append(r->err, sizeof r->err, &ne, pe[0], &eo);
        if (exited && n <= 0)
            break;
        if (!exited && waitpid(pid, &ws, WNOHANG) == pid)
            exited = true;
        if (!exited && now_ms() >= deadline && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    close(po[0]);
    close(pe[0]);
    r->code = killed ? -1 : status_code(ws);
}

pid_t tt_spawn(const char *out_path, const char *const *argv)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_prepare();
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    remember(pid);
    return pid;
}

int tt_stop(pid_t pid, int sig, int timeout_ms)
{
    if (sig)
        kill(pid, sig);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int ws;
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid) {
            forget(pid);
            return status_code(ws);
        }
        if (w < 0 && errno != EINTR) {
            forget(pid);
            return -1;
        }
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
            forget(pid);
            return -1;
        }
        tt_sleep_ms(10);
    }
}

bool tt_running(pid_t pid)
{
    int ws;
    pid_t w = waitpid(pid, &ws, WNOHANG);
    if (w == pid)
        forget(pid);
    return w == 0;
}

/* ---- domains ----------------------------------------------------------------------------- */

const char *tt_shm_dir(void)
{
    const char *e = getenv("SHMBUS_SHM_DIR");
    return e && *e ? e : "/dev/shm";
}

int tt_count_segments(const char *dom)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", dom);
    DIR *d = opendir(tt_shm_dir());
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

shmbus_snapshot *tt_snapshot(const char *dom)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.observe = true;
    shmbus_domain *d;
    if (shmbus_domain_open(dom, &o, &d) != 0)
        return NULL;
    shmbus_snapshot *s = NULL;
    if (shmbus_snapshot_take(d, &s) != 0)
        s = NULL;
    shmbus_domain_close(d);
    return s;
}

bool tt_wait_for(const char *dom, bool (*pred)(const shmbus_snapshot *, const void *),
                 const void *ctx, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    do {
        shmbus_snapshot *s = tt_snapshot(dom);
        bool ok = s && pred(s, ctx);
        shmbus_snapshot_free(s);
        if (ok)
            return true;
        tt_sleep_ms(50);
    } while (now_ms() < deadline);
    return false;
}

const shmbus_topic_info *tt_find_topic(const shmbus_snapshot *s, const char *name)
{
    for (unsigned i = 0; s && i < s->ntopics; i++)
        if (strcmp(s->topics[i].def.name, name) == 0)
            return &s->topics[i];
    return NULL;
}

bool tt_topic_ready(const shmbus_snapshot *s, const void *ctx)
{
    const tt_topic_want *w = ctx;
    const shmbus_topic_info *t = tt_find_topic(s, w->topic);
    if (!t || t->npubs < w->pubs || t->nsubs < w->subs)
        return false;
    for (unsigned i = 0; i < t->nsubs; i++)
        if (t->subs[i].received < w->received)
            return false;
    return true;
}

/* ---- files ------------------------------------------------------------------------------- */

bool tt_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
    static char buf[1 << 16];
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    do {
        tt_read_file(path, buf, sizeof buf);
        if (strstr(buf, needle))
            return true;
        tt_sleep_ms(50);
    } while (now_ms() < deadline);
    return false;
}

int tt_count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

void tt_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

void tt_read_file(const char *path, char *buf, size_t len)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* ---- fixture ----------------------------------------------------------------------------- */

static unsigned g_counter;

int tt_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    tt_env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->dom, sizeof e->dom, "tt%d_%u", (int)getpid(), ++g_counter);
    snprintf(e->rundir, sizeof e->rundir, "/tmp/shmbus-tooltest.XXXXXX");
    if (!mkdtemp(e->rundir)) {
        free(e);
        return -1;
    }
    setenv("SHMBUS_RUNTIME_DIR", e->rundir, 1);
    snprintf(e->config, sizeof e->config, "%s/domain.json", e->rundir);
    char text[1024];
    snprintf(text, sizeof text,
             "{\n"
             "  \"domain\": \"%s\",\n"
             "  \"pools\": [{\"name\": \"tt\", \"classes\": [\n"
             "    {\"block_size\": \"4KiB\", \"count\": 64},\n"
             "    {\"block_size\": \"64KiB\", \"count\": 16}]}],\n"
             "  \"default_topic\": {\"pool\": \"tt\", \"history\": 4,\n"
             "                    \"max_message_size\": \"64KiB\"}\n"
             "}\n",
             e->dom);
    tt_write_file(e->config, text);
    *state = e;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int tt_teardown(void **state)
{
    tt_env *e = *state;
    int rc = 0;
    /* Programs still running: ask them to leave (they close their domain), then insist. */
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (g_children[i] && tt_stop(g_children[i], SIGTERM, 5000) < 0)
            print_message("[  ERROR   ] a program did not stop on SIGTERM\n");
    if (tt_count_segments(e->dom)) {
        print_message("[  ERROR   ] %d segments of domain \"%s\" were left in %s\n",
                      tt_count_segments(e->dom), e->dom, tt_shm_dir());
        shmbus_domain_remove(e->dom, NULL);
        rc = -1;
    }
    nftw(e->rundir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    unsetenv("SHMBUS_RUNTIME_DIR");
    free(e);
    *state = NULL;
    return rc;
}
