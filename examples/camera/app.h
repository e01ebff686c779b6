/* What every camera program does the same way: stop cleanly on SIGINT/SIGTERM, parse the
 * options they share, open the domain, report shmbus errors with their detail, subscribe and
 * wait for frames, parse option values.
 * Uses only api/shmbus.h and libc.
 *
 * Signals: app_signals_init() blocks SIGINT, SIGTERM and SIGHUP in the calling thread before
 * any other thread exists, so every thread (shmbus's reaper, discovery and transport threads
 * too) inherits the block, and one small thread takes them with sigwait(). It sets the stop
 * flag and makes app_stop_fd() readable; every wait in the programs polls that descriptor
 * along with what it waits for, so a stop is seen at once and never lost between a check
 * and a wait. A second signal (a second or more after the first) ends the process at once;
 * the bus reclaims what it held. */
#ifndef CAM_APP_H
#define CAM_APP_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "shmbus.h"

#define APP_DEFAULT_TOPIC "camera/front"

/* Exit codes: the same set as every program of shmbus (docs/cli.md, "Exit codes"). */
enum {
    APP_EXIT_OK = 0,
    APP_EXIT_ERROR = 1,    /* a bus or system error; frames that failed their check */
    APP_EXIT_USAGE = 2,    /* bad command line */
    APP_EXIT_NOTFOUND = 3, /* no such topic, input file or device */
    APP_EXIT_CONFIG = 4,   /* the configuration file is invalid or unreadable */
};

/* The options the programs take alike (app_getopt). Set prog, usage and topic first. */
typedef struct app_common {
    const char *prog;    /* for messages */
    const char *usage;   /* what --help prints */
    const char *config;  /* --config FILE, NULL: the embedded default */
    const char *domain;  /* --domain NAME, NULL: the config's */
    const char *topic;   /* --topic T */
    const char *name;    /* --name N: participant name shown by tools */
    const char *summary; /* --summary FILE: a JSON summary at the end */
    uint64_t count;      /* --count N: stop after N frames; 0: no limit */
    bool quiet;          /* -q, --quiet */
    /* the subscribers' (frame-sink, frame-stats) */
    uint64_t delay_ms;   /* --delay-ms MS: hold each frame that much longer */
    bool follow;         /* --follow: keep waiting when the publishers leave */
    bool history;        /* --history: start with the frames the publishers still hold */
} app_common;

/* getopt_long codes of the options app_getopt handles itself (and 'q', 'h'); a program
 * numbers its own from APP_OPT_OWN. */
enum { APP_OPT_CONFIG = 256, APP_OPT_DOMAIN, APP_OPT_TOPIC, APP_OPT_NAME, APP_OPT_SUMMARY,
       APP_OPT_COUNT, APP_OPT_DELAY, APP_OPT_FOLLOW, APP_OPT_HISTORY, APP_OPT_OWN };

/* Rows of a program's longopts table, one for each option of app_common; the bus options
 * together, and the rows that end every table. */
#define APP_LONGOPT_COUNT {"count", required_argument, 0, APP_OPT_COUNT}
#define APP_LONGOPT_DELAY {"delay-ms", required_argument, 0, APP_OPT_DELAY}
#define APP_LONGOPT_FOLLOW {"follow", no_argument, 0, APP_OPT_FOLLOW}
#define APP_LONGOPT_HISTORY {"history", no_argument, 0, APP_OPT_HISTORY}
#define APP_LONGOPT_SUMMARY {"summary", required_argument, 0, APP_OPT_SUMMARY}
#define APP_LONGOPTS_BUS                                                                      \
    {"config", required_argument, 0, APP_OPT_CONFIG},                                         \
    {"domain", required_argument, 0, APP_OPT_DOMAIN},                                         \
    {"topic", required_argument, 0, APP_OPT_TOPIC}, {"name", required_argument, 0, APP_OPT_NAME}
#define APP_LONGOPTS_END                                                                      \
    {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}

/* getopt_long (short options "qh") over argv with longopts. Takes the options of app_common
 * itself, prints c->usage and exits 0 on --help, and exits with a usage error on an unknown
 * option, a bad value, or an operand left at the end. Returns the next of the program's own
 * options (optarg set), or -1 when there is none left. */
int app_getopt(app_common *c, int argc, char **argv, const struct option *longopts);

/* Call first in main(). Returns 0, or -1 (printed) if the signal thread cannot start. */
int app_signals_init(const char *prog);
bool app_stopping(void);
int app_stop_fd(void);
/* Sleep until the absolute CLOCK_MONOTONIC time deadline_ns; false if told to stop first. */
bool app_sleep_until(uint64_t deadline_ns);

uint64_t app_now_ns(void);

/* "prog: what: <shmbus_strerror(rc)> (<shmbus_last_error()>)" on stderr. Call right after
 * the failing call: the detail is only kept until the next shmbus call. */
void app_fail(const char *prog, const char *what, int rc);

/* Open the domain of c (config, domain, name). Prints the error, naming the domain; returns
 * a shmbus status. */
int app_open_domain(const app_common *c, shmbus_domain **out);
/* The exit code for a failed app_open_domain. */
int app_exit_for_open(int rc);

/* Open the domain of c and subscribe to c->topic (with c->history); without a publisher yet,
 * say once that it waits for one (unless quiet). 0, or the exit code after printing what
 * failed (nothing is left open). */
int app_subscribe(const app_common *c, shmbus_domain **d, shmbus_sub **s);
/* Close what app_subscribe opened. 0, or 1 after printing what failed. */
int app_unsubscribe(const app_common *c, shmbus_sub *s, shmbus_domain *d);

/* Receiving with an end: a subscriber ends when its topic's publishers have all left (after
 * at least one was seen; none connected for APP_RX_GONE_NS) and everything they sent has been
 * taken, unless c->follow is set. */
typedef struct app_rx {
    const app_common *c;
    shmbus_sub *sub;
    bool seen_pub;
    uint64_t none_since; /* when the publisher count was first seen at 0; 0: it is not */
} app_rx;

#define APP_RX_GONE_NS 1000000000ull /* no publisher connected this long: they have left */

enum { APP_RX_END = 1 }; /* the publishers left, or a stop signal came */

/* The next message (0, *out is the caller's), APP_RX_END, SHMBUS_ETIMEDOUT after timeout_ms
 * (< 0: no timeout) or another shmbus error, printed ("prog: receiving: ..."). */
int app_rx_next(app_rx *rx, int timeout_ms, shmbus_msg **out);
/* Release a message app_rx_next gave, having held it c->delay_ms longer (--delay-ms: a slow
 * subscriber on purpose). */
void app_rx_release(const app_rx *rx, shmbus_msg *m);

/* Sequence gaps per publisher (shmbus_msg_seq numbers each publisher's messages 1, 2, ...):
 * the messages a subscriber never got between two it did get. */
#define APP_SEQ_PUBS 16
typedef struct app_seq {
    uint64_t pub[APP_SEQ_PUBS], last[APP_SEQ_PUBS];
    unsigned n;
    uint64_t gaps; /* total */
} app_seq;

/* Note a received message; returns the gap just before it. */
uint64_t app_seq_note(app_seq *t, const shmbus_msg *m);

/* Option values. Each returns false if s is not valid. */
bool app_parse_u64(const char *s, uint64_t *out);
bool app_parse_size(const char *s, uint32_t *w, uint32_t *h);           /* "1920x1080" */
bool app_parse_fps(const char *s, uint32_t *num, uint32_t *den);        /* "30", "30000/1001", "29.97" */

/* Exit with a usage error: "prog: msg\nTry 'prog --help'." */
_Noreturn void app_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
