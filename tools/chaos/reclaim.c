/* Kill-to-reclaim accounting of shmbus-chaos (see reclaim.h). */
#include "reclaim.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The spans, in ms, of the kills that have both ends; sorted. Returns how many. */
static unsigned spans(const struct reclaim_log *log, size_t from, size_t to, double *out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < log->n; i++) {
        uint64_t a, b;
        memcpy(&a, (const char *)&log->k[i] + from, sizeof a);
        memcpy(&b, (const char *)&log->k[i] + to, sizeof b);
        if (a && b)
            out[n++] = b >= a ? (double)(b - a) / 1e6 : -(double)(a - b) / 1e6;
    }
    qsort(out, n, sizeof *out, cmp_double);
    return n;
}

static double pct(const double *v, unsigned n, double p)
{
    if (!n)
        return 0;
    unsigned i = (unsigned)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

double reclaim_percentile_ms(const struct reclaim_log *log, double p)
{
    static double v[RECLAIM_MAX_KILLS];
    unsigned n = spans(log, offsetof(struct kill_rec, kill_ns),
                       offsetof(struct kill_rec, reclaimed_ns), v);
    return pct(v, n, p);
}

double reclaim_settle(struct reclaim_log *log, double never_ms, unsigned *unjoined)
{
    double max = 0;
    *unjoined = 0;
    for (unsigned i = 0; i < log->n; i++) {
        struct kill_rec *k = &log->k[i];
        if (!k->done_ns && !k->joined) {
            k->reclaimed_ns = 0;
            ++*unjoined;
            continue;
        }
        k->reclaimed_ns = k->done_ns ? k->done_ns : k->seen_ns;
        double ms = k->reclaimed_ns ? (double)(k->reclaimed_ns - k->kill_ns) / 1e6 : never_ms;
        if (ms > max)
            max = ms;
    }
    return max;
}

void reclaim_read_trace(struct reclaim_log *log, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1100];
    while (fgets(line, sizeof line, f)) {
        unsigned dead = 0;
        unsigned long long woke = 0, locked = 0, done = 0;
        int won = 0;
        const char *p = strstr(line, "dead=");
        if (!p || sscanf(p, "dead=%u woke=%llu locked=%llu", &dead, &woke, &locked) != 3)
            continue;
        const char *q = strstr(line, " done=");
        if (!q || sscanf(q, " done=%llu won=%d", &done, &won) != 2)
            continue;
        /* The kill of this pid that the line follows (pids are reused: the last before it). */
        struct kill_rec *k = NULL;
        for (unsigned i = 0; i < log->n; i++)
            if ((unsigned)log->k[i].pid == dead && log->k[i].kill_ns <= woke &&
                (!k || log->k[i].kill_ns > k->kill_ns))
                k = &log->k[i];
        if (!k)
            continue;
        if (!k->woke_ns || woke < k->woke_ns)
            k->woke_ns = woke;
        if (!k->locked_ns || locked < k->locked_ns)
            k->locked_ns = locked;
        if (won)
            k->done_ns = done;
    }
    fclose(f);
}

void reclaim_report(const struct reclaim_log *log, FILE *f)
{
    static const struct {
        const char *what;
        size_t from, to;
        bool traced;
    } rows[] = {
        {"kill to reclaimed (slot freed)", offsetof(struct kill_rec, kill_ns),
         offsetof(struct kill_rec, reclaimed_ns), false},
        {"kill to seen by the controller", offsetof(struct kill_rec, kill_ns),
         offsetof(struct kill_rec, seen_ns), false},
        {"kill to process reaped (waitpid)", offsetof(struct kill_rec, kill_ns),
         offsetof(struct kill_rec, dead_ns), false},
        {"kill to first sweeper awake", offsetof(struct kill_rec, kill_ns),
         offsetof(struct kill_rec, woke_ns), true},
        {"awake to slot locked", offsetof(struct kill_rec, woke_ns),
         offsetof(struct kill_rec, locked_ns), true},
        {"locked to pools walked (winner)", offsetof(struct kill_rec, locked_ns),
         offsetof(struct kill_rec, done_ns), true},
        {"walked to seen by the controller", offsetof(struct kill_rec, done_ns),
         offsetof(struct kill_rec, seen_ns), true},
    };
    static double v[RECLAIM_MAX_KILLS];
    for (unsigned r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        unsigned n = spans(log, rows[r].from, rows[r].to, v);
        if (rows[r].traced && !n)
            continue;
        fprintf(f, "  %-34s n %5u  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", rows[r].what, n,
                pct(v, n, 50), pct(v, n, 99), n ? v[n - 1] : 0.0);
    }
}
