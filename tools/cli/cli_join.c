/* Joining a domain as a participant, for pub, echo, hz and bw (see cli_join in cli.h).
 *
 * With --config the domain is opened with that file, which the library checks against the
 * running domain. Without it, with the embedded default: it adds nothing to a running domain
 * (its pool "default" is created only when a topic that uses it is first opened), uses the
 * running domain's own definition of every topic it has, and lets new topics be created on
 * the default pool.
 *
 * Subscribing commands wait, like `ros2 topic echo`: for a topic the domain does not have
 * yet, and with --wait for a domain that is not running yet; each wait is announced once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define LOOK_INTERVAL_NS (200 * 1000000ull) /* how often a wait looks again */

/* What an observer sees of the domain: is any participant alive, does it have `topic` (if
 * not NULL), and its topic name nearest to `topic` (a likely typo; "" if none). 0 with the
 * answers, or an error other than "no such domain". */
typedef struct look {
    bool alive, has_topic;
    char nearest[64];
} look;

static int look_at(const char *name, const char *topic, look *l)
{
    shmbus_domain *obs;
    memset(l, 0, sizeof *l);
    int rc = tool_observe(name, &obs);
    if (rc)
        return rc == SHMBUS_ENOENT ? 0 : rc;
    shmbus_snapshot *s = NULL;
    if (shmbus_snapshot_take(obs, &s) == 0) {
        l->alive = s->alive > 0;
        for (unsigned i = 0; topic && i < s->ntopics; i++)
            l->has_topic |= strcmp(s->topics[i].def.name, topic) == 0;
        const char *near = NULL;
        if (topic && !l->has_topic && s->ntopics)
            near = tool_nearest(topic, s->topics[0].def.name, sizeof s->topics[0],
                                s->ntopics);
        if (near)
            snprintf(l->nearest, sizeof l->nearest, "%s", near);
    }
    shmbus_snapshot_free(s);
    shmbus_domain_close(obs);
    return 0;
}

/* With --config: does the file allow `topic` (listed, or a default_topic for the rest)? */
static bool config_allows(const char *config, const char *topic)
{
    shmbus_config_summary *cs = calloc(1, sizeof *cs);
    bool ok = true;
    if (cs && shmbus_config_load(config, cs) == 0) {
        ok = cs->has_default_topic;
        for (unsigned i = 0; i < cs->ntopics; i++)
            ok |= strcmp(cs->topics[i].name, topic) == 0;
    }
    free(cs);
    return ok;
}

/* Wait until the domain runs (if `wait`) and has the topic. CLI_OK, CLI_STOPPED on a signal,
 * or the exit code having said why. */
static int await(const cli_common *c, const char *name, bool wait, const char *topic)
{
    bool said_domain = false, said_topic = false;
    for (;;) {
        look l;
        int rc = look_at(name, topic, &l);
        if (rc) {
            tool_error(c->prog, rc, "domain \"%s\"", name);
            return cli_exit_for(rc);
        }
        if (!l.alive && !wait) {
            fprintf(stderr, "%s: no domain \"%s\" is running (--wait waits for it)\n", c->prog,
                    name);
            return CLI_NOTFOUND;
        }
        if (!l.alive && !said_domain) {
            fprintf(stderr, "%s: waiting for domain \"%s\" to start\n", c->prog, name);
            said_domain = true;
        }
        if (l.alive && topic && !l.has_topic && !said_topic) {
            if (l.nearest[0])
                fprintf(stderr, "%s: waiting for topic \"%s\" in domain \"%s\" (did you mean "
                                "%s?)\n", c->prog, topic, name, l.nearest);
            else
                fprintf(stderr, "%s: waiting for topic \"%s\" in domain \"%s\"\n", c->prog,
                        topic, name);
            said_topic = true;
        }
        if (l.alive && (!topic || l.has_topic))
            return CLI_OK;
        tool_sleep_ns(LOOK_INTERVAL_NS);
        if (tool_stop_requested())
            return CLI_STOPPED;
    }
}

int cli_join(const cli_common *c, const char *pname, bool may_create, bool wait,
             const char *topic, shmbus_domain **d)
{
    char name[TOOL_NAME_MAX];
    int ec = cli_domain_name(c, name, NULL);
    if (ec)
        return ec;
    if (c->config && topic) {
        if (!config_allows(c->config, topic)) {
            fprintf(stderr, "%s: %s allows no topic \"%s\" in domain \"%s\"\n", c->prog,
                    c->config, topic, name);
            return CLI_NOTFOUND;
        }
        topic = NULL; /* the file decides which topics exist: joining creates it */
    }
    if (!may_create && (ec = await(c, name, wait, topic)) != CLI_OK)
        return ec;
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = c->config;
    o.name = pname;
    int rc = shmbus_domain_open(name, &o, d);
    if (rc) {
        tool_error(c->prog, rc, "domain \"%s\"", name);
        return cli_exit_for(rc);
    }
    if (!may_create) {
        /* The domain may have ended between the look and the join, and the join started a
         * new one: then nobody else is in it. Leave (which removes it) and say so. */
        shmbus_snapshot *s = NULL;
        bool alone = shmbus_snapshot_take(*d, &s) == 0 && s->alive <= 1;
        shmbus_snapshot_free(s);
        if (alone) {
            shmbus_domain_close(*d);
            fprintf(stderr, "%s: no domain \"%s\" is running\n", c->prog, name);
            return CLI_NOTFOUND;
        }
    }
    return CLI_OK;
}
