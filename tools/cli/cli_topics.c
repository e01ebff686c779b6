/* shmbus list, shmbus info: what a running domain has, read from one snapshot taken as an
 * observer (reads only: nothing in the domain changes). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "snapdiff.h"

static const char list_usage[] =
    "usage: shmbus list [--domain NAME] [--config FILE]\n"
    "\n"
    "The topics of a running domain with their publisher and subscriber counts.\n"
    "\n" CLI_COMMON_HELP;

static const struct option list_opts[] = {CLI_COMMON_LONGOPTS, {0}};

int cli_list(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus list"};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", list_opts, list_usage, NULL, NULL, &ec))
        return ec;
    if (optind < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind]);
    shmbus_domain *d;
    shmbus_snapshot *s;
    if ((ec = cli_observe(&c, &d, &s)) != CLI_OK)
        return ec;
    size_t w = 5;
    for (unsigned i = 0; i < s->ntopics; i++)
        if (strlen(s->topics[i].def.name) > w)
            w = strlen(s->topics[i].def.name);
    printf("%-*s  %4s  %4s  %s\n", (int)w, "TOPIC", "PUBS", "SUBS", "POOL");
    for (unsigned i = 0; i < s->ntopics; i++) {
        const shmbus_topic_info *t = &s->topics[i];
        printf("%-*s  %4u  %4u  %s\n", (int)w, t->def.name, t->npubs, t->nsubs, t->def.pool);
    }
    shmbus_snapshot_free(s);
    shmbus_domain_close(d);
    return CLI_OK;
}

/* ---- info --------------------------------------------------------------------------------- */

static const char info_usage[] =
    "usage: shmbus info TOPIC [--domain NAME] [--config FILE]\n"
    "\n"
    "A topic's definition, its publishers and subscribers (pid, process name, alive or\n"
    "dead) and their counters since they were opened.\n"
    "\n" CLI_COMMON_HELP;

static const struct option info_opts[] = {CLI_COMMON_LONGOPTS, {0}};

static void print_def(const shmbus_topic_info *t, const char *domain)
{
    char a[32], b[32];
    printf("topic %s (domain %s)\n", t->def.name, domain);
    printf("  pool %s, history %" PRIu32 ", max_message_size %s, max_held %" PRIu32
           ", queue_depth %" PRIu32 ", delivery %s, ",
           t->def.pool, t->def.history, tool_fmt_size(a, sizeof a, t->def.max_message_size),
           t->def.max_held, t->def.queue_depth, tool_delivery_name(t->def.delivery));
    if (t->def.full_wait_ms > 0)
        printf("on_full wait %s\n", tool_fmt_ns(b, sizeof b, (uint64_t)t->def.full_wait_ms * 1000000));
    else
        printf("on_full fail\n");
}

int cli_info(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus info"};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", info_opts, info_usage, NULL, NULL, &ec))
        return ec;
    if (optind >= argc)
        return cli_usage_error(&c, "missing TOPIC");
    if (optind + 1 < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind + 1]);
    const char *topic = argv[optind];
    shmbus_domain *d;
    shmbus_snapshot *s;
    if ((ec = cli_observe(&c, &d, &s)) != CLI_OK)
        return ec;
    const shmbus_topic_info *t = sd_find_topic(s, topic);
    if (!t) {
        const char *near = s->ntopics ? tool_nearest(topic, s->topics[0].def.name,
                                                     sizeof s->topics[0], s->ntopics)
                                      : NULL;
        fprintf(stderr, "%s: no topic \"%s\" in domain \"%s\"%s%s%s\n", c.prog, topic,
                s->domain, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
        ec = CLI_NOTFOUND;
        goto out;
    }
    char a[32], b[32];
    print_def(t, s->domain);
    printf("publishers (%u):\n", t->npubs);
    for (unsigned i = 0; i < t->npubs; i++) {
        const shmbus_pub_info *p = &t->pubs[i];
        printf("  pid %d %s (%s)  id %" PRIu64 "  published %" PRIu64 "  bytes %s  last_seq %" PRIu64
               "  loan_failures %" PRIu64 "\n",
               p->pid, p->name, p->alive ? "alive" : "dead", p->id, p->published,
               tool_fmt_size(a, sizeof a, p->bytes), p->last_seq, p->loan_failures);
    }
    printf("subscribers (%u):\n", t->nsubs);
    for (unsigned i = 0; i < t->nsubs; i++) {
        const shmbus_sub_info *u = &t->subs[i];
        sd_rates r;
        sd_sub_rates(NULL, s, t, u, &r); /* latency over the subscriber's whole life */
        printf("  pid %d %s (%s)  id %" PRIu64 "  received %" PRIu64 "  bytes %s  expired %" PRIu64
               "  dropped %" PRIu64 "  overflow %" PRIu64 "  invalid %" PRIu64 "  held %" PRIu64
               "/%" PRIu64,
               u->pid, u->name, u->alive ? "alive" : "dead", u->id, u->received,
               tool_fmt_size(a, sizeof a, u->bytes), u->expired, u->dropped, u->overflow,
               u->invalid, u->held, u->max_held);
        if (r.has_latency)
            printf("  latency p50 %s p99 %s", tool_fmt_ns(a, sizeof a, r.p50_ns),
                   tool_fmt_ns(b, sizeof b, r.p99_ns));
        printf("\n");
    }
out:
    shmbus_snapshot_free(s);
    shmbus_domain_close(d);
    return ec;
}
