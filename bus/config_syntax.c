/* The syntax pass of configuration files: JSON text to a cJSON tree, after a lexical scan for
 * what cJSON accepts or reports poorly, with errors that give the line and column. */
#include "config_syntax.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbus_errors.h"

#define NO_POS SIZE_MAX
#define SCAN_DEPTH 64 /* brackets matched by the scan; deeper ones are left to cJSON */

typedef struct scan {
    size_t bad;      /* offset of the first lexical error, or NO_POS */
    char why[128];
    size_t open_off; /* innermost bracket still open at the end, or NO_POS */
} scan;

static void line_col(const char *t, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (t[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void scan_bad(scan *s, size_t off, const char *fmt, ...)
{
    s->bad = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

static bool digit(char ch) { return ch >= '0' && ch <= '9'; }

/* Does the '0' at t[i] start a number (rather than sit inside one or in an exponent)? */
static bool number_start(const char *t, size_t i)
{
    if (i == 0)
        return true;
    char p = t[i - 1];
    if (p == '-')
        return i < 2 || (t[i - 2] != 'e' && t[i - 2] != 'E');
    return !digit(p) && !strchr(".eE+", p);
}

/* What cJSON accepts or reports poorly; stops at the first problem. */
static void scan_text(const char *t, size_t len, scan *s)
{
    size_t stack[SCAN_DEPTH];
    size_t depth = 0;
    s->bad = s->open_off = NO_POS;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)t[i];
        unsigned l, col;
        if (ch == '\0')
            return scan_bad(s, i, "NUL byte in the text");
        if (ch == '"') {
            size_t start = i;
            for (i++;; i++) {
                if (i >= len)
                    return scan_bad(s, start, "string is not closed");
                ch = (unsigned char)t[i];
                if (ch == '"')
                    break;
                if (ch == '\n' || ch == '\r')
                    return scan_bad(s, start, "string is not closed on its line");
                if (ch < 0x20)
                    return scan_bad(s, i, "control character 0x%02x in a string (escape it)", ch);
                if (ch == '\\') {
                    if (i + 5 < len && memcmp(t + i + 1, "u0000", 5) == 0)
                        return scan_bad(s, i, "\\u0000 is not allowed in a string");
                    i++; /* the escaped character; cJSON checks the escape */
                }
            }
        } else if (ch == '/') {
            return scan_bad(s, i, "comments are not allowed in JSON");
        } else if (ch == '{' || ch == '[') {
            if (depth < SCAN_DEPTH)
                stack[depth] = i;
            depth++;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
            if (depth < SCAN_DEPTH && (t[stack[depth]] == '{') != (ch == '}')) {
                line_col(t, stack[depth], &l, &col);
                return scan_bad(s, i, "'%c' does not close the '%c' at line %u, column %u", ch,
                                t[stack[depth]], l, col);
            }
        } else if (ch == '0' && i + 1 < len && digit(t[i + 1]) && number_start(t, i)) {
            return scan_bad(s, i, "number with a leading zero (JSON has no octal numbers; "
                                  "write a mode as a string, e.g. \"0660\")");
        }
    }
    if (depth > 0 && depth <= SCAN_DEPTH)
        s->open_off = stack[depth - 1];
}

static int syntax_fail(const char *src, const char *t, size_t off, char *err, size_t errlen,
                       const char *fmt, ...)
{
    unsigned l, col;
    line_col(t, off, &l, &col);
    if (err && errlen) {
        int n = snprintf(err, errlen, "%s:%u:%u: syntax error: ", src, l, col);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return SHMBUS_ECONFIG;
}

/* The last non-blank character before t[p], or '\0'. */
static char char_before(const char *t, size_t p)
{
    while (p > 0 && (unsigned char)t[p - 1] <= ' ')
        p--;
    return p > 0 ? t[p - 1] : '\0';
}

/* The bracket that encloses t[k] ('{', '[') or '\0' (none, or too deep to tell). */
static char enclosing_bracket(const char *t, size_t k)
{
    char stack[SCAN_DEPTH];
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < k; i++) {
        if (in_string) {
            if (t[i] == '\\')
                i++;
            else if (t[i] == '"')
                in_string = false;
        } else if (t[i] == '"') {
            in_string = true;
        } else if (t[i] == '{' || t[i] == '[') {
            if (depth < SCAN_DEPTH)
                stack[depth] = t[i];
            depth++;
        } else if ((t[i] == '}' || t[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return depth > 0 && depth <= SCAN_DEPTH ? stack[depth - 1] : '\0';
}

/* Why cJSON stopped at t[p]: the character there, and a hint from the one before it.
 * Where an object key should start, cJSON points one past the offending character. */
static int syntax_unexpected(const char *src, const char *t, size_t p, char *err, size_t errlen)
{
    char before = p > 0 ? char_before(t, p - 1) : '\0';
    if ((before == '{' || before == ',') && t[p - 1] != '"' && (unsigned char)t[p - 1] > ' ' &&
        enclosing_bracket(t, p - 1) == '{')
        p--;
    char ch = t[p], what[16];
    char prev = char_before(t, p);
    const char *hint = "";
    if ((ch == '}' || ch == ']') && prev == ',')
        hint = " (trailing comma before it)";
    else if (ch == '\'')
        hint = " (JSON strings need double quotes)";
    else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        hint = " (strings need double quotes; the literals are true, false and null)";
    else if ((prev >= 'a' && prev <= 'z') || (prev >= 'A' && prev <= 'Z'))
        hint = " after a bare word (keys and strings need double quotes)";
    else if (strchr("\"{[-0123456789", ch) && ch && prev && strchr("\"}]0123456789el", prev))
        hint = " (missing ',' or ':' before it?)";
    if (ch == '\'')
        snprintf(what, sizeof what, "single quote");
    else if (ch > ' ' && ch < 0x7f)
        snprintf(what, sizeof what, "'%c'", ch);
    else
        snprintf(what, sizeof what, "byte 0x%02x", (unsigned char)ch);
    return syntax_fail(src, t, p, err, errlen, "unexpected %s%s", what, hint);
}

int bus_config_syntax(const char *text, size_t len, const char *src, cJSON **out, char *err,
                      size_t errlen)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 byte order mark */
        text += 3;
        len -= 3;
    }
    size_t last = len; /* last character that is not white space */
    while (last > 0 && (unsigned char)text[last - 1] <= ' ')
        last--;
    if (last == 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: $: empty file (expected a JSON object)", src);
        return SHMBUS_ECONFIG;
    }
    scan s;
    scan_text(text, len, &s);
    /* A terminated copy: cJSON never reads past it, whatever the caller's buffer. */
    char *buf = malloc(len + 1);
    if (!buf) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", src);
        return SHMBUS_ENOMEM;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    size_t p = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
    int rc = 0;
    if (!root) {
        if (s.bad <= p)
            rc = syntax_fail(src, text, s.bad, err, errlen, "%s", s.why);
        else if (s.open_off != NO_POS && p + 1 >= last) {
            unsigned l, col;
            line_col(text, s.open_off, &l, &col);
            rc = syntax_fail(src, text, last, err, errlen,
                             "unexpected end of the text (the '%c' at line %u, column %u is "
                             "not closed)", text[s.open_off], l, col);
        } else
            rc = syntax_unexpected(src, text, p < len ? p : len - 1, err, errlen);
    } else if (s.bad != NO_POS) {
        rc = syntax_fail(src, text, s.bad, err, errlen, "%s", s.why);
    } else {
        while (p < len && (unsigned char)text[p] <= ' ')
            p++;
        if (p < len)
            rc = syntax_fail(src, text, p, err, errlen, "unexpected text after the JSON value");
    }
    free(buf);
    if (rc)
        cJSON_Delete(root);
    else
        *out = root;
    return rc;
}
