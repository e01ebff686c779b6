/* shmbus-bench latency: what a run measured, as tables with ratios and targets, as a JSON
 * array, and as a plot. See bench_latency.h.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_latency.h"
#include "shmbus.h"

#define G1 0 /* group of 1 subscriber */
#define G4 1 /* group of 4 */

static const fo_result *row(const fo_run *r, int t, int g, int i)
{
    return fo_find(r, t, g, i);
}

static void size_name(const fo_result *x, int step, char *buf, size_t len)
{
    (void)step;
    tool_fmt_size_exact(buf, len, x->size);
}

#define RATIO_W 68 /* the width of a ratio's name */

/* "  <what>  <a/b>x  (target <=|>= <target>x: met|MISSED)", or n/a without both. */
static void ratio_line(const char *what, double a, double b, bool at_most, double target)
{
    if (a <= 0 || b <= 0) {
        printf("  %-*s     n/a\n", RATIO_W, what);
        return;
    }
    double q = a / b;
    bool met = at_most ? q <= target : q >= target;
    printf("  %-*s %7.2fx  (target %s %.1fx: %s)\n", RATIO_W, what, q, at_most ? "<=" : ">=",
           target, met ? "met" : "MISSED");
}

/* "  <what>  <a/b>x  (<note>)": a ratio without a target, to read the one above by. */
static void info_line(const char *what, double a, double b, const char *note)
{
    if (a <= 0 || b <= 0)
        printf("  %-*s     n/a\n", RATIO_W, what);
    else
        printf("  %-*s %7.2fx  (%s)\n", RATIO_W, what, a / b, note);
}

static double p50(const fo_result *x) { return x ? x->p50_ns : 0; }
static double p50_slowest(const fo_result *x) { return x ? x->p50_slowest_ns : 0; }

/* Two transports side by side, a row per size and group; `q` writes the ratio column of the
 * row of group g, size i (both transports there). */
typedef void (*ratio_col)(const fo_run *r, int g, int i, char *buf, size_t len);
static void pair_table(const fo_run *r, int ta, int tb, const char *qhead, ratio_col q)
{
    char ha[40], hb[40];
    snprintf(ha, sizeof ha, " %s ", fo_transport_names[ta]);
    snprintf(hb, sizeof hb, " %s ", fo_transport_names[tb]);
    printf("%13s  %-28s  %-28s  %s\n", "", ha, hb, qhead);
    printf("%8s %4s  %8s %8s %10s  %8s %8s %10s  %6s %6s\n", "size", "subs", "p50", "p99",
           "msgs/s", "p50", "p99", "msgs/s", "p50", "rate");
    for (int g = 0; g < LAT_NGROUPS; g++)
        for (int i = 0; i < LAT_NSIZES; i++) {
            const fo_result *a = row(r, ta, g, i), *b = row(r, tb, g, i);
            if (!a && !b)
                continue;
            char sz[32], c1[40] = "", c2[40] = "", qs[20] = "";
            tool_fmt_size_exact(sz, sizeof sz, lat_sizes[i]);
            if (a)
                snprintf(c1, sizeof c1, "%8.1f %8.1f %10.0f", a->p50_ns / 1e3, a->p99_ns / 1e3,
                         a->msgs_per_s);
            if (b)
                snprintf(c2, sizeof c2, "%8.1f %8.1f %10.0f", b->p50_ns / 1e3, b->p99_ns / 1e3,
                         b->msgs_per_s);
            if (a && b)
                q(r, g, i, qs, sizeof qs);
            printf("%8s %4d  %-28s  %-28s  %s\n", sz, lat_subcounts[g], c1, c2, qs);
        }
}

/* How many times longer transport `slow` takes than `fast` (p50), and fast's rate relative
 * to slow's, at group g, size i. */
static void ratio_of(const fo_run *r, int slow, int fast, int g, int i, char *buf, size_t len)
{
    const fo_result *a = row(r, fast, g, i), *b = row(r, slow, g, i);
    if (a && b && a->p50_ns > 0 && a->msgs_per_s > 0)
        snprintf(buf, len, "%5.1fx %5.2fx", b->p50_ns / a->p50_ns, b->msgs_per_s / a->msgs_per_s);
}

/* nng-copy against shmbus; shmbus with nng delivery against shmbus-shm. */
static void q_copy(const fo_run *r, int g, int i, char *buf, size_t len)
{
    ratio_of(r, FO_NNG, FO_SHMBUS, g, i, buf, len);
}

static void q_delivery(const fo_run *r, int g, int i, char *buf, size_t len)
{
    ratio_of(r, FO_SHMBUS, FO_SHM, g, i, buf, len);
}

/* shmbus-shm and the futex floor with 4 subscribers side by side: p50 over every sample,
 * p50 and p99 of each message's slowest subscriber, and the ratio of the slowest. */
static void print_four(const fo_run *r)
{
    bool any = false;
    for (int i = 0; i < LAT_NSIZES; i++) {
        const fo_result *a = row(r, FO_SHM, G4, i), *b = row(r, FO_FUTEX, G4, i);
        if (!a && !b)
            continue;
        if (!any) {
            printf("\n%d subscribers, one message at a time, one wake for all (us):\n"
                   "%12s%-26s  %-26s  %9s\n%8s    %8s %8s %8s  %8s %8s %8s  %9s\n",
                   lat_subcounts[G4], "", "      shmbus-shm", "     futex (floor)",
                   "shm/futex", "size", "p50", "slowest", "p99", "p50", "slowest", "p99",
                   "slowest");
            any = true;
        }
        char sz[32], c1[32] = "", c2[32] = "", q[16] = "";
        tool_fmt_size_exact(sz, sizeof sz, lat_sizes[i]);
        if (a)
            snprintf(c1, sizeof c1, "%8.1f %8.1f %8.1f", a->p50_ns / 1e3,
                     a->p50_slowest_ns / 1e3, a->p99_ns / 1e3);
        if (b)
            snprintf(c2, sizeof c2, "%8.1f %8.1f %8.1f", b->p50_ns / 1e3,
                     b->p50_slowest_ns / 1e3, b->p99_ns / 1e3);
        if (a && b && b->p50_slowest_ns > 0)
            snprintf(q, sizeof q, "%8.2fx", a->p50_slowest_ns / b->p50_slowest_ns);
        printf("%8s    %-26s  %-26s  %9s\n", sz, c1, c2, q);
    }
}

static void print_floors_and_flood(const fo_run *r)
{
    printf("\nfloors, one way, 1 receiver (us)             p50      p99      max\n");
    for (int f = 0; f < 2 * LAT_NSIZES; f++) { /* futex at each size, then unix-socket */
        const fo_result *x = row(r, f < LAT_NSIZES ? FO_FUTEX : FO_UNIX, G1, f % LAT_NSIZES);
        char sz[32];
        if (!x)
            continue;
        tool_fmt_size_exact(sz, sizeof sz, x->size);
        printf("  %-12s %8s %22.1f %8.1f %8.1f\n", fo_transport_names[x->transport], sz,
               x->p50_ns / 1e3, x->p99_ns / 1e3, x->max_ns / 1e3);
    }
    print_four(r);
    printf("\nunpaced, 64 B, 1 subscriber (back to back, what arrived):\n");
    for (int t = 0; t < FO_NTRANSPORTS; t++) {
        const fo_result *x = row(r, t, G1, 0);
        if (x && x->flood_sent)
            printf("  %-14s sent %9llu  received %9llu  %10.0f msgs/s\n", fo_transport_names[t],
                   (unsigned long long)x->flood_sent, (unsigned long long)x->flood_received,
                   x->flood_per_s);
    }
}

static void print_ratios(const fo_run *r)
{
    char t[96];
    printf("\nratios (p50):\n");
    for (int g = 0; g < LAT_NGROUPS; g++) {
        const char *s = lat_subcounts[g] > 1 ? "s" : "";
        snprintf(t, sizeof t, "shmbus 8 MiB / shmbus 64 B, %d sub%s", lat_subcounts[g], s);
        ratio_line(t, p50(row(r, FO_SHMBUS, g, LAT_SIZE_8M)), p50(row(r, FO_SHMBUS, g, 0)), true,
                   1.5);
        snprintf(t, sizeof t, "nng-copy 8 MiB / shmbus 8 MiB, %d sub%s", lat_subcounts[g], s);
        ratio_line(t, p50(row(r, FO_NNG, g, LAT_SIZE_8M)), p50(row(r, FO_SHMBUS, g, LAT_SIZE_8M)),
                   false, 50);
        snprintf(t, sizeof t, "shmbus 64 B / nng-copy 64 B, %d sub%s", lat_subcounts[g], s);
        ratio_line(t, p50(row(r, FO_SHMBUS, g, 0)), p50(row(r, FO_NNG, g, 0)), true, 1.2);
    }
    printf("\ntargets of the shm delivery path (p50, this run):\n");
    const fo_result *futex = row(r, FO_FUTEX, G1, 0), *unix_s = row(r, FO_UNIX, G1, 0);
    ratio_line("shmbus-shm 64 B, 1 sub / futex", p50(row(r, FO_SHM, G1, 0)), p50(futex), true,
               2);
    ratio_line("shmbus-shm 64 B, 4 subs (slowest) / futex", p50_slowest(row(r, FO_SHM, G4, 0)),
               p50(futex), true, 3);
    /* The target is against one receiver; the floor of the same shape, and what 4
     * receivers cost the floor itself on this machine, to read it by. */
    const fo_result *futex4 = row(r, FO_FUTEX, G4, 0);
    info_line("shmbus-shm 64 B, 4 subs (slowest) / futex 64 B, 4 subs (slowest)",
              p50_slowest(row(r, FO_SHM, G4, 0)), p50_slowest(futex4),
              "the floor of the same shape");
    info_line("futex 64 B, 4 subs (slowest) / futex 64 B, 1 sub", p50_slowest(futex4),
              p50(futex), "the floor's own, for the two above");
    ratio_line("shmbus-shm-fd 64 B, 1 sub / unix-socket", p50(row(r, FO_SHM_FD, G1, 0)),
               p50(unix_s), true, 2);
    for (int g = 0; g < LAT_NGROUPS; g++) {
        snprintf(t, sizeof t, "shmbus-shm 24 MiB / 64 B, %d sub%s", lat_subcounts[g],
                 lat_subcounts[g] > 1 ? "s" : "");
        ratio_line(t, p50(row(r, FO_SHM, g, LAT_SIZE_24M)), p50(row(r, FO_SHM, g, 0)), true,
                   1.2);
    }
    const fo_result *fs = row(r, FO_SHM, G1, 0), *fn = row(r, FO_SHMBUS, G1, 0);
    ratio_line("unpaced 64 B msgs/s, shmbus-shm / shmbus (nng)", fs ? fs->flood_per_s : 0,
               fn ? fn->flood_per_s : 0, false, 5);
    /* The machine's own: a receiver asleep while a large payload is written wakes slower. */
    info_line("futex 24 MiB / futex 64 B, 1 sub", p50(row(r, FO_FUTEX, G1, LAT_SIZE_24M)),
              p50(futex), "the floor's own, for the flatness above");
    info_line("shmbus-shm 24 MiB, 1 sub / futex 24 MiB, 1 sub",
              p50(row(r, FO_SHM, G1, LAT_SIZE_24M)), p50(row(r, FO_FUTEX, G1, LAT_SIZE_24M)),
              "the floor of the same shape");
    info_line("shmbus-shm 24 MiB, 4 subs (slowest) / futex 24 MiB, 4 subs (slowest)",
              p50_slowest(row(r, FO_SHM, G4, LAT_SIZE_24M)),
              p50_slowest(row(r, FO_FUTEX, G4, LAT_SIZE_24M)), "the floor of the same shape");
}

void lat_print_table(const fo_run *r)
{
    printf("shmbus-bench latency: publish to receive, %ld CPUs online; latency in us, rate in "
           "msgs/s\n\n", sysconf(_SC_NPROCESSORS_ONLN));
    pair_table(r, FO_SHMBUS, FO_NNG, "- copy/shmbus -", q_copy);
    printf("\n");
    pair_table(r, FO_SHM, FO_SHM_FD, "- nng/shm del. -", q_delivery);
    print_floors_and_flood(r);
    print_ratios(r);
    if (!fo_print_losses(r, "\nloss (summed over subscribers, warm-up included):\n", 7,
                         size_name))
        printf("\nloss: none (every subscriber got every message; shmbus counted 0 expired, "
               "0 dropped)\n");
    printf("\np50: median of every sample of every subscriber. p99: 99th percentile of the\n"
           "per-message maximum over the subscribers (the slowest one). msgs/s: messages\n"
           "received by every subscriber per second, at most %d in flight. copy/shmbus:\n"
           "how many times longer nng-copy takes (p50), and its throughput relative to\n"
           "shmbus. nng/shm del.: how many times longer shmbus with nng delivery takes than\n"
           "shmbus-shm (p50), and its throughput relative to shmbus-shm.\n",
           FO_WINDOW);
}

static void print_object(jsonw *w, const fo_result *x, int step)
{
    (void)step;
    jsonw_double(w, "p50_us", x->p50_ns / 1e3);
    jsonw_double(w, "p50_slowest_us", x->p50_slowest_ns / 1e3);
    jsonw_double(w, "p99_us", x->p99_ns / 1e3);
    jsonw_double(w, "max_us", x->max_ns / 1e3);
    jsonw_u64(w, "samples", x->samples);
    jsonw_double(w, "msgs_per_s", x->msgs_per_s);
    jsonw_u64(w, "throughput_msgs", x->tput_msgs);
    if (x->flood_sent) {
        jsonw_double(w, "unpaced_msgs_per_s", x->flood_per_s);
        jsonw_u64(w, "unpaced_sent", x->flood_sent);
        jsonw_u64(w, "unpaced_received", x->flood_received);
    }
}

void lat_print_json(const fo_run *r)
{
    fo_print_json(r, "msg", print_object);
}

int lat_plot(const fo_run *r, const char *png)
{
    static bench_series s[FO_NTRANSPORTS * LAT_NGROUPS];
    bench_plot_labels l = {.title = "shmbus-bench latency: publish to receive, p50",
                           .xlabel = "payload size", .ylabel = "p50 latency (us)",
                           .nxtics = LAT_NSIZES};
    for (int i = 0; i < LAT_NSIZES; i++) {
        l.xtic[i] = (double)lat_sizes[i];
        tool_fmt_size_exact(l.xtic_name[i], sizeof l.xtic_name[i], lat_sizes[i]);
    }
    int n = 0;
    for (int t = 0; t < FO_NTRANSPORTS; t++)
        for (int g = 0; g < LAT_NGROUPS; g++) {
            bench_series *x = &s[n];
            memset(x, 0, sizeof *x);
            snprintf(x->title, sizeof x->title, "%s%s, %d sub%s", fo_transport_names[t],
                     (FO_FLOOR_BITS & FO_BIT(t)) ? " (floor)" : "", lat_subcounts[g],
                     lat_subcounts[g] > 1 ? "s" : "");
            x->dashed = g > 0;
            x->color = t;
            for (int i = 0; i < LAT_NSIZES; i++) {
                const fo_result *v = row(r, t, g, i);
                if (v && v->p50_ns > 0) {
                    x->x[x->n] = (double)v->size;
                    x->y[x->n++] = v->p50_ns / 1e3;
                }
            }
            n += x->n > 0;
        }
    return bench_plot_write(png, &l, s, n);
}
