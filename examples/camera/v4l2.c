/* V4L2 capture: format negotiation, mmap streaming, read() (see v4l2.h). */
#include "v4l2.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const struct {
    shmbus_pixfmt fmt;
    uint32_t fourcc;
} formats[] = {
    /* in order of preference when the user names none */
    {SHMBUS_PIXFMT_YUYV422, V4L2_PIX_FMT_YUYV},   {SHMBUS_PIXFMT_RGB24, V4L2_PIX_FMT_RGB24},
    {SHMBUS_PIXFMT_YUV420P, V4L2_PIX_FMT_YUV420}, {SHMBUS_PIXFMT_YUV422P, V4L2_PIX_FMT_YUV422P},
    {SHMBUS_PIXFMT_GRAY8, V4L2_PIX_FMT_GREY},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

static void fourcc_str(uint32_t f, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)((f >> (8 * i)) & 0xff);
        out[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    out[4] = 0;
}

static uint32_t fourcc_of(shmbus_pixfmt f)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].fourcc;
    return 0;
}

/* Pick the format: the one wanted if the device has it, else the first preferred one. */
static int choose_format(cam_v4l2 *v, const char *dev, shmbus_pixfmt want, uint32_t *fourcc,
                         char *err, size_t errlen)
{
    char offered[256] = "";
    size_t used = 0;
    bool have[NFORMATS] = {false};
    for (uint32_t i = 0;; i++) {
        struct v4l2_fmtdesc fd = {.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        if (xioctl(v->fd, VIDIOC_ENUM_FMT, &fd) != 0)
            break;
        char cc[5];
        fourcc_str(fd.pixelformat, cc);
        int n = snprintf(offered + used, sizeof offered - used, "%s%s", used ? ", " : "", cc);
        if (n > 0 && (size_t)n < sizeof offered - used)
            used += (size_t)n;
        for (size_t k = 0; k < NFORMATS; k++)
            have[k] |= formats[k].fourcc == fd.pixelformat;
    }
    for (size_t k = 0; k < NFORMATS; k++)
        if (have[k] && (want == SHMBUS_PIXFMT_NONE || formats[k].fmt == want)) {
            *fourcc = formats[k].fourcc;
            v->format = formats[k].fmt;
            return 0;
        }
    if (want != SHMBUS_PIXFMT_NONE && fourcc_of(want) == 0)
        return fail(err, errlen,
                    "%s: camera-pub cannot capture %s from V4L2 (use yuyv422, "
                    "rgb24, yuv420p, yuv422p or gray8)",
                    dev, shmbus_pixfmt_name(want));
    if (want != SHMBUS_PIXFMT_NONE)
        return fail(err, errlen, "%s: does not offer %s (it offers %s)", dev,
                    shmbus_pixfmt_name(want), used ? offered : "nothing");
    return fail(err, errlen, "%s: offers only %s: camera-pub needs an uncompressed format "
                "(YUYV, RGB3, YU12, 422P or GREY)", dev, used ? offered : "nothing");
}

static void set_rate(cam_v4l2 *v, uint32_t num, uint32_t den)
{
    struct v4l2_streamparm p = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    if (xioctl(v->fd, VIDIOC_G_PARM, &p) != 0)
        return;
    if (num && (p.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) {
        p.parm.capture.timeperframe.numerator = den;
        p.parm.capture.timeperframe.denominator = num;
        xioctl(v->fd, VIDIOC_S_PARM, &p);
    }
    if (p.parm.capture.timeperframe.numerator) { /* what the driver settled on */
        v->fps_num = p.parm.capture.timeperframe.denominator;
        v->fps_den = p.parm.capture.timeperframe.numerator;
    }
}

static int start_streaming(cam_v4l2 *v, const char *dev, char *err, size_t errlen)
{
    struct v4l2_requestbuffers rb = {
        .count = CAM_V4L2_BUFS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    if (xioctl(v->fd, VIDIOC_REQBUFS, &rb) != 0 || rb.count == 0)
        return fail(err, errlen, "%s: VIDIOC_REQBUFS: %s", dev, strerror(errno));
    v->nbufs = rb.count < CAM_V4L2_BUFS ? rb.count : CAM_V4L2_BUFS;
    for (unsigned i = 0; i < v->nbufs; i++) {
        struct v4l2_buffer b = {
            .index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
        if (xioctl(v->fd, VIDIOC_QUERYBUF, &b) != 0)
            return fail(err, errlen, "%s: VIDIOC_QUERYBUF: %s", dev, strerror(errno));
        void *p = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, b.m.offset);
        if (p == MAP_FAILED)
            return fail(err, errlen, "%s: mmap of buffer %u: %s", dev, i, strerror(errno));
        v->buf[i].ptr = p;
        v->buf[i].len = b.length;
        if (xioctl(v->fd, VIDIOC_QBUF, &b) != 0)
            return fail(err, errlen, "%s: VIDIOC_QBUF: %s", dev, strerror(errno));
    }
    enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(v->fd, VIDIOC_STREAMON, &type) != 0)
        return fail(err, errlen, "%s: VIDIOC_STREAMON: %s", dev, strerror(errno));
    v->streaming = true;
    return 0;
}

int cam_v4l2_open(cam_v4l2 *v, const char *dev, shmbus_pixfmt want, uint32_t width, uint32_t height,
                  uint32_t fps_num, uint32_t fps_den, bool use_read, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (v->fd < 0)
        return fail(err, errlen, "%s: %s", dev, strerror(errno));
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (xioctl(v->fd, VIDIOC_QUERYCAP, &cap) != 0) {
        fail(err, errlen, "%s: not a V4L2 device (%s)", dev, strerror(errno));
        goto fail_close;
    }
    uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE)) {
        fail(err, errlen, "%s (%s): not a single-planar video capture device%s", dev,
             (const char *)cap.card,
             caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE ? " (multi-planar devices are not supported)"
                                                  : "");
        goto fail_close;
    }
    bool can_stream = caps & V4L2_CAP_STREAMING, can_read = caps & V4L2_CAP_READWRITE;
    if (use_read && !can_read) {
        fail(err, errlen, "%s: the driver does not support read(): drop --v4l2-read", dev);
        goto fail_close;
    }
    if (!can_stream && !can_read) {
        fail(err, errlen, "%s: the driver supports neither streaming nor read()", dev);
        goto fail_close;
    }
    uint32_t fourcc = 0;
    if (choose_format(v, dev, want, &fourcc, err, errlen) != 0)
        goto fail_close;
    struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    f.fmt.pix.width = width;
    f.fmt.pix.height = height;
    f.fmt.pix.pixelformat = fourcc;
    f.fmt.pix.field = V4L2_FIELD_NONE;
    if (xioctl(v->fd, VIDIOC_S_FMT, &f) != 0) {
        fail(err, errlen, "%s: VIDIOC_S_FMT %ux%u: %s", dev, width, height, strerror(errno));
        goto fail_close;
    }
    if (f.fmt.pix.pixelformat != fourcc) {
        char a[5], b[5];
        fourcc_str(fourcc, a);
        fourcc_str(f.fmt.pix.pixelformat, b);
        fail(err, errlen, "%s: asked for %s, the driver chose %s", dev, a, b);
        goto fail_close;
    }
    v->width = f.fmt.pix.width;
    v->height = f.fmt.pix.height;
    v->stride = f.fmt.pix.bytesperline;
    v->sizeimage = f.fmt.pix.sizeimage;
    set_rate(v, fps_num, fps_den);
    if (use_read || !can_stream) {
        v->streaming = false;
        return 0;
    }
    if (start_streaming(v, dev, err, errlen) == 0)
        return 0;
    cam_v4l2_close(v);
    return -1;

fail_close:
    close(v->fd);
    v->fd = -1;
    return -1;
}

/* Wait until the device has a frame; 0, 1 on stop, -1 on error or timeout. */
static int wait_frame(cam_v4l2 *v, int stop_fd, char *err, size_t errlen)
{
    struct pollfd pf[2] = {{.fd = v->fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    int n = poll(pf, stop_fd >= 0 ? 2 : 1, 5000);
    if (n < 0 && errno != EINTR)
        return fail(err, errlen, "poll: %s", strerror(errno));
    if (stop_fd >= 0 && pf[1].revents)
        return 1;
    if (n == 0)
        return fail(err, errlen, "no frame from the device in 5 s");
    if (pf[0].revents & (POLLERR | POLLHUP))
        return fail(err, errlen, "the device reported an error (unplugged?)");
    return 0;
}

static uint64_t buffer_time(const struct v4l2_buffer *b)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((b->flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC &&
        (b->timestamp.tv_sec || b->timestamp.tv_usec))
        return (uint64_t)b->timestamp.tv_sec * 1000000000ull +
               (uint64_t)b->timestamp.tv_usec * 1000u;
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

int cam_v4l2_dequeue(cam_v4l2 *v, int stop_fd, unsigned *index, size_t *bytes,
                     uint64_t *ts_ns, char *err, size_t errlen)
{
    for (;;) {
        int rc = wait_frame(v, stop_fd, err, errlen);
        if (rc)
            return rc;
        struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
        if (xioctl(v->fd, VIDIOC_DQBUF, &b) != 0) {
            if (errno == EAGAIN)
                continue;
            return fail(err, errlen, "VIDIOC_DQBUF: %s", strerror(errno));
        }
        if (b.index >= v->nbufs)
            return fail(err, errlen, "VIDIOC_DQBUF: buffer index %u out of range", b.index);
        *index = b.index;
        *bytes = b.bytesused ? b.bytesused : v->buf[b.index].len;
        *ts_ns = buffer_time(&b);
        return 0;
    }
}

int cam_v4l2_requeue(cam_v4l2 *v, unsigned index, char *err, size_t errlen)
{
    struct v4l2_buffer b = {
        .index = index, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    if (xioctl(v->fd, VIDIOC_QBUF, &b) != 0)
        return fail(err, errlen, "VIDIOC_QBUF: %s", strerror(errno));
    return 0;
}

int cam_v4l2_read(cam_v4l2 *v, int stop_fd, void *dst, size_t cap, size_t *bytes,
                  uint64_t *ts_ns, char *err, size_t errlen)
{
    for (;;) {
        int rc = wait_frame(v, stop_fd, err, errlen);
        if (rc)
            return rc;
        ssize_t n = read(v->fd, dst, cap);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return fail(err, errlen, "read: %s", strerror(errno));
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        *ts_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        *bytes = (size_t)n;
        return 0;
    }
}

void cam_v4l2_close(cam_v4l2 *v)
{
    if (v->fd < 0)
        return;
    if (v->streaming) {
        enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        xioctl(v->fd, VIDIOC_STREAMOFF, &type);
    }
    for (unsigned i = 0; i < v->nbufs; i++)
        if (v->buf[i].ptr)
            munmap(v->buf[i].ptr, v->buf[i].len);
    close(v->fd);
    memset(v, 0, sizeof *v);
    v->fd = -1;
}
