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

volatile sig_atomic_t bench_interrupted;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_error(const char *what, int status)
{
    fprintf(stderr, "shmbus-bench: %s: %s (%s)\n", what, shmbus_errname(status),
            shmbus_strerror(status));
    return 1;
}

int bench_shmbus_error(const char *call, int status)
{
    const char *detail = shmbus_last_error();
    if (!detail || !*detail)
        return bench_error(call, status);
    fprintf(stderr, "shmbus-bench: %s: %s (%s): %s\n", call, shmbus_errname(status),
            shmbus_strerror(status), detail);
    return 1;
}

void bench_size_str(uint64_t size, char *buf, size_t len)
{
    if (size >= (1u << 20) && size % (1u << 20) == 0)
        snprintf(buf, len, "%llu MiB", (unsigned long long)(size >> 20));
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(buf, len, "%llu KiB", (unsigned long long)(size >> 10));
    else
        snprintf(buf, len, "%llu B", (unsigned long long)size);
}

int bench_parse_opts(int argc, char **argv, bench_opts *o, void (*usage)(FILE *f))
{
    struct option longopts[6] = {{"json", no_argument, NULL, 'j'},
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

static void on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-bench [COMMAND] [OPTIONS]\n"
               "       shmbus-bench COMMAND --help\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s%s\n", commands[i].name, commands[i].help,
                i == 0 ? " (default)" : "");
}

int main(int argc, char **argv)
{
    /* Interrupted runs still close their domains; a partner that died must not kill us. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        /* No subcommand: the default one gets every argument. argv[0] becomes its name. */
        argv[0] = (char *)commands[0].name;
        return commands[0].run(argc, argv);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "shmbus-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
