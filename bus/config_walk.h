/* The JSON walk of configuration parsing (private to bus/config_parse.c and config_walk.c):
 * the walk context with the JSON path of the current object, one-line error messages that
 * name the source, the path and the reason, and typed readers of object members that check
 * type and range. */
#ifndef BUS_CONFIG_WALK_H
#define BUS_CONFIG_WALK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "config_model.h"

typedef struct pctx {
    const char *src;
    char *err;
    size_t errlen;
    char path[192]; /* JSON path of the current object */
    size_t plen;
    bus_config *cfg;
} pctx;

typedef struct qbuf {
    char s[200];
} qbuf;

typedef struct sbuf {
    char s[48];
} sbuf;

const char *cw_quote(qbuf *q, const char *s);
const char *cw_size_text(sbuf *b, uint64_t v);
const char *cw_type_name(const cJSON *it);
size_t cw_path_key(pctx *c, const char *key);
size_t cw_path_index(pctx *c, int i);
void cw_path_restore(pctx *c, size_t mark);
int cw_fail(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cw_fail_at(pctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const cJSON *cw_member(const cJSON *obj, const char *key);
int cw_want(pctx *c, const cJSON *it, bool ok, const char *what);
#define want_object(c, it) cw_want(c, it, cJSON_IsObject(it), "an object")
#define want_array(c, it) cw_want(c, it, cJSON_IsArray(it), "an array")
int cw_check_keys(pctx *c, const cJSON *obj, const char *const *allowed, const char *expected);
int cw_require(pctx *c, const cJSON *obj, const char *key);
bool cw_as_integer(const cJSON *it, long long *out);
int cw_get_string(pctx *c, const cJSON *obj, const char *key, const char **out);
int cw_get_u32(pctx *c, const cJSON *obj, const char *key, long long min, long long max,
               uint32_t *out);
int cw_get_size(pctx *c, const cJSON *obj, const char *key, uint64_t min, uint64_t max,
                uint64_t *out);
int cw_get_name(pctx *c, const cJSON *obj, const char *key, enum bus_name_kind kind, char *out,
                size_t outlen);
/* Call fn on member `key` of obj (if present) with the path extended by the key. */
int cw_nested(pctx *c, const cJSON *obj, const char *key, int (*fn)(pctx *, const cJSON *));

#endif
