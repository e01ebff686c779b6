/* A small streaming JSON writer for the tools' machine-readable output.
 *
 * Values go out as they are added; the writer only tracks commas and indentation. Keys are
 * given with each value inside an object and are NULL inside an array or at the top. Strings
 * are escaped (control characters as \u00XX; bytes >= 0x80 pass through, so UTF-8 stays
 * UTF-8). Non-finite numbers are written as null. Not thread-safe; owns nothing.
 */
#ifndef SHMBUS_JSONW_H
#define SHMBUS_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 32

typedef struct jsonw {
    FILE *f;
    bool pretty;
    int depth;
    bool has_items[JSONW_MAX_DEPTH]; /* a value was written at this depth: next one needs ',' */
} jsonw;

void jsonw_init(jsonw *w, FILE *f, bool pretty);
void jsonw_object(jsonw *w, const char *key); /* begin; end with jsonw_end */
void jsonw_array(jsonw *w, const char *key);
void jsonw_end_object(jsonw *w);
void jsonw_end_array(jsonw *w);
void jsonw_str(jsonw *w, const char *key, const char *v);
void jsonw_u64(jsonw *w, const char *key, uint64_t v);
void jsonw_i64(jsonw *w, const char *key, int64_t v);
void jsonw_double(jsonw *w, const char *key, double v); /* up to 3 decimals */
void jsonw_bool(jsonw *w, const char *key, bool v);
void jsonw_null(jsonw *w, const char *key);
/* Ends the document with a newline. */
void jsonw_finish(jsonw *w);

#endif
