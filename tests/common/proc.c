/* Child processes, pipes and the clock of the test programs (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- children ---------------------------------------------------------------------------- */

#define MAX_CHILDREN 64
static pid_t g_children[MAX_CHILDREN];

static void remember(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (g_children[i] == 0) {
            g_children[i] = pid;
            return;
        }
}

void proc_forget(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
}

pid_t proc_fork(void)
{
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        memset(g_children, 0, sizeof g_children);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the parent died before the line above */
            _exit(PROC_FAIL);
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        return 0;
    }
    remember(pid);
    return pid;
}

int proc_wait(pid_t pid, int timeout_ms)
{
    uint64_t deadline = proc_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            proc_forget(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        }
        if (r < 0 && errno != EINTR) {
            proc_forget(pid);
            return -1;
        }
        if (proc_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            proc_forget(pid);
            return -1;
        }
        proc_sleep_ms(2);
    }
}

void proc_expect_ok(pid_t pid, int timeout_ms, const char *what)
{
    int rc = proc_wait(pid, timeout_ms);
    if (rc == -1)
        fail_msg("%s (pid %d) still ran after %d ms and was killed", what, (int)pid, timeout_ms);
    if (rc > 128)
        fail_msg("%s (pid %d) was killed by signal %d (%s)", what, (int)pid, rc - 128,
                 strsignal(rc - 128));
    if (rc != 0)
        fail_msg("%s (pid %d) exited with status %d (its stderr says why)", what, (int)pid, rc);
}

void proc_stop(pid_t pid, int timeout_ms)
{
    if (kill(pid, SIGSTOP) != 0)
        fail_msg("SIGSTOP to pid %d: %s", (int)pid, strerror(errno));
    uint64_t deadline = proc_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);
        if (r == pid && WIFSTOPPED(st))
            return;
        if (r == pid || (r < 0 && errno != EINTR))
            fail_msg("pid %d ended or cannot be waited for instead of stopping", (int)pid);
        if (proc_now_ns() > deadline)
            fail_msg("pid %d had not stopped %d ms after SIGSTOP", (int)pid, timeout_ms);
        proc_sleep_ms(1);
    }
}

void proc_kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
}

/* ---- pipes ------------------------------------------------------------------------------- */

void proc_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
}

/* After a read or write that returned n: 0 to go on (*p and *len advanced past what moved,
 * or nothing moved because of a signal), -1 on an error or end of file. */
static int advance(ssize_t n, const char **p, size_t *len)
{
    if (n < 0 && errno == EINTR)
        return 0;
    if (n <= 0)
        return -1;
    *p += n;
    *len -= (size_t)n;
    return 0;
}

int proc_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0)
        if (advance(write(fd, p, len), &p, &len) != 0)
            return -1;
    return 0;
}

int proc_read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    uint64_t deadline = proc_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (len > 0) {
        uint64_t now = proc_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || advance(read(fd, (char *)p, len), &p, &len) != 0)
            return -1;
    }
    return 0;
}

int proc_tell(int fd, char c) { return proc_write_all(fd, &c, 1); }

int proc_hear(int fd, char expect, int timeout_ms)
{
    char c;
    if (proc_read_all(fd, &c, 1, timeout_ms) != 0)
        return -1;
    return c == expect ? 0 : -1;
}

/* ---- clock ------------------------------------------------------------------------------- */

uint64_t proc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void proc_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
