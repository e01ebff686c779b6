/* Names and their limits (see config_names.h and docs/config.md, "Names"). */
#include "config_names.h"

#include <stdio.h>
#include <string.h>

struct name_rule {
    const char *kind;
    size_t max;
    const char *extra; /* allowed besides A-Z a-z 0-9 _ - */
    const char *text;  /* the rule, as messages state it */
};

static const struct name_rule rules[] = {
    [BUS_NAME_DOMAIN] = {"domain", BUS_NAME_MAX, "", "1..31 of A-Z a-z 0-9 _ -"},
    [BUS_NAME_POOL] = {"pool", BUS_NAME_MAX, ".", "1..31 of A-Z a-z 0-9 . _ -, not starting "
                                                  "with '.'"},
    [BUS_NAME_TOPIC] = {"topic", BUS_TOPIC_NAME_MAX, "./",
                        "1..63 of A-Z a-z 0-9 . _ - /, in '/'-separated parts that are not "
                        "empty and do not start with '.'"},
    [BUS_NAME_NODE] = {"node", BUS_NODE_NAME_MAX, "./",
                       "1..47 of A-Z a-z 0-9 . _ - /, in '/'-separated parts that are not "
                       "empty and do not start with '.'"},
    [BUS_NAME_PARTICIPANT] = {"participant", BUS_NAME_MAX, ".+",
                              "1..31 of A-Z a-z 0-9 . _ - +, not starting with '.'"},
};

const char *bus_name_quote(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    if (len < 16)
        return "";
    buf[o++] = '"';
    for (size_t n = 0; *s && o + 8 < len; s++, n++) {
        unsigned char ch = (unsigned char)*s;
        if (n == 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch == '"' || ch == '\\')
            o += (size_t)snprintf(buf + o, len - o, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static bool plain_char(unsigned char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || (c && strchr(extra, c));
}

/* The first thing wrong with s, or NULL. */
static const char *name_fault(const struct name_rule *r, bool parts, const char *s, char *tmp,
                              size_t len)
{
    if (!s)
        return "no name given (NULL)";
    size_t n = strlen(s);
    if (n == 0)
        return "it is empty";
    if (n > r->max) {
        snprintf(tmp, len, "it has %zu characters, more than %zu", n, r->max);
        return tmp;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!plain_char(c, r->extra)) {
            if (c > 0x20 && c < 0x7f)
                snprintf(tmp, len, "character '%c' at offset %zu is not allowed", c, i);
            else
                snprintf(tmp, len, "byte 0x%02x at offset %zu is not allowed", c, i);
            return tmp;
        }
        bool part_start = i == 0 || (parts && s[i - 1] == '/');
        if (part_start && c == '.')
            return i == 0 ? "it starts with '.'" : "a part starts with '.'";
        if (parts && c == '/' && part_start)
            return i == 0 ? "it starts with '/'" : "it has an empty part (\"//\")";
    }
    if (parts && s[n - 1] == '/')
        return "it ends with '/'";
    return NULL;
}

bool bus_name_valid(enum bus_name_kind kind, const char *s, char *why, size_t len)
{
    const struct name_rule *r = &rules[kind];
    char tmp[96], q[200];
    const char *fault = name_fault(r, kind == BUS_NAME_TOPIC || kind == BUS_NAME_NODE, s, tmp,
                                   sizeof tmp);
    if (!fault)
        return true;
    if (why && len)
        snprintf(why, len, "invalid %s name %s: %s (allowed: %s)", r->kind,
                 s ? bus_name_quote(q, sizeof q, s) : "NULL", fault, r->text);
    return false;
}
