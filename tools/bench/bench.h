/* shmbus-bench: what the subcommands share.
 *
 * A subcommand is a function `int cmd(int argc, char **argv)` listed in the table in
 * bench_main.c; argv[0] is the subcommand's name and the return value is the exit status
 * (0 ok, 1 a failure it has reported on stderr, 2 a usage error).
 *
 * Timing (bench_run.c) calls a batch function over a window of wall time, either in this
 * process alone or in this process and a forked one at once. Everything is single-threaded;
 * nothing here is thread-safe.
 */
#ifndef SHMBUS_BENCH_H
#define SHMBUS_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "jsonw.h"
#include "toolutil.h"

/* ---- subcommands (one file each) -------------------------------------------------------- */

int bench_pool(int argc, char **argv);
int bench_latency(int argc, char **argv); /* bench_latency.c */
int bench_camera(int argc, char **argv);  /* bench_camera.c */

/* ---- helpers (bench_main.c) ------------------------------------------------------------- */

/* The clock (tool_now_ns), error printing (tool_error), size formatting
 * (tool_fmt_size_exact), the stop flag (tool_catch_signals, tool_stop_requested) and the JSON
 * writer (jsonw) are the tools' common ones (tools/common). */

/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) in nanoseconds. */
uint64_t bench_cpu_ns(void);

/* Print "shmbus-bench: <what>: <sentence> (<shmbus_last_error()>)" on stderr (tool_error);
 * returns 1. Silent for SHMBUS_EINTR after a stop signal: main says that once. */
int bench_error(const char *what, int status);

/* A subcommand's options: --json and --help always, the ones in `takes` besides. */
enum { BENCH_OPT_SECONDS = 1, BENCH_OPT_COUNT = 2, BENCH_OPT_QUICK = 4, BENCH_OPT_PLOT = 8 };

typedef struct bench_opts {
    unsigned takes;     /* BENCH_OPT_* */
    double max_seconds; /* --seconds S (-s) accepts (0, max_seconds] */
    double seconds;     /* set it to the default first */
    long count;         /* --count N (-c), 1..10000000; 0 if not given */
    bool quick;         /* --quick (-q) */
    bool json;          /* --json (-j) */
    const char *plot;   /* --plot FILE (-p); NULL if not given */
} bench_opts;

/* Parse a subcommand's arguments (argv[0] is its name, for messages). Returns -1 to go on, or
 * the exit status to return at once: 0 after --help (usage(stdout)), 2 after a usage error
 * (printed; an unknown option or a missing argument prints usage(stderr) too). */
int bench_parse_opts(int argc, char **argv, bench_opts *o, void (*usage)(FILE *f));

/* tool_stop_requested() (SIGINT, SIGTERM, SIGHUP): the timing loops stop with SHMBUS_EINTR
 * so callers still clean up their domains (nothing may stay in /dev/shm). */

/* ---- timing (bench_run.c) --------------------------------------------------------------- */

/* Pipes: write or read all len bytes, retrying after EINTR, or else fail with SHMBUS_EINTR
 * once bench_interrupted is set if `intr`. SHMBUS_ECLOSED when the other end is gone,
 * SHMBUS_ESYS for any other failure. */
int bench_write_all(int fd, const void *buf, size_t len, bool intr);
int bench_read_all(int fd, void *buf, size_t len, bool intr);

/* Do n operations; add to *retries the attempts that failed in a way the operation retries
 * (a loan that found its pool full, say). Returns 0 or a negative SHMBUS_E* code (the bench's
 * own failures use the same codes, e.g. SHMBUS_ENOMEM for malloc). */
typedef int (*bench_batch_fn)(void *ctx, unsigned n, uint64_t *retries);

/* Operations done in a window, the wall time they took, the CPU time the thread got in it
 * (less than ns: something else ran on this CPU), and the retried attempts. */
typedef struct bench_window {
    uint64_t ops;
    uint64_t ns;
    uint64_t cpu_ns;
    uint64_t retries;
} bench_window;

/* Spin until start_ns, then call fn in batches until end_ns has passed (both
 * CLOCK_MONOTONIC; a start in the past starts at once). 0, fn's error, or SHMBUS_EINTR. */
int bench_run_window(bench_batch_fn fn, void *ctx, uint64_t start_ns, uint64_t end_ns,
                     bench_window *out);

/* The half of a two-process measurement that runs in the forked child. */
typedef struct bench_child {
    /* In the child, after fork(): build *ctx from `arg` (memory inherited through fork, so a
     * pointer is valid) and `msg` (bytes the parent sent over a pipe after the fork). */
    int (*setup)(const void *arg, const void *msg, size_t len, void **ctx);
    bench_batch_fn batch;
    /* In the child, before it exits; may be NULL. */
    int (*teardown)(void *ctx);
} bench_child;

#define BENCH_MSG_MAX 256

/* A forked partner process. The caller owns the struct; the fields are the harness's. */
typedef struct bench_pair {
    pid_t pid;       /* 0: no child */
    int to_child;    /* commands */
    int from_child;  /* statuses and results */
    bool child_failed; /* the last error came from the child, not from this process */
} bench_pair;

/* Fork the partner, send it msg (at most BENCH_MSG_MAX bytes) and wait for its setup.
 * Flushes stdio first. On failure nothing is left running. */
int bench_pair_start(bench_pair *p, const bench_child *child, const void *arg, const void *msg,
                     size_t len);

/* Both processes run for the same `ns` of wall time, starting together: out[0] is this
 * process (running fn on ctx), out[1] the child. */
int bench_pair_window(bench_pair *p, bench_batch_fn fn, void *ctx, uint64_t ns,
                      bench_window out[2]);

/* Stop the child (it runs its teardown) and reap it; safe after any failure and on a pair
 * that never started. 0, or the child's failure. */
int bench_pair_finish(bench_pair *p);

/* ---- plot (bench_plot.c) ---------------------------------------------------------------- */

#define BENCH_SERIES_MAX 16

/* One line of a plot: n points (x, y), both > 0 (the axes are logarithmic). */
typedef struct bench_series {
    char title[64]; /* no quote, backslash or newline */
    int n;
    double x[BENCH_SERIES_MAX];
    double y[BENCH_SERIES_MAX];
    int color;   /* series of one colour: 0..7, a palette of distinct ones */
    bool dashed;
} bench_series;

typedef struct bench_plot_labels {
    const char *title, *xlabel, *ylabel; /* no quote, backslash or newline */
    int nxtics;                          /* 0: gnuplot's own x tics */
    double xtic[BENCH_SERIES_MAX];
    char xtic_name[BENCH_SERIES_MAX][16];
} bench_plot_labels;

/* Before a run that ends with a plot into `png`: 0 if gnuplot is in PATH and the file name
 * can be given to it; else 1 after saying why on stderr. */
int bench_plot_check(const char *png);

/* Draw the n series log-log into `png` (PNG, pngcairo) with gnuplot run as a child process
 * on a data file and a script in a temp directory it removes after. 0, or 1 after printing
 * what failed. */
int bench_plot_write(const char *png, const bench_plot_labels *labels, const bench_series *s,
                     int n);

#endif
