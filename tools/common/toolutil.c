/* Helpers shared by the operator tools (see toolutil.h). */
#include "toolutil.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- domain selection ------------------------------------------------------------------ */

int tool_resolve_domain(const char *domain_opt, const char *config, char *name,
                        shmbus_config_summary *summary)
{
    shmbus_config_summary local;
    shmbus_config_summary *s = summary ? summary : &local;
    int rc = shmbus_config_load(config, s);
    if (rc)
        return rc;
    snprintf(name, TOOL_NAME_MAX, "%s", domain_opt && *domain_opt ? domain_opt : s->domain);
    return 0;
}

int tool_observe(const char *name, shmbus_domain **out)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.observe = true;
    int rc = shmbus_domain_open(name, &o, out);
    /* An observer takes no lock, so it can find the segments of a domain that another
     * process is creating right now, before their headers are written: SHMBUS_EBADSEG.
     * Creation takes milliseconds; a layout that stays wrong is reported after a second. */
    for (int i = 0; i < 20 && rc == SHMBUS_EBADSEG; i++) {
        tool_sleep_ns(50 * 1000000ull);
        rc = shmbus_domain_open(name, &o, out);
    }
    return rc;
}

void tool_error(const char *prog, int rc, const char *fmt, ...)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", shmbus_last_error());
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (detail[0] && strstr(what, detail) == NULL)
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, shmbus_strerror(rc), detail);
    else
        fprintf(stderr, "%s: %s: %s\n", prog, what, shmbus_strerror(rc));
}

/* Levenshtein distance of two short strings (names: at most 63 bytes are compared). */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 63), lb = strnlen(b, 63);
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *tool_nearest(const char *name, const char *names, size_t stride, unsigned n)
{
    size_t len = strlen(name);
    unsigned limit = len / 3 > 1 ? (unsigned)(len / 3) : 1, best = UINT32_MAX;
    const char *found = NULL;
    for (unsigned i = 0; i < n; i++) {
        const char *cand = names + (size_t)i * stride;
        unsigned dist = edit_distance(name, cand);
        if (dist > 0 && dist <= limit && dist < best) {
            best = dist;
            found = cand;
        }
    }
    return found;
}

/* Columns of a UTF-8 string: the tools print ASCII and one-column symbols (blocks, arrows),
 * so every character that is not a continuation byte is one column. */
static bool utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

char *tool_fit_line(char *line, size_t width)
{
    static const char mark[] = "..>";
    const size_t mlen = sizeof mark - 1;
    size_t cols = 0, keep = 0; /* keep: bytes of the first width - mlen columns */
    for (size_t i = 0; line[i]; i++) {
        if (utf8_cont(line[i]))
            continue;
        if (cols == (width > mlen ? width - mlen : width))
            keep = i;
        cols++;
    }
    if (cols <= width)
        return line;
    if (width <= mlen) { /* no room for the mark */
        line[keep] = 0;
        return line;
    }
    size_t cut = keep;
    while (cut > 0 && line[cut - 1] != ' ' && line[cut] != ' ')
        cut--; /* back to a word boundary: never half a number */
    if (cut == 0)
        cut = keep;
    memcpy(line + cut, mark, mlen + 1);
    return line;
}

/* ---- numbers in ------------------------------------------------------------------------ */

bool tool_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

bool tool_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

/* ---- numbers out ----------------------------------------------------------------------- */

const char *tool_fmt_size(char *buf, size_t len, uint64_t bytes)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes;
    unsigned i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, v < 99.95 ? "%.1f %s" : "%.0f %s", v, u[i]);
    return buf;
}

const char *tool_fmt_size_exact(char *buf, size_t len, uint64_t bytes)
{
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
        snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
    else if (bytes >= 1024 && bytes % 1024 == 0)
        snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes >> 10));
    else
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    return buf;
}

const char *tool_fmt_bw(char *buf, size_t len, double bps, bool compact)
{
    static const char *const u[] = {"", "k", "M", "G", "T"};
    if (!(bps > 0)) {
        snprintf(buf, len, compact ? "0" : "0 B/s");
        return buf;
    }
    unsigned i = 0;
    while (bps >= 999.95 && i < 4) {
        bps /= 1000;
        i++;
    }
    const char *fmt = bps < 9.995 && i ? "%.2f" : bps < 99.95 && i ? "%.1f" : "%.0f";
    char num[32];
    snprintf(num, sizeof num, fmt, bps);
    if (compact)
        snprintf(buf, len, "%s%s", num, u[i]);
    else
        snprintf(buf, len, "%s %sB/s", num, u[i]);
    return buf;
}

const char *tool_fmt_ns(char *buf, size_t len, uint64_t ns)
{
    double us = (double)ns / 1e3;
    if (us < 1000)
        snprintf(buf, len, us < 10 ? "%.1f us" : "%.0f us", us);
    else if (us < 1e6)
        snprintf(buf, len, us < 1e4 ? "%.2f ms" : us < 1e5 ? "%.1f ms" : "%.0f ms", us / 1e3);
    else if (us < 60e6)
        snprintf(buf, len, "%.1f s", us / 1e6);
    else if (us < 3600e6)
        snprintf(buf, len, "%.0f min", us / 60e6);
    else
        snprintf(buf, len, "%.1f h", us / 3600e6);
    return buf;
}

const char *tool_fmt_hz(char *buf, size_t len, double hz)
{
    if (!(hz > 0))
        snprintf(buf, len, "0");
    else if (hz < 10)
        snprintf(buf, len, "%.2f", hz);
    else if (hz < 1000)
        snprintf(buf, len, "%.1f", hz);
    else
        snprintf(buf, len, "%.0f", hz);
    return buf;
}

/* ---- time ------------------------------------------------------------------------------ */

uint64_t tool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tool_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

void tool_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* a closed stdout (| head) must end the loop, through EPIPE, not kill the process
     * before it leaves its domain */
    signal(SIGPIPE, SIG_IGN);
}

bool tool_stop_requested(void) { return g_stop != 0; }

const char *tool_delivery_name(uint32_t delivery)
{
    return delivery == SHMBUS_DELIVERY_SHM ? "shm" : "nng";
}
