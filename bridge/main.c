/* shmbus-bridge: shmbus topics across hosts over Cyclone DDS (docs/bridge.md).
 *
 *   shmbus-bridge --config bridge.json [--stats-file FILE] [--check] [-q]
 *
 * Joins the configured shmbus domain as participant "shmbus-bridge", creates a DDS
 * participant of the same name, and runs one thread per route until SIGINT/SIGTERM/SIGHUP.
 * Counters go to the stats topic and file every stats interval, and to stderr on SIGUSR1.
 * Exit status: 0 stopped by a signal, 1 a bus or DDS error at start, 2 usage or config error. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

static const char usage[] =
    "usage: shmbus-bridge --config FILE [--stats-file FILE] [--check] [-q]\n"
    "  --config FILE      the bridge's JSON configuration (docs/bridge.md)\n"
    "  --stats-file FILE  write the counters as JSON to FILE every stats interval\n"
    "  --check            check the configuration and exit\n"
    "  -q, --quiet        no notes about dropped samples on stderr\n"
    "Stops on SIGINT, SIGTERM or SIGHUP; SIGUSR1 prints the counters on stderr.\n";

static volatile sig_atomic_t g_stop, g_dump;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_dump = 1;
    else
        g_stop = 1;
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "shmbus-bridge: %s: %s (%s)\n", what, shmbus_strerror(rc), shmbus_last_error());
}

/* The ids of this process's publishers, from a snapshot of the domain: messages from them
 * were taken in from DDS and must not go back out. */
static int collect_own_pubs(bridge *b)
{
    shmbus_snapshot *s;
    int rc = shmbus_snapshot_take(b->dom, &s);
    if (rc != 0) return rc;
    b->nown = 0;
    for (unsigned t = 0; t < s->ntopics; t++)
        for (unsigned p = 0; p < s->topics[t].npubs; p++) {
            const shmbus_pub_info *pi = &s->topics[t].pubs[p];
            if (pi->pid == getpid() && pi->alive &&
                b->nown < sizeof b->own_pubs / sizeof b->own_pubs[0])
                b->own_pubs[b->nown++] = pi->id;
        }
    shmbus_snapshot_free(s);
    return 0;
}

static int open_local(bridge *b)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = b->cfg.domain_config[0] ? b->cfg.domain_config : NULL;
    o.name = b->cfg.name;
    int rc = shmbus_domain_open(b->cfg.domain[0] ? b->cfg.domain : NULL, &o, &b->dom);
    if (rc != 0) return fail("open the shmbus domain", rc), rc;
    if (b->cfg.stats_topic[0] &&
        (rc = shmbus_pub_open(b->dom, b->cfg.stats_topic, &b->stats_pub)) != 0)
        return fail(b->cfg.stats_topic, rc), rc;
    for (unsigned i = 0; i < b->nroutes; i++) { /* publishers first: the loop guard needs them */
        route *r = &b->routes[i];
        if (r->cfg->dir == BRIDGE_IN && (rc = shmbus_pub_open(b->dom, r->cfg->topic, &r->pub)) != 0)
            return fail(r->cfg->topic, rc), rc;
    }
    if ((rc = collect_own_pubs(b)) != 0) return fail("snapshot of the domain", rc), rc;
    for (unsigned i = 0; i < b->nroutes; i++) {
        route *r = &b->routes[i];
        if (r->cfg->dir == BRIDGE_OUT &&
            (rc = shmbus_sub_open(b->dom, r->cfg->topic, NULL, &r->sub)) != 0)
            return fail(r->cfg->topic, rc), rc;
    }
    return 0;
}

static void close_local(bridge *b)
{
    for (unsigned i = 0; i < b->nroutes; i++) {
        if (b->routes[i].sub) shmbus_sub_close(b->routes[i].sub);
        if (b->routes[i].pub) shmbus_pub_close(b->routes[i].pub);
    }
    if (b->stats_pub) shmbus_pub_close(b->stats_pub);
    if (b->dom) {
        int rc = shmbus_domain_close(b->dom);
        if (rc != 0) fail("close the shmbus domain", rc);
    }
}

static void write_stats(bridge *b, const char *file, bool to_stderr)
{
    char *s = bridge_stats_json(b);
    if (!s) return;
    size_t len = strlen(s);
    if (b->stats_pub) {
        shmbus_msg *m;
        if (shmbus_pub_loan(b->stats_pub, len, &m) == 0) {
            memcpy(shmbus_msg_data(m), s, len);
            int rc = shmbus_pub_publish(b->stats_pub, m, len);
            if (rc != 0 && rc != SHMBUS_ETRANSPORT) shmbus_msg_release(m);
        }
    }
    if (file && file[0]) { /* whole or not at all: write aside, then rename */
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            bool ok = fprintf(f, "%s\n", s) > 0;
            ok = fclose(f) == 0 && ok;
            if (!ok || rename(tmp, file) != 0) unlink(tmp);
        }
    }
    if (to_stderr) fprintf(stderr, "%s\n", s);
    free(s);
}

static int start(bridge *b)
{
    char err[512];
    if (dds_session_open(b, err, sizeof err) != 0) {
        fprintf(stderr, "shmbus-bridge: %s\n", err);
        return 1;
    }
    for (unsigned i = 0; i < b->nroutes; i++)
        if (dds_session_route(b, &b->routes[i], err, sizeof err) != 0) {
            fprintf(stderr, "shmbus-bridge: %s\n", err);
            return 1;
        }
    for (unsigned i = 0; i < b->nroutes; i++) {
        route *r = &b->routes[i];
        int rc = pthread_create(&r->thread, NULL,
                                r->cfg->dir == BRIDGE_OUT ? route_out_run : route_in_run, r);
        if (rc != 0) {
            fprintf(stderr, "shmbus-bridge: cannot start a thread: %s\n", strerror(rc));
            return 1;
        }
        r->started = true;
    }
    return 0;
}

static void stop(bridge *b)
{
    atomic_store(&b->stop, true);
    if (b->stop_guard > 0) dds_set_guardcondition(b->stop_guard, true);
    for (unsigned i = 0; i < b->nroutes; i++)
        if (b->routes[i].started) pthread_join(b->routes[i].thread, NULL);
    dds_session_close(b);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"stats-file", required_argument, 0, 's'},
        {"check", no_argument, 0, 'k'},        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *config = NULL, *stats_file = NULL;
    bool check = false, quiet = false;
    int c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': stats_file = optarg; break;
        case 'k': check = true; break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!config || optind != argc) {
        fprintf(stderr, "shmbus-bridge: %s\n%s",
                config ? "unexpected operand" : "--config FILE is required", usage);
        return 2;
    }
    static bridge b; /* large (the config); zeroed */
    char err[1024];
    if (bridge_config_load(config, &b.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shmbus-bridge: %s\n", err);
        return 2;
    }
    if (check) { /* the domain's file too, if it names one */
        shmbus_config_summary sum;
        int rc = b.cfg.domain_config[0] ? shmbus_config_load(b.cfg.domain_config, &sum) : 0;
        if (rc != 0) {
            fprintf(stderr, "shmbus-bridge: %s: %s\n", shmbus_strerror(rc), shmbus_last_error());
            return 2;
        }
        printf("%s: %u routes, shmbus domain %s, DDS domain %u\n", config, b.cfg.nroutes,
               b.cfg.domain[0] ? b.cfg.domain : "(the domain config's)", b.cfg.dds_domain_id);
        return 0;
    }
    if (!stats_file) stats_file = b.cfg.stats_file;
    b.quiet = quiet;
    b.nroutes = b.cfg.nroutes;
    for (unsigned i = 0; i < b.nroutes; i++) {
        b.routes[i].cfg = &b.cfg.routes[i];
        b.routes[i].b = &b;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

    int status = open_local(&b) != 0 ? 1 : start(&b);
    if (status == 0) {
        if (!quiet)
            fprintf(stderr, "shmbus-bridge: domain %s, DDS domain %u, %u routes: running\n",
                    shmbus_domain_name(b.dom), b.cfg.dds_domain_id, b.nroutes);
        uint64_t ticks = 0, per = (b.cfg.stats_interval_ms + 9) / 10;
        while (!g_stop) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
            if (++ticks % per == 0 || g_dump) {
                write_stats(&b, stats_file, g_dump);
                g_dump = 0;
            }
        }
    }
    stop(&b);
    if (status == 0) write_stats(&b, stats_file, !quiet);
    close_local(&b);
    return status;
}
