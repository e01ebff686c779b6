/* shmbus-bench-bridge: the three paths a camera frame takes from "host A" to "host B" on
 * one machine, each as a sender (in the bench process) and a receiver.
 *
 *   dds     a plain Cyclone DDS writer of sensor_msgs/msg/Image and a reader in a child
 *           process: what two ROS 2 nodes would do. The frame is in a malloc'ed buffer.
 *   bridge  shmbus on host A -> shmbus-bridge -> DDS -> shmbus-bridge -> shmbus on host B:
 *           the frame is written in a loaned block, the receiver reads a frame block.
 *   nng     plain nng pub/sub over tcp://127.0.0.1 with the frame in the message, the
 *           receiver in a child process.
 *
 * Every sender writes each frame's every byte (memset) before sending: the "camera wrote
 * it" cost is the same on every path. Bytes 0..7 of the pixels carry the step, 8..15 the
 * frame's index; latency is capture (sender's clock) to receipt. */
#ifndef BENCH_PATHS_H
#define BENCH_PATHS_H

#include <stdbool.h>
#include <stdint.h>

#define BP_MAX_FRAMES 8192

typedef struct bp_result {
    uint64_t sent, received;
    double p50_us, p99_us;
    double achieved_fps; /* frames sent per second of the step */
} bp_result;

/* Latencies (ns) of one step: percentiles. Sorts lat in place. */
double bp_percentile(uint64_t *lat, uint64_t n, double p);

uint64_t bp_mono_ns(void);
uint64_t bp_real_ns(void);
void bp_sleep_until(uint64_t mono_ns);

/* Child processes (argv[1] of shmbus-bench-bridge): receive frames of `step` until `count`
 * came or none for 3 s, then print "received p50_us p99_us" on stdout. They write "ready"
 * on stdout's first line once they can receive. */
int bp_dds_reader_main(uint32_t step, uint64_t count);
int bp_nng_reader_main(const char *url, uint32_t step, uint64_t count);

/* Senders, in the bench process: send `count` frames of w x h rgb24 at fps. */
typedef struct bp_dds_writer bp_dds_writer;
bp_dds_writer *bp_dds_writer_open(void);
int bp_dds_writer_wait_reader(bp_dds_writer *w, int timeout_ms);
void bp_dds_writer_send(bp_dds_writer *w, uint32_t width, uint32_t height, uint32_t step,
                        uint64_t count, double fps, bp_result *r);
void bp_dds_writer_close(bp_dds_writer *w);

typedef struct bp_nng_writer bp_nng_writer;
bp_nng_writer *bp_nng_writer_open(const char *url);
int bp_nng_writer_wait_reader(bp_nng_writer *w, int timeout_ms);
void bp_nng_writer_send(bp_nng_writer *w, uint32_t width, uint32_t height, uint32_t step,
                        uint64_t count, double fps, bp_result *r);
void bp_nng_writer_close(bp_nng_writer *w);

#endif
