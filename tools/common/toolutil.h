/* Helpers shared by the operator tools (shmbus-monitor and the shmbus CLI): finding the
 * domain from --domain / --config, printing errors with the library's detail, parsing and
 * formatting sizes, rates and durations, and the clock.
 *
 * Built on api/shmbus.h and libc only, like the tools themselves. Nothing here keeps state
 * between calls, except that formatting functions write into the caller's buffer.
 */
#ifndef SHMBUS_TOOLUTIL_H
#define SHMBUS_TOOLUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus.h"

#define TOOL_NAME_MAX 32 /* domain names: 31 characters and the terminator */

/* Exit codes of every program in build/bin (docs/cli.md, "Exit codes"). The camera examples
 * use the same numbers (examples/camera/app.h). */
enum {
    TOOL_EXIT_OK = 0,
    TOOL_EXIT_ERROR = 1,    /* a runtime error, or a check found a problem */
    TOOL_EXIT_USAGE = 2,    /* bad command line */
    TOOL_EXIT_NOTFOUND = 3, /* no such domain, topic, file or device */
    TOOL_EXIT_CONFIG = 4,   /* the configuration file is invalid or unreadable */
};

/* ---- domain selection ------------------------------------------------------------------ */

/* Which domain a tool works on: --domain NAME wins, else the "domain" of --config FILE, else
 * "default". Fills name (TOOL_NAME_MAX bytes). With a config file, loads it (into *summary
 * if not NULL) and returns its status: SHMBUS_ECONFIG, SHMBUS_ENOENT or SHMBUS_EACCES with
 * shmbus_last_error() naming the file. Without one, *summary is the embedded default. */
int tool_resolve_domain(const char *domain_opt, const char *config, char *name,
                        shmbus_config_summary *summary);

/* Open `name` as an observer (reads only, joins nothing). SHMBUS_ENOENT if it is not
 * running. A domain caught while another process creates it (SHMBUS_EBADSEG: headers not
 * written yet) is tried again for up to a second. *out is the caller's:
 * shmbus_domain_close(). */
int tool_observe(const char *name, shmbus_domain **out);

/* Print "<prog>: <message>: <shmbus_strerror(rc)>" and, when the library left one, the
 * detail of shmbus_last_error() ("... (detail)"), on stderr. Call it right after the failed
 * library call: the detail lives only until the next call. */
void tool_error(const char *prog, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The name among names[0..n) (each `stride` bytes apart) nearest to `name` by edit distance,
 * if it is near enough to be a likely typo (at most a third of its length, at least 1, and
 * not `name` itself); NULL if none is. */
const char *tool_nearest(const char *name, const char *names, size_t stride, unsigned n);

/* Fit a line into `width` columns (bytes: the tools print ASCII): if it is longer, cut it at
 * the last space that leaves room for the mark "..>" and end it with that mark, so a cut line
 * never ends in the middle of a number. Returns line. */
char *tool_fit_line(char *line, size_t width);

/* ---- numbers in and out ---------------------------------------------------------------- */

/* Sizes ("4KiB", "1.5 MiB") are read by shmbus_parse_size (the configuration's grammar). */
/* A non-negative decimal integer <= max. */
bool tool_parse_uint(const char *s, uint64_t max, uint64_t *out);
/* A finite non-negative decimal number ("2.5"). */
bool tool_parse_double(const char *s, double *out);

/* Formatting into buf (returned): sizes with binary units ("6.0 MiB", "512 B"); rates of
 * bytes with decimal units ("186.6 MB/s"); latencies and ages ("850 us", "12.3 ms",
 * "4.2 s", "3 min"). compact drops the space and the "/s" ("186.6M"). */
const char *tool_fmt_size(char *buf, size_t len, uint64_t bytes);
/* Exact sizes for tables of sizes that are round: the largest binary unit that divides the
 * size ("64 B", "4 KiB", "8 MiB", "1536 KiB"). */
const char *tool_fmt_size_exact(char *buf, size_t len, uint64_t bytes);
/* A topic's delivery as its config writes it: "nng" or "shm". */
const char *tool_delivery_name(uint32_t delivery);
const char *tool_fmt_bw(char *buf, size_t len, double bytes_per_s, bool compact);
const char *tool_fmt_ns(char *buf, size_t len, uint64_t ns);
/* Rates in Hz with 3 significant digits or so: "0", "0.25", "30.0", "1200". */
const char *tool_fmt_hz(char *buf, size_t len, double hz);

/* ---- time ------------------------------------------------------------------------------ */

uint64_t tool_now_ns(void);           /* CLOCK_MONOTONIC */
void tool_sleep_ns(uint64_t ns);      /* returns early only on a signal */

/* SIGINT, SIGTERM and SIGHUP set a flag (no SA_RESTART, so blocking calls return EINTR);
 * SIGPIPE is ignored, so a closed output shows as a write error instead. */
void tool_catch_signals(void);
bool tool_stop_requested(void);

#endif
