/* shmbus-monitor: options, the one-shot modes (--once, --json) and the start of the live
 * screen. See monitor.h for the parts and docs/monitor.md for the user's side. */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

static const char usage[] =
    "usage: shmbus-monitor [--domain NAME | --config FILE] [--interval MS] [--wait]\n"
    "                      [--once] [--json] [--ascii]\n"
    "\n"
    "A live view of a shmbus domain: topics with their rates, bandwidth, latency and rate\n"
    "history; pools with their usage and who holds their blocks; participants. It only\n"
    "observes: it joins nothing and writes nothing to the domain.\n"
    "\n"
    "  --domain NAME   the domain (default: the config's \"domain\", else \"default\")\n"
    "  --config FILE   take the domain's name from this configuration file\n"
    "  --interval MS   refresh period, and the time between the two snapshots of --once\n"
    "                  and --json (default 1000)\n"
    "  --once          print one plain-text snapshot and exit\n"
    "  --json          print one JSON snapshot and exit (schema: docs/monitor.md); with\n"
    "                  --once the same\n"
    "  --wait          wait for the domain to start instead of exiting with code 3\n"
    "  --ascii         draw with ASCII only (default: Unicode blocks in a UTF-8 locale)\n"
    "  -h, --help      this help\n"
    "\n"
    "Keys: q quit, Up/Down or j/k move, Enter topic details (Esc back), s sort by\n"
    "name/rate/bandwidth, p pause. Exit codes: 0 ok, 1 error, 2 usage error, 3 no domain\n"
    "running, 4 invalid configuration file (docs/cli.md).\n";

enum { OPT_DOMAIN = 1000, OPT_CONFIG, OPT_INTERVAL, OPT_ONCE, OPT_JSON, OPT_WAIT, OPT_ASCII };

static const struct option longopts[] = {
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"once", no_argument, NULL, OPT_ONCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"ascii", no_argument, NULL, OPT_ASCII},
    {"help", no_argument, NULL, 'h'},
    {0},
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "shmbus-monitor: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'shmbus-monitor --help'.\n");
    return MON_EXIT_USAGE;
}

/* Parse argv into o; returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, mon_opts *o)
{
    const char *domain = NULL, *config = NULL;
    int opt;
    uint64_t v;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_DOMAIN:
            domain = optarg;
            break;
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_INTERVAL:
            if (!tool_parse_uint(optarg, 3600000, &v) || v < 10)
                return usage_error("--interval: expected milliseconds (10..3600000), got \"%s\"",
                                   optarg);
            o->interval_ms = (unsigned)v;
            break;
        case OPT_ONCE:
            o->once = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_WAIT:
            o->wait = true;
            break;
        case OPT_ASCII:
            o->ascii = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return MON_EXIT_OK;
        default:
            fprintf(stderr, "Try 'shmbus-monitor --help'.\n");
            return MON_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->json)
        o->once = false; /* --once --json: the one JSON snapshot */
    int rc = tool_resolve_domain(domain, config, o->domain, NULL);
    if (rc) {
        tool_error("shmbus-monitor", rc, "configuration %s", config);
        return MON_EXIT_CONFIG;
    }
    return -1;
}

/* First snapshot of a running domain: 0, or the exit code having said why on stderr. With
 * --wait, waits for a domain with a live process; -1 if a signal ended that wait. */
static int first_snapshot(mon_model *m, const mon_opts *o)
{
    bool said = false;
    for (;;) {
        int rc = mon_model_refresh(m);
        bool running = rc == 0 && m->cur->alive > 0;
        if (running || (rc == 0 && !o->once && !o->json))
            return 0; /* the live screen shows leftovers of dead processes too */
        if (rc && rc != SHMBUS_ENOENT) {
            fprintf(stderr, "shmbus-monitor: %s\n", m->status);
            return MON_EXIT_ERROR;
        }
        if (!o->wait) {
            if (rc == 0)
                fprintf(stderr, "shmbus-monitor: %s\n", m->status);
            else
                fprintf(stderr, "shmbus-monitor: no domain \"%s\" is running\n", m->domain);
            return MON_EXIT_NODOMAIN;
        }
        if (!said && (o->once || o->json))
            fprintf(stderr, "shmbus-monitor: waiting for domain \"%s\" to start\n", m->domain);
        said = true;
        if (!o->once && !o->json)
            return 0; /* the live screen waits itself, showing that it does */
        mon_model_free(m);
        tool_sleep_ns(200 * 1000000ull);
        if (tool_stop_requested())
            return -1; /* stopped while waiting: nothing to show, nothing wrong */
    }
}

int main(int argc, char **argv)
{
    mon_opts o = {.interval_ms = 1000};
    int ec = parse(argc, argv, &o);
    if (ec >= 0)
        return ec;
    tool_catch_signals();
    mon_model m = {.sort = MON_SORT_NAME};
    snprintf(m.domain, sizeof m.domain, "%s", o.domain);
    if ((ec = first_snapshot(&m, &o)) != 0) {
        mon_model_free(&m);
        return ec < 0 ? MON_EXIT_OK : ec;
    }
    if (o.once || o.json) {
        tool_sleep_ns((uint64_t)o.interval_ms * 1000000ull);
        if (mon_model_refresh(&m) != 0) {
            fprintf(stderr, "shmbus-monitor: while measuring: %s\n", m.status);
            mon_model_free(&m);
            return MON_EXIT_NODOMAIN;
        }
        if (o.json)
            mon_print_json(&m, &o);
        else
            mon_print_text(&m, &o);
        mon_model_free(&m);
        return MON_EXIT_OK;
    }
    setlocale(LC_ALL, "");
    ec = mon_run_ui(&m, &o);
    mon_model_free(&m);
    return ec;
}
