/* Domain configuration, the text side: the embedded default, sizes with units, reading a file,
 * the JSON syntax pass (with line and column), lookups and the memory total. The walk over
 * the JSON tree that checks every key, type and limit lives in config_parse.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r */
#endif
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmpool.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

/* Largest config file bus_config_load reads: far above any real domain (16 pools, 64 topics). */
#define CONFIG_FILE_MAX (1u << 20)

/* ---- the embedded default --------------------------------------------------------------- */

static const shmbus_pool_class default_classes[] = {
    {4 * KiB, 256}, {64 * KiB, 64}, {1 * MiB, 16}, {8 * MiB, 8}, {24 * MiB, 6},
};

void bus_config_default(bus_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->domain, sizeof cfg->domain, "default");
    cfg->mode = 0600;
    cfg->gid = -1;
    cfg->npools = 1;
    bus_pool_cfg *p = &cfg->pools[0];
    snprintf(p->name, sizeof p->name, "default");
    p->nclasses = sizeof default_classes / sizeof default_classes[0];
    memcpy(p->classes, default_classes, sizeof default_classes);
    cfg->has_default_topic = true;
    bus_topic_cfg *t = &cfg->default_topic;
    snprintf(t->pool, sizeof t->pool, "default");
    t->history = 2; /* leaves 24 MiB blocks (4K RGB frames) for loans and readers */
    t->max_message_size = 24 * MiB;
    t->max_held = 4;
    t->full_wait_ms = 100;
    t->queue_depth = 16;
}

/* ---- sizes ------------------------------------------------------------------------------ */

static int size_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return SHMBUS_EINVAL;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"B", 1},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {"kB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull},
};
#define SIZE_UNITS_TEXT "B, KiB, MiB, GiB, TiB, kB, MB, GB or TB"

int bus_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
    if (!s || !out)
        return size_fail(err, errlen, "no size given");
    const char *p = s;
    if (*p == '\0')
        return size_fail(err, errlen, "empty size");
    if (*p == '-')
        return size_fail(err, errlen, "a size cannot be negative");
    if (!is_digit(*p))
        return size_fail(err, errlen, "expected a number of bytes or a number and a unit, "
                                      "e.g. \"8MiB\"");
    uint64_t ip = 0;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (ip > (UINT64_MAX - d) / 10)
            return size_fail(err, errlen, "too large");
        ip = ip * 10 + d;
    }
    const char *frac = p, *frac_end = p; /* fraction digits, trailing zeros dropped */
    if (*p == '.') {
        frac = ++p;
        if (!is_digit(*p))
            return size_fail(err, errlen, "expected a digit after '.'");
        while (is_digit(*p))
            p++;
        frac_end = p;
        while (frac_end > frac && frac_end[-1] == '0')
            frac_end--;
        if (frac_end - frac > 19)
            return size_fail(err, errlen, "too many decimal places");
    }
    if (*p == ' ' && *++p == '\0')
        return size_fail(err, errlen, "expected a unit after the space");
    uint64_t mult = 0;
    if (*p == '\0') {
        mult = 1;
    } else {
        for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
            if (strcmp(p, size_units[i].name) == 0)
                mult = size_units[i].mult;
    }
    if (!mult) {
        size_t n = strlen(p);
        bool printable = n <= 12;
        for (size_t i = 0; printable && i < n; i++)
            printable = p[i] >= ' ' && p[i] < 0x7f && p[i] != '"' && p[i] != '\\';
        if (printable)
            return size_fail(err, errlen, "unknown unit \"%s\" (use " SIZE_UNITS_TEXT ")", p);
        return size_fail(err, errlen, "expected a unit (" SIZE_UNITS_TEXT ") after the number");
    }
    /* fraction f / 10^n of the unit: exact only if 10^n / gcd(mult, 10^n) divides f. */
    uint64_t fp = 0, p10 = 1, fbytes = 0;
    for (const char *q = frac; q < frac_end; q++) {
        fp = fp * 10 + (uint64_t)(*q - '0');
        p10 *= 10;
    }
    if (fp) {
        uint64_t g = gcd_u64(mult, p10), d = p10 / g;
        if (fp % d != 0)
            return size_fail(err, errlen, "not a whole number of bytes");
        fbytes = (fp / d) * (mult / g); /* < mult: cannot overflow */
    }
    if (ip > (UINT64_MAX - fbytes) / mult)
        return size_fail(err, errlen, "too large");
    *out = ip * mult + fbytes;
    return 0;
}

/* ---- syntax ------------------------------------------------------------------------------- */

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

/* ---- reading a file --------------------------------------------------------------------- */

static int load_fail(int rc, char *err, size_t errlen, const char *path, const char *reason)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path, reason);
    return rc;
}

static int load_errno(int e, char *err, size_t errlen, const char *path)
{
    char buf[128];
    const char *msg = strerror_r(e, buf, sizeof buf);
    int rc = e == ENOENT || e == ENOTDIR ? SHMBUS_ENOENT
             : e == EACCES || e == EPERM ? SHMBUS_EACCES
             : e == ENOMEM               ? SHMBUS_ENOMEM
                                         : SHMBUS_ESYS;
    load_fail(rc, err, errlen, path, msg);
    errno = e;
    return rc;
}

int bus_config_load(const char *path, bus_config *cfg, char *err, size_t errlen)
{
    if (!path || !cfg)
        return load_fail(SHMBUS_EINVAL, err, errlen, path ? path : "(null)", "invalid argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return load_errno(errno, err, errlen, path);
    /* Read until end of file, not st_size: pipes and /dev/stdin work too. */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        rc = load_errno(ENOMEM, err, errlen, path);
        goto out_close;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CONFIG_FILE_MAX) {
                rc = load_fail(SHMBUS_ECONFIG, err, errlen, path, "file is larger than 1 MiB");
                goto out_free;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = load_errno(ENOMEM, err, errlen, path);
                goto out_free;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = load_errno(errno, err, errlen, path);
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = bus_config_parse(buf, len, path, cfg, err, errlen);
out_free:
    free(buf);
out_close: {
    int e = errno;
    close(fd);
    errno = e;
}
    return rc;
}

/* ---- lookups ---------------------------------------------------------------------------- */

const bus_topic_cfg *bus_config_topic(const bus_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (unsigned i = 0; i < cfg->ntopics && i < BUS_MAX_TOPICS; i++)
        if (strcmp(cfg->topics[i].name, name) == 0)
            return &cfg->topics[i];
    return NULL;
}

const bus_pool_cfg *bus_config_pool(const bus_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (unsigned i = 0; i < cfg->npools && i < BUS_MAX_POOLS; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return &cfg->pools[i];
    return NULL;
}

/* A pool shmpool rejects counts as 0; a config that passed bus_config_parse has none. */
uint64_t bus_config_memory(const bus_config *cfg)
{
    uint64_t total = 0;
    for (unsigned i = 0; cfg && i < cfg->npools && i < BUS_MAX_POOLS; i++) {
        uint64_t sz;
        if (shmpool_pool_size(cfg->pools[i].classes, cfg->pools[i].nclasses, &sz) != 0)
            continue;
        total = sz > UINT64_MAX - total ? UINT64_MAX : total + sz;
    }
    return total;
}
