/* Domain configuration, the tree side: bus_config_parse turns the text into a cJSON tree
 * (bus_config_syntax, config_syntax.c), then walks it, checking every key, type and limit. The walk
 * keeps the JSON path of the object it is in ("$.topics[1]"); an error about one of its keys
 * adds the key ("$.topics[1].pool"). The result is built in a scratch config and copied out
 * only when all of it is valid. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getgrnam_r, sysconf */
#endif
#include "config_parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_syntax.h"
#include "config_walk.h"
#include "shmpool.h"

#define MAX_MEMORY (1ull << 40) /* per pool and for all pools together, headers included */
#define MAX_GID 4294967294ll /* (gid_t)-1 means "no change" to chown */
#define RUNTIME_DIR_MAX 199

/* ---- permissions -------------------------------------------------------------------------- */

static int parse_mode(pctx *c, const cJSON *obj)
{
    const cJSON *it = cw_member(obj, "mode");
    long long v = 0;
    qbuf q;
    if (!it)
        return 0;
    if (cJSON_IsString(it) && it->valuestring) {
        const char *s = it->valuestring;
        bool ok = *s != '\0' && strlen(s) <= 4;
        for (const char *p = s; ok && *p; p++)
            ok = *p >= '0' && *p <= '7';
        if (ok)
            v = strtoll(s, NULL, 8);
        if (!ok || v > 0777)
            return cw_fail_at(c, "mode", "bad mode %s (expected an octal string such as \"0660\", "
                                      "at most 0777)", cw_quote(&q, s));
    } else if (cJSON_IsNumber(it)) {
        if (!cw_as_integer(it, &v) || v < 0 || v > 0777)
            return cw_fail_at(c, "mode", "bad mode %g: an integer mode is read as decimal and must "
                                      "be 0..511 (write octal modes as strings, e.g. \"0660\")",
                           it->valuedouble);
    } else {
        return cw_fail_at(c, "mode", "expected an octal string such as \"0660\", got %s",
                       cw_type_name(it));
    }
    if ((v & 0600) != 0600)
        return cw_fail_at(c, "mode", "mode 0%03llo does not let the owner read and write (needs "
                                  "0600)", v);
    c->cfg->mode = (unsigned)v;
    return 0;
}

/* 0 and *gid, SHMBUS_ENOENT (with the lookup's error in *e, 0 for "no such group"), ENOMEM. */
static int lookup_group(const char *name, long *gid, int *e)
{
    long sz = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t len = sz > 0 ? (size_t)sz : 1024;
    for (;;) {
        char *buf = malloc(len);
        if (!buf)
            return SHMBUS_ENOMEM;
        struct group gr, *res = NULL;
        *e = getgrnam_r(name, &gr, buf, len, &res);
        if (*e == 0 && res)
            *gid = (long)res->gr_gid;
        free(buf);
        if (*e != ERANGE || len >= (1u << 20))
            return *e == 0 && res ? 0 : SHMBUS_ENOENT;
        len *= 2;
    }
}

static int parse_group(pctx *c, const cJSON *obj)
{
    const cJSON *it = cw_member(obj, "group");
    bus_config *cfg = c->cfg;
    long long v;
    qbuf q;
    if (!it)
        return 0;
    if (cJSON_IsNumber(it)) {
        if (!cw_as_integer(it, &v) || v < 0 || v > MAX_GID)
            return cw_fail_at(c, "group", "bad gid %g (expected 0..%lld or a group name)",
                           it->valuedouble, MAX_GID);
        cfg->gid = (long)v;
        snprintf(cfg->group, sizeof cfg->group, "%lld", v);
        return 0;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return cw_fail_at(c, "group", "expected a group name or a numeric gid, got %s",
                       cw_type_name(it));
    const char *s = it->valuestring;
    if (*s == '\0' || strlen(s) >= sizeof cfg->group)
        return cw_fail_at(c, "group", "bad group name %s (1..%zu characters)", cw_quote(&q, s),
                       sizeof cfg->group - 1);
    long gid = -1;
    int e = 0, rc = lookup_group(s, &gid, &e);
    if (rc == SHMBUS_ENOMEM)
        return cw_fail_at(c, "group", "out of memory looking up the group");
    if (rc != 0) { /* like chown: a name first, then a number */
        bool digits = strlen(s) <= 10;
        for (const char *p = s; *p && digits; p++)
            digits = *p >= '0' && *p <= '9';
        if (!digits || strtoll(s, NULL, 10) > MAX_GID) {
            if (e != 0 && e != ENOENT && e != ESRCH)
                return cw_fail_at(c, "group", "unknown group %s (lookup failed: %s)", cw_quote(&q, s),
                               strerror(e));
            return cw_fail_at(c, "group", "unknown group %s", cw_quote(&q, s));
        }
        gid = (long)strtoll(s, NULL, 10);
    }
    cfg->gid = gid;
    snprintf(cfg->group, sizeof cfg->group, "%s", s);
    return 0;
}

static int parse_permissions(pctx *c, const cJSON *obj)
{
    static const char *const keys[] = {"mode", "group", NULL};
    int rc;
    if ((rc = want_object(c, obj)) || (rc = cw_check_keys(c, obj, keys, "mode, group")) ||
        (rc = parse_mode(c, obj)))
        return rc;
    return parse_group(c, obj);
}

/* ---- pools -------------------------------------------------------------------------------- */

/* A class's block size and count: within what the pool layer accepts (shmpool.h). */
static int parse_class(pctx *c, const cJSON *obj, shmbus_pool_class *cls)
{
    int rc;
    if ((rc = cw_require(c, obj, "block_size")) || (rc = cw_require(c, obj, "count")) ||
        (rc = cw_get_size(c, obj, "block_size", 1, SHMPOOL_MAX_BLOCK_SIZE, &cls->block_size)))
        return rc;
    return cw_get_u32(c, obj, "count", 1, SHMPOOL_MAX_BLOCKS, &cls->count);
}

static int parse_classes(pctx *c, const cJSON *arr, bus_pool_cfg *p)
{
    static const char *const keys[] = {"block_size", "count", NULL};
    int rc, n, i = 0;
    if ((rc = want_array(c, arr)))
        return rc;
    if ((n = cJSON_GetArraySize(arr)) < 1 || n > BUS_MAX_CLASSES)
        return cw_fail(c, "a pool needs 1 to %d classes (got %d)", BUS_MAX_CLASSES, n);
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        size_t mark = cw_path_index(c, i);
        if ((rc = want_object(c, it)) || (rc = cw_check_keys(c, it, keys, "block_size, count")) ||
            (rc = parse_class(c, it, &p->classes[i])))
            return rc;
        for (int j = 0; j < i; j++) {
            sbuf b;
            if (p->classes[j].block_size == p->classes[i].block_size)
                return cw_fail_at(c, "block_size", "duplicate block size %s (also in classes[%d])",
                               cw_size_text(&b, p->classes[i].block_size), j);
        }
        cw_path_restore(c, mark);
    }
    p->nclasses = (unsigned)n;
    for (unsigned a = 1; a < p->nclasses; a++) /* insertion sort by block size: n <= 8 */
        for (unsigned b = a; b && p->classes[b].block_size < p->classes[b - 1].block_size; b--) {
            shmbus_pool_class t = p->classes[b];
            p->classes[b] = p->classes[b - 1];
            p->classes[b - 1] = t;
        }
    return 0;
}

static int parse_pool(pctx *c, const cJSON *obj, unsigned idx)
{
    static const char *const keys[] = {"name", "block_size", "count", "classes", NULL};
    bus_pool_cfg *p = &c->cfg->pools[idx];
    int rc;
    if ((rc = want_object(c, obj)) ||
        (rc = cw_check_keys(c, obj, keys, "name, block_size, count, classes")) ||
        (rc = cw_require(c, obj, "name")) ||
        (rc = cw_get_name(c, obj, "name", BUS_NAME_POOL, p->name, sizeof p->name)))
        return rc;
    for (unsigned j = 0; j < idx; j++)
        if (strcmp(c->cfg->pools[j].name, p->name) == 0)
            return cw_fail_at(c, "name", "pool \"%s\" is already defined at $.pools[%u]", p->name,
                           j);
    const cJSON *classes = cw_member(obj, "classes");
    bool single = cw_member(obj, "block_size") || cw_member(obj, "count");
    if (classes && single)
        return cw_fail_at(c, "classes", "give either \"block_size\" and \"count\" or \"classes\", "
                                     "not both");
    if (!classes && !single)
        return cw_fail(c, "missing \"block_size\" and \"count\" (or \"classes\")");
    if (single) {
        p->nclasses = 1;
        return parse_class(c, obj, &p->classes[0]);
    }
    size_t mark = cw_path_key(c, "classes");
    rc = parse_classes(c, classes, p);
    cw_path_restore(c, mark);
    return rc;
}

static int parse_pools(pctx *c, const cJSON *arr)
{
    int rc, n, i = 0;
    uint64_t total = 0;
    sbuf a, b, d;
    if ((rc = want_array(c, arr)))
        return rc;
    if ((n = cJSON_GetArraySize(arr)) == 0)
        return cw_fail(c, "no pools (leave \"pools\" out to use the default pool)");
    if (n > BUS_MAX_POOLS)
        return cw_fail(c, "too many pools: %d (at most %d)", n, BUS_MAX_POOLS);
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        size_t mark = cw_path_index(c, i);
        if ((rc = parse_pool(c, it, (unsigned)i)))
            return rc;
        c->cfg->npools = (unsigned)i + 1;
        const bus_pool_cfg *p = &c->cfg->pools[i];
        uint64_t sz = 0;
        rc = shmpool_pool_size(p->classes, p->nclasses, &sz);
        if (rc == SHMBUS_ETOOBIG)
            return cw_fail(c, "pool \"%s\" needs far more than %s of shared memory", p->name,
                        cw_size_text(&b, MAX_MEMORY));
        if (rc)
            return cw_fail(c, "pool \"%s\" is rejected by the pool layer (%d)", p->name, rc);
        if (sz > MAX_MEMORY)
            return cw_fail(c, "pool \"%s\" needs %s of shared memory, %s over the limit of %s",
                        p->name, cw_size_text(&a, sz), cw_size_text(&d, sz - MAX_MEMORY),
                        cw_size_text(&b, MAX_MEMORY));
        total += sz;
        cw_path_restore(c, mark);
    }
    if (total > MAX_MEMORY)
        return cw_fail(c, "the pools need %s of shared memory in total, %s over the limit of %s",
                    cw_size_text(&a, total), cw_size_text(&d, total - MAX_MEMORY),
                    cw_size_text(&b, MAX_MEMORY));
    return 0;
}

/* ---- topics ------------------------------------------------------------------------------- */

static uint64_t largest_block(const bus_pool_cfg *p)
{
    return p->nclasses ? p->classes[p->nclasses - 1].block_size : 0; /* sorted */
}

static void topic_defaults(bus_topic_cfg *t, const bus_pool_cfg *p)
{
    snprintf(t->pool, sizeof t->pool, "%s", p->name);
    t->history = 4;
    t->max_message_size = largest_block(p);
    t->max_held = 8;
    t->full_wait_ms = 100;
    t->queue_depth = 16;
}

/* A listed topic (templ == false, the idx-th) or the default_topic template. */
static int parse_topic(pctx *c, const cJSON *obj, bool templ, unsigned idx, bus_topic_cfg *t)
{
    static const char *const keys[] = {"name",     "pool",    "history", "max_message_size",
                                       "max_held", "on_full", "wait_ms", "queue_depth",
                                       "delivery", NULL};
    static const char expected[] = "name, pool, history, max_message_size, max_held, on_full, "
                                   "wait_ms, queue_depth, delivery";
    const char *pool = NULL, *on_full = "wait", *delivery = "nng";
    qbuf q;
    sbuf a, b;
    int rc;
    if ((rc = want_object(c, obj)) ||
        (rc = cw_check_keys(c, obj, templ ? keys + 1 : keys, templ ? expected + 6 : expected)))
        return rc;
    if (!templ) {
        if ((rc = cw_require(c, obj, "name")) ||
            (rc = cw_get_name(c, obj, "name", BUS_NAME_TOPIC, t->name, sizeof t->name)))
            return rc;
        for (unsigned j = 0; j < idx; j++)
            if (strcmp(c->cfg->topics[j].name, t->name) == 0)
                return cw_fail_at(c, "name", "topic \"%s\" is already defined at $.topics[%u]",
                               t->name, j);
    }
    if ((rc = cw_require(c, obj, "pool")) || (rc = cw_get_string(c, obj, "pool", &pool)))
        return rc;
    const bus_pool_cfg *p = bus_config_pool(c->cfg, pool);
    if (!p)
        return cw_fail_at(c, "pool", "pool %s is not defined", cw_quote(&q, pool));
    topic_defaults(t, p);
    uint32_t wait = (uint32_t)t->full_wait_ms;
    if ((rc = cw_get_u32(c, obj, "history", 1, BUS_MAX_HISTORY, &t->history)) ||
        (rc = cw_get_u32(c, obj, "max_held", 1, BUS_MAX_HELD, &t->max_held)) ||
        (rc = cw_get_u32(c, obj, "queue_depth", 1, BUS_MAX_QUEUE_DEPTH, &t->queue_depth)) ||
        (rc = cw_get_size(c, obj, "max_message_size", 1, UINT64_MAX, &t->max_message_size)) ||
        (rc = cw_get_string(c, obj, "on_full", &on_full)) ||
        (rc = cw_get_string(c, obj, "delivery", &delivery)) ||
        (rc = cw_get_u32(c, obj, "wait_ms", 1, BUS_MAX_WAIT_MS, &wait)))
        return rc;
    if (t->max_message_size > largest_block(p))
        return cw_fail_at(c, "max_message_size", "%s is larger than the largest block of pool "
                                              "\"%s\" (%s)", cw_size_text(&a, t->max_message_size),
                       p->name, cw_size_text(&b, largest_block(p)));
    const shmbus_pool_class *fit = p->classes; /* the class its largest messages use */
    while (fit->block_size < t->max_message_size)
        fit++;
    if (t->history >= fit->count)
        return cw_fail_at(c, "history", "%u would keep all %u blocks of %s of pool \"%s\" held by "
                                     "one publisher (make history smaller or that class's count "
                                     "larger)",
                       t->history, fit->count, cw_size_text(&a, fit->block_size), p->name);
    if (strcmp(delivery, "shm") == 0)
        t->delivery = BUS_DELIVERY_SHM;
    else if (strcmp(delivery, "nng") == 0)
        t->delivery = BUS_DELIVERY_NNG;
    else
        return cw_fail_at(c, "delivery", "expected \"nng\" or \"shm\", got %s", cw_quote(&q, delivery));
    if (strcmp(on_full, "wait") == 0)
        t->full_wait_ms = (int32_t)wait;
    else if (strcmp(on_full, "fail") != 0)
        return cw_fail_at(c, "on_full", "expected \"fail\" or \"wait\", got %s", cw_quote(&q, on_full));
    else if (cw_member(obj, "wait_ms"))
        return cw_fail_at(c, "wait_ms", "only allowed with \"on_full\": \"wait\"");
    else
        t->full_wait_ms = 0;
    return 0;
}

static int parse_topics(pctx *c, const cJSON *arr)
{
    int rc, n, i = 0;
    if ((rc = want_array(c, arr)))
        return rc;
    if ((n = cJSON_GetArraySize(arr)) > BUS_MAX_TOPICS)
        return cw_fail(c, "too many topics: %d (at most %d; unlisted topics use \"default_topic\")",
                    n, BUS_MAX_TOPICS);
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        size_t mark = cw_path_index(c, i);
        if ((rc = parse_topic(c, it, false, (unsigned)i, &c->cfg->topics[i])))
            return rc;
        c->cfg->ntopics = (unsigned)i + 1;
        cw_path_restore(c, mark);
    }
    return 0;
}

static int parse_default_topic(pctx *c, const cJSON *obj)
{
    c->cfg->has_default_topic = true;
    return parse_topic(c, obj, true, 0, &c->cfg->default_topic);
}

/* ---- the document ------------------------------------------------------------------------- */

static int parse_root(pctx *c, const cJSON *root)
{
    static const char *const keys[] = {"domain", "permissions", "runtime_dir", "pools",
                                       "topics", "default_topic", NULL};
    bus_config *cfg = c->cfg;
    const char *dir = NULL;
    qbuf q;
    int rc;
    if ((rc = want_object(c, root)) ||
        (rc = cw_check_keys(c, root, keys,
                         "domain, permissions, runtime_dir, pools, topics, default_topic")) ||
        (rc = cw_get_name(c, root, "domain", BUS_NAME_DOMAIN, cfg->domain, sizeof cfg->domain)) ||
        (rc = cw_nested(c, root, "permissions", parse_permissions)) ||
        (rc = cw_get_string(c, root, "runtime_dir", &dir)))
        return rc;
    if (dir) {
        bool ok = dir[0] == '/' && strlen(dir) <= RUNTIME_DIR_MAX;
        for (const char *p = dir; *p && ok; p++)
            ok = (unsigned char)*p >= 0x20;
        if (!ok)
            return cw_fail_at(c, "runtime_dir", "bad runtime_dir %s (an absolute path of at most "
                                             "%d characters)", cw_quote(&q, dir), RUNTIME_DIR_MAX);
        snprintf(cfg->runtime_dir, sizeof cfg->runtime_dir, "%s", dir);
    }
    /* Pools before topics, whatever the order in the file: topics name pools. */
    if (!cw_member(root, "pools")) {
        bus_config def;
        bus_config_default(&def);
        cfg->npools = def.npools;
        memcpy(cfg->pools, def.pools, sizeof def.pools);
    }
    if ((rc = cw_nested(c, root, "pools", parse_pools)) ||
        (rc = cw_nested(c, root, "topics", parse_topics)) ||
        (rc = cw_nested(c, root, "default_topic", parse_default_topic)))
        return rc;
    if (!cfg->has_default_topic && cfg->ntopics == 0) { /* neither: the template on pool 0 */
        bus_config def;
        bus_config_default(&def);
        if (strcmp(cfg->pools[0].name, def.pools[0].name) == 0 &&
            cfg->pools[0].nclasses == def.pools[0].nclasses) {
            cfg->default_topic = def.default_topic; /* the embedded default's own template */
        } else {
            topic_defaults(&cfg->default_topic, &cfg->pools[0]);
            /* keep a block of its largest class free for the next loan */
            uint32_t n = cfg->pools[0].classes[cfg->pools[0].nclasses - 1].count;
            if (cfg->default_topic.history >= n)
                cfg->default_topic.history = n > 1 ? n - 1 : 1;
        }
        cfg->has_default_topic = true;
    }
    return 0;
}

int bus_config_parse(const char *text, size_t len, const char *source, bus_config *cfg,
                     char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!source)
        source = "<config>";
    if (!cfg || (!text && len)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: invalid argument", source);
        return SHMBUS_EINVAL;
    }
    cJSON *root = NULL;
    int rc = bus_config_syntax(text, len, source, &root, err, errlen);
    if (rc)
        return rc;
    bus_config *tmp = calloc(1, sizeof *tmp);
    if (!tmp) {
        cJSON_Delete(root);
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", source);
        return SHMBUS_ENOMEM;
    }
    snprintf(tmp->domain, sizeof tmp->domain, "default");
    tmp->mode = 0600;
    tmp->gid = -1;
    pctx c = {.src = source, .err = err, .errlen = errlen, .path = "$", .plen = 1, .cfg = tmp};
    rc = parse_root(&c, root);
    if (rc == 0)
        *cfg = *tmp;
    free(tmp);
    cJSON_Delete(root);
    return rc;
}
