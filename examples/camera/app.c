/* Program plumbing shared by camera-pub, frame-sink and frame-stats (see app.h). */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int stop_pipe[2] = {-1, -1};
static _Atomic bool stopping;
static const char *sig_prog = "camera";

uint64_t app_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *signal_main(void *arg)
{
    sigset_t *set = arg;
    uint64_t first = 0;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0)
            continue;
        /* A second signal quits at once; one within a second of the first is the same
         * request delivered twice (a terminal signals the whole process group, and so do
         * timeout(1) and scripts that forward Ctrl-C to their children). */
        if (first && app_now_ns() - first > 1000000000ull) {
            fprintf(stderr, "%s: %s again: quitting now\n", sig_prog, strsignal(sig));
            _exit(128 + sig);
        }
        if (first)
            continue;
        first = app_now_ns();
        atomic_store(&stopping, true);
        char c = (char)sig;
        ssize_t n = write(stop_pipe[1], &c, 1);
        (void)n;
    }
    return NULL;
}

int app_signals_init(const char *prog)
{
    static sigset_t set;
    sig_prog = prog;
    signal(SIGPIPE, SIG_IGN); /* a closed output gives EPIPE, handled where we write */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_t t;
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
        pthread_create(&t, NULL, signal_main, &set) != 0) {
        fprintf(stderr, "%s: cannot set up signal handling: %s\n", prog, strerror(errno));
        return -1;
    }
    pthread_detach(t);
    return 0;
}

bool app_stopping(void) { return atomic_load(&stopping); }
int app_stop_fd(void) { return stop_pipe[0]; }

bool app_sleep_until(uint64_t deadline_ns)
{
    for (;;) {
        if (app_stopping())
            return false;
        uint64_t now = app_now_ns();
        if (now >= deadline_ns)
            return true;
        uint64_t left = deadline_ns - now;
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        struct pollfd pf = {.fd = stop_pipe[0], .events = POLLIN};
        ppoll(&pf, 1, &ts, NULL);
    }
}

void app_fail(const char *prog, const char *what, int rc)
{
    const char *detail = shmbus_last_error();
    if (detail && *detail)
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, shmbus_strerror(rc), detail);
    else
        fprintf(stderr, "%s: %s: %s\n", prog, what, shmbus_strerror(rc));
}

/* The domain c names: --domain, else the configuration's "domain" (the embedded default's
 * is "default"); "" if the configuration cannot be read (opening it will say why). */
static void domain_name(const app_common *c, char name[32])
{
    name[0] = 0;
    if (c->domain) {
        snprintf(name, 32, "%s", c->domain);
        return;
    }
    shmbus_config_summary *cs = calloc(1, sizeof *cs);
    if (cs && shmbus_config_load(c->config, cs) == 0)
        snprintf(name, 32, "%s", cs->domain);
    free(cs);
}

int app_open_domain(const app_common *c, shmbus_domain **out)
{
    char name[32];
    domain_name(c, name);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = c->config;
    o.name = c->name;
    int rc = shmbus_domain_open(c->domain, &o, out);
    if (rc) {
        char what[160];
        snprintf(what, sizeof what, "opening domain \"%s\"%s%s", name,
                 c->config ? " with " : "", c->config ? c->config : "");
        app_fail(c->prog, what, rc);
    }
    return rc;
}

int app_exit_for_open(int rc)
{
    switch (rc) {
    case SHMBUS_ECONFIG:
        return APP_EXIT_CONFIG;
    case SHMBUS_ENOENT: /* a configuration file that is not there */
        return APP_EXIT_CONFIG;
    default:
        return APP_EXIT_ERROR;
    }
}

int app_subscribe(const app_common *c, shmbus_domain **d, shmbus_sub **s)
{
    int rc = app_open_domain(c, d);
    if (rc != 0)
        return app_exit_for_open(rc);
    shmbus_sub_opts so = {.history = c->history};
    rc = shmbus_sub_open(*d, c->topic, &so, s);
    if (rc) {
        char what[160];
        snprintf(what, sizeof what, "subscribing to \"%s\" in domain \"%s\"", c->topic,
                 shmbus_domain_name(*d));
        app_fail(c->prog, what, rc);
        shmbus_domain_close(*d);
        return rc == SHMBUS_ENOENT ? APP_EXIT_NOTFOUND : APP_EXIT_ERROR;
    }
    if (!c->quiet && shmbus_sub_publishers(*s) == 0)
        fprintf(stderr, "%s: waiting for a publisher on \"%s\" in domain \"%s\"\n", c->prog,
                c->topic, shmbus_domain_name(*d));
    return 0;
}

int app_unsubscribe(const app_common *c, shmbus_sub *s, shmbus_domain *d)
{
    int rc;
    if ((rc = shmbus_sub_close(s)) != 0 || (rc = shmbus_domain_close(d)) != 0) {
        app_fail(c->prog, "closing", rc);
        return 1;
    }
    return 0;
}

static int rx_next(app_rx *rx, int timeout_ms, shmbus_msg **out)
{
    int fd;
    int rc = shmbus_sub_fd(rx->sub, &fd);
    if (rc)
        return rc;
    uint64_t deadline = timeout_ms >= 0 ? app_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
        if (app_stopping())
            return APP_RX_END;
        rc = shmbus_sub_recv(rx->sub, 0, out);
        if (rc == 0) {
            rx->seen_pub = true;
            rx->none_since = 0;
            return 0;
        }
        if (rc != SHMBUS_EAGAIN)
            return rc;
        /* nothing queued: if every publisher has left, there is nothing more to come. A
         * connection can drop and be dialled again while its publisher lives: the
         * publishers have left when none has been connected for APP_RX_GONE_NS. */
        uint64_t now = app_now_ns();
        if (shmbus_sub_publishers(rx->sub) > 0) {
            rx->seen_pub = true;
            rx->none_since = 0;
        } else if (rx->seen_pub && !rx->c->follow) {
            if (!rx->none_since)
                rx->none_since = now;
            else if (now - rx->none_since >= APP_RX_GONE_NS)
                return APP_RX_END;
        }
        int wait_ms = 100; /* also how often the publisher count is looked at */
        if (timeout_ms >= 0) {
            now = app_now_ns();
            if (now >= deadline)
                return SHMBUS_ETIMEDOUT;
            uint64_t left = (deadline - now + 999999) / 1000000;
            if (left < (uint64_t)wait_ms)
                wait_ms = (int)left;
        }
        struct pollfd pf[2] = {{.fd = fd, .events = POLLIN},
                               {.fd = stop_pipe[0], .events = POLLIN}};
        if (poll(pf, 2, wait_ms) < 0 && errno != EINTR)
            return SHMBUS_ESYS;
    }
}

int app_rx_next(app_rx *rx, int timeout_ms, shmbus_msg **out)
{
    int rc = rx_next(rx, timeout_ms, out);
    if (rc && rc != APP_RX_END && rc != SHMBUS_ETIMEDOUT)
        app_fail(rx->c->prog, "receiving", rc);
    return rc;
}

void app_rx_release(const app_rx *rx, shmbus_msg *m)
{
    if (rx->c->delay_ms) /* the frame stays held meanwhile */
        app_sleep_until(app_now_ns() + rx->c->delay_ms * 1000000ull);
    shmbus_msg_release(m);
}

uint64_t app_seq_note(app_seq *t, const shmbus_msg *m)
{
    uint64_t pub = shmbus_msg_publisher(m), seq = shmbus_msg_seq(m);
    unsigned i = 0;
    while (i < t->n && t->pub[i] != pub)
        i++;
    if (i == t->n) { /* a publisher not seen yet: nothing before its first message counts */
        if (t->n == APP_SEQ_PUBS)
            i = 0; /* forget the oldest; a 17th publisher on one topic is unusual */
        else
            t->n++;
        t->pub[i] = pub;
        t->last[i] = seq;
        return 0;
    }
    uint64_t gap = seq > t->last[i] + 1 ? seq - t->last[i] - 1 : 0;
    if (seq > t->last[i])
        t->last[i] = seq;
    t->gaps += gap;
    return gap;
}

bool app_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool app_parse_size(const char *s, uint32_t *w, uint32_t *h)
{
    const char *x = strchr(s, 'x');
    if (!x)
        return false;
    char ws[16];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof ws)
        return false;
    memcpy(ws, s, n);
    ws[n] = 0;
    uint64_t a, b;
    if (!app_parse_u64(ws, &a) || !app_parse_u64(x + 1, &b) || a == 0 || b == 0 ||
        a > 16384 || b > 16384)
        return false;
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return true;
}

bool app_parse_fps(const char *s, uint32_t *num, uint32_t *den)
{
    const char *slash = strchr(s, '/');
    if (slash) {
        char ns[16];
        size_t n = (size_t)(slash - s);
        uint64_t a, b;
        if (n == 0 || n >= sizeof ns)
            return false;
        memcpy(ns, s, n);
        ns[n] = 0;
        if (!app_parse_u64(ns, &a) || !app_parse_u64(slash + 1, &b) || b == 0 ||
            a > 1000000 || b > 1000000)
            return false;
        *num = (uint32_t)a;
        *den = (uint32_t)b;
        return true;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0) || v > 10000)
        return false;
    /* 29.97 -> 2997/100; exact for up to 3 decimals */
    *den = v == (double)(uint32_t)v ? 1 : 1000;
    *num = (uint32_t)(v * *den + 0.5);
    return true;
}

void app_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    exit(APP_EXIT_USAGE);
}

int app_getopt(app_common *c, int argc, char **argv, const struct option *longopts)
{
    int opt;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if (opt >= APP_OPT_OWN)
            return opt;
        switch (opt) {
        case APP_OPT_CONFIG: c->config = optarg; break;
        case APP_OPT_DOMAIN: c->domain = optarg; break;
        case APP_OPT_TOPIC: c->topic = optarg; break;
        case APP_OPT_NAME: c->name = optarg; break;
        case APP_OPT_SUMMARY: c->summary = optarg; break;
        case APP_OPT_COUNT:
            if (!app_parse_u64(optarg, &c->count))
                app_usage_error(c->prog, "--count %s: expected a number", optarg);
            break;
        case APP_OPT_DELAY:
            if (!app_parse_u64(optarg, &c->delay_ms) || c->delay_ms > 3600000)
                app_usage_error(c->prog, "--delay-ms %s: expected milliseconds", optarg);
            break;
        case APP_OPT_FOLLOW: c->follow = true; break;
        case APP_OPT_HISTORY: c->history = true; break;
        case 'q': c->quiet = true; break;
        case 'h': fputs(c->usage, stdout); exit(0);
        default: app_usage_error(c->prog, "unknown option");
        }
    }
    if (optind < argc)
        app_usage_error(c->prog, "unexpected argument \"%s\"", argv[optind]);
    return -1;
}
