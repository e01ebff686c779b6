/* The bridge's counters as JSON: what it publishes on its stats topic and writes to its
 * stats file (docs/bridge.md, "Counters"). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "bridge.h"

static void add_u64(cJSON *o, const char *key, const _Atomic uint64_t *v)
{
    cJSON_AddNumberToObject(o, key, (double)atomic_load_explicit(v, memory_order_relaxed));
}

static cJSON *route_json(const route *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dir", r->cfg->dir == BRIDGE_OUT ? "out" : "in");
    cJSON_AddStringToObject(o, "topic", r->cfg->topic);
    cJSON_AddStringToObject(o, "dds_topic", r->cfg->dds_topic);
    cJSON_AddStringToObject(o, "type", bridge_type_name(r->cfg->type));
    cJSON_AddNumberToObject(o, "matched", dds_session_matched(r));
    add_u64(o, "received", &r->c.received);
    add_u64(o, "forwarded", &r->c.forwarded);
    add_u64(o, "looped", &r->c.looped);
    cJSON *d = cJSON_AddObjectToObject(o, "dropped");
    add_u64(d, "busy", &r->c.busy);
    add_u64(d, "too_large", &r->c.too_large);
    add_u64(d, "refused", &r->c.refused);
    add_u64(d, "invalid", &r->c.invalid);
    add_u64(d, "pool_full", &r->c.pool_full);
    add_u64(d, "error", &r->c.errors);
    if (r->sub) { /* what the local bus sent that the bridge could not take in time */
        shmbus_sub_counters sc;
        if (shmbus_sub_stats(r->sub, &sc) == 0)
            cJSON_AddNumberToObject(o, "local_lost",
                                    (double)(sc.expired + sc.dropped + sc.overflow));
    }
    return o;
}

char *bridge_stats_json(const bridge *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bridge", b->cfg.name);
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddStringToObject(o, "domain", shmbus_domain_name(b->dom));
    cJSON_AddNumberToObject(o, "dds_domain_id", b->cfg.dds_domain_id);
    cJSON *arr = cJSON_AddArrayToObject(o, "routes");
    for (unsigned i = 0; i < b->nroutes; i++) cJSON_AddItemToArray(arr, route_json(&b->routes[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void bridge_note(const route *r, uint64_t count, const char *fmt, ...)
{
    if (r->b->quiet || (count & (count - 1)) != 0) return; /* 1, 2, 4, 8, ... */
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s %s: %s (%llu so far)\n", r->b->cfg.name,
            r->cfg->dir == BRIDGE_OUT ? "out" : "in", r->cfg->topic, line,
            (unsigned long long)count);
}
