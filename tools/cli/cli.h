/* shmbus: the command line for operators (docs/cli.md). One file per group of subcommands;
 * this header is what they share: exit codes, option parsing and opening a domain. */
#ifndef SHMBUS_CLI_H
#define SHMBUS_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "shmbus.h"
#include "toolutil.h"

/* Exit codes: the tools' common set (toolutil.h, docs/cli.md). CLI_STOPPED is no exit code:
 * a wait ended by a signal, which the command turns into CLI_OK. */
enum {
    CLI_OK = TOOL_EXIT_OK,
    CLI_ERROR = TOOL_EXIT_ERROR, /* a runtime error, `doctor` found a problem, `clean` refused */
    CLI_USAGE = TOOL_EXIT_USAGE,
    CLI_NOTFOUND = TOOL_EXIT_NOTFOUND, /* no such domain or topic */
    CLI_CONFIG = TOOL_EXIT_CONFIG,     /* the configuration file is invalid or unreadable */
    CLI_STOPPED = -1,
};

/* Options every subcommand that works on a domain takes. */
typedef struct cli_common {
    const char *prog;   /* "shmbus echo": prefix of messages */
    const char *domain; /* --domain NAME */
    const char *config; /* --config FILE */
} cli_common;

enum { CLI_OPT_DOMAIN = 1000, CLI_OPT_CONFIG, CLI_OPT_FIRST_OWN /* subcommands' own */ };
#define CLI_COMMON_LONGOPTS                                                                   \
    {"domain", required_argument, NULL, CLI_OPT_DOMAIN},                                      \
        {"config", required_argument, NULL, CLI_OPT_CONFIG}, {"help", no_argument, NULL, 'h'}
#define CLI_COMMON_HELP                                                                   \
    "  --domain NAME   the domain (default: the config's \"domain\", else \"default\")\n"  \
    "  --config FILE   the domain's JSON configuration\n"                                 \
    "  -h, --help      this help\n"

/* A subcommand: runs with argv[0] = its name; returns an exit code. */
typedef int (*cli_fn)(int argc, char **argv);

int cli_list(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_echo(int argc, char **argv);
int cli_hz(int argc, char **argv);
int cli_bw(int argc, char **argv);
int cli_pub(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_doctor(int argc, char **argv);
int cli_clean(int argc, char **argv);

/* Parse argv with getopt_long, handling the common options itself (--help prints `usage` to
 * stdout and returns CLI_OK through *exit_code). Each other option is passed to on_opt, which
 * returns false for a bad value (it has printed why). Returns true to go on; false with
 * *exit_code set to stop. Afterwards the operands are argv[optind..argc). */
typedef bool (*cli_opt_fn)(int opt, const char *arg, void *ctx);
bool cli_parse(cli_common *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts, const char *usage, cli_opt_fn on_opt, void *ctx,
               int *exit_code);

/* Print "<prog>: <message>" and the hint to run --help; returns CLI_USAGE. */
int cli_usage_error(const cli_common *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The exit code for a failed library call: CLI_NOTFOUND for SHMBUS_ENOENT, CLI_CONFIG for
 * SHMBUS_ECONFIG, else CLI_ERROR. */
int cli_exit_for(int rc);

/* Resolve the domain name (--domain, the config's, "default"); CLI_OK or, having printed
 * why, CLI_CONFIG. summary may be NULL. */
int cli_domain_name(const cli_common *c, char name[TOOL_NAME_MAX], shmbus_config_summary *summary);

/* Open the domain as an observer; prints why and returns the exit code on failure (a domain
 * that is not running: CLI_NOTFOUND). */
int cli_observe(const cli_common *c, shmbus_domain **d, shmbus_snapshot **snap);

/* Join the domain as a participant named `pname`, for pub/sub. With --config, that file;
 * without, the embedded default (which adds nothing to a running domain until a topic on its
 * pool is opened). A domain that is not running is started when `may_create`; else it is
 * CLI_NOTFOUND, or with `wait` waited for (saying so once on stderr). `topic`, if not NULL
 * and no --config is given, is waited for until it exists in the running domain (saying so
 * once, with the nearest name it has): subscribing tools never create a topic, or its pool,
 * by a typo. With --config, a topic the file does not allow is CLI_NOTFOUND. A signal during
 * a wait: CLI_STOPPED, nothing open. Prints why on failure. */
int cli_join(const cli_common *c, const char *pname, bool may_create, bool wait,
             const char *topic, shmbus_domain **d);

/* Interval parsing for --window / --duration: seconds, > 0. */
bool cli_parse_seconds(const char *s, double *out);

#endif
