/* shmbus pub: publish messages of a given size, or a file's content, at a given rate. It
 * starts the domain (embedded default, or --config) when none is running. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char pub_usage[] =
    "usage: shmbus pub TOPIC (--size N | --file F) [--rate HZ] [--count N]\n"
    "                  [--wait-subscribers N] [--domain NAME] [--config FILE]\n"
    "\n"
    "Publish messages on TOPIC: --size N bytes (units allowed: 4KiB, 6MiB, 1.5MB) filled\n"
    "with a pattern (byte i of message seq is (seq + i) mod 256), or the content of file F\n"
    "in every message. Starts the domain if none is running. Ctrl-C stops.\n"
    "\n"
    "  --size N               message size\n"
    "  --file F               message content\n"
    "  --rate HZ              messages per second (default 10; 0: as fast as possible)\n"
    "  --count N              stop after N messages (default: run until stopped)\n"
    "  --wait-subscribers N   first wait until N subscribers are connected\n" CLI_COMMON_HELP;

enum { OPT_SIZE = CLI_OPT_FIRST_OWN, OPT_FILE, OPT_RATE, OPT_COUNT, OPT_WAIT };

static const struct option pub_longopts[] = {
    CLI_COMMON_LONGOPTS,
    {"size", required_argument, NULL, OPT_SIZE},
    {"file", required_argument, NULL, OPT_FILE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"wait-subscribers", required_argument, NULL, OPT_WAIT},
    {0},
};

typedef struct pub_opts {
    const cli_common *c;
    bool has_size;
    uint64_t size;
    const char *file;
    double rate;
    uint64_t count;
    uint64_t wait_subs;
} pub_opts;

static bool pub_opt(int opt, const char *arg, void *ctx)
{
    pub_opts *o = ctx;
    const char *prog = o->c->prog;
    switch (opt) {
    case OPT_SIZE:
        if (shmbus_parse_size(arg, &o->size) != 0) {
            fprintf(stderr, "%s: --size: %s\n", prog, shmbus_last_error());
            return false;
        }
        if (o->size > 0) {
            o->has_size = true;
            return true;
        }
        fprintf(stderr, "%s: --size: expected a size such as 1024 or 6MiB, got \"%s\"\n", prog,
                arg);
        return false;
    case OPT_FILE:
        o->file = arg;
        return true;
    case OPT_RATE:
        if (tool_parse_double(arg, &o->rate) && o->rate <= 1e7)
            return true;
        fprintf(stderr, "%s: --rate: expected messages per second (0..1e7), got \"%s\"\n", prog,
                arg);
        return false;
    case OPT_COUNT:
        if (tool_parse_uint(arg, UINT64_MAX, &o->count) && o->count > 0)
            return true;
        fprintf(stderr, "%s: --count: expected a positive integer, got \"%s\"\n", prog, arg);
        return false;
    case OPT_WAIT:
        if (tool_parse_uint(arg, 1024, &o->wait_subs))
            return true;
        fprintf(stderr, "%s: --wait-subscribers: expected 0..1024, got \"%s\"\n", prog, arg);
        return false;
    }
    return false;
}

/* The whole file in memory (at most 1 GiB); NULL (having printed why) on error. */
static unsigned char *read_file(const char *prog, const char *path, uint64_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    const char *why = buf ? NULL : "out of memory";
    while (!why) {
        if (n == cap) {
            unsigned char *nb = cap < (1u << 30) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                why = cap < (1u << 30) ? "out of memory" : "larger than 1 GiB";
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            why = ferror(f) ? "read error" : NULL;
        if (got == 0)
            break;
    }
    fclose(f);
    if (why) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, why);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Loan, fill, publish one message. Returns 0, or the failed call's status. */
static int publish_one(shmbus_pub *p, const pub_opts *o, const unsigned char *content,
                       uint64_t len, uint64_t seq)
{
    shmbus_msg *m;
    int rc = shmbus_pub_loan(p, len ? len : 1, &m);
    if (rc)
        return rc;
    unsigned char *data = shmbus_msg_data(m);
    if (content)
        memcpy(data, content, len);
    else
        for (uint64_t i = 0; i < o->size; i++)
            data[i] = (unsigned char)(seq + i);
    rc = shmbus_pub_publish(p, m, len);
    if (rc && rc != SHMBUS_ETRANSPORT)
        shmbus_msg_release(m); /* still ours on other errors */
    return rc;
}

static int run(const cli_common *c, shmbus_pub *p, const pub_opts *o,
               const unsigned char *content, uint64_t len)
{
    if (o->wait_subs > 0) {
        printf("waiting for %" PRIu64 " subscriber(s)\n", o->wait_subs);
        fflush(stdout);
        while (!tool_stop_requested() &&
               shmbus_pub_wait_subscribers(p, (int)o->wait_subs, 200) != 0)
            ;
    }
    uint64_t period = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
    uint64_t next = tool_now_ns(), sent = 0, failed = 0, last_warn = 0;
    while (!tool_stop_requested() && (o->count == 0 || sent < o->count)) {
        if (period) {
            uint64_t now = tool_now_ns();
            if (now < next) {
                tool_sleep_ns(next - now);
                continue; /* look at the signals again */
            }
            next += period;
            if (next + 100 * period < now)
                next = now + period; /* fell far behind (stopped?): do not burst */
        }
        int rc = publish_one(p, o, content, len, sent + 1);
        if (rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT || rc == SHMBUS_ETRANSPORT) {
            failed++;
            uint64_t now = tool_now_ns();
            if (now - last_warn > 1000000000ull) {
                tool_error(c->prog, rc, "message %" PRIu64 " not published", sent + 1);
                last_warn = now;
            }
            if (rc == SHMBUS_ETRANSPORT)
                sent++;
            continue;
        }
        if (rc) {
            tool_error(c->prog, rc, "publish");
            return cli_exit_for(rc) == CLI_NOTFOUND ? CLI_ERROR : cli_exit_for(rc);
        }
        sent++;
    }
    printf("published %" PRIu64 " message(s) of %" PRIu64 " bytes", sent, len);
    if (failed)
        printf(", %" PRIu64 " failed", failed);
    printf("\n");
    return CLI_OK;
}

int cli_pub(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus pub"};
    pub_opts o = {.c = &c, .rate = 10};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", pub_longopts, pub_usage, pub_opt, &o, &ec))
        return ec;
    if (optind >= argc)
        return cli_usage_error(&c, "missing TOPIC");
    if (optind + 1 < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind + 1]);
    if (o.has_size == (o.file != NULL))
        return cli_usage_error(&c, "give exactly one of --size N and --file F");
    const char *topic = argv[optind];
    unsigned char *content = NULL;
    uint64_t len = o.size;
    if (o.file && !(content = read_file(c.prog, o.file, &len)))
        return CLI_ERROR;
    tool_catch_signals(); /* before the join: a signal never leaves a half-open domain */
    shmbus_domain *d;
    if ((ec = cli_join(&c, "shmbus-pub", true, false, NULL, &d)) != CLI_OK)
        goto out;
    char dom[TOOL_NAME_MAX];
    snprintf(dom, sizeof dom, "%s", shmbus_domain_name(d));
    shmbus_pub *p;
    int rc = shmbus_pub_open(d, topic, &p);
    if (rc) {
        tool_error(c.prog, rc, "topic \"%s\" in domain \"%s\"", topic, dom);
        ec = cli_exit_for(rc);
        shmbus_domain_close(d);
        goto out;
    }
    ec = run(&c, p, &o, content, len);
    rc = shmbus_pub_close(p);
    if (rc == 0)
        rc = shmbus_domain_close(d);
    if (rc) {
        tool_error(c.prog, rc, "closing domain \"%s\"", dom);
        ec = ec ? ec : CLI_ERROR;
    }
out:
    free(content);
    return ec;
}
