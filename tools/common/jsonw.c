/* A small streaming JSON writer (see jsonw.h). */
#include "jsonw.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>

void jsonw_init(jsonw *w, FILE *f, bool pretty)
{
    w->f = f;
    w->pretty = pretty;
    w->depth = 0;
    w->has_items[0] = false;
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a value, then its key. */
static void prefix(jsonw *w, const char *key)
{
    if (w->has_items[w->depth])
        fputc(',', w->f);
    if (w->pretty && w->depth > 0) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    w->has_items[w->depth] = true;
    if (key) {
        put_string(w->f, key);
        fputs(w->pretty ? ": " : ":", w->f);
    }
}

static void open_nested(jsonw *w, const char *key, char c)
{
    assert(w->depth + 1 < JSONW_MAX_DEPTH && "JSON nested too deeply");
    prefix(w, key);
    fputc(c, w->f);
    w->depth++;
    w->has_items[w->depth] = false;
}

static void close_nested(jsonw *w, char c)
{
    assert(w->depth > 0 && "unbalanced JSON end");
    bool had = w->has_items[w->depth];
    w->depth--;
    if (w->pretty && had) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(c, w->f);
}

void jsonw_object(jsonw *w, const char *key) { open_nested(w, key, '{'); }
void jsonw_array(jsonw *w, const char *key) { open_nested(w, key, '['); }
void jsonw_end_object(jsonw *w) { close_nested(w, '}'); }
void jsonw_end_array(jsonw *w) { close_nested(w, ']'); }

void jsonw_str(jsonw *w, const char *key, const char *v)
{
    prefix(w, key);
    put_string(w->f, v ? v : "");
}

void jsonw_u64(jsonw *w, const char *key, uint64_t v)
{
    prefix(w, key);
    fprintf(w->f, "%" PRIu64, v);
}

void jsonw_i64(jsonw *w, const char *key, int64_t v)
{
    prefix(w, key);
    fprintf(w->f, "%" PRId64, v);
}

void jsonw_double(jsonw *w, const char *key, double v)
{
    prefix(w, key);
    if (!isfinite(v))
        fputs("null", w->f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(w->f, "%.0f", v);
    else
        fprintf(w->f, "%.3f", v);
}

void jsonw_bool(jsonw *w, const char *key, bool v)
{
    prefix(w, key);
    fputs(v ? "true" : "false", w->f);
}

void jsonw_null(jsonw *w, const char *key)
{
    prefix(w, key);
    fputs("null", w->f);
}

void jsonw_finish(jsonw *w)
{
    assert(w->depth == 0 && "JSON document not closed");
    fputc('\n', w->f);
}
