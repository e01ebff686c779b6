/* The JSON walk of configuration parsing: messages, the JSON path, typed members. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config_walk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_size.h"

/* ---- text for messages ------------------------------------------------------------------ */

/* Text from the file, quoted and escaped for a one-line message, cut after 40 bytes. */
const char *cw_quote(qbuf *q, const char *s) { return bus_name_quote(q->s, sizeof q->s, s); }

/* "8 MiB" when exact, else the bytes and an approximation. */
const char *cw_size_text(sbuf *b, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (u < 6 && v >= (1ull << (10 * (u + 1))))
        u++;
    uint64_t m = 1ull << (10 * u);
    if (v % m == 0)
        snprintf(b->s, sizeof b->s, "%llu %s", (unsigned long long)(v / m), units[u]);
    else
        snprintf(b->s, sizeof b->s, "%llu B (%.2f %s)", (unsigned long long)v,
                 (double)v / (double)m, units[u]);
    return b->s;
}

const char *cw_type_name(const cJSON *it)
{
    return cJSON_IsString(it)   ? "a string"
           : cJSON_IsNumber(it) ? "a number"
           : cJSON_IsBool(it)   ? "a boolean"
           : cJSON_IsNull(it)   ? "null"
           : cJSON_IsArray(it)  ? "an array"
           : cJSON_IsObject(it) ? "an object"
                                : "an invalid value";
}

/* ---- the JSON path and errors ------------------------------------------------------------- */
static size_t cw_path_append(pctx *c, int n)
{
    if (n > 0)
        c->plen += (size_t)n;
    if (c->plen >= sizeof c->path)
        c->plen = sizeof c->path - 1; /* truncated: only a long unknown key gets here */
    return c->plen;
}

/* Append ".key" (["key"] when it is not an identifier); returns the length to restore. */
size_t cw_path_key(pctx *c, const char *key)
{
    size_t mark = c->plen;
    bool ident = key[0] != '\0' && !(key[0] >= '0' && key[0] <= '9');
    for (const char *k = key; *k && ident; k++)
        ident = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_' ||
                (*k >= '0' && *k <= '9');
    qbuf q;
    char *end = c->path + c->plen;
    size_t room = sizeof c->path - c->plen;
    cw_path_append(c, ident ? snprintf(end, room, ".%s", key)
                         : snprintf(end, room, "[%s]", cw_quote(&q, key)));
    return mark;
}

size_t cw_path_index(pctx *c, int i)
{
    size_t mark = c->plen;
    cw_path_append(c, snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%d]", i));
    return mark;
}

void cw_path_restore(pctx *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

/* "<source>: <path>[.key]: <reason>", always one line. */
static int cw_vfail(pctx *c, const char *key, const char *fmt, va_list ap)
{
    size_t mark = key ? cw_path_key(c, key) : c->plen;
    if (c->err && c->errlen) {
        int n = snprintf(c->err, c->errlen, "%s: %s: ", c->src, c->path);
        if (n >= 0 && (size_t)n < c->errlen)
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    }
    cw_path_restore(c, mark);
    return SHMBUS_ECONFIG;
}

/* An error about the current object, or about its member `key`. */
int cw_fail(pctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cw_vfail(c, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int cw_fail_at(pctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cw_vfail(c, key, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- objects and typed members ---------------------------------------------------------- */
const cJSON *cw_member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int cw_want(pctx *c, const cJSON *it, bool ok, const char *what)
{
    return ok ? 0 : cw_fail(c, "expected %s, got %s", what, cw_type_name(it));
}

/* Every key of obj is one of `allowed` (also listed in `expected`) and appears once. */
int cw_check_keys(pctx *c, const cJSON *obj, const char *const *allowed, const char *expected)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            return cw_fail_at(c, key, "unknown key (expected one of: %s)", expected);
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, key) == 0) /* allowed keys only: at most 8 */
                return cw_fail_at(c, key, "duplicate key");
    }
    return 0;
}

int cw_require(pctx *c, const cJSON *obj, const char *key)
{
    return cw_member(obj, key) ? 0 : cw_fail(c, "missing key \"%s\"", key);
}

/* A number with no fraction, kept exact: JSON numbers are doubles, integers here are small. */
bool cw_as_integer(const cJSON *it, long long *out)
{
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || !(d >= -9.0e15 && d <= 9.0e15)) /* also NaN, infinities */
        return false;
    long long v = (long long)d;
    if ((double)v != d)
        return false;
    *out = v;
    return true;
}

/* The members below are optional: when obj has no `key`, *out is left as it is. */
int cw_get_string(pctx *c, const cJSON *obj, const char *key, const char **out)
{
    const cJSON *it = cw_member(obj, key);
    if (it && (!cJSON_IsString(it) || !it->valuestring))
        return cw_fail_at(c, key, "expected a string, got %s", cw_type_name(it));
    if (it)
        *out = it->valuestring;
    return 0;
}

int cw_get_u32(pctx *c, const cJSON *obj, const char *key, long long min, long long max,
               uint32_t *out)
{
    const cJSON *it = cw_member(obj, key);
    long long v;
    if (!it)
        return 0;
    if (!cJSON_IsNumber(it))
        return cw_fail_at(c, key, "expected an integer, got %s", cw_type_name(it));
    if (!cw_as_integer(it, &v)) {
        if (it->valuedouble >= -9.0e15 && it->valuedouble <= 9.0e15)
            return cw_fail_at(c, key, "expected an integer, got %g", it->valuedouble);
        return cw_fail_at(c, key, "must be between %lld and %lld", min, max);
    }
    if (v < min || v > max)
        return cw_fail_at(c, key, "must be between %lld and %lld (got %lld)", min, max, v);
    *out = (uint32_t)v;
    return 0;
}

/* A size: an integer number of bytes or a string with a unit (bus_parse_size). */
int cw_get_size(pctx *c, const cJSON *obj, const char *key, uint64_t min, uint64_t max,
                uint64_t *out)
{
    const cJSON *it = cw_member(obj, key);
    long long v;
    uint64_t sz;
    sbuf a, b, d;
    qbuf q;
    char why[160];
    if (!it)
        return 0;
    if (cJSON_IsNumber(it)) {
        if (!cw_as_integer(it, &v) || v < 0) {
            if (it->valuedouble > 9.0e15)
                return cw_fail_at(c, key, "size %g is too large", it->valuedouble);
            return cw_fail_at(c, key, "a size must be a whole, non-negative number of bytes");
        }
        sz = (uint64_t)v;
    } else if (cJSON_IsString(it) && it->valuestring) {
        if (bus_parse_size(it->valuestring, &sz, why, sizeof why) != 0)
            return cw_fail_at(c, key, "bad size %s: %s", cw_quote(&q, it->valuestring), why);
    } else {
        return cw_fail_at(c, key, "expected a size (a string such as \"8MiB\" or a number of "
                               "bytes), got %s", cw_type_name(it));
    }
    if (sz < min && max == UINT64_MAX)
        return cw_fail_at(c, key, "size %s is below the minimum of %s", cw_size_text(&a, sz),
                       cw_size_text(&b, min));
    if (sz < min || sz > max)
        return cw_fail_at(c, key, "size %s is out of range (%s .. %s)", cw_size_text(&a, sz),
                       cw_size_text(&b, min), cw_size_text(&d, max));
    *out = sz;
    return 0;
}


/* Domain names have no '.': the files of domain "a" start with "shmbus.a.", which must not
 * also be the start of another domain's files (docs/ownership.md). */
/* A name of the given kind, copied into out. */
int cw_get_name(pctx *c, const cJSON *obj, const char *key, enum bus_name_kind kind, char *out,
                size_t outlen)
{
    const char *s = NULL;
    int rc = cw_get_string(c, obj, key, &s);
    char why[BUS_ERR_MAX / 2];
    if (rc || !s)
        return rc;
    if (!bus_name_valid(kind, s, why, sizeof why))
        return cw_fail_at(c, key, "%s", why);
    snprintf(out, outlen, "%s", s);
    return 0;
}

/* Member `key` of obj, an object or array, parsed by fn with the path moved onto it. */
int cw_nested(pctx *c, const cJSON *obj, const char *key, int (*fn)(pctx *, const cJSON *))
{
    const cJSON *it = cw_member(obj, key);
    if (!it)
        return 0;
    size_t mark = cw_path_key(c, key);
    int rc = fn(c, it);
    cw_path_restore(c, mark);
    return rc;
}
