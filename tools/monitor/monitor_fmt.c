/* shmbus-monitor: the text of each table row, shared by the live screen and --once, so both
 * show the same columns. Rows are plain text; the screen adds colours per row. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "monitor.h"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct sb {
    char *buf;
    size_t len, used;
} sb;

static void sb_init(sb *b, char *buf, size_t len)
{
    b->buf = buf;
    b->len = len;
    b->used = 0;
    if (len)
        buf[0] = 0;
}

static void sb_add(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(sb *b, const char *fmt, ...)
{
    if (b->used + 1 >= b->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->used, b->len - b->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->used = b->used + (size_t)n < b->len ? b->used + (size_t)n : b->len - 1;
}

/* Cut buf to at most `width` columns, at a character boundary. */
static void fit(char *buf, int width)
{
    int cols = 0;
    for (char *p = buf; *p; p++) {
        if (((unsigned char)*p & 0xc0) == 0x80)
            continue;
        if (cols++ == width) {
            *p = 0;
            return;
        }
    }
}

/* A name as the table shows it: printable ASCII only. */
static const char *clean(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = 0;
    return dst;
}

const char *mon_fmt_lat(char *buf, size_t len, bool has, uint64_t ns)
{
    if (!has)
        snprintf(buf, len, "-");
    else if (ns < 1000000)
        snprintf(buf, len, "%" PRIu64 "us", ns / 1000);
    else if (ns < 100000000)
        snprintf(buf, len, "%.1fms", (double)ns / 1e6);
    else if (ns < 10000000000ull)
        snprintf(buf, len, "%.0fms", (double)ns / 1e6);
    else
        snprintf(buf, len, "%.0fs", (double)ns / 1e9);
    return buf;
}

void mon_layout_init(mon_layout *l, int width, bool utf8)
{
    enum { TOPIC_FIXED = 54, POOL_FIXED = 68 };
    l->width = width;
    l->utf8 = utf8;
    int avail = width - TOPIC_FIXED;
    l->name = avail - 8 > 32 ? 32 : avail - 8 < 12 ? 12 : avail - 8;
    l->spark = avail - l->name;
    l->spark = l->spark > MON_HISTORY ? MON_HISTORY : l->spark < 0 ? 0 : l->spark;
    l->bar = width - POOL_FIXED;
    l->bar = l->bar > 40 ? 40 : l->bar < 5 ? 5 : l->bar;
}

/* ---- topics ----------------------------------------------------------------------------- */

void mon_fmt_spark(const mon_hist *h, int width, bool utf8, char *buf, size_t len)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static const char ascii[] = ".:-=+*#@";
    sb b;
    sb_init(&b, buf, len);
    unsigned n = h ? h->n : 0;
    unsigned shown = n < (unsigned)width ? n : (unsigned)width;
    for (unsigned i = shown; i < (unsigned)width; i++)
        sb_add(&b, " ");
    double max = 0;
    for (unsigned i = n - shown; i < n; i++)
        max = h->v[i] > max ? h->v[i] : max;
    for (unsigned i = n - shown; i < n; i++) {
        double v = h->v[i];
        if (!(v > 0)) {
            sb_add(&b, "%s", utf8 ? "·" : "_");
            continue;
        }
        int level = (int)(v / max * 8 + 0.999); /* 1..8: anything above zero shows */
        level = level < 1 ? 1 : level > 8 ? 8 : level;
        if (utf8)
            sb_add(&b, "%s", bars[level - 1]);
        else
            sb_add(&b, "%c", ascii[level - 1]);
    }
}

void mon_fmt_topic_header(const mon_layout *l, char *buf, size_t len)
{
    snprintf(buf, len, "%-*s %4s %4s %8s %8s %6s %6s %3s %6s %s", l->name, "TOPIC", "PUBS",
             "SUBS", "RATE Hz", "BYTES/s", "P50", "P99", "HIS", "LOST",
             l->spark >= 7 ? "HISTORY" : "");
    fit(buf, l->width);
}

void mon_fmt_topic(const mon_layout *l, const mon_row *r, char *buf, size_t len)
{
    char name[64], hz[16], bw[16], p50[16], p99[16], spark[256];
    const shmbus_topic_info *t = r->t;
    tool_fmt_hz(hz, sizeof hz, r->r.rate_hz);
    tool_fmt_bw(bw, sizeof bw, r->r.bandwidth_bps, true);
    mon_fmt_lat(p50, sizeof p50, r->r.has_latency, r->r.p50_ns);
    mon_fmt_lat(p99, sizeof p99, r->r.has_latency, r->r.p99_ns);
    mon_fmt_spark(r->hist, l->spark, l->utf8, spark, sizeof spark);
    clean(name, sizeof name, t->def.name);
    if ((int)strlen(name) > l->name && l->name > 1) { /* keep the end: it names the stream */
        memmove(name + 1, name + strlen(name) - (size_t)(l->name - 1), (size_t)l->name);
        name[0] = '~';
    }
    snprintf(buf, len, "%-*s %4u %4u %8s %8s %6s %6s %3" PRIu32 " %6" PRIu64 " %s", l->name,
             name, t->npubs, t->nsubs, hz, bw, p50, p99, t->def.history, r->r.lost, spark);
    fit(buf, l->width);
}

/* ---- pools ------------------------------------------------------------------------------ */

void mon_fmt_pool_header(const mon_layout *l, char *buf, size_t len)
{
    snprintf(buf, len, "%-10s %9s %11s %-*s %4s %6s %6s %6s %7s", "POOL", "CLASS", "USED/TOTAL",
             l->bar, "USAGE", "", "HIGH", "FAILED", "RECLM", "OLDEST");
    fit(buf, l->width);
}

void mon_fmt_pool_class(const mon_layout *l, const shmbus_pool_info *p, unsigned cls,
                        char *buf, size_t len)
{
    const shmbus_class_stats *c = &p->classes[cls];
    char name[32], size[16], ut[32], oldest[16], bar[256];
    clean(name, sizeof name, cls == 0 ? p->name : "");
    tool_fmt_size(size, sizeof size, c->block_size);
    snprintf(ut, sizeof ut, "%" PRIu32 "/%" PRIu32, c->used, c->total);
    if (c->used)
        tool_fmt_ns(oldest, sizeof oldest, c->oldest_hold_ns);
    else
        snprintf(oldest, sizeof oldest, "-");
    double f = c->total ? (double)c->used / c->total : 0;
    int fill = (int)(f * l->bar + 0.5);
    if (c->used && fill == 0)
        fill = 1; /* one block in use is not nothing */
    sb b;
    sb_init(&b, bar, sizeof bar);
    for (int i = 0; i < l->bar; i++)
        sb_add(&b, "%s", i < fill ? (l->utf8 ? "█" : "#") : (l->utf8 ? "░" : "."));
    snprintf(buf, len, "%-10.10s %9s %11s %s %3.0f%% %6" PRIu32 " %6" PRIu64 " %6" PRIu64 " %7s",
             name, size, ut, bar, f * 100, c->high_water, c->failed_loans, c->reclaims, oldest);
    fit(buf, l->width);
}

bool mon_fmt_holders(const mon_layout *l, const shmbus_snapshot *s, const shmbus_pool_info *p,
                     char *buf, size_t len)
{
    sd_holder h[8];
    unsigned n = sd_pool_holders(s, p, h, 8);
    if (!n) {
        buf[0] = 0;
        return false;
    }
    sb b;
    sb_init(&b, buf, len);
    sb_add(&b, "  held by");
    for (unsigned i = 0; i < n && i < 8; i++) {
        char name[32], age[16];
        tool_fmt_ns(age, sizeof age, h[i].oldest_ns);
        if (h[i].pid)
            sb_add(&b, "%s %s%s[%d] %u blk, oldest %s", i ? ";" : "", h[i].alive ? "" : "DEAD ",
                   clean(name, sizeof name, h[i].name), h[i].pid, h[i].blocks, age);
        else
            sb_add(&b, "%s slot %u (gone) %u blk, oldest %s", i ? ";" : "", h[i].slot,
                   h[i].blocks, age);
    }
    if (n > 8)
        sb_add(&b, "; +%u more", n - 8);
    fit(buf, l->width);
    return true;
}

/* ---- participants ----------------------------------------------------------------------- */

void mon_fmt_part_header(const mon_layout *l, char *buf, size_t len)
{
    snprintf(buf, len, "%4s %7s %-16s %-5s %11s", "SLOT", "PID", "PROCESS", "STATE",
             "HELD BLOCKS");
    fit(buf, l->width);
}

void mon_fmt_part(const mon_layout *l, const shmbus_participant_info *p, char *buf, size_t len)
{
    char name[32];
    snprintf(buf, len, "%4u %7d %-16.16s %-5s %11" PRIu64, p->slot, p->pid,
             clean(name, sizeof name, p->name), p->alive ? "alive" : "DEAD", p->held_blocks);
    fit(buf, l->width);
}

/* ---- publishers and subscribers of one topic -------------------------------------------- */

void mon_fmt_pub_header(const mon_layout *l, char *buf, size_t len)
{
    snprintf(buf, len, "%7s %-12s %-4s %10s %7s %8s %9s %9s", "PID", "PROCESS", "ST",
             "PUBLISHED", "RATE Hz", "BYTES/s", "LAST SEQ", "LOAN FAIL");
    fit(buf, l->width);
}

void mon_fmt_pub(const mon_layout *l, const mon_model *m, const shmbus_topic_info *t,
                 const shmbus_pub_info *p, char *buf, size_t len)
{
    sd_rates r;
    sd_pub_rates(m->prev, m->cur, t, p, &r);
    char name[32], hz[16], bw[16];
    snprintf(buf, len, "%7d %-12.12s %-4s %10" PRIu64 " %7s %8s %9" PRIu64 " %9" PRIu64, p->pid,
             clean(name, sizeof name, p->name), p->alive ? "ok" : "DEAD", p->published,
             tool_fmt_hz(hz, sizeof hz, r.rate_hz), tool_fmt_bw(bw, sizeof bw, r.bandwidth_bps, true),
             p->last_seq, p->loan_failures);
    fit(buf, l->width);
}

void mon_fmt_sub_header(const mon_layout *l, char *buf, size_t len)
{
    snprintf(buf, len, "%7s %-10s %-4s %9s %6s %6s %6s %5s %5s %5s %5s", "PID", "PROCESS", "ST",
             "RECEIVED", "HZ", "P50", "P99", "EXPIR", "DROP", "OVFL", "HELD");
    fit(buf, l->width);
}

void mon_fmt_sub(const mon_layout *l, const mon_model *m, const shmbus_topic_info *t,
                 const shmbus_sub_info *s, char *buf, size_t len)
{
    sd_rates r;
    sd_sub_rates(m->prev, m->cur, t, s, &r);
    char name[32], hz[16], p50[16], p99[16], held[24];
    snprintf(held, sizeof held, "%" PRIu64 "/%" PRIu64, s->held, s->max_held);
    snprintf(buf, len,
             "%7d %-10.10s %-4s %9" PRIu64 " %6s %6s %6s %5" PRIu64 " %5" PRIu64 " %5" PRIu64 " %5s",
             s->pid, clean(name, sizeof name, s->name), s->alive ? "ok" : "DEAD", s->received,
             tool_fmt_hz(hz, sizeof hz, r.rate_hz), mon_fmt_lat(p50, sizeof p50, r.has_latency, r.p50_ns),
             mon_fmt_lat(p99, sizeof p99, r.has_latency, r.p99_ns), s->expired, s->dropped,
             s->overflow, held);
    fit(buf, l->width);
}
