/* Timing: one process over a window of wall time, or two processes over the same window.
 *
 * Two-process protocol (pipes; the child is forked before it opens anything of its own):
 *   parent -> child   u32 length, then that many setup bytes
 *   child  -> parent  i32 setup status
 *   parent -> child   pair_cmd {start, end} per window; end == 0: stop
 *   child  -> parent  pair_result per window; after stop, i32 teardown status, then exit
 * Both processes spin until the same CLOCK_MONOTONIC start, so they run together.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmbus.h"

#define BATCH 64                    /* operations between two clock reads */
#define START_DELAY_NS 5000000ull   /* time for the child to wake and read its command */

struct pair_cmd {
    uint64_t start_ns;
    uint64_t end_ns; /* 0: stop */
};

struct pair_result {
    int32_t status;
    uint32_t pad;
    uint64_t ops;
    uint64_t ns;
    uint64_t cpu_ns;
    uint64_t retries;
};

int bench_run_window(bench_batch_fn fn, void *ctx, uint64_t start_ns, uint64_t end_ns,
                     bench_window *out)
{
    uint64_t t = tool_now_ns();
    while (t < start_ns) {
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        t = tool_now_ns();
    }
    uint64_t t0 = t, c0 = bench_cpu_ns(), ops = 0, retries = 0;
    do {
        int rc = fn(ctx, BATCH, &retries);
        if (rc)
            return rc;
        ops += BATCH;
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        t = tool_now_ns();
    } while (t < end_ns);
    out->ops = ops;
    out->ns = t - t0;
    out->cpu_ns = bench_cpu_ns() - c0;
    out->retries = retries;
    return 0;
}

/* ---- pipes ------------------------------------------------------------------------------ */

int bench_write_all(int fd, const void *buf, size_t len, bool intr)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            if (intr && tool_stop_requested())
                return SHMBUS_EINTR;
            continue;
        }
        if (n <= 0)
            return errno == EPIPE ? SHMBUS_ECLOSED : SHMBUS_ESYS;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_read_all(int fd, void *buf, size_t len, bool intr)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            if (intr && tool_stop_requested())
                return SHMBUS_EINTR;
            continue;
        }
        if (n < 0)
            return SHMBUS_ESYS;
        if (n == 0)
            return SHMBUS_ECLOSED;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The harness's pipes are never interrupted: SIGINT stops the timing loops instead. */
static int write_all(int fd, const void *buf, size_t len)
{
    return bench_write_all(fd, buf, len, false);
}

static int read_all(int fd, void *buf, size_t len)
{
    return bench_read_all(fd, buf, len, false);
}

/* ---- the child -------------------------------------------------------------------------- */

static _Noreturn void child_main(const bench_child *c, const void *arg, int in, int out)
{
    uint32_t len = 0;
    char msg[BENCH_MSG_MAX];
    void *ctx = NULL;
    int rc = read_all(in, &len, sizeof len);
    if (rc == 0 && len > sizeof msg)
        rc = SHMBUS_EINVAL;
    if (rc == 0)
        rc = read_all(in, msg, len);
    if (rc == 0)
        rc = c->setup(arg, msg, len, &ctx); /* cleans up after itself when it fails */
    int32_t st = rc;
    if (write_all(out, &st, sizeof st) != 0 || rc != 0)
        _exit(1);

    for (;;) {
        struct pair_cmd cmd;
        if (read_all(in, &cmd, sizeof cmd) != 0 || cmd.end_ns == 0)
            break; /* stopped, or the parent is gone */
        bench_window w = {0, 0, 0, 0};
        struct pair_result r = {0};
        r.status = bench_run_window(c->batch, ctx, cmd.start_ns, cmd.end_ns, &w);
        r.ops = w.ops;
        r.ns = w.ns;
        r.cpu_ns = w.cpu_ns;
        r.retries = w.retries;
        int wrc = write_all(out, &r, sizeof r);
        if (r.status != 0 || wrc != 0) {
            rc = r.status != 0 ? r.status : wrc;
            break;
        }
    }
    int trc = c->teardown ? c->teardown(ctx) : 0;
    st = trc;
    write_all(out, &st, sizeof st); /* the parent may be gone already */
    _exit(rc != 0 || trc != 0 ? 1 : 0);
}

/* ---- the parent ------------------------------------------------------------------------- */

int bench_pair_start(bench_pair *p, const bench_child *child, const void *arg, const void *msg,
                     size_t len)
{
    int down[2], up[2];
    *p = (bench_pair){.pid = 0, .to_child = -1, .from_child = -1};
    if (len > BENCH_MSG_MAX)
        return SHMBUS_EINVAL;
    if (pipe(down) != 0)
        return SHMBUS_ESYS;
    if (pipe(up) != 0)
        goto fail_down;
    fflush(NULL); /* or the child's exit could print buffered output twice */
    pid_t pid = fork();
    if (pid < 0)
        goto fail_up;
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        child_main(child, arg, down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    p->pid = pid;
    p->to_child = down[1];
    p->from_child = up[0];

    uint32_t n = (uint32_t)len;
    int rc = write_all(p->to_child, &n, sizeof n);
    if (rc == 0)
        rc = write_all(p->to_child, msg, len);
    int32_t st = 0;
    if (rc == 0)
        rc = read_all(p->from_child, &st, sizeof st);
    if (rc == 0)
        rc = st;
    if (rc != 0) {
        p->child_failed = true;
        bench_pair_finish(p);
    }
    return rc;

fail_up:
    close(up[0]);
    close(up[1]);
fail_down:
    close(down[0]);
    close(down[1]);
    return SHMBUS_ESYS;
}

int bench_pair_window(bench_pair *p, bench_batch_fn fn, void *ctx, uint64_t ns,
                      bench_window out[2])
{
    uint64_t start = tool_now_ns() + START_DELAY_NS;
    struct pair_cmd cmd = {.start_ns = start, .end_ns = start + ns};
    p->child_failed = false;
    int rc = write_all(p->to_child, &cmd, sizeof cmd);
    if (rc != 0) {
        p->child_failed = true;
        return rc;
    }
    int mine = bench_run_window(fn, ctx, cmd.start_ns, cmd.end_ns, &out[0]);
    struct pair_result r;
    rc = read_all(p->from_child, &r, sizeof r); /* keeps the protocol in step either way */
    if (mine != 0)
        return mine;
    if (rc == 0)
        rc = r.status;
    if (rc != 0) {
        p->child_failed = true;
        return rc;
    }
    out[1] = (bench_window){
        .ops = r.ops, .ns = r.ns, .cpu_ns = r.cpu_ns, .retries = r.retries};
    return 0;
}

int bench_pair_finish(bench_pair *p)
{
    if (p->pid <= 0)
        return 0;
    int rc = 0;
    struct pair_cmd stop = {0, 0};
    if (write_all(p->to_child, &stop, sizeof stop) == 0) {
        int32_t st = 0;
        rc = read_all(p->from_child, &st, sizeof st);
        if (rc == SHMBUS_ECLOSED)
            rc = 0; /* it had stopped already; its exit status tells */
        else if (rc == 0)
            rc = st;
    }
    close(p->to_child);
    close(p->from_child);
    int ws = 0;
    while (waitpid(p->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    /* Exit status 1 follows a failure the child reported over the pipe; anything else is
     * news. */
    if (WIFSIGNALED(ws))
        fprintf(stderr, "shmbus-bench: second process killed by signal %d\n", WTERMSIG(ws));
    else if (WIFEXITED(ws) && WEXITSTATUS(ws) > 1)
        fprintf(stderr, "shmbus-bench: second process exited with status %d\n",
                WEXITSTATUS(ws));
    if (rc == 0 && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
        rc = SHMBUS_ESYS;
    if (rc != 0)
        p->child_failed = true;
    *p = (bench_pair){.pid = 0, .to_child = -1, .from_child = -1,
                      .child_failed = p->child_failed};
    return rc;
}
