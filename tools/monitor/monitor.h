/* shmbus-monitor: a live view of a domain, like top for the bus (docs/monitor.md).
 *
 * The monitor opens the domain as an observer (opts.observe): it maps the segments
 * read-only, joins nothing and writes nothing, so watching never changes what it shows.
 * Everything it shows comes from shmbus_snapshot_take; rates and latency percentiles come
 * from the difference of two snapshots (tools/common/snapdiff.h).
 *
 * Files: monitor_main.c (options, --once/--json, the domain connection), monitor_model.c
 * (snapshots, per-topic rates and rate history, sorting), monitor_fmt.c (the text of each
 * row, shared by the screen and --once), monitor_out.c (--once, --json), monitor_ui.c.
 */
#ifndef SHMBUS_MONITOR_H
#define SHMBUS_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus.h"
#include "snapdiff.h"
#include "toolutil.h"

/* Exit codes: the tools' common set (docs/cli.md, "Exit codes"). */
enum {
    MON_EXIT_OK = TOOL_EXIT_OK,
    MON_EXIT_ERROR = TOOL_EXIT_ERROR,
    MON_EXIT_USAGE = TOOL_EXIT_USAGE,
    MON_EXIT_NODOMAIN = TOOL_EXIT_NOTFOUND,
    MON_EXIT_CONFIG = TOOL_EXIT_CONFIG,
};

#define MON_HISTORY 30 /* rate samples kept per topic: the last 30 refreshes */

typedef struct mon_opts {
    char domain[TOOL_NAME_MAX];
    unsigned interval_ms; /* between refreshes, and between the two snapshots of --once */
    bool once, json, wait, ascii;
} mon_opts;

typedef enum { MON_SORT_NAME, MON_SORT_RATE, MON_SORT_BW, MON_SORT_COUNT } mon_sort;

/* The message rate of one topic at each of the last refreshes, oldest first. */
typedef struct mon_hist {
    char name[64];
    double v[MON_HISTORY];
    unsigned n;
} mon_hist;

/* One topic of the current snapshot with what happened since the previous one. */
typedef struct mon_row {
    const shmbus_topic_info *t; /* in model.cur */
    sd_rates r;
    const mon_hist *hist;
} mon_row;

typedef struct mon_model {
    char domain[TOOL_NAME_MAX];
    shmbus_domain *d;           /* NULL while no domain is running */
    shmbus_snapshot *prev, *cur;
    mon_row *rows;              /* cur's topics, in sort order */
    unsigned nrows;
    mon_hist *hist;             /* one per topic of cur */
    unsigned nhist;
    mon_sort sort;
    char status[160];           /* what went wrong at the last refresh, "" if nothing */
} mon_model;

/* Connection: open the domain if it is not open, take a snapshot, move cur to prev, compute
 * the rows and push one rate sample per topic. A domain whose processes are all gone is
 * reopened at the next refresh (another instance may have started). Returns 0 with a
 * snapshot in cur, SHMBUS_ENOENT when no domain is running (cur is NULL then), or another
 * status, with model.status saying what happened. */
int mon_model_refresh(mon_model *m);
void mon_model_sort(mon_model *m);
void mon_model_free(mon_model *m);
const char *mon_sort_name(mon_sort s);

/* ---- row text (monitor_fmt.c) ---------------------------------------------------------- */

/* Column widths of the topics table for a screen `width` columns wide. */
typedef struct mon_layout {
    int width;
    int name;  /* topic name column */
    int spark; /* rate history column */
    int bar;   /* pool usage bar */
    bool utf8;
} mon_layout;

void mon_layout_init(mon_layout *l, int width, bool utf8);

/* Each writes one line (no newline) of at most l->width columns into buf. */
void mon_fmt_topic_header(const mon_layout *l, char *buf, size_t len);
void mon_fmt_topic(const mon_layout *l, const mon_row *r, char *buf, size_t len);
void mon_fmt_pool_header(const mon_layout *l, char *buf, size_t len);
void mon_fmt_pool_class(const mon_layout *l, const shmbus_pool_info *p, unsigned cls,
                        char *buf, size_t len);
/* "held by name[pid] N blocks, oldest 2.1 s; ..."; returns false if nobody holds a block. */
bool mon_fmt_holders(const mon_layout *l, const shmbus_snapshot *s, const shmbus_pool_info *p,
                     char *buf, size_t len);
void mon_fmt_part_header(const mon_layout *l, char *buf, size_t len);
void mon_fmt_part(const mon_layout *l, const shmbus_participant_info *p, char *buf, size_t len);
void mon_fmt_pub_header(const mon_layout *l, char *buf, size_t len);
void mon_fmt_pub(const mon_layout *l, const mon_model *m, const shmbus_topic_info *t,
                 const shmbus_pub_info *p, char *buf, size_t len);
void mon_fmt_sub_header(const mon_layout *l, char *buf, size_t len);
void mon_fmt_sub(const mon_layout *l, const mon_model *m, const shmbus_topic_info *t,
                 const shmbus_sub_info *s, char *buf, size_t len);
/* A sparkline of h's last `width` samples, scaled to their maximum. */
void mon_fmt_spark(const mon_hist *h, int width, bool utf8, char *buf, size_t len);
/* Latency for a table: "850us", "12.3ms", "-" when there is none. */
const char *mon_fmt_lat(char *buf, size_t len, bool has, uint64_t ns);

/* ---- output ---------------------------------------------------------------------------- */

void mon_print_text(const mon_model *m, const mon_opts *o);  /* --once */
void mon_print_json(const mon_model *m, const mon_opts *o);  /* --json */
int mon_run_ui(mon_model *m, const mon_opts *o);             /* the live screen */

#endif
