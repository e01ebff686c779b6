/* shmbus-bench: benchmarks of shmbus, one subcommand each.
 *
 * Uses only api/shmbus.h. To add a subcommand, write `int bench_NAME(int argc, char **argv)`
 * in its own file (declared in bench.h) and add a row to `commands` below; the first row is
 * what runs when no subcommand is given.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "shmbus.h"
#include "toolutil.h"

static const struct bench_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"pool", bench_pool,
     "loan, acquire and release against malloc and a mutex-protected shared pool"},
    {"latency", bench_latency,
     "publish-to-receive latency and throughput, 64 B to 24 MiB, against nng copying"},
    {"camera", bench_camera, "1080p and 4K frames to 1-4 subscribers, against nng copying"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_error(const char *what, int status)
{
    if (status == SHMBUS_EINTR && tool_stop_requested())
        return 1; /* stopped by a signal: main says so once */
    tool_error("shmbus-bench", status, "%s", what);
    return 1;
}

int bench_parse_opts(int argc, char **argv, bench_opts *o, void (*usage)(FILE *f))
{
    struct option longopts[7] = {{"json", no_argument, NULL, 'j'},
                                 {"help", no_argument, NULL, 'h'}};
    char shortopts[16] = ":hj";
    int n = 2;
    if (o->takes & BENCH_OPT_SECONDS) {
        longopts[n++] = (struct option){"seconds", required_argument, NULL, 's'};
        strcat(shortopts, "s:");
    }
    if (o->takes & BENCH_OPT_COUNT) {
        longopts[n++] = (struct option){"count", required_argument, NULL, 'c'};
        strcat(shortopts, "c:");
    }
    if (o->takes & BENCH_OPT_QUICK) {
        longopts[n++] = (struct option){"quick", no_argument, NULL, 'q'};
        strcat(shortopts, "q");
    }
    if (o->takes & BENCH_OPT_PLOT) {
        longopts[n++] = (struct option){"plot", required_argument, NULL, 'p'};
        strcat(shortopts, "p:");
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    const char *name = argv[0];
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            o->seconds = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(o->seconds) || o->seconds <= 0 ||
                o->seconds > o->max_seconds) {
                fprintf(stderr, "shmbus-bench %s: --seconds wants a number in (0, %g]\n", name,
                        o->max_seconds);
                return 2;
            }
            break;
        case 'c':
            o->count = strtol(optarg, &end, 10);
            if (end == optarg || *end || o->count < 1 || o->count > 10000000) {
                fprintf(stderr, "shmbus-bench %s: --count wants 1..10000000\n", name);
                return 2;
            }
            break;
        case 'q':
            o->quick = true;
            break;
        case 'p':
            if (!*optarg) {
                fprintf(stderr, "shmbus-bench %s: --plot wants a file name\n", name);
                return 2;
            }
            o->plot = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "shmbus-bench %s: %s option '%s'\n", name,
                    c == ':' ? "missing argument to" : "unknown", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shmbus-bench %s: unexpected argument '%s'\n", name, argv[optind]);
        return 2;
    }
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-bench [COMMAND] [OPTIONS]\n"
               "       shmbus-bench COMMAND --help\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s%s\n", commands[i].name, commands[i].help,
                i == 0 ? " (default)" : "");
}

/* A run stopped by SIGINT/SIGTERM has cleaned up and measured nothing to print: exit 0,
 * like every tool stopped by a signal. */
static int stopped(int status)
{
    if (!tool_stop_requested())
        return status;
    fprintf(stderr, "shmbus-bench: stopped by a signal before the end: no results\n");
    return TOOL_EXIT_OK;
}

int main(int argc, char **argv)
{
    /* Interrupted runs still close their domains (the timing loops see the flag and stop
     * with SHMBUS_EINTR); a partner that died must not kill us (SIGPIPE ignored). */
    tool_catch_signals();

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        /* No subcommand: the default one gets every argument. argv[0] becomes its name. */
        argv[0] = (char *)commands[0].name;
        return stopped(commands[0].run(argc, argv));
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return stopped(commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "shmbus-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
