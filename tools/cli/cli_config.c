/* shmbus config check, shmbus clean: a configuration file on its own, and what a dead domain
 * left behind. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- config check ------------------------------------------------------------------------- */

static const char config_usage[] =
    "usage: shmbus config check FILE\n"
    "\n"
    "Validate a domain configuration (docs/config.md) without opening anything, and print\n"
    "it resolved: the pools with their size classes and the memory each needs, the topics\n"
    "with their settings, and the total shared memory the domain needs. An invalid file\n"
    "exits with 4 and a message naming the file, the JSON path and the reason.\n"
    "\n"
    "  --config FILE   same as the FILE operand\n"
    "  -h, --help      this help\n";

static const struct option config_opts[] = {CLI_COMMON_LONGOPTS, {0}};

static void print_topic(const shmbus_topic_def *t, int width)
{
    char a[32];
    printf("  %-*s  pool %s  history %" PRIu32 "  max_message_size %s  max_held %" PRIu32
           "  queue_depth %" PRIu32 "  delivery %s  on_full ",
           width, t->name[0] ? t->name : "(default)", t->pool, t->history,
           tool_fmt_size(a, sizeof a, t->max_message_size), t->max_held, t->queue_depth,
           tool_delivery_name(t->delivery));
    if (t->full_wait_ms > 0)
        printf("wait %" PRId32 " ms\n", t->full_wait_ms);
    else
        printf("fail\n");
}

static void print_summary(const char *file, const shmbus_config_summary *s)
{
    char a[32], b[32];
    printf("%s: valid\n", file);
    printf("domain %s  mode 0%03o  group %s  runtime_dir %s\n", s->domain, s->mode,
           s->gid >= 0 ? (snprintf(a, sizeof a, "%ld", s->gid), a) : "(creator's)",
           s->runtime_dir[0] ? s->runtime_dir : "(default: $SHMBUS_RUNTIME_DIR or /tmp)");
    printf("pools (%u):\n", s->npools);
    for (unsigned i = 0; i < s->npools; i++) {
        const shmbus_pool_def *p = &s->pools[i];
        printf("  %-16s memory %s (%" PRIu64 " bytes)\n", p->name, tool_fmt_size(a, sizeof a, p->bytes),
               p->bytes);
        for (unsigned c = 0; c < p->nclasses; c++)
            printf("    class %u: %" PRIu32 " blocks of %s\n", c, p->classes[c].count,
                   tool_fmt_size(b, sizeof b, p->classes[c].block_size));
    }
    int w = 9;
    for (unsigned i = 0; i < s->ntopics; i++)
        if ((int)strlen(s->topics[i].name) > w)
            w = (int)strlen(s->topics[i].name);
    printf("topics (%u):\n", s->ntopics);
    for (unsigned i = 0; i < s->ntopics; i++)
        print_topic(&s->topics[i], w);
    if (s->has_default_topic) {
        printf("unlisted topics:\n");
        print_topic(&s->default_topic, w);
    } else {
        printf("unlisted topics: refused (no default_topic)\n");
    }
    printf("total shared memory: %s (%" PRIu64 " bytes)\n", tool_fmt_size(a, sizeof a, s->total_bytes),
           s->total_bytes);
}

int cli_config(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus config"};
    if (argc < 2 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "-h") != 0 &&
                     strcmp(argv[1], "--help") != 0)) {
        if (argc >= 2)
            return cli_usage_error(&c, "unknown subcommand \"%s\" (expected: check)", argv[1]);
        return cli_usage_error(&c, "missing subcommand (expected: check FILE)");
    }
    if (strcmp(argv[1], "check") == 0) {
        argc--;
        argv++;
        c.prog = "shmbus config check";
    }
    int ec;
    if (!cli_parse(&c, argc, argv, "h", config_opts, config_usage, NULL, NULL, &ec))
        return ec;
    const char *file = c.config;
    if (optind < argc) {
        if (file)
            return cli_usage_error(&c, "give FILE once");
        file = argv[optind++];
    }
    if (!file)
        return cli_usage_error(&c, "missing FILE");
    if (optind < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind]);
    shmbus_config_summary s;
    int rc = shmbus_config_load(file, &s);
    if (rc) {
        /* the library's detail starts with the file's name */
        const char *detail = shmbus_last_error();
        if (detail[0] && strstr(detail, file))
            fprintf(stderr, "%s: %s\n", c.prog, detail);
        else
            tool_error(c.prog, rc, "%s", file);
        return CLI_CONFIG;
    }
    print_summary(file, &s);
    return CLI_OK;
}

/* ---- clean -------------------------------------------------------------------------------- */

static const char clean_usage[] =
    "usage: shmbus clean [DOMAIN] [--domain NAME] [--config FILE]\n"
    "\n"
    "Remove what a domain left behind (its shared-memory segments and runtime directory)\n"
    "when all its processes died without closing it. Refuses, with exit code 1, while a\n"
    "live process still uses the domain.\n"
    "\n" CLI_COMMON_HELP;

static const struct option clean_opts[] = {CLI_COMMON_LONGOPTS, {0}};

/* Print the live participants of a domain, to say who is using it. */
static void print_live(const char *name)
{
    shmbus_domain *d;
    shmbus_snapshot *s;
    if (tool_observe(name, &d) != 0)
        return;
    if (shmbus_snapshot_take(d, &s) == 0) {
        for (unsigned i = 0; i < s->nparticipants; i++)
            if (s->participants[i].alive)
                fprintf(stderr, "  in use by pid %d (%s)\n", s->participants[i].pid,
                        s->participants[i].name);
        shmbus_snapshot_free(s);
    }
    shmbus_domain_close(d);
}

/* Whether the shm directory has a file of the domain ("shmbus.<name>.*"). */
static bool has_files(const char *name)
{
    const char *env = getenv("SHMBUS_SHM_DIR");
    DIR *dir = opendir(env && *env ? env : "/dev/shm");
    if (!dir)
        return true; /* let shmbus_domain_remove say what is wrong */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", name);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(dir)) != NULL)
        found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(dir);
    return found;
}

int cli_clean(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus clean"};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", clean_opts, clean_usage, NULL, NULL, &ec))
        return ec;
    if (optind < argc) {
        if (c.domain)
            return cli_usage_error(&c, "give the domain once");
        c.domain = argv[optind++];
    }
    if (optind < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind]);
    char name[TOOL_NAME_MAX];
    if ((ec = cli_domain_name(&c, name, NULL)) != CLI_OK)
        return ec;
    if (!has_files(name)) { /* shmbus_domain_remove says 0 for a name that has nothing */
        fprintf(stderr, "%s: no domain \"%s\": nothing to remove\n", c.prog, name);
        return CLI_NOTFOUND;
    }
    int rc = shmbus_domain_remove(name, NULL);
    switch (rc) {
    case 0:
        printf("domain \"%s\" removed\n", name);
        return CLI_OK;
    case SHMBUS_EBUSY:
        fprintf(stderr, "%s: domain \"%s\" is in use by a live process; not removed "
                        "(stop its processes first)\n", c.prog, name);
        print_live(name);
        return CLI_ERROR;
    case SHMBUS_ENOENT:
        fprintf(stderr, "%s: no domain \"%s\": nothing to remove\n", c.prog, name);
        return CLI_NOTFOUND;
    case SHMBUS_EINVAL:
        return cli_usage_error(&c, "invalid domain name \"%s\" (1..31 of A-Z a-z 0-9 _ -)", name);
    default:
        tool_error(c.prog, rc, "domain \"%s\"", name);
        return CLI_ERROR;
    }
}
