/* Row-wise pixel conversion (BT.601 integer approximations, as in most video code). */
#include "convert.h"

#include <string.h>

static inline uint8_t clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

/* (v + 128) / 256 rounded down, for v that may be negative (then the result clips to 0). */
static inline int shr8(int v) { return v < 0 ? -1 : v >> 8; }

void conv_rgb_to_yuv(const uint8_t rgb[3], bool full, uint8_t *y, uint8_t *u, uint8_t *v)
{
    int r = rgb[0], g = rgb[1], b = rgb[2];
    if (full) {
        *y = clip8((77 * r + 150 * g + 29 * b + 128) >> 8);
        *u = clip8(((-43 * r - 85 * g + 128 * b + 128) + (128 << 8)) >> 8);
        *v = clip8(((128 * r - 107 * g - 21 * b + 128) + (128 << 8)) >> 8);
    } else {
        *y = clip8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
        *u = clip8(((-38 * r - 74 * g + 112 * b + 128) + (128 << 8)) >> 8);
        *v = clip8(((112 * r - 94 * g - 18 * b + 128) + (128 << 8)) >> 8);
    }
}

void conv_yuv_to_rgb(uint8_t y, uint8_t u, uint8_t v, bool full, uint8_t rgb[3])
{
    int d = u - 128, e = v - 128;
    if (full) {
        int c = y << 8;
        rgb[0] = clip8(shr8(c + 359 * e + 128));
        rgb[1] = clip8(shr8(c - 88 * d - 183 * e + 128));
        rgb[2] = clip8(shr8(c + 454 * d + 128));
    } else {
        int c = 298 * (y - 16);
        rgb[0] = clip8(shr8(c + 409 * e + 128));
        rgb[1] = clip8(shr8(c - 100 * d - 208 * e + 128));
        rgb[2] = clip8(shr8(c + 516 * d + 128));
    }
}

static bool is_planar_yuv(shmbus_pixfmt f)
{
    return f == SHMBUS_PIXFMT_YUV420P || f == SHMBUS_PIXFMT_YUV422P || f == SHMBUS_PIXFMT_YUV444P;
}

void conv_put_rgb_row(shmbus_frame_hdr *h, uint32_t row, const uint8_t *rgb)
{
    shmbus_pixfmt fmt = (shmbus_pixfmt)h->format;
    bool full = h->flags & SHMBUS_FRAME_FLAG_FULL_RANGE;
    uint32_t w = h->width;
    uint8_t *p0 = shmbus_frame_plane_mut(h, 0) + (uint64_t)row * h->stride[0];
    uint8_t u, v;
    if (fmt == SHMBUS_PIXFMT_RGB24) {
        if (p0 != rgb)
            memcpy(p0, rgb, (size_t)w * 3);
    } else if (fmt == SHMBUS_PIXFMT_GRAY8) {
        for (uint32_t x = 0; x < w; x++)
            conv_rgb_to_yuv(rgb + 3 * x, true, &p0[x], &u, &v);
    } else if (fmt == SHMBUS_PIXFMT_YUYV422) {
        for (uint32_t x = 0; x < w; x += 2) { /* Y0 U Y1 V: chroma of the even pixel */
            uint32_t x1 = x + 1 < w ? x + 1 : x;
            uint8_t *q = p0 + 2 * x;
            conv_rgb_to_yuv(rgb + 3 * x, full, &q[0], &q[1], &q[3]);
            conv_rgb_to_yuv(rgb + 3 * x1, full, &q[2], &u, &v);
        }
    } else if (is_planar_yuv(fmt)) {
        unsigned sx = fmt != SHMBUS_PIXFMT_YUV444P, sy = fmt == SHMBUS_PIXFMT_YUV420P;
        bool chroma_row = (row & sy) == 0;
        uint8_t *pu = shmbus_frame_plane_mut(h, 1) + (uint64_t)(row >> sy) * h->stride[1];
        uint8_t *pv = shmbus_frame_plane_mut(h, 2) + (uint64_t)(row >> sy) * h->stride[2];
        for (uint32_t x = 0; x < w; x++) {
            conv_rgb_to_yuv(rgb + 3 * x, full, &p0[x], &u, &v);
            if (chroma_row && (x & sx) == 0) {
                pu[x >> sx] = u;
                pv[x >> sx] = v;
            }
        }
    }
}

void conv_get_rgb_row(const shmbus_frame_hdr *h, uint32_t row, uint8_t *rgb)
{
    shmbus_pixfmt fmt = (shmbus_pixfmt)h->format;
    bool full = h->flags & SHMBUS_FRAME_FLAG_FULL_RANGE;
    uint32_t w = h->width;
    const uint8_t *p0 = shmbus_frame_plane(h, 0) + (uint64_t)row * h->stride[0];
    if (fmt == SHMBUS_PIXFMT_RGB24) {
        memcpy(rgb, p0, (size_t)w * 3);
    } else if (fmt == SHMBUS_PIXFMT_GRAY8) {
        for (uint32_t x = 0; x < w; x++)
            rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = p0[x];
    } else if (fmt == SHMBUS_PIXFMT_YUYV422) {
        for (uint32_t x = 0; x < w; x++) {
            const uint8_t *q = p0 + 4 * (x / 2);
            conv_yuv_to_rgb(q[2 * (x & 1)], q[1], q[3], full, rgb + 3 * x);
        }
    } else if (is_planar_yuv(fmt)) {
        unsigned sx = fmt != SHMBUS_PIXFMT_YUV444P, sy = fmt == SHMBUS_PIXFMT_YUV420P;
        const uint8_t *pu = shmbus_frame_plane(h, 1) + (uint64_t)(row >> sy) * h->stride[1];
        const uint8_t *pv = shmbus_frame_plane(h, 2) + (uint64_t)(row >> sy) * h->stride[2];
        for (uint32_t x = 0; x < w; x++)
            conv_yuv_to_rgb(p0[x], pu[x >> sx], pv[x >> sx], full, rgb + 3 * x);
    }
}

shmbus_pixfmt conv_y4m_format(shmbus_pixfmt fmt)
{
    return fmt == SHMBUS_PIXFMT_RGB24     ? SHMBUS_PIXFMT_YUV444P
           : fmt == SHMBUS_PIXFMT_YUYV422 ? SHMBUS_PIXFMT_YUV422P
                                          : fmt;
}

void conv_y4m_row(const shmbus_frame_hdr *h, unsigned plane, uint32_t row, uint8_t *out)
{
    const uint8_t *src = shmbus_frame_plane(h, 0) + (uint64_t)row * h->stride[0];
    bool full = h->flags & SHMBUS_FRAME_FLAG_FULL_RANGE;
    uint8_t yuv[3];
    if (h->format == SHMBUS_PIXFMT_RGB24) {
        for (uint32_t x = 0; x < h->width; x++) {
            conv_rgb_to_yuv(src + 3 * x, full, &yuv[0], &yuv[1], &yuv[2]);
            out[x] = yuv[plane];
        }
    } else if (h->format == SHMBUS_PIXFMT_YUYV422) {
        if (plane == 0)
            for (uint32_t x = 0; x < h->width; x++)
                out[x] = src[2 * x];
        else
            for (uint32_t x = 0; x < (h->width + 1) / 2; x++)
                out[x] = src[4 * x + (plane == 1 ? 1 : 3)];
    }
}
