/* Camera frames as ROS 2 images (image_map.h). */
#include "image_map.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    shmbus_pixfmt fmt;
    const char *encoding;
} map[] = {
    {SHMBUS_PIXFMT_RGB24, "rgb8"},
    {SHMBUS_PIXFMT_GRAY8, "mono8"},
    {SHMBUS_PIXFMT_YUYV422, "yuv422_yuy2"},
};

const char *image_encoding_of(int fmt, char *why, size_t whylen)
{
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if ((int)map[i].fmt == fmt) return map[i].encoding;
    if (why)
        snprintf(why, whylen,
                 "pixel format %s has no ROS 2 image encoding (sent: rgb24, "
                 "gray8, yuyv422)",
                 shmbus_pixfmt_name(fmt));
    return NULL;
}

/* The frame format for a ROS 2 encoding; SHMBUS_PIXFMT_NONE if it has none. *swap_rb is set
 * for "bgr8" (stored as rgb24 with red and blue exchanged). */
static shmbus_pixfmt image_format_of(const char *encoding, bool *swap_rb)
{
    *swap_rb = false;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].encoding, encoding) == 0) return map[i].fmt;
    if (strcmp(encoding, "bgr8") == 0) {
        *swap_rb = true;
        return SHMBUS_PIXFMT_RGB24;
    }
    if (strcmp(encoding, "yuyv") == 0) return SHMBUS_PIXFMT_YUYV422;
    return SHMBUS_PIXFMT_NONE;
}

/* Bytes per pixel of the packed formats the bridge carries (rgb24 3, gray8 1, yuyv422 2). */
static unsigned image_bytes_per_pixel(shmbus_pixfmt fmt)
{
    switch (fmt) {
    case SHMBUS_PIXFMT_RGB24: return 3;
    case SHMBUS_PIXFMT_GRAY8: return 1;
    case SHMBUS_PIXFMT_YUYV422: return 2;
    default: return 0;
    }
}

shmbus_pixfmt image_check(uint32_t width, uint32_t height, const char *encoding, uint32_t step,
                          uint64_t data_len, bool *swap_rb, bool *refused, char *why, size_t whylen)
{
    *refused = false;
    shmbus_pixfmt fmt = image_format_of(encoding ? encoding : "", swap_rb);
    if (fmt == SHMBUS_PIXFMT_NONE) {
        *refused = true;
        snprintf(why, whylen,
                 "encoding \"%.32s\" is not taken in (rgb8, bgr8, mono8, "
                 "yuv422_yuy2, yuyv)",
                 encoding ? encoding : "");
        return SHMBUS_PIXFMT_NONE;
    }
    if (width == 0 || height == 0 || width > SHMBUS_FRAME_MAX_DIM ||
        height > SHMBUS_FRAME_MAX_DIM) {
        snprintf(why, whylen, "size %ux%u is outside 1..%u", width, height, SHMBUS_FRAME_MAX_DIM);
        return SHMBUS_PIXFMT_NONE;
    }
    uint64_t row = (uint64_t)width * image_bytes_per_pixel(fmt);
    if (fmt == SHMBUS_PIXFMT_YUYV422) row = ((uint64_t)width + 1) / 2 * 4;
    if (step < row) {
        snprintf(why, whylen, "step %u is less than a row of %ux%s (%llu bytes)", step, width,
                 encoding, (unsigned long long)row);
        return SHMBUS_PIXFMT_NONE;
    }
    if ((uint64_t)step * height != data_len) {
        snprintf(why, whylen, "step %u x height %u = %llu bytes, but the data has %llu", step,
                 height, (unsigned long long)step * height, (unsigned long long)data_len);
        return SHMBUS_PIXFMT_NONE;
    }
    return fmt;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void image_stamp_of(uint64_t mono_ns, int32_t *sec, uint32_t *nanosec)
{
    uint64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
    uint64_t age = mono > mono_ns ? mono - mono_ns : 0;
    uint64_t t = real > age ? real - age : 0;
    *sec = (int32_t)(t / 1000000000ull);
    *nanosec = (uint32_t)(t % 1000000000ull);
}

uint64_t image_mono_of(int32_t sec, uint32_t nanosec)
{
    uint64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
    uint64_t t = sec < 0 ? 0 : (uint64_t)sec * 1000000000ull + (nanosec % 1000000000u);
    uint64_t age = real > t ? real - t : 0; /* a stamp from the future: now */
    return mono > age ? mono - age : 0;
}

void image_copy_swap_rb(uint8_t *dst, const uint8_t *src, uint32_t width, uint32_t height,
                        uint32_t step)
{
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *s = src + (size_t)y * step;
        uint8_t *d = dst + (size_t)y * step;
        for (uint32_t x = 0; x < width; x++, s += 3, d += 3) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
        }
    }
}
