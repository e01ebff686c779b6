/* The bridge tests' harness: one machine plays two hosts.
 *
 * Each host has its own temporary directory on tmpfs (under /dev/shm, removed afterwards)
 * holding its SHMBUS_SHM_DIR, its SHMBUS_RUNTIME_DIR, its bridge's configuration, stats file
 * and log; its own shmbus domain; and its own shmbus-bridge process. Both bridges meet on a
 * DDS domain id unique to the test (from the pid), with Cyclone on the loopback interface
 * only (unicast discovery to 127.0.0.1, no multicast). The test process opens both hosts'
 * domains itself (shm_dir and runtime_dir in the options); programs (bridges, frame-stats,
 * the ROS 2 peer) are started with posix_spawn, with the host's environment.
 *
 * Teardown stops the bridges (SIGTERM, then SIGKILL), fails the test if a host's shm
 * directory still holds a file, and removes the directories. */
#ifndef BRIDGE_HARNESS_H
#define BRIDGE_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include <cmocka.h>

#include "shmbus.h"
#include "shmbus_frame.h"

typedef struct bh_host {
    char name;    /* 'a' or 'b' */
    char dir[96]; /* the host's temporary directory */
    char shm[112], run[112];
    char dom[32];
    char domcfg[512]; /* its shmbus domain's JSON */
    char cfg[128], stats[128], log[128];
    pid_t bridge;
    shmbus_domain *d; /* opened by the test (bh_open) */
} bh_host;

typedef struct bh_env {
    char dir[80];
    char cyclone[128]; /* Cyclone XML for everything of this test */
    unsigned dds_domain;
    bh_host a, b;
    pid_t child[8];
    int nchild;
} bh_env;

/* cmocka fixture; the domain configs are bridge/tests/configs/host.json (setup) or
 * host-large.json (setup_large). */
int bh_setup(void **state);
int bh_setup_large(void **state);
int bh_teardown(void **state);
#define BH_TEST(f) cmocka_unit_test_setup_teardown(f, bh_setup, bh_teardown)
#define BH_TEST_LARGE(f) cmocka_unit_test_setup_teardown(f, bh_setup_large, bh_teardown)

/* Write h's bridge configuration: its domain, the test's DDS domain and Cyclone file, stats
 * every 100 ms to h->stats, and the given "out"/"in" members (JSON text, e.g.
 * "\"out\": [{\"topic\": \"x\"}]"). */
void bh_write_bridge_config(const bh_env *e, bh_host *h, const char *routes_json);
/* Start h's bridge (SIGKILL-able; stderr appended to h->log). */
void bh_start_bridge(bh_env *e, bh_host *h);
/* Send sig to h's bridge and wait for it (10 s, then SIGKILL); returns its wait status. */
int bh_stop_bridge(bh_env *e, bh_host *h, int sig);

/* A counter of h's bridge stats file: route (dir "out"/"in", topic), key such as
 * "forwarded", "matched" or "dropped.invalid". -1 if the file or value is not there yet. */
double bh_stat(const bh_host *h, const char *dir, const char *topic, const char *key);
/* Wait until bh_stat >= min (timeout_ms); fails the test with the bridge's log if not. */
void bh_wait_stat(const bh_host *h, const char *dir, const char *topic, const char *key, double min,
                  int timeout_ms);

/* Wait (10 s at most) until the counter reaches want, then require it to equal want. */
void bh_expect_stat(const bh_host *h, const char *dir, const char *topic, const char *key,
                    double want);

/* Write both bridges' configurations (a_routes, b_routes), start them, and wait until host
 * a's "out" route and host b's "in" route of topic are matched on DDS. */
void bh_start_pair(bh_env *e, const char *a_routes, const char *b_routes, const char *topic);
/* Open both hosts' domains in this process and subscribe to topic on host b, connected to
 * its bridge's publisher. */
shmbus_sub *bh_open_both_sub_b(bh_env *e, const char *topic);

/* Open h's domain in this process as participant `name`. */
shmbus_domain *bh_open(bh_host *h, const char *name);
void bh_close(bh_host *h);

/* Start a program of the build (bin dir) with h's environment (and the test's Cyclone
 * config and DDS domain); stdout to out_path (NULL: /dev/null), stderr to h->log. */
pid_t bh_spawn(bh_env *e, const bh_host *h, const char *const *argv, const char *out_path);
/* Wait for a child (timeout_ms, then SIGKILL): its exit code, or 128 + signal. */
int bh_wait(bh_env *e, pid_t pid, int timeout_ms);
/* The bridge's log, printed on a failure. */
void bh_print_log(const bh_host *h);

/* <env dir>/<name> */
void bh_path(const bh_env *e, const char *name, char *out, size_t len);
/* A whole file, NUL-terminated (caller frees), or NULL. */
char *bh_slurp(const char *path);
/* A number from a JSON file (top-level key). NAN if absent. */
double bh_json_number(const char *path, const char *key);

/* Blocks of the host's pool "p" of 1 MiB and more (frames) in use now. */
uint32_t bh_pool_used(bh_host *h);
/* Wait until the pool's blocks in use are at most max (timeout_ms); returns the last count. */
uint32_t bh_wait_pool_used(bh_host *h, uint32_t max, int timeout_ms);

/* Publish frame `index` (pixel_pattern.h pixels, capture time now) of fmt/w/h; with checksum. */
void bh_publish_frame(shmbus_pub *p, shmbus_pixfmt fmt, uint32_t w, uint32_t h, uint64_t index);
/* Check a received frame: its pixels are image `*index`'s, and its capture time matches the
 * time the pixels carry within 10 ms. */
bool bh_frame_ok(const shmbus_msg *m, uint64_t *index);

/* A plain message `index` of size bytes (>= 16): the index, the checksum of the rest
 * (shmbus_frame_checksum), and bytes of the index. */
void bh_publish_message(shmbus_pub *p, uint64_t index, uint64_t size);
bool bh_message_ok(const shmbus_msg *m, uint64_t *index);

/* A receiving thread: takes messages from sub until `want` came, stop is set, or timeout_ms
 * passed; checks each (frames: bh_frame_ok, else bh_message_ok) and records its index. */
#define BH_MAX_RECORDED 4096
typedef struct bh_receiver {
    shmbus_sub *sub;
    bool frames;
    unsigned want;
    int timeout_ms;
    _Atomic unsigned got;
    _Atomic unsigned bad;
    _Atomic bool stop;
    uint64_t idx[BH_MAX_RECORDED];
    pthread_t th;
} bh_receiver;
void bh_receiver_start(bh_receiver *r, shmbus_sub *sub, bool frames, unsigned want, int timeout_ms);
void bh_receiver_join(bh_receiver *r);
/* Flow control for tests that want every message: wait until the receiver has all but
 * `window` of the `sent` messages (a hang guard of 30 s, not a timing assertion). */
void bh_receiver_window(bh_receiver *r, unsigned sent, unsigned window);

uint64_t bh_now_ns(void);
void bh_sleep_ms(unsigned ms);

#endif
