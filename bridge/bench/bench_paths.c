/* shmbus-bench-bridge: the plain DDS and nng paths (bench_paths.h). */
#include "bench_paths.h"

#include <dds/dds.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "ros2_image.h"

uint64_t bp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bp_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bp_sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double bp_percentile(uint64_t *lat, uint64_t n, double p)
{
    if (n == 0) return 0;
    qsort(lat, n, sizeof *lat, cmp_u64);
    uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)lat[i < n ? i : n - 1] / 1e3;
}

static void report(uint64_t received, uint64_t *lat)
{
    uint64_t n = received < BP_MAX_FRAMES ? received : BP_MAX_FRAMES;
    double p50 = bp_percentile(lat, n, 50), p99 = bp_percentile(lat, n, 99);
    printf("%llu %.1f %.1f\n", (unsigned long long)received, p50, p99);
    fflush(stdout);
}

/* The frame's header bytes: step and index; the rest is memset like a camera write. */
static void fill(uint8_t *p, size_t n, uint32_t step, uint64_t idx)
{
    memset(p, (int)(idx & 0xff), n);
    uint64_t s = step;
    memcpy(p, &s, 8);
    memcpy(p + 8, &idx, 8);
}

/* Pace: frame i is due at start + i / fps; returns false if the schedule is lost. */
static void pace(uint64_t start, uint64_t i, double fps)
{
    bp_sleep_until(start + (uint64_t)((double)i * 1e9 / fps));
}

/* ---- plain DDS ---------------------------------------------------------------------------- */

static dds_qos_t *bench_qos(void)
{
    /* the bench's routes: reliable, every unacknowledged sample kept (4 at most) */
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    dds_qset_resource_limits(q, 4, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED);
    return q;
}

int bp_dds_reader_main(uint32_t step, uint64_t count)
{
    dds_entity_t pp = dds_create_participant(DDS_DOMAIN_DEFAULT, NULL, NULL);
    if (pp < 0) return 1;
    dds_entity_t t =
        dds_create_topic(pp, &sensor_msgs_msg_dds__Image__desc, "rt/bench/dds", NULL, NULL);
    dds_qos_t *q = bench_qos();
    dds_entity_t rd = dds_create_reader(pp, t, q, NULL);
    dds_delete_qos(q);
    if (rd < 0) return 1;
    dds_entity_t ws = dds_create_waitset(pp);
    dds_waitset_attach(ws, dds_create_readcondition(rd, DDS_ANY_STATE), 0);
    printf("ready\n");
    fflush(stdout);
    static uint64_t lat[BP_MAX_FRAMES];
    uint64_t received = 0, last = bp_mono_ns();
    while (received < count && bp_mono_ns() - last < 3000000000ull) {
        dds_waitset_wait(ws, NULL, 0, DDS_MSECS(100));
        void *s[1] = {NULL};
        dds_sample_info_t info;
        while (dds_take(rd, s, &info, 1, 1) > 0) {
            const sensor_msgs_msg_dds__Image_ *im = s[0];
            uint64_t now = bp_real_ns(), st = 0;
            if (info.valid_data && im->data._length >= 16) memcpy(&st, im->data._buffer, 8);
            if (info.valid_data && st == step) {
                uint64_t stamp =
                    (uint64_t)im->header.stamp.sec * 1000000000ull + im->header.stamp.nanosec;
                if (received < BP_MAX_FRAMES) lat[received] = now > stamp ? now - stamp : 0;
                received++;
                last = bp_mono_ns();
            }
            dds_return_loan(rd, s, 1);
            s[0] = NULL;
        }
    }
    report(received, lat);
    dds_delete(pp);
    return 0;
}

struct bp_dds_writer {
    dds_entity_t pp, wr;
    uint8_t *buf;
    size_t cap;
};

bp_dds_writer *bp_dds_writer_open(void)
{
    bp_dds_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->pp = dds_create_participant(DDS_DOMAIN_DEFAULT, NULL, NULL);
    dds_entity_t t = w->pp < 0 ? w->pp
                               : dds_create_topic(w->pp, &sensor_msgs_msg_dds__Image__desc,
                                                  "rt/bench/dds", NULL, NULL);
    dds_qos_t *q = bench_qos();
    w->wr = t < 0 ? t : dds_create_writer(w->pp, t, q, NULL);
    dds_delete_qos(q);
    if (w->wr < 0) {
        fprintf(stderr, "shmbus-bench-bridge: DDS writer: %s\n", dds_strretcode(w->wr));
        if (w->pp > 0) dds_delete(w->pp);
        free(w);
        return NULL;
    }
    return w;
}

int bp_dds_writer_wait_reader(bp_dds_writer *w, int timeout_ms)
{
    dds_publication_matched_status_t st = {0};
    for (int i = 0; i < timeout_ms / 10; i++) {
        if (dds_get_publication_matched_status(w->wr, &st) == 0 && st.current_count > 0) return 0;
        dds_sleepfor(DDS_MSECS(10));
    }
    return -1;
}

void bp_dds_writer_send(bp_dds_writer *w, uint32_t width, uint32_t height, uint32_t step,
                        uint64_t count, double fps, bp_result *r)
{
    size_t size = (size_t)width * height * 3;
    if (size > w->cap) {
        free(w->buf);
        w->buf = malloc(size);
        w->cap = w->buf ? size : 0;
        if (!w->buf) return;
    }
    uint64_t start = bp_mono_ns();
    r->sent = 0;
    for (uint64_t i = 0; i < count; i++) {
        pace(start, i, fps);
        fill(w->buf, size, step, i);
        uint64_t now = bp_real_ns();
        sensor_msgs_msg_dds__Image_ im = {
            .header = {.stamp = {.sec = (int32_t)(now / 1000000000ull),
                                 .nanosec = (uint32_t)(now % 1000000000ull)},
                       .frame_id = "bench"},
            .height = height,
            .width = width,
            .encoding = "rgb8",
            .step = width * 3,
            .data = {._maximum = (uint32_t)size, ._length = (uint32_t)size, ._buffer = w->buf}};
        if (dds_write(w->wr, &im) == 0) r->sent++;
    }
    r->achieved_fps = (double)count * 1e9 / (double)(bp_mono_ns() - start);
    dds_wait_for_acks(w->wr, DDS_SECS(5));
}

void bp_dds_writer_close(bp_dds_writer *w)
{
    if (!w) return;
    dds_delete(w->pp);
    free(w->buf);
    free(w);
}

/* ---- nng over tcp --------------------------------------------------------------------------- */

int bp_nng_reader_main(const char *url, uint32_t step, uint64_t count)
{
    nng_socket s;
    if (nng_sub0_open(&s) != 0) return 1;
    nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 100);
    if (nng_dial(s, url, NULL, 0) != 0) return 1;
    printf("ready\n");
    fflush(stdout);
    static uint64_t lat[BP_MAX_FRAMES];
    uint64_t received = 0, last = bp_mono_ns();
    while (received < count && bp_mono_ns() - last < 3000000000ull) {
        nng_msg *m;
        if (nng_recvmsg(s, &m, 0) != 0) continue;
        uint64_t now = bp_mono_ns(), st = 0, t = 0;
        if (nng_msg_len(m) >= 24) {
            memcpy(&st, nng_msg_body(m), 8);
            memcpy(&t, (uint8_t *)nng_msg_body(m) + 16, 8);
        }
        if (st == step) {
            if (received < BP_MAX_FRAMES) lat[received] = now > t ? now - t : 0;
            received++;
            last = now;
        }
        nng_msg_free(m);
    }
    report(received, lat);
    nng_close(s);
    return 0;
}

struct bp_nng_writer {
    nng_socket s;
    _Atomic int pipes;
};

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    bp_nng_writer *w = arg;
    atomic_fetch_add(&w->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

bp_nng_writer *bp_nng_writer_open(const char *url)
{
    bp_nng_writer *w = calloc(1, sizeof *w);
    if (!w || nng_pub0_open(&w->s) != 0) {
        free(w);
        return NULL;
    }
    nng_pipe_notify(w->s, NNG_PIPE_EV_ADD_POST, on_pipe, w);
    nng_pipe_notify(w->s, NNG_PIPE_EV_REM_POST, on_pipe, w);
    int rv = nng_listen(w->s, url, NULL, 0);
    if (rv != 0) {
        fprintf(stderr, "shmbus-bench-bridge: listen %s: %s\n", url, nng_strerror(rv));
        nng_close(w->s);
        free(w);
        return NULL;
    }
    return w;
}

int bp_nng_writer_wait_reader(bp_nng_writer *w, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 10 && atomic_load(&w->pipes) < 1; i++)
        bp_sleep_until(bp_mono_ns() + 10000000ull);
    return atomic_load(&w->pipes) > 0 ? 0 : -1;
}

void bp_nng_writer_send(bp_nng_writer *w, uint32_t width, uint32_t height, uint32_t step,
                        uint64_t count, double fps, bp_result *r)
{
    size_t size = (size_t)width * height * 3;
    uint64_t start = bp_mono_ns();
    r->sent = 0;
    for (uint64_t i = 0; i < count; i++) {
        pace(start, i, fps);
        nng_msg *m;
        if (nng_msg_alloc(&m, size) != 0) continue;
        fill(nng_msg_body(m), size, step, i);
        uint64_t now = bp_mono_ns();
        memcpy((uint8_t *)nng_msg_body(m) + 16, &now, 8);
        if (nng_sendmsg(w->s, m, 0) == 0)
            r->sent++;
        else
            nng_msg_free(m);
    }
    r->achieved_fps = (double)count * 1e9 / (double)(bp_mono_ns() - start);
}

void bp_nng_writer_close(bp_nng_writer *w)
{
    if (!w) return;
    nng_close(w->s);
    free(w);
}
