/* shmbus-bench: a log-log line plot as a PNG, drawn by gnuplot (Debian package gnuplot-nox)
 * run as a child process on a data file and a script in a temp directory of its own.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmbus.h"

extern char **environ;

#define GNUPLOT "gnuplot"

static const char *const palette[8] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                       "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

int bench_plot_check(const char *png)
{
    if (strpbrk(png, "'\n\\")) {
        fprintf(stderr, "shmbus-bench: --plot %s: the file name may not contain a quote, a "
                        "backslash or a newline\n", png);
        return 1;
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char file[4096];
        if (n > 0 && n + sizeof GNUPLOT + 1 < sizeof file) {
            snprintf(file, sizeof file, "%.*s/%s", (int)n, p, GNUPLOT);
            if (access(file, X_OK) == 0)
                return 0;
        }
        p = end ? end + 1 : p + n;
    }
    fprintf(stderr, "shmbus-bench: --plot needs gnuplot, which is not in PATH (on Debian: "
                    "apt-get install gnuplot-nox, or run scripts/deps.sh)\n");
    return 1;
}

/* The data file: one block per series (two blank lines apart, gnuplot's "index"). */
static int write_data(const char *file, const bench_series *s, int n)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return SHMBUS_ESYS;
    for (int i = 0; i < n; i++) {
        fprintf(f, "# %s\n", s[i].title);
        for (int j = 0; j < s[i].n; j++)
            fprintf(f, "%.17g %.17g\n", s[i].x[j], s[i].y[j]);
        fprintf(f, "\n\n");
    }
    return fclose(f) == 0 ? 0 : SHMBUS_ESYS;
}

static int write_script(const char *file, const char *data, const char *png,
                        const bench_plot_labels *l, const bench_series *s, int n)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return SHMBUS_ESYS;
    fprintf(f, "set terminal pngcairo size 1100,700 font 'sans,10'\n"
               "set output '%s'\n"
               "set title '%s'\n"
               "set xlabel '%s'\nset ylabel '%s'\n"
               "set logscale xy\nset grid xtics ytics mxtics mytics lw 0.5\n"
               "set key outside right top\n",
            png, l->title, l->xlabel, l->ylabel);
    if (l->nxtics > 0) {
        fprintf(f, "set xtics (");
        for (int i = 0; i < l->nxtics; i++)
            fprintf(f, "%s'%s' %.17g", i ? ", " : "", l->xtic_name[i], l->xtic[i]);
        fprintf(f, ")\n");
    }
    fprintf(f, "plot ");
    for (int i = 0; i < n; i++) /* a lone point (a floor): a larger triangle */
        fprintf(f, "%s'%s' index %d using 1:2 with linespoints lw 2 ps %.1f pt %d dt %d "
                   "lc rgb '%s' title '%s'",
                i ? ", \\\n     " : "", data, i, s[i].n == 1 ? 2.0 : 1.3,
                s[i].n == 1 ? 9 : s[i].dashed ? 6 : 7, s[i].dashed ? 2 : 1,
                palette[s[i].color & 7], s[i].title);
    fprintf(f, "\n");
    return fclose(f) == 0 ? 0 : SHMBUS_ESYS;
}

int bench_plot_write(const char *png, const bench_plot_labels *labels, const bench_series *s,
                     int n)
{
    bool bad = labels->nxtics < 0 || labels->nxtics > BENCH_SERIES_MAX;
    for (int i = 0; i < n; i++)
        bad |= strpbrk(s[i].title, "'\n\\") || s[i].n < 1 || s[i].n > BENCH_SERIES_MAX;
    for (int i = 0; i < labels->nxtics && !bad; i++)
        bad |= strpbrk(labels->xtic_name[i], "'\n\\") != NULL;
    if (bad)
        return bench_error("plot series", SHMBUS_EINVAL);
    char dir[] = "/tmp/shmbus-bench-plot.XXXXXX", data[64], script[64];
    if (!mkdtemp(dir))
        return bench_error("mkdtemp for the plot", SHMBUS_ESYS);
    snprintf(data, sizeof data, "%s/latency.dat", dir);
    snprintf(script, sizeof script, "%s/latency.gp", dir);
    int rc = write_data(data, s, n);
    if (rc == 0)
        rc = write_script(script, data, png, labels, s, n);
    int status = rc ? bench_error("writing the plot's data", rc) : 0;
    if (status == 0) {
        char *argv[] = {GNUPLOT, script, NULL};
        pid_t pid;
        fflush(NULL);
        int err = posix_spawnp(&pid, GNUPLOT, NULL, NULL, argv, environ);
        int ws = 0;
        if (err == 0)
            while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
                ;
        struct stat st;
        if (err) {
            fprintf(stderr, "shmbus-bench: running gnuplot: %s\n", strerror(err));
            status = 1;
        } else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "shmbus-bench: gnuplot failed (%s %d) drawing %s\n",
                    WIFEXITED(ws) ? "exit status" : "signal",
                    WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), png);
            status = 1;
        } else if (stat(png, &st) != 0 || st.st_size == 0) {
            fprintf(stderr, "shmbus-bench: gnuplot wrote no %s\n", png);
            status = 1;
        }
    }
    unlink(data);
    unlink(script);
    rmdir(dir);
    return status;
}
