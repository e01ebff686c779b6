/* Video4Linux2 capture for camera-pub.
 *
 * Two ways to get a frame:
 *   - mmap streaming (the usual one): the driver fills buffers it owns; camera-pub copies each
 *     into a loaned shmbus block. The copy is unavoidable here: the driver's buffers are not
 *     in the shmbus pool, and a block loaned for one frame cannot be handed to the driver.
 *   - read() (--v4l2-read, for drivers with V4L2_CAP_READWRITE): the frame is read straight
 *     into the loaned block, no copy.
 * Single-planar capture only, uncompressed formats only (YUYV, RGB3, YU12, 422P, GREY).
 * Uses libc and <linux/videodev2.h> only. */
#ifndef CAM_V4L2_H
#define CAM_V4L2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus_frame.h"

#define CAM_V4L2_BUFS 4

typedef struct cam_v4l2 {
    int fd;
    bool streaming;           /* mmap streaming, else read() */
    unsigned nbufs;
    struct {
        void *ptr;
        size_t len;
    } buf[CAM_V4L2_BUFS];
    uint32_t width, height;   /* what the driver chose */
    uint32_t stride;          /* bytesperline of the first plane */
    uint32_t sizeimage;
    shmbus_pixfmt format;
    uint32_t fps_num, fps_den; /* the device's frame rate, 0 if it does not say */
} cam_v4l2;

/* Open dev and start capturing width x height in format `want` (SHMBUS_PIXFMT_NONE: the first
 * the device offers of yuyv422, rgb24, yuv420p, yuv422p, gray8) at about fps_num/fps_den.
 * The driver may choose another size: read v->width/height. use_read picks the read()
 * method. Returns 0, or -1 with the reason in err ("/dev/video0: No such file or
 * directory", "... offers only MJPG, H264: camera-pub needs an uncompressed format"). */
int cam_v4l2_open(cam_v4l2 *v, const char *dev, shmbus_pixfmt want, uint32_t width, uint32_t height,
                  uint32_t fps_num, uint32_t fps_den, bool use_read, char *err, size_t errlen);

/* Streaming: wait for the next filled buffer (polling stop_fd too). Returns 0 with its index,
 * its bytes and capture time (CLOCK_MONOTONIC ns), 1 if stop_fd became readable, -1 on error.
 * Give the buffer back with cam_v4l2_requeue() once its pixels are copied. */
int cam_v4l2_dequeue(cam_v4l2 *v, int stop_fd, unsigned *index, size_t *bytes,
                     uint64_t *ts_ns, char *err, size_t errlen);
int cam_v4l2_requeue(cam_v4l2 *v, unsigned index, char *err, size_t errlen);

/* read() method: read one frame straight into dst. Same returns as cam_v4l2_dequeue. */
int cam_v4l2_read(cam_v4l2 *v, int stop_fd, void *dst, size_t cap, size_t *bytes,
                  uint64_t *ts_ns, char *err, size_t errlen);

void cam_v4l2_close(cam_v4l2 *v);

#endif
