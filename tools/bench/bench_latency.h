/* shmbus-bench latency, private: what the subcommand (bench_latency.c) and its report
 * (bench_latency_report.c: the table, the JSON objects, the plot) share. */
#ifndef SHMBUS_BENCH_LATENCY_H
#define SHMBUS_BENCH_LATENCY_H

#include "bench_fanout_defs.h"

#define LAT_NSIZES 6
#define LAT_NGROUPS 2
#define LAT_SIZE_24M 5    /* index of 24 MiB in lat_sizes */
#define LAT_SIZE_8M 4     /* index of 8 MiB */
#define LAT_FD_MAX_SIZE (1u << 20) /* shmbus-shm-fd: sizes up to this, with 1 subscriber */

extern const uint64_t lat_sizes[LAT_NSIZES];      /* 64 B .. 24 MiB */
extern const int lat_subcounts[LAT_NGROUPS];      /* 1, 4 */

/* The table, the floors, the unpaced throughput, the ratios and the targets, on stdout. */
void lat_print_table(const fo_run *r);
/* The JSON array of every row. */
void lat_print_json(const fo_run *r);
/* p50 against the size, log-log, a line per transport and subscriber count (the futex
 * floor too), the unix-socket floor a point; into png. 0, or 1 after printing what
 * failed. */
int lat_plot(const fo_run *r, const char *png);

#endif
