/* Parsing of the bridge's JSON configuration (bridge_config.h, docs/bridge.md). */
#include "bridge_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The walk: the file's name, the JSON path of the current member, the error buffer. */
typedef struct walk {
    const char *src;
    char path[256];
    char *err;
    size_t errlen;
} walk;

static int fail(walk *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(walk *w, const char *key, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s: %s%s%s: %s", w->src, w->path, key ? "." : "", key ? key : "",
             why);
    return -1;
}

/* Extend the path by ".key" or "[i]"; returns the old length to restore. */
static size_t push_key(walk *w, const char *key)
{
    size_t n = strlen(w->path);
    snprintf(w->path + n, sizeof w->path - n, ".%s", key);
    return n;
}
static size_t push_index(walk *w, int i)
{
    size_t n = strlen(w->path);
    snprintf(w->path + n, sizeof w->path - n, "[%d]", i);
    return n;
}
static void pop(walk *w, size_t n) { w->path[n] = '\0'; }

static const char *type_of(const cJSON *it)
{
    if (cJSON_IsObject(it)) return "an object";
    if (cJSON_IsArray(it)) return "an array";
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsNull(it)) return "null";
    return "a number";
}

/* Every member of obj is one of allowed, and none is given twice. */
static int check_keys(walk *w, const cJSON *obj, const char *const *allowed)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool known = false;
        for (const char *const *a = allowed; *a; a++) known = known || strcmp(*a, it->string) == 0;
        if (!known) {
            char list[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         a == allowed ? "" : ", ", *a);
            return fail(w, it->string, "unknown key (expected one of: %s)", list);
        }
        for (const cJSON *j = obj->child; j != it; j = j->next)
            if (strcmp(j->string, it->string) == 0) return fail(w, it->string, "key given twice");
    }
    return 0;
}

static int get_string(walk *w, const cJSON *obj, const char *key, char *out, size_t outlen,
                      bool nonempty)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (!cJSON_IsString(it)) return fail(w, key, "expected a string, got %s", type_of(it));
    size_t n = strlen(it->valuestring);
    if (n >= outlen) return fail(w, key, "too long (%zu characters, at most %zu)", n, outlen - 1);
    if (nonempty && n == 0) return fail(w, key, "must not be empty");
    memcpy(out, it->valuestring, n + 1);
    return 0;
}

static int get_uint(walk *w, const cJSON *obj, const char *key, double min, double max,
                    uint32_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) return fail(w, key, "expected an integer, got %s", type_of(it));
    double v = it->valuedouble;
    if (v != (double)(long long)v) return fail(w, key, "expected an integer, got %g", v);
    if (v < min || v > max) return fail(w, key, "%g is out of range %.0f..%.0f", v, min, max);
    *out = (uint32_t)v;
    return 0;
}

static int get_bool(walk *w, const cJSON *obj, const char *key, bool *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (!cJSON_IsBool(it)) return fail(w, key, "expected true or false, got %s", type_of(it));
    *out = cJSON_IsTrue(it);
    return 0;
}

/* A size: bytes as an integer, or a string "<integer><unit>" with unit B, KiB, MiB, GiB. */
static int get_size(walk *w, const cJSON *obj, const char *key, uint64_t max, uint64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    uint64_t v;
    if (cJSON_IsNumber(it)) {
        if (it->valuedouble < 1 || it->valuedouble != (double)(long long)it->valuedouble)
            return fail(w, key, "expected a positive integer number of bytes");
        v = (uint64_t)it->valuedouble;
    } else if (cJSON_IsString(it)) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(it->valuestring, &end, 10);
        static const struct {
            const char *unit;
            unsigned shift;
        } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
        int shift = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(end, units[i].unit) == 0) shift = (int)units[i].shift;
        if (end == it->valuestring || errno || shift < 0 || n == 0 || n > (max >> shift))
            return fail(w, key, "\"%s\" is not a size from 1 B to %llu MiB (e.g. \"32MiB\")",
                        it->valuestring, (unsigned long long)(max >> 20));
        v = (uint64_t)n << shift;
    } else {
        return fail(w, key, "expected a size (bytes or a string such as \"32MiB\"), got %s",
                    type_of(it));
    }
    if (v > max)
        return fail(w, key, "%llu bytes is more than the limit of %llu", (unsigned long long)v,
                    (unsigned long long)max);
    *out = v;
    return 0;
}

/* Member key of obj that must be an object (or absent: *out NULL). */
static int get_object(walk *w, const cJSON *obj, const char *key, const cJSON **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it) return 0;
    if (!cJSON_IsObject(it)) return fail(w, key, "expected an object, got %s", type_of(it));
    *out = it;
    return 0;
}

/* shmbus topic names: 1..63 of A-Z a-z 0-9 . _ - /, not starting with / or . */
static bool topic_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '/' || s[0] == '.') return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == '/'))
            return false;
    return true;
}

static int parse_qos(walk *w, const cJSON *q, bridge_qos *qos)
{
    static const char *const keys[] = {"reliability", "depth", "max_blocking_ms", NULL};
    if (check_keys(w, q, keys)) return -1;
    char rel[32] = "";
    if (get_string(w, q, "reliability", rel, sizeof rel, true)) return -1;
    if (rel[0]) {
        if (strcmp(rel, "reliable") == 0)
            qos->reliable = true;
        else if (strcmp(rel, "best_effort") == 0)
            qos->reliable = false;
        else
            return fail(w, "reliability", "\"%s\" is neither \"best_effort\" nor \"reliable\"",
                        rel);
    }
    if (get_uint(w, q, "depth", 1, 1000, &qos->depth)) return -1;
    return get_uint(w, q, "max_blocking_ms", 0, 10000, &qos->max_blocking_ms);
}

static int parse_route(walk *w, const cJSON *r, bridge_dir dir, bridge_route *rt)
{
    static const char *const out_keys[] = {
        "topic", "type", "dds_topic", "frame_id", "qos", "max_sample_size", NULL};
    static const char *const in_keys[] = {"topic", "type", "dds_topic", "qos", "checksum", NULL};
    if (!cJSON_IsObject(r)) return fail(w, NULL, "expected an object, got %s", type_of(r));
    if (check_keys(w, r, dir == BRIDGE_OUT ? out_keys : in_keys)) return -1;
    memset(rt, 0, sizeof *rt);
    rt->dir = dir;
    if (!cJSON_GetObjectItemCaseSensitive(r, "topic"))
        return fail(w, "topic", "required key missing");
    if (get_string(w, r, "topic", rt->topic, sizeof rt->topic, true)) return -1;
    if (!topic_name_ok(rt->topic))
        return fail(w, "topic",
                    "\"%s\" is not a shmbus topic name (1..63 of A-Z a-z 0-9 . _ - /, "
                    "not starting with / or .)",
                    rt->topic);
    char type[32] = "message";
    if (get_string(w, r, "type", type, sizeof type, true)) return -1;
    if (strcmp(type, "image") == 0)
        rt->type = BRIDGE_TYPE_IMAGE;
    else if (strcmp(type, "message") == 0)
        rt->type = BRIDGE_TYPE_MESSAGE;
    else
        return fail(w, "type",
                    "\"%s\" is neither \"image\" (sensor_msgs/msg/Image) nor "
                    "\"message\" (shmbus::msg::dds_::Message_)",
                    type);
    memcpy(rt->dds_topic, "rt/", 3); /* the ROS 2 prefix; the topic fits (63 < 252) */
    memcpy(rt->dds_topic + 3, rt->topic, strlen(rt->topic) + 1);
    if (get_string(w, r, "dds_topic", rt->dds_topic, sizeof rt->dds_topic, true)) return -1;
    if (get_string(w, r, "frame_id", rt->frame_id, sizeof rt->frame_id, false)) return -1;
    if (rt->type == BRIDGE_TYPE_MESSAGE && cJSON_GetObjectItemCaseSensitive(r, "frame_id"))
        return fail(w, "frame_id", "only for \"type\": \"image\"");
    /* Defaults: ROS 2's sensor-data profile for images, its default profile otherwise. */
    bool image = rt->type == BRIDGE_TYPE_IMAGE;
    rt->qos = (bridge_qos){.reliable = !image, .depth = image ? 5 : 10, .max_blocking_ms = 100};
    const cJSON *q;
    if (get_object(w, r, "qos", &q)) return -1;
    if (q) {
        size_t mark = push_key(w, "qos");
        int rc = parse_qos(w, q, &rt->qos);
        pop(w, mark);
        if (rc) return -1;
    }
    rt->max_sample_size = 64ull << 20;
    if (get_size(w, r, "max_sample_size", 1ull << 30, &rt->max_sample_size)) return -1;
    rt->checksum = false;
    if (get_bool(w, r, "checksum", &rt->checksum)) return -1;
    if (rt->checksum && !image) return fail(w, "checksum", "only for \"type\": \"image\"");
    return 0;
}

static int parse_routes(walk *w, const cJSON *root, const char *key, bridge_dir dir,
                        bridge_config *c)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) return fail(w, key, "expected an array, got %s", type_of(arr));
    size_t mark = push_key(w, key);
    int i = 0, rc = 0;
    for (const cJSON *r = arr->child; r && rc == 0; r = r->next, i++) {
        size_t m2 = push_index(w, i);
        if (c->nroutes == BRIDGE_MAX_ROUTES) {
            rc = fail(w, NULL, "too many routes (at most %d in all)", BRIDGE_MAX_ROUTES);
        } else if ((rc = parse_route(w, r, dir, &c->routes[c->nroutes])) == 0) {
            const bridge_route *n = &c->routes[c->nroutes];
            for (unsigned j = 0; j < c->nroutes && rc == 0; j++)
                if (c->routes[j].dir == dir && strcmp(c->routes[j].topic, n->topic) == 0)
                    rc = fail(w, "topic", "\"%s\" is already routed %s", n->topic, key);
            c->nroutes++;
        }
        pop(w, m2);
    }
    pop(w, mark);
    return rc;
}

static int parse_root(walk *w, const cJSON *root, bridge_config *c)
{
    static const char *const keys[] = {"shmbus", "dds", "stats", "out", "in", NULL};
    static const char *const shm_keys[] = {"domain", "config", "name", NULL};
    static const char *const dds_keys[] = {"domain_id", "cyclone_config", NULL};
    static const char *const stats_keys[] = {"topic", "file", "interval_ms", NULL};
    if (!cJSON_IsObject(root)) return fail(w, NULL, "expected an object, got %s", type_of(root));
    if (check_keys(w, root, keys)) return -1;
    const cJSON *o;
    size_t mark;
    int rc = 0;
    if (get_object(w, root, "shmbus", &o)) return -1;
    if (o) {
        mark = push_key(w, "shmbus");
        rc = check_keys(w, o, shm_keys) ||
             get_string(w, o, "domain", c->domain, sizeof c->domain, true) ||
             get_string(w, o, "config", c->domain_config, sizeof c->domain_config, true) ||
             get_string(w, o, "name", c->name, sizeof c->name, true);
        pop(w, mark);
        if (rc) return -1;
    }
    if (get_object(w, root, "dds", &o)) return -1;
    if (o) {
        mark = push_key(w, "dds");
        rc = check_keys(w, o, dds_keys) || get_uint(w, o, "domain_id", 0, 230, &c->dds_domain_id) ||
             get_string(w, o, "cyclone_config", c->cyclone_config, sizeof c->cyclone_config, true);
        pop(w, mark);
        if (rc) return -1;
    }
    if (get_object(w, root, "stats", &o)) return -1;
    if (o) {
        mark = push_key(w, "stats");
        rc = check_keys(w, o, stats_keys) ||
             get_string(w, o, "topic", c->stats_topic, sizeof c->stats_topic, false) ||
             get_string(w, o, "file", c->stats_file, sizeof c->stats_file, false) ||
             get_uint(w, o, "interval_ms", 10, 60000, &c->stats_interval_ms);
        if (rc == 0 && c->stats_topic[0] && !topic_name_ok(c->stats_topic))
            rc = fail(w, "topic", "\"%s\" is not a shmbus topic name", c->stats_topic);
        pop(w, mark);
        if (rc) return -1;
    }
    if (parse_routes(w, root, "out", BRIDGE_OUT, c) || parse_routes(w, root, "in", BRIDGE_IN, c))
        return -1;
    if (c->nroutes == 0) return fail(w, NULL, "no routes: give \"out\" or \"in\" topics");
    return 0;
}

int bridge_config_parse(const char *text, const char *src, bridge_config *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "shmbus-bridge");
    snprintf(out->stats_topic, sizeof out->stats_topic, "shmbus-bridge/stats");
    out->stats_interval_ms = 1000;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (!root) {
        int line = 1, col = 1;
        for (const char *p = text; end && p < end && *p; p++, col++)
            if (*p == '\n') line++, col = 0;
        snprintf(err, errlen, "%s:%d:%d: syntax error (not valid JSON)", src, line, col);
        return -1;
    }
    walk w = {.src = src, .path = "$", .err = err, .errlen = errlen};
    int rc = parse_root(&w, root, out);
    cJSON_Delete(root);
    return rc;
}

/* A file named relative to the bridge file is taken from the bridge file's folder. For the
 * Cyclone configuration (as_uri), inline XML ("<...") and URIs ("file://...") stay as they
 * are and a plain path becomes a file:// URI. */
static int resolve(const char *src, char *val, size_t cap, bool as_uri, const char *where,
                   char *err, size_t errlen)
{
    if (!val[0] || (as_uri && (val[0] == '<' || strstr(val, "://")))) return 0;
    const char *slash = strrchr(src, '/');
    char orig[4096];
    snprintf(orig, sizeof orig, "%s", val);
    int n;
    if (orig[0] == '/' || !slash)
        n = snprintf(val, cap, "%s%s", as_uri ? "file://" : "", orig);
    else
        n = snprintf(val, cap, "%s%.*s/%s", as_uri ? "file://" : "", (int)(slash - src), src, orig);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "%s: %s: path too long", src, where);
        return -1;
    }
    return 0;
}

int bridge_config_load(const char *path, bridge_config *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = cap > (1u << 22) ? NULL : realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: too large for a configuration file", path);
                return -1;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, 4096, f);
        len += n;
        if (n == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    text[len] = '\0';
    if (bad) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = bridge_config_parse(text, path, out, err, errlen);
    free(text);
    if (rc == 0)
        rc = resolve(path, out->domain_config, sizeof out->domain_config, false, "$.shmbus.config",
                     err, errlen);
    if (rc == 0)
        rc = resolve(path, out->cyclone_config, sizeof out->cyclone_config, true,
                     "$.dds.cyclone_config", err, errlen);
    return rc;
}

const char *bridge_type_name(bridge_type t) { return t == BRIDGE_TYPE_IMAGE ? "image" : "message"; }
