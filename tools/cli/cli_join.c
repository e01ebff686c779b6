/* Joining a domain as a participant, for pub, echo, hz and bw (see cli_join in cli.h).
 *
 * With --config the domain is opened with that file, which the library checks against the
 * running domain. Without it, with the embedded default: it adds nothing to a running domain
 * (its pool "default" is created only when a topic that uses it is first opened), uses the
 * running domain's own definition of every topic it has, and lets new topics be created on
 * the default pool. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Is a domain of that name running (any participant alive), and does it have `topic` (if
 * not NULL)? 0 with the answers, or an error other than "no such domain". */
static int running(const char *name, const char *topic, bool *alive, bool *has_topic)
{
    shmbus_domain *obs;
    *alive = *has_topic = false;
    int rc = tool_observe(name, &obs);
    if (rc)
        return rc == SHMBUS_ENOENT ? 0 : rc;
    shmbus_snapshot *s = NULL;
    if (shmbus_snapshot_take(obs, &s) == 0) {
        *alive = s->alive > 0;
        for (unsigned i = 0; topic && i < s->ntopics; i++)
            *has_topic |= strcmp(s->topics[i].def.name, topic) == 0;
    }
    shmbus_snapshot_free(s);
    shmbus_domain_close(obs);
    return 0;
}

int cli_join(const cli_common *c, const char *pname, bool may_create, const char *topic,
             shmbus_domain **d)
{
    char name[TOOL_NAME_MAX];
    int ec = cli_domain_name(c, name, NULL);
    if (ec)
        return ec;
    if (c->config)
        topic = NULL; /* the file decides which topics exist */
    bool alive = true, has_topic = true;
    int rc = may_create && !topic ? 0 : running(name, topic, &alive, &has_topic);
    if (rc) {
        tool_error(c->prog, rc, "domain \"%s\"", name);
        return cli_exit_for(rc);
    }
    if (!alive && !may_create) {
        fprintf(stderr, "%s: no domain \"%s\" is running\n", c->prog, name);
        return CLI_NOTFOUND;
    }
    if (alive && topic && !has_topic) {
        fprintf(stderr, "%s: domain \"%s\" has no topic \"%s\" (give --config to create it)\n",
                c->prog, name, topic);
        return CLI_NOTFOUND;
    }
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = c->config;
    o.name = pname;
    rc = shmbus_domain_open(name, &o, d);
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
