/* shmbus-bench pool: what a loan, an acquire and a release cost, next to what one would use
 * without shmbus.
 *
 * Each row is ns per operation pair, the median of REPS windows of wall time after a short
 * warm-up; no payload byte is ever touched:
 *   malloc+free      malloc(size) then free (baseline)
 *   naive get+put    pop then push a block index on a free-list in MAP_SHARED|MAP_ANONYMOUS
 *                    memory under a process-shared pthread mutex, one list per size (baseline)
 *   loan+release     shmbus_pool_loan (timeout 0) then shmbus_msg_release
 *   acquire+release  a second participant (a second domain object of this process) acquires
 *                    a block another participant loaned and described, then releases it
 *   clone+release    one more handle on a held message, released (no shared memory)
 * in 1 process, and with 2 processes hammering the same pool and class for the same wall
 * time. The second process is forked before it opens the domain and opens it itself; for
 * acquire it gets the descriptor over a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_pool.h"

#define REPS 5          /* windows per row; the median is reported */
#define WARMUP_DIV 4    /* the warm-up window is a quarter of a window */
#define NSIZES 4
/* malloc, naive and loan in 1 process; naive and loan in 2; acquire in 1 and 2; clone */
#define NROWS (3 * NSIZES + 2 * NSIZES + 2 + 1)

static const uint64_t sizes[NSIZES] = {64, 4096, 65536, 8u << 20};
static const uint32_t counts[NSIZES] = {64, 64, 16, 4}; /* ample for two loaners at once */

enum op { OP_MALLOC, OP_NAIVE, OP_LOAN, OP_ACQUIRE, OP_CLONE };
static const char *const op_names[] = {"malloc+free", "naive get+put", "loan+release",
                                       "acquire+release", "clone+release"};

struct row {
    enum op op;
    uint64_t size;
    int procs;
    double ns;         /* per pair as one process sees it: procs / (pairs per ns, all) */
    double ns_each[2]; /* each process's own */
    double mops;       /* pairs per microsecond, all processes together */
    uint64_t ops;      /* pairs in the reported window, all processes */
    uint64_t retries;  /* loans in that window that got SHMBUS_EFULL and were retried */
    double cpu_share;  /* least CPU time / wall time of any process in that window */
};

struct bench {
    uint64_t rep_ns;
    bool progress;
    char domain[32];
    shmbus_domain *d1;  /* creates the pool, loans */
    shmbus_domain *d2;  /* a second participant: acquires */
    shmbus_pool *pool;  /* in d1 */
    shmbus_msg *held;   /* 64 B block, loaned by d1 and described: acquired and cloned */
    shmbus_desc desc;
    bp_naive *naive[NSIZES];
    struct row rows[NROWS];
    int nrows;
    shmbus_class_stats stats[NSIZES]; /* of the pool, at the end of the run */
};

/* ---- measuring -------------------------------------------------------------------------- */

static void row_title(const struct row *r, char *buf, size_t len)
{
    char sz[32];
    tool_fmt_size_exact(sz, sizeof sz, r->size);
    snprintf(buf, len, "%s %s, %d process%s", op_names[r->op], sz, r->procs,
             r->procs > 1 ? "es" : "");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One window: ns per pair (1 process) or pairs per ns (2 processes), the sort key first. */
struct rep {
    double key;
    double each[2]; /* ns per pair of each process */
    uint64_t ops, retries;
    double cpu_share;
};

static double cpu_share(const bench_window *w)
{
    return w->ns ? (double)w->cpu_ns / (double)w->ns : 0;
}

static int cmp_rep(const void *a, const void *b)
{
    return cmp_double(&((const struct rep *)a)->key, &((const struct rep *)b)->key);
}

static struct row *row_begin(struct bench *b, enum op op, uint64_t size, int procs)
{
    struct row *r = &b->rows[b->nrows++];
    *r = (struct row){.op = op, .size = size, .procs = procs};
    if (b->progress) {
        char t[96];
        row_title(r, t, sizeof t);
        fprintf(stderr, "\r\033[K[%2d/%d] %s", b->nrows, NROWS, t);
    }
    return r;
}

static int row_failed(const struct bench *b, const struct row *r, bool partner, int rc)
{
    char what[160], t[96];
    row_title(r, t, sizeof t);
    snprintf(what, sizeof what, "%s%s", t, partner ? " (second process)" : "");
    if (b->progress)
        fputc('\n', stderr);
    return bench_error(what, rc);
}

/* This process alone. */
static int measure_solo(struct bench *b, enum op op, uint64_t size, bench_batch_fn fn, void *ctx)
{
    struct row *r = row_begin(b, op, size, 1);
    struct rep reps[REPS];
    bench_window w;
    uint64_t t = tool_now_ns();
    int rc = bench_run_window(fn, ctx, t, t + b->rep_ns / WARMUP_DIV, &w);
    for (int i = 0; i < REPS && rc == 0; i++) {
        t = tool_now_ns();
        rc = bench_run_window(fn, ctx, t, t + b->rep_ns, &w);
        if (rc)
            break;
        reps[i] = (struct rep){.key = (double)w.ns / (double)w.ops, .ops = w.ops,
                               .retries = w.retries, .cpu_share = cpu_share(&w)};
    }
    if (rc)
        return row_failed(b, r, false, rc);
    qsort(reps, REPS, sizeof reps[0], cmp_rep);
    const struct rep *med = &reps[REPS / 2];
    r->ns = r->ns_each[0] = med->key;
    r->mops = 1e3 / r->ns;
    r->ops = med->ops;
    r->retries = med->retries;
    r->cpu_share = med->cpu_share;
    return 0;
}

/* This process (fn on ctx) and a forked partner, over the same windows; the window with the
 * median total rate is reported. */
static int measure_pair(struct bench *b, enum op op, uint64_t size, const bench_child *child,
                        const void *arg, const void *msg, size_t len, bench_batch_fn fn,
                        void *ctx)
{
    struct row *r = row_begin(b, op, size, 2);
    struct rep reps[REPS];
    bench_pair pair;
    int rc = bench_pair_start(&pair, child, arg, msg, len);
    if (rc)
        return row_failed(b, r, pair.child_failed, rc);
    bench_window w[2];
    rc = bench_pair_window(&pair, fn, ctx, b->rep_ns / WARMUP_DIV, w);
    for (int i = 0; i < REPS && rc == 0; i++) {
        rc = bench_pair_window(&pair, fn, ctx, b->rep_ns, w);
        if (rc)
            break;
        reps[i] = (struct rep){.key = 0, .cpu_share = 1};
        for (int k = 0; k < 2; k++) {
            if (cpu_share(&w[k]) < reps[i].cpu_share)
                reps[i].cpu_share = cpu_share(&w[k]);
            reps[i].each[k] = (double)w[k].ns / (double)w[k].ops;
            reps[i].key += 1.0 / reps[i].each[k];
            reps[i].ops += w[k].ops;
            reps[i].retries += w[k].retries;
        }
    }
    bool partner = pair.child_failed;
    int frc = bench_pair_finish(&pair);
    if (rc == 0 && frc != 0) {
        rc = frc;
        partner = true;
    }
    if (rc)
        return row_failed(b, r, partner, rc);
    qsort(reps, REPS, sizeof reps[0], cmp_rep);
    const struct rep *med = &reps[REPS / 2];
    r->ns = 2.0 / med->key;
    r->ns_each[0] = med->each[0];
    r->ns_each[1] = med->each[1];
    r->mops = med->key * 1e3;
    r->ops = med->ops;
    r->retries = med->retries;
    r->cpu_share = med->cpu_share;
    return 0;
}

static int run_all(struct bench *b)
{
    int rc = 0;
    for (int i = 0; i < NSIZES && rc == 0; i++) {
        size_t size = (size_t)sizes[i];
        rc = measure_solo(b, OP_MALLOC, sizes[i], bp_malloc_batch, &size);
    }
    for (int i = 0; i < NSIZES && rc == 0; i++)
        rc = measure_solo(b, OP_NAIVE, sizes[i], bp_naive_batch, b->naive[i]);
    for (int i = 0; i < NSIZES && rc == 0; i++)
        rc = measure_pair(b, OP_NAIVE, sizes[i], &bp_naive_partner, b->naive[i], NULL, 0,
                          bp_naive_batch, b->naive[i]);
    for (int i = 0; i < NSIZES && rc == 0; i++) {
        struct bp_loan c = {b->pool, sizes[i]};
        rc = measure_solo(b, OP_LOAN, sizes[i], bp_loan_batch, &c);
    }
    for (int i = 0; i < NSIZES && rc == 0; i++) {
        struct bp_loan c = {b->pool, sizes[i]};
        struct bp_partner_arg a = {b->domain, sizes[i]};
        rc = measure_pair(b, OP_LOAN, sizes[i], &bp_loan_partner, &a, NULL, 0, bp_loan_batch,
                          &c);
    }
    struct bp_acquire ac = {b->d2, b->desc};
    struct bp_partner_arg a = {b->domain, sizes[0]};
    if (rc == 0)
        rc = measure_solo(b, OP_ACQUIRE, sizes[0], bp_acquire_batch, &ac);
    if (rc == 0)
        rc = measure_pair(b, OP_ACQUIRE, sizes[0], &bp_acquire_partner, &a, &b->desc,
                          sizeof b->desc, bp_acquire_batch, &ac);
    if (rc == 0)
        rc = measure_solo(b, OP_CLONE, sizes[0], bp_clone_batch, b->held);
    if (b->progress)
        fprintf(stderr, "\r\033[K");
    return rc;
}

/* ---- set-up and tear-down --------------------------------------------------------------- */

static int setup(struct bench *b)
{
    int rc;
    for (int i = 0; i < NSIZES; i++)
        if ((rc = bp_naive_create(sizes[i], counts[i], &b->naive[i])) != 0)
            return bench_error("naive pool: mmap", rc);
    snprintf(b->domain, sizeof b->domain, "bench%d", (int)getpid());
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.name = "bench";
    if ((rc = shmbus_domain_open(b->domain, &o, &b->d1)) != 0)
        return bench_error("shmbus_domain_open", rc);
    shmbus_pool_class classes[NSIZES];
    for (int i = 0; i < NSIZES; i++)
        classes[i] = (shmbus_pool_class){.block_size = sizes[i], .count = counts[i]};
    if ((rc = shmbus_pool_open(b->d1, BP_POOL_NAME, classes, NSIZES, &b->pool)) != 0)
        return bench_error("shmbus_pool_open", rc);
    o.name = "bench-2";
    if ((rc = shmbus_domain_open(b->domain, &o, &b->d2)) != 0)
        return bench_error("shmbus_domain_open (second participant)", rc);
    if ((rc = shmbus_pool_loan(b->pool, sizes[0], 0, &b->held)) != 0)
        return bench_error("shmbus_pool_loan", rc);
    if ((rc = shmbus_msg_describe(b->held, sizes[0], &b->desc)) != 0)
        return bench_error("shmbus_msg_describe", rc);
    return 0;
}

/* Undo whatever setup() did; 0, or 1 after reporting. */
static int teardown(struct bench *b)
{
    int rc, status = 0;
    if (b->held && (rc = shmbus_msg_release(b->held)) != 0)
        status = bench_error("shmbus_msg_release", rc);
    if (b->pool && status == 0) { /* every loan of the run must be back */
        int n = shmbus_pool_stats(b->pool, b->stats, NSIZES);
        for (int i = 0; i < n && status == 0; i++)
            if (b->stats[i].used != 0)
                status = bench_error("blocks still in use after the run", SHMBUS_EBUSY);
    }
    if (b->d2 && (rc = shmbus_domain_close(b->d2)) != 0)
        status = bench_error("shmbus_domain_close (second participant)", rc);
    if (b->d1 && (rc = shmbus_domain_close(b->d1)) != 0)
        status = bench_error("shmbus_domain_close", rc);
    for (int i = 0; i < NSIZES; i++)
        if (b->naive[i])
            bp_naive_destroy(b->naive[i]);
    return status;
}

/* ---- output ----------------------------------------------------------------------------- */

static const struct row *find_row(const struct bench *b, enum op op, uint64_t size, int procs)
{
    for (int i = 0; i < b->nrows; i++)
        if (b->rows[i].op == op && b->rows[i].size == size && b->rows[i].procs == procs)
            return &b->rows[i];
    return NULL;
}

/* shmbus rows are compared with the naive pool (same size and processes), the naive pool
 * with malloc; every row but malloc's also with malloc (same size, 1 process). */
static const struct row *baseline_of(const struct bench *b, const struct row *r)
{
    switch (r->op) {
    case OP_MALLOC:
        return NULL;
    case OP_NAIVE:
        return find_row(b, OP_MALLOC, r->size, 1);
    default:
        return find_row(b, OP_NAIVE, r->size, r->procs);
    }
}

static const struct row *malloc_of(const struct bench *b, const struct row *r)
{
    return r->op == OP_MALLOC ? NULL : find_row(b, OP_MALLOC, r->size, 1);
}

#define CPU_SHARE_LOW 0.9 /* below: the row's process slept or was preempted */

static void print_table(const struct bench *b)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("shmbus-bench pool: %d windows of %.3f s per row, median; %ld CPUs online; "
           "payloads never touched\n\n",
           REPS, (double)b->rep_ns / 1e9, cpus);
    printf("%-15s %7s %5s %8s %18s %8s %4s %13s %9s\n", "operation", "size", "procs", "ns/op",
           "ns/op each proc.", "Mops/s", "cpu", "vs naive pool", "vs malloc");
    bool low = false;
    for (int i = 0; i < b->nrows; i++) {
        const struct row *r = &b->rows[i];
        const struct row *base = baseline_of(b, r), *m = malloc_of(b, r);
        char sz[32], each[32] = "", vn[32] = "", vm[32] = "";
        tool_fmt_size_exact(sz, sizeof sz, r->size);
        if (r->procs == 2)
            snprintf(each, sizeof each, "%.1f / %.1f", r->ns_each[0], r->ns_each[1]);
        if (base && base->op == OP_NAIVE)
            snprintf(vn, sizeof vn, "%.2fx", r->ns / base->ns);
        if (m)
            snprintf(vm, sizeof vm, "%.2fx", r->ns / m->ns);
        low |= r->cpu_share < CPU_SHARE_LOW;
        printf("%-15s %7s %5d %8.1f %18s %8.2f %3.0f%%%s %12s %9s\n", op_names[r->op], sz,
               r->procs, r->ns, each, r->mops, 100 * r->cpu_share,
               r->cpu_share < CPU_SHARE_LOW ? "!" : " ", vn, vm);
    }
    printf("\nns/op: one pair (loan then release, ...) as one process sees it; with 2 processes\n"
           "       2 / (total rate), next to each process's own. Mops/s: pairs per second, all\n"
           "       processes together. cpu: CPU time / wall time of the least served process.\n"
           "vs naive pool: ns/op over naive get+put of the same size and process count.\n"
           "vs malloc: ns/op over malloc+free of the same size in 1 process.\n");
    if (low)
        printf("note: in rows marked ! a process was off its CPU for over %.0f%% of the time: "
               "it slept\n      (a contended mutex does) or something else ran there; run "
               "again on a quiet machine.\n",
               100 * (1 - CPU_SHARE_LOW));
    for (int i = 0; i < b->nrows; i++) {
        const struct row *r = &b->rows[i];
        if (r->retries == 0)
            continue;
        char t[96];
        row_title(r, t, sizeof t);
        int k = 0;
        while (k < NSIZES - 1 && sizes[k] != r->size)
            k++;
        printf("note: %s: %llu of %llu loans in the reported window got SHMBUS_EFULL (retried,\n"
               "      time included), though each process holds at most 1 of the class's %u "
               "blocks (high water %u)\n",
               t, (unsigned long long)r->retries, (unsigned long long)(r->ops + r->retries),
               b->stats[k].total, b->stats[k].high_water);
    }
}

static void print_json(const struct bench *b)
{
    jsonw w;
    jsonw_init(&w, stdout, true);
    jsonw_array(&w, NULL);
    for (int i = 0; i < b->nrows; i++) {
        const struct row *r = &b->rows[i];
        const struct row *base = baseline_of(b, r), *m = malloc_of(b, r);
        jsonw_object(&w, NULL);
        jsonw_str(&w, "op", op_names[r->op]);
        jsonw_u64(&w, "size", r->size);
        jsonw_i64(&w, "processes", r->procs);
        jsonw_double(&w, "ns_per_op", r->ns);
        if (base) {
            jsonw_str(&w, "baseline", op_names[base->op]);
            jsonw_double(&w, "ratio", r->ns / base->ns);
        } else {
            jsonw_null(&w, "baseline");
            jsonw_null(&w, "ratio");
        }
        jsonw_array(&w, "ns_per_op_each");
        for (int k = 0; k < r->procs && k < 2; k++)
            jsonw_double(&w, NULL, r->ns_each[k]);
        jsonw_end_array(&w);
        jsonw_double(&w, "mops_per_s", r->mops);
        jsonw_double(&w, "cpu_share", r->cpu_share);
        jsonw_u64(&w, "retries", r->retries);
        if (m)
            jsonw_double(&w, "ratio_vs_malloc", r->ns / m->ns);
        else
            jsonw_null(&w, "ratio_vs_malloc");
        jsonw_end_object(&w);
    }
    jsonw_end_array(&w);
    jsonw_finish(&w);
}

/* ---- the subcommand --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-bench pool [--seconds S] [--json]\n\n"
            "Cost of shmbus_pool_loan + shmbus_msg_release (64 B, 4 KiB, 64 KiB, 8 MiB),\n"
            "shmbus_domain_acquire + release by a second participant, and clone + release,\n"
            "in 1 process and with 2 processes contending, next to malloc+free and a naive\n"
            "shared pool (free-list under a process-shared mutex).\n\n"
            "  --seconds S  total measuring time, about (default 15)\n"
            "  --json       a JSON array of rows instead of the table\n");
}

int bench_pool(int argc, char **argv)
{
    bench_opts o = {.takes = BENCH_OPT_SECONDS, .max_seconds = 86400, .seconds = 15};
    int status = bench_parse_opts(argc, argv, &o, usage);
    if (status >= 0)
        return status;

    struct bench b = {0};
    b.rep_ns = (uint64_t)(o.seconds * 1e9 / (NROWS * (REPS + 1.0 / WARMUP_DIV)));
    if (b.rep_ns < 1000000)
        b.rep_ns = 1000000;
    b.progress = isatty(STDERR_FILENO);
    status = setup(&b);
    if (status == 0)
        status = run_all(&b) ? 1 : 0;
    if (teardown(&b) != 0)
        status = 1;
    if (status == 0) {
        if (o.json)
            print_json(&b);
        else
            print_table(&b);
    }
    return status;
}
