/* shmbus: the command line. main() picks the subcommand; the helpers here are what all
 * subcommands share (option parsing, exit codes, opening a domain as an observer). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char main_usage[] =
    "usage: shmbus COMMAND [ARGS] [--domain NAME] [--config FILE]\n"
    "\n"
    "Commands:\n"
    "  list                topics with their publisher and subscriber counts\n"
    "  info TOPIC          a topic's definition, publishers, subscribers and counters\n"
    "  echo TOPIC          print the messages of a topic as they arrive\n"
    "  hz TOPIC            message rate of a topic\n"
    "  bw TOPIC            bandwidth of a topic\n"
    "  pub TOPIC           publish messages (--size N or --file F)\n"
    "  config check FILE   validate a configuration; the memory it needs\n"
    "  doctor              look for host problems (shm space, RemoveIPC, limits, leftovers)\n"
    "  clean DOMAIN        remove what a domain whose processes all died left behind\n"
    "\n"
    "'shmbus COMMAND --help' shows a command's options. Exit codes: 0 ok, 1 error,\n"
    "2 usage error, 3 no such domain or topic, 4 invalid configuration (docs/cli.md).\n";

static const struct {
    const char *name;
    cli_fn fn;
} commands[] = {
    {"list", cli_list}, {"info", cli_info},     {"echo", cli_echo},     {"hz", cli_hz},
    {"bw", cli_bw},     {"pub", cli_pub},       {"config", cli_config}, {"doctor", cli_doctor},
    {"clean", cli_clean},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("shmbus %d.%d\n", SHMBUS_VERSION_MAJOR, SHMBUS_VERSION_MINOR);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "shmbus: unknown command \"%s\"\n\n%s", cmd, main_usage);
    return CLI_USAGE;
}

/* ---- shared by the subcommands ---------------------------------------------------------- */

int cli_usage_error(const cli_common *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", c->prog);
    return CLI_USAGE;
}

bool cli_parse(cli_common *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts, const char *usage, cli_opt_fn on_opt, void *ctx,
               int *exit_code)
{
    /* getopt names the program by argv[0] in its messages: make it "shmbus echo" */
    char *saved = argv[0];
    argv[0] = (char *)c->prog;
    optind = 1;
    opterr = 1;
    int opt;
    bool ok = true;
    *exit_code = CLI_OK;
    while (ok && (opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage, stdout);
            *exit_code = CLI_OK;
            ok = false;
            break;
        case CLI_OPT_DOMAIN:
            c->domain = optarg;
            break;
        case CLI_OPT_CONFIG:
            c->config = optarg;
            break;
        case '?':
        case ':':
            fprintf(stderr, "Try '%s --help'.\n", c->prog);
            *exit_code = CLI_USAGE;
            ok = false;
            break;
        default:
            if (!on_opt || !on_opt(opt, optarg, ctx)) {
                fprintf(stderr, "Try '%s --help'.\n", c->prog);
                *exit_code = CLI_USAGE;
                ok = false;
            }
        }
    }
    argv[0] = saved;
    return ok;
}

int cli_exit_for(int rc)
{
    switch (rc) {
    case SHMBUS_ENOENT:
        return CLI_NOTFOUND;
    case SHMBUS_ECONFIG:
        return CLI_CONFIG;
    default:
        return CLI_ERROR;
    }
}

int cli_domain_name(const cli_common *c, char name[TOOL_NAME_MAX], shmbus_config_summary *summary)
{
    int rc = tool_resolve_domain(c->domain, c->config, name, summary);
    if (rc) {
        tool_error(c->prog, rc, "configuration %s", c->config ? c->config : "(embedded)");
        return CLI_CONFIG;
    }
    return CLI_OK;
}

int cli_observe(const cli_common *c, shmbus_domain **d, shmbus_snapshot **snap)
{
    char name[TOOL_NAME_MAX];
    int ec = cli_domain_name(c, name, NULL);
    if (ec)
        return ec;
    int rc = tool_observe(name, d);
    if (rc == SHMBUS_ENOENT) {
        fprintf(stderr, "%s: no domain \"%s\" is running\n", c->prog, name);
        return CLI_NOTFOUND;
    }
    if (rc) {
        tool_error(c->prog, rc, "domain \"%s\"", name);
        return cli_exit_for(rc);
    }
    if (!snap)
        return CLI_OK;
    rc = shmbus_snapshot_take(*d, snap);
    if (rc) {
        tool_error(c->prog, rc, "snapshot of domain \"%s\"", name);
        shmbus_domain_close(*d);
        return CLI_ERROR;
    }
    if ((*snap)->alive == 0) { /* its files are there, but every process is gone */
        fprintf(stderr, "%s: no domain \"%s\" is running (no live participant; "
                        "'shmbus clean %s' removes what it left)\n", c->prog, name, name);
        shmbus_snapshot_free(*snap);
        shmbus_domain_close(*d);
        return CLI_NOTFOUND;
    }
    return CLI_OK;
}

bool cli_parse_seconds(const char *s, double *out)
{
    return tool_parse_double(s, out) && *out > 0 && *out < 1e7;
}
